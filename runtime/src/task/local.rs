//! `LocalSet` and `spawn_local`: tasks whose futures are not `Send`.
//!
//! A `!Send` future cannot move between workers, so it cannot be a
//! scheduler task. A `LocalSet` is instead a future-shaped driver, as in
//! tokio: its tasks run *inside the poll of whatever drives it* (the future
//! given to `block_on`, typically), on that thread, one after another. For
//! the runtime the local tasks are therefore part of the driving task:
//!
//! - for stops and quiescence they count as that task. While a local task
//!   runs, the driver is being polled (runnable); when every local task is
//!   blocked the driver's poll returns `Pending` and the driver is blocked.
//!   A local task that reaches `safepoint().await` during a stop parks
//!   there, and if nothing else in the set can run, the driver's poll ends
//!   and the driver counts as blocked: the world can stop. The resume wakes
//!   the local task, which wakes the driver.
//! - `task::id()` inside a local task is the driving task's id, and a stop
//!   report names the driver (`block_on`), not the local task.
//!
//! Tasks are async-task cells made with `spawn_local` (which checks that
//! the future is only polled and dropped on the thread that spawned it);
//! their schedule function, which any thread may call when it wakes one,
//! pushes the runnable on a locked queue and wakes the driver, except when
//! it runs inside the set's own poll on its thread (a local task waking or
//! spawning another): then an unlocked queue, and no wake, since that poll
//! runs the queue before it returns. Each poll of the
//! driver runs at most [`BUDGET`] local tasks and then yields, so a busy
//! set cannot starve the driving future or, during a stop, hold its thread.
//!
//! Dropping a `LocalSet` drops every task still in it, on its own thread:
//! each one's runnable is brought back (by waking it) and dropped, which
//! cancels it (its `JoinHandle` reports cancellation).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::panic::Location;
use std::pin::{pin, Pin};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use async_task::Runnable;
use parking_lot::Mutex;
use slab::Slab;

use super::cell::TaskFuture;
use super::id::TaskMeta;
use super::{Id, JoinHandle};

/// Local tasks a driver runs per poll before it yields.
const BUDGET: usize = 61;

/// A set of `!Send` tasks that run on the thread that drives the set.
///
/// Spawn into it with [`spawn_local`] (inside [`LocalSet::run_until`],
/// [`LocalSet::block_on`] or while awaiting the set) or with
/// [`LocalSet::spawn_local`] (anywhere on its thread). The tasks run only
/// while the set is driven: by `run_until(fut)` until `fut` completes, by
/// `block_on`, or by awaiting the set itself, which completes once every
/// task in it has.
///
/// For stops of the world and quiescence, the local tasks count as part of
/// the task that drives the set: see the [`task` module docs](crate::task)
/// and the README ("Local tasks and stops").
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let rt = safepoint::Runtime::new().unwrap();
/// let local = safepoint::task::LocalSet::new();
/// let log = Rc::new(RefCell::new(Vec::new())); // not Send
/// local.block_on(&rt, async {
///     let l = log.clone();
///     let h = safepoint::task::spawn_local(async move {
///         safepoint::time::sleep(std::time::Duration::from_millis(1)).await;
///         l.borrow_mut().push("local");
///     });
///     h.await.unwrap();
/// });
/// assert_eq!(*log.borrow(), ["local"]);
/// ```
pub struct LocalSet {
    inner: Rc<Inner>,
}

struct Inner {
    queue: Arc<Queue>,
    /// Tasks queued from inside the set's own poll, on its own thread: no
    /// lock, no wake (see [`Queue::push`]).
    local: RefCell<VecDeque<Runnable<TaskMeta>>>,
    /// Every local task not yet dropped, with a waker to bring its runnable
    /// back when the set is dropped. A slab: a task's guard knows its key,
    /// so adding and removing a task costs no hashing.
    live: RefCell<Slab<Waker>>,
}

/// The run queue; `Send + Sync`, since a local task may be woken from any
/// thread (the reactor, a timer, another task).
#[derive(Default)]
struct Queue {
    runnables: Mutex<VecDeque<Runnable<TaskMeta>>>,
    /// The waker of the task driving the set.
    driver: Mutex<Option<Waker>>,
    /// The set was dropped: a task spawned now is cancelled at once.
    closed: AtomicBool,
}

impl Queue {
    /// Queues a woken (or new) task. From inside this set's own poll (a
    /// local task waking or spawning another, a yield) it goes on the
    /// owner's unlocked queue and wakes nobody: the poll runs the queue
    /// before it returns. From anywhere else it goes on the locked queue
    /// and wakes the driver.
    fn push(&self, runnable: Runnable<TaskMeta>) {
        let mut runnable = Some(runnable);
        let _ = CURRENT.try_with(|c| {
            if let Ok(current) = c.try_borrow() {
                if let Some(inner) = current.as_ref() {
                    if std::ptr::eq(&*inner.queue, self) {
                        if let Ok(mut local) = inner.local.try_borrow_mut() {
                            local.extend(runnable.take());
                        }
                    }
                }
            }
        });
        let Some(runnable) = runnable else { return };
        self.runnables.lock().push_back(runnable);
        let driver = self.driver.lock().clone();
        if let Some(driver) = driver {
            driver.wake();
        }
    }

    fn register(&self, waker: &Waker) {
        let mut driver = self.driver.lock();
        match &*driver {
            Some(w) if w.will_wake(waker) => {}
            _ => *driver = Some(waker.clone()),
        }
    }
}

thread_local! {
    /// The set being driven on this thread, for [`spawn_local`].
    static CURRENT: RefCell<Option<Rc<Inner>>> = const { RefCell::new(None) };
}

/// Makes a set current on this thread until dropped (sets nest).
struct Entered {
    prev: Option<Rc<Inner>>,
}

impl Entered {
    fn new(inner: &Rc<Inner>) -> Entered {
        Entered {
            prev: CURRENT.with(|c| c.replace(Some(inner.clone()))),
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
    }
}

/// Removes a task from its set's live list when its future is dropped
/// (completed, cancelled, or dropped with the set).
struct Live {
    set: Weak<Inner>,
    key: usize,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(set) = self.set.upgrade() {
            if let Ok(mut live) = set.live.try_borrow_mut() {
                live.try_remove(self.key);
            }
        }
    }
}

/// Ids for local tasks spawned where no runtime is current (before the set
/// is driven): from the top half of the id space, so they cannot collide
/// with a runtime's ids, which count up from 1.
fn local_id() -> Id {
    static NEXT: AtomicU64 = AtomicU64::new(1 << 63);
    Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Inner {
    fn spawn<F>(
        self: &Rc<Inner>,
        future: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let id = crate::context::try_current()
            .map(|h| h.shared.next_id())
            .unwrap_or_else(local_id);
        // The key is taken now and filled with the waker once the task
        // exists; until then it holds a no-op waker.
        let key = self.live.borrow_mut().insert(Waker::noop().clone());
        let live = Live {
            set: Rc::downgrade(self),
            key,
        };
        let future = TaskFuture::new(
            async move {
                let _live = live;
                future.await
            },
            id,
            None,
            None,
        );
        let queue = self.queue.clone();
        let meta = TaskMeta::new(id, None, location);
        let (runnable, task) = async_task::Builder::new()
            .metadata(meta)
            .spawn_local(move |_| future, move |runnable| queue.push(runnable));
        if self.queue.closed.load(Ordering::Acquire) {
            drop(runnable); // cancels: the handle reports it
            return JoinHandle::new(task);
        }
        self.live.borrow_mut()[key] = runnable.waker();
        runnable.schedule();
        JoinHandle::new(task)
    }

    /// Runs up to [`BUDGET`] queued tasks; true if it stopped with work
    /// left (the caller yields and comes back).
    fn tick(&self) -> bool {
        // What other threads (or this one, outside a poll) queued joins
        // the local queue once per poll; anything they queue later wakes
        // the driver again.
        {
            let mut remote = self.queue.runnables.lock();
            if !remote.is_empty() {
                self.local.borrow_mut().extend(remote.drain(..));
            }
        }
        for _ in 0..BUDGET {
            let next = self.local.borrow_mut().pop_front();
            match next {
                Some(runnable) => {
                    runnable.run();
                }
                None => return false,
            }
        }
        true
    }

    /// Drops every queued runnable (cancelling its task), at drop.
    fn drop_queued(&self) {
        loop {
            let next = self.local.borrow_mut().pop_front();
            let next = next.or_else(|| self.queue.runnables.lock().pop_front());
            match next {
                Some(runnable) => drop(runnable),
                None => return,
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.live.borrow().is_empty()
    }
}

impl LocalSet {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let local = safepoint::task::LocalSet::new();
    /// # drop(local);
    /// ```
    pub fn new() -> LocalSet {
        LocalSet {
            inner: Rc::new(Inner {
                queue: Arc::new(Queue::default()),
                local: RefCell::new(VecDeque::new()),
                live: RefCell::new(Slab::new()),
            }),
        }
    }

    /// Spawns the `!Send` `future` into this set. It runs when the set is
    /// driven (`run_until`, `block_on`, or awaiting the set).
    ///
    /// The output must be `Send`, since the returned [`JoinHandle`] is the
    /// runtime's ordinary one (it can be awaited from any task).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let local = safepoint::task::LocalSet::new();
    /// let rc = Rc::new(41);
    /// let h = local.spawn_local(async move { *rc + 1 });
    /// rt.block_on(local); // awaiting the set runs its tasks to completion
    /// assert!(h.is_finished());
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(future, Location::caller())
    }

    /// Runs `future` to completion, running the set's tasks alongside it
    /// on this thread (inside its polls). Tasks still unfinished when
    /// `future` completes stay in the set, to run the next time it is
    /// driven.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let local = safepoint::task::LocalSet::new();
    /// let out = rt.block_on(local.run_until(async {
    ///     let rc = Rc::new(2);
    ///     safepoint::task::spawn_local(async move { *rc * 21 }).await.unwrap()
    /// }));
    /// assert_eq!(out, 42);
    /// ```
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        let _forget = ForgetDriver(&self.inner.queue);
        let mut future = pin!(future);
        poll_fn(|cx| {
            let _entered = Entered::new(&self.inner);
            self.inner.queue.register(cx.waker());
            if let Poll::Ready(out) = future.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            if self.inner.tick() {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await
    }

    /// `rt.block_on(self.run_until(future))`: blocks this thread on
    /// `future` with the set's tasks running alongside it.
    ///
    /// # Panics
    ///
    /// As [`Runtime::block_on`](crate::Runtime::block_on): on a worker
    /// thread or inside another `block_on`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let local = safepoint::task::LocalSet::new();
    /// let n = local.block_on(&rt, async {
    ///     let cell = std::rc::Rc::new(std::cell::Cell::new(0));
    ///     let c = cell.clone();
    ///     safepoint::task::spawn_local(async move { c.set(7) }).await.unwrap();
    ///     cell.get()
    /// });
    /// assert_eq!(n, 7);
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, rt: &crate::Runtime, future: F) -> F::Output {
        rt.block_on(self.run_until(future))
    }
}

/// Forgets the driver's waker when the driving ends: waking a `block_on`
/// that has returned would count a future that no longer exists as
/// runnable.
struct ForgetDriver<'a>(&'a Queue);

impl Drop for ForgetDriver<'_> {
    fn drop(&mut self) {
        self.0.driver.lock().take();
    }
}

impl Future for LocalSet {
    type Output = ();

    /// Runs the set's tasks; ready once every task in it has finished
    /// (including tasks they spawn).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let _entered = Entered::new(&self.inner);
        self.inner.queue.register(cx.waker());
        if self.inner.tick() {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else if self.inner.is_empty() {
            self.inner.queue.driver.lock().take();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for LocalSet {
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.queue.closed.store(true, Ordering::Release);
        // Drop every remaining task here, on its own thread: wake it so its
        // runnable comes to the queue (a no-op for one already queued), then
        // drop the runnables, which drops the futures. A task being woken by
        // another thread right now has its runnable in flight: come back for
        // it.
        loop {
            let wakers: Vec<Waker> = inner.live.borrow().iter().map(|(_, w)| w.clone()).collect();
            if wakers.is_empty() {
                break;
            }
            for waker in wakers {
                waker.wake();
            }
            inner.drop_queued();
            if !inner.is_empty() {
                std::thread::yield_now();
            }
        }
        // Runnables woken after this point belong to cancelled tasks, whose
        // wakes schedule nothing; drop any stragglers all the same.
        inner.drop_queued();
    }
}

impl Default for LocalSet {
    fn default() -> LocalSet {
        LocalSet::new()
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet")
            .field("tasks", &self.inner.live.borrow().len())
            .finish()
    }
}

/// Spawns the `!Send` `future` on the [`LocalSet`] being driven on this
/// thread (inside [`LocalSet::run_until`], [`LocalSet::block_on`], or a
/// local task). It counts as part of the task that drives the set, for
/// stops and quiescence.
///
/// The output must be `Send`, since the returned [`JoinHandle`] is the
/// runtime's ordinary one.
///
/// # Panics
///
/// Panics when no `LocalSet` is being driven on this thread: use
/// `LocalSet::run_until` or `LocalSet::block_on` (or
/// [`LocalSet::spawn_local`] from outside), or [`crate::spawn`] for a
/// `Send` future.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// let rt = safepoint::Runtime::new().unwrap();
/// let local = safepoint::task::LocalSet::new();
/// local.block_on(&rt, async {
///     let data = Rc::new(vec![1, 2, 3]);
///     let d = data.clone();
///     let sum = safepoint::task::spawn_local(async move { d.iter().sum::<i32>() });
///     assert_eq!(sum.await.unwrap(), 6);
/// });
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let location = Location::caller();
    let inner = CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "safepoint::task::spawn_local called outside a LocalSet: a !Send task needs a \
             LocalSet to run it; drive one with `LocalSet::run_until(fut)` or \
             `LocalSet::block_on(&rt, fut)` and call spawn_local inside it (or use \
             `LocalSet::spawn_local`), or use `safepoint::spawn` for a Send future"
        )
    });
    inner.spawn(future, location)
}
