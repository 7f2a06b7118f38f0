//! `StoppedWorld`: holding the world stopped, and resuming it.

use std::fmt;

use super::barrier::Requester;
use super::census::StopFacts;
use super::report::StopReport;
use crate::scheduler::Shared;
use crate::sync::Arc;

/// Proof that the world is stopped: while it lives, no task but its holder
/// is polled. Dropping it (or calling [`resume`](StoppedWorld::resume))
/// releases the tasks parked at safepoints and unparks the workers.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let world = rt.handle().stop_the_world_blocking();
/// // Inspect or copy shared state here: nothing else runs.
/// println!("stopped with {} tasks", world.report().tasks);
/// world.resume();
/// ```
pub struct StoppedWorld {
    shared: Arc<Shared>,
    ticket: u64,
    report: StopReport,
}

impl StoppedWorld {
    pub(crate) fn new(shared: Arc<Shared>, ticket: u64, report: StopReport) -> StoppedWorld {
        StoppedWorld {
            shared,
            ticket,
            report,
        }
    }

    /// Builds the report while the world is stopped. O(workers): the
    /// live-task count is summed from the registry shards.
    pub(crate) fn make_report(
        shared: &Shared,
        facts: &StopFacts,
        requester: Requester,
    ) -> StopReport {
        let tasks = shared.registry.len() + facts.block_ons;
        let requester_is_task = usize::from(matches!(requester, Requester::Task(_)));
        StopReport {
            time_to_stop: facts.time_to_stop,
            tasks,
            at_safepoint: facts.at_safepoint,
            blocked: tasks.saturating_sub(facts.at_safepoint + requester_is_task),
            workers: shared.remotes.len(),
        }
    }

    /// What the stop looked like.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let world = rt.handle().stop_the_world_blocking();
    /// assert!(world.report().time_to_stop < std::time::Duration::from_secs(1));
    /// ```
    pub fn report(&self) -> &StopReport {
        &self.report
    }

    /// Resumes the world (the same as dropping it).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.handle().stop_the_world_blocking().resume();
    /// assert_eq!(rt.block_on(async { 1 }), 1);
    /// ```
    pub fn resume(self) {}

    pub(crate) fn resume_ticket(shared: &Shared, ticket: u64) {
        shared.end_request(ticket);
    }
}

impl Drop for StoppedWorld {
    fn drop(&mut self) {
        StoppedWorld::resume_ticket(&self.shared, self.ticket);
    }
}

impl fmt::Debug for StoppedWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoppedWorld")
            .field("report", &self.report)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Poll, Waker};
    use std::time::{Duration, Instant};

    use crate::sync::Mutex;

    /// Waits (up to 10 s) until `cond` holds.
    fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_quiet_release_queues_without_waking_a_worker() {
        let rt = crate::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let shared = rt.handle().shared.clone();
        let waker: Arc<Mutex<Option<Waker>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let (w, d) = (waker.clone(), done.clone());
        let mut polled = false;
        rt.spawn(std::future::poll_fn(move |cx| {
            if polled {
                d.store(true, Ordering::SeqCst);
                return Poll::Ready(());
            }
            polled = true;
            *w.lock() = Some(cx.waker().clone());
            Poll::Pending
        }));
        wait_for("the task to block and the worker to park", || {
            waker.lock().is_some() && shared.census.is_listed(0)
        });
        let waker = waker.lock().take().unwrap();
        crate::context::release_quietly(&shared, || waker.wake());
        // Queued, and nobody woken: the worker is still parked.
        assert_eq!(shared.injector.len(), 1);
        assert!(shared.census.is_listed(0));
        assert!(!done.load(Ordering::SeqCst));
        shared.notify_many(1);
        wait_for("the released task to run", || done.load(Ordering::SeqCst));
    }
}
