//! `safepoint().await`: the point where a task lets the world stop.
//!
//! With no stop pending anywhere in the process this is one atomic load and
//! returns `Ready` on the first poll (protocol point 1). With a stop pending
//! on this task's runtime, the task parks here: its waker goes on the
//! barrier's list and the poll returns `Pending`, so the worker moves on and
//! the task counts as blocked. The resume (or the request's withdrawal)
//! wakes every parked task. A task released from a stop passes its safepoint
//! even if a new stop is requested before it runs again: it parks at its
//! next one, so back-to-back stops cannot pin a task in place.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::census::AtSafepoint;
use super::flags::STOPS_IN_PROCESS;
use crate::context;

/// A point where the world may stop.
///
/// Call it where the task's state is consistent (between requests, between
/// batches). When a stop is requested, the task parks here until the world
/// resumes; otherwise it costs one atomic load and never yields. Outside a
/// runtime it does nothing.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// rt.block_on(async {
///     for batch in 0..3 {
///         // ... apply `batch` ...
///         # let _ = batch;
///         safepoint::safepoint().await; // a stop sees whole batches only
///     }
/// });
/// ```
#[inline]
pub fn safepoint() -> Safepoint {
    Safepoint { parked_in: None }
}

/// The future returned by [`safepoint()`].
#[must_use = "a safepoint does nothing unless awaited"]
#[derive(Debug)]
pub struct Safepoint {
    /// The stop generation this task parked in, once parked.
    parked_in: Option<u64>,
}

impl Future for Safepoint {
    type Output = ();

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The fast path: no runtime in this process has a stop pending.
        // Acquire pairs with the SeqCst increment made under the census lock
        // when a request becomes active. A request that becomes active just
        // after this load is one this task did not see in time: it reaches a
        // later safepoint or blocks, and the stop waits for that.
        #[cfg(not(loom))]
        if self.parked_in.is_none()
            && STOPS_IN_PROCESS.load(std::sync::atomic::Ordering::Acquire) == 0
        {
            return Poll::Ready(());
        }
        #[cfg(loom)]
        let _ = &STOPS_IN_PROCESS;
        self.get_mut().poll_slow(cx)
    }
}

impl Safepoint {
    /// A stop is pending somewhere: find out whether it is this task's
    /// runtime, and park if so. Out of line so the fast path above inlines
    /// into the caller as a load and a branch.
    #[cold]
    #[inline(never)]
    fn poll_slow(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(handle) = context::try_current() else {
            return Poll::Ready(());
        };
        match handle.shared.census.poll_safepoint(
            context::current_task(),
            self.parked_in,
            cx.waker(),
        ) {
            AtSafepoint::Pass => Poll::Ready(()),
            AtSafepoint::Parked(generation) => {
                self.parked_in = Some(generation);
                Poll::Pending
            }
        }
    }
}
