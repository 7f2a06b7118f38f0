//! `task::LocalSet` and `spawn_local`: `!Send` tasks run inside the poll of
//! whatever drives the set, on its thread; they are woken from other
//! threads (a real socket, a timer, a std thread); awaiting the set runs
//! its tasks to completion; dropping it drops them; `spawn_local` outside a
//! set panics naming `LocalSet`. For stops they count as the driving task:
//! a stop completes while every local task is blocked, and a local task at
//! `safepoint().await` parks the driver (nothing runs until the resume).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use safepoint::task::{spawn_local, JoinSet, LocalSet};
use safepoint_tests::{panic_message, rt, wait_until, watchdog, DropFlag};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn spawn_local_outside_a_local_set_panics_naming_local_set() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                drop(spawn_local(async {}));
            })
        }))
        .unwrap_err();
        let msg = panic_message(&*err);
        assert!(msg.contains("LocalSet"), "{msg}");
    });
}

#[test]
fn local_tasks_share_rc_state_and_run_on_the_driving_thread() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let local = LocalSet::new();
        let me = std::thread::current().id();
        let log = Rc::new(RefCell::new(Vec::new()));
        let out = local.block_on(&rt, async {
            let mut handles = Vec::new();
            for i in 0..10 {
                let log = log.clone();
                handles.push(spawn_local(async move {
                    safepoint::time::sleep(Duration::from_millis(10 - i)).await;
                    assert_eq!(std::thread::current().id(), me);
                    // A local task spawning another.
                    let log2 = log.clone();
                    spawn_local(async move { log2.borrow_mut().push(100 + i) })
                        .await
                        .unwrap();
                    log.borrow_mut().push(i);
                    i
                }));
            }
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(out, 45);
        let mut log = log.borrow().clone();
        log.sort();
        assert_eq!(log.len(), 20);
        let expected: Vec<u64> = (0..10).chain(100..110).collect();
        assert_eq!(log, expected);
    });
}

#[test]
fn a_local_task_does_tcp_io_woken_by_the_reactor() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let local = LocalSet::new();
        local.block_on(&rt, async {
            let listener = safepoint::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            // The server is an ordinary task on the workers.
            let server = safepoint::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            });
            let seen = Rc::new(Cell::new(0usize)); // not Send
            let s2 = seen.clone();
            let client = spawn_local(async move {
                let mut c = safepoint::net::TcpStream::connect(addr).await.unwrap();
                c.write_all(b"hello").await.unwrap();
                let mut buf = [0u8; 5];
                c.read_exact(&mut buf).await.unwrap();
                s2.set(buf.len());
                buf
            });
            assert_eq!(&client.await.unwrap(), b"hello");
            assert_eq!(seen.get(), 5);
            server.await.unwrap();
        });
    });
}

#[test]
fn awaiting_the_set_runs_every_task_to_completion() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let local = LocalSet::new();
        let count = Rc::new(Cell::new(0));
        for _ in 0..5 {
            let count = count.clone();
            local.spawn_local(async move {
                safepoint::time::sleep(Duration::from_millis(5)).await;
                count.set(count.get() + 1);
                let count = count.clone();
                // Spawned while the set is being awaited: awaited too.
                spawn_local(async move {
                    safepoint::task::yield_now().await;
                    count.set(count.get() + 10);
                });
            });
        }
        rt.block_on(local);
        assert_eq!(count.get(), 55);
    });
}

#[test]
fn a_wake_from_another_thread_runs_the_local_task() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let local = LocalSet::new();
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let out = local.block_on(&rt, async move {
            let h = spawn_local(async move { rx.await.unwrap() * 2 });
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send(21).unwrap();
            });
            h.await.unwrap()
        });
        assert_eq!(out, 42);
    });
}

#[test]
fn dropping_the_set_drops_its_tasks_and_abort_works() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let flag = DropFlag::new();
        let aborted = DropFlag::new();
        let local = LocalSet::new();
        let (stuck, abort_me) = local.block_on(&rt, async {
            let g = flag.guard();
            let not_send = Rc::new(());
            let stuck = spawn_local(async move {
                let _g = g;
                let _rc = not_send;
                std::future::pending::<()>().await
            });
            let g = aborted.guard();
            let abort_me = spawn_local(async move {
                let _g = g;
                std::future::pending::<()>().await
            });
            safepoint::task::yield_now().await; // both started
            abort_me.abort();
            (stuck, abort_me)
        });
        assert!(!flag.is_dropped());
        // The aborted task's future is dropped when the set next runs (or
        // with the set).
        drop(local);
        assert!(flag.is_dropped());
        assert!(aborted.is_dropped());
        assert!(rt.block_on(stuck).unwrap_err().is_cancelled());
        assert!(rt.block_on(abort_me).unwrap_err().is_cancelled());
    });
}

#[test]
fn join_set_spawn_local() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let local = LocalSet::new();
        local.block_on(&rt, async {
            let mut set = JoinSet::new();
            let rc = Rc::new(3);
            for i in 0..3 {
                let rc = rc.clone();
                set.spawn_local(async move { *rc + i });
            }
            let mut all = set.join_all().await;
            all.sort();
            assert_eq!(all, [3, 4, 5]);
        });
    });
}

#[test]
fn a_stop_completes_while_the_local_tasks_are_blocked() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let handle = rt.handle().clone();
        let local = LocalSet::new();
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let blocked = Arc::new(AtomicBool::new(false));
        let b = blocked.clone();
        let stopper = std::thread::spawn(move || {
            assert!(wait_until(Duration::from_secs(10), || b.load(SeqCst)));
            let world = handle.stop_the_world_blocking_timeout(Duration::from_secs(10));
            let world = world.expect("the stop completes while local tasks are blocked");
            tx.send(5).unwrap(); // a wake during the stop: kept for the resume
            world.resume();
        });
        let out = local.block_on(&rt, async move {
            let h = spawn_local(async move {
                let rc = Rc::new(2); // keeps the task !Send
                rx.await.unwrap() * *rc
            });
            blocked.store(true, SeqCst);
            h.await.unwrap()
        });
        stopper.join().unwrap();
        assert_eq!(out, 10);
    });
}

#[test]
fn a_local_task_at_its_safepoint_parks_the_driving_task() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let handle = rt.handle().clone();
        let local = LocalSet::new();
        let counter = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (c, d) = (counter.clone(), done.clone());
        let stopper = std::thread::spawn(move || {
            assert!(wait_until(Duration::from_secs(10), || c.load(SeqCst) > 100));
            let world = handle
                .stop_the_world_blocking_timeout(Duration::from_secs(10))
                .expect("a local task at a safepoint lets the world stop");
            let frozen = c.load(SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(c.load(SeqCst), frozen, "a local task ran during the stop");
            let report = world.report().clone();
            world.resume();
            assert!(wait_until(Duration::from_secs(10), || c.load(SeqCst) > frozen));
            d.store(true, SeqCst);
            report
        });
        local.block_on(&rt, async move {
            let rc = Rc::new(Cell::new(0u64)); // !Send state
            let spinner = spawn_local(async move {
                while !done.load(SeqCst) {
                    rc.set(rc.get() + 1);
                    counter.fetch_add(1, SeqCst);
                    safepoint::safepoint().await;
                    safepoint::task::yield_now().await;
                }
                rc.get()
            });
            assert!(spinner.await.unwrap() > 0);
        });
        let report = stopper.join().unwrap();
        assert!(
            report.at_safepoint >= 1,
            "the driving task parked at the local task's safepoint: {report:?}"
        );
    });
}

#[test]
fn local_tasks_on_the_deterministic_flavour_use_virtual_time() {
    watchdog(LIMIT, || {
        let run = |seed| {
            let rt = safepoint::Builder::new_deterministic(seed).build().unwrap();
            let local = LocalSet::new();
            let log = Rc::new(RefCell::new(Vec::new()));
            let start = std::time::Instant::now();
            local.block_on(&rt, async {
                let mut handles = Vec::new();
                for i in 0..4u64 {
                    let log = log.clone();
                    handles.push(spawn_local(async move {
                        safepoint::time::sleep(Duration::from_secs(3600 * (4 - i))).await;
                        log.borrow_mut().push(i);
                    }));
                }
                for h in handles {
                    h.await.unwrap();
                }
            });
            assert!(start.elapsed() < Duration::from_secs(10), "virtual time");
            let out = log.borrow().clone();
            out
        };
        assert_eq!(run(1), [3, 2, 1, 0]);
        assert_eq!(run(2), [3, 2, 1, 0]);
    });
}

/// Counts in `count` and passes a safepoint, until `done`; returns its
/// own count.
async fn spin_through_safepoints(count: Arc<AtomicU64>, done: Arc<AtomicBool>) -> u64 {
    let mut n = 0u64;
    while !done.load(SeqCst) {
        count.fetch_add(1, SeqCst);
        n += 1;
        safepoint::safepoint().await;
        safepoint::task::yield_now().await;
    }
    n
}

#[test]
fn hundreds_of_stops_while_local_and_join_set_tasks_run() {
    // Local tasks on the block_on thread and JoinSet tasks on the workers,
    // all looping through safepoints; another thread stops the world 300
    // times. Every stop completes, nothing moves while stopped, and every
    // task finishes.
    watchdog(LIMIT, || {
        let rt = rt(2);
        let handle = rt.handle().clone();
        let local = LocalSet::new();
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (c, d) = (count.clone(), done.clone());
        let stopper = std::thread::spawn(move || {
            for _ in 0..300 {
                let world = handle
                    .stop_the_world_blocking_timeout(Duration::from_secs(10))
                    .expect("every stop completes");
                let frozen = c.load(SeqCst);
                std::thread::sleep(Duration::from_micros(200));
                assert_eq!(c.load(SeqCst), frozen, "a task ran during a stop");
                world.resume();
                std::thread::sleep(Duration::from_micros(300));
            }
            d.store(true, SeqCst);
        });
        let total = local.block_on(&rt, async move {
            let mut set = JoinSet::new();
            for _ in 0..8 {
                let rc = Rc::new(());
                let body = spin_through_safepoints(count.clone(), done.clone());
                set.spawn_local(async move {
                    let _not_send = rc;
                    body.await
                });
                set.spawn(spin_through_safepoints(count.clone(), done.clone()));
            }
            let all = set.join_all().await;
            assert_eq!(all.len(), 16);
            all.into_iter().sum::<u64>()
        });
        stopper.join().unwrap();
        assert!(total > 0);
    });
}
