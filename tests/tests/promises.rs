//! Regression tests for promises the barrier broke before the census became
//! one module: each failed (or hung, or aborted the process) on the code
//! before that change. Protocol points are those of `runtime/PROTOCOL.md`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use safepoint::task::yield_now;
use safepoint::{safepoint, Builder, Handle};
use safepoint_tests::{panic_message, rt, wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

/// A future that completes at once and panics when dropped.
struct PanicsOnDrop(bool);

impl Future for PanicsOnDrop {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        if self.0 {
            Poll::Pending
        } else {
            Poll::Ready(7)
        }
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("boom in drop");
        }
    }
}

/// Point 14: a destructor that panics after the future completed fails the
/// handle; the runtime goes on (before: the process aborted).
#[test]
fn a_future_that_panics_in_drop_after_completing_fails_its_handle() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let err = rt.block_on(rt.spawn(PanicsOnDrop(false))).unwrap_err();
        assert!(err.is_panic());
        assert_eq!(panic_message(&*err.into_panic()), "boom in drop");
        // Workers and census intact: the runtime still runs and stops.
        assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
        rt.handle().stop_the_world_blocking().resume();
        rt.run_until_blocked();
    });
}

/// Point 14: an aborted task whose destructor panics yields a panicked
/// `JoinError` (tokio's `test_abort_task_that_panics_on_drop_returned`).
#[test]
fn an_aborted_task_that_panics_in_drop_reports_the_panic() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let h = rt.spawn(PanicsOnDrop(true));
        rt.run_until_blocked();
        h.abort();
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        // And when nobody awaits: contained (tokio's `_contained`).
        let h = rt.spawn(PanicsOnDrop(true));
        rt.run_until_blocked();
        h.abort();
        drop(h);
        rt.run_until_blocked();
        assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
        // At shutdown too.
        rt.spawn(PanicsOnDrop(true));
        drop(rt);
    });
}

/// Spawns, with `spawn`, a task whose first poll spins until released;
/// while it spins, a stop on `rt` times out (300 ms). Returns the stop's
/// error and the task's handle, the poll released.
fn time_out_a_stop_over_one_long_poll(
    rt: &safepoint::Runtime,
    spawn: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> safepoint::task::JoinHandle<()>,
) -> (safepoint::StopTimedOut, safepoint::task::JoinHandle<()>) {
    let (polling, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (p, r) = (polling.clone(), release.clone());
    let spinner = spawn(Box::pin(async move {
        p.store(true, SeqCst);
        // One poll that never yields, until released.
        while !r.load(SeqCst) {
            std::hint::spin_loop();
        }
    }));
    assert!(wait_until(LIMIT, || polling.load(SeqCst)));
    let err = rt
        .handle()
        .stop_the_world_blocking_timeout(Duration::from_millis(300))
        .unwrap_err();
    release.store(true, SeqCst);
    (err, spinner)
}

/// Point 6: a task in one long poll that began before the request is named
/// in the timeout report, with how long it has been polling (before: "0
/// task(s) kept running").
#[test]
fn a_timed_out_stop_names_a_poll_that_began_before_the_request() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let (err, spinner) = time_out_a_stop_over_one_long_poll(&rt, |poll| {
            safepoint::task::Builder::new()
                .name("one-long-poll")
                .spawn_on(poll, rt.handle())
                .unwrap()
        });
        let laggard = err
            .laggards()
            .iter()
            .find(|l| l.id == spinner.id())
            .unwrap_or_else(|| panic!("the long poll is not named: {err}"));
        assert_eq!(laggard.name.as_deref(), Some("one-long-poll"));
        assert!(laggard.polling_since_before_request);
        assert!(laggard.polling_for.unwrap() >= Duration::from_millis(250));
        assert!(
            err.to_string().contains("since before the request"),
            "{err}"
        );
        rt.block_on(spinner).unwrap();
    });
}

/// Point 6, for an unnamed task in its first poll: such a task is not in
/// the live-task registry yet (it enters it when it first blocks), and the
/// report must still give its spawn location.
#[test]
fn a_timed_out_stop_locates_an_unnamed_task_in_its_first_poll() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let line = line!() + 1;
        let (err, spinner) = time_out_a_stop_over_one_long_poll(&rt, |poll| rt.spawn(poll));
        let laggard = err
            .laggards()
            .iter()
            .find(|l| l.id == spinner.id())
            .unwrap_or_else(|| panic!("the long first poll is not named: {err}"));
        assert_eq!(laggard.name, None);
        assert!(laggard.polling_since_before_request);
        let spawned_at = format!("{}:{line}:", file!());
        assert!(laggard.location.starts_with(&spawned_at), "{err}");
        rt.block_on(spinner).unwrap();
    });
}

/// Point 8: a task woken during a stop (its wake kept for the resume) is
/// runnable: quiescence is not reported until it has run.
#[test]
fn quiescence_waits_for_a_wake_kept_during_a_stop() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        rt.spawn(async move {
            rx.await.unwrap();
            r.store(true, SeqCst);
        });
        let held = Arc::new(AtomicBool::new(false));
        let h = held.clone();
        let handle = rt.handle().clone();
        rt.spawn(async move {
            let world = handle.stop_the_world().await;
            h.store(true, SeqCst);
            // Runs (and its worker parks again) several times while it
            // holds the world: each park is a chance to report quiescence.
            for _ in 0..5 {
                safepoint::time::sleep(Duration::from_millis(40)).await;
            }
            drop(world);
        });
        assert!(wait_until(LIMIT, || held.load(SeqCst)));
        tx.send(()).unwrap(); // kept: the world is stopped
        rt.run_until_blocked();
        assert!(
            ran.load(SeqCst),
            "run_until_blocked returned while a woken task waited for the resume"
        );
    });
}

/// Point 11: a deterministic `block_on` future that yields in a loop lets
/// the spawned tasks run (before: 10 000 yields, the task never ran).
#[test]
fn a_yielding_deterministic_block_on_lets_tasks_run() {
    watchdog(LIMIT, || {
        let rt = Builder::new_deterministic(3).build().unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        rt.spawn(async move { r.store(true, SeqCst) });
        let yields = rt.block_on(async {
            let mut n = 0;
            while !ran.load(SeqCst) && n < 10_000 {
                yield_now().await;
                n += 1;
            }
            n
        });
        assert!(yields <= 2, "the task ran only after {yields} yields");
    });
}

/// Point 9: a finished blocking job interrupts the deterministic runner's
/// wait, so virtual time goes on (before: hung forever).
#[test]
fn a_finished_blocking_job_wakes_the_deterministic_runner() {
    watchdog(LIMIT, || {
        let rt = Builder::new_deterministic(1).build().unwrap();
        let out = rt.block_on(async {
            let h = safepoint::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(50));
                5
            });
            safepoint::time::sleep(Duration::from_secs(1)).await;
            h.await.unwrap()
        });
        assert_eq!(out, 5);
    });
}

/// Point 9: a resume from an outside thread interrupts the deterministic
/// runner waiting for it (before: hung forever).
#[test]
fn an_outside_resume_wakes_the_deterministic_runner() {
    watchdog(LIMIT, || {
        let rt = Arc::new(Builder::new_deterministic(1).build().unwrap());
        let (started, go) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (rt2, s, g) = (rt.clone(), started.clone(), go.clone());
        let runner = std::thread::spawn(move || {
            rt2.block_on(async move {
                s.store(true, SeqCst);
                // Runnable until the stop is requested, so the request finds
                // the runner busy and is declared by it.
                while !g.load(SeqCst) {
                    yield_now().await;
                }
                // Virtual: instant once the runner looks at the clock again,
                // which only the resume can make it do.
                safepoint::time::sleep(Duration::from_secs(3600)).await;
                1
            })
        });
        assert!(wait_until(LIMIT, || started.load(SeqCst)));
        let world = stop_after_filing(&rt, || go.store(true, SeqCst));
        std::thread::sleep(Duration::from_millis(20));
        drop(world);
        assert_eq!(runner.join().unwrap(), 1);
    });
}

/// Files a stop request from this thread (it stays pending: a task is
/// runnable), runs `then`, and waits for the world.
fn stop_after_filing(rt: &safepoint::Runtime, then: impl FnOnce()) -> safepoint::StoppedWorld {
    let mut request = Box::pin(rt.handle().stop_the_world());
    let waker = futures::task::noop_waker();
    assert!(request
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    then();
    futures::executor::block_on(request)
}

/// Point 11: the deterministic flavour does not declare a stop while the
/// `block_on` future is woken and not yet polled (before: declared, the
/// future polled only after the resume).
#[test]
fn a_deterministic_stop_waits_for_a_woken_block_on_future() {
    watchdog(LIMIT, || {
        let rt = Arc::new(Builder::new_deterministic(5).build().unwrap());
        let go = Arc::new(AtomicBool::new(false));
        let main_ran = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let runner = {
            let (rt, go, main_ran, ready) =
                (rt.clone(), go.clone(), main_ran.clone(), ready.clone());
            std::thread::spawn(move || {
                rt.block_on(async move {
                    let (tx, rx) = futures::channel::oneshot::channel::<()>();
                    safepoint::spawn(async move {
                        // Runnable (so no stop) until told to wake main.
                        while !go.load(SeqCst) {
                            yield_now().await;
                        }
                        tx.send(()).unwrap();
                    });
                    ready.store(true, SeqCst);
                    rx.await.unwrap();
                    main_ran.store(true, SeqCst);
                })
            })
        };
        assert!(wait_until(LIMIT, || ready.load(SeqCst)));
        // File the request (it stays pending: a task is runnable), then let
        // the task wake main in the same round it finishes.
        let world = stop_after_filing(&rt, || go.store(true, SeqCst));
        assert!(
            main_ran.load(SeqCst),
            "stopped while the woken block_on future had not been polled"
        );
        drop(world);
        runner.join().unwrap();
    });
}

/// Point 5: a resume hands the barrier to the next requester only after
/// the tasks it released are queued, so they make progress in between.
#[test]
fn released_tasks_pass_their_safepoint_before_the_next_queued_stop() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        rt.spawn(async move {
            loop {
                c.fetch_add(1, SeqCst);
                safepoint().await;
                yield_now().await;
            }
        });
        for i in 0..200 {
            let first = rt.handle().stop_the_world_blocking();
            let at_first = count.load(SeqCst);
            let (handle, c) = (rt.handle().clone(), count.clone());
            let next = std::thread::spawn(move || {
                let world = handle.stop_the_world_blocking();
                let seen = c.load(SeqCst);
                drop(world);
                seen
            });
            // Let the second request queue behind the first.
            std::thread::sleep(Duration::from_micros(200));
            drop(first);
            let at_second = next.join().unwrap();
            assert!(
                at_second > at_first,
                "stop {i}: the next stop was declared before the released task ran"
            );
        }
    });
}

/// Point 14: a thread that holds the world and calls a blocking entry point
/// of the same runtime gets a panic naming the mistake (before: hung).
#[test]
fn the_thread_holding_the_world_cannot_block_on_the_same_runtime() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let world = rt.handle().stop_the_world_blocking();
        for (what, call) in [
            (
                "block_on",
                Box::new(|| rt.block_on(async {})) as Box<dyn Fn()>,
            ),
            (
                "stop_the_world_blocking",
                Box::new(|| drop(rt.handle().stop_the_world_blocking())),
            ),
            ("run_until_blocked", Box::new(|| rt.run_until_blocked())),
        ] {
            let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).expect_err(what);
            let msg = panic_message(&*err);
            assert!(msg.contains("holds"), "{what}: {msg}");
        }
        drop(world);
        // Another thread may block on it while the world is held.
        let world = rt.handle().stop_the_world_blocking();
        let h = rt.handle().clone();
        let t = std::thread::spawn(move || h.block_on(async { 2 }));
        std::thread::sleep(Duration::from_millis(20));
        drop(world);
        assert_eq!(t.join().unwrap(), 2);
        let started = Instant::now();
        rt.run_until_blocked();
        assert!(started.elapsed() < LIMIT);
        let _ = Handle::try_current();
    });
}
