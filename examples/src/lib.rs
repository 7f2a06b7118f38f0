//! Examples of the safepoint runtime.
//!
//! - [`kv`]: a Redis-compatible key-value server that checkpoints by stopping the world.

pub mod kv;
