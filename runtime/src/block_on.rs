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
use std::task::{Context, Poll, Wake, Waker};

use crate::context;
use crate::handle::Handle;
use crate::safepoint::barrier::RUNNING;
use crate::scheduler::park::ThreadParker;
use crate::sync::{Arc, AtomicBool, Ordering};
use crate::task::TaskInfo;

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
    let main = StdArc::new(MainWaker {
        parker: ThreadParker::new(),
        shared: shared.clone(),
        counted: AtomicBool::new(false),
    });
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let _count = Registered::new(handle, &main);
    loop {
        {
            let mut inner = shared.idle.lock();
            if inner.barrier.is_stopped() && !inner.barrier.is_requester(Some(id)) {
                // Stopped, and not by us: stay put until the resume. A wake
                // counted before the stop keeps counting: the future is
                // runnable, held like a queued task.
                inner.barrier.hold(waker.clone());
                drop(inner);
                main.parker.park();
                continue;
            }
            // The poll counts as running; a wake that already counted the
            // future as runnable hands its count over to the poll.
            if !main.counted.swap(false, Ordering::AcqRel) {
                inner.block_on_active += 1;
            }
        }
        let active = Active { handle };
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
        // Still runnable if it was woken during the poll (a yield, say):
        // then it stays on the laggard list of a pending stop.
        shared
            .block_on_laggards
            .lock()
            .end(id, main.counted.load(Ordering::Acquire));
        drop(active);
        if let Poll::Ready(out) = poll {
            return out;
        }
        main.parker.park();
    }
}

/// The `block_on` future's waker. Waking it counts the future as runnable
/// in the census at once (under the census lock), as a queued task is: so a
/// stop or quiescence cannot be declared between the wake and the poll.
/// While the world is stopped a wake is not counted (it is held until the
/// resume, like any wake during a stop).
struct MainWaker {
    parker: ThreadParker,
    shared: Arc<crate::scheduler::Shared>,
    /// Whether a wake has counted the future in `block_on_active` and no
    /// poll has taken that count over yet.
    counted: AtomicBool,
}

impl Wake for MainWaker {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &StdArc<Self>) {
        {
            let mut inner = self.shared.idle.lock();
            if !inner.barrier.is_stopped() && !self.counted.swap(true, Ordering::AcqRel) {
                inner.block_on_active += 1;
            }
        }
        self.parker.unpark();
    }
}

/// Counts a `block_on` in progress (its future is a live task). On the way
/// out it also drops a runnable count left by a wake that no poll took over
/// (a wake during the last poll).
struct Registered<'a>(&'a Handle, &'a MainWaker);

impl<'a> Registered<'a> {
    fn new(handle: &'a Handle, main: &'a MainWaker) -> Self {
        handle.shared.idle.lock().block_on_count += 1;
        Registered(handle, main)
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let shared = &self.0.shared;
        let wakes = {
            let mut inner = shared.idle.lock();
            inner.block_on_count -= 1;
            // Left set: a wake after the return (a waker kept by a channel,
            // a JoinSet, a LocalSet) must not count a finished future as
            // runnable, which would keep the census from ever going idle.
            if self.1.counted.swap(true, Ordering::AcqRel) {
                inner.block_on_active -= 1;
                shared.check_all_idle(&mut inner)
            } else {
                crate::safepoint::barrier::Wakes::default()
            }
        };
        wakes.wake();
    }
}

/// A `block_on` poll in progress; its end may make everything idle. A
/// guard, so that a panicking future still leaves the census right.
struct Active<'a> {
    handle: &'a Handle,
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        let shared = &self.handle.shared;
        let wakes = {
            let mut inner = shared.idle.lock();
            inner.block_on_active -= 1;
            shared.check_all_idle(&mut inner)
        };
        wakes.wake();
    }
}
