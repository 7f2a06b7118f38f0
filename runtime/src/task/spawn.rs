//! Spawning: `spawn`, `spawn_blocking` and the named-task `Builder`.
//!
//! Every task is one async-task cell whose header holds its id, name and
//! spawn location (`#[track_caller]`), so reports can name any task without
//! a side table. Async tasks enter the registry when they first block (named
//! ones at spawn, see `task::registry`); until then they are always queued
//! or being polled, where shutdown finds them.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc as StdArc;

use super::cell::{Registration, TaskFuture};
use super::id::TaskMeta;
use super::join::JoinHandle;
use crate::context::WakeTarget;
use crate::handle::Handle;
use crate::scheduler::{Shared, Task};
use crate::sync::Arc;

pub(crate) fn spawn_on<F>(
    handle: &Handle,
    future: F,
    name: Option<StdArc<str>>,
    location: &'static Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (join, refused) = spawn_on_keeping_refused(handle, future, name, location);
    drop(refused);
    join
}

/// [`spawn_on`], except that a task refused because the runtime is shutting
/// down is handed back instead of dropped, for the caller to drop once it
/// no longer borrows the thread's runtime context (the future's destructor
/// may enter a runtime, which needs that context unborrowed).
fn spawn_on_keeping_refused<F>(
    handle: &Handle,
    future: F,
    name: Option<StdArc<str>>,
    location: &'static Location<'static>,
) -> (JoinHandle<F::Output>, Option<Task>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let shared = &handle.shared;
    let id = shared.next_id();
    // A named task is registered here rather than at its first `Pending`
    // (see `task::registry`), so that a report about its first poll, read
    // from the registry, has its name.
    let register_now = name.is_some();
    let meta = TaskMeta::new(id, name, location);
    let registration = if register_now {
        Registration::new_registered_by_spawner(shared.clone(), id)
    } else {
        Registration::new(shared.clone(), id)
    };
    // SAFETY: the future borrows nothing but the cell's own metadata.
    let (runnable, task) = unsafe {
        crate::flavor::spawn_cell(shared, meta, move |meta| {
            TaskFuture::new(future, meta.id, Some(meta), Some(registration))
        })
    };
    if shared.is_shutdown() {
        // Like tokio: a task spawned on a runtime that is shutting down is
        // dropped at once (by the caller) and its handle reports
        // cancellation.
        return (JoinHandle::new(task), Some(runnable));
    }
    if register_now {
        shared
            .registry
            .insert(runnable.metadata().info(), runnable.waker());
    }
    crate::flavor::schedule_spawned(shared, runnable);
    (JoinHandle::new(task), None)
}

/// Spawns on the thread's current runtime, borrowing its handle rather than
/// cloning it (see `context::with_current`); `None` outside a runtime.
#[track_caller]
fn spawn_current<F>(future: F, name: Option<StdArc<str>>) -> Option<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let location = Location::caller();
    let mut future = Some(future);
    let (join, refused) = crate::context::with_current(|handle| {
        spawn_on_keeping_refused(handle, future.take().expect("spawned once"), name, location)
    })?;
    drop(refused);
    Some(join)
}

/// The multi-thread flavour's first scheduling of a new task: on this
/// worker's queues if spawned from one of its tasks, else the injector.
pub(crate) fn schedule_spawned(shared: &Shared, runnable: Task) {
    let on_worker = crate::context::with_wake_target(shared, |target| match target {
        WakeTarget::Worker(w) => {
            w.count_spawn();
            true
        }
        WakeTarget::Releasing | WakeTarget::Elsewhere => false,
    });
    if on_worker {
        runnable.schedule();
    } else {
        shared.remote_spawns.add_shared(1);
        shared.schedule_remote(runnable);
    }
}

pub(crate) fn spawn_blocking_on<F, R>(
    handle: &Handle,
    f: F,
    name: Option<StdArc<str>>,
    location: &'static Location<'static>,
) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let shared = &handle.shared;
    let id = shared.next_id();
    let meta = TaskMeta::new(id, name, location);
    let mut f = Some(f);
    let body = std::future::poll_fn(move |_| {
        std::task::Poll::Ready((f.take().expect("blocking job polled after it finished"))())
    });
    let pool_shared = Arc::clone(shared);
    // SAFETY: the future borrows nothing but the cell's own metadata; it
    // and the schedule function are `Send`, and the schedule function is
    // `Sync + 'static` (it owns an `Arc`).
    let (runnable, task) = unsafe {
        async_task::Builder::new().metadata(meta).spawn_unchecked(
            move |meta| TaskFuture::new(body, meta.id, Some(meta), None),
            move |runnable| schedule_blocking(&pool_shared, runnable),
        )
    };
    runnable.schedule();
    JoinHandle::new(task)
}

fn schedule_blocking(shared: &Arc<Shared>, runnable: Task) {
    let for_thread = Arc::clone(shared);
    shared.blocking.schedule(runnable, move |n| {
        let name = format!("{}-{n}", for_thread.blocking.thread_name());
        let stack = for_thread.config.thread_stack_size;
        crate::blocking::spawn_thread(name, stack, move || {
            let handle = Handle::from_shared(for_thread.clone());
            let _enter = crate::context::enter(&handle);
            for_thread.blocking.run_thread();
        })
    });
}

/// Spawns a task on the current runtime.
///
/// The task starts running in the background at once; the returned
/// [`JoinHandle`] yields its output. Dropping the handle detaches the task.
///
/// # Panics
///
/// Panics when called outside a safepoint runtime; use
/// [`Runtime::spawn`](crate::Runtime::spawn) or
/// [`Handle::spawn`](crate::Handle::spawn) there.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let sum = rt.block_on(async {
///     let a = safepoint::spawn(async { 1 });
///     let b = safepoint::spawn(async { 2 });
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(sum, 3);
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match spawn_current(future, None) {
        Some(join) => join,
        None => outside_runtime("safepoint::spawn", "Runtime::spawn"),
    }
}

/// Runs a blocking closure on the blocking pool and returns a handle to its
/// result. Use it for CPU-heavy work or for APIs that block (file I/O,
/// `std::sync` locks held long), which would otherwise stall a worker.
///
/// # Panics
///
/// Panics when called outside a safepoint runtime; use
/// [`Runtime::spawn_blocking`](crate::Runtime::spawn_blocking) there.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let n = rt.block_on(async {
///     safepoint::spawn_blocking(|| (1..=10u64).product::<u64>()).await.unwrap()
/// });
/// assert_eq!(n, 3_628_800);
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let location = Location::caller();
    let handle = current_or_panic("safepoint::spawn_blocking", "Runtime::spawn_blocking");
    spawn_blocking_on(&handle, f, None, location)
}

/// The current runtime, or a panic that points at the user's call (a
/// closure cannot carry `#[track_caller]`, so no `unwrap_or_else` here).
#[track_caller]
fn current_or_panic(what: &str, instead: &str) -> Handle {
    match crate::context::try_current() {
        Some(handle) => handle,
        None => outside_runtime(what, instead),
    }
}

/// The panic of `what`, called outside a runtime, naming what to use.
#[track_caller]
fn outside_runtime(what: &str, instead: &str) -> ! {
    panic!(
        "{what} called outside a safepoint runtime: there is no runtime on this thread; \
         use `{instead}` (or `Handle::{}`) from outside, or call it inside \
         `Runtime::block_on` or a spawned task",
        instead.rsplit("::").next().unwrap_or(instead)
    )
}

/// Spawns tasks with a name, which stop reports and panics show.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let handle = safepoint::task::Builder::new()
///     .name("conn")
///     .spawn_on(async { 5 }, rt.handle())
///     .unwrap();
/// assert_eq!(rt.block_on(handle).unwrap(), 5);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<StdArc<str>>,
}

impl Builder {
    /// A builder for an unnamed task.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = safepoint::task::Builder::new();
    /// # drop(b);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = safepoint::task::Builder::new().name("worker");
    /// # drop(b);
    /// ```
    pub fn name(mut self, name: &str) -> Builder {
        self.name = Some(StdArc::from(name));
        self
    }

    /// Spawns the task on the current runtime.
    ///
    /// # Errors
    ///
    /// Returns an error of kind `Other` when called outside a runtime (use
    /// [`Builder::spawn_on`] there).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let h = safepoint::task::Builder::new().name("child").spawn(async { 1 }).unwrap();
    ///     assert_eq!(h.await.unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> std::io::Result<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_current(future, self.name).ok_or_else(|| {
            std::io::Error::other(
                "task::Builder::spawn called outside a safepoint runtime; use spawn_on(fut, &handle)",
            )
        })
    }

    /// Spawns the task on the runtime of `handle`.
    ///
    /// # Errors
    ///
    /// Never fails today; the `Result` keeps tokio's shape.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = safepoint::task::Builder::new().name("x").spawn_on(async { 2 }, rt.handle()).unwrap();
    /// assert_eq!(rt.block_on(h).unwrap(), 2);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, handle: &Handle) -> std::io::Result<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let location = Location::caller();
        Ok(spawn_on(handle, future, self.name, location))
    }

    /// Runs a blocking closure on the pool, named.
    ///
    /// # Errors
    ///
    /// Returns an error of kind `Other` when called outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let h = safepoint::task::Builder::new().name("io").spawn_blocking(|| 3).unwrap();
    ///     assert_eq!(h.await.unwrap(), 3);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> std::io::Result<JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let location = Location::caller();
        let handle = crate::context::try_current().ok_or_else(|| {
            std::io::Error::other(
                "task::Builder::spawn_blocking called outside a safepoint runtime",
            )
        })?;
        Ok(spawn_blocking_on(&handle, f, self.name, location))
    }
}

/// The id of the task being polled on this thread, if any.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let h = rt.spawn(async { safepoint::task::id() });
/// let id = h.id();
/// assert_eq!(rt.block_on(h).unwrap(), Some(id));
/// assert_eq!(safepoint::task::id(), None);
/// ```
pub fn id() -> Option<super::Id> {
    crate::context::current_task()
}
