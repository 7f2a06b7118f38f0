//! `Parker`: how one worker sleeps, on the I/O driver or on a condvar.
//!
//! The shape is tokio's: a parked worker first tries to take the driver; the
//! one that gets it blocks in `epoll_wait` (bounded by the next timer), the
//! others wait on their own condvar. An unpark therefore has to know where
//! its target sleeps: the state word says EMPTY, PARKED_CONDVAR,
//! PARKED_DRIVER or NOTIFIED, and `unpark` swaps in NOTIFIED and then wakes
//! the condvar or interrupts the driver. A notification that arrives before
//! the park is remembered, so an unpark is never lost to a race with the
//! sleeper getting ready.

use std::time::Duration;

use crate::sync::{wait, AtomicUsize, Condvar, Mutex, Ordering::SeqCst};

const EMPTY: usize = 0;
const PARKED_CONDVAR: usize = 1;
const PARKED_DRIVER: usize = 2;
const NOTIFIED: usize = 3;

pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

/// Something a parker can block in instead of its condvar.
pub(crate) trait Turn {
    /// Blocks until I/O, a timer, or `interrupt`.
    fn turn(&mut self);
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
    }

    /// Sleeps until `unpark` (or a spurious wake-up: callers re-check their
    /// condition). With `driver`, sleeps inside it instead of the condvar.
    pub(crate) fn park(&self, driver: Option<&mut dyn Turn>) {
        // Consume a notification that arrived early. SeqCst throughout: the
        // state is small and parking is the slow path.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        match driver {
            Some(driver) => {
                if self
                    .state
                    .compare_exchange(EMPTY, PARKED_DRIVER, SeqCst, SeqCst)
                    .is_err()
                {
                    // Notified in between.
                    self.state.store(EMPTY, SeqCst);
                    return;
                }
                driver.turn();
                // Whatever happened (event, timer, unpark), we are awake. A
                // swap (an RMW), not a store: it reads the unparker's
                // NOTIFIED, so whatever the unparker wrote before (the
                // sleeper list, the `parked` flag) is visible to us after.
                self.state.swap(EMPTY, SeqCst);
            }
            None => self.park_condvar(None),
        }
    }

    /// Sleeps on the condvar until `unpark`, `timeout`, or a spurious
    /// wake-up.
    fn park_condvar(&self, timeout: Option<Duration>) {
        let mut guard = self.lock.lock();
        if self
            .state
            .compare_exchange(EMPTY, PARKED_CONDVAR, SeqCst, SeqCst)
            .is_err()
        {
            // Notified in between.
            self.state.store(EMPTY, SeqCst);
            return;
        }
        match timeout {
            None => loop {
                wait(&self.cvar, &mut guard);
                if self
                    .state
                    .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                    .is_ok()
                {
                    return;
                }
            },
            Some(timeout) => {
                crate::sync::wait_for(&self.cvar, &mut guard, timeout);
                // Notified or not, no longer parked.
                self.state.swap(EMPTY, SeqCst);
            }
        }
    }

    /// Wakes the parker; `interrupt_driver` is called if it sleeps in the
    /// driver.
    pub(crate) fn unpark(&self, interrupt_driver: impl FnOnce()) {
        match self.state.swap(NOTIFIED, SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED_CONDVAR => {
                // Taking the lock orders this notify after the sleeper's
                // state change and before its wait: it cannot be missed.
                drop(self.lock.lock());
                self.cvar.notify_one();
            }
            PARKED_DRIVER => interrupt_driver(),
            actual => unreachable!("parker state {actual}"),
        }
    }
}

/// A one-shot thread parker for threads outside the workers (`block_on`,
/// blocking stop requests, `run_until_blocked`), usable as a `Waker`.
///
/// A [`Parker`] that never sleeps in the driver: an unpark while the thread
/// is awake (the common case for `block_on`, whose future is often woken
/// while it is still being polled) is one atomic swap, no lock and no
/// condvar notify (tokio's `ParkThread` is built the same way).
pub(crate) struct ThreadParker(Parker);

impl ThreadParker {
    pub(crate) fn new() -> ThreadParker {
        ThreadParker(Parker::new())
    }

    /// Blocks until woken (a wake before the park is remembered).
    pub(crate) fn park(&self) {
        // On the condvar, `Parker::park` returns only once notified.
        self.0.park(None);
    }

    /// Blocks until woken or `dur` passes (or spuriously: callers re-check).
    pub(crate) fn park_timeout(&self, dur: Duration) {
        if self
            .0
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        self.0.park_condvar(Some(dur));
    }

    pub(crate) fn unpark(&self) {
        self.0
            .unpark(|| unreachable!("a thread parker never sleeps in the driver"));
    }
}

impl std::task::Wake for ThreadParker {
    fn wake(self: std::sync::Arc<Self>) {
        self.unpark();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.unpark();
    }
}
