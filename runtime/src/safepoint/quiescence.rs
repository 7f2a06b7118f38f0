//! Quiescence: "run until every task is blocked".
//!
//! The same census that declares a stop answers this: when the last
//! participant goes idle (every worker parked, no `block_on` future being
//! polled, the injector empty), every task is blocked or finished. Waiters
//! are woken at that moment; nothing walks the tasks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};

use crate::context;
use crate::scheduler::park::ThreadParker;
use crate::scheduler::Shared;
use crate::sync::Arc;

/// Blocks the calling thread until every task of the runtime is blocked or
/// finished (`Runtime::run_until_blocked`).
pub(crate) fn run_until_blocked(shared: &Arc<Shared>) {
    context::assert_may_block(
        "Runtime::run_until_blocked",
        "use `safepoint::task::wait_all_blocked().await` from a task",
    );
    let _guard = context::enter_block_on("Runtime::run_until_blocked");
    if shared.census.stopped_by_this_thread() {
        panic!(
            "Runtime::run_until_blocked called by the thread that holds the runtime's stopped \
             world: tasks at safepoints cannot move until it resumes, so this would wait \
             forever; drop the StoppedWorld first"
        );
    }
    crate::flavor::run_until_blocked(shared)
}

/// The multi-thread flavour's wait: park until the census reports
/// quiescence (protocol point 8).
pub(crate) fn wait_blocking(shared: &Arc<Shared>) {
    let parker = StdArc::new(ThreadParker::new());
    let waker = Waker::from(parker.clone());
    let mut past = None;
    loop {
        match shared
            .census
            .poll_quiescence(&waker, past, || shared.has_visible_work())
        {
            Ok(wakes) => {
                shared.deliver(wakes);
                return;
            }
            Err(epoch) => past = Some(epoch),
        }
        parker.park();
    }
}

/// Waits until every other task of this runtime is blocked (on I/O, a
/// timer, a channel, a join handle, a safepoint) or finished, and no worker
/// is polling: the question "run the event loop until all tasks are
/// blocked", asked from inside.
///
/// # Panics
///
/// Panics when awaited outside a safepoint runtime.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// let rt = safepoint::Runtime::new().unwrap();
/// let done = Arc::new(AtomicUsize::new(0));
/// rt.block_on(async {
///     for _ in 0..10 {
///         let done = done.clone();
///         safepoint::spawn(async move { done.fetch_add(1, Ordering::SeqCst); });
///     }
///     safepoint::task::wait_all_blocked().await;
///     assert_eq!(done.load(Ordering::SeqCst), 10);
/// });
/// ```
pub fn wait_all_blocked() -> WaitAllBlocked {
    WaitAllBlocked { waiting_past: None }
}

/// The future returned by [`wait_all_blocked`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct WaitAllBlocked {
    waiting_past: Option<u64>,
}

impl Future for WaitAllBlocked {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let handle = context::try_current()
            .expect("wait_all_blocked() awaited outside a safepoint runtime; use Runtime::run_until_blocked from outside");
        let shared = &handle.shared;
        match shared
            .census
            .poll_quiescence(cx.waker(), self.waiting_past, || shared.has_visible_work())
        {
            Ok(wakes) => {
                shared.deliver(wakes);
                Poll::Ready(())
            }
            Err(epoch) => {
                self.waiting_past = Some(epoch);
                Poll::Pending
            }
        }
    }
}
