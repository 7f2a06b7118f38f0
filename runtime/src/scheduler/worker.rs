//! A worker thread: its run loop, its queues, and how it parks.
//!
//! The loop is tokio's multi-thread loop in miniature: take the LIFO slot
//! (capped, so two tasks waking each other cannot starve the queue), then
//! the local queue, every `global_queue_interval` ticks the injector first
//! for fairness, then steal from a random victim in batches, then park. A
//! busy worker polls the driver without blocking every `event_interval`
//! ticks so a CPU-heavy queue never starves I/O.
//!
//! The safepoint protocol adds little here, by design: while a stop is
//! requested the worker keeps draining as usual and notes what it polls
//! (laggard log); it *arrives* by parking, and the census declares the stop
//! when the last one parks. While the world is stopped a worker runs only
//! the requester (from the barrier's slot) and otherwise stays parked.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::idle::Parked;
use super::park::Turn;
use super::shared::{Shared, Task};
use crate::context;
use crate::safepoint::barrier::{RUNNING, STOPPED};
use crate::sync::queue::Local;
use crate::sync::{Arc, Ordering};

/// Consecutive LIFO polls before the LIFO task goes to the back of the
/// queue (tokio uses 3).
const MAX_LIFO_POLLS: u32 = 3;

/// The part of a worker that the wake path reaches through the
/// thread-local context while a task on this worker is being polled.
pub(crate) struct WorkerLocal {
    shared: Arc<Shared>,
    index: usize,
    local: Local<Task>,
    lifo: Cell<Option<Task>>,
    /// True only while a task is being polled here: only such wakes are
    /// "woken by the running task" and may use the local queue. Wakes from
    /// the driver or from a parking path go through the injector.
    polling: Cell<bool>,
}

impl WorkerLocal {
    pub(crate) fn belongs_to(&self, shared: &Shared) -> bool {
        std::ptr::eq(&*self.shared, shared)
    }

    /// Counts a spawn made from a task on this worker.
    pub(crate) fn count_spawn(&self) {
        self.shared.remotes[self.index].spawned.add_owned(1);
    }

    /// Schedules a task woken from inside a poll on this worker. Gives the
    /// task back if this is not such a wake.
    pub(crate) fn schedule_local(&self, task: Task, yielded: bool) -> Result<(), Task> {
        if !self.polling.get() {
            return Err(task);
        }
        if yielded {
            self.local.push(task);
        } else {
            match self.lifo.replace(Some(task)) {
                None => return Ok(()),
                Some(prev) => self.local.push(prev),
            }
        }
        // Work beyond what this worker is about to run: let an idle worker
        // steal it.
        self.shared.notify_parked();
        Ok(())
    }
}

pub(crate) struct Worker {
    local: std::rc::Rc<WorkerLocal>,
    tick: u32,
    is_searching: bool,
    rng: u64,
}

/// Runs worker `index` until shutdown.
pub(crate) fn run(shared: Arc<Shared>, index: usize, local: Local<Task>) {
    let handle = crate::Handle::from_shared(shared.clone());
    let _enter = context::enter(&handle);
    let local = std::rc::Rc::new(WorkerLocal {
        shared: shared.clone(),
        index,
        local,
        lifo: Cell::new(None),
        polling: Cell::new(false),
    });
    let _worker = context::enter_worker(local.clone());
    let mut worker = Worker {
        local,
        tick: 0,
        is_searching: false,
        rng: 0x2545_F491_4F6C_DD1D ^ ((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    };
    worker.run_loop();
    worker.drain();
    let wakes = {
        let mut inner = shared.idle.lock();
        if shared
            .idle
            .transition_to_exited(&inner, worker.is_searching)
        {
            inner.barrier.on_all_idle(&shared.flags, Instant::now())
        } else {
            crate::safepoint::barrier::Wakes::default()
        }
    };
    wakes.wake();
}

impl Worker {
    fn shared(&self) -> &Arc<Shared> {
        &self.local.shared
    }

    fn run_loop(&mut self) {
        while !self.shared().is_shutdown() {
            if self.shared().flags.phase() == STOPPED {
                match self.shared().take_requester_runnable() {
                    Some(task) => self.run_task(task),
                    None => self.park(),
                }
                continue;
            }
            if let Some(task) = self.next_task() {
                self.run_task(task);
                continue;
            }
            if let Some(task) = self.steal_work() {
                self.run_task(task);
                continue;
            }
            self.park();
        }
    }

    fn next_task(&mut self) -> Option<Task> {
        self.tick = self.tick.wrapping_add(1);
        let (event_interval, global_queue_interval) = {
            let config = &self.local.shared.config;
            (config.event_interval, config.global_queue_interval)
        };
        if self.tick.is_multiple_of(event_interval) {
            self.poll_driver();
        }
        if self.tick.is_multiple_of(global_queue_interval) {
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

    fn steal_work(&mut self) -> Option<Task> {
        if !self.is_searching {
            if !self.shared().idle.transition_to_searching() {
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
                self.shared().remotes[self.local.index].steals.add_owned(1);
                return Some(task);
            }
        }
        self.shared().injector.pop_batch_into(&self.local.local)
    }

    /// Polls `task`, then whatever it put in the LIFO slot, up to the cap.
    fn run_task(&mut self, mut task: Task) {
        if self.is_searching {
            self.is_searching = false;
            if self.shared().idle.transition_from_searching() {
                self.shared().notify_parked();
            }
        }
        let mut lifo_polls = 0;
        loop {
            self.poll_one(task);
            let Some(next) = self.local.lifo.take() else {
                return;
            };
            if lifo_polls >= MAX_LIFO_POLLS || self.shared().flags.phase() == STOPPED {
                self.local.local.push(next);
                return;
            }
            lifo_polls += 1;
            task = next;
        }
    }

    fn poll_one(&mut self, task: Task) {
        let shared = self.local.shared.clone();
        let remote = &shared.remotes[self.local.index];
        remote.polls.add_owned(1);
        let id = task.metadata().id;
        // One load per poll: the laggard log runs only during a stop.
        let stop_generation = if shared.flags.phase.load(Ordering::Relaxed) != RUNNING {
            let generation = shared.flags.generation.load(Ordering::Relaxed);
            remote
                .laggards
                .lock()
                .begin(generation, id, || task.metadata().info());
            Some(generation)
        } else {
            None
        };
        let prev = context::set_current_task(Some(id));
        self.local.polling.set(true);
        let still_runnable = task.run();
        self.local.polling.set(false);
        context::set_current_task(prev);
        if stop_generation.is_some() {
            remote.laggards.lock().end(id, still_runnable);
        }
    }

    fn poll_driver(&mut self) {
        let Some(driver) = &self.local.shared.driver else {
            return;
        };
        if let Some(mut driver) = driver.try_lock() {
            driver.turn(Some(Duration::ZERO));
        }
    }

    fn park(&mut self) {
        // Anything left in the LIFO slot goes back to the queue first.
        if let Some(task) = self.local.lifo.take() {
            self.local.local.push(task);
            return;
        }
        if !self.local.local.is_empty() {
            return;
        }
        let shared = self.local.shared.clone();
        let index = self.local.index;
        let (parked, wakes) = shared.transition_worker_to_parked(index, self.is_searching);
        self.is_searching = false;
        if let Parked::Work = parked {
            self.is_searching = true;
            return;
        }
        shared.remotes[index].parks.add_owned(1);
        wakes.wake();
        let remote = &shared.remotes[index];
        while remote.parked.load(Ordering::Acquire) && !shared.is_shutdown() {
            match shared.driver.as_ref().and_then(|d| d.try_lock()) {
                Some(mut driver) => remote.parker.park(Some(&mut DriverTurn(&mut driver))),
                None => remote.parker.park(None),
            }
        }
        // Woken: the waker counted us unparked and searching.
        self.is_searching = !shared.is_shutdown();
    }

    /// At shutdown: drops what is left in this worker's queues, on this
    /// thread, inside the runtime context, so destructors that touch the
    /// runtime (deregistering I/O, say) work.
    fn drain(&mut self) {
        drop(self.local.lifo.take());
        while let Some(task) = self.local.local.pop() {
            drop(task);
        }
    }
}

struct DriverTurn<'a>(&'a mut safepoint_io::driver::Driver);

impl Turn for DriverTurn<'_> {
    fn turn(&mut self) {
        self.0.turn(None);
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
