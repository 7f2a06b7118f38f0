//! Stress of the safepoint protocol under load: 2 000 tasks mixing
//! safepoints, yields, timers and channel ping-pong while an outside thread
//! stops the world 500 times (polls frozen at every stop, no message lost,
//! every task completes); 4 requester threads plus a requester task that
//! never hold the world together; 1 000 tasks woken while the world is
//! stopped (channels, timers, sockets, remote spawns) run after the resume
//! and not one before.
//!
//! Counts: the full counts of the issue run by default (they fit the time
//! budget in debug builds on 2 cores); `SAFEPOINT_STRESS_STOPS` overrides
//! the number of stops for longer soak runs.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use safepoint::task::yield_now;
use safepoint::{safepoint, Handle};
use safepoint_tests::{rt, wait_until, watchdog, Counted};

const LIMIT: Duration = Duration::from_secs(120);

fn stops_wanted() -> usize {
    std::env::var("SAFEPOINT_STRESS_STOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// A tiny xorshift, so each task mixes its steps differently.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One step of mixed work: a safepoint, a yield, a 0-2 ms sleep, or both a
/// safepoint and a yield.
async fn mixed_step(rng: &mut Rng) {
    match rng.next() % 4 {
        0 => safepoint().await,
        1 => yield_now().await,
        2 => safepoint::time::sleep(Duration::from_millis(rng.next() % 3)).await,
        _ => {
            safepoint().await;
            yield_now().await;
        }
    }
}

#[test]
fn thousands_of_stops_under_mixed_load() {
    watchdog(LIMIT, || {
        const PAIRS: usize = 1000; // 2 000 tasks
        const MIN_ROUNDS: u64 = 5;
        let stops = stops_wanted();
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicUsize::new(0));
        let mut pingers = Vec::new();
        let mut pongers = Vec::new();
        for p in 0..PAIRS {
            let (to_pong, mut pong_rx) = futures::channel::mpsc::unbounded::<u64>();
            let (to_ping, mut ping_rx) = futures::channel::mpsc::unbounded::<u64>();
            let (done, fin) = (done.clone(), finished.clone());
            pingers.push(rt.spawn(Counted::new(&polls, async move {
                let mut rng = Rng(p as u64 * 2 + 1);
                let mut i = 0u64;
                loop {
                    mixed_step(&mut rng).await;
                    to_pong.unbounded_send(i).unwrap();
                    let reply = ping_rx.next().await.expect("the ponger hung up");
                    assert_eq!(reply, i + 1, "pair {p}: wrong reply");
                    i += 1;
                    if i >= MIN_ROUNDS && done.load(SeqCst) {
                        break;
                    }
                }
                fin.fetch_add(1, SeqCst);
                i
            })));
            let fin = finished.clone();
            pongers.push(rt.spawn(Counted::new(&polls, async move {
                let mut rng = Rng(p as u64 * 2 + 2);
                let mut n = 0u64;
                while let Some(v) = pong_rx.next().await {
                    mixed_step(&mut rng).await;
                    to_ping.unbounded_send(v + 1).unwrap();
                    n += 1;
                }
                fin.fetch_add(1, SeqCst);
                n
            })));
        }
        let handle = rt.handle().clone();
        let (p, fin) = (polls.clone(), finished.clone());
        let stopper = std::thread::spawn(move || {
            let start = Instant::now();
            let mut ttsp_max = Duration::ZERO;
            for s in 0..stops {
                let world = handle.stop_the_world_blocking();
                let before = p.load(SeqCst);
                let fin_before = fin.load(SeqCst);
                ttsp_max = ttsp_max.max(world.report().time_to_stop);
                for _ in 0..3 {
                    std::thread::sleep(Duration::from_micros(50));
                    assert_eq!(
                        p.load(SeqCst),
                        before,
                        "stop {s}: a task was polled while stopped"
                    );
                }
                assert_eq!(
                    fin.load(SeqCst),
                    fin_before,
                    "stop {s}: a task finished while stopped"
                );
                let r = world.report();
                assert!(r.tasks <= 2 * PAIRS, "stop {s}: {r:?}");
                drop(world);
                // Let the world run a little between stops.
                let resumed_at = p.load(SeqCst);
                if s % 50 == 0 {
                    assert!(
                        wait_until(Duration::from_secs(10), || p.load(SeqCst) > resumed_at),
                        "stop {s}: no task ran after the resume"
                    );
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            (start.elapsed(), ttsp_max)
        });
        let (took, ttsp_max) = stopper.join().unwrap();
        let m = rt.metrics();
        assert_eq!(m.stops as usize, stops, "{m:?}");
        eprintln!("{stops} stops under load in {took:?}, ttsp max {ttsp_max:?}, {m:?}");
        done.store(true, SeqCst);
        let mut rounds = Vec::new();
        for h in pingers {
            rounds.push(rt.block_on(h).unwrap());
        }
        for (p, h) in pongers.into_iter().enumerate() {
            let n = rt.block_on(h).unwrap();
            assert_eq!(n, rounds[p], "pair {p}: a message was lost or duplicated");
            assert!(n >= MIN_ROUNDS);
        }
        assert_eq!(finished.load(SeqCst), 2 * PAIRS, "every task completes");
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 0);
    });
}

#[test]
fn concurrent_requesters_never_hold_the_world_together() {
    watchdog(LIMIT, || {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 100;
        const FROM_TASK: usize = 50;
        let rt = rt(4);
        let polls = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..16)
            .map(|_| {
                let stop = stop.clone();
                rt.spawn(Counted::new(&polls, async move {
                    let mut rng = Rng(7);
                    while !stop.load(SeqCst) {
                        mixed_step(&mut rng).await;
                    }
                }))
            })
            .collect();
        let held = Arc::new(AtomicBool::new(false));
        let overlaps = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(std::sync::Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (handle, held, polls, go, overlaps) = (
                    rt.handle().clone(),
                    held.clone(),
                    polls.clone(),
                    go.clone(),
                    overlaps.clone(),
                );
                std::thread::spawn(move || {
                    go.wait();
                    for i in 0..PER_THREAD {
                        let world = handle.stop_the_world_blocking();
                        if held.swap(true, SeqCst) {
                            overlaps.fetch_add(1, SeqCst);
                        }
                        let p0 = polls.load(SeqCst);
                        std::thread::yield_now();
                        std::thread::sleep(Duration::from_micros(20));
                        assert_eq!(
                            polls.load(SeqCst),
                            p0,
                            "thread {t} stop {i}: polled while held"
                        );
                        held.store(false, SeqCst);
                        drop(world);
                    }
                })
            })
            .collect();
        // A requester task joins the crowd.
        let (h2, o2, p2) = (held.clone(), overlaps.clone(), polls.clone());
        let task = rt.spawn(async move {
            for i in 0..FROM_TASK {
                let world = Handle::current().stop_the_world().await;
                if h2.swap(true, SeqCst) {
                    o2.fetch_add(1, SeqCst);
                }
                let p0 = p2.load(SeqCst);
                safepoint::time::sleep(Duration::from_micros(100)).await;
                assert_eq!(p2.load(SeqCst), p0, "task stop {i}: polled while held");
                h2.store(false, SeqCst);
                drop(world);
                yield_now().await;
            }
        });
        go.wait();
        for t in threads {
            t.join().unwrap();
        }
        rt.block_on(task).unwrap();
        assert_eq!(
            overlaps.load(SeqCst),
            0,
            "two requesters held the world at once"
        );
        assert_eq!(
            rt.metrics().stops as usize,
            THREADS * PER_THREAD + FROM_TASK
        );
        stop.store(true, SeqCst);
        for h in busy {
            rt.block_on(h).unwrap();
        }
    });
}

#[test]
fn tasks_woken_while_stopped_run_after_resume_and_not_before() {
    watchdog(LIMIT, || {
        const N: usize = 1000;
        let rt = rt(4);
        let ran = Arc::new(AtomicUsize::new(0));
        let polls = Arc::new(AtomicU64::new(0));
        // Channel waiters.
        let mut senders = Vec::new();
        let mut hs = Vec::new();
        for i in 0..N {
            let (tx, rx) = futures::channel::oneshot::channel::<usize>();
            senders.push(tx);
            let ran = ran.clone();
            hs.push(rt.spawn(Counted::new(&polls, async move {
                let v = rx.await.unwrap();
                ran.fetch_add(1, SeqCst);
                assert_eq!(v, i);
            })));
        }
        // Timer waiters whose timers expire while the world is stopped.
        for _ in 0..100 {
            let ran = ran.clone();
            hs.push(rt.spawn(Counted::new(&polls, async move {
                safepoint::time::sleep(Duration::from_millis(20)).await;
                ran.fetch_add(1, SeqCst);
            })));
        }
        // A socket waiter that becomes readable while the world is stopped.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let r2 = ran.clone();
        hs.push(rt.spawn(Counted::new(&polls, async move {
            let listener = safepoint::net::TcpListener::from_std(listener).unwrap();
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 2];
            futures::AsyncReadExt::read_exact(&mut s, &mut buf)
                .await
                .unwrap();
            assert_eq!(&buf, b"hi");
            r2.fetch_add(1, SeqCst);
        })));
        rt.run_until_blocked();
        assert_eq!(ran.load(SeqCst), 0);
        let world = rt.handle().stop_the_world_blocking();
        let r = world.report();
        assert_eq!((r.tasks, r.blocked), (N + 101, N + 101), "{r:?}");
        let frozen = polls.load(SeqCst);
        // Wake everything from an outside thread while the world is held.
        let sender = std::thread::spawn(move || {
            for (i, tx) in senders.into_iter().enumerate() {
                tx.send(i).unwrap();
            }
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            std::io::Write::write_all(&mut c, b"hi").unwrap();
            c
        });
        let _client = sender.join().unwrap();
        // Remote spawns while stopped are kept too.
        let spawned_ran = Arc::new(AtomicUsize::new(0));
        let late: Vec<_> = (0..100)
            .map(|_| {
                let s = spawned_ran.clone();
                rt.spawn(Counted::new(&polls, async move {
                    s.fetch_add(1, SeqCst);
                }))
            })
            .collect();
        // Hold long enough for the timers to expire and the reactor to see
        // the connection.
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(
                polls.load(SeqCst),
                frozen,
                "a task was polled while stopped"
            );
            assert_eq!(ran.load(SeqCst), 0, "a woken task ran before the resume");
            assert_eq!(
                spawned_ran.load(SeqCst),
                0,
                "a task spawned while stopped ran"
            );
        }
        drop(world);
        assert!(
            wait_until(Duration::from_secs(20), || ran.load(SeqCst) == N + 101),
            "only {} of {} woken tasks ran after the resume",
            ran.load(SeqCst),
            N + 101
        );
        for h in hs.into_iter().chain(late) {
            rt.block_on(h).unwrap();
        }
        assert_eq!(spawned_ran.load(SeqCst), 100);
    });
}
