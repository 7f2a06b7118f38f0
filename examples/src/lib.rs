//! Examples of the safepoint runtime.
//!
//! - [`hello`]: the `Hello, World!` service of the `http` example.
//! - [`kv`]: a Redis-compatible key-value server that checkpoints by stopping the world.
//! - [`server_args`]: the command line of the HTTP examples (`http`, `axum`).

pub mod hello;
pub mod kv;
pub mod server_args;
pub mod stopper;
