//! [`Driver`]: the owned half of the driver, the one that blocks.
//!
//! It holds the mio `Poll` and its event buffer, which only one thread may use
//! at a time; everything else is in the shared [`Handle`]. The runtime keeps the
//! `Driver` in a mutex and whichever thread gets it turns it, so turning moves
//! between threads over time but never happens twice at once (`&mut self`).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use mio::{Events, Poll};

use super::handle::Inner;
use super::registration::{generation_matches, split_token, SIGNAL_TOKEN, WAKER_TOKEN};
use super::scheduled_io::{
    ScheduledIo, ERROR, READABLE, READ_CLOSED, SHUTDOWN, WRITABLE, WRITE_CLOSED,
};
use super::{Config, Handle};

/// Events taken from the OS per `poll` call.
const EVENTS_CAPACITY: usize = 1024;

/// The reactor, timer wheel and signal source, turned by one thread at a time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use safepoint_io::driver::{Config, Driver};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// // Nothing registered: a non-blocking turn wakes nobody.
/// assert_eq!(driver.turn(Some(Duration::ZERO)), 0);
/// // An unpark makes the next turn return at once.
/// driver.handle().unpark();
/// assert_eq!(driver.turn(None), 0);
/// ```
pub struct Driver {
    poll: Poll,
    events: Events,
    handle: Handle,
    /// Reused buffers, so a turn allocates nothing in the steady state.
    ready: Vec<(Arc<ScheduledIo>, usize)>,
    wakers: Vec<Waker>,
}

impl Driver {
    /// Creates a driver: a mio `Poll` with a `Waker` registered in it. The signal
    /// source is registered later, on the first `signal()` call.
    pub fn new(config: Config) -> io::Result<Driver> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let registry = poll.registry().try_clone()?;
        let handle = Handle {
            inner: Arc::new(Inner::new(registry, waker, &config)),
        };
        Ok(Driver {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            handle,
            ready: Vec::new(),
            wakers: Vec::new(),
        })
    }

    /// A handle to this driver.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Blocks until an I/O event, the next timer deadline or [`Handle::unpark`],
    /// then wakes the tasks of ready registrations and expired timers. Returns
    /// the number of wakers woken.
    ///
    /// `None` waits with no limit but the next timer; `Some(Duration::ZERO)`
    /// polls without blocking. With a virtual clock the turn never sleeps for a
    /// timer (the caller moves the clock): it polls I/O for `timeout` and fires
    /// the timers due at `clock.now()`.
    pub fn turn(&mut self, timeout: Option<Duration>) -> usize {
        let inner = Arc::clone(&self.handle.inner);
        let mut timeout = timeout;
        // A turn that does not block (a busy worker's periodic poll) needs no
        // timeout from the wheels, and no turn to interrupt: it skips them.
        let real_timers = inner
            .timers
            .as_ref()
            .filter(|_| !inner.clock.is_virtual() && timeout != Some(Duration::ZERO));
        if let Some(timers) = real_timers {
            if let Some(t) = timers.park_timeout(inner.clock.now_std()) {
                timeout = Some(timeout.map_or(t, |u| u.min(t)));
            }
        }
        if inner.begin_poll() {
            timeout = Some(Duration::ZERO);
        }
        let res = self.poll.poll(&mut self.events, timeout);
        inner.end_poll();
        if let Some(timers) = real_timers {
            timers.unparked();
        }
        match res {
            Ok(()) => {}
            // A signal landed on this thread mid-poll: simply a short turn.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("the safepoint I/O driver failed to poll: {e}"),
        }

        let mut signalled = false;
        {
            let ios = inner.ios.lock();
            for event in self.events.iter() {
                match event.token() {
                    WAKER_TOKEN => {}
                    SIGNAL_TOKEN => signalled = true,
                    token => {
                        let (key, generation) = split_token(token);
                        // A stale token (its registration was dropped, maybe the
                        // slot reused) fails the generation check and is ignored.
                        let Some(io) = ios.get(key).filter(|io| generation_matches(io, generation))
                        else {
                            continue;
                        };
                        let mut ready = 0;
                        if event.is_readable() {
                            ready |= READABLE;
                        }
                        if event.is_writable() {
                            ready |= WRITABLE;
                        }
                        if event.is_read_closed() {
                            ready |= READ_CLOSED;
                        }
                        if event.is_write_closed() {
                            ready |= WRITE_CLOSED;
                        }
                        if event.is_error() {
                            ready |= ERROR;
                        }
                        self.ready.push((Arc::clone(io), ready));
                    }
                }
            }
        }
        // Readiness and wakers are handled outside the slab lock, so sockets
        // being created or dropped on other threads do not wait on this.
        for (io, ready) in self.ready.drain(..) {
            io.set_readiness(ready, &mut self.wakers, inner.io_waiters());
        }
        if signalled {
            inner.signals.dispatch(&mut self.wakers);
        }
        let mut woken = self.wakers.len();
        for w in self.wakers.drain(..) {
            w.wake();
        }
        if let Some(timers) = &inner.timers {
            woken += timers.process(inner.clock.now_std(), &mut self.wakers);
        }
        woken
    }
}

impl Drop for Driver {
    /// Shuts the reactor down: every registration becomes "ready" with an error,
    /// so tasks waiting on sockets wake up and see `the driver has shut down`
    /// instead of hanging. Timers are left as they are (their tasks are being
    /// dropped by the runtime anyway).
    fn drop(&mut self) {
        let inner = &self.handle.inner;
        inner.shutdown.store(true, Ordering::Release);
        let all: Vec<_> = inner.ios.lock().iter().map(|(_, io)| io.clone()).collect();
        for io in all {
            io.set_readiness(SHUTDOWN, &mut self.wakers, inner.io_waiters());
        }
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("handle", &self.handle)
            .finish()
    }
}
