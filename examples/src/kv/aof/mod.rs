//! The append-only log: every acknowledged write, on disk between
//! checkpoints (`--appendonly yes`).
//!
//! - [`record`]: the record format (framed, checksummed write effects).
//! - [`log`]: the shared log, its writer thread, group commit and the cut
//!   at each checkpoint's stop.
//! - [`replay`]: reading the logs back at start, cutting a torn last record.
//!
//! Why it is shaped so (the whole picture; each file says the details):
//! - What is logged is a write's *effect* (the value an INCR produced, the
//!   absolute expiry a `SET EX` computed), appended while the command holds
//!   its shard lock, so the log's order is the store's order for every key
//!   and replay needs no clock and no parsing.
//! - The log is a series of generation files, `appendonly-<gen>.kv`. A
//!   checkpoint's stop is the exact cut: while the world is stopped no
//!   command is half-applied, so every record appended before the cut is in
//!   the captured store and none after it is. The stop starts a new
//!   generation; the snapshot records that generation; once the snapshot is
//!   durable, older generations are deleted. A crash at any point leaves a
//!   snapshot and the generations from its own onwards, which replay in
//!   order.
//! - One writer thread writes and fsyncs batches (group commit): with
//!   `--appendfsync always` a connection sends its replies only once the
//!   batch holding its writes is fsynced, and every connection waiting meanwhile
//!   shares the next fsync, so clients are not serialised behind one
//!   another's fsyncs.

pub mod log;
pub mod record;
pub mod replay;

pub use log::{AppendLog, Fsync};
