//! `safepoint-kv`: a Redis-compatible (RESP2) key-value server that takes
//! consistent checkpoints by stopping the world.
//!
//! - [`resp`]: the wire protocol (request parser, reply encoder).
//! - [`store`]: the sharded, structurally shared key space.
//! - [`snapshot`]: the `dump.kv` file format, durable writes, checked loads.
//! - [`config`]: command-line flags.
//! - [`commands`]: what each command does to the store.
//! - [`stats`]: latency histogram and checkpoint figures.

pub mod commands;
pub mod config;
pub mod resp;
pub mod snapshot;
pub mod stats;
pub mod store;
