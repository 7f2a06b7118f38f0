//! The checkpoint controller: one task that takes every checkpoint, periodically
//! and on request (SAVE, shutdown).
//!
//! A checkpoint opens `dump.tmp`, stops the world, captures the store
//! (O(shards), see [`Store::capture`]), resumes the world, makes the file
//! the capture's output at once (so what commands hand over goes straight
//! to it), and only then serialises and writes the rest of the capture on
//! the blocking pool. Because every connection task calls
//! `safepoint().await` only between commands, the stopped world holds no
//! half-applied command: the capture is a consistent cut of acknowledged and
//! in-flight-but-whole commands.
//!
//! With the append-only log on, the stop is also the log's cut: a new log
//! generation starts there, the snapshot records it, and once the snapshot
//! is on disk the older generations are deleted (see [`crate::kv::aof`]).
//!
//! Why it is shaped so: one task owns the stop, so checkpoints never overlap and
//! requests that arrive while one is being taken share the next one; the pause
//! clients feel is only the time to stop plus the clone, never the disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either};
use futures::StreamExt;

use crate::kv::snapshot::{self, Written};
use crate::kv::stats::{CheckpointRecord, CheckpointStats};
use crate::kv::store::{now_ms, Store};

/// A stop slower than this logs what it waited for.
const SLOW_STOP: Duration = Duration::from_millis(1);

/// What a checkpoint produced, or why it failed.
pub type Outcome = Result<Written, String>;

/// Asks the controller for checkpoints. Cheap to clone.
#[derive(Clone)]
pub struct Checkpointer {
    requests: mpsc::UnboundedSender<oneshot::Sender<Outcome>>,
}

impl Checkpointer {
    /// Starts the controller task on the current runtime. Without a log on
    /// `store`, snapshots record `log_gen` (so log files left from a run with
    /// the log on are known to be older than them).
    pub fn start(
        store: Arc<Store>,
        stats: Arc<CheckpointStats>,
        dir: PathBuf,
        every: Option<Duration>,
        log_gen: u64,
    ) -> Checkpointer {
        let (requests, inbox) = mpsc::unbounded();
        let controller = Controller {
            store,
            stats,
            dir,
            taken: AtomicU64::new(0),
            handle: safepoint::Handle::current(),
            log_gen,
        };
        safepoint::spawn(controller.run(inbox, every));
        Checkpointer { requests }
    }

    /// Takes a checkpoint (or joins the one about to start) and waits until it
    /// is on disk.
    pub async fn save(&self) -> Outcome {
        let (done, outcome) = oneshot::channel();
        self.requests
            .unbounded_send(done)
            .map_err(|_| "the checkpoint controller has stopped".to_string())?;
        outcome
            .await
            .unwrap_or_else(|_| Err("the checkpoint controller has stopped".to_string()))
    }
}

struct Controller {
    store: Arc<Store>,
    stats: Arc<CheckpointStats>,
    dir: PathBuf,
    taken: AtomicU64,
    handle: safepoint::Handle,
    log_gen: u64,
}

impl Controller {
    async fn run(
        self,
        mut inbox: mpsc::UnboundedReceiver<oneshot::Sender<Outcome>>,
        every: Option<Duration>,
    ) {
        let mut next_tick = every.map(|d| Instant::now() + d);
        loop {
            let tick = async {
                match next_tick {
                    Some(at) => {
                        safepoint::time::sleep(at.saturating_duration_since(Instant::now())).await
                    }
                    None => future::pending::<()>().await,
                }
            };
            let mut waiters = Vec::new();
            match future::select(std::pin::pin!(tick), inbox.next()).await {
                Either::Left(((), _)) => {}
                Either::Right((Some(waiter), _)) => waiters.push(waiter),
                // Every Checkpointer is gone: the server is shutting down.
                Either::Right((None, _)) => return,
            }
            while let Ok(waiter) = inbox.try_recv() {
                waiters.push(waiter);
            }
            let outcome = self.checkpoint().await;
            for waiter in waiters {
                let _ = waiter.send(outcome.clone());
            }
            if let (Some(at), Some(every)) = (next_tick.as_mut(), every) {
                // Fixed rate; a checkpoint that overran skips the missed ticks.
                *at = (*at + every).max(Instant::now());
            }
        }
    }

    async fn checkpoint(&self) -> Outcome {
        // The file is opened before the stop (its I/O off the workers), so
        // that it can take the capture's hand-overs as soon as the world
        // resumes (see below).
        let dir = self.dir.clone();
        let file = match safepoint::spawn_blocking(move || snapshot::create(&dir)).await {
            Ok(Ok(file)) => file,
            Ok(Err(e)) => return self.failed(self.next_number(), e.to_string()),
            Err(e) => {
                return self.failed(self.next_number(), format!("snapshot writer failed: {e}"))
            }
        };
        let requested = Instant::now();
        let world = self.handle.stop_the_world().await;
        let time_to_stop = world.report().time_to_stop;
        let capture_started = Instant::now();
        let saved_at_ms = now_ms();
        let capture = self.store.capture(saved_at_ms);
        let log_gen = self.store.log().map_or(self.log_gen, |log| log.cut());
        let stopped = capture_started.elapsed();
        // The pause is request to release. `resume` then queues the held
        // tasks, all of them before it wakes any worker; the worker it wakes
        // often preempts this thread on a loaded machine and runs them, so
        // the time until `resume` returns is not pause, and is logged apart.
        let pause = requested.elapsed();
        let resume_started = Instant::now();
        world.resume();
        let resume = resume_started.elapsed();
        self.stats.record_pause(time_to_stop, pause);
        if time_to_stop > SLOW_STOP {
            self.log_slow_stop(time_to_stop);
        }

        let write_started = Instant::now();
        // Here, on this task, not on the writer thread: from now on the
        // commands hand the buckets they change straight to the file's
        // buffer. Until then each shard keeps them, and the niced writer
        // thread can wait tens of milliseconds for a core on a busy machine
        // while a saturating SET load hands over most of the key space.
        let started = file.start(capture);
        let written = safepoint::spawn_blocking(move || {
            // The write takes a core for a second or more at millions of
            // keys; at a low priority it mostly yields to the workers instead of
            // preempting them, which on a small machine is what stretches
            // the next stop.
            let _background = BackgroundPriority::enter();
            started?.finish(log_gen)
        })
        .await;
        let write = write_started.elapsed();
        let n = self.next_number();
        match written {
            Ok(Ok(written)) => {
                if let Some(log) = self.store.log() {
                    log.snapshot_durable(log_gen);
                }
                self.stats.record_success(CheckpointRecord {
                    keys: written.keys,
                    time_to_stop,
                    pause,
                    write,
                    saved_at_ms,
                });
                println!(
                    "checkpoint {n}: {} keys, {} bytes; time to stop {} µs, stopped {} µs (capture), pause {} µs, resume call {} µs, write {} µs",
                    written.keys,
                    written.bytes,
                    time_to_stop.as_micros(),
                    stopped.as_micros(),
                    pause.as_micros(),
                    resume.as_micros(),
                    write.as_micros(),
                );
                Ok(written)
            }
            Ok(Err(e)) => self.failed(n, e.to_string()),
            Err(e) => self.failed(n, format!("snapshot writer failed: {e}")),
        }
    }

    /// Logs what a slow stop waited for, from the runtime's metrics: the
    /// last tasks to block before it completed. None named means no task
    /// was running late: a worker waited for a core (the OS's scheduling),
    /// not for a command.
    fn log_slow_stop(&self, time_to_stop: Duration) {
        let metrics = self.handle.metrics();
        let Some(slow) = metrics
            .slowest_stops
            .iter()
            .find(|s| s.time_to_stop == time_to_stop)
        else {
            return;
        };
        let waited: Vec<String> = slow
            .last_to_block
            .iter()
            .map(|a| {
                format!(
                    "task {} at {} (ran {} µs, {} polls)",
                    a.id,
                    a.location,
                    a.runnable_for.as_micros(),
                    a.polls
                )
            })
            .collect();
        println!(
            "slow stop: {} µs; the last tasks to block: {}",
            time_to_stop.as_micros(),
            if waited.is_empty() {
                "none (no task ran late: the stop waited for a worker to get a core and park)"
                    .to_owned()
            } else {
                waited.join(", ")
            }
        );
    }

    /// The number of the checkpoint just tried (from 1).
    fn next_number(&self) -> u64 {
        self.taken.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn failed(&self, n: u64, message: String) -> Outcome {
        eprintln!("checkpoint {n} failed: {message}");
        self.stats.record_failure(message.clone());
        Err(message)
    }
}

/// Lowers the calling thread's scheduling priority (nice 10) until dropped.
/// Linux applies `setpriority(PRIO_PROCESS, tid)` to one thread; elsewhere
/// this does nothing.
struct BackgroundPriority {
    #[cfg(target_os = "linux")]
    previous: Option<libc::c_int>,
}

impl BackgroundPriority {
    fn enter() -> BackgroundPriority {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: gettid/getpriority/setpriority take plain integers and
            // touch no memory of ours; errors are reported through errno and
            // the return value, which we check.
            let previous = unsafe {
                let tid = libc::gettid() as libc::id_t;
                *libc::__errno_location() = 0;
                let old = libc::getpriority(libc::PRIO_PROCESS, tid);
                let ok_old = old != -1 || *libc::__errno_location() == 0;
                (ok_old && libc::setpriority(libc::PRIO_PROCESS, tid, 10) == 0).then_some(old)
            };
            BackgroundPriority { previous }
        }
        #[cfg(not(target_os = "linux"))]
        BackgroundPriority {}
    }
}

impl Drop for BackgroundPriority {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(old) = self.previous {
            // SAFETY: as in `enter`. Raising priority back may be refused
            // without CAP_SYS_NICE; the pool thread then stays niced, which
            // only affects later blocking jobs' priority, not correctness.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, old);
            }
        }
    }
}
