//! `Shared`: the state every worker, handle and task of one runtime share.
//!
//! It owns the injector, the per-worker remotes (stealer, parker, stats,
//! laggard log), the census (which alone owns the idle counts and the
//! barrier), the task registry, the driver and the blocking pool. The wake
//! path lives here: `schedule` decides where a woken runnable goes, and
//! `deliver` carries out what a census transition asks to wake.
//!
//! Where a wake goes:
//! - the world is stopped: the requester's runnable to the requester slot
//!   (and a worker is woken to run it), everything else to the injector
//!   without waking anyone (protocol point 3: kept, not run early);
//! - woken by the task this worker is polling: the worker's LIFO slot (a
//!   self-wake, i.e. a yield, to its deferred list instead);
//! - anything else (reactor, timers, other threads, `block_on`): the
//!   injector, waking a sleeper if nobody is searching.

use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

use async_task::{Runnable, ScheduleInfo};
use crossbeam_utils::CachePadded;

use super::park::Parker;
use crate::blocking::BlockingPool;
use crate::context::{self, WakeTarget};
use crate::flavor::Flavor;
use crate::safepoint::census::{Census, Routed, Wakes};
use crate::safepoint::flags::STOPPED;
use crate::safepoint::laggard::LaggardLog;
use crate::sync::queue::{Injector, Stealer};
use crate::sync::{fence, AtomicBool, AtomicU64, Counter, Mutex, Ordering};
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
    pub(crate) laggards: Mutex<LaggardLog>,
    /// Written by the worker on every poll, so on cache lines of its own:
    /// sharing a line with the fields above (read by stealers and wakers)
    /// or with the next worker's `Remote` would bounce it between cores on
    /// every poll.
    pub(crate) stats: CachePadded<WorkerStats>,
}

/// One worker's counters and its current poll, written only by that
/// worker, read by metrics and by a timed-out stop's report.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) polls: Counter,
    pub(crate) steals: Counter,
    pub(crate) parks: Counter,
    pub(crate) spawned: Counter,
    /// The id of the task being polled, 0 between polls. With `polls` and
    /// the counts a request snapshots when it becomes active, it names a
    /// poll that began before the request (protocol point 6). Report-only:
    /// a plain std atomic, Relaxed.
    pub(crate) current: StdAtomicU64,
    /// The spawn location of the task being polled, stored before
    /// `current`: a task in its first poll is not in the registry yet (see
    /// `task::registry`), and a report naming it takes its location from
    /// here. Report-only, Relaxed. Null or from a `&'static Location`.
    pub(crate) current_location: AtomicPtr<Location<'static>>,
}

impl WorkerStats {
    /// Publishes the poll of task `id`, spawned at `location`.
    pub(crate) fn begin_poll(&self, id: Id, location: &'static Location<'static>) {
        self.current_location.store(
            std::ptr::from_ref(location).cast_mut(),
            StdOrdering::Relaxed,
        );
        self.current.store(id.as_u64(), StdOrdering::Relaxed);
    }

    /// Publishes that no poll is running.
    pub(crate) fn end_poll(&self) {
        self.current.store(0, StdOrdering::Relaxed);
    }

    /// The poll running now, if any: its task's id and spawn location. The
    /// two loads are not one snapshot: racing with the end of a poll and
    /// the start of the next, the location may be the next task's (report
    /// only; callers check the worker's poll count around it).
    pub(crate) fn current_poll(&self) -> Option<(Id, &'static Location<'static>)> {
        let id = self.current.load(StdOrdering::Relaxed);
        let location = self.current_location.load(StdOrdering::Relaxed);
        if id == 0 {
            return None;
        }
        // SAFETY: `current_location` only ever holds null (its default) or
        // a pointer made from a `&'static Location<'static>` (`begin_poll`),
        // whatever store this load sees: `as_ref` gets null or a valid,
        // immortal location.
        let location = unsafe { location.as_ref() }?;
        Some((Id::from_u64(id), location))
    }
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) flavor: Flavor,
    pub(crate) injector: Injector<Task>,
    pub(crate) remotes: Box<[Remote]>,
    pub(crate) census: Census,
    pub(crate) registry: crate::task::registry::Registry,
    pub(crate) blocking: BlockingPool,
    pub(crate) driver: Option<Mutex<safepoint_io::driver::Driver>>,
    pub(crate) io: Option<safepoint_io::driver::Handle>,
    pub(crate) shutdown: AtomicBool,
    /// Laggard log for `block_on` futures polled while a stop is pending.
    pub(crate) block_on_laggards: Mutex<LaggardLog>,
    /// Spawns from outside the workers, on cache lines of their own (see
    /// `next_id`).
    pub(crate) remote_spawns: CachePadded<Counter>,
    /// The CPUs this process may run on: a thread waiting for a stop spins
    /// only while a core is left over for the workers (see `stop_blocking`).
    pub(crate) cores: usize,
    /// The models' stand-in for the driver (loom runs without mio).
    #[cfg(loom)]
    pub(crate) reactor: crate::sync::Arc<super::loom_reactor::Reactor>,
    /// Written by every spawn (and `block_on` call), read by nobody else:
    /// beside the fields around it (the census's word, the shutdown flag,
    /// written or read by workers on every park and poll) each spawn from
    /// outside took a cache miss on it, 2-4 % of a spawn burst's spawning
    /// thread in `perf annotate`.
    next_id: CachePadded<AtomicU64>,
}

/// The second step of `Shared::end_request`, in a guard.
struct HandOver<'a>(&'a Shared);

impl Drop for HandOver<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        let next = shared
            .census
            .hand_over(|| shared.polls_snapshot(), || shared.has_visible_work());
        shared.deliver(next);
        // The released tasks, and work that arrived during the stop, sit in
        // the injector: wake enough workers to take it now rather than one
        // at a time.
        shared.notify_many(shared.injector.len().min(shared.remotes.len()));
        // A deterministic runner waiting in the driver for an outside
        // resume must see it.
        if shared.flavor.waits_in_driver() {
            shared.interrupt_driver();
        }
    }
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        stealers: Vec<Stealer<Task>>,
        driver: Option<safepoint_io::driver::Driver>,
        flavor: Flavor,
    ) -> Shared {
        let n = config.worker_threads;
        let io = driver.as_ref().map(|d| d.handle());
        // The deterministic runner may wait in the driver for a blocking job
        // (it never skips virtual time past one): a finished job must
        // interrupt that wait, or nothing would.
        let interrupt_on_job_done = io.clone().filter(|_| flavor.waits_in_driver());
        Shared {
            remotes: stealers
                .into_iter()
                .map(|stealer| Remote {
                    stealer,
                    parker: Parker::new(),
                    laggards: Mutex::new(LaggardLog::default()),
                    stats: CachePadded::default(),
                })
                .collect(),
            injector: Injector::new(),
            census: Census::new(n),
            registry: crate::task::registry::Registry::new(n),
            blocking: BlockingPool::new(&config, interrupt_on_job_done),
            driver: driver.map(Mutex::new),
            io,
            shutdown: AtomicBool::new(false),
            block_on_laggards: Mutex::new(LaggardLog::default()),
            remote_spawns: CachePadded::default(),
            cores: num_cpus::get(),
            #[cfg(loom)]
            reactor: crate::sync::Arc::new(super::loom_reactor::Reactor::new()),
            flavor,
            next_id: CachePadded::new(AtomicU64::new(1)),
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

    /// async-task's schedule function for the multi-thread flavour.
    pub(crate) fn schedule(&self, task: Task, info: ScheduleInfo) {
        self.schedule_task(task, info.woken_while_running)
    }

    /// `schedule`, with async-task's "woken while running" flag unpacked:
    /// such a wake is a yield.
    fn schedule_task(&self, task: Task, yielded: bool) {
        if self.census.flags().phase() == STOPPED {
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
        let id = task.metadata().id;
        self.injector.push(task);
        // Push, then look (SeqCst): the producer's half of "a wake is
        // never lost" (see the census's docs).
        fence(Ordering::SeqCst);
        if self.census.may_be_requester(id) {
            self.rescue_requester(id);
        }
        self.wake_sleeper_if_needed();
    }

    /// See `Census::rescue_requester`.
    pub(crate) fn rescue_requester(&self, id: Id) {
        let worker = self
            .census
            .rescue_requester(id, || self.take_from_injector(id));
        if let Some(index) = worker {
            self.unpark_worker(index);
        }
    }

    /// Pulls task `id` out of the injector, keeping the others in order.
    /// O(queued), only on the rare path above.
    fn take_from_injector(&self, id: Id) -> Option<Task> {
        let mut others = Vec::new();
        let mut found = None;
        while let Some(task) = self.injector.pop() {
            if found.is_none() && task.metadata().id == id {
                found = Some(task);
            } else {
                others.push(task);
            }
        }
        for task in others {
            self.injector.push(task);
        }
        found
    }

    fn schedule_while_stopped(&self, task: Task, yielded: bool) {
        match self
            .census
            .route_while_stopped(task, |task| self.injector.push(task))
        {
            Routed::Resumed(task) => self.schedule_task(task, yielded),
            Routed::Requester(Some(index)) => self.unpark_worker(index),
            Routed::Requester(None) | Routed::Kept => {}
        }
    }

    /// Wakes one parked worker if work was made visible and nobody is
    /// searching for it.
    pub(crate) fn notify_parked(&self) {
        fence(Ordering::SeqCst);
        self.wake_sleeper_if_needed();
    }

    /// The producer's look at the census, after its push and fence: wakes
    /// a sleeper if nobody is searching and somebody is parked, checked
    /// first without the lock (the common "no" costs one load) and again
    /// under it (`Census::wake_sleeper_for_work`).
    fn wake_sleeper_if_needed(&self) {
        if self.census.notify_should_wakeup() {
            self.deliver(self.census.wake_sleeper_for_work());
        }
    }

    /// Wakes up to `n` parked workers regardless of searchers (after a
    /// resume), so a backlog is picked up at once.
    pub(crate) fn notify_many(&self, n: usize) {
        if n > 0 {
            self.deliver(self.census.wake_sleepers(n));
        }
    }

    /// Carries out what a census transition asked for, lock released:
    /// runnables and wakers first (they queue work), workers last (so a
    /// worker woken for the work finds it).
    pub(crate) fn deliver(&self, wakes: Wakes) {
        // Most transitions wake nothing (every `block_on` poll ends with
        // one): skip the three loops and the drops.
        if wakes.is_empty() {
            std::mem::forget(wakes);
            return;
        }
        for r in wakes.runnables {
            r.schedule();
        }
        for w in wakes.wakers {
            w.wake();
        }
        for index in wakes.workers {
            self.unpark_worker(index);
        }
    }

    pub(crate) fn unpark_worker(&self, index: usize) {
        self.remotes[index]
            .parker
            .unpark(|| self.interrupt_driver());
    }

    /// Interrupts a thread waiting in the driver (the deterministic runner,
    /// which waits there for I/O, blocking jobs and outside resumes).
    pub(crate) fn interrupt_driver(&self) {
        if let Some(io) = &self.io {
            io.unpark();
        }
        #[cfg(loom)]
        self.reactor.interrupt();
    }

    /// Whether any queue holds work a parking worker should take instead.
    pub(crate) fn has_visible_work(&self) -> bool {
        !self.injector.is_empty() || self.remotes.iter().any(|r| !r.stealer.is_empty())
    }

    /// Each worker's poll count, for a request becoming active.
    pub(crate) fn polls_snapshot(&self) -> Vec<u64> {
        self.remotes.iter().map(|r| r.stats.polls.get()).collect()
    }

    /// Ends request `ticket`: resumes the world it stopped, withdraws it if
    /// still pending, or takes it out of the line.
    ///
    /// In two steps (protocol points 4 and 5): the barrier moves on and the
    /// released tasks are queued, without waking any worker; only then is
    /// the next requester handed the barrier, so its idle check sees the
    /// released tasks and cannot pin them again.
    pub(crate) fn end_request(&self, ticket: u64) {
        let Some(released) = self.census.end_request(ticket) else {
            return;
        };
        // The hand-over runs even if a released waker panics: until it
        // does, no request can become active.
        let _hand_over = HandOver(self);
        // Every released task is queued before any worker is woken (see
        // `context::release_quietly`), so a wake that preempts this thread
        // cannot keep the rest held.
        context::release_quietly(self, || self.deliver(released));
    }

    /// Wakes every worker (shutdown).
    pub(crate) fn unpark_all(&self) {
        self.deliver(self.census.wake_all_sleepers());
        for i in 0..self.remotes.len() {
            self.unpark_worker(i);
        }
    }
}
