//! The barrier's state machine: Running → Requested → Stopped → Running.
//!
//! `Barrier` lives inside the scheduler's census lock (`scheduler::idle`), so
//! every transition here is atomic with the worker counts it depends on:
//! "the last participant went idle while a stop was requested" and "the
//! world is now stopped" are one step, and a wake that takes the lock after
//! that step sees the world stopped and keeps its task queued (protocol
//! point 3). Methods return the wakers to call; callers call them after
//! releasing the lock.
//!
//! Requesters are served one at a time in arrival order (point 5): each gets
//! a ticket, the head of the queue is *active*, and finishing (resume,
//! withdrawal) hands the barrier straight to the next ticket so no later
//! requester can overtake it.
//!
//! Lock-free mirrors of the phase (`StopFlags`) let hot paths ask "is a stop
//! pending?" with one load: `safepoint()`, the scheduler's wake path and the
//! workers' laggard bookkeeping.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::{Duration, Instant};

use async_task::Runnable;

use super::stats::StopStats;
use crate::sync::{AtomicU64, AtomicUsize, Ordering};
use crate::task::{Id, TaskMeta};

pub(crate) const RUNNING: usize = 0;
pub(crate) const REQUESTED: usize = 1;
pub(crate) const STOPPED: usize = 2;

/// How many runtimes in this process have a stop requested or in force.
/// `safepoint()` reads only this when it is zero: one atomic load, no
/// thread-local lookup. It is a `std` atomic even under loom because loom
/// atomics cannot live in statics; under loom `safepoint()` skips it and
/// reads the runtime's own (loom) flag, so the models check the real order.
pub(crate) static STOPS_IN_PROCESS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// The lock-free view of the barrier.
pub(crate) struct StopFlags {
    /// RUNNING, REQUESTED or STOPPED. Written under the census lock with
    /// Release; read with Acquire by the wake path, so a reader that sees
    /// STOPPED and then takes the lock finds the barrier stopped or resumed.
    pub(crate) phase: AtomicUsize,
    /// Incremented each time a request becomes active; workers tag laggard
    /// records with it so records from an earlier stop are not reported.
    pub(crate) generation: AtomicU64,
}

impl StopFlags {
    pub(crate) fn new() -> StopFlags {
        StopFlags {
            phase: AtomicUsize::new(RUNNING),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn phase(&self) -> usize {
        self.phase.load(Ordering::Acquire)
    }

    fn set(&self, phase: usize) {
        self.phase.store(phase, Ordering::Release);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Requested,
    Stopped,
}

/// The request currently being served.
struct Active {
    ticket: u64,
    /// The requesting task (or `block_on` future); `None` for a thread
    /// outside the runtime.
    requester: Option<Id>,
    waker: Option<Waker>,
    requested_at: Instant,
    stopped_at: Option<Instant>,
}

struct Queued {
    ticket: u64,
    requester: Option<Id>,
    waker: Waker,
}

/// What a transition asks the caller to wake once the lock is released.
#[derive(Default)]
pub(crate) struct Wakes {
    pub(crate) wakers: Vec<Waker>,
    /// Runnables to hand back to the scheduler. A runnable is never dropped
    /// under the lock: async-task cancels a task whose runnable is dropped,
    /// and wakes its awaiter right there, which would re-enter the lock.
    pub(crate) runnables: Vec<Runnable<TaskMeta>>,
}

impl Wakes {
    pub(crate) fn wake(self) {
        for r in self.runnables {
            r.schedule();
        }
        for w in self.wakers {
            w.wake();
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.wakers.is_empty() && self.runnables.is_empty()
    }
}

pub(crate) struct Barrier {
    phase: Phase,
    active: Option<Active>,
    queue: VecDeque<Queued>,
    next_ticket: u64,
    generation: u64,
    /// Tasks parked in `safepoint().await` during the current stop.
    safepoint_waiters: Vec<Waker>,
    at_safepoint: usize,
    /// `block_on` futures woken while stopped, released on resume.
    held: Vec<Waker>,
    /// The requester's runnable when it is woken while the world is stopped:
    /// the one task a worker may run then.
    requester_slot: Option<Runnable<TaskMeta>>,
    quiescence_waiters: Vec<Waker>,
    quiescence_epoch: u64,
    pub(crate) stats: StopStats,
}

impl Barrier {
    pub(crate) fn new() -> Barrier {
        Barrier {
            phase: Phase::Running,
            active: None,
            queue: VecDeque::new(),
            next_ticket: 0,
            generation: 0,
            safepoint_waiters: Vec::new(),
            at_safepoint: 0,
            held: Vec::new(),
            requester_slot: None,
            quiescence_waiters: Vec::new(),
            quiescence_epoch: 0,
            stats: StopStats::default(),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `id` is the active requester.
    pub(crate) fn is_requester(&self, id: Option<Id>) -> bool {
        id.is_some() && self.active.as_ref().is_some_and(|a| a.requester == id)
    }

    /// Whether the world is stopped for a thread outside the runtime (so
    /// only that thread's resume can end it).
    pub(crate) fn stopped_for_outside_thread(&self) -> bool {
        self.phase == Phase::Stopped && self.active.as_ref().is_some_and(|a| a.requester.is_none())
    }

    pub(crate) fn active_ticket(&self) -> Option<u64> {
        self.active.as_ref().map(|a| a.ticket)
    }

    pub(crate) fn requested_at(&self) -> Option<Instant> {
        self.active.as_ref().map(|a| a.requested_at)
    }

    pub(crate) fn at_safepoint(&self) -> usize {
        self.at_safepoint
    }

    /// Files a request. Returns its ticket and whether it became active
    /// right away (no stop in progress and nobody queued).
    pub(crate) fn enqueue(
        &mut self,
        flags: &StopFlags,
        requester: Option<Id>,
        waker: Waker,
        now: Instant,
    ) -> (u64, bool) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if self.active.is_none() {
            debug_assert!(self.queue.is_empty());
            self.activate(flags, ticket, requester, Some(waker), now);
            (ticket, true)
        } else {
            self.queue.push_back(Queued {
                ticket,
                requester,
                waker,
            });
            (ticket, false)
        }
    }

    /// Refreshes the waker of a waiting request.
    pub(crate) fn update_waker(&mut self, ticket: u64, waker: &Waker) {
        if let Some(a) = self.active.as_mut().filter(|a| a.ticket == ticket) {
            if !a.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                a.waker = Some(waker.clone());
            }
        } else if let Some(q) = self.queue.iter_mut().find(|q| q.ticket == ticket) {
            if !q.waker.will_wake(waker) {
                q.waker = waker.clone();
            }
        }
    }

    fn activate(
        &mut self,
        flags: &StopFlags,
        ticket: u64,
        requester: Option<Id>,
        waker: Option<Waker>,
        now: Instant,
    ) {
        self.phase = Phase::Requested;
        self.generation += 1;
        self.at_safepoint = 0;
        self.active = Some(Active {
            ticket,
            requester,
            waker,
            requested_at: now,
            stopped_at: None,
        });
        flags.generation.store(self.generation, Ordering::Relaxed);
        STOPS_IN_PROCESS.fetch_add(1, Ordering::SeqCst);
        flags.set(REQUESTED);
    }

    /// Every participant is idle (workers parked, no `block_on` polling, the
    /// injector empty). Declares the stop if one is requested and wakes
    /// quiescence waiters. Returns what to wake.
    pub(crate) fn on_all_idle(&mut self, flags: &StopFlags, now: Instant) -> Wakes {
        let mut wakes = Wakes::default();
        if !self.quiescence_waiters.is_empty() {
            self.quiescence_epoch += 1;
            wakes.wakers.append(&mut self.quiescence_waiters);
        }
        if self.phase == Phase::Requested {
            let active = self.active.as_mut().expect("requested without a requester");
            self.phase = Phase::Stopped;
            flags.set(STOPPED);
            active.stopped_at = Some(now);
            self.stats
                .record_stop(now.saturating_duration_since(active.requested_at));
            if let Some(w) = active.waker.take() {
                wakes.wakers.push(w);
            }
        }
        wakes
    }

    /// When the world is stopped: the time it took.
    pub(crate) fn time_to_stop(&self) -> Option<Duration> {
        let a = self.active.as_ref()?;
        Some(a.stopped_at?.saturating_duration_since(a.requested_at))
    }

    /// Ends the active request `ticket`, whether it stopped the world
    /// (resume) or not (withdrawal after a timeout or a dropped future).
    /// Releases every task held at a safepoint and hands the barrier to the
    /// next queued requester. Returns what to wake; if a next request became
    /// active, the caller must check whether everything is already idle, but
    /// only after delivering these wakes (see `Shared::end_request`).
    pub(crate) fn finish(&mut self, flags: &StopFlags, ticket: u64, now: Instant) -> Wakes {
        let Some(active) = self.active.take_if(|a| a.ticket == ticket) else {
            return Wakes::default();
        };
        if let Some(stopped_at) = active.stopped_at {
            self.stats
                .record_stopped_for(now.saturating_duration_since(stopped_at));
        }
        let mut wakes = Wakes::default();
        wakes.wakers.append(&mut self.safepoint_waiters);
        wakes.wakers.append(&mut self.held);
        // A requester woken while stopped but not yet run: it runs after the
        // resume like any other task.
        if let Some(r) = self.requester_slot.take() {
            wakes.runnables.push(r);
        }
        self.at_safepoint = 0;
        self.phase = Phase::Running;
        STOPS_IN_PROCESS.fetch_sub(1, Ordering::SeqCst);
        flags.set(RUNNING);
        if let Some(next) = self.queue.pop_front() {
            self.activate(flags, next.ticket, next.requester, None, now);
            wakes.wakers.push(next.waker);
        }
        wakes
    }

    /// Takes a queued (not active) request out of the line.
    pub(crate) fn dequeue(&mut self, ticket: u64) {
        self.queue.retain(|q| q.ticket != ticket);
    }

    /// Parks a task at its safepoint. Returns the generation it parked in.
    pub(crate) fn park_at_safepoint(&mut self, waker: Waker, first: bool) -> u64 {
        self.safepoint_waiters.push(waker);
        if first {
            self.at_safepoint += 1;
        }
        self.generation
    }

    /// Holds a `block_on` future woken during a stop until the resume.
    pub(crate) fn hold(&mut self, waker: Waker) {
        self.held.push(waker);
    }

    /// Keeps the requester's runnable for the worker that will run it.
    pub(crate) fn set_requester_runnable(&mut self, r: Runnable<TaskMeta>) {
        self.requester_slot = Some(r);
    }

    pub(crate) fn has_requester_runnable(&self) -> bool {
        self.requester_slot.is_some()
    }

    pub(crate) fn take_requester_runnable(&mut self) -> Option<Runnable<TaskMeta>> {
        self.requester_slot.take()
    }

    /// Registers a quiescence waiter; returns the epoch it waits past.
    pub(crate) fn wait_quiescence(&mut self, waker: Waker) -> u64 {
        self.quiescence_waiters.push(waker);
        self.quiescence_epoch
    }

    pub(crate) fn quiescence_epoch(&self) -> u64 {
        self.quiescence_epoch
    }
}
