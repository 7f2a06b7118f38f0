//! A worker thread: its run loop, its queues, and how it parks.
//!
//! The loop is tokio's multi-thread loop in miniature: take the LIFO slot
//! (capped, so two tasks waking each other cannot starve the queue), then
//! the local queue, every `global_queue_interval` ticks the injector first
//! for fairness, then steal from a random victim in batches, then park
//! (after handing the core to any other runnable thread once: see
//! `yield_before_park`). A busy worker polls the driver without blocking
//! every `event_interval` ticks so a CPU-heavy queue never starves I/O.
//!
//! The interval is fixed, as tokio's. It once adapted (down to 8 ticks
//! while polls kept finding events), which made a 32-connection echo 5-10 %
//! faster but kept the workers on their cores between requests: with the
//! load generator on the same two cores, wrk waited for a scheduler tick
//! (4 ms at 250 Hz) and the hyper server's p99 at 50 connections was 3.9 ms
//! against tokio's 1.1-1.8 ms. With the fixed interval it is 1.1-1.4 ms at
//! the same requests/s. Servers are judged by their tail.
//!
//! Tasks that yielded (`yield_now`) wait on a deferred list, as in tokio.
//! They go back to the queue, behind whatever I/O the driver found, after
//! each non-blocking driver poll (at least every `event_interval` tasks,
//! however busy the worker is) and whenever the queue and the injector run
//! dry, after a driver poll. So a yielded task runs again within
//! `event_interval` polls plus the tasks already queued ahead of it on its
//! worker, whatever else is runnable, and a task that yields in a loop sees
//! I/O that is already pending before it runs again. A worker with yielded
//! tasks requeues them rather than stealing, except now and then.
//!
//! The safepoint protocol adds little here, by design: while a stop is
//! requested the worker keeps draining as usual and notes what it polls
//! (laggard log; and every poll publishes its task in the worker's slot,
//! protocol point 6), while the wakes its driver turns deliver are kept for
//! the release (point 10); it *arrives* by parking, and the census declares
//! the stop when the last one parks. While the world is stopped a worker runs
//! only the requester (from the barrier's slot) and otherwise stays parked.

use std::cell::Cell;
use std::time::Duration;

use super::park::Turn;
use super::shared::{Shared, Task};
use crate::context;
use crate::safepoint::census::{FromTurn, Parked};
use crate::safepoint::flags::{REQUESTED, RUNNING, STOPPED};
use crate::sync::queue::Local;
use crate::sync::Arc;

/// Consecutive LIFO polls before the LIFO task goes to the back of the
/// queue (tokio uses 3).
const MAX_LIFO_POLLS: u32 = 3;

/// A worker whose queue ran dry but that has yielded tasks of its own
/// requeues them instead of stealing, except every this-many rounds.
/// Stealing from a sibling that is itself cycling through its yielded tasks
/// only moves tasks (and their cache lines) between cores: with 200 tasks
/// yielding in a loop on 4 workers it was one steal per 40 polls, and about
/// a tenth of the run time. The periodic steal keeps the balance, and keeps
/// a worker stuck in a long poll from keeping its queue to itself.
const STEAL_EVERY_DEFERRED_ROUNDS: u32 = 8;

/// The part of a worker that the wake path reaches through the
/// thread-local context while a task on this worker is being polled.
pub(crate) struct WorkerLocal {
    shared: Arc<Shared>,
    index: usize,
    local: Local<Task>,
    lifo: Cell<Option<Task>>,
    /// True only while a task is being polled here: only such wakes are
    /// "woken by the running task" and may use the LIFO slot.
    polling: Cell<bool>,
    /// True while this worker turns the driver: wakes of I/O and timers go
    /// to this worker's queue, and it runs them itself after the turn
    /// instead of waking another thread for each (tokio does the same).
    in_driver: Cell<bool>,
    /// Tasks that yielded. They run again after this worker has looked at
    /// every other source of work (its queue, the injector, its victims),
    /// so a task that yields in a loop cannot keep work spawned from
    /// outside waiting, and cannot starve anything (tokio's `defer`).
    deferred: std::cell::RefCell<Vec<Task>>,
}

impl WorkerLocal {
    /// This worker's index in its runtime.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    pub(crate) fn belongs_to(&self, shared: &Shared) -> bool {
        std::ptr::eq(&*self.shared, shared)
    }

    /// Counts a spawn made from a task on this worker.
    pub(crate) fn count_spawn(&self) {
        self.shared.remotes[self.index].stats.spawned.add_owned(1);
    }

    /// Schedules a task woken from inside a poll on this worker. Gives the
    /// task back if this is not such a wake.
    pub(crate) fn schedule_local(&self, task: Task, yielded: bool) -> Result<(), Task> {
        if self.in_driver.get() {
            // While a stop is requested, a wake from the driver is kept for
            // the release (protocol point 10): the task is blocked at an
            // await on a runtime resource, safe where it is, and running it
            // now would only park it at that await's gate. Relaxed: a stale
            // phase either defers under the lock, which re-checks, or
            // queues the task as before the request.
            let task = if self.shared.census.flags().snapshot_relaxed().phase == REQUESTED {
                match self.shared.census.defer_wake(task) {
                    Ok(()) => return Ok(()),
                    Err(task) => task,
                }
            } else {
                task
            };
            // Counted after the turn (`claim_after_turn`), which also wakes
            // help if there is more than one.
            self.local.push(task);
            return Ok(());
        }
        if !self.polling.get() {
            return Err(task);
        }
        if yielded {
            self.deferred.borrow_mut().push(task);
            return Ok(());
        }
        match self.lifo.replace(Some(task)) {
            None => return Ok(()),
            Some(prev) => self.local.push(prev),
        }
        // Work beyond what this worker is about to run: let an idle worker
        // steal it.
        self.shared.notify_parked();
        Ok(())
    }
}

pub(crate) struct Worker {
    local: std::rc::Rc<WorkerLocal>,
    /// Tasks to take before the next non-blocking driver poll.
    until_driver: u32,
    /// Tasks to take before the injector is looked at first.
    until_injector: u32,
    is_searching: bool,
    rng: u64,
    /// Times the queue ran dry while yielded tasks waited (see
    /// `STEAL_EVERY_DEFERRED_ROUNDS`).
    deferred_rounds: u32,
}

/// Runs worker `index` until shutdown.
pub(crate) fn run(shared: Arc<Shared>, index: usize, local: Local<Task>) {
    let handle = crate::Handle::from_shared(shared.clone());
    let _enter = context::enter(&handle);
    let _thread = shared.config.hooks.enter_thread();
    let local = std::rc::Rc::new(WorkerLocal {
        shared: shared.clone(),
        index,
        local,
        lifo: Cell::new(None),
        polling: Cell::new(false),
        in_driver: Cell::new(false),
        deferred: std::cell::RefCell::new(Vec::new()),
    });
    let _worker = context::enter_worker(local.clone());
    let mut worker = Worker {
        local,
        until_driver: shared.config.event_interval,
        until_injector: shared.config.global_queue_interval,
        is_searching: false,
        deferred_rounds: 0,
        rng: 0x2545_F491_4F6C_DD1D ^ ((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    };
    worker.run_loop();
    worker.drain();
    let wakes = shared
        .census
        .transition_worker_to_exited(index, worker.is_searching, || shared.has_visible_work());
    shared.deliver(wakes);
}

impl Worker {
    fn shared(&self) -> &Arc<Shared> {
        &self.local.shared
    }

    fn run_loop(&mut self) {
        while !self.shared().is_shutdown() {
            if self.shared().census.flags().phase() == STOPPED {
                match self.shared().census.take_requester_runnable() {
                    Some(task) => self.run_task(task),
                    None => self.park(),
                }
                continue;
            }
            if let Some(task) = self.next_task() {
                self.run_task(task);
                continue;
            }
            if self.skip_steal_for_deferred() && self.requeue_deferred_after_poll() {
                continue;
            }
            if let Some(task) = self.steal_work() {
                self.run_task(task);
                continue;
            }
            if self.requeue_deferred_after_poll() {
                continue;
            }
            self.park();
        }
    }

    fn next_task(&mut self) -> Option<Task> {
        // Countdowns rather than `tick % interval`: the intervals are
        // settings, not constants, and a division on every task is
        // measurable.
        self.until_driver -= 1;
        if self.until_driver == 0 {
            self.poll_driver();
            // Yielded tasks get their turn at least once per interval, even
            // on a worker whose queue never runs dry (behind the I/O this
            // poll found).
            self.requeue_deferred();
            self.until_driver = self.local.shared.config.event_interval;
        }
        self.until_injector -= 1;
        if self.until_injector == 0 {
            self.until_injector = self.local.shared.config.global_queue_interval;
            if let Some(task) = self.shared().injector.pop_batch_into(&self.local.local) {
                return Some(task);
            }
        }
        if let Some(task) = self.local.lifo.take() {
            return Some(task);
        }
        self.local
            .local
            .pop()
            .or_else(|| self.shared().injector.pop_batch_into(&self.local.local))
    }

    /// Whether to requeue this worker's yielded tasks rather than steal: yes
    /// if there are any, except every `STEAL_EVERY_DEFERRED_ROUNDS`th time.
    /// The injector was already looked at (`next_task` falls back to it),
    /// so tasks from outside still run before the yielded ones.
    fn skip_steal_for_deferred(&mut self) -> bool {
        if self.local.deferred.borrow().is_empty() {
            return false;
        }
        self.deferred_rounds = self.deferred_rounds.wrapping_add(1);
        !self
            .deferred_rounds
            .is_multiple_of(STEAL_EVERY_DEFERRED_ROUNDS)
    }

    /// The queue ran dry: polls the driver, then moves yielded tasks back
    /// to the queue behind whatever I/O it found (tokio's "defer until
    /// park": a task yielding in a loop sees pending I/O before it runs
    /// again). Returns whether there were yielded tasks.
    fn requeue_deferred_after_poll(&mut self) -> bool {
        if self.local.deferred.borrow().is_empty() {
            return false;
        }
        self.poll_driver();
        self.requeue_deferred()
    }

    /// Moves yielded tasks back to the queue, in the order they yielded.
    /// Returns whether there were any.
    fn requeue_deferred(&mut self) -> bool {
        let mut deferred = self.local.deferred.borrow_mut();
        if deferred.is_empty() {
            return false;
        }
        let more_than_one = deferred.len() > 1;
        for task in deferred.drain(..) {
            self.local.local.push(task);
        }
        drop(deferred);
        if more_than_one {
            // More than this worker is about to run: a parked sibling may
            // steal some (one load when nobody sleeps or someone searches).
            self.shared().notify_parked();
        }
        true
    }

    fn steal_work(&mut self) -> Option<Task> {
        if !self.is_searching {
            if !self.shared().census.transition_to_searching() {
                return None;
            }
            self.is_searching = true;
        }
        let n = self.shared().remotes.len();
        // xorshift64: a cheap, per-worker random victim order.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let start = (self.rng % n as u64) as usize;
        for i in 0..n {
            let victim = (start + i) % n;
            if victim == self.local.index {
                continue;
            }
            if let Some(task) = self.shared().remotes[victim]
                .stealer
                .steal_batch_into(&self.local.local)
            {
                self.shared().remotes[self.local.index]
                    .stats
                    .steals
                    .add_owned(1);
                return Some(task);
            }
        }
        self.shared().injector.pop_batch_into(&self.local.local)
    }

    /// Polls `task`, then whatever it put in the LIFO slot, up to the cap.
    fn run_task(&mut self, mut task: Task) {
        if self.is_searching {
            self.is_searching = false;
            if self.shared().census.transition_from_searching() {
                self.shared().notify_parked();
            }
        }
        let mut lifo_polls = 0;
        loop {
            self.poll_one(task);
            let Some(next) = self.local.lifo.take() else {
                return;
            };
            if lifo_polls >= MAX_LIFO_POLLS || self.shared().census.flags().phase() == STOPPED {
                self.local.local.push(next);
                return;
            }
            lifo_polls += 1;
            task = next;
        }
    }

    fn poll_one(&self, task: Task) {
        // A borrow, not an `Arc` clone: a refcount bumped on every poll by
        // every worker would be the shared hot cache line this scheduler is
        // built to avoid.
        let shared = &*self.local.shared;
        let remote = &shared.remotes[self.local.index];
        remote.stats.polls.add_owned(1);
        let meta = task.metadata();
        let id = meta.id;
        // Published on every poll (stores to this worker's own line), so a
        // timed-out stop can name a poll that began before the request.
        remote.stats.begin_poll(id, meta.location);
        // One load per poll, phase and generation together (protocol point
        // 13): the laggard log runs only during a stop.
        let snapshot = shared.census.flags().snapshot_relaxed();
        let logged = snapshot.phase != RUNNING;
        if logged {
            remote
                .laggards
                .lock()
                .begin(snapshot.generation, id, || task.metadata().info());
        }
        let prev = context::set_current_task(Some(id));
        self.local.polling.set(true);
        let still_runnable = task.run();
        self.local.polling.set(false);
        context::set_current_task(prev);
        remote.stats.end_poll();
        if logged {
            remote.laggards.lock().end(id, still_runnable);
        } else if !still_runnable {
            // A poll that began before a request and blocked during it is
            // what the stop waited for: keep its name for the slowest
            // stops' metrics (protocol point 6). One load when no stop.
            let now = shared.census.flags().snapshot_relaxed();
            if now.phase != RUNNING {
                if let Some(info) = shared.registry.info(id) {
                    remote
                        .laggards
                        .lock()
                        .arrive_after_older_poll(now.generation, info);
                }
            }
        }
    }

    fn poll_driver(&mut self) {
        {
            let Some(driver) = &self.local.shared.driver else {
                return;
            };
            // Someone else is turning it: they get the events.
            let Some(mut driver) = driver.try_lock() else {
                return;
            };
            self.local.in_driver.set(true);
            driver.turn(Some(Duration::ZERO));
            self.local.in_driver.set(false);
        }
        if self.local.local.len() > 1 {
            self.shared().notify_parked();
        }
    }

    fn park(&mut self) {
        // Anything left in the LIFO slot goes back to the queue first.
        if let Some(task) = self.local.lifo.take() {
            self.local.local.push(task);
            return;
        }
        if !self.local.local.is_empty() || self.requeue_deferred() {
            return;
        }
        let shared = self.local.shared.clone();
        let index = self.local.index;
        // Before the census sees this worker parked, so whoever learns that
        // (`run_until_blocked`, a stop) finds the park hook already run.
        let _hooks = shared.config.hooks.parked();
        let (parked, wakes) =
            shared
                .census
                .transition_worker_to_parked(index, self.is_searching, || {
                    shared.has_visible_work()
                });
        self.is_searching = false;
        if let Parked::Work = parked {
            self.is_searching = true;
            return;
        }
        shared.remotes[index].stats.parks.add_owned(1);
        shared.deliver(wakes);
        // Listed as a sleeper first, then the yield: a stop or a
        // quiescence wait that this park completes is declared above, and
        // never waits for the yield to return.
        if self.should_yield_before_park() {
            yield_before_park();
        }
        let remote = &shared.remotes[index];
        while shared.census.is_listed(index) && !shared.is_shutdown() {
            match try_turn(&shared) {
                Some(mut turn) => {
                    self.local.in_driver.set(true);
                    remote.parker.park(Some(&mut turn));
                    self.local.in_driver.set(false);
                    drop(turn);
                    if !self.local.local.is_empty() && self.claim_after_turn() {
                        return;
                    }
                }
                None => remote.parker.park(None),
            }
        }
        // Woken: the waker counted us unparked and searching.
        self.is_searching = !shared.is_shutdown();
    }

    /// Whether this worker, just listed as a sleeper, gives the core away
    /// once before it blocks (see `yield_before_park`):
    /// - not while the world is stopping or stopped: no work comes before
    ///   the resume;
    /// - not while as many of this runtime's workers are awake as the
    ///   process has cores: the thread the yield hands the core to would
    ///   then most likely be a sibling worker, not a client about to send
    ///   work. With the server's two workers pinned to one core and wrk to
    ///   the other, yielding anyway cost up to 10 % of the requests per
    ///   second.
    ///
    /// Both loads are Relaxed hints: a stale value costs or saves one
    /// `sched_yield`, and decides nothing else.
    fn should_yield_before_park(&self) -> bool {
        let census = &self.local.shared.census;
        census.flags().snapshot_relaxed().phase == RUNNING
            && census.unparked_workers() < self.local.shared.cores
    }

    /// The driver woke tasks into this parked worker's queue. Takes itself
    /// off the sleepers to run them (returns true), unless the world stopped
    /// meanwhile: then they are wakes from outside that raced the stop, and
    /// they wait in the injector for the resume like any other (moved there
    /// under the census lock: protocol point 12).
    fn claim_after_turn(&mut self) -> bool {
        let shared = self.local.shared.clone();
        let local = &self.local.local;
        let claimed = shared.census.transition_worker_from_turn(
            self.local.index,
            || local.pop(),
            |task| shared.injector.push(task),
        );
        match claimed {
            FromTurn::Stopped => false,
            FromTurn::AlreadyWoken => {
                // Someone unparked us meanwhile and counted us searching.
                self.is_searching = true;
                true
            }
            FromTurn::Claimed => {
                self.is_searching = false;
                if self.local.local.len() > 1 {
                    shared.notify_parked();
                }
                true
            }
        }
    }

    /// At shutdown: drops what is left in this worker's queues, on this
    /// thread, inside the runtime context, so destructors that touch the
    /// runtime (deregistering I/O, say) work.
    fn drain(&mut self) {
        drop(self.local.lifo.take());
        self.local.deferred.borrow_mut().clear();
        while let Some(task) = self.local.local.pop() {
            drop(task);
        }
    }
}

/// Hands the core to another runnable thread, if there is one, before a
/// worker with nothing to do goes to sleep.
///
/// When the cores are shared (a load generator, a client, another
/// process), the thread this yields to is often the one about to give the
/// runtime its next piece of work: wrk writing the next request, say. If it
/// does so while this worker waits its turn, the worker finds the work (a
/// wake that finds it listed and only sets its parker's flag, or an
/// `epoll_wait` that returns at once) instead of sleeping and being woken
/// for it: two context switches and a cross-core wake-up saved. Without
/// it, the worker blocked in the driver was woken by each request wrk
/// wrote, served that one, and blocked again, in lock-step; with the hyper
/// server at 4 workers and 50 connections and wrk on the same two cores,
/// the yield was worth 10-19 % more requests per second and a p99 of
/// 1.4-2.0 ms against 2.0-2.1 ms (`benches/http`).
///
/// Where nothing else is runnable on the core, `sched_yield` returns at
/// once: the cost is one system call per park. Tokio's parker once yielded
/// before parking too (tokio issue #5010 measured a hyper server under wrk
/// 25 % faster with the yields than without); tokio 1.54 does not.
///
/// Loom: a hint to the OS that changes no state a model checks, so it is
/// left out of the models rather than adding a scheduling point to each.
fn yield_before_park() {
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// The driver, for a parked worker to block in, unless another worker has
/// it.
#[cfg(not(loom))]
fn try_turn(shared: &Shared) -> Option<DriverTurn<'_>> {
    shared.driver.as_ref()?.try_lock().map(DriverTurn)
}

#[cfg(not(loom))]
struct DriverTurn<'a>(crate::sync::MutexGuard<'a, safepoint_io::driver::Driver>);

#[cfg(not(loom))]
impl Turn for DriverTurn<'_> {
    fn turn(&mut self) {
        self.0.turn(None);
    }
}

/// Under loom, the models' reactor stands in for the driver (see
/// `loom_reactor`), taken and turned the same way.
#[cfg(loom)]
fn try_turn(shared: &Shared) -> Option<super::loom_reactor::Taken<'_>> {
    shared.reactor.try_take()
}

#[cfg(loom)]
impl Turn for super::loom_reactor::Taken<'_> {
    fn turn(&mut self) {
        super::loom_reactor::Taken::turn(self);
    }
}

/// Spawns the worker threads.
pub(crate) fn spawn_workers(
    shared: &Arc<Shared>,
    locals: Vec<Local<Task>>,
) -> std::io::Result<Vec<crate::sync::thread::JoinHandle<()>>> {
    let mut handles = Vec::with_capacity(locals.len());
    for (index, local) in locals.into_iter().enumerate() {
        let shared = shared.clone();
        #[cfg(not(loom))]
        {
            let mut b =
                std::thread::Builder::new().name(format!("{}-{index}", shared.config.thread_name));
            if let Some(size) = shared.config.thread_stack_size {
                b = b.stack_size(size);
            }
            handles.push(b.spawn(move || run(shared, index, local))?);
        }
        #[cfg(loom)]
        handles.push(crate::sync::thread::spawn(move || {
            run(shared, index, local)
        }));
    }
    Ok(handles)
}
