//! `Shared`: the state every worker, handle and task of one runtime share.
//!
//! It owns the injector, the per-worker remotes (stealer, parker, stats,
//! laggard log), the census (`Idle`) with the barrier inside it, the task
//! registry, the driver and the blocking pool. The wake path lives here:
//! `schedule` decides where a woken runnable goes.
//!
//! Where a wake goes:
//! - the world is stopped: the requester's runnable to the requester slot
//!   (and a worker is woken to run it), everything else to the injector
//!   without waking anyone (protocol point 3: kept, not run early);
//! - woken by the task this worker is polling: the worker's LIFO slot (a
//!   self-wake, i.e. a yield, to the back of its queue instead);
//! - anything else (reactor, timers, other threads, `block_on`): the
//!   injector, waking a sleeper if nobody is searching.

use std::time::Instant;

use async_task::{Runnable, ScheduleInfo};
use crossbeam_utils::CachePadded;

use super::idle::{Idle, Inner, Parked};
use super::park::Parker;
use crate::blocking::BlockingPool;
use crate::context::{self, WakeTarget};
use crate::safepoint::barrier::{StopFlags, Wakes, STOPPED};
use crate::safepoint::laggard::LaggardLog;
use crate::sync::queue::{Injector, Stealer};
use crate::sync::{AtomicBool, AtomicU64, Counter, Mutex, MutexGuard, Ordering};
use crate::task::{Id, TaskMeta};

pub(crate) type Task = Runnable<TaskMeta>;

/// Settings fixed at build time.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) worker_threads: usize,
    pub(crate) thread_name: String,
    pub(crate) thread_stack_size: Option<usize>,
    pub(crate) global_queue_interval: u32,
    pub(crate) event_interval: u32,
    pub(crate) max_blocking_threads: usize,
    pub(crate) thread_keep_alive: std::time::Duration,
    pub(crate) hooks: crate::hooks::Hooks,
}

/// What other threads see of one worker.
pub(crate) struct Remote {
    pub(crate) stealer: Stealer<Task>,
    pub(crate) parker: Parker,
    /// Listed as a sleeper. Written under the census lock; read by the
    /// worker itself after a wake-up to tell a real unpark (the waker popped
    /// it from the list) from a spurious one.
    pub(crate) parked: AtomicBool,
    pub(crate) laggards: Mutex<LaggardLog>,
    /// Written by the worker on every poll, so on cache lines of its own:
    /// sharing a line with the fields above (read by stealers and wakers)
    /// or with the next worker's `Remote` would bounce it between cores on
    /// every poll.
    pub(crate) stats: CachePadded<WorkerStats>,
}

/// One worker's counters, written only by that worker, summed by
/// [`crate::Runtime::metrics`].
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) polls: Counter,
    pub(crate) steals: Counter,
    pub(crate) parks: Counter,
    pub(crate) spawned: Counter,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) injector: Injector<Task>,
    pub(crate) remotes: Box<[Remote]>,
    pub(crate) idle: Idle,
    pub(crate) flags: StopFlags,
    pub(crate) registry: crate::task::registry::Registry,
    pub(crate) blocking: BlockingPool,
    pub(crate) driver: Option<Mutex<safepoint_io::driver::Driver>>,
    pub(crate) io: Option<safepoint_io::driver::Handle>,
    pub(crate) shutdown: AtomicBool,
    /// Laggard log for `block_on` futures polled while a stop is pending.
    pub(crate) block_on_laggards: Mutex<LaggardLog>,
    pub(crate) remote_spawns: Counter,
    /// `Some` for the deterministic flavour (no workers; caller-driven).
    pub(crate) det: Option<crate::deterministic::Deterministic>,
    next_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        stealers: Vec<Stealer<Task>>,
        driver: Option<safepoint_io::driver::Driver>,
        det: Option<crate::deterministic::Deterministic>,
    ) -> Shared {
        let n = config.worker_threads;
        let io = driver.as_ref().map(|d| d.handle());
        Shared {
            remotes: stealers
                .into_iter()
                .map(|stealer| Remote {
                    stealer,
                    parker: Parker::new(),
                    parked: AtomicBool::new(false),
                    laggards: Mutex::new(LaggardLog::default()),
                    stats: CachePadded::default(),
                })
                .collect(),
            injector: Injector::new(),
            idle: Idle::new(n),
            flags: StopFlags::new(),
            registry: crate::task::registry::Registry::new(n),
            blocking: BlockingPool::new(&config),
            driver: driver.map(Mutex::new),
            io,
            shutdown: AtomicBool::new(false),
            block_on_laggards: Mutex::new(LaggardLog::default()),
            remote_spawns: Counter::default(),
            det,
            next_id: AtomicU64::new(1),
            config,
        }
    }

    /// A fresh task id. Relaxed: uniqueness needs only the RMW's atomicity.
    pub(crate) fn next_id(&self) -> Id {
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// async-task's schedule function for every async task of this runtime.
    pub(crate) fn schedule(&self, task: Task, info: ScheduleInfo) {
        self.schedule_task(task, info.woken_while_running)
    }

    /// `schedule`, with async-task's "woken while running" flag unpacked:
    /// such a wake is a yield and goes to the back of the queue.
    fn schedule_task(&self, task: Task, yielded: bool) {
        if self.flags.phase() == STOPPED {
            return self.schedule_while_stopped(task, yielded);
        }
        let pushed_locally = context::with_wake_target(self, |target| match target {
            WakeTarget::Worker(w) => w.schedule_local(task, yielded),
            WakeTarget::Releasing => {
                self.injector.push(task);
                Ok(())
            }
            WakeTarget::Elsewhere => Err(task),
        });
        if let Err(task) = pushed_locally {
            self.schedule_remote(task);
        }
    }

    /// Puts a task in the injector and wakes a worker for it if needed.
    pub(crate) fn schedule_remote(&self, task: Task) {
        self.injector.push(task);
        self.notify_parked();
    }

    fn schedule_while_stopped(&self, task: Task, yielded: bool) {
        let mut inner = self.idle.lock();
        if !inner.barrier.is_stopped() {
            // Resumed between the flag load and the lock: the normal path.
            drop(inner);
            return self.schedule_task(task, yielded);
        }
        if inner.barrier.is_requester(Some(task.metadata().id)) {
            inner.barrier.set_requester_runnable(task);
            let sleeper = self.pop_sleeper(&mut inner);
            drop(inner);
            // With no sleeper, a worker is awake (running the requester's
            // previous poll) and checks the slot before it parks.
            if let Some(index) = sleeper {
                self.unpark_worker(index);
            }
        } else {
            // Kept for the resume, which wakes workers for it.
            self.injector.push(task);
        }
    }

    /// Wakes one parked worker if work was made visible and nobody is
    /// searching for it.
    pub(crate) fn notify_parked(&self) {
        if !self.idle.notify_should_wakeup() {
            return;
        }
        let mut inner = self.idle.lock();
        if inner.barrier.is_stopped() {
            return;
        }
        let sleeper = self.pop_sleeper(&mut inner);
        drop(inner);
        if let Some(index) = sleeper {
            self.unpark_worker(index);
        }
    }

    /// Wakes up to `n` parked workers regardless of searchers (after a
    /// resume, or at shutdown), so a backlog is picked up at once.
    pub(crate) fn notify_many(&self, n: usize) {
        for _ in 0..n {
            let mut inner = self.idle.lock();
            if inner.barrier.is_stopped() {
                return;
            }
            let Some(index) = self.pop_sleeper(&mut inner) else {
                return;
            };
            drop(inner);
            self.unpark_worker(index);
        }
    }

    /// Takes a sleeper off the list (census lock held) and clears its
    /// `parked` flag under the same lock, so the flag never disagrees with
    /// the list for anyone holding the lock. The caller unparks it after
    /// releasing the lock.
    fn pop_sleeper(&self, inner: &mut Inner) -> Option<usize> {
        let index = self.idle.pop_sleeper(inner)?;
        self.remotes[index].parked.store(false, Ordering::Release);
        Some(index)
    }

    pub(crate) fn unpark_worker(&self, index: usize) {
        let remote = &self.remotes[index];
        remote.parker.unpark(|| {
            if let Some(io) = &self.io {
                io.unpark();
            }
        });
    }

    /// Whether any queue holds work a parking worker should take instead.
    pub(crate) fn has_visible_work(&self) -> bool {
        !self.injector.is_empty() || self.remotes.iter().any(|r| !r.stealer.is_empty())
    }

    /// Whether every participant is idle and no work is queued: the test
    /// for a stop and for quiescence. Called with the census lock held.
    pub(crate) fn all_idle(&self, inner: &Inner) -> bool {
        self.idle.all_parked(inner) && !self.has_visible_work()
    }

    /// Lets worker `index` announce itself idle. Declares a stop (or
    /// quiescence) when it was the last participant. Returns whether it
    /// parked, and what to wake.
    pub(crate) fn transition_worker_to_parked(
        &self,
        index: usize,
        is_searching: bool,
    ) -> (Parked, Wakes) {
        let mut inner = self.idle.lock();
        // While the world is stopped, queued work is kept for the resume and
        // must not pull a worker back up; the one thing to stay up for is
        // the requester, woken since this worker last looked at its slot
        // (that wake found no sleeper to unpark, so it relies on this check).
        let parked = self
            .idle
            .transition_to_parked(&mut inner, index, is_searching, |inner| {
                if inner.barrier.is_stopped() {
                    inner.barrier.has_requester_runnable()
                } else {
                    self.has_visible_work()
                }
            });
        let mut wakes = Wakes::default();
        if let Parked::Parked { all_idle } = parked {
            self.remotes[index].parked.store(true, Ordering::Release);
            // A push from outside that raced our queue check is not idle
            // work: its pusher's notify will find us among the sleepers and
            // the last one to park then declares. (While stopped, queued
            // work is kept work, and does not count.)
            let raced = !inner.barrier.is_stopped() && !self.injector.is_empty();
            if all_idle && !raced {
                wakes = inner.barrier.on_all_idle(&self.flags, Instant::now());
            }
        }
        (parked, wakes)
    }

    /// Re-checks idleness after a change that may have made everything idle
    /// (a `block_on` poll ended, a request was filed). Lock held.
    pub(crate) fn check_all_idle(&self, inner: &mut MutexGuard<'_, Inner>) -> Wakes {
        if self.all_idle(inner) {
            inner.barrier.on_all_idle(&self.flags, Instant::now())
        } else {
            Wakes::default()
        }
    }

    /// Takes the requester's runnable, if it was woken during the stop.
    pub(crate) fn take_requester_runnable(&self) -> Option<Task> {
        self.idle.lock().barrier.take_requester_runnable()
    }

    /// Wakes every worker (shutdown).
    pub(crate) fn unpark_all(&self) {
        let sleepers: Vec<usize> = {
            let mut inner = self.idle.lock();
            let mut v = Vec::new();
            while let Some(i) = self.pop_sleeper(&mut inner) {
                v.push(i);
            }
            v
        };
        for i in sleepers {
            self.unpark_worker(i);
        }
        for i in 0..self.remotes.len() {
            self.remotes[i].parker.unpark(|| {
                if let Some(io) = &self.io {
                    io.unpark();
                }
            });
        }
    }
}
