//! The future a task cell actually runs: the user's future, wrapped.
//!
//! The wrapper does three things (protocol point 14):
//!
//! - it catches a panic in `poll`, so a panicking task fails its
//!   `JoinHandle` instead of taking a worker down. As in tokio, the future is
//!   dropped *during* that unwind, so its destructor sees
//!   `std::thread::panicking()`;
//! - it drops the future itself, inside `catch_unwind`, as soon as the
//!   future completes, and again (if still there) when the cell drops it
//!   after an abort or at shutdown. async-task drops a future inside an
//!   abort-on-panic guard, so a destructor that panics there would take the
//!   whole process down; here it fails the `JoinHandle` (or, with nobody
//!   to tell, is reported by the panic hook only);
//! - it holds the task's registration: it enters the task in the registry
//!   the first time a poll returns `Pending` (see `task::registry`) and
//!   removes it when the future is done, so the registry names every
//!   blocked task and only live ones.
//!
//! All of it fits in the one allocation async-task makes for the cell. The
//! wrapper borrows the cell's own metadata (async-task keeps the metadata
//! alive as long as the future: `Builder::spawn_unchecked`), where an
//! aborting `JoinHandle` leaves a place for a destructor's panic.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::id::{Id, TaskMeta};
use super::join::JoinError;
use crate::scheduler::Shared;
use crate::sync::Arc;

pin_project_lite::pin_project! {
    pub(crate) struct TaskFuture<'a, F> {
        // `None` once the future has been dropped.
        #[pin]
        future: Option<F>,
        id: Id,
        // The cell's own metadata, where an aborting handle leaves a place
        // for a destructor's panic. `None` for `LocalSet` tasks, which go
        // through async-task's `spawn_local` (its thread check wants a
        // `'static` future): an aborted local task whose destructor panics
        // reports cancelled (the panic is still contained).
        meta: Option<&'a TaskMeta>,
        registration: Option<Registration>,
    }

    impl<'a, F> PinnedDrop for TaskFuture<'a, F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.future.is_none() {
                return;
            }
            // Dropped before completing: aborted, or at shutdown.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| this.future.set(None))) {
                let sink = this.meta.and_then(|meta| meta.abort_sink.lock().clone());
                if let Some(sink) = sink {
                    *sink.lock() = Some(payload);
                }
            }
        }
    }
}

/// A task's place in the registry: counted as not registered until
/// `register` enters it (or from the start, for a task the spawner
/// registers itself); removed, or uncounted, when dropped.
pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: Id,
    registered: bool,
}

impl Registration {
    /// A task that registers at its first `Pending`.
    pub(crate) fn new(shared: Arc<Shared>, id: Id) -> Registration {
        shared.registry.count_unregistered(&shared);
        Registration {
            shared,
            id,
            registered: false,
        }
    }

    /// A task its spawner enters in the registry right after creating it
    /// (a named task, so reports name it from its first poll).
    pub(crate) fn new_registered_by_spawner(shared: Arc<Shared>, id: Id) -> Registration {
        Registration {
            shared,
            id,
            registered: true,
        }
    }

    /// Enters the task in the registry if it is not there yet. Called
    /// inside the task's poll, before it returns `Pending`: no wake can run
    /// the task elsewhere (and finish it, removing an entry not yet made)
    /// before the entry exists.
    ///
    /// A first poll that outlives a `shutdown_timeout` registers after
    /// shutdown walked the registry, and nobody would wake the task again:
    /// if shutdown has begun, the task wakes itself, so that this worker
    /// requeues it (a wake from inside its own poll) and drops it with its
    /// queues when it exits. The check comes after the insert, under whose
    /// shard lock it is ordered: a walk that missed the entry took that
    /// lock first, after the shutdown flag was set.
    fn register(&mut self, meta: &TaskMeta, waker: &Waker) {
        if !self.registered {
            self.registered = true;
            let registry = &self.shared.registry;
            registry.insert(meta.info(), waker.clone());
            registry.uncount_unregistered(&self.shared);
            if self.shared.is_shutdown() {
                waker.wake_by_ref();
            }
        }
    }

    /// The deterministic runtime's seed, to name in a panic report.
    fn seed(&self) -> Option<u64> {
        self.shared.flavor.seed()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.registered {
            // A spawner-registered task refused at shutdown has no entry:
            // removing an absent id is a no-op.
            self.shared.registry.remove(self.id);
        } else {
            self.shared.registry.uncount_unregistered(&self.shared);
        }
    }
}

impl<'a, F> TaskFuture<'a, F> {
    pub(crate) fn new(
        future: F,
        id: Id,
        meta: Option<&'a TaskMeta>,
        registration: Option<Registration>,
    ) -> Self {
        TaskFuture {
            future: Some(future),
            id,
            meta,
            registration,
        }
    }
}

/// Drops the future if its poll unwinds, while the panic is in flight.
struct DropOnUnwind<'p, F>(Pin<&'p mut Option<F>>);

impl<F> Drop for DropOnUnwind<'_, F> {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

/// A task's output, whose destructor cannot take the process down.
/// async-task drops an output nobody takes (the task was detached, or an
/// abort raced its completion) inside its abort-on-panic guard; a panic in
/// that destructor is caught here instead (protocol point 14).
pub(crate) struct Contained<T>(Option<T>);

impl<T> Contained<T> {
    fn new(value: T) -> Contained<T> {
        Contained(Some(value))
    }

    pub(crate) fn into_inner(mut self) -> T {
        self.0.take().expect("a task output taken twice")
    }
}

impl<T> Drop for Contained<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
        }
    }
}

impl<F: Future> Future for TaskFuture<'_, F> {
    type Output = Contained<Result<F::Output, JoinError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let id = *this.id;
        let polled = catch_unwind(AssertUnwindSafe(|| {
            let mut guard = DropOnUnwind(this.future.as_mut());
            let poll = guard
                .0
                .as_mut()
                .as_pin_mut()
                .expect("a task's future polled after it completed")
                .poll(cx);
            std::mem::forget(guard);
            poll
        }));
        let out = match polled {
            Ok(Poll::Pending) => {
                if let (Some(registration), Some(meta)) = (this.registration.as_mut(), *this.meta) {
                    registration.register(meta, cx.waker());
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(value)) => {
                match catch_unwind(AssertUnwindSafe(|| this.future.set(None))) {
                    Ok(()) => Ok(value),
                    Err(payload) => {
                        // The output's own destructor is the user's too.
                        let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
                        Err(JoinError::panic(id, payload))
                    }
                }
            }
            Err(payload) => {
                super::tokio_hint::after_panic(id, &*payload);
                let seed = this.registration.as_ref().and_then(|r| r.seed());
                if let Some(seed) = seed {
                    // The panic hook has printed the message; this line makes
                    // the failing run replayable from the log alone. Not
                    // `eprintln!`: it panics if stderr is closed, and nothing
                    // here may unwind into async-task.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
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
        Poll::Ready(Contained::new(out))
    }
}
