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
            None => {
                let mut guard = self.lock.lock();
                if self
                    .state
                    .compare_exchange(EMPTY, PARKED_CONDVAR, SeqCst, SeqCst)
                    .is_err()
                {
                    self.state.store(EMPTY, SeqCst);
                    return;
                }
                loop {
                    wait(&self.cvar, &mut guard);
                    if self
                        .state
                        .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                        .is_ok()
                    {
                        return;
                    }
                }
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
pub(crate) struct ThreadParker {
    notified: Mutex<bool>,
    cvar: Condvar,
}

impl ThreadParker {
    pub(crate) fn new() -> ThreadParker {
        ThreadParker {
            notified: Mutex::new(false),
            cvar: Condvar::new(),
        }
    }

    /// Blocks until woken (a wake before the park is remembered).
    pub(crate) fn park(&self) {
        let mut notified = self.notified.lock();
        while !*notified {
            wait(&self.cvar, &mut notified);
        }
        *notified = false;
    }

    /// Blocks until woken or `dur` passes. Returns whether it was woken.
    pub(crate) fn park_timeout(&self, dur: Duration) -> bool {
        let mut notified = self.notified.lock();
        if !*notified {
            crate::sync::wait_for(&self.cvar, &mut notified, dur);
        }
        std::mem::replace(&mut *notified, false)
    }

    pub(crate) fn unpark(&self) {
        *self.notified.lock() = true;
        self.cvar.notify_one();
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
