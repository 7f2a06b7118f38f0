//! `spawn_blocking` and the pool that runs it.

mod pool;

pub(crate) use pool::{spawn_thread, BlockingPool};
