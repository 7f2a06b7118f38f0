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
//! one subtract (see `safepoint/census.rs`, "the block_on count"). The
//! census lock is taken once on entry and once on exit, to list the call
//! for reports.

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
    let registered = Registered::new(shared, id, location);
    let slot = &registered.slot;
    let main = StdArc::new(MainWaker {
        parker: ThreadParker::new(),
        shared: shared.clone(),
        slot: slot.clone(),
    });
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let BeginPoll::Held = shared.census.begin_block_on_poll(slot, &waker) {
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

/// The `block_on` future's waker: counts the future runnable in the census
/// (protocol point 11), then unparks the thread.
struct MainWaker {
    parker: ThreadParker,
    shared: Arc<Shared>,
    slot: StdArc<BlockOnSlot>,
}

impl Wake for MainWaker {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &StdArc<Self>) {
        let shared = &self.shared;
        let wakes = shared
            .census
            .count_wake(&self.slot, || shared.has_visible_work());
        shared.deliver(wakes);
        self.parker.unpark();
    }
}

/// A `block_on` call in progress, listed in the census; unlisted (and a
/// wake's leftover count dropped) when the call ends, even by a panic.
/// Shared with the deterministic flavour's `block_on`.
pub(crate) struct Registered<'a> {
    shared: &'a Shared,
    pub(crate) slot: StdArc<BlockOnSlot>,
}

impl<'a> Registered<'a> {
    pub(crate) fn new(
        shared: &'a Shared,
        id: crate::task::Id,
        location: &'static Location<'static>,
    ) -> Registered<'a> {
        Registered {
            shared,
            slot: shared.census.register_block_on(id, location),
        }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let shared = self.shared;
        let wakes = shared
            .census
            .unregister_block_on(&self.slot, || shared.has_visible_work());
        shared.deliver(wakes);
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
                .begin(snapshot.generation, slot.id, || TaskInfo {
                    id: slot.id,
                    name: Some(StdArc::from("block_on")),
                    location: slot.location,
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
                .end(self.slot.id, self.slot.is_woken());
        }
        let wakes = shared
            .census
            .end_block_on_poll(self.slot, || shared.has_visible_work());
        shared.deliver(wakes);
    }
}
