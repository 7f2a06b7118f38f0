//! Tasks: spawning, joining, ids, yielding, and waiting for quiescence.

pub(crate) mod cell;
mod id;
mod join;
pub(crate) mod registry;
mod spawn;
mod yield_now;

pub use crate::safepoint::quiescence::wait_all_blocked;
pub use id::Id;
pub(crate) use id::{TaskInfo, TaskMeta};
pub use join::{JoinError, JoinHandle};
pub use spawn::{id, spawn, spawn_blocking, Builder};
pub(crate) use spawn::{schedule_spawned, spawn_blocking_on, spawn_on};
pub use yield_now::yield_now;
