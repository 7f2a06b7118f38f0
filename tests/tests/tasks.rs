//! Tasks: join results, abort of a queued, a blocked and a running task,
//! panic propagation (and a panicking task never takes a worker down),
//! misuse that must panic with a clear message (block_on / blocking stop /
//! run_until_blocked on a worker, spawn outside a runtime), the blocking
//! pool (separate threads, 100 concurrent jobs, keep-alive), and the
//! task::Builder name and spawn location.

use std::collections::HashSet;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use safepoint::{Builder, Handle};
use safepoint_tests::{panic_message, rt, thread_names, wait_until, watchdog, DropFlag};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn join_results_and_ids() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let a = rt.spawn(async { 1u32 });
        let b = rt.spawn(async { "two" });
        assert_ne!(a.id(), b.id());
        let b_id = b.id();
        assert_eq!(rt.block_on(a).unwrap(), 1);
        assert_eq!(rt.block_on(b).unwrap(), "two");
        let h = rt.spawn(async { safepoint::task::id() });
        let id = h.id();
        assert_eq!(rt.block_on(h).unwrap(), Some(id));
        assert_ne!(id, b_id);
        assert_eq!(safepoint::task::id(), None);
        // Nested: a task awaiting a task it spawned.
        let out = rt.block_on(rt.spawn(async {
            let inner = safepoint::spawn(async { 40 });
            inner.await.unwrap() + 2
        }));
        assert_eq!(out.unwrap(), 42);
    });
}

/// A future that records whether it was ever polled and drops a flag.
struct Probe {
    polled: Arc<AtomicBool>,
    _drop: safepoint_tests::DropGuard,
}

impl Future for Probe {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        self.polled.store(true, SeqCst);
        Poll::Pending
    }
}

#[test]
fn abort_queued_task() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        // Occupy the only worker so that the next task stays queued.
        let release = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let (r, s) = (release.clone(), started.clone());
        let blocker = rt.spawn(async move {
            s.store(true, SeqCst);
            wait_until(Duration::from_secs(30), || r.load(SeqCst));
        });
        assert!(wait_until(Duration::from_secs(10), || started.load(SeqCst)));
        let polled = Arc::new(AtomicBool::new(false));
        let dropped = DropFlag::new();
        let queued = rt.spawn(Probe {
            polled: polled.clone(),
            _drop: dropped.guard(),
        });
        queued.abort();
        assert!(queued.is_finished(), "an aborted handle reports finished");
        release.store(true, SeqCst);
        rt.block_on(blocker).unwrap();
        let err = rt.block_on(queued).unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert!(!err.is_panic());
        assert!(
            !polled.load(SeqCst),
            "an aborted queued task must never be polled"
        );
        assert!(
            wait_until(Duration::from_secs(10), || dropped.is_dropped()),
            "the aborted task's future was not dropped"
        );
    });
}

#[test]
fn abort_blocked_task() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let dropped = DropFlag::new();
        let guard = dropped.guard();
        let waiting = Arc::new(AtomicBool::new(false));
        let w = waiting.clone();
        let h = rt.spawn(async move {
            let _guard = guard;
            w.store(true, SeqCst);
            let _ = rx.await;
            unreachable!("the sender is never used");
        });
        assert!(wait_until(Duration::from_secs(10), || waiting.load(SeqCst)));
        rt.run_until_blocked();
        assert!(!dropped.is_dropped());
        h.abort();
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert!(wait_until(Duration::from_secs(10), || dropped.is_dropped()));
        // The receiver went with the future.
        assert!(tx.is_canceled());
    });
}

/// A future whose first poll blocks until told the abort happened, then
/// marks that the poll is returning.
struct LongPoll {
    started: Arc<AtomicBool>,
    aborted: Arc<AtomicBool>,
    returning: Arc<AtomicBool>,
    dropped_after_return: Arc<AtomicUsize>,
}

impl Future for LongPoll {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.started.store(true, SeqCst);
        assert!(wait_until(Duration::from_secs(30), || self
            .aborted
            .load(SeqCst)));
        // Stay in the poll a little after the abort.
        std::thread::sleep(Duration::from_millis(50));
        self.returning.store(true, SeqCst);
        // Ask to be polled again: the abort must win over the wake.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        // 1 = dropped after the poll returned, 2 = dropped mid-poll (a bug).
        let v = if self.returning.load(SeqCst) { 1 } else { 2 };
        self.dropped_after_return.store(v, SeqCst);
    }
}

#[test]
fn abort_running_task_drops_it_after_its_poll() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let started = Arc::new(AtomicBool::new(false));
        let aborted = Arc::new(AtomicBool::new(false));
        let returning = Arc::new(AtomicBool::new(false));
        let drop_state = Arc::new(AtomicUsize::new(0));
        let h = rt.spawn(LongPoll {
            started: started.clone(),
            aborted: aborted.clone(),
            returning: returning.clone(),
            dropped_after_return: drop_state.clone(),
        });
        assert!(wait_until(Duration::from_secs(10), || started.load(SeqCst)));
        h.abort();
        aborted.store(true, SeqCst);
        assert_eq!(
            drop_state.load(SeqCst),
            0,
            "dropped while still being polled"
        );
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert!(wait_until(Duration::from_secs(10), || drop_state
            .load(SeqCst)
            != 0));
        assert_eq!(
            drop_state.load(SeqCst),
            1,
            "the running task must be dropped after its poll returns"
        );
    });
}

#[test]
fn abort_after_completion_keeps_output() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let h = rt.spawn(async { 9 });
        assert!(wait_until(Duration::from_secs(10), || h.is_finished()));
        h.abort();
        assert_eq!(rt.block_on(h).unwrap(), 9);
    });
}

#[test]
fn panic_propagates_to_join_handle() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        // A run-time value, so the payload is a formatted `String` (a
        // constant message may be folded into a `&'static str`).
        let n = std::hint::black_box(7);
        let h = rt.spawn(async move { panic!("boom {n}") });
        let id = h.id();
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert!(!err.is_cancelled());
        assert_eq!(err.id(), id);
        assert!(err.to_string().contains("boom 7"), "{err}");
        let payload = err.into_panic();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("boom 7")
        );

        let err = rt
            .block_on(rt.spawn(async { panic!("static") }))
            .unwrap_err();
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "static");

        // A panic inside block_on's own future reaches the caller.
        let r = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { panic!("in block_on") })
        }));
        assert_eq!(panic_message(&*r.unwrap_err()), "in block_on");
        // And the runtime still works after it.
        assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
    });
}

#[test]
fn panicking_tasks_never_take_a_worker_down() {
    watchdog(LIMIT, || {
        const WORKERS: usize = 4;
        let rt = rt(WORKERS);
        let hs: Vec<_> = (0..200)
            .map(|i| {
                rt.spawn(async move {
                    safepoint::task::yield_now().await;
                    if i % 2 == 0 {
                        panic!("task {i} panics");
                    }
                    i
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            match rt.block_on(h) {
                Ok(v) => assert_eq!(v, i),
                Err(e) => {
                    assert!(i % 2 == 0 && e.is_panic(), "task {i}: {e:?}");
                    assert_eq!(panic_message(&*e.into_panic()), format!("task {i} panics"));
                }
            }
        }
        // Every worker is still alive: WORKERS tasks that each wait until
        // all of them run at the same time can only finish if each has a
        // worker of its own.
        let arrived = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..WORKERS)
            .map(|_| {
                let arrived = arrived.clone();
                rt.spawn(async move {
                    arrived.fetch_add(1, SeqCst);
                    let all =
                        wait_until(Duration::from_secs(20), || arrived.load(SeqCst) == WORKERS);
                    (all, std::thread::current().name().unwrap().to_owned())
                })
            })
            .collect();
        let mut names = HashSet::new();
        for h in hs {
            let (all, name) = rt.block_on(h).unwrap();
            assert!(all, "a worker is missing after the panics");
            names.insert(name);
        }
        assert_eq!(names.len(), WORKERS, "{names:?}");
    });
}

#[test]
fn blocking_calls_on_a_worker_panic_with_a_clear_message() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let handle = rt.handle().clone();
        // block_on on a worker: the task panics; the JoinError carries it.
        let h2 = handle.clone();
        let err = rt
            .block_on(rt.spawn(async move { h2.block_on(async { 1 }) }))
            .unwrap_err();
        assert!(err.is_panic());
        let msg = panic_message(&*err.into_panic());
        assert!(msg.contains("worker"), "{msg}");
        assert!(msg.contains("block_on"), "{msg}");

        // The same calls, caught inside the task.
        let h2 = handle.clone();
        let msgs = rt
            .block_on(rt.spawn(async move {
                let a = catch_unwind(AssertUnwindSafe(|| h2.stop_the_world_blocking()))
                    .map(drop)
                    .unwrap_err();
                let b = catch_unwind(AssertUnwindSafe(|| h2.run_until_blocked())).unwrap_err();
                (panic_message(&*a), panic_message(&*b))
            }))
            .unwrap();
        assert!(
            msgs.0.contains("worker") && msgs.0.contains("stop_the_world()"),
            "{}",
            msgs.0
        );
        assert!(
            msgs.1.contains("worker") && msgs.1.contains("wait_all_blocked"),
            "{}",
            msgs.1
        );

        // Nested block_on on a non-worker thread.
        let r = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(async { handle.block_on(async { 1 }) })
        }));
        let msg = panic_message(&*r.unwrap_err());
        assert!(msg.contains("block_on"), "{msg}");
        // The runtime is fine afterwards.
        assert_eq!(rt.block_on(async { 3 }), 3);
    });
}

#[test]
fn spawn_outside_a_runtime_panics_naming_runtime_spawn() {
    let msgs = std::thread::spawn(|| {
        let a = catch_unwind(|| drop(safepoint::spawn(async {}))).unwrap_err();
        let b = catch_unwind(|| drop(safepoint::spawn_blocking(|| {}))).unwrap_err();
        let c = safepoint::task::Builder::new().name("x").spawn(async {});
        (panic_message(&*a), panic_message(&*b), c.is_err())
    })
    .join()
    .unwrap();
    assert!(msgs.0.contains("Runtime::spawn"), "{}", msgs.0);
    assert!(msgs.1.contains("Runtime::spawn_blocking"), "{}", msgs.1);
    assert!(
        msgs.2,
        "task::Builder::spawn outside a runtime must be an error"
    );
    assert!(Handle::try_current().is_err());
}

#[test]
fn spawn_blocking_runs_on_a_separate_thread() {
    watchdog(LIMIT, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sbt")
            .build()
            .unwrap();
        let (worker, blocking) = rt
            .block_on(rt.spawn(async {
                let worker = std::thread::current().id();
                let blocking = safepoint::spawn_blocking(|| {
                    (
                        std::thread::current().id(),
                        std::thread::current().name().unwrap().to_owned(),
                    )
                })
                .await
                .unwrap();
                (worker, blocking)
            }))
            .unwrap();
        assert_ne!(worker, blocking.0);
        assert!(blocking.1.starts_with("sbt-blocking"), "{}", blocking.1);
        // A blocking job can use the runtime (it runs inside its context).
        let v = rt
            .block_on(rt.spawn_blocking(|| {
                let h = Handle::current();
                h.block_on(safepoint::spawn(async { 11 })).unwrap()
            }))
            .unwrap();
        assert_eq!(v, 11);
        // A panicking job is a JoinError, not a dead pool.
        let err = rt
            .block_on(rt.spawn_blocking(|| panic!("job")))
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 1)).unwrap(), 1);
    });
}

#[test]
fn hundred_blocking_jobs_run_at_once() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let hs: Vec<_> = (0..100)
            .map(|i| {
                let (running, peak) = (running.clone(), peak.clone());
                rt.spawn_blocking(move || {
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, SeqCst);
                    i
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(rt.block_on(h).unwrap(), i);
        }
        let elapsed = start.elapsed();
        // Serially this is 5 s; at once it is ~50 ms plus thread start-up.
        assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
        // All (or nearly all: a slow thread start on a loaded 2-core box
        // may let the first jobs finish) were running at the same time.
        let peak = peak.load(SeqCst);
        assert!(peak >= 90, "only {peak} of 100 blocking jobs ran at once");
    });
}

#[test]
fn idle_blocking_threads_exit_after_keep_alive() {
    watchdog(LIMIT, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kal")
            .thread_keep_alive(Duration::from_millis(300))
            .build()
            .unwrap();
        let count = || {
            thread_names()
                .iter()
                .filter(|n| n.starts_with("kal-blocking"))
                .count()
        };
        assert_eq!(count(), 0);
        let hs: Vec<_> = (0..4)
            .map(|_| rt.spawn_blocking(|| std::thread::sleep(Duration::from_millis(20))))
            .collect();
        for h in hs {
            rt.block_on(h).unwrap();
        }
        let done = Instant::now();
        assert_eq!(count(), 4, "four concurrent jobs, four threads");
        // Still there well before the keep-alive ends, and idle.
        std::thread::sleep(Duration::from_millis(100));
        if done.elapsed() < Duration::from_millis(250) {
            assert_eq!(count(), 4, "threads exited before thread_keep_alive");
            assert_eq!(rt.metrics().idle_blocking_threads, 4);
        }
        // A job now reuses an idle thread instead of starting a fifth.
        rt.block_on(rt.spawn_blocking(|| ())).unwrap();
        assert!(count() <= 4);
        assert!(
            wait_until(Duration::from_secs(5), || count() == 0),
            "idle blocking threads did not exit after thread_keep_alive: {:?}",
            thread_names()
        );
        assert_eq!(rt.metrics().blocking_threads, 0);
        // The pool starts threads again afterwards.
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 2)).unwrap(), 2);
    });
}

#[test]
fn task_builder_keeps_name_and_spawn_location() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let line = line!();
        let spinner = safepoint::task::Builder::new()
            .name("named-spinner")
            .spawn_on(
                async {
                    loop {
                        safepoint::task::yield_now().await;
                    }
                },
                rt.handle(),
            )
            .unwrap();
        // Spawned from inside a task with Builder::spawn as well.
        let (inner_id, inner_line) = rt.block_on(async {
            let line = line!();
            let h = safepoint::task::Builder::new()
                .name("inner-spinner")
                .spawn(async {
                    loop {
                        safepoint::task::yield_now().await;
                    }
                });
            let h = h.unwrap();
            let id = h.id();
            drop(h); // detached, aborted below through a fresh stop
            (id, line)
        });
        let err = rt
            .handle()
            .stop_the_world_blocking_timeout(Duration::from_millis(200))
            .expect_err("two tasks that never reach a safepoint");
        let find = |id| {
            err.laggards()
                .iter()
                .find(|l| l.id == id)
                .unwrap_or_else(|| panic!("task {id} missing from {err}"))
                .clone()
        };
        let outer = find(spinner.id());
        assert_eq!(outer.name.as_deref(), Some("named-spinner"));
        assert_location(&outer.location, line);
        let inner = find(inner_id);
        assert_eq!(inner.name.as_deref(), Some("inner-spinner"));
        assert_location(&inner.location, inner_line);
        let text = err.to_string();
        assert!(
            text.contains("named-spinner") && text.contains("inner-spinner"),
            "{text}"
        );
        spinner.abort();
        // The detached inner spinner is dropped with the runtime.
    });
}

/// `location` is `.../tasks.rs:LINE:COL` with LINE just after `line` (the
/// spawn call is the statement that follows the `line!()`).
fn assert_location(location: &str, line: u32) {
    let (file, rest) = location
        .split_once(".rs:")
        .unwrap_or_else(|| panic!("location {location:?} is not file.rs:line:col"));
    assert!(
        file.ends_with("tasks"),
        "location {location} is not in this file"
    );
    let got: u32 = rest.split(':').next().unwrap().parse().unwrap();
    assert!(
        (line + 1..=line + 3).contains(&got),
        "location {location}: expected line {} to {}",
        line + 1,
        line + 3
    );
}
