//! [`Driver::block_on`]: the smallest possible executor, for tests and examples.
//!
//! The runtime crate depends on this one, so this crate's doc examples and
//! tests cannot use the real scheduler. This runs one future on the calling
//! thread: poll it, and while it is pending and nothing woke it, turn the
//! driver. It is also a fair picture of the contract the runtime relies on:
//! wakers call [`Handle::unpark`](super::Handle::unpark), the turner blocks in
//! [`Driver::turn`].

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::{Driver, Handle};

struct Flag {
    woken: AtomicBool,
    handle: Handle,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.handle.unpark();
    }
}

impl Driver {
    /// Runs `future` to completion on this thread with this driver current,
    /// turning the driver while the future waits. Only one future runs (use
    /// `futures::join!` and friends for concurrency); applications use the
    /// `safepoint` runtime instead, which schedules many tasks on many threads.
    ///
    /// With a virtual clock nothing moves time, so a future waiting only on a
    /// timer would wait forever: advance the clock from the future itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use safepoint_io::driver::{Config, Driver};
    /// use safepoint_io::time::{sleep, Instant};
    ///
    /// let mut driver = Driver::new(Config::default()).unwrap();
    /// let waited = driver.block_on(async {
    ///     let start = Instant::now();
    ///     sleep(Duration::from_millis(10)).await;
    ///     start.elapsed()
    /// });
    /// assert!(waited >= Duration::from_millis(10));
    /// ```
    pub fn block_on<F: Future>(&mut self, future: F) -> F::Output {
        let handle = self.handle();
        let _guard = handle.enter();
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(false),
            handle: handle.clone(),
        });
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            flag.woken.store(false, Ordering::SeqCst);
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            if !flag.woken.swap(false, Ordering::SeqCst) {
                self.turn(None);
            }
        }
    }
}
