//! `task::JoinSet`: results come out in the order tasks finish; abort
//! (one task, all, shutdown, drop) cancels and drops the futures; a panic
//! is a `JoinError::is_panic`; `try_join_next`, `detach_all`,
//! `spawn_blocking`; and thousands of tasks spread over several workers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use safepoint::task::JoinSet;
use safepoint_tests::{panic_message, rt, wait_until, watchdog, DropFlag};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn join_next_yields_results_in_completion_order() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        rt.block_on(async {
            let mut set = JoinSet::new();
            let mut ids = Vec::new();
            // Spawned in the reverse of the order they finish.
            for ms in [120u64, 90, 60, 30, 0] {
                let abort = set.spawn(async move {
                    safepoint::time::sleep(Duration::from_millis(ms)).await;
                    ms
                });
                ids.push((abort.id(), ms));
            }
            assert_eq!(set.len(), 5);
            let mut order = Vec::new();
            while let Some(res) = set.join_next_with_id().await {
                let (id, ms) = res.unwrap();
                assert!(
                    ids.contains(&(id, ms)),
                    "id {id} does not belong to the {ms} ms task"
                );
                order.push(ms);
            }
            assert_eq!(order, [0, 30, 60, 90, 120]);
            assert!(set.is_empty());
            assert!(set.join_next().await.is_none());
        });
    });
}

#[test]
fn abort_all_cancels_every_unfinished_task_and_keeps_finished_results() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        rt.block_on(async {
            let mut set = JoinSet::new();
            let flags: Vec<DropFlag> = (0..8).map(|_| DropFlag::new()).collect();
            for flag in &flags {
                let guard = flag.guard();
                set.spawn(async move {
                    let _guard = guard;
                    std::future::pending::<u32>().await
                });
            }
            set.spawn(async { 7 });
            safepoint::task::wait_all_blocked().await; // the 7 is done, the rest blocked
            set.abort_all();
            let (mut cancelled, mut done) = (0, Vec::new());
            while let Some(res) = set.join_next().await {
                match res {
                    Ok(v) => done.push(v),
                    Err(e) => {
                        assert!(e.is_cancelled(), "{e}");
                        cancelled += 1;
                    }
                }
            }
            assert_eq!((cancelled, done), (8, vec![7]));
            // Joined as cancelled means the futures were dropped.
            assert!(flags.iter().all(|f| f.is_dropped()));
        });
    });
}

#[test]
fn abort_handle_cancels_only_its_task() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        rt.block_on(async {
            let mut set = JoinSet::new();
            let stuck = set.spawn(std::future::pending::<&str>());
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            set.spawn(async move {
                rx.await.unwrap();
                "second"
            });
            stuck.abort();
            let err = set.join_next().await.unwrap().unwrap_err();
            assert!(err.is_cancelled());
            assert_eq!(err.id(), stuck.id());
            assert!(stuck.is_finished());
            assert_eq!(set.len(), 1);
            tx.send(()).unwrap();
            assert_eq!(set.join_next().await.unwrap().unwrap(), "second");
        });
    });
}

#[test]
fn a_panicking_task_yields_is_panic_and_the_others_complete() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        rt.block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async { panic!("task exploded") });
            for i in 0..4u32 {
                set.spawn(async move { i });
            }
            let (mut panics, mut sum) = (0, 0);
            while let Some(res) = set.join_next().await {
                match res {
                    Ok(v) => sum += v,
                    Err(e) => {
                        assert!(e.is_panic());
                        assert_eq!(panic_message(&*e.into_panic()), "task exploded");
                        panics += 1;
                    }
                }
            }
            assert_eq!((panics, sum), (1, 6));
        });
    });
}

#[test]
fn shutdown_and_drop_abort_everything() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let in_shutdown = DropFlag::new();
        let in_drop = DropFlag::new();
        rt.block_on(async {
            let mut set = JoinSet::new();
            let g = in_shutdown.guard();
            set.spawn(async move {
                let _g = g;
                std::future::pending::<()>().await
            });
            set.shutdown().await;
            assert!(set.is_empty());
            assert!(in_shutdown.is_dropped());

            let mut set = JoinSet::new();
            let g = in_drop.guard();
            set.spawn(async move {
                let _g = g;
                std::future::pending::<()>().await
            });
            drop(set);
        });
        // Dropped on a worker, shortly after the set.
        assert!(wait_until(Duration::from_secs(10), || in_drop.is_dropped()));
    });
}

#[test]
fn detach_all_lets_the_tasks_run_on() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        rt.block_on(async {
            let mut set = JoinSet::new();
            let r = ran.clone();
            set.spawn(async move {
                rx.await.unwrap();
                r.fetch_add(1, SeqCst);
            });
            set.detach_all();
            assert!(set.is_empty());
            assert!(set.try_join_next().is_none());
        }); // the set is dropped here: nothing left in it to abort
        tx.send(()).unwrap();
        assert!(wait_until(Duration::from_secs(10), || ran.load(SeqCst) == 1));
    });
}

#[test]
fn try_join_next_returns_only_finished_tasks() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        rt.block_on(async {
            let mut set = JoinSet::new();
            let (tx, rx) = futures::channel::oneshot::channel::<u8>();
            set.spawn(async move { rx.await.unwrap() });
            safepoint::task::wait_all_blocked().await;
            assert!(set.try_join_next().is_none());
            tx.send(9).unwrap();
            let mut got = None;
            for _ in 0..10_000 {
                got = set.try_join_next();
                if got.is_some() {
                    break;
                }
                safepoint::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(got.unwrap().unwrap(), 9);
            assert!(set.try_join_next().is_none());
        });
    });
}

#[test]
fn spawn_blocking_and_spawn_on_from_outside() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let mut set = JoinSet::new();
        set.spawn_on(async { 1u64 }, rt.handle());
        set.spawn_blocking_on(
            || {
                std::thread::sleep(Duration::from_millis(5));
                2u64
            },
            rt.handle(),
        );
        let total = rt.block_on(async move {
            set.spawn_blocking(|| 3u64);
            set.join_all().await.into_iter().sum::<u64>()
        });
        assert_eq!(total, 6);
    });
}

#[test]
fn spawn_outside_a_runtime_panics_naming_spawn_on() {
    let mut set = JoinSet::<()>::new();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        set.spawn(async {});
    }))
    .unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("JoinSet::spawn_on"), "{msg}");
}

#[test]
fn ten_thousand_tasks_on_four_workers() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let sum = rt.block_on({
            let threads = threads.clone();
            async move {
                let mut set = JoinSet::new();
                for i in 0..10_000u64 {
                    let threads = threads.clone();
                    set.spawn(async move {
                        for _ in 0..3 {
                            safepoint::task::yield_now().await;
                        }
                        let name = std::thread::current().name().unwrap_or("").to_owned();
                        threads.lock().unwrap().insert(name);
                        i
                    });
                }
                assert_eq!(set.len(), 10_000);
                let mut sum = 0;
                let mut n = 0;
                while let Some(res) = set.join_next().await {
                    sum += res.unwrap();
                    n += 1;
                }
                assert_eq!(n, 10_000);
                sum
            }
        });
        assert_eq!(sum, 10_000 * 9_999 / 2);
        let threads = threads.lock().unwrap();
        assert!(
            threads.len() >= 2,
            "the tasks ran on {threads:?}: expected several workers"
        );
    });
}

#[test]
fn a_task_finishing_after_block_on_returned_leaves_the_runtime_quiescent() {
    // `rt.block_on(set.join_next())` leaves the set holding that
    // `block_on`'s waker; the next task to finish wakes it after it has
    // returned. That wake must not count a finished future as runnable (it
    // did: quiescence and stops then waited forever).
    watchdog(LIMIT, || {
        let rt = rt(2);
        let mut set = JoinSet::new();
        let (tx, rx) = futures::channel::oneshot::channel::<u8>();
        set.spawn_on(async { 1u8 }, rt.handle());
        set.spawn_on(async move { rx.await.unwrap() }, rt.handle());
        assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 1);
        tx.send(2).unwrap(); // finishes the second task: wakes the stale waker
        rt.run_until_blocked();
        let world = rt
            .handle()
            .stop_the_world_blocking_timeout(Duration::from_secs(10))
            .expect("the stop completes");
        world.resume();
        assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 2);
    });
}

#[test]
fn on_the_deterministic_flavour_results_follow_virtual_time() {
    watchdog(LIMIT, || {
        let rt = safepoint::Builder::new_deterministic(7).build().unwrap();
        let start = std::time::Instant::now();
        let order = rt.block_on(async {
            let mut set = JoinSet::new();
            for hours in [3u64, 1, 2] {
                set.spawn(async move {
                    safepoint::time::sleep(Duration::from_secs(3600 * hours)).await;
                    hours
                });
            }
            let mut order = Vec::new();
            while let Some(res) = set.join_next().await {
                order.push(res.unwrap());
            }
            order
        });
        assert_eq!(order, [1, 2, 3]);
        assert!(start.elapsed() < Duration::from_secs(10), "virtual time");
    });
}
