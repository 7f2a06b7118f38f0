//! `block_on`: run one future on the calling thread, as a task.
//!
//! The future given to `block_on` counts as a task for the safepoint
//! protocol: while it is being polled nothing is idle (the census counts it
//! as active), during a stop it is not polled unless it is the requester
//! (a wake is held until the resume, like a queued task's), and a stop's
//! laggard report can name it. The thread sleeps on its own parker between
//! polls; the workers run everything else.

use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};

use crate::context;
use crate::handle::Handle;
use crate::safepoint::barrier::RUNNING;
use crate::scheduler::park::ThreadParker;
use crate::sync::Ordering;
use crate::task::{Id, TaskInfo};

pub(crate) fn block_on<F: Future>(
    handle: &Handle,
    future: F,
    location: &'static Location<'static>,
) -> F::Output {
    if handle.shared.det.is_some() {
        return crate::deterministic::runner::block_on(handle, future, location);
    }
    let _block_on = context::enter_block_on("Runtime::block_on");
    let _enter = context::enter(handle);
    let shared = &handle.shared;
    let id = shared.next_id();
    let parker = StdArc::new(ThreadParker::new());
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let _count = Registered::new(handle);
    loop {
        {
            let mut inner = shared.idle.lock();
            if inner.barrier.is_stopped() && !inner.barrier.is_requester(Some(id)) {
                // Stopped, and not by us: stay put until the resume.
                inner.barrier.hold(waker.clone());
                drop(inner);
                parker.park();
                continue;
            }
            inner.block_on_active += 1;
        }
        let active = Active { handle, id };
        if shared.flags.phase.load(Ordering::Relaxed) != RUNNING {
            let generation = shared.flags.generation.load(Ordering::Relaxed);
            shared
                .block_on_laggards
                .lock()
                .begin(generation, id, || TaskInfo {
                    id,
                    name: Some(StdArc::from("block_on")),
                    location,
                });
        }
        let prev = context::set_current_task(Some(id));
        let poll = future.as_mut().poll(&mut cx);
        context::set_current_task(prev);
        drop(active);
        if let Poll::Ready(out) = poll {
            return out;
        }
        parker.park();
    }
}

/// Counts a `block_on` in progress (its future is a live task).
struct Registered<'a>(&'a Handle);

impl<'a> Registered<'a> {
    fn new(handle: &'a Handle) -> Self {
        handle.shared.idle.lock().block_on_count += 1;
        Registered(handle)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.shared.idle.lock().block_on_count -= 1;
    }
}

/// A `block_on` poll in progress; its end may make everything idle. A
/// guard, so that a panicking future still leaves the census right.
struct Active<'a> {
    handle: &'a Handle,
    id: Id,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        shared.block_on_laggards.lock().end(self.id, false);
        let wakes = {
            let mut inner = shared.idle.lock();
            inner.block_on_active -= 1;
            shared.check_all_idle(&mut inner)
        };
        wakes.wake();
    }
}
