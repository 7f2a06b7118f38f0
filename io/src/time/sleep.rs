//! [`Sleep`]: a future that completes at a deadline.
//!
//! Registration is lazy: creating a `Sleep` only records the deadline (and a
//! clone of the current driver's handle); the first poll inserts it into the
//! wheel. So building a million sleeps that are never polled costs nothing in the
//! wheel, and a sleep created on one thread can be polled on another. Dropping a
//! `Sleep` cancels it (O(1) unlink). The type is `Unpin`: it holds only a handle,
//! a deadline and a wheel key.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use super::timers::Registered;
use super::Instant;
use crate::driver::{context, Handle};

/// Waits until `duration` has passed on the current driver's clock.
///
/// The deadline is rounded up to the driver's 1 ms tick, so the sleep never ends
/// early. Panics outside a runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{sleep, Instant};
///
/// // Inside the runtime this is `safepoint::time::sleep(..).await`.
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let start = Instant::now();
///     sleep(Duration::from_millis(10)).await;
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let handle = context::current();
    let deadline = handle.clock().now().far_add(duration);
    Sleep::new(handle, deadline)
}

/// Waits until `deadline` on the current driver's clock. Panics outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{sleep_until, Duration, Instant};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(10);
///     sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// });
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(context::current(), deadline)
}

/// The future of [`sleep()`] and [`sleep_until`].
///
/// # Examples
///
/// ```
/// use std::pin::pin;
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{sleep, Duration, Instant};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let mut s = pin!(sleep(Duration::from_secs(3600)));
///     // Pull the deadline in: the same timer now fires in 5 ms.
///     s.as_mut().reset(Instant::now() + Duration::from_millis(5));
///     s.as_mut().await;
///     assert!(s.is_elapsed());
/// });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct Sleep {
    handle: Handle,
    deadline: Instant,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unregistered,
    Registered(usize),
    Fired,
}

impl Sleep {
    #[track_caller]
    pub(crate) fn new(handle: Handle, deadline: Instant) -> Sleep {
        // Fail at creation, where the caller's location is useful, not at poll.
        let _ = handle.timers();
        Sleep {
            handle,
            deadline,
            state: State::Unregistered,
        }
    }

    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The current time of the clock this sleep is measured against.
    pub(crate) fn clock_now(&self) -> Instant {
        self.handle.clock().now()
    }

    /// Whether the deadline has passed (the timer fired, or the clock is past it).
    pub fn is_elapsed(&self) -> bool {
        self.state == State::Fired || self.handle.clock().now() >= self.deadline
    }

    /// Moves the deadline, re-arming a sleep that already completed. A registered
    /// sleep keeps its waker, so a task already waiting on it is woken at the new
    /// deadline without polling again.
    ///
    /// `Sleep` is `Unpin`: call it as `Pin::new(&mut sleep).reset(t)` or, on a
    /// pinned sleep, `sleep.as_mut().reset(t)` (tokio's shape).
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().reset_inner(deadline);
    }

    pub(crate) fn reset_inner(&mut self, deadline: Instant) {
        self.deadline = deadline;
        let State::Registered(key) = self.state else {
            self.state = State::Unregistered;
            return;
        };
        let timers = self.handle.timers();
        self.state = State::Unregistered;
        let Some(waker) = timers.remove(key) else {
            return;
        };
        match timers.register(deadline.into_std(), &waker) {
            Registered::Expired => {
                self.state = State::Fired;
                waker.wake();
            }
            Registered::Waiting { key, unpark } => {
                self.state = State::Registered(key);
                if unpark {
                    self.handle.unpark();
                }
            }
        }
    }

    pub(crate) fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.poll_deadline(cx));
        // Elapsed: a pending stop parks the task here first. The sleep stays
        // fired, so the poll after the resume completes at once.
        crate::gate::poll_proceed(cx)
    }

    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.state {
            State::Fired => Poll::Ready(()),
            State::Unregistered => {
                if self.handle.clock().now() >= self.deadline {
                    self.state = State::Fired;
                    return Poll::Ready(());
                }
                match self
                    .handle
                    .timers()
                    .register(self.deadline.into_std(), cx.waker())
                {
                    Registered::Expired => {
                        self.state = State::Fired;
                        Poll::Ready(())
                    }
                    Registered::Waiting { key, unpark } => {
                        self.state = State::Registered(key);
                        if unpark {
                            self.handle.unpark();
                        }
                        Poll::Pending
                    }
                }
            }
            State::Registered(key) => {
                let timers = self.handle.timers();
                if timers.poll(key, cx.waker()) {
                    // Free the wheel entry now rather than at drop.
                    timers.remove(key);
                    self.state = State::Fired;
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().poll_sleep(cx)
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let State::Registered(key) = self.state {
            self.handle.timers().remove(key);
        }
    }
}
