//! A reactor for the loom models, in place of the mio driver.
//!
//! Loom cannot run `epoll_wait`, so under `--cfg loom` a runtime has no
//! driver; but the path where a *parked* worker turns the driver, and the
//! turn wakes tasks into that worker's own queue while the world may be
//! stopping, is part of the protocol (points 3 and 12) and must be modelled.
//! This stand-in has the driver's shape as the worker sees it: a parked
//! worker that gets it blocks in [`Reactor::turn`] until an event or an
//! interrupt, and the wakes of the events it delivers go to that worker's
//! queue (the worker marks itself `in_driver`, as for the real driver). A
//! model fires events from its own threads with [`Reactor::fire`] and makes
//! futures wait for them with [`Reactor::wait`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{wait, Arc, AtomicBool, Condvar, Mutex, Ordering::SeqCst};

/// The model's reactor. One per runtime, shared by its workers; only one
/// worker turns it at a time ([`Reactor::try_take`]).
#[doc(hidden)]
pub struct Reactor {
    state: Mutex<State>,
    cvar: Condvar,
    /// Set by the worker turning the reactor. An atomic, not a mutex held
    /// across the turn: loom 0.7 marks a thread whose pending `try_lock`
    /// meets another thread's acquisition as blocked until the release
    /// (`rt/mutex.rs`, `post_acquire`), which would report a deadlock the
    /// real driver's `try_lock` cannot have.
    turning: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Events fired and not yet delivered, by event id.
    fired: Vec<usize>,
    /// Tasks waiting for an event: (event id, waker).
    waiting: Vec<(usize, Waker)>,
    /// Events delivered so far.
    delivered: Vec<usize>,
    interrupted: bool,
}

impl Reactor {
    pub(crate) fn new() -> Reactor {
        Reactor {
            state: Mutex::new(State::default()),
            cvar: Condvar::new(),
            turning: AtomicBool::new(false),
        }
    }

    /// Takes the reactor for a turn, unless another worker has it.
    pub(crate) fn try_take(&self) -> Option<Taken<'_>> {
        self.turning
            .compare_exchange(false, true, SeqCst, SeqCst)
            .ok()
            .map(|_| Taken(self))
    }

    /// Fires event `id`: the worker turning the reactor delivers it.
    pub fn fire(&self, id: usize) {
        self.state.lock().fired.push(id);
        self.cvar.notify_one();
    }

    /// Interrupts a turn (the driver's `unpark`).
    pub(crate) fn interrupt(&self) {
        self.state.lock().interrupted = true;
        self.cvar.notify_one();
    }

    /// Blocks until an event or an interrupt, then delivers the events: the
    /// tasks waiting for them are woken on this thread.
    pub(crate) fn turn(&self) {
        let wakers = {
            let mut st = self.state.lock();
            while st.fired.is_empty() && !st.interrupted {
                wait(&self.cvar, &mut st);
            }
            st.interrupted = false;
            let fired = std::mem::take(&mut st.fired);
            let mut wakers = Vec::new();
            for id in fired {
                st.delivered.push(id);
                let (ready, rest): (Vec<_>, Vec<_>) =
                    st.waiting.drain(..).partition(|(e, _)| *e == id);
                st.waiting = rest;
                wakers.extend(ready.into_iter().map(|(_, w)| w));
            }
            wakers
        };
        for w in wakers {
            w.wake();
        }
    }

    /// A future that completes once event `id` has been delivered by a
    /// turn.
    pub fn wait(this: &Arc<Self>, id: usize) -> Wait {
        Wait {
            reactor: this.clone(),
            id,
        }
    }
}

/// The reactor, taken for a turn; given back when dropped.
pub(crate) struct Taken<'a>(&'a Reactor);

impl Taken<'_> {
    pub(crate) fn turn(&self) {
        self.0.turn();
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.0.turning.store(false, SeqCst);
    }
}

/// The future of [`Reactor::wait`].
#[doc(hidden)]
pub struct Wait {
    reactor: Arc<Reactor>,
    id: usize,
}

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.reactor.state.lock();
        if st.delivered.contains(&self.id) {
            drop(st);
            // As every runtime resource: a pending stop parks the task
            // before it completes (protocol point 10); the event stays
            // delivered for the poll after the release.
            return crate::safepoint::gate::poll_proceed(cx);
        }
        st.waiting.push((self.id, cx.waker().clone()));
        Poll::Pending
    }
}
