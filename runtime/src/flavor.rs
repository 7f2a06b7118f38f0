//! The runtime's flavour, chosen once when it is built, and the one place
//! that dispatches on it.
//!
//! Both flavours share the task cell, the registry, the driver and the
//! census; they differ in who polls tasks (worker threads, or the caller in
//! seeded rounds) and so in where a wake goes, how `block_on` waits and how
//! quiescence is reached. Each flavour owns its own version of those
//! (`crate::block_on` and `crate::deterministic::runner`); callers go
//! through the functions here instead of testing the flavour themselves.

use std::future::Future;
use std::panic::Location;

use crate::deterministic::{runner, Deterministic};
use crate::handle::Handle;
use crate::scheduler::{Shared, Task};
use crate::task::TaskMeta;

pub(crate) enum Flavor {
    /// Worker threads with work stealing.
    MultiThread,
    /// One caller-driven thread, seeded rounds, virtual time.
    Deterministic(Deterministic),
}

impl Flavor {
    /// The deterministic flavour's own state.
    pub(crate) fn deterministic(&self) -> Option<&Deterministic> {
        match self {
            Flavor::Deterministic(det) => Some(det),
            Flavor::MultiThread => None,
        }
    }

    /// The seed, for panic and deadlock reports that make a run replayable.
    pub(crate) fn seed(&self) -> Option<u64> {
        self.deterministic().map(Deterministic::seed)
    }

    /// Whether a thread of this flavour may wait in the driver for events
    /// from outside (the deterministic runner waits there for real I/O,
    /// blocking jobs and outside resumes; workers are woken by unpark):
    /// then those events must interrupt the driver.
    pub(crate) fn waits_in_driver(&self) -> bool {
        matches!(self, Flavor::Deterministic(_))
    }
}

/// Spawns a task cell whose wakes go where this flavour sends them: one
/// schedule function per flavour, chosen once per task, so the multi-thread
/// wake path carries no flavour test.
///
/// # Safety
///
/// As `async_task::Builder::spawn_unchecked`: `make` may borrow the task's
/// metadata (async-task keeps it alive as long as the future), nothing else.
pub(crate) unsafe fn spawn_cell<'a, Fut>(
    shared: &crate::sync::Arc<Shared>,
    meta: TaskMeta,
    make: impl FnOnce(&'a TaskMeta) -> Fut,
) -> (Task, async_task::Task<Fut::Output, TaskMeta>)
where
    Fut: Future + Send + 'a,
{
    let scheduler = crate::sync::Arc::clone(shared);
    let builder = async_task::Builder::new().metadata(meta);
    match shared.flavor {
        // SAFETY: forwarded to our caller (see `# Safety`); the schedule
        // functions are `Send + Sync + 'static` (they own an `Arc`), and the
        // future is `Send`.
        Flavor::Deterministic(_) => unsafe {
            builder.spawn_unchecked(make, move |runnable| runner::schedule(&scheduler, runnable))
        },
        // SAFETY: as above.
        Flavor::MultiThread => unsafe {
            builder.spawn_unchecked(
                make,
                async_task::WithInfo(move |runnable, info| scheduler.schedule(runnable, info)),
            )
        },
    }
}

/// The first scheduling of a new task: the deterministic flavour only
/// queues it (spawning runs nothing until the caller drives); the
/// multi-thread flavour queues it where the spawner runs.
pub(crate) fn schedule_spawned(shared: &Shared, runnable: Task) {
    match shared.flavor {
        Flavor::MultiThread => crate::task::schedule_spawned(shared, runnable),
        Flavor::Deterministic(_) => shared.injector.push(runnable),
    }
}

/// Runs `future` to completion on the calling thread.
pub(crate) fn block_on<F: Future>(
    handle: &Handle,
    future: F,
    location: &'static Location<'static>,
) -> F::Output {
    match handle.shared.flavor {
        Flavor::MultiThread => crate::block_on::block_on(handle, future, location),
        Flavor::Deterministic(_) => runner::block_on(handle, future, location),
    }
}

/// Returns once every task is blocked or finished.
pub(crate) fn run_until_blocked(shared: &crate::sync::Arc<Shared>) {
    match shared.flavor {
        Flavor::MultiThread => crate::safepoint::quiescence::wait_blocking(shared),
        Flavor::Deterministic(_) => {
            let _enter = crate::context::enter(&Handle::from_shared(shared.clone()));
            runner::run_until_blocked(shared)
        }
    }
}

/// A thread waiting for a stop of its own: whether it must drive rounds
/// itself. The deterministic flavour has no workers; when no `block_on` is
/// running elsewhere, the waiting thread runs a round (returning how many
/// tasks it polled), and repeats until the tasks reach their safepoints.
/// `None` if someone else drives: the workers, or a `block_on` elsewhere
/// (rounds never run on two threads at once).
pub(crate) fn drive_for_stop(shared: &crate::sync::Arc<Shared>) -> Option<usize> {
    match shared.flavor {
        Flavor::MultiThread => None,
        Flavor::Deterministic(_) if shared.census.block_on_count() == 0 => {
            let _enter = crate::context::enter(&Handle::from_shared(shared.clone()));
            Some(runner::step(shared))
        }
        Flavor::Deterministic(_) => None,
    }
}
