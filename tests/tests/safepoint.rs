//! The safepoint protocol, one property per test: `safepoint()` outside a
//! runtime; stops of an idle runtime; a stop waits for busy tasks and
//! nothing is polled while the world is held; requesters in a task and in
//! `block_on` that await their own timer and socket while holding the
//! world; a stop that times out names its laggard and leaves the world
//! running (a yield loop waiting on a reader parked at its read: see
//! `convergence.rs`); dropped requests withdraw; dropping the runtime while stopped
//! or while a request is pending; `StopReport` and the stop metrics.
//!
//! "Polls" below is a per-test counter bumped at the start of every poll of
//! every task under test (see `safepoint_tests::Counted`): while the world
//! is held it must not move.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use safepoint::task::yield_now;
use safepoint::{safepoint, Handle, JoinHandle, Runtime};
use safepoint_tests::{rt, wait_until, watchdog, Counted, DropCounter};

const LIMIT: Duration = Duration::from_secs(60);

/// `n` counted tasks that loop through a safepoint and a yield until
/// `stop` is set.
fn spawn_busy(
    rt: &Runtime,
    n: usize,
    polls: &Arc<AtomicU64>,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<u64>> {
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            rt.spawn(Counted::new(polls, async move {
                let mut rounds = 0u64;
                while !stop.load(SeqCst) {
                    rounds += 1;
                    safepoint().await;
                    yield_now().await;
                }
                rounds
            }))
        })
        .collect()
}

/// Samples `polls` `samples` times, `gap` apart; panics if it moves.
fn assert_frozen(polls: &AtomicU64, samples: usize, gap: Duration, what: &str) {
    let p0 = polls.load(SeqCst);
    for i in 0..samples {
        std::thread::sleep(gap);
        let p = polls.load(SeqCst);
        assert_eq!(
            p,
            p0,
            "{what}: {} polls while the world was stopped (sample {i})",
            p - p0
        );
    }
}

/// Waits until `polls` moves by `by`: the world is running.
fn assert_progress(polls: &AtomicU64, by: u64, what: &str) {
    let p0 = polls.load(SeqCst);
    assert!(
        wait_until(Duration::from_secs(10), || polls.load(SeqCst) >= p0 + by),
        "{what}: tasks made no progress ({} polls)",
        polls.load(SeqCst) - p0
    );
}

fn finish(rt: &Runtime, stop: &AtomicBool, hs: Vec<JoinHandle<u64>>) {
    stop.store(true, SeqCst);
    for h in hs {
        rt.block_on(h).unwrap();
    }
}

#[test]
fn safepoint_outside_a_runtime_is_a_no_op() {
    watchdog(LIMIT, || {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut sp = std::pin::pin!(safepoint());
        assert_eq!(sp.as_mut().poll(&mut cx), Poll::Ready(()));
        // Also while another runtime holds its world stopped (the slow path
        // of safepoint() runs then), and for tasks of a third runtime.
        let a = rt(2);
        let b = rt(2);
        let polls_b = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&b, 2, &polls_b, &stop);
        let world = a.handle().stop_the_world_blocking();
        let mut sp = std::pin::pin!(safepoint());
        assert_eq!(sp.as_mut().poll(&mut cx), Poll::Ready(()));
        let start = Instant::now();
        futures::executor::block_on(async {
            for _ in 0..1000 {
                safepoint().await;
            }
        });
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_progress(
            &polls_b,
            1000,
            "a stop of runtime a must not hold runtime b",
        );
        drop(world);
        finish(&b, &stop, hs);
    });
}

#[test]
fn stop_on_an_idle_runtime_returns_quickly() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        rt.run_until_blocked();
        let start = Instant::now();
        for _ in 0..100 {
            let t = Instant::now();
            let world = rt.handle().stop_the_world_blocking();
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "an idle stop took {:?}",
                t.elapsed()
            );
            assert!(world.report().time_to_stop < Duration::from_millis(500));
            assert_eq!(world.report().tasks, 0);
            assert_eq!(world.report().workers, 4);
            world.resume();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "100 idle stops took {:?}",
            start.elapsed()
        );
        assert_eq!(rt.metrics().stops, 100);
        // The runtime runs normally afterwards.
        assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    });
}

#[test]
fn stop_waits_for_busy_tasks_and_nothing_is_polled_while_stopped() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut hs = spawn_busy(&rt, 8, &polls, &stop);
        // One task in a long blocking poll: the stop must wait for it.
        let long_started = Arc::new(AtomicBool::new(false));
        let long_done = Arc::new(AtomicBool::new(false));
        let (ls, ld, st) = (long_started.clone(), long_done.clone(), stop.clone());
        hs.push(rt.spawn(Counted::new(&polls, async move {
            ls.store(true, SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            ld.store(true, SeqCst);
            while !st.load(SeqCst) {
                safepoint().await;
                yield_now().await;
            }
            0
        })));
        assert!(wait_until(Duration::from_secs(10), || long_started.load(SeqCst)));
        assert_progress(&polls, 100, "before the stops");
        let world = rt.handle().stop_the_world_blocking();
        assert!(
            long_done.load(SeqCst),
            "the world stopped while a task was still in a poll"
        );
        assert_frozen(&polls, 5, Duration::from_millis(10), "first stop");
        let r = world.report();
        assert_eq!((r.tasks, r.at_safepoint, r.blocked), (9, 9, 0), "{r:?}");
        world.resume();
        for round in 0..20 {
            assert_progress(&polls, 50, "after a resume");
            let world = rt.handle().stop_the_world_blocking();
            assert_frozen(
                &polls,
                3,
                Duration::from_millis(2),
                &format!("round {round}"),
            );
            assert_eq!(world.report().at_safepoint, 9, "{:?}", world.report());
            drop(world);
        }
        finish(&rt, &stop, hs);
    });
}

/// What a requester checks while it holds the world: it may run (yield,
/// pass its own safepoints, await a timer and loopback I/O) and nobody else
/// is polled.
async fn while_holding_the_world(polls: &AtomicU64) {
    let p0 = polls.load(SeqCst);
    safepoint().await; // the requester runs through its own safepoints
    yield_now().await;
    safepoint::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(polls.load(SeqCst), p0, "polled while the requester slept");
    std::thread::sleep(Duration::from_millis(3));
    let listener = safepoint::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, connected) =
        futures::join!(listener.accept(), safepoint::net::TcpStream::connect(addr));
    let (mut server, _) = accepted.unwrap();
    let mut client = connected.unwrap();
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    let timed =
        safepoint::time::timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
    assert!(timed.is_err());
    assert_eq!(
        polls.load(SeqCst),
        p0,
        "polled while the requester held the world"
    );
}

#[test]
fn requester_task_holds_the_world_and_awaits_its_own_timer_and_io() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&rt, 8, &polls, &stop);
        for _ in 0..10 {
            assert_progress(&polls, 50, "between stops");
            let p = polls.clone();
            // The report comes back on a std channel: a block_on future
            // started after the spawn may or may not exist at the stop.
            let (tx, rx) = std::sync::mpsc::channel();
            let requester = rt.spawn(async move {
                let world = Handle::current().stop_the_world().await;
                while_holding_the_world(&p).await;
                tx.send(world.report().clone()).unwrap();
                world.resume();
            });
            let r = rx.recv_timeout(Duration::from_secs(20)).unwrap();
            assert_eq!(
                (r.tasks, r.at_safepoint, r.blocked),
                (9, 8, 0),
                "8 busy at safepoints + the requester: {r:?}"
            );
            rt.block_on(requester).unwrap();
        }
        finish(&rt, &stop, hs);
    });
}

#[test]
fn requester_in_block_on_holds_the_world_and_awaits_its_own_timer_and_io() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&rt, 8, &polls, &stop);
        for _ in 0..10 {
            assert_progress(&polls, 50, "between stops");
            let r = rt.block_on(async {
                let world = Handle::current().stop_the_world().await;
                while_holding_the_world(&polls).await;
                let r = world.report().clone();
                drop(world);
                r
            });
            assert_eq!((r.tasks, r.at_safepoint, r.blocked), (9, 8, 0), "{r:?}");
        }
        finish(&rt, &stop, hs);
    });
}

#[test]
fn stop_timeout_names_the_laggard_and_the_world_keeps_running() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&rt, 4, &polls, &stop);
        let line = line!();
        let spinner = safepoint::task::Builder::new()
            .name("never-at-a-safepoint")
            .spawn_on(
                async {
                    loop {
                        yield_now().await;
                    }
                },
                rt.handle(),
            )
            .unwrap();
        assert_progress(&polls, 50, "before the stop");
        for blocking in [false, true] {
            let timeout = Duration::from_millis(150);
            let err = if blocking {
                rt.handle()
                    .stop_the_world_blocking_timeout(timeout)
                    .unwrap_err()
            } else {
                rt.block_on(rt.handle().stop_the_world_timeout(timeout))
                    .unwrap_err()
            };
            assert!(err.waited() >= timeout, "{err}");
            let l = err
                .laggards()
                .iter()
                .find(|l| l.id == spinner.id())
                .unwrap_or_else(|| panic!("the spinner is not named in: {err}"));
            assert_eq!(l.name.as_deref(), Some("never-at-a-safepoint"));
            let (file, rest) = l.location.split_once(".rs:").unwrap();
            assert!(file.ends_with("safepoint"), "location {}", l.location);
            let got: u32 = rest.split(':').next().unwrap().parse().unwrap();
            assert!(
                (line + 1..=line + 3).contains(&got),
                "location {} (line {line})",
                l.location
            );
            assert!(l.runnable_for > Duration::ZERO);
            assert!(err.to_string().contains("never-at-a-safepoint"), "{err}");
            // The request was withdrawn: tasks parked at safepoints run again.
            assert_progress(&polls, 200, "after a timed-out stop");
        }
        assert_eq!(rt.metrics().stops, 0, "timed-out requests are not stops");
        // With the spinner gone the world stops as usual.
        spinner.abort();
        assert!(rt.block_on(spinner).unwrap_err().is_cancelled());
        let world = rt
            .handle()
            .stop_the_world_blocking_timeout(Duration::from_secs(20))
            .expect("nothing keeps the world running any more");
        assert_frozen(&polls, 3, Duration::from_millis(5), "after the timeouts");
        drop(world);
        assert_eq!(rt.metrics().stops, 1);
        finish(&rt, &stop, hs);
    });
}

#[test]
fn dropping_a_pending_stop_request_withdraws_it() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&rt, 4, &polls, &stop);
        let spinner = rt.spawn(async {
            loop {
                yield_now().await;
            }
        });
        // An active request dropped by a timeout.
        for _ in 0..5 {
            let r = rt.block_on(async {
                safepoint::time::timeout(Duration::from_millis(30), rt.handle().stop_the_world())
                    .await
            });
            assert!(r.is_err(), "the spinner keeps the world from stopping");
            assert_progress(&polls, 200, "after a dropped request");
        }
        // A request dropped before its first poll files nothing.
        drop(rt.handle().stop_the_world());
        spinner.abort();
        let _ = rt.block_on(spinner);
        // Queued requests (another requester holds the world) that give up
        // while they wait: a blocking one that times out, and a future
        // polled once (filed) and dropped. Tasks cannot file one now: none
        // is polled while the world is held.
        let world = rt.handle().stop_the_world_blocking();
        let h = rt.handle().clone();
        let timed_out = std::thread::spawn(move || {
            h.stop_the_world_blocking_timeout(Duration::from_millis(30))
        })
        .join()
        .unwrap();
        let err = timed_out.expect_err("queued behind a held world");
        assert!(
            err.laggards().is_empty(),
            "a queued request has no laggards: {err}"
        );
        let waker = futures::task::noop_waker();
        let mut filed = Box::pin(rt.handle().stop_the_world());
        assert!(filed
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(filed);
        assert_frozen(
            &polls,
            2,
            Duration::from_millis(5),
            "holding while requests queue and leave",
        );
        drop(world);
        // Nothing is left behind: stops keep working and tasks keep running.
        assert_progress(&polls, 200, "after the queued request");
        let world = rt
            .handle()
            .stop_the_world_blocking_timeout(Duration::from_secs(20))
            .expect("no stale request holds the barrier");
        drop(world);
        assert_progress(&polls, 200, "at the end");
        finish(&rt, &stop, hs);
    });
}

#[test]
fn dropping_the_runtime_while_the_world_is_stopped() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let drops = DropCounter::new();
        let polls = Arc::new(AtomicU64::new(0));
        for _ in 0..8 {
            let t = drops.token();
            rt.spawn(Counted::new(&polls, async move {
                let _t = t;
                loop {
                    safepoint().await;
                    yield_now().await;
                }
            }));
        }
        for _ in 0..8 {
            let t = drops.token();
            rt.spawn(async move {
                let _t = t;
                std::future::pending::<()>().await;
            });
        }
        assert_progress(&polls, 100, "before the stop");
        let world = rt.handle().stop_the_world_blocking();
        assert_eq!(world.report().at_safepoint, 8);
        drop(rt);
        assert_eq!(drops.dropped(), 16, "every task is dropped at shutdown");
        // Resuming a world whose runtime is gone is harmless.
        world.resume();
    });
}

#[test]
fn dropping_the_runtime_while_a_stop_request_is_pending() {
    watchdog(LIMIT, || {
        for blocking_timeout in [false, true] {
            let rt = rt(2);
            let drops = DropCounter::new();
            let t = drops.token();
            let running = Arc::new(AtomicBool::new(false));
            let r = running.clone();
            rt.spawn(async move {
                let _t = t;
                loop {
                    r.store(true, SeqCst);
                    yield_now().await;
                }
            });
            assert!(wait_until(Duration::from_secs(10), || running.load(SeqCst)));
            let h = rt.handle().clone();
            let requester = std::thread::spawn(move || {
                if blocking_timeout {
                    h.stop_the_world_blocking_timeout(Duration::from_secs(30))
                        .map(drop)
                        .is_ok()
                } else {
                    drop(h.stop_the_world_blocking());
                    true
                }
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !requester.is_finished(),
                "the spinner keeps the world running"
            );
            let start = Instant::now();
            drop(rt);
            assert_eq!(drops.dropped(), 1);
            // The pending requester is not left hanging by the shutdown.
            assert!(
                wait_until(Duration::from_secs(10), || requester.is_finished()),
                "a stop request pending at shutdown never returned"
            );
            let _ = requester.join().unwrap();
            assert!(start.elapsed() < Duration::from_secs(10));
        }
    });
}

#[test]
fn stop_report_counts_tasks_at_safepoints_and_blocked() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&rt, 10, &polls, &stop);
        let mut senders = Vec::new();
        let mut blocked = Vec::new();
        for i in 0..5u32 {
            let (tx, rx) = futures::channel::oneshot::channel::<u32>();
            senders.push(tx);
            blocked.push(rt.spawn(async move { rx.await.unwrap() + i }));
        }
        assert_progress(&polls, 100, "before the stops");
        for _ in 0..5 {
            let world = rt.handle().stop_the_world_blocking();
            let r = world.report().clone();
            assert_eq!(
                (r.tasks, r.at_safepoint, r.blocked, r.workers),
                (15, 10, 5, 4),
                "{r:?}"
            );
            assert!(r.time_to_stop < Duration::from_secs(10));
            drop(world);
            assert_progress(&polls, 20, "between stops");
        }
        // From a task: the requester counts as a task, neither parked nor
        // blocked. The result comes back on a std channel so that no
        // block_on future is counted.
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            let world = Handle::current().stop_the_world().await;
            tx.send(world.report().clone()).unwrap();
        });
        let r = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!((r.tasks, r.at_safepoint, r.blocked), (16, 10, 5), "{r:?}");
        for (i, tx) in senders.into_iter().enumerate() {
            tx.send(100).unwrap();
            let _ = i;
        }
        for (i, h) in blocked.into_iter().enumerate() {
            assert_eq!(rt.block_on(h).unwrap(), 100 + i as u32);
        }
        finish(&rt, &stop, hs);
    });
}

#[test]
fn metrics_count_stops_and_time_to_safepoint() {
    watchdog(LIMIT, || {
        let rt = rt(4);
        let m = rt.metrics();
        assert_eq!(
            (m.stops, m.ttsp_p50, m.ttsp_p99),
            (0, Duration::ZERO, Duration::ZERO)
        );
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&rt, 4, &polls, &stop);
        let mut ttsps = Vec::new();
        for _ in 0..30 {
            assert_progress(&polls, 10, "between stops");
            let world = rt.handle().stop_the_world_blocking();
            ttsps.push(world.report().time_to_stop);
            std::thread::sleep(Duration::from_millis(1));
            drop(world);
        }
        let m = rt.metrics();
        assert_eq!(m.stops, 30, "{m:?}");
        assert!(m.ttsp_max > Duration::ZERO, "{m:?}");
        assert!(
            m.ttsp_p50 <= m.ttsp_p99 && m.ttsp_p99 <= m.ttsp_max,
            "{m:?}"
        );
        assert_eq!(m.ttsp_max, *ttsps.iter().max().unwrap(), "{m:?}");
        assert!(m.stopped_total >= Duration::from_millis(30), "{m:?}");
        finish(&rt, &stop, hs);
    });
}

/// A requester task that, while it holds the world, awaits wakes that come
/// from other threads (blocking-pool jobs, a channel fed by a plain
/// thread). Two workers: with one, the lost-wake bug that the ignored
/// ping-pong test below reproduces makes this hang now and then.
#[test]
fn requester_woken_from_another_thread_while_holding_the_world() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hs = spawn_busy(&rt, 2, &polls, &stop);
        let (tx, mut rx) = futures::channel::mpsc::unbounded::<u32>();
        let feeder = std::thread::spawn(move || {
            for i in 0..500 {
                if tx.unbounded_send(i).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        let p = polls.clone();
        let requester = rt.spawn(async move {
            let world = Handle::current().stop_the_world().await;
            let p0 = p.load(SeqCst);
            for i in 0..500u32 {
                let v = safepoint::spawn_blocking(move || i * 2).await.unwrap();
                assert_eq!(v, i * 2);
            }
            for i in 0..500u32 {
                assert_eq!(futures::StreamExt::next(&mut rx).await, Some(i));
            }
            assert_eq!(
                p.load(SeqCst),
                p0,
                "polled while the requester held the world"
            );
            drop(world);
        });
        rt.block_on(requester).unwrap();
        feeder.join().unwrap();
        finish(&rt, &stop, hs);
    });
}

/// Ping-pong between a requester task holding the world and a plain
/// thread, with the reply's timing jittered by a few microseconds so that
/// it lands anywhere in the worker's path from the requester's poll to its
/// park, on a one-worker runtime.
///
/// Fails about one run in three (stalls, so the watchdog fires after 30 s).
#[test]
fn requester_ping_pong_with_a_thread_while_holding_the_world() {
    watchdog(LIMIT, || {
        const ROUNDS: u64 = 50_000;
        let rt = rt(1);
        let (to_thread, from_task) = std::sync::mpsc::channel::<u64>();
        let (to_task, mut from_thread) = futures::channel::mpsc::unbounded::<u64>();
        let echo = std::thread::spawn(move || {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            while let Ok(v) = from_task.recv() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let spin = Instant::now();
                while spin.elapsed() < Duration::from_nanos(rng % 4000) {
                    std::hint::spin_loop();
                }
                if to_task.unbounded_send(v + 1).is_err() {
                    break;
                }
            }
        });
        let progress = Arc::new(AtomicU64::new(0));
        let pr = progress.clone();
        let requester = rt.spawn(async move {
            let world = Handle::current().stop_the_world().await;
            for i in 0..ROUNDS {
                to_thread.send(i).unwrap();
                let v = futures::StreamExt::next(&mut from_thread).await;
                assert_eq!(v, Some(i + 1));
                pr.store(i + 1, SeqCst);
            }
            drop(world);
        });
        let done = wait_until(Duration::from_secs(30), || requester.is_finished());
        assert!(
            done,
            "the requester stalled after {} of {ROUNDS} round trips: a wake of the \
             requester while the world is stopped was lost",
            progress.load(SeqCst)
        );
        rt.block_on(requester).unwrap();
        echo.join().unwrap();
    });
}
