//! The multi-thread work-stealing scheduler.
//!
//! - `shared`: what all workers share, and the wake path (`schedule`).
//! - `worker`: a worker's run loop, queues and parking.
//! - `park`: how a worker (or an outside thread) sleeps and is woken.
//! - `loom_reactor` (loom builds only): the driver's stand-in for the models.

#[cfg(loom)]
pub(crate) mod loom_reactor;
pub(crate) mod park;
pub(crate) mod shared;
pub(crate) mod worker;

pub(crate) use shared::{Config, Shared, Task};
pub(crate) use worker::WorkerLocal;
