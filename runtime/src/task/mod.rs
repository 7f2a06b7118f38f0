//! Tasks: spawning, joining, ids, yielding, and waiting for quiescence;
//! sets of tasks ([`JoinSet`]) and `!Send` tasks ([`LocalSet`],
//! [`spawn_local`]).
//!
//! Local tasks run inside the poll of whatever drives their `LocalSet`
//! (usually the `block_on` future), so for stops of the world and
//! quiescence they count as part of that task: while every local task is
//! blocked (or parked at `safepoint().await`) the driver is blocked and the
//! world can stop; while one runs, the driver is running.

mod abort_handle;
pub(crate) mod cell;
mod id;
mod join;
mod join_set;
mod local;
pub(crate) mod registry;
mod spawn;
mod tokio_hint;
mod yield_now;

pub use crate::safepoint::quiescence::wait_all_blocked;
pub use abort_handle::AbortHandle;
pub use id::Id;
pub(crate) use id::{TaskInfo, TaskMeta};
pub use join::{JoinError, JoinHandle};
pub use join_set::JoinSet;
pub use local::{spawn_local, LocalSet};
pub use spawn::{id, spawn, spawn_blocking, Builder};
pub(crate) use spawn::{schedule_spawned, spawn_blocking_on, spawn_on};
pub use yield_now::yield_now;
