//! The future a task cell actually runs: the user's future, wrapped.
//!
//! The wrapper does two things around every poll: it catches a panic so
//! that a panicking task fails its `JoinHandle` instead of taking a worker
//! down, and it holds the task's registry entry, removing it when the future
//! is dropped (on completion, abort or shutdown) so the registry only ever
//! names live tasks. Both fit in the one allocation async-task makes for the
//! cell.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::id::Id;
use super::join::JoinError;
use crate::scheduler::Shared;
use crate::sync::Arc;

pub(crate) struct TaskFuture<F> {
    future: F,
    registration: Option<Registration>,
    id: Id,
}

/// A registry entry, removed when dropped.
pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: Id,
}

impl Registration {
    pub(crate) fn new(shared: Arc<Shared>, id: Id) -> Registration {
        Registration { shared, id }
    }
}

impl Registration {
    /// The deterministic runtime's seed, to name in a panic report.
    fn seed(&self) -> Option<u64> {
        self.shared.det.as_ref().map(|d| d.seed())
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.registry.remove(self.id);
    }
}

impl<F> TaskFuture<F> {
    pub(crate) fn new(future: F, id: Id, registration: Option<Registration>) -> Self {
        TaskFuture {
            future,
            registration,
            id,
        }
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Result<F::Output, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `self` and `TaskFuture` has no `Drop` impl that could move it; the
        // other fields are never pinned, so handing out `&mut` to them is
        // fine. This is the projection pin-project would generate.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.future` stays where it is until dropped.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        let id = this.id;
        let out = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => {
                super::tokio_hint::after_panic(id, &*payload);
                let seed = this.registration.as_ref().and_then(|r| r.seed());
                if let Some(seed) = seed {
                    // The panic hook has printed the message; this line makes
                    // the failing run replayable from the log alone.
                    eprintln!(
                        "safepoint: task {id} panicked on the deterministic runtime with seed \
                         {seed}; replay with Builder::new_deterministic({seed})"
                    );
                }
                Err(JoinError::panic(id, payload).with_seed(seed))
            }
        };
        // The entry goes before the output is published, so a live-task
        // count taken after a join never counts this task.
        this.registration.take();
        Poll::Ready(out)
    }
}
