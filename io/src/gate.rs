//! The gate: where a poll of a runtime resource asks whether a pending stop
//! of the world parks its task first.
//!
//! While a stop is pending, every await on a runtime resource is a
//! safepoint (the runtime's protocol point 10): a socket, a timer, a signal
//! that *would* complete instead returns `Pending`, and the task parks as if
//! it had reached `safepoint().await` a moment earlier. Nothing is consumed:
//! readiness stays recorded, a fired timer stays fired, a delivered signal
//! stays undelivered to the task, and the task's next poll after the resume
//! completes exactly as this one would have. This is the shape of tokio's
//! cooperative budget (`coop::poll_proceed`), used for the barrier instead
//! of for fairness.
//!
//! This crate knows nothing about the scheduler, so the decision is the
//! runtime's: it installs a [hook](install) once, and the resources call
//! [`poll_proceed`] where they are about to return `Ready`. With no stop
//! pending anywhere in the process that is one atomic load
//! ([`STOPS_IN_PROCESS`], which the runtime maintains) and no call.
//!
//! This module is the runtime's seam, not an API for applications: it is
//! public only because the runtime is a separate crate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};

/// How many runtimes in this process have a stop requested or in force.
/// Maintained by the runtime (incremented when a request becomes active,
/// decremented when it ends, both under its census lock); read here and by
/// `safepoint()` as the one-load fast path.
#[doc(hidden)]
pub static STOPS_IN_PROCESS: AtomicUsize = AtomicUsize::new(0);

/// The runtime's decision: `Ready` to go on, `Pending` when it parked the
/// task (its waker is kept and woken at the resume).
#[doc(hidden)]
pub type Hook = fn(&mut Context<'_>) -> Poll<()>;

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Installs the runtime's hook. Idempotent: the first one stays (there is
/// one runtime crate in a process).
#[doc(hidden)]
pub fn install(hook: Hook) {
    let _ = HOOK.set(hook);
}

/// Whether a stop is pending (or in force) anywhere in this process: the
/// fast-path check before looking at whether a resource would complete.
///
/// Acquire pairs with the runtime's SeqCst increment when a request becomes
/// active. A request that becomes active just after this load is one this
/// poll did not see in time: the task goes on to its next await, and the
/// stop waits for that (as for a task between two safepoints).
#[doc(hidden)]
#[inline]
pub fn stop_pending() -> bool {
    STOPS_IN_PROCESS.load(Ordering::Acquire) != 0
}

/// Called by a resource whose poll is about to complete. `Ready`: go on and
/// complete. `Pending`: a stop is pending for the current task's runtime,
/// the task is parked (its waker kept for the resume), and the resource must
/// return `Pending` without consuming anything.
#[doc(hidden)]
#[inline]
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    if !stop_pending() {
        return Poll::Ready(());
    }
    poll_proceed_slow(cx)
}

/// Out of line, so the fast path inlines into every resource as a load and
/// a branch.
#[cold]
#[inline(never)]
fn poll_proceed_slow(cx: &mut Context<'_>) -> Poll<()> {
    match HOOK.get() {
        Some(hook) => hook(cx),
        None => Poll::Ready(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_no_stop_pending_a_resource_always_proceeds() {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(!stop_pending());
        assert_eq!(poll_proceed(&mut cx), Poll::Ready(()));
    }
}
