//! [`SafepointTimer`]: hyper's `rt::Timer` on `safepoint::time`.
//!
//! hyper uses it for header-read timeouts and HTTP/2 keep-alive pings. Its
//! `now()` is the runtime's clock, so under the deterministic flavour hyper's
//! deadlines are virtual like every other timer; `reset` moves a sleep in
//! place instead of allocating a new one (hyper resets its keep-alive timer
//! on every frame).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use safepoint::time::Sleep;

/// hyper's timer on `safepoint::time`.
///
/// Its sleeps are created on the runtime of the thread that asks for them,
/// so hyper must use it from inside a runtime (as it does: from connection
/// tasks); outside one, `sleep` panics naming `Runtime::block_on`.
///
/// # Examples
///
/// ```
/// use safepoint_hyper::{SafepointExecutor, SafepointTimer};
/// use hyper_util::server::conn::auto;
///
/// let rt = safepoint::Runtime::new()?;
/// let mut builder = auto::Builder::new(SafepointExecutor::with_handle(rt.handle().clone()));
/// builder.http1().timer(SafepointTimer::new());
/// builder.http2().timer(SafepointTimer::new());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SafepointTimer;

impl SafepointTimer {
    /// The timer (it has no state: each sleep uses the runtime it is polled
    /// on).
    ///
    /// # Examples
    ///
    /// ```
    /// use hyper::rt::Timer;
    /// let rt = safepoint::Runtime::new()?;
    /// rt.block_on(async {
    ///     let timer = safepoint_hyper::SafepointTimer::new();
    ///     let start = timer.now();
    ///     timer.sleep(std::time::Duration::from_millis(5)).await;
    ///     assert!(timer.now() - start >= std::time::Duration::from_millis(5));
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> SafepointTimer {
        SafepointTimer
    }
}

impl hyper::rt::Timer for SafepointTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SafepointSleep {
            inner: safepoint::time::sleep(duration),
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SafepointSleep {
            inner: safepoint::time::sleep_until(safepoint::time::Instant::from_std(deadline)),
        })
    }

    fn now(&self) -> Instant {
        safepoint::time::Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<SafepointSleep>() {
            Some(mine) => Pin::new(&mut mine.get_mut().inner)
                .reset(safepoint::time::Instant::from_std(new_deadline)),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The sleep [`SafepointTimer`] hands hyper: a `safepoint::time::Sleep`
/// with hyper's `rt::Sleep` marker.
///
/// # Examples
///
/// ```
/// use hyper::rt::Timer;
/// let rt = safepoint::Runtime::new()?;
/// rt.block_on(async {
///     let timer = safepoint_hyper::SafepointTimer::new();
///     timer.sleep(std::time::Duration::from_millis(1)).await;
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SafepointSleep {
    inner: Sleep,
}

impl Future for SafepointSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

impl hyper::rt::Sleep for SafepointSleep {}
