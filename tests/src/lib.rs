//! Helpers shared by the integration tests in `tests/`: a watchdog that
//! turns a hang into a failure, drop counters, a future wrapper that counts
//! polls, polling waits, and readers of per-process facts (threads, CPU).
//!
//! Apart from `rt`, which builds the runtime most tests use, the helpers are
//! plain `std`.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Runs `body` on its own thread and fails the test if it does not finish
/// within `limit`, so that a hang fails instead of blocking CI. A panic in
/// the body is re-raised here with its original payload.
pub fn watchdog<T: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("watchdog-body".into())
        .spawn(move || {
            let out = catch_unwind(AssertUnwindSafe(body));
            let _ = tx.send(out);
        })
        .expect("spawn the watchdog body");
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => {
            let _ = thread.join();
            v
        }
        Ok(Err(payload)) => {
            let _ = thread.join();
            resume_unwind(payload)
        }
        Err(_) => panic!("watchdog: the test body did not finish within {limit:?} (hang)"),
    }
}

/// Polls `cond` every millisecond until it holds or `limit` passes; returns
/// whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Counts how many of the values it hands out have been dropped.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn new() -> DropCounter {
        DropCounter::default()
    }
    /// A token that bumps the counter when dropped.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }
    pub fn dropped(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Bumps its [`DropCounter`] when dropped. Move it into a future to learn
/// when the future is dropped.
pub struct DropToken(Arc<AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A boolean set when the value it guards is dropped.
#[derive(Clone, Default)]
pub struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    pub fn new() -> DropFlag {
        DropFlag::default()
    }
    pub fn is_dropped(&self) -> bool {
        self.0.load(SeqCst)
    }
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
}

pub struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Wraps a future and increments `polls` at the start of every poll: the
/// global "was anything polled" witness of the safepoint tests.
pub struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicU64>,
}

impl<F: Future> Counted<F> {
    pub fn new(polls: &Arc<AtomicU64>, inner: F) -> Counted<F> {
        Counted {
            inner: Box::pin(inner),
            polls: polls.clone(),
        }
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

/// The number of threads of this process (entries of `/proc/self/task`).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// Names (`comm`, truncated to 15 bytes by the kernel) of this process's
/// threads.
pub fn thread_names() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("read /proc/self/task") {
        let Ok(entry) = entry else { continue };
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            out.push(comm.trim_end().to_owned());
        }
    }
    out
}

/// User + system CPU time of the whole process, from `getrusage`
/// (microsecond resolution; `/proc/self/stat` counts 10 ms clock ticks,
/// too coarse to tell 1 ms from 9 ms).
pub fn process_cpu_time() -> Duration {
    // SAFETY: getrusage writes a `rusage` into the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0, "getrusage");
        ru
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// User + system CPU time of the process from `/proc/self/stat` (fields 14
/// and 15), in clock ticks converted with `sysconf(_SC_CLK_TCK)`.
pub fn proc_stat_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name (field 2) may contain spaces; fields after it start
    // after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat has a comm field") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) is index 11.
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos((utime + stime) * 1_000_000_000 / hz)
}

/// A multi-thread runtime with `workers` workers, as most tests build one.
pub fn rt(workers: usize) -> safepoint::Runtime {
    safepoint::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .unwrap()
}
