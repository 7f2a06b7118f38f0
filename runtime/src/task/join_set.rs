//! `JoinSet`: a collection of tasks, joined in the order they finish.
//!
//! Shaped like tokio's. Each task's `JoinHandle` is polled with a waker of
//! its own that, when the task finishes (or its abort completes), puts the
//! task's key on a ready list and wakes whoever awaits `join_next`. So
//! `join_next` only ever polls handles that were woken: O(1) per finished
//! task however many are in the set, and tasks come out in the order they
//! finished. A fresh entry starts on the ready list, since its handle has
//! not been polled yet and so has no waker registered.
//!
//! Dropping the set aborts every task in it, as tokio's does; `detach_all`
//! lets them run on instead.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;
use slab::Slab;

use super::abort_handle::{Abort, AbortHandle};
use super::{Id, JoinError, JoinHandle};
use crate::handle::Handle;

/// A set of tasks spawned on the runtime, awaited in the order they finish.
///
/// All tasks must have the same output type. Dropping the set aborts every
/// task still in it; [`JoinSet::detach_all`] lets them run on instead.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// rt.block_on(async {
///     let mut set = safepoint::task::JoinSet::new();
///     for i in 0..10u64 {
///         set.spawn(async move { i * i });
///     }
///     let mut sum = 0;
///     while let Some(res) = set.join_next().await {
///         sum += res.unwrap();
///     }
///     assert_eq!(sum, 285);
/// });
/// ```
pub struct JoinSet<T> {
    entries: Slab<Slot<T>>,
    ready: Arc<Mutex<Ready>>,
}

/// The ready list shared by the set and its entries' wakers, with the
/// waker of the task awaiting `join_next`: one lock per task wake.
///
/// A key on the list may be stale (its entry joined or detached, and the
/// slab slot perhaps reused by a newer entry): the set then polls whatever
/// entry holds that slot now, which is harmless, since an entry is removed
/// as soon as its handle returns `Ready` and so is never polled after that.
#[derive(Default)]
struct Ready {
    keys: VecDeque<usize>,
    waker: Option<Waker>,
}

/// An entry, and the same entry as something to abort: `Drop` cannot
/// require `T: Send`, which aborting through the typed handle needs.
struct Slot<T> {
    entry: Arc<Entry<T>>,
    abort: Arc<dyn Abort>,
}

/// One task of the set: its handle, and (as its own waker) what lists it
/// as ready. One allocation per task besides the task itself.
struct Entry<T> {
    handle: Mutex<JoinHandle<T>>,
    key: usize,
    /// On the ready list (or about to be); keeps a key from being listed
    /// twice when its task is woken several times before the set looks.
    queued: AtomicBool,
    ready: Arc<Mutex<Ready>>,
}

impl<T> Entry<T> {
    fn list(&self) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let waker = {
            let mut ready = self.ready.lock();
            ready.keys.push_back(self.key);
            ready.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: Send + 'static> Wake for Entry<T> {
    fn wake(self: Arc<Self>) {
        self.list();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.list();
    }
}

impl<T: Send + 'static> Abort for Entry<T> {
    fn abort(&self) {
        self.handle.lock().abort();
        // The abort replaced the handle's registered waker; list the entry
        // so that the set polls it again and learns when the abort is done.
        self.list();
    }

    fn is_finished(&self) -> bool {
        self.handle.lock().is_finished()
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = safepoint::task::JoinSet::<()>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> JoinSet<T> {
        JoinSet {
            entries: Slab::new(),
            ready: Arc::default(),
        }
    }

    /// The number of tasks in the set, finished but not yet joined ones
    /// included.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     set.spawn(async {});
    ///     set.spawn(async {});
    ///     assert_eq!(set.len(), 2);
    ///     set.join_next().await;
    ///     assert_eq!(set.len(), 1);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no task.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = safepoint::task::JoinSet::<u8>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every task from the set without aborting it: the tasks run
    /// on, detached, as if their `JoinHandle`s had been dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     set.spawn(async move {
    ///         safepoint::time::sleep(std::time::Duration::from_millis(10)).await;
    ///         tx.send("ran").unwrap();
    ///     });
    ///     set.detach_all();
    ///     assert!(set.is_empty());
    /// }); // the set is dropped here, but its task was detached
    /// assert_eq!(rx.recv().unwrap(), "ran");
    /// ```
    pub fn detach_all(&mut self) {
        self.entries.clear();
        self.ready.lock().keys.clear();
    }
}

impl<T: Send + 'static> JoinSet<T> {
    /// Spawns `future` on the current runtime and adds it to the set.
    ///
    /// # Panics
    ///
    /// Panics outside a safepoint runtime; use [`JoinSet::spawn_on`] there.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     set.spawn(async { 1 });
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        let location = Location::caller();
        let handle = current_or_panic("JoinSet::spawn", "JoinSet::spawn_on");
        self.insert(super::spawn_on(&handle, future, None, location))
    }

    /// Spawns `future` on the runtime of `handle` and adds it to the set.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let mut set = safepoint::task::JoinSet::new();
    /// set.spawn_on(async { 2 }, rt.handle());
    /// let out = rt.block_on(set.join_next()).unwrap().unwrap();
    /// assert_eq!(out, 2);
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(&mut self, future: F, handle: &Handle) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(super::spawn_on(handle, future, None, Location::caller()))
    }

    /// Runs the blocking closure `f` on the current runtime's blocking pool
    /// and adds it to the set. As with `spawn_blocking`, an abort only
    /// takes effect if the closure has not started yet.
    ///
    /// # Panics
    ///
    /// Panics outside a safepoint runtime; use
    /// [`JoinSet::spawn_blocking_on`] there.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     set.spawn_blocking(|| std::fs::metadata("/").is_ok());
    ///     assert!(set.join_next().await.unwrap().unwrap());
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        let location = Location::caller();
        let handle = current_or_panic("JoinSet::spawn_blocking", "JoinSet::spawn_blocking_on");
        self.insert(super::spawn_blocking_on(&handle, f, None, location))
    }

    /// Runs the blocking closure `f` on the blocking pool of `handle`'s
    /// runtime and adds it to the set.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let mut set = safepoint::task::JoinSet::new();
    /// set.spawn_blocking_on(|| 3, rt.handle());
    /// assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn spawn_blocking_on<F>(&mut self, f: F, handle: &Handle) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(super::spawn_blocking_on(
            handle,
            f,
            None,
            Location::caller(),
        ))
    }

    /// Spawns the `!Send` `future` on the current [`LocalSet`] (see
    /// [`spawn_local`]) and adds it to the set.
    ///
    /// # Panics
    ///
    /// Panics outside a `LocalSet`, as [`spawn_local`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let local = safepoint::task::LocalSet::new();
    /// local.block_on(&rt, async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     let shared = Rc::new(5);
    ///     let s = shared.clone();
    ///     set.spawn_local(async move { *s + 1 });
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), 6);
    /// });
    /// ```
    ///
    /// [`LocalSet`]: super::LocalSet
    /// [`spawn_local`]: super::spawn_local()
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(super::spawn_local(future))
    }

    /// Spawns the `!Send` `future` into `local` (see
    /// [`LocalSet::spawn_local`]) and adds it to the set; it runs when
    /// `local` is driven.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let local = safepoint::task::LocalSet::new();
    /// let mut set = safepoint::task::JoinSet::new();
    /// let rc = std::rc::Rc::new(4);
    /// set.spawn_local_on(async move { *rc * 2 }, &local);
    /// let out = local.block_on(&rt, set.join_next()).unwrap().unwrap();
    /// assert_eq!(out, 8);
    /// ```
    ///
    /// [`LocalSet::spawn_local`]: super::LocalSet::spawn_local
    #[track_caller]
    pub fn spawn_local_on<F>(&mut self, future: F, local: &super::LocalSet) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(local.spawn_local(future))
    }

    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let slot = self.entries.vacant_entry();
        let key = slot.key();
        let id = handle.id();
        let entry = Arc::new(Entry {
            handle: Mutex::new(handle),
            key,
            // Listed below: a fresh handle has no waker registered yet.
            queued: AtomicBool::new(true),
            ready: self.ready.clone(),
        });
        let abort: Arc<dyn Abort> = entry.clone();
        slot.insert(Slot {
            entry,
            abort: abort.clone(),
        });
        self.ready.lock().keys.push_back(key);
        AbortHandle::new(id, abort)
    }

    /// Waits for the next task to finish and returns its result, or `None`
    /// when the set is empty. Tasks come out in the order they finish; a
    /// task that panicked or was aborted yields a [`JoinError`].
    ///
    /// Cancel safe: if the future is dropped before it completes, no task
    /// result is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     for ms in [30u64, 10, 20] {
    ///         set.spawn(async move {
    ///             safepoint::time::sleep(Duration::from_millis(ms)).await;
    ///             ms
    ///         });
    ///     }
    ///     let mut order = Vec::new();
    ///     while let Some(res) = set.join_next().await {
    ///         order.push(res.unwrap());
    ///     }
    ///     assert_eq!(order, [10, 20, 30]);
    /// });
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx))
            .await
            .map(|r| r.map(|(_, v)| v))
    }

    /// As [`JoinSet::join_next`], with the id of the task that finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     let id = set.spawn(async { "done" }).id();
    ///     assert_eq!(set.join_next_with_id().await.unwrap().unwrap(), (id, "done"));
    /// });
    /// ```
    pub async fn join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// The result of a task that has already finished, without waiting:
    /// `None` if no task in the set has finished (or the set is empty).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     set.spawn(std::future::pending::<u8>());
    ///     assert!(set.try_join_next().is_none()); // still running
    ///     set.spawn(async { 7 });
    ///     safepoint::task::wait_all_blocked().await; // the second one is done
    ///     assert_eq!(set.try_join_next().unwrap().unwrap(), 7);
    /// });
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        match self.next_ready(None) {
            Poll::Ready(out) => out.map(|r| r.map(|(_, v)| v)),
            Poll::Pending => None,
        }
    }

    /// Waits for every task and returns their outputs in the order they
    /// finished.
    ///
    /// # Panics
    ///
    /// If a task panicked, resumes that panic here; if one was aborted,
    /// panics saying so (use [`JoinSet::join_next`] to handle failures).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     for i in 0..4 {
    ///         set.spawn(async move { i });
    ///     }
    ///     let mut all = set.join_all().await;
    ///     all.sort();
    ///     assert_eq!(all, [0, 1, 2, 3]);
    /// });
    /// ```
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(res) = self.join_next().await {
            match res {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("JoinSet::join_all: {e}"),
            }
        }
        out
    }

    /// Aborts every task in the set. They stay in the set: join them (each
    /// yields a cancelled `JoinError`, or its output if it finished first)
    /// or call [`JoinSet::shutdown`], which does both.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     for _ in 0..3 {
    ///         set.spawn(std::future::pending::<()>());
    ///     }
    ///     set.abort_all();
    ///     while let Some(res) = set.join_next().await {
    ///         assert!(res.unwrap_err().is_cancelled());
    ///     }
    /// });
    /// ```
    pub fn abort_all(&mut self) {
        for (_, slot) in &self.entries {
            slot.abort.abort();
        }
    }

    /// Aborts every task and waits until all of them are gone; the set is
    /// empty afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     set.spawn(std::future::pending::<()>());
    ///     set.shutdown().await;
    ///     assert!(set.is_empty());
    /// });
    /// ```
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(Id, T), JoinError>>> {
        if self.entries.is_empty() {
            return Poll::Ready(None);
        }
        // Registered before the ready list is read, so a task finishing
        // after we found the list empty wakes us.
        let any_ready = {
            let mut ready = self.ready.lock();
            match &ready.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => ready.waker = Some(cx.waker().clone()),
            }
            !ready.keys.is_empty()
        };
        // A member woke (it most likely finished): while a stop is pending,
        // the awaiting task parks here first, once for the whole set
        // (protocol point 10); the handles below are polled without a gate
        // of their own, and nothing is taken from the ready list.
        if any_ready && crate::safepoint::gate::stop_pending() {
            std::task::ready!(crate::safepoint::gate::poll_proceed(cx));
        }
        self.next_ready(Some(cx))
    }

    /// Polls the listed entries until one has finished. With `cx`, gives
    /// the worker back (waking itself) after a batch of polls that found
    /// nothing finished, so a set woken by many tasks at once cannot hold a
    /// worker indefinitely.
    fn next_ready(
        &mut self,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        const BATCH: usize = 64;
        for _ in 0..BATCH {
            let Some(key) = self.ready.lock().keys.pop_front() else {
                return Poll::Pending;
            };
            let Some(Slot { entry, .. }) = self.entries.get(key) else {
                continue; // joined or detached since it was listed
            };
            entry.queued.store(false, Ordering::Release);
            let waker = Waker::from(entry.clone());
            let mut handle = entry.handle.lock();
            let id = handle.id();
            if let Poll::Ready(out) = handle.poll_output(&mut Context::from_waker(&waker)) {
                drop(handle);
                self.entries.remove(key);
                return Poll::Ready(Some(out.map(|v| (id, v))));
            }
        }
        if let Some(cx) = cx {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

#[track_caller]
fn current_or_panic(what: &str, instead: &str) -> Handle {
    crate::context::try_current().unwrap_or_else(|| {
        panic!(
            "{what} called outside a safepoint runtime: there is no runtime on this thread; \
             use `{instead}(.., &handle)`, or call it inside `Runtime::block_on` or a task"
        )
    })
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        // As tokio's: dropping the set aborts what is still in it. A handle
        // dropped after `abort` has already cancelled its task.
        for (_, slot) in &self.entries {
            slot.abort.abort();
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}
