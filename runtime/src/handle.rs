//! `Handle`: a cloneable reference to a runtime, usable from any thread.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use crate::metrics::RuntimeMetrics;
use crate::safepoint::request::{stop_blocking, StopTheWorld, StopTheWorldTimeout};
use crate::safepoint::{quiescence, report::StopTimedOut, world::StoppedWorld};
use crate::scheduler::Shared;
use crate::sync::Arc;
use crate::task::JoinHandle;

/// A handle to a runtime: spawn on it, enter it, stop its world. Cheap to
/// clone, `Send` and `Sync`.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let handle = rt.handle().clone();
/// let out = std::thread::spawn(move || {
///     let h = handle.spawn(async { 7 });
///     handle.block_on(h).unwrap()
/// })
/// .join()
/// .unwrap();
/// assert_eq!(out, 7);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

/// Keeps a runtime entered on this thread; see [`Handle::enter`].
#[must_use = "the runtime is only entered while the guard lives"]
pub struct EnterGuard<'a> {
    _guard: crate::context::EnterGuard,
    /// The tokio compatibility runtime, entered too (if enabled).
    _tokio: crate::hooks::TokioGuard<'a>,
    _handle: std::marker::PhantomData<&'a Handle>,
}

impl Handle {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Handle {
        Handle { shared }
    }

    /// The handle of the runtime this thread is in.
    ///
    /// # Panics
    ///
    /// Panics outside a runtime (not in a task, `block_on`, or under
    /// [`Handle::enter`]); use [`Handle::try_current`] to check.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let handle = safepoint::Handle::current();
    ///     handle.spawn(async {}).await.unwrap();
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().expect(
            "Handle::current() called outside a safepoint runtime: call it inside \
             Runtime::block_on or a spawned task, or keep a Handle from Runtime::handle()",
        )
    }

    /// The handle of the runtime this thread is in, if any.
    ///
    /// # Errors
    ///
    /// Returns an error (kind `Other`) outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(safepoint::Handle::try_current().is_err());
    /// ```
    pub fn try_current() -> std::io::Result<Handle> {
        crate::context::try_current()
            .ok_or_else(|| std::io::Error::other("there is no safepoint runtime on this thread"))
    }

    /// Enters the runtime on this thread, so that `safepoint::spawn`,
    /// timers and sockets work outside a task, until the guard drops.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let _guard = rt.handle().enter();
    /// let h = safepoint::spawn(async { 1 });
    /// # drop(_guard);
    /// assert_eq!(rt.block_on(h).unwrap(), 1);
    /// ```
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard {
            _guard: crate::context::enter(self),
            _tokio: self.shared.config.hooks.enter_tokio(),
            _handle: std::marker::PhantomData,
        }
    }

    /// Spawns a task on this runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.handle().spawn(async { 2 + 2 });
    /// assert_eq!(rt.block_on(h).unwrap(), 4);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        crate::task::spawn_on(self, future, None, Location::caller())
    }

    /// Runs a blocking closure on this runtime's blocking pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.handle().spawn_blocking(|| std::thread::current().name().map(str::to_owned));
    /// let name = rt.block_on(h).unwrap().unwrap();
    /// assert!(name.contains("blocking"));
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::task::spawn_blocking_on(self, f, None, Location::caller())
    }

    /// Runs `future` to completion on the calling thread; see
    /// [`Runtime::block_on`](crate::Runtime::block_on).
    ///
    /// # Panics
    ///
    /// Panics on a worker thread and inside another `block_on`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// assert_eq!(rt.handle().block_on(async { 3 }), 3);
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _tokio = self.shared.config.hooks.enter_tokio();
        crate::flavor::block_on(self, future, Location::caller())
    }

    /// Stops the world, from a task: resolves when every other task is at
    /// a safepoint or blocked and every worker has parked. While the
    /// returned [`StoppedWorld`] lives, only the requesting task runs (it
    /// may still await its own timers and I/O). Requests are served one at
    /// a time; dropping the future before it resolves withdraws it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let world = safepoint::Handle::current().stop_the_world().await;
    ///     println!("stopped in {:?}", world.report().time_to_stop);
    ///     world.resume();
    /// });
    /// ```
    pub fn stop_the_world(&self) -> StopTheWorld {
        StopTheWorld::new(self.shared.clone())
    }

    /// Like [`stop_the_world`](Handle::stop_the_world), but gives up after
    /// `timeout`: the request is withdrawn (tasks parked at safepoints are
    /// released) and the error names the tasks that kept the world running.
    ///
    /// # Errors
    ///
    /// [`StopTimedOut`] when the world did not stop in time.
    ///
    /// # Panics
    ///
    /// Panics if the runtime was built without the time driver.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let world = safepoint::Handle::current()
    ///         .stop_the_world_timeout(Duration::from_secs(1))
    ///         .await
    ///         .expect("nothing is running, so the stop is immediate");
    ///     drop(world);
    /// });
    /// ```
    pub fn stop_the_world_timeout(&self, timeout: Duration) -> StopTheWorldTimeout {
        StopTheWorldTimeout::new(self.shared.clone(), timeout)
    }

    /// Stops the world from a thread outside the runtime, blocking it until
    /// the world is stopped.
    ///
    /// Until the world resumes, this thread counts as its holder, even if
    /// the [`StoppedWorld`] is moved to another thread: no task can run, so
    /// a blocking call on this runtime from this thread (`block_on`,
    /// `run_until_blocked`, another `stop_the_world_blocking`) could only
    /// wait for itself, and panics instead.
    ///
    /// # Panics
    ///
    /// Panics on a worker thread (use
    /// [`stop_the_world().await`](Handle::stop_the_world) from a task), and
    /// on a thread that already holds this runtime's world stopped.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let world = rt.handle().stop_the_world_blocking();
    /// drop(world); // resume
    /// ```
    pub fn stop_the_world_blocking(&self) -> StoppedWorld {
        match stop_blocking(self.shared.clone(), None) {
            Ok(world) => world,
            Err(_) => unreachable!("a stop without a timeout cannot time out"),
        }
    }

    /// Like [`stop_the_world_blocking`](Handle::stop_the_world_blocking),
    /// with a timeout.
    ///
    /// # Errors
    ///
    /// [`StopTimedOut`] when the world did not stop in time.
    ///
    /// # Panics
    ///
    /// Panics on a worker thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let world = rt.handle().stop_the_world_blocking_timeout(Duration::from_secs(1)).unwrap();
    /// world.resume();
    /// ```
    pub fn stop_the_world_blocking_timeout(
        &self,
        timeout: Duration,
    ) -> Result<StoppedWorld, StopTimedOut> {
        stop_blocking(self.shared.clone(), Some(timeout))
    }

    /// Blocks until every task is blocked or finished; see
    /// [`Runtime::run_until_blocked`](crate::Runtime::run_until_blocked).
    ///
    /// # Panics
    ///
    /// Panics on a worker thread or inside `block_on`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.spawn(async {});
    /// rt.handle().run_until_blocked();
    /// assert!(h.is_finished());
    /// ```
    pub fn run_until_blocked(&self) {
        quiescence::run_until_blocked(&self.shared)
    }

    /// The loom models' stand-in for the driver (loom builds only).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn loom_reactor(&self) -> crate::sync::Arc<crate::scheduler::loom_reactor::Reactor> {
        self.shared.reactor.clone()
    }

    /// A snapshot of the runtime's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// assert_eq!(rt.handle().metrics().workers, rt.metrics().workers);
    /// ```
    pub fn metrics(&self) -> RuntimeMetrics {
        crate::metrics::collect(&self.shared)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.shared.remotes.len())
            .finish()
    }
}
