//! Regression tests for races a review of the barrier found: a stop handed
//! to the next requester before released tasks were queued; a requester
//! from another runtime taken for a task of this one; a blocking stop inside
//! `block_on` hanging instead of panicking.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use safepoint_tests::{rt, watchdog};

/// Back-to-back stops from two threads: the task released by one stop must
/// run (and reach its next safepoint) before the next stop is declared, so
/// every stop finds it parked at a safepoint, never queued.
#[test]
fn back_to_back_stops_let_released_tasks_run() {
    watchdog(Duration::from_secs(60), || {
        let rt = rt(2);
        let passes = Arc::new(AtomicU64::new(0));
        let p = passes.clone();
        rt.spawn(async move {
            loop {
                safepoint::safepoint().await;
                p.fetch_add(1, SeqCst);
                // Yield so shutdown can drop the task between polls.
                safepoint::task::yield_now().await;
            }
        });
        while passes.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let h = rt.handle().clone();
                std::thread::spawn(move || {
                    for _ in 0..300 {
                        let world = h.stop_the_world_blocking();
                        assert_eq!(
                            world.report().at_safepoint,
                            1,
                            "a stop was declared with the released task still queued"
                        );
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// A task of runtime A stopping runtime B: for B it is an outside
/// requester, whatever its id; B's own task with the same id must not run
/// while B is stopped.
#[test]
fn requester_from_another_runtime_is_an_outside_requester() {
    watchdog(Duration::from_secs(60), || {
        let b = rt(1);
        let polls = Arc::new(AtomicU64::new(0));
        let p = polls.clone();
        // B's first task: id 1.
        b.spawn(async move {
            loop {
                p.fetch_add(1, SeqCst);
                safepoint::safepoint().await;
                safepoint::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let a = rt(1);
        let hb = b.handle().clone();
        let polls_a = polls.clone();
        // A's first task: id 1 as well.
        let frozen = a
            .block_on(a.spawn(async move {
                let world = hb.stop_the_world().await;
                let before = polls_a.load(SeqCst);
                safepoint::time::sleep(Duration::from_millis(30)).await;
                let after = polls_a.load(SeqCst);
                drop(world);
                before == after
            }))
            .unwrap();
        assert!(frozen, "runtime B ran a task while stopped");
    });
}

#[test]
fn blocking_stop_inside_block_on_panics() {
    let rt = rt(1);
    let handle = rt.handle().clone();
    let done = AtomicBool::new(false);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let _world = handle.stop_the_world_blocking();
            done.store(true, SeqCst);
        })
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("block_on") && msg.contains("stop_the_world()"),
        "{msg}"
    );
    assert!(!done.load(SeqCst));
}

/// A `block_on` future that only yields is runnable all the time: like a
/// spawned task that only yields, it keeps the world from stopping, and the
/// timed-out request names it.
#[test]
fn a_yielding_block_on_future_keeps_the_world_running() {
    watchdog(Duration::from_secs(60), || {
        let rt = rt(2);
        let stop = Arc::new(AtomicBool::new(false));
        let requester = {
            let (h, stop) = (rt.handle().clone(), stop.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let result = h.stop_the_world_blocking_timeout(Duration::from_millis(100));
                stop.store(true, SeqCst);
                result.map(drop)
            })
        };
        rt.block_on(async {
            while !stop.load(SeqCst) {
                safepoint::task::yield_now().await;
            }
        });
        let err = requester
            .join()
            .unwrap()
            .expect_err("the world stopped while the block_on future was runnable");
        assert!(
            err.laggards()
                .iter()
                .any(|l| l.name.as_deref() == Some("block_on")),
            "{err}"
        );
    });
}

/// A task that holds the world and asks to stop it again would wait for
/// itself: it panics with a message instead of hanging.
#[test]
fn nested_stop_by_the_holder_panics() {
    watchdog(Duration::from_secs(30), || {
        let rt = rt(1);
        let h = rt.handle().clone();
        let err = rt
            .block_on(rt.spawn(async move {
                let _world = h.stop_the_world().await;
                let _again = h.stop_the_world().await;
            }))
            .unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("already holds"), "{err}");
        // The world was resumed when the panicking task dropped it.
        assert_eq!(rt.block_on(async { 1 }), 1);
    });
}
