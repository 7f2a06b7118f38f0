//! Who is idle: the worker census that both wakes and stops are decided on.
//!
//! One atomic word holds the number of *unparked* workers and the number of
//! *searching* workers (stealing, or just woken to look for work). Hot paths
//! read it without a lock to decide whether a wake is needed at all, as
//! tokio's `Idle` does; every change to the unparked count happens under the
//! `inner` lock, together with the list of sleepers and the safepoint
//! barrier's state, so "every worker is parked and no `block_on` future is
//! being polled" is a single consistent fact under that lock. That fact is
//! the whole O(workers) test behind a stop and behind quiescence: no task is
//! walked and no counter is bumped per poll (design.md, "Keeping a stop
//! O(workers)").
//!
//! The protocol that keeps wakes from being lost is a Dekker pair:
//! a producer pushes work (a SeqCst RMW inside the queue), fences, then reads
//! the census; a parking worker decrements the census (SeqCst RMW), then
//! looks at the queues. At least one of them sees the other, so either the
//! producer wakes a sleeper or the parker finds the work and stays up.

use crate::safepoint::barrier::Barrier;
use crate::sync::{fence, AtomicUsize, Mutex, MutexGuard, Ordering::SeqCst};

const UNPARKED_MASK: usize = (1 << 16) - 1;
const SEARCHING_ONE: usize = 1 << 16;

pub(crate) struct Idle {
    /// `searching << 16 | unparked`.
    state: AtomicUsize,
    num_workers: usize,
    pub(crate) inner: Mutex<Inner>,
}

/// State guarded by the census lock.
pub(crate) struct Inner {
    /// Indices of parked workers, most recently parked last (woken first:
    /// its caches are warmest and it may not have slept yet).
    pub(crate) sleepers: Vec<usize>,
    /// `block_on` threads polling their future right now. They count as
    /// running tasks: nothing is idle while one polls.
    pub(crate) block_on_active: usize,
    /// `block_on` calls in progress (their futures are tasks for reports).
    pub(crate) block_on_count: usize,
    /// Workers that have left for good (shutdown).
    exited: usize,
    pub(crate) barrier: Barrier,
}

impl Idle {
    /// The census invariant: every worker is counted unparked, listed as a
    /// sleeper, or gone, exactly once. Checked (in debug builds) after every
    /// change under the lock; a double count here is a lost wake later.
    fn check(&self, inner: &Inner) {
        debug_assert_eq!(
            unparked(self.state.load(SeqCst)) + inner.sleepers.len() + inner.exited,
            self.num_workers,
            "census out of balance: unparked + sleepers + exited != workers"
        );
    }
}

/// What a worker that tried to park should do.
pub(crate) enum Parked {
    /// It is parked (listed as a sleeper); `all_idle` says whether it was
    /// the last participant to go idle.
    Parked { all_idle: bool },
    /// Work showed up after it announced itself idle: it stays unparked and
    /// searching.
    Work,
}

/// Takes worker `index` off the sleeper list; whether it was listed.
fn unlist(inner: &mut Inner, index: usize) -> bool {
    match inner.sleepers.iter().position(|&i| i == index) {
        Some(pos) => {
            inner.sleepers.swap_remove(pos);
            true
        }
        None => false,
    }
}

pub(crate) fn unparked(state: usize) -> usize {
    state & UNPARKED_MASK
}

pub(crate) fn searching(state: usize) -> usize {
    state >> 16
}

impl Idle {
    pub(crate) fn new(num_workers: usize) -> Idle {
        assert!(num_workers <= UNPARKED_MASK, "too many workers");
        Idle {
            // Workers start unparked: each parks itself once it finds no work.
            state: AtomicUsize::new(num_workers),
            num_workers,
            inner: Mutex::new(Inner {
                sleepers: Vec::with_capacity(num_workers),
                block_on_active: 0,
                block_on_count: 0,
                exited: 0,
                barrier: Barrier::new(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Whether a producer that just made work visible should wake a
    /// sleeper: nobody is searching (a searcher would find the work) and
    /// somebody is parked.
    pub(crate) fn notify_should_wakeup(&self) -> bool {
        // Pairs with the SeqCst decrement in `transition_to_parked`: the
        // producer's push happens-before this fence, so either this load sees
        // the parker's decrement or the parker's queue check sees the push.
        fence(SeqCst);
        let state = self.state.load(SeqCst);
        searching(state) == 0 && unparked(state) < self.num_workers
    }

    /// Takes a sleeper to wake and counts it as unparked and searching.
    /// `None` if nobody sleeps. The caller unparks the returned worker after
    /// releasing the lock.
    pub(crate) fn pop_sleeper(&self, inner: &mut Inner) -> Option<usize> {
        let index = inner.sleepers.pop()?;
        // SeqCst: ordered with the lock-free reads in `notify_should_wakeup`.
        self.state.fetch_add(1 | SEARCHING_ONE, SeqCst);
        self.check(inner);
        Some(index)
    }

    /// A worker with nothing to do asks to search (steal). At most half the
    /// workers search at once, so one spawn does not send every thread
    /// through every other queue.
    pub(crate) fn transition_to_searching(&self) -> bool {
        let state = self.state.load(SeqCst);
        if 2 * searching(state) >= self.num_workers {
            return false;
        }
        self.state.fetch_add(SEARCHING_ONE, SeqCst);
        true
    }

    /// A parked worker found work of its own (tasks its driver turn woke):
    /// it takes itself off the sleepers and counts as unparked again.
    /// Returns false if it was no longer listed: a waker popped it, and
    /// already counted it unparked (and searching). The list, not the
    /// worker's `parked` flag, decides: the flag is only a hint outside the
    /// lock.
    pub(crate) fn remove_sleeper(&self, inner: &mut Inner, index: usize) -> bool {
        if !unlist(inner, index) {
            return false;
        }
        self.state.fetch_add(1, SeqCst);
        self.check(inner);
        true
    }

    /// A searching worker found work. Returns true if it was the last
    /// searcher: it must then wake another worker, so that work it leaves
    /// behind in the queues is not stranded (tokio's rule).
    pub(crate) fn transition_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(SEARCHING_ONE, SeqCst);
        searching(prev) == 1
    }

    /// Announces worker `index` idle and lists it as a sleeper, unless
    /// `has_work` (checked after the announcement, under the lock) finds
    /// something for it to do. Called with the census lock held.
    pub(crate) fn transition_to_parked(
        &self,
        inner: &mut Inner,
        index: usize,
        is_searching: bool,
        has_work: impl FnOnce(&Inner) -> bool,
    ) -> Parked {
        let dec = 1 + if is_searching { SEARCHING_ONE } else { 0 };
        // SeqCst RMW: first half of the Dekker pair (see the module docs).
        let prev = self.state.fetch_sub(dec, SeqCst);
        if has_work(inner) {
            self.state.fetch_add(1 | SEARCHING_ONE, SeqCst);
            self.check(inner);
            return Parked::Work;
        }
        debug_assert!(
            !inner.sleepers.contains(&index),
            "worker {index} parked twice"
        );
        inner.sleepers.push(index);
        self.check(inner);
        Parked::Parked {
            all_idle: unparked(prev) == 1 && inner.block_on_active == 0,
        }
    }

    /// A worker leaves for good (shutdown). It stops counting as unparked,
    /// so a stop or quiescence wait that is pending can still complete.
    /// Returns whether everything is now idle. Lock held.
    pub(crate) fn transition_to_exited(
        &self,
        inner: &mut Inner,
        index: usize,
        is_searching: bool,
    ) -> bool {
        inner.exited += 1;
        // A worker that parked after shutdown's wake-up round leaves its
        // park loop on the shutdown flag while still listed as a sleeper:
        // then it is counted there, not among the unparked.
        if unlist(inner, index) {
            self.check(inner);
            return false;
        }
        let dec = 1 + if is_searching { SEARCHING_ONE } else { 0 };
        let prev = self.state.fetch_sub(dec, SeqCst);
        self.check(inner);
        unparked(prev) == 1 && inner.block_on_active == 0
    }

    /// Whether every worker is parked and no `block_on` future is polled.
    /// The caller also checks the injector (work from outside).
    pub(crate) fn all_parked(&self, inner: &Inner) -> bool {
        unparked(self.state.load(SeqCst)) == 0 && inner.block_on_active == 0
    }
}
