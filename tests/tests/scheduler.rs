//! The work-stealing scheduler: 100 000 tasks all complete with the right
//! results; a worker stuck in a long blocking poll has its queue stolen;
//! 8 outside threads spawning 10 000 tasks each at once; a task that yields
//! forever does not starve others; spawning across runtimes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use safepoint::Builder;
use safepoint_tests::{rt, wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn hundred_thousand_tasks_complete_with_right_results() {
    watchdog(LIMIT, || {
        const N: u64 = 100_000;
        let rt = rt(4);
        let ran = Arc::new(AtomicUsize::new(0));
        // Half spawned from outside (the injector), half from inside a task
        // (the workers' local queues).
        let outside: Vec<_> = (0..N / 2)
            .map(|i| {
                let ran = ran.clone();
                rt.spawn(async move {
                    ran.fetch_add(1, SeqCst);
                    i * 3 + 1
                })
            })
            .collect();
        let ran2 = ran.clone();
        let inside = rt.spawn(async move {
            let hs: Vec<_> = (N / 2..N)
                .map(|i| {
                    let ran = ran2.clone();
                    safepoint::spawn(async move {
                        if i % 7 == 0 {
                            safepoint::task::yield_now().await;
                        }
                        ran.fetch_add(1, SeqCst);
                        i * 3 + 1
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(hs.len());
            for h in hs {
                out.push(h.await.unwrap());
            }
            out
        });
        let results: Vec<u64> = rt.block_on(async {
            let mut out = Vec::with_capacity(N as usize);
            for h in outside {
                out.push(h.await.unwrap());
            }
            out.extend(inside.await.unwrap());
            out
        });
        assert_eq!(results.len() as u64, N);
        for (i, v) in results.iter().enumerate() {
            assert_eq!(*v, i as u64 * 3 + 1, "task {i}");
        }
        assert_eq!(ran.load(SeqCst) as u64, N, "each task ran exactly once");
        rt.run_until_blocked();
        assert_eq!(rt.metrics().live_tasks, 0);
        assert!(rt.metrics().polls >= N);
    });
}

#[test]
fn stuck_worker_has_its_queue_stolen() {
    watchdog(LIMIT, || {
        const QUEUED: usize = 100;
        let rt = rt(4);
        let done = Arc::new(AtomicUsize::new(0));
        let blocker_finished = Arc::new(AtomicBool::new(false));
        let (d, bf) = (done.clone(), blocker_finished.clone());
        let start = Instant::now();
        let blocker = rt.spawn(async move {
            // Queue work on this worker's own queue...
            let hs: Vec<_> = (0..QUEUED)
                .map(|_| {
                    let d = d.clone();
                    safepoint::spawn(async move {
                        d.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            // ...plus one filler: the most recent spawn sits in the worker's
            // LIFO slot, which (as in tokio) other workers cannot steal.
            let filler = safepoint::spawn(async {});
            // ...then hog the worker in a long blocking poll.
            std::thread::sleep(Duration::from_millis(500));
            bf.store(true, SeqCst);
            drop(filler);
            hs
        });
        // Everything queued behind the stuck poll completes long before it
        // ends: other workers stole it.
        assert!(
            wait_until(Duration::from_secs(10), || done.load(SeqCst) == QUEUED),
            "only {} of {QUEUED} queued tasks ran",
            done.load(SeqCst)
        );
        let took = start.elapsed();
        assert!(
            !blocker_finished.load(SeqCst),
            "queued tasks only ran after the stuck poll ended ({took:?})"
        );
        assert!(took < Duration::from_millis(400), "took {took:?}");
        assert!(rt.metrics().steals > 0, "{:?}", rt.metrics());
        for h in rt.block_on(blocker).unwrap() {
            rt.block_on(h).unwrap();
        }
    });
}

#[test]
fn eight_outside_threads_spawn_ten_thousand_each() {
    watchdog(LIMIT, || {
        const THREADS: usize = 8;
        const PER: usize = 10_000;
        let rt = rt(4);
        let handle = rt.handle().clone();
        let ran = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (handle, ran, go) = (handle.clone(), ran.clone(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    let hs: Vec<_> = (0..PER)
                        .map(|i| {
                            let ran = ran.clone();
                            handle.spawn(async move {
                                ran.fetch_add(1, SeqCst);
                                (t, i)
                            })
                        })
                        .collect();
                    handle.block_on(async {
                        for (i, h) in hs.into_iter().enumerate() {
                            assert_eq!(h.await.unwrap(), (t, i));
                        }
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ran.load(SeqCst), THREADS * PER);
        assert!(rt.metrics().remote_spawns >= (THREADS * PER) as u64);
    });
}

#[test]
fn a_task_that_yields_forever_does_not_starve_others() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let spins = Arc::new(AtomicUsize::new(0));
        // More spinners than workers, so every worker holds one.
        let spinners: Vec<_> = (0..4)
            .map(|_| {
                let spins = spins.clone();
                rt.spawn(async move {
                    loop {
                        spins.fetch_add(1, SeqCst);
                        safepoint::task::yield_now().await;
                    }
                })
            })
            .collect();
        assert!(wait_until(Duration::from_secs(10), || spins.load(SeqCst) > 1000));
        // Work from outside, and work spawned from inside a spinner's worker.
        let hs: Vec<_> = (0..200u32)
            .map(|i| {
                rt.spawn(async move {
                    for _ in 0..i % 5 {
                        safepoint::task::yield_now().await;
                    }
                    i
                })
            })
            .collect();
        let nested = rt.spawn(async {
            let hs: Vec<_> = (0..100u32)
                .map(|i| safepoint::spawn(async move { i }))
                .collect();
            let mut s = 0;
            for h in hs {
                s += h.await.unwrap();
            }
            s
        });
        let start = Instant::now();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(rt.block_on(h).unwrap(), i as u32);
        }
        assert_eq!(rt.block_on(nested).unwrap(), 4950);
        // A timer still fires too.
        rt.block_on(async {
            safepoint::time::sleep(Duration::from_millis(5)).await;
        });
        assert!(start.elapsed() < Duration::from_secs(20));
        for s in &spinners {
            assert!(!s.is_finished());
            s.abort();
        }
        for s in spinners {
            assert!(rt.block_on(s).unwrap_err().is_cancelled());
        }
    });
}

#[test]
fn spawning_onto_another_runtime_from_a_worker() {
    watchdog(LIMIT, || {
        let a = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rta")
            .build()
            .unwrap();
        let b = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rtb")
            .build()
            .unwrap();
        let hb = b.handle().clone();
        let names: HashSet<String> = a
            .block_on(a.spawn(async move {
                let hs: Vec<_> = (0..100)
                    .map(|_| hb.spawn(async { std::thread::current().name().unwrap().to_owned() }))
                    .collect();
                let mut out = HashSet::new();
                for h in hs {
                    out.insert(h.await.unwrap());
                }
                out
            }))
            .unwrap();
        assert!(
            names.iter().all(|n| n.starts_with("rtb-")),
            "tasks spawned on b ran on {names:?}"
        );
    });
}
