//! The connections [`serve`](super::serve) has open, and how its shutdown
//! reaches them: told to finish (graceful), then closed (the deadline, or the
//! server's future dropped).
//!
//! hyper-util's `GracefulShutdown` and a `futures` `Shared` close signal do
//! the same job, and this file replaced them because of what they cost per
//! poll, not per connection. Both keep their waiters in one list behind one
//! mutex for the whole server (tokio's `watch`/`Notify` waiter list, the
//! `Shared` waker slab), and every poll of every connection task registers
//! its waker there. On a busy server that is a lock per request shared by
//! all workers, and its cache line moves between their cores: the HTTP
//! bench measured the server at 8-12 % more CPU per request than the same
//! hyper connection spawned bare, and this file brings it level.
//!
//! Here each connection has its own [`Signal`] (a state and an
//! `AtomicWaker`), registered in the server's list once, when it is
//! accepted, and taken out once, when its task ends. A poll registers its
//! waker only when the waker changed or a signal consumed the
//! registration, which for a spawned task is the first poll and after each
//! signal. Shutdown walks the list, raises each state and wakes each task.
//!
//! A poll whose waker is registered and that has seen no signal reads only
//! the server-wide `raised` state, on a cache line of its own that nothing
//! but shutdown writes, so it stays in every core's cache. Reading the
//! connection's own state instead cost a cache miss on most requests (the
//! signal is a small allocation of its own, and connection tasks move
//! between workers): about 40 ns a request in the HTTP bench.
//!
//! Orderings: a signal raises the state (`fetch_max`, release) before it
//! wakes, and a poll loads the state (acquire) before it registers and
//! again after registering, so a signal raised between the two is either
//! seen by the second load or finds the new waker to wake (the
//! `AtomicWaker` contract). Shutdown raises `raised` before any
//! connection's state: a poll that reads `raised` unraised has its current
//! waker registered, so a signal raised after that load wakes the task,
//! and its next poll (which the wake orders after the raise) reads it. The
//! list itself is behind a mutex: it changes once per connection, and the
//! drained check reads it under the same lock.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use futures::task::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use slab::Slab;

/// A connection serves until shutdown (the initial state).
const SERVING: u8 = 0;
/// The connection was told to finish what is in flight and close.
const FINISHING: u8 = 1;
/// The connection is closed now, whatever is in flight.
const CLOSING: u8 = 2;

/// The open connections of one server.
#[derive(Clone)]
pub(crate) struct Tracker {
    shared: Arc<Shared>,
}

struct Shared {
    /// The highest state shutdown has raised on this server (`SERVING`
    /// until it starts): what a poll reads first (see the module docs).
    raised: Raised,
    /// Every tracked connection's signal, keyed by its slot.
    open: Mutex<Slab<Arc<Signal>>>,
    /// The server's task, waiting for `open` to empty.
    drained: AtomicWaker,
    /// Connections ended by `CLOSING` rather than by their own end.
    closed: AtomicUsize,
}

/// The server-wide state, alone on its cache lines: the list's mutex and
/// counters beside it change with every connection, and every poll of every
/// connection reads this.
#[repr(align(128))]
struct Raised(AtomicU8);

/// What shutdown tells one connection.
struct Signal {
    /// `SERVING`, `FINISHING` or `CLOSING`; only ever raised.
    state: AtomicU8,
    /// The connection's task, to wake when `state` is raised.
    waker: AtomicWaker,
}

impl Tracker {
    pub(crate) fn new() -> Tracker {
        Tracker {
            shared: Arc::new(Shared {
                raised: Raised(AtomicU8::new(SERVING)),
                open: Mutex::new(Slab::new()),
                drained: AtomicWaker::new(),
                closed: AtomicUsize::new(0),
            }),
        }
    }

    /// Tracks `conn` from now: the returned future serves it until it ends,
    /// calls its `graceful_shutdown` when [`finish_all`](Tracker::finish_all)
    /// runs, and drops it (closing it) when [`close_all`](Tracker::close_all)
    /// runs.
    pub(crate) fn track<C: GracefulConnection>(&self, conn: C) -> impl Future<Output = ()> {
        let signal = Arc::new(Signal {
            state: AtomicU8::new(SERVING),
            waker: AtomicWaker::new(),
        });
        let key = self.shared.lock().insert(signal.clone());
        let entry = Entry {
            shared: self.shared.clone(),
            key,
        };
        async move {
            // Dropped with this future, however it ends: the slot leaves
            // the list even if the task is aborted or the runtime drops it.
            let entry = entry;
            let mut conn = pin!(conn);
            // The waker last given to `signal.waker` while no signal has
            // been seen since (a signal's wake consumes the registration).
            let mut registered: Option<Waker> = None;
            let mut seen = SERVING;
            poll_fn(|cx| {
                // Nothing raised on the server, nothing seen, and the task's
                // waker is the one registered: nothing to do but serve.
                let quiet = seen == SERVING
                    && entry.shared.raised.0.load(Ordering::Acquire) == SERVING
                    && registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
                if quiet {
                    return conn.as_mut().poll(cx).map(|_| ());
                }
                let mut state = signal.state.load(Ordering::Acquire);
                loop {
                    if state == CLOSING {
                        entry.shared.closed.fetch_add(1, Ordering::Relaxed);
                        return Poll::Ready(());
                    }
                    if state != seen {
                        // FINISHING, seen for the first time: the wake
                        // that brought it took the registration.
                        seen = state;
                        registered = None;
                        conn.as_mut().graceful_shutdown();
                    }
                    if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        break;
                    }
                    signal.waker.register(cx.waker());
                    registered = Some(cx.waker().clone());
                    // A signal raised before the registration woke the old
                    // waker, or none: look again now that it would find us.
                    let now = signal.state.load(Ordering::Acquire);
                    if now == state {
                        break;
                    }
                    state = now;
                }
                // A connection error is the client's doing (reset,
                // malformed request, a timeout hyper enforced); hyper has
                // already answered what could be answered, and the
                // connection is over either way.
                conn.as_mut().poll(cx).map(|_| ())
            })
            .await
        }
    }

    /// Connections open now.
    pub(crate) fn count(&self) -> usize {
        self.shared.lock().len()
    }

    /// Tells every open connection to finish what is in flight and close
    /// (HTTP/1 ends keep-alive after the response in flight, HTTP/2 sends
    /// GOAWAY).
    pub(crate) fn finish_all(&self) {
        self.raise_all(FINISHING);
    }

    /// Closes every open connection now.
    pub(crate) fn close_all(&self) {
        self.raise_all(CLOSING);
    }

    /// Connections that [`close_all`](Tracker::close_all) ended.
    pub(crate) fn closed(&self) -> usize {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Waits until no connection is open.
    pub(crate) async fn drained(&self) {
        poll_fn(|cx| {
            // Registered before the check: a connection that ends after
            // it wakes this waker (`Entry::drop` checks under the lock).
            self.shared.drained.register(cx.waker());
            if self.shared.lock().is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    fn raise_all(&self, state: u8) {
        // Before any connection's state: see the module docs.
        self.shared.raised.0.fetch_max(state, Ordering::Release);
        // The signals are cloned out so that no task is woken under the
        // lock (a wake can run the task inline on some executors, and it
        // would take the lock again when it ends).
        let signals: Vec<Arc<Signal>> = self.shared.lock().iter().map(|(_, s)| s.clone()).collect();
        for signal in signals {
            // Release: the task that loads the raised state (acquire) and
            // acts on it was told by this call, not by a stale value.
            if signal.state.fetch_max(state, Ordering::Release) < state {
                signal.waker.wake();
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slab<Arc<Signal>>> {
        // The list stays consistent across a panic (a single insert or
        // remove), so a poisoned lock is used as it is.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's slot in the list, freed when its future is dropped.
struct Entry {
    shared: Arc<Shared>,
    key: usize,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let empty = {
            let mut open = self.shared.lock();
            open.remove(self.key);
            open.is_empty()
        };
        if empty {
            self.shared.drained.wake();
        }
    }
}

/// Closes every connection of a server when dropped: held by the server's
/// future, so that dropping it ends the connections it accepted.
pub(crate) struct CloseOnDrop(pub(crate) Tracker);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close_all();
    }
}
