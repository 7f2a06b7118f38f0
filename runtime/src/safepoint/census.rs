//! The census: who is idle, who is running, and the barrier, owned in one
//! place.
//!
//! Every decision about stops and quiescence is a question about the
//! census: "is every worker parked, is no `block_on` future (or
//! deterministic round) being polled, and is no work queued?" This module
//! alone owns the state that answers it, and changes it only through the
//! named transitions below; each returns what to wake ([`Wakes`]), which the
//! caller delivers after the lock is released (waking under the lock would
//! re-enter it). No other module takes the census lock.
//!
//! The state is in two parts:
//!
//! - **the word**, one atomic: unparked workers (bits 0..16), searching
//!   workers (16..32) and *active* `block_on` polls and deterministic rounds
//!   (32..48). Hot paths read and update it without the lock: a producer
//!   asking whether a wake is needed (as tokio's `Idle`), a worker starting
//!   or ending a search, and a `block_on` poll beginning or ending. Changes
//!   to the unparked count happen under the lock.
//! - **the state under the lock**: the sleeper list, exited workers, the
//!   `block_on` slots (each live or not: see [`BlockOnSlot`]), and the
//!   barrier ([`Barrier`]: requests, tickets,
//!   safepoint waiters, quiescence waiters).
//!
//! Orderings (each a store-then-load pair on each side, with a SeqCst fence
//! between the store and the load, so at least one side sees the other; the
//! fences also make the argument hold under loom, which models SeqCst
//! fences exactly but treats SeqCst loads and stores as AcqRel):
//!
//! - *A wake is never lost* (protocol point 12): a producer pushes (a SeqCst
//!   RMW inside the queue), fences, then reads the word; a parking worker
//!   decrements the word, then looks at the queues.
//! - *The block_on count* (protocol point 11): a `block_on` poll increments the word,
//!   then loads the phase; a request publishes the phase, then reads the
//!   word under the lock. So either the request sees the poll (and waits
//!   for it) or the poll sees the request (and takes the lock's slow path).
//!   Ending a poll decrements the word, then loads the phase and
//!   `quiescence_wanted`; the other side stores those, then reads the word.
//!   So the last participant to go idle always takes the lock to declare.
//!
//! The census invariant (every worker counted unparked, listed as a sleeper,
//! or exited, exactly once) is asserted after every change under the lock in
//! debug builds and in the loom models.

use std::panic::Location;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicPtr, AtomicU64 as StdAtomicU64};
use std::sync::Arc as StdArc;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::barrier::{Barrier, Phase, Requester};
use super::flags::{StopFlags, REQUESTED, RUNNING, STOPPED, STOPS_IN_PROCESS};
use crate::scheduler::Task;
use crate::sync::{fence, AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering};
use crate::task::Id;

const FIELD: u64 = 0xFFFF;
const UNPARKED_ONE: u64 = 1;
const SEARCHING_ONE: u64 = 1 << 16;
const ACTIVE_ONE: u64 = 1 << 32;

fn unparked(word: u64) -> u64 {
    word & FIELD
}

fn searching(word: u64) -> u64 {
    (word >> 16) & FIELD
}

fn active(word: u64) -> u64 {
    (word >> 32) & FIELD
}

/// What a transition asks the caller to wake once the lock is released.
#[derive(Default)]
#[must_use = "wakes do nothing unless delivered"]
pub(crate) struct Wakes {
    pub(crate) wakers: Vec<Waker>,
    /// Runnables to hand back to the scheduler. A runnable is never dropped
    /// under the lock: async-task cancels a task whose runnable is dropped,
    /// and wakes its awaiter right there, which would re-enter the lock.
    pub(crate) runnables: Vec<Task>,
    /// Workers taken off the sleeper list, to unpark.
    pub(crate) workers: Vec<usize>,
}

impl Wakes {
    pub(crate) fn is_empty(&self) -> bool {
        self.wakers.is_empty() && self.runnables.is_empty() && self.workers.is_empty()
    }

    fn append(&mut self, mut other: Wakes) {
        self.wakers.append(&mut other.wakers);
        self.runnables.append(&mut other.runnables);
        self.workers.append(&mut other.workers);
    }
}

/// What a worker that tried to park should do.
pub(crate) enum Parked {
    /// It is listed as a sleeper.
    Parked,
    /// Work showed up after it announced itself idle: it stays unparked and
    /// searching.
    Work,
}

/// What a parked worker whose driver turn queued tasks locally may do.
pub(crate) enum FromTurn {
    /// It is unparked and runs them.
    Claimed,
    /// A waker already unparked it (and counted it searching).
    AlreadyWoken,
    /// The world is stopped: the tasks were moved to the injector under the
    /// lock, kept for the resume, and the worker parks again.
    Stopped,
}

/// Where a wake that found the phase STOPPED goes.
pub(crate) enum Routed {
    /// Resumed meanwhile: schedule it the ordinary way.
    Resumed(Task),
    /// It is the requester: kept in the requester slot. The worker to
    /// unpark for it, if one was asleep.
    Requester(Option<usize>),
    /// Kept for the resume (protocol point 3).
    Kept,
}

/// How a `block_on` poll may begin.
pub(crate) enum BeginPoll {
    /// Counted as running: poll.
    Poll,
    /// The world is stopped by someone else: the future is held (still
    /// counted runnable) until the resume wakes it.
    Held,
}

/// A task's poll of `safepoint()` during a stop.
pub(crate) enum AtSafepoint {
    /// Go on: no stop for this runtime, a stop from which this task was
    /// already released, or this task is the requester.
    Pass,
    /// Parked in stop `generation`.
    Parked(u64),
}

/// A stop request's state, for its requester.
pub(crate) enum RequestState {
    /// The world is stopped for it.
    Stopped(StopFacts),
    /// Still waiting.
    Pending(PendingFacts),
    /// Not the active request (queued, or already ended).
    NotActive,
}

/// What a stopped world looks like, read under the lock.
pub(crate) struct StopFacts {
    /// Which stop this is (1 for the runtime's first), and its generation.
    pub(crate) stop: u64,
    pub(crate) generation: u64,
    pub(crate) requested_at: Instant,
    pub(crate) time_to_stop: Duration,
    pub(crate) at_safepoint: usize,
    pub(crate) block_ons: usize,
}

/// What a pending request knows, for its laggard report.
pub(crate) struct PendingFacts {
    /// The requester, if it is a task: never its own laggard.
    pub(crate) requester: Option<Id>,
    pub(crate) generation: u64,
    pub(crate) at_safepoint: usize,
    pub(crate) requested_at: Instant,
    pub(crate) polls_at_request: Vec<u64>,
    pub(crate) block_ons: Vec<StdArc<BlockOnSlot>>,
}

/// Stop statistics, copied out for metrics.
pub(crate) struct StatsSnapshot {
    pub(crate) stops: u64,
    pub(crate) ttsp_p50: Duration,
    pub(crate) ttsp_p99: Duration,
    pub(crate) ttsp_max: Duration,
    pub(crate) stopped_total: Duration,
    pub(crate) time_to_stop: crate::metrics::PauseHistogram,
    pub(crate) pause: crate::metrics::PauseHistogram,
    pub(crate) slowest_stops: Vec<crate::metrics::SlowStop>,
}

/// Where `block_on` calls run: one per thread and runtime, reused by every
/// call that thread makes (as tokio's `CachedParkThread`), so a call
/// allocates nothing and takes no lock. Listed in the census once, when it
/// is made; between calls it is `DONE` and counts for nothing. While a call
/// is in progress its future is a task for the census (protocol point 11)
/// and for reports.
pub(crate) struct BlockOnSlot {
    /// The current call's task id (a fresh one per call). Written by the
    /// calling thread before the call is marked live; reports read it.
    id: StdAtomicU64,
    /// The current call's `&'static Location`, for reports.
    location: AtomicPtr<Location<'static>>,
    /// `IDLE`, `COUNTED` (a wake counted the future in the word's active
    /// count and no poll has taken that count over yet) or `DONE` (no call
    /// in progress: a late wake, from a timer or a handle that still holds
    /// the waker, must not count a future that no poll will ever uncount).
    wake: AtomicU64,
    /// Report-only: polls begun, and whether one is in progress. Plain std
    /// atomics: no decision reads them.
    polls: StdAtomicU64,
    polling: StdAtomicBool,
}

const SLOT_IDLE: u64 = 0;
const SLOT_COUNTED: u64 = 1;
const SLOT_DONE: u64 = 2;

impl BlockOnSlot {
    /// Whether a wake has counted the future runnable since its last poll.
    pub(crate) fn is_woken(&self) -> bool {
        self.wake.load(Ordering::Acquire) == SLOT_COUNTED
    }

    /// Whether a wake now would count the future (a call is in progress
    /// and no wake has counted it since its last poll). A hint for wakers,
    /// to skip the census when it would do nothing; `count_wake` decides.
    pub(crate) fn may_count_wake(&self) -> bool {
        self.wake.load(Ordering::Acquire) == SLOT_IDLE
    }

    /// Whether a call is in progress.
    fn is_live(&self) -> bool {
        self.wake.load(Ordering::Acquire) != SLOT_DONE
    }

    /// The current (or last) call's task id.
    pub(crate) fn id(&self) -> Id {
        Id::from_u64(self.id.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Where the current (or last) call was made.
    pub(crate) fn location(&self) -> &'static Location<'static> {
        let ptr = self.location.load(std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the pointer is only ever set from a `&'static Location`
        // (in `new_block_on_slot` and `register_block_on`), so it is
        // non-null, aligned, and valid for the rest of the program.
        unsafe { &*ptr }
    }

    /// Polls begun so far, and whether one is in progress.
    pub(crate) fn polling(&self) -> (u64, bool) {
        (
            self.polls.load(std::sync::atomic::Ordering::Relaxed),
            self.polling.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

struct State {
    /// Parked workers, most recently parked last (woken first: its caches
    /// are warmest and it may not have slept yet).
    sleepers: Vec<usize>,
    /// Workers that have left for good (shutdown).
    exited: usize,
    /// Every `block_on` slot made for this runtime and still held by a
    /// thread (its cache, or a waker); live or not (see [`BlockOnSlot`]).
    block_ons: Vec<StdArc<BlockOnSlot>>,
    barrier: Barrier<Task>,
}

pub(crate) struct Census {
    /// `active << 32 | searching << 16 | unparked`.
    word: AtomicU64,
    num_workers: usize,
    /// Per worker: listed as a sleeper. Written under the lock; read by the
    /// worker itself after a wake-up to tell a real unpark (a waker took it
    /// off the list) from a spurious one.
    listed: Box<[AtomicBool]>,
    flags: StopFlags,
    /// The active requester's task id (0: none, or not a task), published
    /// with the phase: lets the wake path tell, without the lock, whether a
    /// task it pushed during a stop might be the requester.
    requester_id: AtomicU64,
    /// Some quiescence waiter is registered (see the module docs).
    quiescence_wanted: AtomicBool,
    state: Mutex<State>,
}

impl Census {
    pub(crate) fn new(num_workers: usize) -> Census {
        assert!(num_workers as u64 <= FIELD, "too many workers");
        Census {
            // Workers start unparked: each parks itself once it finds no work.
            word: AtomicU64::new(num_workers as u64),
            num_workers,
            listed: (0..num_workers).map(|_| AtomicBool::new(false)).collect(),
            flags: StopFlags::new(),
            requester_id: AtomicU64::new(0),
            quiescence_wanted: AtomicBool::new(false),
            state: Mutex::new(State {
                sleepers: Vec::with_capacity(num_workers),
                exited: 0,
                block_ons: Vec::new(),
                barrier: Barrier::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The census invariant. A double count here is a lost wake later.
    fn check(&self, st: &State) {
        debug_assert_eq!(
            unparked(self.word.load(Ordering::SeqCst)) as usize + st.sleepers.len() + st.exited,
            self.num_workers,
            "census out of balance: unparked + sleepers + exited != workers"
        );
    }

    pub(crate) fn flags(&self) -> &StopFlags {
        &self.flags
    }

    /// Mirrors the barrier's phase (and requester) into the lock-free flags.
    /// Lock held.
    fn publish(&self, st: &State) {
        let requester = match st.barrier.requester() {
            Some(Requester::Task(id)) => id.as_u64(),
            _ => 0,
        };
        // Before the phase: a reader that sees the new phase sees this too.
        self.requester_id.store(requester, Ordering::SeqCst);
        let phase = match st.barrier.phase() {
            Phase::Running => RUNNING,
            Phase::Requested => REQUESTED,
            Phase::Stopped => STOPPED,
        };
        self.flags.publish(phase, st.barrier.generation());
    }

    // ---- workers: the lock-free part -------------------------------------

    /// Workers not parked right now (running, searching, or preempted in a
    /// poll). Relaxed: a hint (for a spinning requester, and for a worker
    /// deciding whether to yield before it parks), never a decision.
    pub(crate) fn unparked_workers(&self) -> usize {
        unparked(self.word.load(Ordering::Relaxed)) as usize
    }

    /// Whether a producer that just made work visible should wake a
    /// sleeper: nobody is searching (a searcher would find the work) and
    /// somebody is parked. The producer has fenced after its push (see
    /// `Shared::schedule_remote`): the producer's half of "a wake is never
    /// lost" (module docs).
    pub(crate) fn notify_should_wakeup(&self) -> bool {
        let word = self.word.load(Ordering::SeqCst);
        searching(word) == 0 && (unparked(word) as usize) < self.num_workers
    }

    /// A worker with nothing to do asks to search (steal). At most half the
    /// workers search at once, so one spawn does not send every thread
    /// through every other queue.
    pub(crate) fn transition_to_searching(&self) -> bool {
        let word = self.word.load(Ordering::SeqCst);
        if 2 * searching(word) as usize >= self.num_workers {
            return false;
        }
        self.word.fetch_add(SEARCHING_ONE, Ordering::SeqCst);
        true
    }

    /// A searching worker found work. Returns true if it was the last
    /// searcher: it must then wake another worker, so that work it leaves
    /// behind in the queues is not stranded (tokio's rule).
    pub(crate) fn transition_from_searching(&self) -> bool {
        let prev = self.word.fetch_sub(SEARCHING_ONE, Ordering::SeqCst);
        searching(prev) == 1
    }

    /// Whether worker `index` is listed as a sleeper. Acquire: pairs with
    /// the Release store of whoever took it off the list, so what they wrote
    /// before (work to do, shutdown) is visible after this reads false.
    pub(crate) fn is_listed(&self, index: usize) -> bool {
        self.listed[index].load(Ordering::Acquire)
    }

    // ---- workers: parking and waking ---------------------------------------

    /// Takes worker `index` off the sleeper list, if it is listed; the
    /// caller recounts it. Whether it was listed: the list, not the worker's
    /// `listed` flag, decides (the flag is only a hint outside the lock).
    fn unlist(&self, st: &mut State, index: usize) -> bool {
        let Some(pos) = st.sleepers.iter().position(|&i| i == index) else {
            return false;
        };
        st.sleepers.swap_remove(pos);
        self.listed[index].store(false, Ordering::Release);
        true
    }

    /// Takes a sleeper off the list and counts it unparked and searching.
    fn pop_sleeper(&self, st: &mut State) -> Option<usize> {
        let index = st.sleepers.pop()?;
        self.word
            .fetch_add(UNPARKED_ONE | SEARCHING_ONE, Ordering::SeqCst);
        self.listed[index].store(false, Ordering::Release);
        self.check(st);
        Some(index)
    }

    /// Wakes one sleeper for work a producer made visible and found worth
    /// a wake (`notify_should_wakeup`), if that still holds under the lock
    /// and the world is not stopped. Several producers that looked at the
    /// word at once (a driver turn's claim, a searcher that found work, a
    /// spawn from outside) would otherwise each wake a sleeper for what
    /// one searcher finds. Tokio's `worker_to_notify` re-checks under its
    /// lock the same way.
    ///
    /// The re-check is a later load of the word after the producer's
    /// fence, so the argument of "a wake is never lost" holds for it as for
    /// the first: a searcher it sees will park (and look at the queues)
    /// after it.
    pub(crate) fn wake_sleeper_for_work(&self) -> Wakes {
        let mut wakes = Wakes::default();
        let mut st = self.lock();
        if st.barrier.is_stopped() || !self.notify_should_wakeup() {
            return wakes;
        }
        if let Some(index) = self.pop_sleeper(&mut st) {
            wakes.workers.push(index);
        }
        wakes
    }

    /// Wakes up to `n` sleepers for work that was made visible, unless the
    /// world is stopped (queued work then waits for the resume).
    pub(crate) fn wake_sleepers(&self, n: usize) -> Wakes {
        let mut wakes = Wakes::default();
        let mut st = self.lock();
        if st.barrier.is_stopped() {
            return wakes;
        }
        while wakes.workers.len() < n {
            match self.pop_sleeper(&mut st) {
                Some(index) => wakes.workers.push(index),
                None => break,
            }
        }
        wakes
    }

    /// Wakes every sleeper, stopped or not (shutdown).
    pub(crate) fn wake_all_sleepers(&self) -> Wakes {
        let mut wakes = Wakes::default();
        let mut st = self.lock();
        while let Some(index) = self.pop_sleeper(&mut st) {
            wakes.workers.push(index);
        }
        wakes
    }

    /// Worker `index` found no work: it announces itself idle and is listed
    /// as a sleeper, unless `has_work` (looked at after the announcement,
    /// under the lock) finds something. The last participant to go idle
    /// declares a pending stop and releases quiescence waiters.
    ///
    /// While the world is stopped, queued work is kept for the resume and
    /// must not pull a worker back up; the one thing to stay up for is the
    /// requester, woken since this worker last looked at its slot (that
    /// wake found no sleeper to unpark, so it relies on this check).
    pub(crate) fn transition_worker_to_parked(
        &self,
        index: usize,
        is_searching: bool,
        has_work: impl Fn() -> bool,
    ) -> (Parked, Wakes) {
        let mut st = self.lock();
        let dec = UNPARKED_ONE + if is_searching { SEARCHING_ONE } else { 0 };
        // The parker's half of "a wake is never lost" (module docs).
        let prev = self.word.fetch_sub(dec, Ordering::SeqCst);
        let work = if st.barrier.is_stopped() {
            st.barrier.has_requester_runnable()
        } else {
            has_work()
        };
        if work {
            self.word
                .fetch_add(UNPARKED_ONE | SEARCHING_ONE, Ordering::SeqCst);
            self.check(&st);
            return (Parked::Work, Wakes::default());
        }
        debug_assert!(!st.sleepers.contains(&index), "worker {index} parked twice");
        st.sleepers.push(index);
        self.listed[index].store(true, Ordering::Release);
        self.check(&st);
        let wakes = if unparked(prev) == 1 && active(prev) == 0 {
            // A push from outside that raced the check above is not idle
            // work: its pusher's notify finds this worker listed, and the
            // last one to park then declares.
            self.on_all_idle(&mut st, has_work())
        } else {
            Wakes::default()
        };
        (Parked::Parked, wakes)
    }

    /// A parked worker's driver turn woke tasks into its own queue. It takes
    /// itself off the list to run them, unless the world stopped meanwhile:
    /// then they are wakes that raced the stop, kept (`keep`: the injector)
    /// *under the lock* (protocol point 12), so that a resume either happens
    /// before (this finds the world running and claims them) or after (its
    /// notify sees them queued). The requester among them goes to its slot,
    /// and this worker stays up to run it.
    pub(crate) fn transition_worker_from_turn(
        &self,
        index: usize,
        mut drain: impl FnMut() -> Option<Task>,
        keep: impl Fn(Task),
    ) -> FromTurn {
        let mut st = self.lock();
        let mut claim = !st.barrier.is_stopped();
        if !claim {
            while let Some(task) = drain() {
                if st.barrier.is_requester(Some(task.metadata().id)) {
                    st.barrier.set_requester_runnable(task);
                    claim = true;
                } else {
                    keep(task);
                }
            }
            if !claim {
                return FromTurn::Stopped;
            }
        }
        if !self.unlist(&mut st, index) {
            return FromTurn::AlreadyWoken;
        }
        self.word.fetch_add(UNPARKED_ONE, Ordering::SeqCst);
        self.check(&st);
        FromTurn::Claimed
    }

    /// Worker `index` leaves for good (shutdown). It stops counting as
    /// unparked, so a pending stop or quiescence wait can still complete
    /// (protocol point 15).
    pub(crate) fn transition_worker_to_exited(
        &self,
        index: usize,
        is_searching: bool,
        has_work: impl Fn() -> bool,
    ) -> Wakes {
        let mut st = self.lock();
        st.exited += 1;
        // A worker that parked after shutdown's wake-up round leaves its
        // park loop on the shutdown flag while still listed: it is counted
        // there, not among the unparked.
        if self.unlist(&mut st, index) {
            self.check(&st);
            return Wakes::default();
        }
        let dec = UNPARKED_ONE + if is_searching { SEARCHING_ONE } else { 0 };
        let prev = self.word.fetch_sub(dec, Ordering::SeqCst);
        self.check(&st);
        if unparked(prev) == 1 && active(prev) == 0 {
            self.on_all_idle(&mut st, has_work())
        } else {
            Wakes::default()
        }
    }

    // ---- idleness ----------------------------------------------------------

    /// Shutdown dropped every task left: with the workers gone, nobody else
    /// would look again, so a request filed while tasks were still queued is
    /// declared here (protocol point 15).
    pub(crate) fn transition_to_shut_down(&self, has_work: impl Fn() -> bool) -> Wakes {
        let mut st = self.lock();
        self.check_all_idle(&mut st, has_work)
    }

    /// Every worker is parked and nothing is active. Declares a pending
    /// stop, and releases quiescence waiters if no task is runnable at all
    /// (`has_work`: queued work, kept wakes included; protocol point 8).
    fn on_all_idle(&self, st: &mut State, has_work: bool) -> Wakes {
        let mut wakes = Wakes::default();
        if has_work || st.barrier.has_requester_runnable() {
            return wakes;
        }
        if let Some(waker) = st.barrier.declare(Instant::now()) {
            self.publish(st);
            wakes.wakers.extend(waker);
            if matches!(st.barrier.requester(), Some(Requester::Task(_))) {
                // The requester is about to run: it is runnable, so this is
                // no quiescence, until its wake has reached its slot (the
                // barrier remembers, so a quiescence poll in between, after
                // the lock is released, is not fooled either).
                return wakes;
            }
        }
        if st.barrier.has_deferred() {
            // Wakes kept for the release (protocol point 10) are runnable
            // tasks: no quiescence until they have run (point 8).
            return wakes;
        }
        wakes
            .wakers
            .append(&mut st.barrier.take_quiescence_waiters());
        self.quiescence_wanted.store(false, Ordering::SeqCst);
        wakes
    }

    /// Declares what is due if everything is idle now. Lock held. The
    /// fence orders it after the caller's publication of the phase or of
    /// `quiescence_wanted` (module docs).
    fn check_all_idle(&self, st: &mut State, has_work: impl Fn() -> bool) -> Wakes {
        fence(Ordering::SeqCst);
        if self.nothing_runs() {
            self.on_all_idle(st, has_work())
        } else {
            Wakes::default()
        }
    }

    /// Every worker parked (or gone) and no `block_on` poll or round active.
    fn nothing_runs(&self) -> bool {
        let word = self.word.load(Ordering::SeqCst);
        unparked(word) == 0 && active(word) == 0
    }

    fn is_quiescent(&self, st: &State, has_work: impl Fn() -> bool) -> bool {
        self.nothing_runs()
            && !st.barrier.has_requester_runnable()
            && !st.barrier.requester_wake_pending()
            && !st.barrier.has_deferred()
            && !has_work()
    }

    // ---- block_on and deterministic rounds --------------------------------

    /// A slot for `block_on` calls (see [`BlockOnSlot`]), listed for
    /// reports; no call is in progress on it yet. Slots no thread holds any
    /// more (their thread exited, or cached another runtime's) are dropped
    /// from the list here.
    pub(crate) fn new_block_on_slot(
        &self,
        location: &'static Location<'static>,
    ) -> StdArc<BlockOnSlot> {
        let slot = StdArc::new(BlockOnSlot {
            id: StdAtomicU64::new(0),
            location: AtomicPtr::new(location as *const Location<'static> as *mut _),
            wake: AtomicU64::new(SLOT_DONE),
            polls: StdAtomicU64::new(0),
            polling: StdAtomicBool::new(false),
        });
        let mut st = self.lock();
        // Only the list holds it: nobody can start a call on it again.
        st.block_ons.retain(|s| StdArc::strong_count(s) > 1);
        st.block_ons.push(slot.clone());
        slot
    }

    /// The live `block_on` calls. Lock held.
    fn live_block_ons(st: &State) -> impl Iterator<Item = &StdArc<BlockOnSlot>> {
        st.block_ons.iter().filter(|s| s.is_live())
    }

    /// A `block_on` call begins on `slot` (one call at a time per slot): its
    /// future is a live task from now on. Lock-free: the slot was listed
    /// when it was made.
    pub(crate) fn register_block_on(
        &self,
        slot: &BlockOnSlot,
        id: Id,
        location: &'static Location<'static>,
    ) {
        slot.id
            .store(id.as_u64(), std::sync::atomic::Ordering::Relaxed);
        slot.location.store(
            location as *const Location<'static> as *mut _,
            std::sync::atomic::Ordering::Relaxed,
        );
        // Release: a report that sees the call live sees its id (wakers
        // never move a slot out of DONE, so a store is enough).
        debug_assert!(!slot.is_live(), "two block_on calls on one slot");
        slot.wake.store(SLOT_IDLE, Ordering::Release);
        // The waker reaches wakers' threads through atomics loom cannot see;
        // this lock, which `count_wake` takes too under loom, gives the
        // model the edge the real program has.
        #[cfg(loom)]
        drop(self.lock());
    }

    /// The `block_on` call ends. A count left by a wake that no poll took
    /// over (a wake during the last poll) is dropped, as a poll's end drops
    /// its own: the lock only if that made everything idle with a stop or
    /// a quiescence waiter pending.
    pub(crate) fn unregister_block_on(
        &self,
        slot: &BlockOnSlot,
        has_work: impl Fn() -> bool,
    ) -> Wakes {
        if slot.wake.swap(SLOT_DONE, Ordering::AcqRel) == SLOT_COUNTED {
            return self.end_active(has_work);
        }
        Wakes::default()
    }

    /// How many `block_on` calls are in progress.
    pub(crate) fn block_on_count(&self) -> usize {
        Self::live_block_ons(&self.lock()).count()
    }

    /// The `block_on` future was woken: it counts as runnable from now until
    /// its poll (protocol point 11), so no stop or quiescence is declared
    /// in between. Lock-free; also during a stop, where the future is held
    /// runnable until the resume.
    ///
    /// Count first, then mark: `COUNTED` must always mean "counted in the
    /// word", since a poll takes that count over and the call's end drops
    /// it. (Marking first let a poll take over a count not yet added: the
    /// poll ran uncounted, and a stop could be declared under it.) A wake
    /// that loses the race to mark (another wake, a poll, the end of the
    /// call) takes its count back the way a poll ends, which declares
    /// whatever its count held off.
    pub(crate) fn count_wake(&self, slot: &BlockOnSlot, has_work: impl Fn() -> bool) -> Wakes {
        // The waker reached this thread through async-task's atomics, which
        // loom cannot see; the slot was listed under the lock after it was
        // made, so taking the lock gives the model the edge the real
        // program has.
        #[cfg(loom)]
        drop(self.lock());
        if slot.wake.load(Ordering::Acquire) != SLOT_IDLE {
            // Counted already, or the call is over.
            return Wakes::default();
        }
        self.word.fetch_add(ACTIVE_ONE, Ordering::SeqCst);
        if slot
            .wake
            .compare_exchange(SLOT_IDLE, SLOT_COUNTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Wakes::default();
        }
        self.end_active(has_work)
    }

    /// A `block_on` poll is about to begin. Lock-free unless a stop is
    /// pending (module docs, "the block_on count").
    pub(crate) fn begin_block_on_poll(&self, slot: &BlockOnSlot, waker: &Waker) -> BeginPoll {
        // Take over a wake's count, or count the poll.
        if slot
            .wake
            .compare_exchange(SLOT_COUNTED, SLOT_IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            self.word.fetch_add(ACTIVE_ONE, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if self.flags.phase_seqcst() != RUNNING {
            let mut st = self.lock();
            if st.barrier.is_stopped() && !st.barrier.is_requester(Some(slot.id())) {
                // Stopped, and not by this future: it stays runnable (the
                // poll's count becomes the wake's) and waits for the resume.
                // A wake that got in first counted it already: one count is
                // enough (the world is stopped: this cannot make it idle).
                if slot
                    .wake
                    .compare_exchange(SLOT_IDLE, SLOT_COUNTED, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    self.word.fetch_sub(ACTIVE_ONE, Ordering::SeqCst);
                }
                st.barrier.hold(waker.clone());
                return BeginPoll::Held;
            }
        }
        slot.polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        slot.polling
            .store(true, std::sync::atomic::Ordering::Relaxed);
        BeginPoll::Poll
    }

    /// A `block_on` poll ended.
    pub(crate) fn end_block_on_poll(
        &self,
        slot: &BlockOnSlot,
        has_work: impl Fn() -> bool,
    ) -> Wakes {
        slot.polling
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.end_active(has_work)
    }

    /// A deterministic round begins: the caller counts as polling, so no
    /// stop is declared between its look at the phase and its polls.
    /// Returns whether the world is stopped (then the round may run only
    /// the requester). As for a `block_on` poll: count, fence, look at the
    /// phase; if a stop is pending, the lock orders this round after any
    /// declaration that did not see its count (one that did see it waits).
    pub(crate) fn begin_round(&self) -> bool {
        self.word.fetch_add(ACTIVE_ONE, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.flags.phase_seqcst() == RUNNING {
            return false;
        }
        self.lock().barrier.is_stopped()
    }

    /// A `block_on` poll or deterministic round ended. Takes the lock only
    /// if this was the last participant and someone waits for idleness.
    pub(crate) fn end_active(&self, has_work: impl Fn() -> bool) -> Wakes {
        let prev = self.word.fetch_sub(ACTIVE_ONE, Ordering::SeqCst);
        let last = unparked(prev) == 0 && active(prev) == 1;
        if last {
            fence(Ordering::SeqCst);
        }
        if last
            && (self.flags.phase_seqcst() != RUNNING
                || self.quiescence_wanted.load(Ordering::SeqCst))
        {
            let mut st = self.lock();
            return self.check_all_idle(&mut st, has_work);
        }
        Wakes::default()
    }

    // ---- wakes during a stop -----------------------------------------------

    /// A task was woken while the phase read STOPPED. The requester goes to
    /// its slot (a sleeper is taken to run it); any other task is handed to
    /// `keep` under the lock, so a resume cannot slip between the decision
    /// and the queueing (protocol point 3).
    pub(crate) fn route_while_stopped(&self, task: Task, keep: impl FnOnce(Task)) -> Routed {
        let mut st = self.lock();
        if !st.barrier.is_stopped() {
            return Routed::Resumed(task);
        }
        if st.barrier.is_requester(Some(task.metadata().id)) {
            st.barrier.set_requester_runnable(task);
            // With no sleeper, a worker is awake (running the requester's
            // previous poll) and checks the slot before it parks.
            return Routed::Requester(self.pop_sleeper(&mut st));
        }
        keep(task);
        Routed::Kept
    }

    /// Whether task `id`, just pushed to the injector, may be the requester
    /// of a pending stop, so the pusher must go through
    /// [`Census::rescue_requester`]. Lock-free.
    ///
    /// Why: a push from outside the workers can race the last arrival. The
    /// declarer looks at the queues under the lock and then publishes
    /// STOPPED; a pusher that read RUNNING after its push is ordered before
    /// the request was even published, so the declarer sees its task. A
    /// pusher that reads any other phase takes the lock, and so runs after
    /// any declaration that missed its task.
    pub(crate) fn may_be_requester(&self, id: Id) -> bool {
        // The caller fenced after its push.
        self.flags.phase_seqcst() != RUNNING
            && self.requester_id.load(Ordering::SeqCst) == id.as_u64()
    }

    /// The requester task `id` was pushed to the injector from outside the
    /// workers while a stop was pending (see [`Census::may_be_requester`]).
    /// If the stop has been declared since, the push raced it: an ordinary
    /// task would simply be kept for the resume, but only the requester can
    /// resume, so `take` pulls it out of the injector into its slot
    /// (protocol point 3). Returns the worker to unpark for it.
    pub(crate) fn rescue_requester(
        &self,
        id: Id,
        take: impl FnOnce() -> Option<Task>,
    ) -> Option<usize> {
        let mut st = self.lock();
        if !st.barrier.is_stopped()
            || !st.barrier.is_requester(Some(id))
            || st.barrier.has_requester_runnable()
        {
            return None;
        }
        let task = take()?;
        st.barrier.set_requester_runnable(task);
        self.pop_sleeper(&mut st)
    }

    /// Takes the requester's runnable, if it was woken during the stop.
    /// Takes the wakes kept for a release (protocol point 10), at shutdown:
    /// the caller drops them, outside the lock. A shutdown then finds the
    /// world idle again (point 15).
    pub(crate) fn take_deferred(&self) -> Vec<Task> {
        self.lock().barrier.take_deferred()
    }

    pub(crate) fn take_requester_runnable(&self) -> Option<Task> {
        self.lock().barrier.take_requester_runnable()
    }

    // ---- requests ------------------------------------------------------------

    /// Files a request. `Err` if `requester` already holds the world (it
    /// would wait for itself forever; protocol point 14). If it became
    /// active at once and everything is idle, the stop is declared here.
    pub(crate) fn file_request(
        &self,
        requester: Requester,
        waker: &Waker,
        polls: impl FnOnce() -> Vec<u64>,
        has_work: impl Fn() -> bool,
    ) -> Result<(u64, Wakes), ()> {
        let mut st = self.lock();
        let holds = match requester {
            Requester::Task(id) => st.barrier.is_requester(Some(id)),
            Requester::Thread(thread) => st.barrier.stopped_by_thread(thread),
            Requester::Outside => false,
        };
        if holds {
            return Err(());
        }
        let (ticket, active) = st
            .barrier
            .enqueue(requester, waker.clone(), Instant::now(), polls);
        if !active {
            return Ok((ticket, Wakes::default()));
        }
        STOPS_IN_PROCESS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.publish(&st);
        let mut wakes = self.check_all_idle(&mut st, has_work);
        // The requester learns of a stop declared here from this very call.
        wakes.wakers.retain(|w| !w.will_wake(waker));
        Ok((ticket, wakes))
    }

    /// Where request `ticket` stands; refreshes its waker if it waits.
    pub(crate) fn poll_request(&self, ticket: u64, waker: Option<&Waker>) -> RequestState {
        let mut st = self.lock();
        if st.barrier.active_ticket() != Some(ticket) {
            if let Some(waker) = waker {
                st.barrier.update_waker(ticket, waker);
            }
            return RequestState::NotActive;
        }
        if st.barrier.is_stopped() {
            return RequestState::Stopped(StopFacts {
                stop: st.barrier.stats.stops,
                generation: st.barrier.generation(),
                requested_at: st.barrier.requested_at().unwrap_or_else(Instant::now),
                time_to_stop: st.barrier.time_to_stop().unwrap_or_default(),
                at_safepoint: st.barrier.at_safepoint(),
                block_ons: Self::live_block_ons(&st).count(),
            });
        }
        if let Some(waker) = waker {
            st.barrier.update_waker(ticket, waker);
        }
        RequestState::Pending(PendingFacts {
            requester: match st.barrier.requester() {
                Some(Requester::Task(id)) => Some(id),
                _ => None,
            },
            generation: st.barrier.generation(),
            at_safepoint: st.barrier.at_safepoint(),
            requested_at: st.barrier.requested_at().unwrap_or_else(Instant::now),
            polls_at_request: st.barrier.polls_at_request().to_vec(),
            block_ons: Self::live_block_ons(&st).cloned().collect(),
        })
    }

    /// Ends request `ticket` (resume, or withdrawal), first step: the
    /// barrier moves to Running and returns what the request held. `None`
    /// if it was only queued (it leaves the line) or already ended. The
    /// caller queues the released tasks, then calls [`Census::hand_over`].
    pub(crate) fn end_request(&self, ticket: u64) -> Option<Wakes> {
        let mut st = self.lock();
        let Some(released) = st.barrier.finish(ticket, Instant::now()) else {
            st.barrier.dequeue(ticket);
            return None;
        };
        STOPS_IN_PROCESS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.publish(&st);
        let mut runnables = released.deferred;
        runnables.extend(released.requester);
        Some(Wakes {
            wakers: released.wakers,
            runnables,
            workers: Vec::new(),
        })
    }

    /// Second step of ending a request: the next requester in line becomes
    /// active, now that the tasks the last one released are queued (so the
    /// idle check below sees them, and cannot pin them again: protocol
    /// point 5).
    pub(crate) fn hand_over(
        &self,
        polls: impl FnOnce() -> Vec<u64>,
        has_work: impl Fn() -> bool,
    ) -> Wakes {
        let mut st = self.lock();
        let Some(next) = st.barrier.activate_next(Instant::now(), polls()) else {
            return Wakes::default();
        };
        STOPS_IN_PROCESS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.publish(&st);
        let mut wakes = Wakes::default();
        wakes.wakers.push(next);
        wakes.append(self.check_all_idle(&mut st, has_work));
        wakes
    }

    /// Whether the world is stopped by the calling thread, from outside the
    /// runtime (protocol point 14). One load when nothing is stopped.
    pub(crate) fn stopped_by_this_thread(&self) -> bool {
        self.flags.phase() == STOPPED
            && self
                .lock()
                .barrier
                .stopped_by_thread(crate::sync::thread::current().id())
    }

    /// Whether the world is stopped by a thread outside the runtime.
    pub(crate) fn stopped_for_outside_thread(&self) -> bool {
        self.lock().barrier.stopped_for_outside_thread()
    }

    // ---- safepoints ----------------------------------------------------------

    /// A task's poll of a runtime resource would complete while some stop is
    /// pending in the process (protocol point 10): parks it as at a
    /// safepoint if this runtime's stop is pending and the task neither
    /// holds a ticket nor has its one pass from the last release.
    ///
    /// The lock-free look first: a stop of another runtime costs this
    /// runtime's resources one load. Acquire pairs with the SeqCst
    /// publication of the phase under the lock; a request published just
    /// after this load is one this poll did not see in time, as for a task
    /// between two safepoints: the stop waits for its next await.
    pub(crate) fn poll_gate(&self, me: Id, waker: &Waker) -> AtSafepoint {
        if self.flags.phase() == RUNNING {
            return AtSafepoint::Pass;
        }
        match self.lock().barrier.park_at_gate(me, waker) {
            None => AtSafepoint::Pass,
            Some(generation) => AtSafepoint::Parked(generation),
        }
    }

    /// Keeps the wake of `task`, delivered by a driver turn while a stop is
    /// requested, for the release (protocol point 10); gives it back if the
    /// stop is no longer merely requested (or the task holds a ticket), to
    /// be scheduled as usual. Under the lock, so the release (which takes
    /// the kept wakes under it) either sees it or happened before.
    pub(crate) fn defer_wake(&self, task: Task) -> Result<(), Task> {
        let id = task.metadata().id;
        self.lock().barrier.defer(id, task)
    }

    /// A task polls `safepoint()` while some stop is pending in the process.
    /// `parked_in` is the generation it parked in before, if any: a task
    /// released from a stop passes, even if a new stop is already pending
    /// (it parks at its next safepoint), so back-to-back stops cannot pin it.
    pub(crate) fn poll_safepoint(
        &self,
        me: Option<Id>,
        parked_in: Option<u64>,
        waker: &Waker,
    ) -> AtSafepoint {
        let mut st = self.lock();
        let barrier = &mut st.barrier;
        if barrier.phase() == Phase::Running || barrier.is_requester(me) {
            // The requester runs through its own safepoints.
            return AtSafepoint::Pass;
        }
        match parked_in {
            Some(generation) if generation != barrier.generation() => AtSafepoint::Pass,
            Some(generation) => {
                barrier.park_at_safepoint(waker.clone(), false);
                AtSafepoint::Parked(generation)
            }
            None => AtSafepoint::Parked(barrier.park_at_safepoint(waker.clone(), true)),
        }
    }

    // ---- quiescence ------------------------------------------------------------

    /// Waits for quiescence (protocol point 8). `Ok(wakes)` when reached
    /// (now, or since epoch `past`); otherwise registers `waker` and returns
    /// the epoch to wait past.
    pub(crate) fn poll_quiescence(
        &self,
        waker: &Waker,
        past: Option<u64>,
        has_work: impl Fn() -> bool,
    ) -> Result<Wakes, u64> {
        let mut st = self.lock();
        if past.is_some_and(|e| st.barrier.quiescence_epoch() > e) {
            return Ok(Wakes::default());
        }
        let epoch = st.barrier.wait_quiescence(waker);
        // Store, then look at the word: the other half of `end_active`'s
        // decrement-then-load (module docs).
        self.quiescence_wanted.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.is_quiescent(&st, has_work) {
            let mut wakers = st.barrier.take_quiescence_waiters();
            wakers.retain(|w| !w.will_wake(waker));
            self.quiescence_wanted.store(false, Ordering::SeqCst);
            return Ok(Wakes {
                wakers,
                ..Wakes::default()
            });
        }
        Err(past.unwrap_or(epoch))
    }

    // ---- reading ---------------------------------------------------------------

    pub(crate) fn stats(&self) -> StatsSnapshot {
        let st = self.lock();
        let stats = &st.barrier.stats;
        StatsSnapshot {
            stops: stats.stops,
            ttsp_p50: stats.ttsp_quantile(0.5),
            ttsp_p99: stats.ttsp_quantile(0.99),
            ttsp_max: stats.ttsp_max,
            stopped_total: stats.stopped_total,
            time_to_stop: stats.time_to_stop.clone(),
            pause: stats.pause.clone(),
            slowest_stops: stats.slow.snapshot(),
        }
    }

    /// Whether stop number `stop`, which took `ttsp`, is among the slowest
    /// recent ones: only then are its last arrivals gathered.
    pub(crate) fn wants_slow_stop(&self, stop: u64, ttsp: Duration) -> bool {
        self.lock().barrier.stats.slow.wants(stop, ttsp)
    }

    /// Keeps a slow stop for the metrics.
    pub(crate) fn record_slow_stop(&self, slow: crate::metrics::SlowStop) {
        self.lock().barrier.stats.slow.insert(slow);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn no_work() -> bool {
        false
    }

    #[test]
    fn the_last_worker_to_park_declares_a_pending_stop() {
        let census = Census::new(2);
        let waker = Waker::noop();
        let (ticket, wakes) = census
            .file_request(
                Requester::Thread(crate::sync::thread::current().id()),
                waker,
                Vec::new,
                no_work,
            )
            .unwrap();
        assert!(wakes.is_empty());
        assert_eq!(census.flags().phase(), REQUESTED);
        let (_, wakes) = census.transition_worker_to_parked(0, false, no_work);
        assert!(wakes.is_empty(), "one worker still runs");
        let (_, _wakes) = census.transition_worker_to_parked(1, false, no_work);
        assert_eq!(census.flags().phase(), STOPPED);
        assert!(matches!(
            census.poll_request(ticket, None),
            RequestState::Stopped(_)
        ));
        assert!(census.stopped_by_this_thread());
        let released = census.end_request(ticket).unwrap();
        assert!(released.is_empty());
        assert_eq!(census.flags().phase(), RUNNING);
    }

    #[test]
    fn a_woken_block_on_future_keeps_the_world_from_stopping_until_its_poll_ends() {
        let census = Census::new(1);
        let (_, wakes) = census.transition_worker_to_parked(0, false, no_work);
        drop(wakes);
        let slot = census.new_block_on_slot(Location::caller());
        census.register_block_on(&slot, Id::from_u64(1), Location::caller());
        let _wakes = census.count_wake(&slot, no_work);
        let me = Requester::Thread(crate::sync::thread::current().id());
        let (ticket, _) = census
            .file_request(me, Waker::noop(), Vec::new, no_work)
            .unwrap();
        assert_eq!(
            census.flags().phase(),
            REQUESTED,
            "declared over a runnable future"
        );
        assert!(matches!(
            census.begin_block_on_poll(&slot, Waker::noop()),
            BeginPoll::Poll
        ));
        let _wakes = census.end_block_on_poll(&slot, no_work);
        assert_eq!(census.flags().phase(), STOPPED);
        let _released = census.end_request(ticket);
        let _wakes = census.unregister_block_on(&slot, no_work);
    }

    #[test]
    fn quiescence_is_not_reported_while_kept_work_waits_for_the_resume() {
        let census = Census::new(1);
        let kept = std::cell::Cell::new(false);
        let has_work = || kept.get();
        let me = Requester::Thread(crate::sync::thread::current().id());
        let (ticket, _) = census
            .file_request(me, Waker::noop(), Vec::new, has_work)
            .unwrap();
        let (_, _w) = census.transition_worker_to_parked(0, false, has_work);
        assert_eq!(census.flags().phase(), STOPPED);
        kept.set(true); // a wake kept in the injector for the resume
        assert_eq!(
            census.poll_quiescence(Waker::noop(), None, has_work).err(),
            Some(0)
        );
        let _released = census.end_request(ticket);
    }
}
