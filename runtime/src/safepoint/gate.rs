//! The implicit safepoint at every runtime resource (protocol point 10).
//!
//! While a stop is pending, a poll of a runtime resource that would complete
//! (socket readiness, a fired timer, a delivered signal, a finished task's
//! `JoinHandle`) parks the task as at `safepoint().await` instead. The
//! resources live in the I/O crate, which knows nothing of the scheduler:
//! they call `safepoint_io::gate::poll_proceed`, which reads one process-wide
//! counter and, only while some stop is pending, calls the hook installed
//! here. The hook finds the current task and its runtime in the thread's
//! context and asks the census.
//!
//! Why a task parked here is safe to stop: whether the data (or the deadline,
//! or the other task's output) was already there when the task awaited it is
//! timing, so the task's state at that await must already be consistent (a
//! task cannot tell an await that completed at once from one that waited).
//! Treating it as having arrived a moment earlier changes nothing it can
//! observe, except the moment.
//!
//! Who passes: a poll outside any task (a plain thread's executor), a task
//! of a runtime with no stop pending, a task holding a ticket (the
//! requester, or a request queued behind it: its own timeout must fire), and
//! a task released from the previous stop, once (so back-to-back stops
//! cannot pin it at the same await; see `Barrier::park_at_gate`).

use std::task::{Context, Poll};

use super::census::AtSafepoint;
use crate::context;

/// Installs the hook the I/O crate's resources call. Every runtime build
/// calls it; only the first call does anything.
pub(crate) fn install() {
    safepoint_io::gate::install(poll_gate);
}

/// The gate for a resource that is about to complete: `Ready` to go on,
/// `Pending` when the current task was parked (its waker is kept and woken
/// at the resume, and the resource must not consume anything).
///
/// One atomic load while no stop is pending anywhere in the process. Under
/// loom that counter is a std static the models cannot see, so the census is
/// asked every time (its own first check is a loom atomic).
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    #[cfg(not(loom))]
    return safepoint_io::gate::poll_proceed(cx);
    #[cfg(loom)]
    return poll_gate(cx);
}

/// Whether a stop is pending anywhere in the process (always true under
/// loom, see [`poll_proceed`]): lets a caller skip working out whether its
/// resource would complete.
#[inline]
pub(crate) fn stop_pending() -> bool {
    #[cfg(not(loom))]
    return safepoint_io::gate::stop_pending();
    #[cfg(loom)]
    return true;
}

/// The hook: some stop is pending in this process; is it this task's
/// runtime's, and must this task park?
fn poll_gate(cx: &mut Context<'_>) -> Poll<()> {
    let Some(me) = context::current_task() else {
        return Poll::Ready(());
    };
    let Some(handle) = context::try_current() else {
        return Poll::Ready(());
    };
    match handle.shared.census.poll_gate(me, cx.waker()) {
        AtSafepoint::Pass => Poll::Ready(()),
        AtSafepoint::Parked(_) => Poll::Pending,
    }
}
