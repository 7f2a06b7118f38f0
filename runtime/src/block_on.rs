//! `block_on` on the multi-thread flavour: run one future on the calling
//! thread, as a task.
//!
//! The future given to `block_on` counts as a task for the safepoint
//! protocol (protocol point 11): a wake counts it runnable in the census at once and
//! its poll counts as running, so no stop or quiescence is declared between
//! the two; during a stop it is not polled unless it is the requester (a
//! wake is held until the resume, like a queued task's); and a stop's
//! laggard report can name it. The thread sleeps on its own parker between
//! polls; the workers run everything else.
//!
//! A poll costs no lock unless a stop is pending or someone waits for
//! quiescence: counting it is one atomic add on the census word, ending it
//! one subtract (see `safepoint/census.rs`, "the block_on count"). Nor
//! does a call: the thread's waker and census slot are made once per thread
//! and runtime and reused (as tokio's `CachedParkThread`); a call marks the
//! slot live and then done with one store and one swap.

#[cfg(not(loom))] // the cache is not used under loom
use std::cell::Cell;
use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use crate::context;
use crate::handle::Handle;
use crate::safepoint::census::{BeginPoll, BlockOnSlot};
use crate::safepoint::flags::RUNNING;
use crate::scheduler::park::ThreadParker;
use crate::scheduler::Shared;
use crate::sync::Arc;
use crate::task::TaskInfo;

pub(crate) fn block_on<F: Future>(
    handle: &Handle,
    future: F,
    location: &'static Location<'static>,
) -> F::Output {
    let _block_on = context::enter_block_on("Runtime::block_on");
    let shared = &handle.shared;
    assert_not_holding_world(shared);
    let _enter = context::enter(handle);
    let id = shared.next_id();
    let call = Call::begin(shared, id, location);
    let Cached { main, waker } = call.cached();
    let slot = &main.slot;
    let mut cx = Context::from_waker(waker);
    let mut future = pin!(future);
    loop {
        if let BeginPoll::Held = shared.census.begin_block_on_poll(slot, waker) {
            // Stopped, and not by us: the resume wakes us.
            main.parker.park();
            continue;
        }
        let poll = {
            let _polling = Polling::begin(shared, slot);
            let _task = context::CurrentTask::set(id);
            future.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(out) = poll {
            return out;
        }
        main.parker.park();
    }
}

/// Panics if the calling thread holds the world of this runtime stopped:
/// nothing but the holder's resume can move the tasks, so a blocking call
/// would wait forever (protocol point 14).
pub(crate) fn assert_not_holding_world(shared: &Shared) {
    if shared.census.stopped_by_this_thread() {
        panic!(
            "Runtime::block_on called by the thread that holds the runtime's stopped world: no \
             task can run until it resumes, so this would wait forever; drop the StoppedWorld \
             first, or block on another thread"
        );
    }
}

/// How the waker reaches the runtime. A thread's cached waker must not keep
/// a dropped runtime alive (its driver, its threads' handles), so outside
/// loom it holds a weak reference, upgraded only by a wake that counts.
/// Loom's `Arc` has no weak references; the models make a waker per call.
#[cfg(not(loom))]
type SharedLink = std::sync::Weak<Shared>;
#[cfg(loom)]
type SharedLink = Arc<Shared>;

#[cfg(not(loom))]
fn link(shared: &Arc<Shared>) -> SharedLink {
    Arc::downgrade(shared)
}

#[cfg(loom)]
fn link(shared: &Arc<Shared>) -> SharedLink {
    shared.clone()
}

/// The `block_on` future's waker: counts the future runnable in the census
/// (protocol point 11), then unparks the thread. One per thread and
/// runtime, reused by every call (see [`Cached`]).
struct MainWaker {
    parker: ThreadParker,
    shared: SharedLink,
    slot: StdArc<BlockOnSlot>,
}

#[cfg(not(loom))] // the cache is not used under loom
impl MainWaker {
    fn is_for(&self, shared: &Arc<Shared>) -> bool {
        std::ptr::eq(self.shared.as_ptr(), Arc::as_ptr(shared))
    }
}

impl Wake for MainWaker {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &StdArc<Self>) {
        // A wake between calls, or a second one before the poll, counts
        // nothing: skip the census (and the upgrade) for it. Not under
        // loom, which must see `count_wake`'s lock before the slot.
        if cfg!(loom) || self.slot.may_count_wake() {
            #[cfg(not(loom))]
            let shared = self.shared.upgrade();
            #[cfg(loom)]
            let shared = Some(&self.shared);
            if let Some(shared) = shared {
                let wakes = shared
                    .census
                    .count_wake(&self.slot, || shared.has_visible_work());
                shared.deliver(wakes);
            }
        }
        self.parker.unpark();
    }
}

/// A thread's `block_on` waker, kept between calls so that a call allocates
/// nothing and lists nothing under the census lock (tokio keeps its
/// `CachedParkThread` for the same reason). A wake left over from an earlier
/// call that lands in a later one is a spurious wake for that one: the
/// future is polled once more, as any future may be.
struct Cached {
    main: StdArc<MainWaker>,
    waker: Waker,
}

#[cfg(not(loom))]
std::thread_local! {
    static CACHED: Cell<Option<Cached>> = const { Cell::new(None) };
}

impl Cached {
    /// This thread's cached waker for `shared`, or a new one (the first
    /// call, another runtime than last time, or a nested call that found
    /// the cache taken).
    fn take(shared: &Arc<Shared>, location: &'static Location<'static>) -> Cached {
        #[cfg(not(loom))]
        if let Some(cached) = CACHED.try_with(Cell::take).ok().flatten() {
            if cached.main.is_for(shared) {
                return cached;
            }
        }
        let main = StdArc::new(MainWaker {
            parker: ThreadParker::new(),
            shared: link(shared),
            slot: shared.census.new_block_on_slot(location),
        });
        Cached {
            waker: Waker::from(main.clone()),
            main,
        }
    }

    /// Keeps it for this thread's next call.
    fn put_back(self) {
        #[cfg(not(loom))]
        let _ = CACHED.try_with(|c| c.set(Some(self)));
    }
}

/// A `block_on` call in progress, live in the census; ended (and a wake's
/// leftover count dropped) when the call ends, even by a panic. The
/// deterministic flavour's `block_on`, which makes a slot per call.
pub(crate) struct Registered<'a> {
    shared: &'a Shared,
    pub(crate) slot: StdArc<BlockOnSlot>,
}

impl<'a> Registered<'a> {
    /// Begins a call on a new slot.
    pub(crate) fn new(
        shared: &'a Shared,
        id: crate::task::Id,
        location: &'static Location<'static>,
    ) -> Registered<'a> {
        let slot = shared.census.new_block_on_slot(location);
        shared.census.register_block_on(&slot, id, location);
        Registered { shared, slot }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        end_call(self.shared, &self.slot);
    }
}

/// Ends the call on `slot` in the census.
fn end_call(shared: &Shared, slot: &BlockOnSlot) {
    let wakes = shared
        .census
        .unregister_block_on(slot, || shared.has_visible_work());
    shared.deliver(wakes);
}

/// A multi-thread `block_on` call, on the thread's cached slot: live in the
/// census until it ends (even by a panic), then back in the cache.
struct Call<'a> {
    shared: &'a Shared,
    /// `Some` until the drop hands it back.
    cached: Option<Cached>,
}

impl<'a> Call<'a> {
    fn begin(
        shared: &'a Arc<Shared>,
        id: crate::task::Id,
        location: &'static Location<'static>,
    ) -> Call<'a> {
        let cached = Cached::take(shared, location);
        shared
            .census
            .register_block_on(&cached.main.slot, id, location);
        Call {
            shared,
            cached: Some(cached),
        }
    }

    fn cached(&self) -> &Cached {
        self.cached.as_ref().expect("taken only by the drop")
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if let Some(cached) = self.cached.take() {
            // Ended first: a slot in the cache is never live.
            end_call(self.shared, &cached.main.slot);
            cached.put_back();
        }
    }
}

/// A `block_on` poll in progress: logged for a pending stop's report, and
/// ended in the census when dropped, so a panicking future still leaves the
/// census right. Shared with the deterministic flavour.
pub(crate) struct Polling<'a> {
    shared: &'a Shared,
    slot: &'a BlockOnSlot,
    logged: bool,
}

impl<'a> Polling<'a> {
    /// The poll was counted by `begin_block_on_poll`.
    pub(crate) fn begin(shared: &'a Shared, slot: &'a BlockOnSlot) -> Polling<'a> {
        let snapshot = shared.census.flags().snapshot_relaxed();
        let logged = snapshot.phase != RUNNING;
        if logged {
            shared
                .block_on_laggards
                .lock()
                .begin(snapshot.generation, slot.id(), || TaskInfo {
                    id: slot.id(),
                    name: Some(StdArc::from("block_on")),
                    location: slot.location(),
                });
        }
        Polling {
            shared,
            slot,
            logged,
        }
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let shared = self.shared;
        if self.logged {
            // Still runnable if woken during the poll (a yield, say): then it
            // stays on the laggard list of a pending stop.
            shared
                .block_on_laggards
                .lock()
                .end(self.slot.id(), self.slot.is_woken());
        }
        let wakes = shared
            .census
            .end_block_on_poll(self.slot, || shared.has_visible_work());
        shared.deliver(wakes);
    }
}
