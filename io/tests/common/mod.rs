//! A tiny executor for the io crate's tests.
//!
//! The real scheduler lives in the `safepoint` crate, which depends on this one,
//! so the tests drive futures themselves: poll, and if the future is pending
//! and its waker has not fired meanwhile, turn the driver (which blocks until
//! something happens). The waker sets a flag and unparks the driver, exactly
//! the contract the runtime relies on.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use safepoint_io::driver::{Config, Driver, Handle};

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

/// Runs `fut` to completion on a fresh driver with the default config.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut driver = Driver::new(Config::default()).expect("driver");
    block_on_with(&mut driver, fut)
}

/// Runs `fut` to completion, turning `driver` whenever it is pending.
pub fn block_on_with<F: Future>(driver: &mut Driver, fut: F) -> F::Output {
    let handle = driver.handle();
    let _guard = handle.enter();
    let flag = Arc::new(Flag {
        woken: AtomicBool::new(false),
        handle: handle.clone(),
    });
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        flag.woken.store(false, Ordering::SeqCst);
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        if !flag.woken.swap(false, Ordering::SeqCst) {
            driver.turn(None);
        }
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `fut` on this thread with `handle` current, parking the thread while it
/// is pending: another thread must be turning the driver.
pub fn block_on_remote<F: Future>(handle: &Handle, fut: F) -> F::Output {
    let _guard = handle.enter();
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A waker that counts its wakes, for tests that poll by hand.
pub struct Counter(pub AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn counting_waker() -> (Arc<Counter>, Waker) {
    let c = Arc::new(Counter(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

/// CPU time consumed by the calling thread, in microseconds.
pub fn thread_cpu_micros() -> u64 {
    // SAFETY: `getrusage` writes a `rusage` into the zeroed struct we own; a
    // zeroed `rusage` is a valid value of that plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
