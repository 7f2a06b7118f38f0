//! The barrier's state machine: Running → Requested → Stopped → Running.
//!
//! Pure state: no atomics, no locks, no clock reads (times are passed in).
//! The census (`census.rs`) keeps it under its lock together with the
//! worker counts, and mirrors its phase into the lock-free flags after each
//! transition; this file only decides. That keeps the rules readable and
//! unit-testable on their own (see the tests at the bottom).
//!
//! Requesters are served one at a time in arrival order (protocol point 5):
//! each gets a ticket, the head of the line is *active*. Ending the active
//! request (resume or withdrawal) does not activate the next one: the census
//! first queues the tasks the ending request releases, and only then calls
//! [`Barrier::activate_next`] (protocol point 5, hand-over). A requester arriving in
//! between finds the line non-empty and queues behind it, so order holds.
//!
//! The barrier is generic over the runnable it keeps for the requester
//! (`R`), so the tests can use plain numbers.

use crate::sync::thread::ThreadId;
use std::collections::{HashMap, VecDeque};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::stats::StopStats;
use crate::task::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Requested,
    Stopped,
}

/// Who asked for a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requester {
    /// A task, or a `block_on` future, of this runtime.
    Task(Id),
    /// A thread outside the runtime blocked until the stop
    /// (`stop_the_world_blocking`): it holds the world once stopped, and
    /// protocol point 14 needs to know which thread that is.
    Thread(ThreadId),
    /// A future polled outside this runtime (another runtime's task, another
    /// executor), not tied to a thread.
    Outside,
}

/// The request being served.
struct Active {
    ticket: u64,
    requester: Requester,
    waker: Option<Waker>,
    requested_at: Instant,
    stopped_at: Option<Instant>,
    /// Each worker's poll count when the request became active: a worker
    /// whose count has not moved since, and that is polling, has been in
    /// one poll since before the request (protocol point 6).
    polls_at_request: Vec<u64>,
}

struct Queued {
    ticket: u64,
    requester: Requester,
    waker: Waker,
}

/// What ending a request releases: the caller queues all of it before it
/// wakes any worker (protocol point 4).
pub(crate) struct Released<R> {
    pub(crate) wakers: Vec<Waker>,
    /// The requester, if it was woken while stopped and never ran.
    pub(crate) requester: Option<R>,
    /// Wakes a driver turn delivered while the stop was pending, kept
    /// (protocol point 10).
    pub(crate) deferred: Vec<R>,
}

/// What one task parked at gates during a stop, and so what it may pass
/// after the release: one await per waker it parked with (identified as
/// `Waker::will_wake` does, by its data and vtable pointers; no clone, so a
/// pass never keeps a finished task alive), or its next await whatever the
/// waker (`any`: its wake was kept, by an unknown waker).
#[derive(Default)]
struct Passes {
    wakers: Vec<(usize, usize)>,
    any: bool,
}

impl Passes {
    /// The waker's identity as addresses: compared, never dereferenced.
    fn key(waker: &Waker) -> (usize, usize) {
        (
            waker.data() as usize,
            waker.vtable() as *const std::task::RawWakerVTable as usize,
        )
    }

    fn is_empty(&self) -> bool {
        self.wakers.is_empty() && !self.any
    }

    /// Adds `waker`; false if it is already here.
    fn add(&mut self, waker: &Waker) -> bool {
        let key = Passes::key(waker);
        if self.wakers.contains(&key) {
            return false;
        }
        self.wakers.push(key);
        true
    }

    /// Uses the pass for `waker` (or the any-waker pass); false if none.
    fn take(&mut self, waker: &Waker) -> bool {
        let key = Passes::key(waker);
        if let Some(i) = self.wakers.iter().position(|k| *k == key) {
            self.wakers.swap_remove(i);
            return true;
        }
        std::mem::take(&mut self.any)
    }

    fn merge(&mut self, other: Passes) {
        for key in other.wakers {
            if !self.wakers.contains(&key) {
                self.wakers.push(key);
            }
        }
        self.any |= other.any;
    }
}

pub(crate) struct Barrier<R> {
    phase: Phase,
    active: Option<Active>,
    queue: VecDeque<Queued>,
    next_ticket: u64,
    generation: u64,
    /// Between `finish` and `activate_next`: the released tasks are being
    /// queued, and no request may become active yet, not even one arriving
    /// to an empty line.
    handing_over: bool,
    /// Tasks parked in `safepoint().await` during the current stop.
    safepoint_waiters: Vec<Waker>,
    at_safepoint: usize,
    /// `block_on` futures woken while stopped, released on resume.
    held: Vec<Waker>,
    /// Tasks parked at a runtime resource's gate during the current stop
    /// (protocol point 10): their wakers, in the order they parked (the
    /// release wakes them in that order), and per task what parked (to
    /// count each task once, and to give each await one pass after the
    /// release).
    gate_waiters: Vec<Waker>,
    gate_parked: HashMap<Id, Passes>,
    /// What the last stop released from its gates (or whose wake it kept):
    /// each passes its next gate once, so back-to-back stops cannot pin a
    /// task at the same await. Replaced at the release of a stop that was
    /// declared (by then every task released the time before has been
    /// polled: the stop could not be declared while it was queued); added
    /// to at a withdrawal (which guarantees no such thing).
    gate_passes: HashMap<Id, Passes>,
    /// Runnables a driver turn woke while the stop was pending, kept for
    /// the release (protocol point 10): the task stays blocked, so the
    /// load cannot keep refilling the queues the workers are draining.
    deferred: Vec<R>,
    /// The requester's runnable when it is woken while the world is stopped:
    /// the one task a worker may run then (protocol point 3).
    requester_slot: Option<R>,
    /// The stop was declared for a task requester whose wake has not yet
    /// reached its slot: it is runnable (protocol point 8).
    requester_wake_pending: bool,
    quiescence_waiters: Vec<Waker>,
    quiescence_epoch: u64,
    pub(crate) stats: StopStats,
}

impl<R> Barrier<R> {
    pub(crate) fn new() -> Barrier<R> {
        Barrier {
            phase: Phase::Running,
            active: None,
            queue: VecDeque::new(),
            next_ticket: 0,
            generation: 0,
            handing_over: false,
            safepoint_waiters: Vec::new(),
            at_safepoint: 0,
            held: Vec::new(),
            gate_waiters: Vec::new(),
            gate_parked: HashMap::new(),
            gate_passes: HashMap::new(),
            deferred: Vec::new(),
            requester_slot: None,
            requester_wake_pending: false,
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

    /// Whether task `id` is the active requester.
    pub(crate) fn is_requester(&self, id: Option<Id>) -> bool {
        match id {
            Some(id) => self
                .active
                .as_ref()
                .is_some_and(|a| a.requester == Requester::Task(id)),
            None => false,
        }
    }

    /// The active request's requester.
    pub(crate) fn requester(&self) -> Option<Requester> {
        self.active.as_ref().map(|a| a.requester)
    }

    /// Whether the world is stopped for a thread outside the runtime (so
    /// only that thread's resume can end it).
    pub(crate) fn stopped_for_outside_thread(&self) -> bool {
        self.phase == Phase::Stopped
            && matches!(
                self.requester(),
                Some(Requester::Thread(_) | Requester::Outside)
            )
    }

    /// Whether thread `thread` holds the world stopped (protocol point 14).
    pub(crate) fn stopped_by_thread(&self, thread: ThreadId) -> bool {
        self.phase == Phase::Stopped && self.requester() == Some(Requester::Thread(thread))
    }

    pub(crate) fn active_ticket(&self) -> Option<u64> {
        self.active.as_ref().map(|a| a.ticket)
    }

    pub(crate) fn requested_at(&self) -> Option<Instant> {
        self.active.as_ref().map(|a| a.requested_at)
    }

    pub(crate) fn polls_at_request(&self) -> &[u64] {
        self.active
            .as_ref()
            .map(|a| a.polls_at_request.as_slice())
            .unwrap_or(&[])
    }

    pub(crate) fn at_safepoint(&self) -> usize {
        self.at_safepoint
    }

    /// Files a request. Returns its ticket and whether it became active
    /// right away (nothing in progress and nobody in line). `polls` is read
    /// only if it does.
    pub(crate) fn enqueue(
        &mut self,
        requester: Requester,
        waker: Waker,
        now: Instant,
        polls: impl FnOnce() -> Vec<u64>,
    ) -> (u64, bool) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if self.active.is_none() && self.queue.is_empty() && !self.handing_over {
            self.activate(ticket, requester, Some(waker), now, polls());
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
        ticket: u64,
        requester: Requester,
        waker: Option<Waker>,
        now: Instant,
        polls_at_request: Vec<u64>,
    ) {
        debug_assert_eq!(self.phase, Phase::Running);
        self.phase = Phase::Requested;
        self.generation += 1;
        self.at_safepoint = 0;
        self.active = Some(Active {
            ticket,
            requester,
            waker,
            requested_at: now,
            stopped_at: None,
            polls_at_request,
        });
    }

    /// Declares the stop, if one is requested: every participant is idle.
    /// `None` if nothing was requested; otherwise the requester's waker to
    /// wake, if it has one (a request handed over has none until its next
    /// poll: the hand-over woke it already).
    pub(crate) fn declare(&mut self, now: Instant) -> Option<Option<Waker>> {
        if self.phase != Phase::Requested {
            return None;
        }
        let active = self.active.as_mut().expect("requested without a requester");
        self.phase = Phase::Stopped;
        self.requester_wake_pending = matches!(active.requester, Requester::Task(_));
        active.stopped_at = Some(now);
        self.stats
            .record_stop(now.saturating_duration_since(active.requested_at));
        Some(active.waker.take())
    }

    /// Everything is quiescent: the waiters registered so far are done
    /// (protocol point 8).
    pub(crate) fn take_quiescence_waiters(&mut self) -> Vec<Waker> {
        if self.quiescence_waiters.is_empty() {
            return Vec::new();
        }
        self.quiescence_epoch += 1;
        std::mem::take(&mut self.quiescence_waiters)
    }

    #[cfg(test)]
    fn has_quiescence_waiters(&self) -> bool {
        !self.quiescence_waiters.is_empty()
    }

    /// When the world is stopped: the time it took.
    pub(crate) fn time_to_stop(&self) -> Option<Duration> {
        let a = self.active.as_ref()?;
        Some(a.stopped_at?.saturating_duration_since(a.requested_at))
    }

    /// Ends the active request `ticket`, whether it stopped the world
    /// (resume) or not (withdrawal). Releases every task held by it. Does
    /// not activate the next request: see [`Barrier::activate_next`].
    /// `None` if `ticket` is not the active request.
    pub(crate) fn finish(&mut self, ticket: u64, now: Instant) -> Option<Released<R>> {
        let active = self.active.take_if(|a| a.ticket == ticket)?;
        if let Some(stopped_at) = active.stopped_at {
            self.stats.record_release(
                now.saturating_duration_since(stopped_at),
                now.saturating_duration_since(active.requested_at),
            );
        }
        let mut wakers = std::mem::take(&mut self.safepoint_waiters);
        wakers.append(&mut self.held);
        wakers.append(&mut self.gate_waiters);
        let parked = std::mem::take(&mut self.gate_parked);
        if active.stopped_at.is_some() {
            // Declared: every task the last release gave a pass was polled
            // before this stop (none could be queued at the declaration),
            // so the old passes are spent or unneeded.
            self.gate_passes = parked;
        } else {
            // Withdrawn: a task released the time before may not have run
            // yet; it keeps its passes.
            for (id, passes) in parked {
                self.gate_passes.entry(id).or_default().merge(passes);
            }
        }
        self.at_safepoint = 0;
        self.phase = Phase::Running;
        self.handing_over = true;
        self.requester_wake_pending = false;
        Some(Released {
            wakers,
            requester: self.requester_slot.take(),
            deferred: std::mem::take(&mut self.deferred),
        })
    }

    /// Hands the barrier to the next requester in line, if nothing is
    /// active. Returns its waker (it learns on its next poll whether the
    /// world is already stopped for it).
    pub(crate) fn activate_next(&mut self, now: Instant, polls: Vec<u64>) -> Option<Waker> {
        if self.active.is_some() {
            return None;
        }
        self.handing_over = false;
        let next = self.queue.pop_front()?;
        self.activate(next.ticket, next.requester, None, now, polls);
        Some(next.waker)
    }

    /// Whether a request waits in line for the active one to end.
    #[cfg(test)]
    fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Takes a queued (not active) request out of the line.
    pub(crate) fn dequeue(&mut self, ticket: u64) {
        self.queue.retain(|q| q.ticket != ticket);
    }

    /// Parks a task at its safepoint. `first` counts it (a re-poll of a task
    /// already parked refreshes its waker only). Returns the generation it
    /// parked in.
    pub(crate) fn park_at_safepoint(&mut self, waker: Waker, first: bool) -> u64 {
        self.safepoint_waiters.push(waker);
        if first {
            self.at_safepoint += 1;
        }
        self.generation
    }

    /// Whether task `id` holds a ticket: the active requester, or one queued
    /// behind it. Neither parks at a gate nor has its wakes kept: the
    /// requester's awaits complete as usual (protocol point 10), and a
    /// queued requester's own timeout must be able to fire.
    fn holds_ticket(&self, id: Id) -> bool {
        let me = Requester::Task(id);
        self.active.as_ref().is_some_and(|a| a.requester == me)
            || self.queue.iter().any(|q| q.requester == me)
    }

    /// A task's poll of a runtime resource that would complete, while a
    /// stop may be pending (protocol point 10). `None`: go on (no stop, the
    /// task holds a ticket, or this await uses its pass from the last
    /// release). `Some(generation)`: parked, its waker kept for the release.
    ///
    /// Passes are per waker, not per task: one task may have several
    /// awaits parked at once, each with a waker of its own (the futures of
    /// a `FuturesUnordered` or a `select!`, the tasks of a `LocalSet`),
    /// and a pass per task would let the first one woken take it every
    /// time while the others stay pinned under back-to-back stops. A task
    /// parked again with the same waker in the same stop (a spurious wake)
    /// is counted once and its waker kept once.
    pub(crate) fn park_at_gate(&mut self, id: Id, waker: &Waker) -> Option<u64> {
        if self.phase == Phase::Running || self.holds_ticket(id) {
            return None;
        }
        if let Some(passes) = self.gate_passes.get_mut(&id) {
            if passes.take(waker) {
                if passes.is_empty() {
                    self.gate_passes.remove(&id);
                }
                return None;
            }
        }
        let parked = self.gate_parked.entry(id).or_default();
        if parked.is_empty() {
            self.at_safepoint += 1;
        }
        if parked.add(waker) {
            self.gate_waiters.push(waker.clone());
        }
        Some(self.generation)
    }

    /// Keeps the runnable of task `id`, woken by a driver turn while a stop
    /// is requested, for the release (protocol point 10), unless the stop
    /// is no longer merely requested or `id` holds a ticket: then it is
    /// handed back to be scheduled as usual.
    pub(crate) fn defer(&mut self, id: Id, r: R) -> Result<(), R> {
        if self.phase != Phase::Requested || self.holds_ticket(id) {
            return Err(r);
        }
        self.deferred.push(r);
        // Blocked at an await on a resource whose wake is kept: it passes
        // its next gate after the release, like a task parked at one. Which
        // of its wakers the driver woke is not known here, so the pass is
        // for any of them.
        let parked = self.gate_parked.entry(id).or_default();
        if parked.is_empty() {
            self.at_safepoint += 1;
        }
        parked.any = true;
        Ok(())
    }

    /// Takes the kept wakes (shutdown drops them).
    pub(crate) fn take_deferred(&mut self) -> Vec<R> {
        std::mem::take(&mut self.deferred)
    }

    /// Whether wakes are kept for the release: those tasks are runnable for
    /// quiescence (protocol point 8), though not for the stop.
    pub(crate) fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Holds a `block_on` future woken during a stop until the resume.
    pub(crate) fn hold(&mut self, waker: Waker) {
        self.held.push(waker);
    }

    /// Keeps the requester's runnable for the worker that will run it.
    pub(crate) fn set_requester_runnable(&mut self, r: R) {
        self.requester_slot = Some(r);
        self.requester_wake_pending = false;
    }

    /// A stop was declared for a task requester not yet in its slot.
    pub(crate) fn requester_wake_pending(&self) -> bool {
        self.requester_wake_pending
    }

    pub(crate) fn has_requester_runnable(&self) -> bool {
        self.requester_slot.is_some()
    }

    pub(crate) fn take_requester_runnable(&mut self) -> Option<R> {
        self.requester_slot.take()
    }

    /// Registers a quiescence waiter; returns the epoch it waits past. A
    /// waiter polled again (a spurious wake) is not listed twice, so a
    /// long wait does not grow the list with every re-poll.
    pub(crate) fn wait_quiescence(&mut self, waker: &Waker) -> u64 {
        if !self.quiescence_waiters.iter().any(|w| w.will_wake(waker)) {
            self.quiescence_waiters.push(waker.clone());
        }
        self.quiescence_epoch
    }

    pub(crate) fn quiescence_epoch(&self) -> u64 {
        self.quiescence_epoch
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn task(n: u64) -> Requester {
        Requester::Task(Id::from_u64(n))
    }

    fn noop() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn a_request_is_declared_only_once_and_only_when_requested() {
        let mut b: Barrier<u32> = Barrier::new();
        let now = Instant::now();
        assert!(b.declare(now).is_none(), "nothing requested");
        assert_eq!(b.phase(), Phase::Running);
        let (t, active) = b.enqueue(task(1), noop(), now, Vec::new);
        assert!(active);
        assert_eq!(b.phase(), Phase::Requested);
        assert_eq!(b.generation(), 1);
        assert!(b.declare(now).is_some_and(|w| w.is_some()));
        assert!(b.is_stopped());
        assert!(b.declare(now).is_none(), "declared twice");
        assert_eq!(b.stats.stops, 1);
        let released = b.finish(t, now).unwrap();
        assert!(released.wakers.is_empty());
        assert_eq!(b.phase(), Phase::Running);
    }

    #[test]
    fn requests_are_served_in_arrival_order_and_handed_over_only_when_asked() {
        let mut b: Barrier<u32> = Barrier::new();
        let now = Instant::now();
        let (t1, a1) = b.enqueue(task(1), noop(), now, Vec::new);
        let (t2, a2) = b.enqueue(task(2), noop(), now, Vec::new);
        assert!(a1 && !a2);
        b.declare(now);
        b.finish(t1, now).unwrap();
        // Not handed over yet: the released tasks are queued first. A
        // requester arriving now queues behind the one in line.
        assert_eq!(b.active_ticket(), None);
        let (t3, a3) = b.enqueue(task(3), noop(), now, Vec::new);
        assert!(!a3, "overtook a queued requester");
        let mut empty: Barrier<u32> = Barrier::new();
        let (t, _) = empty.enqueue(task(1), noop(), now, Vec::new);
        empty.finish(t, now).unwrap();
        let (_, active) = empty.enqueue(task(2), noop(), now, Vec::new);
        assert!(
            !active,
            "activated during the hand-over, before the released tasks are queued"
        );
        assert!(empty.activate_next(now, Vec::new()).is_some());
        assert!(b.activate_next(now, Vec::new()).is_some());
        assert_eq!(b.active_ticket(), Some(t2));
        assert!(
            matches!(b.declare(now), Some(None)),
            "a handed-over request is declared even before its requester polls again"
        );
        assert!(b.is_stopped());
        assert!(b.is_requester(Some(Id::from_u64(2))));
        assert!(b.activate_next(now, Vec::new()).is_none(), "one at a time");
        b.finish(t2, now).unwrap();
        b.activate_next(now, Vec::new());
        assert_eq!(b.active_ticket(), Some(t3));
    }

    #[test]
    fn a_gate_parks_each_task_once_exempts_ticket_holders_and_passes_the_released_once() {
        let mut b: Barrier<u32> = Barrier::new();
        let now = Instant::now();
        let (me, other, queued) = (Id::from_u64(1), Id::from_u64(2), Id::from_u64(3));
        assert_eq!(b.park_at_gate(other, &noop()), None, "no stop: go on");
        let (t, _) = b.enqueue(Requester::Task(me), noop(), now, Vec::new);
        let (q, _) = b.enqueue(Requester::Task(queued), noop(), now, Vec::new);
        assert_eq!(b.park_at_gate(me, &noop()), None, "the requester is exempt");
        assert_eq!(
            b.park_at_gate(queued, &noop()),
            None,
            "so is a queued requester"
        );
        assert_eq!(b.park_at_gate(other, &noop()), Some(1));
        assert_eq!(
            b.park_at_gate(other, &noop()),
            Some(1),
            "a re-poll parks again"
        );
        assert_eq!(b.at_safepoint(), 1, "counted once");
        // A driver wake of a task other than the requester is kept.
        assert!(b.defer(Id::from_u64(4), 40).is_ok());
        assert_eq!(
            b.defer(me, 10),
            Err(10),
            "the requester's wakes are not kept"
        );
        assert!(b.has_deferred());
        assert!(b.declare(now).is_some());
        assert_eq!(
            b.defer(Id::from_u64(5), 50),
            Err(50),
            "kept only while requested"
        );
        let released = b.finish(t, now).unwrap();
        assert_eq!(
            released.wakers.len(),
            1,
            "one waker for the task parked twice"
        );
        assert_eq!(released.deferred, vec![40]);
        assert!(!b.has_deferred());
        // The next stop (the queued one): the released pass their gate once.
        assert!(b.activate_next(now, Vec::new()).is_some());
        assert_eq!(b.park_at_gate(other, &noop()), None, "released: one pass");
        assert_eq!(
            b.park_at_gate(Id::from_u64(4), &noop()),
            None,
            "kept wake: one pass"
        );
        assert_eq!(b.park_at_gate(other, &noop()), Some(2), "then parks again");
        b.finish(q, now).unwrap();
    }

    /// Two awaits of one task parked with wakers of their own (the futures
    /// of a `FuturesUnordered`): each passes once after the release, so the
    /// first one woken cannot take the task's only pass every time.
    #[test]
    fn each_waker_a_task_parked_with_gets_its_own_pass() {
        struct Nop;
        impl std::task::Wake for Nop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let (a, b) = (
            Waker::from(std::sync::Arc::new(Nop)),
            Waker::from(std::sync::Arc::new(Nop)),
        );
        let mut b_: Barrier<u32> = Barrier::new();
        let now = Instant::now();
        let task = Id::from_u64(7);
        let (t, _) = b_.enqueue(Requester::Outside, noop(), now, Vec::new);
        assert_eq!(b_.park_at_gate(task, &a), Some(1));
        assert_eq!(b_.park_at_gate(task, &b), Some(1));
        assert_eq!(b_.at_safepoint(), 1, "one task");
        assert!(b_.declare(now).is_some());
        assert_eq!(b_.finish(t, now).unwrap().wakers.len(), 2);
        let (t, _) = b_.enqueue(Requester::Outside, noop(), now, Vec::new);
        b_.activate_next(now, Vec::new());
        assert_eq!(b_.park_at_gate(task, &a), None, "a's pass");
        assert_eq!(b_.park_at_gate(task, &a), Some(2), "a's pass is spent");
        assert_eq!(b_.park_at_gate(task, &b), None, "b still has its own");
        b_.finish(t, now).unwrap();
    }

    #[test]
    fn ending_a_request_releases_parked_tasks_held_futures_and_the_requester() {
        let mut b: Barrier<u32> = Barrier::new();
        let now = Instant::now();
        let (t, _) = b.enqueue(task(1), noop(), now, Vec::new);
        assert_eq!(b.park_at_safepoint(noop(), true), 1);
        b.park_at_safepoint(noop(), false);
        assert_eq!(b.at_safepoint(), 1, "a re-poll is not a second task");
        b.declare(now);
        b.hold(noop());
        b.set_requester_runnable(7);
        let released = b.finish(t, now).unwrap();
        assert_eq!(released.wakers.len(), 3);
        assert_eq!(released.requester, Some(7));
        assert_eq!(b.at_safepoint(), 0);
        assert!(b.finish(t, now).is_none(), "finished twice");
    }

    #[test]
    fn a_withdrawn_queued_request_leaves_the_line() {
        let mut b: Barrier<u32> = Barrier::new();
        let now = Instant::now();
        let (t1, _) = b.enqueue(task(1), noop(), now, Vec::new);
        let (t2, _) = b.enqueue(task(2), noop(), now, Vec::new);
        b.dequeue(t2);
        b.finish(t1, now).unwrap();
        assert!(b.activate_next(now, Vec::new()).is_none());
        assert!(!b.has_queued());
        let (_, a3) = b.enqueue(task(3), noop(), now, Vec::new);
        assert!(a3, "the hand-over is over: a new request is served at once");
    }

    #[test]
    fn an_outside_thread_holds_the_world_only_once_stopped() {
        let mut b: Barrier<u32> = Barrier::new();
        let now = Instant::now();
        let me = crate::sync::thread::current().id();
        let (t, _) = b.enqueue(Requester::Thread(me), noop(), now, Vec::new);
        assert!(!b.stopped_by_thread(me));
        b.declare(now);
        assert!(b.stopped_by_thread(me));
        assert!(b.stopped_for_outside_thread());
        b.finish(t, now);
        assert!(!b.stopped_by_thread(me));
    }

    #[test]
    fn quiescence_waiters_are_released_once_per_epoch() {
        let mut b: Barrier<u32> = Barrier::new();
        assert!(b.take_quiescence_waiters().is_empty());
        assert_eq!(b.quiescence_epoch(), 0, "no waiter, no epoch");
        let waker = noop();
        assert_eq!(b.wait_quiescence(&waker), 0);
        assert_eq!(b.wait_quiescence(&waker), 0, "a re-poll");
        assert!(b.has_quiescence_waiters());
        assert_eq!(b.take_quiescence_waiters().len(), 1, "listed once");
        assert_eq!(b.quiescence_epoch(), 1);
    }
}
