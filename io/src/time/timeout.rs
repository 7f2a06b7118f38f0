//! [`Timeout`]: a future with a deadline.
//!
//! The inner future is dropped as soon as the deadline passes (not only when the
//! `Timeout` itself is dropped), so whatever it holds (a socket, a lock, a
//! waiter entry) is released at the moment the caller learns of the timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{Elapsed, Instant, Sleep};
use crate::driver::context;

/// Runs `future` for at most `duration`: `Ok(output)` or `Err(Elapsed)`.
/// Panics outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{timeout, Duration};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let r = timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
///     assert!(r.is_err());
/// });
/// ```
#[track_caller]
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    let handle = context::current();
    let deadline = handle.clock().now().far_add(duration);
    Timeout::new(Sleep::new(handle, deadline), future)
}

/// Runs `future` until `deadline` at most. Panics outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{timeout_at, Duration, Instant};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let r = timeout_at(Instant::now() + Duration::from_secs(1), async { 7 }).await;
///     assert_eq!(r.unwrap(), 7);
/// });
/// ```
#[track_caller]
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout::new(Sleep::new(context::current(), deadline), future)
}

pin_project_lite::pin_project! {
    /// The future of [`timeout()`] and [`timeout_at`].
    ///
    /// # Examples
    ///
    /// ```
    /// use safepoint_io::driver::{Config, Driver};
    /// use safepoint_io::time::{timeout, Duration};
    ///
    /// let mut driver = Driver::new(Config::default()).unwrap();
    /// driver.block_on(async {
    ///     let t = timeout(Duration::from_secs(1), async { "done" });
    ///     assert!(t.get_ref().is_some());
    ///     assert_eq!(t.await, Ok("done"));
    /// });
    /// ```
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        // `None` once the deadline passed (the future was dropped) or it
        // completed.
        #[pin]
        future: Option<F>,
        delay: Sleep,
    }
}

impl<F> Timeout<F> {
    fn new(delay: Sleep, future: F) -> Timeout<F> {
        Timeout {
            future: Some(future),
            delay,
        }
    }

    /// The inner future, unless it already completed or timed out.
    pub fn get_ref(&self) -> Option<&F> {
        self.future.as_ref()
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.delay.deadline()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut future = this.future;
        let Some(inner) = future.as_mut().as_pin_mut() else {
            panic!("Timeout polled after completion");
        };
        if let Poll::Ready(out) = inner.poll(cx) {
            future.set(None);
            return Poll::Ready(Ok(out));
        }
        match this.delay.poll_sleep(cx) {
            Poll::Ready(()) => {
                future.set(None);
                Poll::Ready(Err(Elapsed::new()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
