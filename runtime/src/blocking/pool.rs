//! The blocking pool: threads apart from the workers for code that blocks.
//!
//! Elastic: a job starts at once on an idle thread, or on a new one while
//! there are fewer than `max_blocking_threads`; beyond that jobs queue.
//! A thread idle for `thread_keep_alive` exits. Jobs are async-task cells
//! (so `spawn_blocking` returns the same `JoinHandle` as `spawn`, abort
//! included: a job aborted before it starts never runs), but they are not
//! scheduler tasks: they never count toward a stop or quiescence, exactly
//! like a task waiting on I/O. A job that wakes a task (by finishing, say)
//! is an outside wake: during a stop it is kept for the resume.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::scheduler::{Config, Task};
use crate::sync::{wait_for, Condvar, Mutex};

pub(crate) struct BlockingPool {
    state: Mutex<State>,
    /// Signals idle threads that a job (or shutdown) arrived.
    job_ready: Condvar,
    /// Signals shutdown that the last thread exited.
    all_exited: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    thread_name: String,
    /// Interrupted after every job (the deterministic flavour's runner may
    /// be waiting in the driver for the job to finish).
    interrupt_on_job_done: Option<safepoint_io::driver::Handle>,
    hooks: crate::hooks::Hooks,
}

struct State {
    queue: VecDeque<Task>,
    threads: usize,
    idle: usize,
    /// Jobs being run right now.
    running: usize,
    /// Wake-ups handed to idle threads and not yet taken: keeps two jobs
    /// from being promised to the same idle thread.
    notified: usize,
    shutdown: bool,
    next_thread_id: usize,
}

impl BlockingPool {
    pub(crate) fn new(
        config: &Config,
        interrupt_on_job_done: Option<safepoint_io::driver::Handle>,
    ) -> BlockingPool {
        BlockingPool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                running: 0,
                notified: 0,
                shutdown: false,
                next_thread_id: 0,
            }),
            job_ready: Condvar::new(),
            all_exited: Condvar::new(),
            max_threads: config.max_blocking_threads,
            keep_alive: config.thread_keep_alive,
            thread_name: format!("{}-blocking", config.thread_name),
            interrupt_on_job_done,
            hooks: config.hooks.clone(),
        }
    }

    /// Queues a job; starts a thread for it if none is idle.
    pub(crate) fn schedule(
        &self,
        task: Task,
        spawn_thread: impl FnOnce(usize) -> std::io::Result<()>,
    ) {
        let mut state = self.state.lock();
        if state.shutdown {
            // Dropping the runnable cancels the job: its handle reports
            // cancellation instead of hanging.
            drop(state);
            drop(task);
            return;
        }
        state.queue.push_back(task);
        if state.idle > state.notified {
            state.notified += 1;
            drop(state);
            self.job_ready.notify_one();
        } else if state.threads < self.max_threads {
            state.threads += 1;
            let id = state.next_thread_id;
            state.next_thread_id += 1;
            drop(state);
            if spawn_thread(id).is_err() {
                // Could not start a thread: keep the job queued for a
                // running thread if there is one; otherwise run it here
                // rather than lose it.
                let mut state = self.state.lock();
                state.threads -= 1;
                if state.threads == 0 {
                    let job = state.queue.pop_back();
                    drop(state);
                    if let Some(job) = job {
                        job.run();
                    }
                }
            }
        }
    }

    pub(crate) fn thread_name(&self) -> &str {
        &self.thread_name
    }

    /// The body of a pool thread.
    pub(crate) fn run_thread(&self) {
        let thread = self.hooks.enter_thread();
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                state.running += 1;
                drop(state);
                job.run();
                state = self.state.lock();
                state.running -= 1;
                if let Some(io) = &self.interrupt_on_job_done {
                    // After the count dropped: a runner that saw the job
                    // running is waiting in the driver, or will see it done.
                    io.unpark();
                }
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let deadline = Instant::now() + self.keep_alive;
            let mut timed_out = false;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    timed_out = true;
                    break;
                }
                wait_for(&self.job_ready, &mut state, deadline - now);
                if state.notified > 0 {
                    state.notified -= 1;
                    break;
                }
                if state.shutdown {
                    break;
                }
            }
            state.idle -= 1;
            if timed_out && state.queue.is_empty() && !state.shutdown {
                break;
            }
        }
        // The stop hook runs before the thread counts as exited, so a
        // shutdown that waited for the pool has seen every stop hook.
        drop(state);
        drop(thread);
        let mut state = self.state.lock();
        state.threads -= 1;
        if state.threads == 0 {
            self.all_exited.notify_all();
        }
    }

    /// Stops taking jobs, drops queued ones, and waits up to `timeout` for
    /// running ones to finish. Returns whether every thread exited.
    pub(crate) fn shutdown(&self, timeout: Option<Duration>) -> bool {
        let queued: Vec<Task> = {
            let mut state = self.state.lock();
            state.shutdown = true;
            state.queue.drain(..).collect()
        };
        self.job_ready.notify_all();
        drop(queued);
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.state.lock();
        while state.threads > 0 {
            match deadline {
                None => crate::sync::wait(&self.all_exited, &mut state),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    wait_for(&self.all_exited, &mut state, deadline - now);
                }
            }
        }
        true
    }

    /// Jobs queued or running.
    pub(crate) fn busy(&self) -> usize {
        let s = self.state.lock();
        s.running + s.queue.len()
    }

    /// (threads, idle threads, queued jobs).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let s = self.state.lock();
        (s.threads, s.idle, s.queue.len())
    }
}

/// Starts a pool thread running `body`.
pub(crate) fn spawn_thread(
    name: String,
    stack_size: Option<usize>,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    #[cfg(not(loom))]
    {
        let mut b = std::thread::Builder::new().name(name);
        if let Some(size) = stack_size {
            b = b.stack_size(size);
        }
        b.spawn(body).map(drop)
    }
    #[cfg(loom)]
    {
        let _ = (name, stack_size);
        crate::sync::thread::spawn(body);
        Ok(())
    }
}
