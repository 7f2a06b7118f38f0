//! The registry of live tasks: what lets shutdown drop every task.
//!
//! A task blocked on a future that nobody will ever wake (say
//! `std::future::pending()`) is held by no queue and no waker; without a
//! list of live tasks, dropping the runtime would leak it and never run its
//! destructors. The registry keeps one `Waker` (and the task's identity) per
//! blocked async task, sharded by id so that tasks on different workers
//! rarely meet on one lock. At shutdown every registered task is woken,
//! which puts its runnable in a queue, and the queues are drained by
//! dropping the runnables; async-task drops a future whose runnable is
//! dropped.
//!
//! A task enters the registry when one of its polls first returns `Pending`
//! (inside that poll, so no wake can run it elsewhere first), not when it is
//! spawned. Until then it is always in a queue or being polled, where
//! shutdown finds it anyway, so only a task that has blocked needs an entry.
//! Registering at spawn put a shard lock, a hash-map insert and two cache
//! misses (the shard's lines were last written by the worker that removed an
//! earlier task) on the spawner, which is the serial part of a spawn burst:
//! 10 000 spawns from one thread took 11 ms against tokio's 7.5 ms, and
//! 5.5-6.5 ms without it. A task that finishes in its first poll (most
//! short tasks) never touches the registry at all. Named tasks are the
//! exception: they are registered at spawn, so that a report about their
//! first poll can name them.
//!
//! The tasks not registered yet are counted, so that the live-task count
//! still includes queued tasks and tasks in their first poll. The count is
//! split in slots, one per worker and one for every other thread, each on
//! its own cache line: a thread adds to and takes from its own slot, and
//! the count is their (wrapping) sum. One shared counter, added to by the
//! spawner and taken from by the worker that ran the task, moved its cache
//! line between cores twice per task: in `perf annotate` that one
//! `fetch_sub` was 5 % of the workers' time in a `JoinSet` burst.
//!
//! Shards: at least 64, and 16 per worker beyond four: with 16 shards
//! (4 per worker) workers removing finished tasks met each other on a
//! shard often enough for parking_lot to park the loser.
//! Each shard keeps its length beside its lock, written under it, so that
//! the live-task count (metrics, every stop's report) is a sum of loads and
//! takes no lock: with this many shards, locking each would lengthen every
//! stop.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::task::Waker;

use crossbeam_utils::CachePadded;

use super::id::{Id, TaskInfo};
use crate::context::{self, WakeTarget};
use crate::scheduler::Shared;
use crate::sync::{AtomicUsize, Mutex, Ordering};

/// Task ids are sequential, so a multiplicative hash spreads them well
/// enough and costs one multiplication.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Shard = HashMap<Id, (Waker, TaskInfo), BuildHasherDefault<IdHasher>>;

pub(crate) struct Registry {
    shards: Box<[CachePadded<Slot>]>,
    mask: usize,
    /// Tasks created and not registered yet (queued for their first poll,
    /// in it, or refused at shutdown and about to be dropped), in slots:
    /// one per worker, then one for other threads (see the module docs). A
    /// slot may go "negative" (wrapping); only the sum means anything.
    /// Relaxed: a count for reports, which orders nothing; a reader that
    /// must see a task's change (a join, then the count) is ordered by the
    /// join.
    unregistered: Box<[CachePadded<AtomicUsize>]>,
}

/// One shard: its tasks, and their number as of the last change.
#[derive(Default)]
struct Slot {
    tasks: Mutex<Shard>,
    /// `tasks.len()`, stored under the lock after each change (release,
    /// so a reader that sees it also sees the change); read without it.
    len: AtomicUsize,
}

impl Slot {
    fn update(&self, f: impl FnOnce(&mut Shard)) {
        let mut tasks = self.tasks.lock();
        f(&mut tasks);
        self.len.store(tasks.len(), Ordering::Release);
    }
}

impl Registry {
    pub(crate) fn new(workers: usize) -> Registry {
        let n = (workers * 16).next_power_of_two().max(64);
        Registry {
            shards: (0..n).map(|_| CachePadded::new(Slot::default())).collect(),
            mask: n - 1,
            unregistered: (0..=workers)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
        }
    }

    fn shard(&self, id: Id) -> &Slot {
        &self.shards[(id.as_u64() as usize) & self.mask]
    }

    /// The slot of the unregistered count for the calling thread: its
    /// worker's, or the one of every other thread.
    fn unregistered_slot(&self, shared: &Shared) -> &AtomicUsize {
        let index = context::with_wake_target(shared, |target| match target {
            WakeTarget::Worker(w) => w.index(),
            WakeTarget::Releasing | WakeTarget::Elsewhere => self.unregistered.len() - 1,
        });
        &self.unregistered[index]
    }

    /// Counts a task created but not registered (see the module docs).
    pub(crate) fn count_unregistered(&self, shared: &Shared) {
        self.unregistered_slot(shared)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Uncounts a task counted by `count_unregistered`: it registered,
    /// finished or was dropped.
    pub(crate) fn uncount_unregistered(&self, shared: &Shared) {
        self.unregistered_slot(shared)
            .fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn insert(&self, info: TaskInfo, waker: Waker) {
        self.shard(info.id).update(|tasks| {
            tasks.insert(info.id, (waker, info));
        });
    }

    pub(crate) fn remove(&self, id: Id) {
        // The task's entry is dropped after the lock: its waker's drop may
        // free the task, and nothing else needs to wait for that.
        let mut removed = None;
        self.shard(id).update(|tasks| removed = tasks.remove(&id));
        drop(removed);
    }

    /// The number of live tasks: registered ones, summed over the shards,
    /// and the ones not registered yet. Exact when no task changes state
    /// meanwhile (a stopped world, where the census lock orders every
    /// worker's writes before the read, and outside threads only add, to
    /// the slot read last). While tasks run it may be high or low by the
    /// tasks that changed state during the sum: a task registering is
    /// counted twice, and a task spawned on one thread and finished on
    /// another after the first slot was read but before the second may
    /// leave the slots' sum below zero, which counts as zero.
    pub(crate) fn len(&self) -> usize {
        let unregistered = self.unregistered.iter().fold(0usize, |sum, slot| {
            sum.wrapping_add(slot.load(Ordering::Relaxed))
        });
        // The wrapping sum, read as signed: a transient negative is zero.
        let unregistered = usize::try_from(unregistered as isize).unwrap_or(0);
        self.registered_len() + unregistered
    }

    /// The number of registered (blocked) tasks.
    pub(crate) fn registered_len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.len.load(Ordering::Acquire))
            .sum()
    }

    /// Wakers of every registered task (for shutdown), cloned so that no shard
    /// lock is held while they run.
    pub(crate) fn wakers(&self) -> Vec<Waker> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.tasks.lock().values().map(|(w, _)| w.clone()));
        }
        out
    }

    /// The identity of live task `id`.
    pub(crate) fn info(&self, id: Id) -> Option<TaskInfo> {
        self.shard(id)
            .tasks
            .lock()
            .get(&id)
            .map(|(_, info)| info.clone())
    }

    /// Identities of every registered task, by id (for a deadlock report,
    /// where every task has blocked: O(tasks), but only when the program is
    /// already stuck).
    pub(crate) fn infos(&self) -> Vec<TaskInfo> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.tasks.lock().values().map(|(_, i)| i.clone()));
        }
        out.sort_by_key(|i| i.id);
        out
    }
}
