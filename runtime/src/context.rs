//! What the current thread is doing for which runtime.
//!
//! One thread-local record: the runtime handle that `spawn`, `Handle::current`
//! and the net/time types find; the worker-local queues when this thread is
//! a worker (so a task woken by the task running here goes to this worker's
//! LIFO slot instead of the global injector); the id of the task being polled
//! (for `task::id()` and to recognise a stop's requester); and whether this
//! thread is inside `block_on` (which must not nest).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::handle::Handle;
use crate::scheduler::{Shared, WorkerLocal};
use crate::sync::thread_local;
use crate::task::Id;

pub(crate) struct Context {
    handle: RefCell<Option<Handle>>,
    worker: RefCell<Option<Rc<WorkerLocal>>>,
    current_task: Cell<Option<Id>>,
    in_block_on: Cell<bool>,
    /// How many runtime contexts are entered on this thread: each guard
    /// remembers its depth, so one dropped out of order is caught.
    depth: Cell<usize>,
    /// The address of the runtime (`Shared`) whose stopped world this
    /// thread is releasing, 0 if none (see [`release_quietly`]).
    releasing: Cell<usize>,
}

impl Context {
    const fn new() -> Context {
        Context {
            handle: RefCell::new(None),
            worker: RefCell::new(None),
            current_task: Cell::new(None),
            in_block_on: Cell::new(false),
            depth: Cell::new(0),
            releasing: Cell::new(0),
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    static CONTEXT: Context = const { Context::new() };
}

// loom's `thread_local!` has no `const` form.
#[cfg(loom)]
thread_local! {
    static CONTEXT: Context = Context::new();
}

/// Runs `f` with the handle of the runtime this thread is in, borrowed
/// (`None` outside one). For per-task paths (`spawn`): a clone of the
/// handle is a write to the runtime's reference count, a cache line that
/// every worker dropping a finished task also writes. As in tokio's
/// `with_current`, `f` must not enter or leave a runtime on this thread.
pub(crate) fn with_current<R>(f: impl FnOnce(&Handle) -> R) -> Option<R> {
    CONTEXT
        .try_with(|cx| cx.handle.borrow().as_ref().map(f))
        .ok()
        .flatten()
}

/// The handle of the runtime this thread is in, if any.
pub(crate) fn try_current() -> Option<Handle> {
    with_current(Handle::clone)
}

/// Where a task woken or spawned on this thread for runtime `shared` goes.
pub(crate) enum WakeTarget<'a> {
    /// This thread is one of `shared`'s workers.
    Worker(&'a WorkerLocal),
    /// This thread is releasing `shared`'s stopped world: queue, wake no one.
    Releasing,
    /// Anywhere else: the injector, waking a worker if needed.
    Elsewhere,
}

/// Runs `f` with where a task woken or spawned here for `shared` goes; one
/// thread-local access, as the wake and spawn paths need.
pub(crate) fn with_wake_target<R>(shared: &Shared, f: impl FnOnce(WakeTarget<'_>) -> R) -> R {
    let mut f = Some(f);
    match CONTEXT.try_with(|cx| {
        let f = f.take().unwrap();
        if cx.releasing.get() == shared as *const Shared as usize {
            return f(WakeTarget::Releasing);
        }
        match cx.worker.borrow().as_deref() {
            Some(w) if w.belongs_to(shared) => f(WakeTarget::Worker(w)),
            _ => f(WakeTarget::Elsewhere),
        }
    }) {
        Ok(r) => r,
        Err(_) => (f.take().unwrap())(WakeTarget::Elsewhere),
    }
}

/// Runs `release` (which wakes the tasks a stop held) so that those wakes
/// only queue their tasks, in the injector, and wake no worker; the caller
/// wakes workers afterwards. Waking a worker can hand this thread's CPU to
/// the wakee at once (on a busy machine it often runs first), and every
/// task not yet queued would stay held until this thread runs again:
/// milliseconds, under load, added to the pause.
pub(crate) fn release_quietly(shared: &Shared, release: impl FnOnce()) {
    let prev = CONTEXT
        .try_with(|cx| cx.releasing.replace(shared as *const Shared as usize))
        .ok();
    release();
    if let Some(prev) = prev {
        let _ = CONTEXT.try_with(|cx| cx.releasing.set(prev));
    }
}

/// Whether this thread is a worker of any safepoint runtime.
pub(crate) fn is_worker_thread() -> bool {
    CONTEXT
        .try_with(|cx| cx.worker.borrow().is_some())
        .unwrap_or(false)
}

/// The id of the task being polled on this thread.
pub(crate) fn current_task() -> Option<Id> {
    CONTEXT.try_with(|cx| cx.current_task.get()).ok().flatten()
}

/// The id of the task being polled, restored when dropped, even by a
/// panicking poll (a stale id would make this thread pass for that task:
/// a requester, say).
pub(crate) struct CurrentTask(Option<Id>);

impl CurrentTask {
    pub(crate) fn set(id: Id) -> CurrentTask {
        CurrentTask(set_current_task(Some(id)))
    }
}

impl Drop for CurrentTask {
    fn drop(&mut self) {
        set_current_task(self.0);
    }
}

/// Sets the id of the task being polled; returns the previous one.
pub(crate) fn set_current_task(id: Option<Id>) -> Option<Id> {
    CONTEXT
        .try_with(|cx| cx.current_task.replace(id))
        .ok()
        .flatten()
}

/// Restores the previous runtime context when dropped.
pub(crate) struct EnterGuard {
    /// `None` when this thread's locals were already torn down at `enter`
    /// (a runtime dropped from a thread-local destructor): then nothing was
    /// entered and there is nothing to restore.
    entered: Option<Entered>,
    _io: Option<safepoint_io::driver::EnterGuard>,
}

struct Entered {
    prev: Option<Handle>,
    depth: usize,
}

/// Makes `handle` this thread's current runtime until the guard drops.
///
/// During thread teardown (the thread-local is gone) this enters nothing
/// rather than panicking: the caller still runs, only without a current
/// runtime, as tokio degrades there.
pub(crate) fn enter(handle: &Handle) -> EnterGuard {
    let io = handle.shared.io.as_ref().and_then(|io| io.try_enter());
    let entered = CONTEXT
        .try_with(|cx| {
            let depth = cx.depth.get() + 1;
            cx.depth.set(depth);
            Entered {
                prev: cx.handle.replace(Some(handle.clone())),
                depth,
            }
        })
        .ok();
    EnterGuard { entered, _io: io }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let Some(entered) = self.entered.take() else {
            return;
        };
        // An outer guard dropped before an inner one unwinds the context
        // to where it was entered (so the runtime context and the driver
        // context, restored by `_io`, agree) and panics; the inner guards,
        // dropped later, find it unwound already and do nothing.
        let in_order = CONTEXT
            .try_with(|cx| {
                let depth = cx.depth.get();
                if depth < entered.depth {
                    return true;
                }
                cx.depth.set(entered.depth - 1);
                *cx.handle.borrow_mut() = entered.prev;
                depth == entered.depth
            })
            // Torn down meanwhile: nothing left to restore.
            .unwrap_or(true);
        if !in_order && !std::thread::panicking() {
            panic!(
                "EnterGuard values dropped out of order: guards returned by Runtime::enter / \
                 Handle::enter must be dropped in the reverse order they were acquired"
            );
        }
    }
}

/// Marks this thread as a worker for the guard's lifetime.
pub(crate) struct WorkerGuard;

pub(crate) fn enter_worker(local: Rc<WorkerLocal>) -> WorkerGuard {
    let _ = CONTEXT.try_with(|cx| *cx.worker.borrow_mut() = Some(local));
    WorkerGuard
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let _ = CONTEXT.try_with(|cx| cx.worker.borrow_mut().take());
    }
}

/// Marks this thread as inside `block_on` for the guard's lifetime.
pub(crate) struct BlockOnGuard;

/// Enters `block_on`.
///
/// # Panics
///
/// Panics if this thread is a worker or already inside `block_on`: a
/// blocking wait there would stall every task queued behind it.
pub(crate) fn enter_block_on(what: &str) -> BlockOnGuard {
    assert_may_block(what, "`.await` the future instead");
    if CONTEXT
        .try_with(|cx| cx.in_block_on.replace(true))
        .unwrap_or(false)
    {
        panic!(
            "{what} called inside `block_on`: a runtime cannot be blocked on from within \
             a future it is already blocking on; `.await` the future instead"
        );
    }
    BlockOnGuard
}

impl Drop for BlockOnGuard {
    fn drop(&mut self) {
        let _ = CONTEXT.try_with(|cx| cx.in_block_on.set(false));
    }
}

/// Whether this thread is inside `block_on`.
pub(crate) fn is_in_block_on() -> bool {
    CONTEXT.try_with(|cx| cx.in_block_on.get()).unwrap_or(false)
}

/// Panics if this thread is inside `block_on`: a blocking wait for the world
/// to stop (or go idle) there waits for the very future it blocks.
pub(crate) fn assert_not_in_block_on(what: &str, instead: &str) {
    if is_in_block_on() {
        panic!(
            "{what} called inside `block_on`: it would wait for the future it is blocking, \
             forever; {instead}"
        );
    }
}

/// Panics with a message naming the async alternative if this thread is a
/// runtime worker: a blocking call there would hold a worker hostage.
pub(crate) fn assert_may_block(what: &str, instead: &str) {
    if is_worker_thread() {
        panic!(
            "{what} called from a safepoint worker thread: blocking a worker stalls every task \
             queued on it; {instead}"
        );
    }
}
