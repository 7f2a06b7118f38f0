//! Quiescence: `run_until_blocked` returns exactly when every task is
//! blocked or finished (the asyncio testing pattern "run the loop until
//! every task is blocked": a task waiting on an event, poke it from the
//! test, run again), never while a task is runnable;
//! `task::wait_all_blocked().await` from a task and from `block_on`; a
//! pipeline driven one message at a time; misuse on a worker panics.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use safepoint::task::yield_now;
use safepoint_tests::{panic_message, rt, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn seed_scenario_wait_on_event_then_set_it() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let printed = Arc::new(Mutex::new(Vec::<&'static str>::new()));
        let (event, wait) = futures::channel::oneshot::channel::<()>();
        let p = printed.clone();
        let task = rt.spawn(async move {
            p.lock().unwrap().push("waiting");
            wait.await.unwrap();
            p.lock().unwrap().push("done");
            42
        });
        rt.run_until_blocked();
        assert_eq!(*printed.lock().unwrap(), ["waiting"]);
        assert!(!task.is_finished());
        // Still blocked, however long we wait.
        std::thread::sleep(Duration::from_millis(20));
        rt.run_until_blocked();
        assert_eq!(*printed.lock().unwrap(), ["waiting"]);
        event.send(()).unwrap();
        rt.run_until_blocked();
        assert_eq!(*printed.lock().unwrap(), ["waiting", "done"]);
        assert!(task.is_finished());
        assert_eq!(rt.block_on(task).unwrap(), 42);
        // On an idle runtime it returns at once.
        rt.run_until_blocked();
    });
}

#[test]
fn run_until_blocked_never_returns_while_a_task_is_runnable() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        for round in 0..20 {
            let flags: Vec<_> = (0..4).map(|_| Arc::new(AtomicBool::new(false))).collect();
            for (i, flag) in flags.iter().enumerate() {
                let flag = flag.clone();
                rt.spawn(async move {
                    // Yield a lot, spawn a child that yields too, then set
                    // the flag: all runnable work, never blocked.
                    for _ in 0..10_000 / (i + 1) {
                        yield_now().await;
                    }
                    let child = safepoint::spawn(async {
                        for _ in 0..100 {
                            yield_now().await;
                        }
                    });
                    child.await.unwrap();
                    flag.store(true, SeqCst);
                });
            }
            rt.run_until_blocked();
            for (i, f) in flags.iter().enumerate() {
                assert!(f.load(SeqCst), "round {round}: task {i} was still runnable");
            }
            assert_eq!(rt.metrics().live_tasks, 0);
        }
        // A sleeping task is blocked: run_until_blocked does not wait for it.
        let woke = Arc::new(AtomicBool::new(false));
        let w = woke.clone();
        rt.spawn(async move {
            safepoint::time::sleep(Duration::from_millis(100)).await;
            w.store(true, SeqCst);
        });
        rt.run_until_blocked();
        assert!(!woke.load(SeqCst), "a sleeping task counts as blocked");
        std::thread::sleep(Duration::from_millis(150));
        rt.run_until_blocked();
        assert!(woke.load(SeqCst));
    });
}

#[test]
fn pipeline_driven_one_message_at_a_time() {
    watchdog(LIMIT, || {
        const STAGES: usize = 100;
        const ROUNDS: usize = 200;
        let rt = rt(4);
        let (head, mut rx) = futures::channel::mpsc::unbounded::<usize>();
        // A chain of tasks, each forwarding to the next after a yield.
        for _ in 0..STAGES {
            let (tx, next_rx) = futures::channel::mpsc::unbounded::<usize>();
            let mut my_rx = std::mem::replace(&mut rx, next_rx);
            rt.spawn(async move {
                while let Some(v) = my_rx.next().await {
                    yield_now().await;
                    tx.unbounded_send(v + 1).unwrap();
                }
            });
        }
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        rt.spawn(async move {
            while let Some(v) = rx.next().await {
                o.lock().unwrap().push(v);
            }
        });
        for round in 0..ROUNDS {
            head.unbounded_send(round).unwrap();
            rt.run_until_blocked();
            let got = out.lock().unwrap().clone();
            assert_eq!(
                got.len(),
                round + 1,
                "round {round}: the message is still in flight"
            );
            assert_eq!(got[round], round + STAGES);
        }
        drop(head);
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 0);
    });
}

#[test]
fn wait_all_blocked_from_a_task_and_from_block_on() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let reached = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        for i in 0..10 {
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            senders.push(tx);
            let r = reached.clone();
            rt.spawn(async move {
                for _ in 0..(i * 100) {
                    yield_now().await;
                }
                r.fetch_add(1, SeqCst);
                let _ = rx.await;
            });
        }
        // From a spawned task: it is itself blocked while it waits.
        let r = reached.clone();
        let seen = rt
            .block_on(rt.spawn(async move {
                safepoint::task::wait_all_blocked().await;
                r.load(SeqCst)
            }))
            .unwrap();
        assert_eq!(
            seen, 10,
            "wait_all_blocked returned while tasks were runnable"
        );
        // From block_on: wake half of them and wait again.
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        rt.block_on(async {
            for tx in senders.drain(..5) {
                tx.send(()).unwrap();
            }
            for _ in 0..50 {
                let d = d.clone();
                safepoint::spawn(async move {
                    for _ in 0..100 {
                        yield_now().await;
                    }
                    d.fetch_add(1, SeqCst);
                });
            }
            safepoint::task::wait_all_blocked().await;
            assert_eq!(d.load(SeqCst), 50);
        });
        assert_eq!(done.load(SeqCst), 50);
        assert_eq!(
            rt.metrics().live_tasks,
            5,
            "five still wait on their channel"
        );
        drop(senders);
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 0);
    });
}

#[test]
fn run_until_blocked_on_a_worker_panics() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let h = rt.handle().clone();
        let err = rt
            .block_on(rt.spawn(async move { h.run_until_blocked() }))
            .unwrap_err();
        assert!(err.is_panic());
        let msg = panic_message(&*err.into_panic());
        assert!(msg.contains("worker"), "{msg}");
        assert!(msg.contains("wait_all_blocked"), "{msg}");
        // Inside block_on it is refused as well (it would wait for itself).
        let h = rt.handle().clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async { h.run_until_blocked() })
        }));
        let msg = panic_message(&*r.unwrap_err());
        assert!(msg.contains("block_on"), "{msg}");
        rt.run_until_blocked();
    });
}
