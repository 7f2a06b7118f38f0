//! Shutdown: dropping a runtime with pending tasks (blocked forever,
//! blocked on a channel, queued behind busy workers) drops every one of
//! them so their destructors run, their join handles resolve to
//! cancellation instead of hanging, spawns after shutdown are cancelled,
//! and `shutdown_timeout` gives up on a stuck worker in time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use safepoint::Builder;
use safepoint_tests::{rt, wait_until, watchdog, DropCounter};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn dropping_the_runtime_drops_every_pending_task() {
    watchdog(LIMIT, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let drops = DropCounter::new();
        let mut handles = Vec::new();
        let mut senders = Vec::new();
        // Blocked forever: no waker will ever fire.
        for _ in 0..100 {
            let t = drops.token();
            handles.push(rt.spawn(async move {
                let _t = t;
                std::future::pending::<()>().await;
            }));
        }
        // Blocked on a channel whose sender the test keeps.
        for _ in 0..100 {
            let t = drops.token();
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            senders.push(tx);
            handles.push(rt.spawn(async move {
                let _t = t;
                let _ = rx.await;
            }));
        }
        // Blocked on a long timer.
        for _ in 0..50 {
            let t = drops.token();
            handles.push(rt.spawn(async move {
                let _t = t;
                safepoint::time::sleep(Duration::from_secs(3600)).await;
            }));
        }
        rt.run_until_blocked();
        // Both workers busy, then more work queued behind them.
        let release = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for _ in 0..2 {
            let (t, release, busy) = (drops.token(), release.clone(), busy.clone());
            handles.push(rt.spawn(async move {
                let _t = t;
                busy.fetch_add(1, SeqCst);
                wait_until(Duration::from_secs(30), || release.load(SeqCst));
                std::future::pending::<()>().await;
            }));
        }
        assert!(wait_until(Duration::from_secs(10), || busy.load(SeqCst) == 2));
        for _ in 0..100 {
            let t = drops.token();
            handles.push(rt.spawn(async move {
                let _t = t;
                unreachable!("queued behind busy workers until the runtime is dropped");
            }));
        }
        let total = handles.len();
        assert_eq!(total, 352);
        assert_eq!(drops.dropped(), 0);
        let handle = rt.handle().clone();
        // Let the busy tasks go just as the runtime shuts down.
        let r = release.clone();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            r.store(true, SeqCst);
        });
        drop(rt);
        releaser.join().unwrap();
        assert_eq!(
            drops.dropped(),
            total,
            "dropping the runtime must drop every task (destructors run)"
        );
        drop(senders);
        drop(handles);
        drop(handle);
    });
}

/// Awaiting the handle of a task that shutdown dropped must yield a
/// cancelled `JoinError` (design: "a task spawned on a runtime that is
/// shutting down is dropped at once and its handle reports cancellation").
#[test]
fn join_handles_of_tasks_dropped_at_shutdown_report_cancelled() {
    watchdog(LIMIT, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let pending = rt.spawn(std::future::pending::<()>());
        let (_tx, rx) = futures::channel::oneshot::channel::<()>();
        let on_channel = rt.spawn(async move {
            let _ = rx.await;
        });
        rt.run_until_blocked();
        let handle = rt.handle().clone();
        drop(rt);
        futures::executor::block_on(async {
            for h in [pending, on_channel] {
                let err = h.await.expect_err("no task completed");
                assert!(err.is_cancelled(), "{err:?}");
            }
        });
        // Spawning through a handle kept past the drop: cancelled at once.
        let late = handle.spawn(async { 1 });
        let err = futures::executor::block_on(late).unwrap_err();
        assert!(err.is_cancelled());
        let late = handle.spawn_blocking(|| 1);
        let err = futures::executor::block_on(late).unwrap_err();
        assert!(err.is_cancelled());
    });
}

#[test]
fn shutdown_timeout_gives_up_on_a_stuck_worker() {
    watchdog(LIMIT, || {
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let drops = DropCounter::new();
        let t = drops.token();
        rt.spawn(async move {
            s.store(true, SeqCst);
            // A poll that blocks for 2 s: shutdown cannot wait for it.
            std::thread::sleep(Duration::from_secs(2));
        });
        let t2 = drops.token();
        rt.spawn(async move {
            let _t = t2;
            std::future::pending::<()>().await;
        });
        drop(t);
        assert!(wait_until(Duration::from_secs(10), || started.load(SeqCst)));
        let start = Instant::now();
        rt.shutdown_timeout(Duration::from_millis(100));
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "shutdown_timeout took {took:?}"
        );
        // The idle task is dropped even though a worker was left behind.
        assert_eq!(drops.dropped(), 2);
    });
}

#[test]
fn drop_after_block_on_and_blocking_work() {
    watchdog(LIMIT, || {
        for _ in 0..20 {
            let rt = Builder::new_multi_thread()
                .worker_threads(3)
                .build()
                .unwrap();
            let v = rt.block_on(async {
                let a = safepoint::spawn_blocking(|| 2);
                let b = safepoint::spawn(async {
                    safepoint::time::sleep(Duration::from_millis(1)).await;
                    3
                });
                a.await.unwrap() * b.await.unwrap()
            });
            assert_eq!(v, 6);
            // A blocking job still running at drop: the drop waits for it.
            // (One that has not started yet is cancelled instead, as in
            // tokio, so wait for it to start.)
            let done = Arc::new(AtomicBool::new(false));
            let started = Arc::new(AtomicBool::new(false));
            let (d, s) = (done.clone(), started.clone());
            rt.spawn_blocking(move || {
                s.store(true, SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                d.store(true, SeqCst);
            });
            assert!(wait_until(Duration::from_secs(10), || started.load(SeqCst)));
            drop(rt);
            assert!(
                done.load(SeqCst),
                "drop returned before a running blocking job"
            );
        }
    });
}

/// A task spawned on a runtime that is shutting down is dropped at once;
/// its future's destructor may enter a runtime itself. `spawn` borrows the
/// thread's runtime context while it spawns, so the refused task must be
/// dropped after that borrow ends, or the destructor's `enter` would find
/// the context borrowed and panic.
#[test]
fn a_task_refused_at_shutdown_may_enter_a_runtime_in_its_destructor() {
    struct EntersOnDrop(safepoint::Handle, Arc<AtomicUsize>);
    impl Drop for EntersOnDrop {
        fn drop(&mut self) {
            let _entered = self.0.enter();
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    /// Dropped at shutdown: spawns (refused) a task holding `EntersOnDrop`.
    struct SpawnsOnDrop(safepoint::Handle, Arc<AtomicUsize>);
    impl Drop for SpawnsOnDrop {
        fn drop(&mut self) {
            let _entered = self.0.enter();
            let keep = EntersOnDrop(self.0.clone(), self.1.clone());
            let refused = safepoint::spawn(async move {
                let _keep = keep;
                std::future::pending::<()>().await
            });
            drop(refused);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let spawner = SpawnsOnDrop(rt.handle().clone(), dropped.clone());
    rt.spawn(async move {
        let _spawner = spawner;
        std::future::pending::<()>().await
    });
    drop(rt);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the refused task was not dropped"
    );
}

/// A task enters the runtime's registry of live tasks only when it first
/// blocks; until then it is counted apart. The live-task count (metrics and
/// stop reports) must still include tasks queued for their first poll and
/// tasks in it, and shutdown must drop tasks of every kind: never polled,
/// blocked after one poll, and blocked after many.
#[test]
fn live_tasks_counts_tasks_before_their_first_block_and_shutdown_drops_every_kind() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let drops = DropCounter::new();
        let pending_forever = |t: safepoint_tests::DropToken| async move {
            let _t = t;
            std::future::pending::<()>().await;
        };
        // Blocked after their first poll.
        for _ in 0..40 {
            rt.spawn(pending_forever(drops.token()));
        }
        // Blocked after a few polls.
        for _ in 0..10 {
            let t = drops.token();
            rt.spawn(async move {
                for _ in 0..3 {
                    safepoint::task::yield_now().await;
                }
                pending_forever(t).await;
            });
        }
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 50);
        // Queued and never polled: spawned while the world is stopped, so
        // held in the queue until the resume.
        let world = rt.handle().stop_the_world_blocking();
        assert_eq!(world.report().tasks, 50, "{:?}", world.report());
        for _ in 0..30 {
            rt.spawn(pending_forever(drops.token()));
        }
        assert_eq!(rt.metrics().live_tasks, 80, "queued tasks are live");
        drop(world);
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 80);
        // In its first poll: counted while it runs, and it must not be
        // counted twice once it blocks.
        let (polling, release) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (p, r, t) = (polling.clone(), release.clone(), drops.token());
        rt.spawn(async move {
            p.store(true, SeqCst);
            while !r.load(SeqCst) {
                std::hint::spin_loop();
            }
            pending_forever(t).await;
        });
        assert!(wait_until(LIMIT, || polling.load(SeqCst)));
        assert_eq!(rt.metrics().live_tasks, 81, "a task in its first poll");
        release.store(true, SeqCst);
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 81);
        // Finished tasks leave the count, whether they finished in their
        // first poll or after blocking.
        let quick: Vec<_> = (0..20).map(|i| rt.spawn(async move { i })).collect();
        let slow: Vec<_> = (0..20)
            .map(|i| {
                rt.spawn(async move {
                    safepoint::time::sleep(Duration::from_millis(1)).await;
                    i
                })
            })
            .collect();
        for h in quick.into_iter().chain(slow) {
            rt.block_on(h).unwrap();
        }
        assert_eq!(rt.metrics().live_tasks, 81);
        assert_eq!(drops.dropped(), 0);
        drop(rt);
        assert_eq!(drops.dropped(), 81, "shutdown drops every task");
    });
}

/// A task in its first poll when `shutdown_timeout` gives up on its
/// worker is not in the registry of live tasks yet (it enters it when that
/// poll returns `Pending`), so shutdown's walk of the registry misses it.
/// It must still be dropped, by its worker, once the poll ends.
#[test]
fn a_first_poll_that_outlives_shutdown_timeout_is_dropped_when_it_ends() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let (polling, release) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let drops = DropCounter::new();
        let (p, r, t) = (polling.clone(), release.clone(), drops.token());
        rt.spawn(async move {
            let _t = t;
            p.store(true, SeqCst);
            wait_until(LIMIT, || r.load(SeqCst));
            std::future::pending::<()>().await;
        });
        assert!(wait_until(LIMIT, || polling.load(SeqCst)));
        rt.shutdown_timeout(Duration::from_millis(50));
        assert_eq!(drops.dropped(), 0, "still in its first poll");
        release.store(true, SeqCst);
        assert!(
            wait_until(LIMIT, || drops.dropped() == 1),
            "the task was leaked after its first poll ended"
        );
    });
}
