//! `Runtime`: owns the worker threads; `block_on`, spawning, shutdown.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::handle::Handle;
use crate::metrics::RuntimeMetrics;
use crate::scheduler::Shared;
use crate::sync::{Arc, Mutex, Ordering};
use crate::task::JoinHandle;

/// The safepoint runtime: worker threads, an I/O and timer driver, a
/// blocking pool, and the global safepoint barrier.
///
/// Dropping it shuts it down: workers stop, every task is dropped (so its
/// destructors run), and the threads are joined.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let out = rt.block_on(async {
///     let h = safepoint::spawn(async { "hello" });
///     h.await.unwrap()
/// });
/// assert_eq!(out, "hello");
/// ```
pub struct Runtime {
    handle: Handle,
    threads: Mutex<Vec<crate::sync::thread::JoinHandle<()>>>,
}

impl Runtime {
    /// A multi-thread runtime with one worker per CPU, I/O and time on.
    ///
    /// # Errors
    ///
    /// Fails if the OS refuses a thread or the I/O driver (epoll) cannot be
    /// created.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Runtime> {
        crate::Builder::new_multi_thread().build()
    }

    pub(crate) fn from_parts(
        shared: Arc<Shared>,
        threads: Vec<crate::sync::thread::JoinHandle<()>>,
    ) -> Runtime {
        Runtime {
            handle: Handle::from_shared(shared),
            threads: Mutex::new(threads),
        }
    }

    /// Runs `future` to completion on the calling thread, while the workers
    /// run every spawned task. The future counts as a task for stops and
    /// quiescence.
    ///
    /// # Panics
    ///
    /// Panics if called from a worker thread or inside another `block_on`
    /// (`.await` the future instead). A panic in `future` propagates.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(async { 40 + 2 }), 42);
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _tokio = self.handle.shared.config.hooks.enter_tokio();
        crate::flavor::block_on(&self.handle, future, Location::caller())
    }

    /// Spawns a task; see [`crate::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.spawn(async { 1 });
    /// assert_eq!(rt.block_on(h).unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::task::spawn_on(&self.handle, future, None, Location::caller())
    }

    /// Runs a blocking closure on the blocking pool; see
    /// [`crate::spawn_blocking`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.spawn_blocking(|| 5);
    /// assert_eq!(rt.block_on(h).unwrap(), 5);
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::task::spawn_blocking_on(&self.handle, f, None, Location::caller())
    }

    /// The runtime's handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let handle: safepoint::Handle = rt.handle().clone();
    /// # drop(handle);
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Enters the runtime on this thread; see [`Handle::enter`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let _g = rt.enter();
    /// drop(safepoint::spawn(async {}));
    /// ```
    pub fn enter(&self) -> crate::handle::EnterGuard<'_> {
        self.handle.enter()
    }

    /// Blocks until every task is blocked (on I/O, timers, channels, join
    /// handles, safepoints) or finished and no worker is polling: the
    /// "run the event loop until all tasks are blocked" of test suites.
    ///
    /// # Panics
    ///
    /// Panics on a worker thread or inside `block_on`; from a task use
    /// [`task::wait_all_blocked`](crate::task::wait_all_blocked).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let r = ran.clone();
    /// rt.spawn(async move { r.store(true, Ordering::SeqCst) });
    /// rt.run_until_blocked();
    /// assert!(ran.load(Ordering::SeqCst));
    /// ```
    pub fn run_until_blocked(&self) {
        self.handle.run_until_blocked()
    }

    /// Deterministic flavour: runs one round, in which each task that was
    /// runnable at its start is polled once, in the seeded order. Returns how
    /// many tasks were polled (0: every task is blocked or done). Under
    /// [`Strategy::Pct`](crate::Strategy::Pct) a step polls one task, the
    /// runnable one of highest priority.
    ///
    /// # Panics
    ///
    /// Panics on the multi-thread flavour, whose workers run on their own.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_deterministic(1).build().unwrap();
    /// let h = rt.spawn(async { safepoint::task::yield_now().await; 5 });
    /// assert_eq!(rt.step(), 1); // polled once: it yielded
    /// assert_eq!(rt.step(), 1); // polled again: done
    /// assert_eq!(rt.step(), 0);
    /// assert!(h.is_finished());
    /// ```
    pub fn step(&self) -> usize {
        let shared = self.deterministic("step");
        let _enter = crate::context::enter(&self.handle);
        crate::deterministic::runner::step(shared)
    }

    /// Deterministic flavour: moves the virtual clock forward by `d`, firing
    /// the timers that fall due in deadline order and running until every
    /// task is blocked after each.
    ///
    /// # Panics
    ///
    /// Panics on the multi-thread flavour (its clock is real).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = safepoint::Builder::new_deterministic(1).build().unwrap();
    /// let h = rt.spawn(async { safepoint::time::sleep(Duration::from_secs(60)).await });
    /// rt.advance(Duration::from_secs(59));
    /// assert!(!h.is_finished());
    /// rt.advance(Duration::from_secs(1));
    /// assert!(h.is_finished());
    /// ```
    pub fn advance(&self, d: Duration) {
        let shared = self.deterministic("advance");
        let _enter = crate::context::enter(&self.handle);
        crate::deterministic::runner::advance(shared, d)
    }

    #[track_caller]
    fn deterministic(&self, what: &str) -> &Shared {
        let shared = &*self.handle.shared;
        assert!(
            shared.flavor.deterministic().is_some(),
            "Runtime::{what} drives the deterministic flavour only \
             (Builder::new_deterministic(seed)); the multi-thread runtime's workers run on their own"
        );
        shared
    }

    /// A snapshot of the runtime's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().worker_threads(3).build().unwrap();
    /// assert_eq!(rt.metrics().workers, 3);
    /// ```
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle.metrics()
    }

    /// Shuts down, waiting at most `timeout` for workers stuck in a poll and
    /// for running blocking jobs; threads still busy after that are left to
    /// finish on their own.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.spawn(std::future::pending::<()>());
    /// rt.shutdown_timeout(std::time::Duration::from_secs(1));
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) {
        self.shutdown(Some(timeout));
    }

    fn shutdown(&self, timeout: Option<Duration>) {
        let shared = &self.handle.shared;
        if shared.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        shared.unpark_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            #[cfg(not(loom))]
            if let Some(deadline) = deadline {
                // std cannot join with a timeout: wait for the thread to
                // finish, and leave it detached if it does not in time.
                while !t.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if !t.is_finished() {
                    continue;
                }
            }
            let _ = t.join();
        }
        // Drop every task left, inside the runtime so destructors that
        // reach for it (deregistering a socket, say) work.
        let _enter = crate::context::enter(&self.handle);
        drop_all_tasks(shared);
        // A stop requested during the drain (work was still queued then) is
        // declared now that nothing is left.
        shared.deliver(
            shared
                .census
                .transition_to_shut_down(|| shared.has_visible_work()),
        );
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        shared.blocking.shutdown(remaining);
    }
}

/// Wakes every registered task and drops the runnables (a task not
/// registered is queued, and dropped with its queue): async-task drops a
/// future whose runnable is dropped. Repeats while destructors wake more.
fn drop_all_tasks(shared: &Shared) {
    loop {
        // A requester woken from the registry below lands in the slot again.
        drop(shared.census.take_requester_runnable());
        // Wakes kept for a release that will not come now (protocol point
        // 10): their tasks are scheduled, so the registry's wakes below
        // would not reach them. Dropped here, outside the census lock.
        drop(shared.census.take_deferred());
        while let Some(task) = shared.injector.pop() {
            drop(task);
        }
        let wakers = shared.registry.wakers();
        if wakers.is_empty() {
            break;
        }
        let before = shared.registry.registered_len();
        for w in wakers {
            w.wake();
        }
        let mut dropped_any = false;
        if let Some(task) = shared.census.take_requester_runnable() {
            drop(task);
            dropped_any = true;
        }
        let deferred = shared.census.take_deferred();
        dropped_any |= !deferred.is_empty();
        drop(deferred);
        while let Some(task) = shared.injector.pop() {
            drop(task);
            dropped_any = true;
        }
        if !dropped_any && shared.registry.registered_len() >= before {
            // Tasks whose runnable is held elsewhere (a worker left behind
            // by shutdown_timeout): nothing more can be done here.
            break;
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            crate::context::assert_may_block(
                "dropping a Runtime",
                "drop it from outside the runtime, or use `shutdown_timeout`",
            );
            if crate::context::is_in_block_on() {
                panic!(
                    "Cannot drop a runtime in a context where blocking is not allowed: dropping \
                     a Runtime inside `block_on` waits for its workers while the future being \
                     blocked on is held up; drop it outside, or move it to a blocking-pool \
                     thread (`spawn_blocking`)"
                );
            }
        }
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.handle.shared.remotes.len())
            .finish()
    }
}
