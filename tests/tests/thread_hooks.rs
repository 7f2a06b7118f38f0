//! `Builder::on_thread_start/on_thread_stop/on_thread_park/on_thread_unpark`
//! on real threads: start and stop run once on every worker and every
//! blocking-pool thread (on that thread, inside the runtime), stop after
//! the thread's last task; park and unpark pair up around each sleep of a
//! worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use safepoint::Builder;
use safepoint_tests::{wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

type Log = Arc<Mutex<Vec<(String, &'static str)>>>;

fn record(log: &Log, what: &'static str) {
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    log.lock().unwrap().push((name, what));
}

fn count(log: &Log, what: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (name, w) in log.lock().unwrap().iter() {
        if *w == what {
            *m.entry(name.clone()).or_default() += 1;
        }
    }
    m
}

#[test]
fn start_and_stop_run_once_on_every_worker_and_blocking_thread() {
    watchdog(LIMIT, || {
        let log: Log = Arc::default();
        let in_runtime = Arc::new(AtomicBool::new(true));
        let (l1, l2, inr) = (log.clone(), log.clone(), in_runtime.clone());
        let rt = Builder::new_multi_thread()
            .worker_threads(3)
            .thread_name("hooked")
            .on_thread_start(move || {
                if safepoint::Handle::try_current().is_err() {
                    inr.store(false, SeqCst);
                }
                record(&l1, "start")
            })
            .on_thread_stop(move || record(&l2, "stop"))
            .build()
            .unwrap();
        // Two blocking threads at once (each job waits for the other).
        let barrier = Arc::new(std::sync::Barrier::new(2));
        rt.block_on(async {
            let (b1, b2) = (barrier.clone(), barrier.clone());
            let a = safepoint::spawn_blocking(move || {
                b1.wait();
            });
            let b = safepoint::spawn_blocking(move || {
                b2.wait();
            });
            a.await.unwrap();
            b.await.unwrap();
        });
        // A worker runs its start hook when its thread gets going, which
        // `build` does not wait for.
        let workers_started =
            || (0..3).all(|i| count(&log, "start").contains_key(&format!("hooked-{i}")));
        assert!(wait_until(Duration::from_secs(10), workers_started));
        let starts = count(&log, "start");
        for i in 0..3 {
            assert_eq!(starts.get(&format!("hooked-{i}")), Some(&1), "{starts:?}");
        }
        assert_eq!(
            starts
                .keys()
                .filter(|k| k.starts_with("hooked-blocking-"))
                .count(),
            2
        );
        assert!(
            in_runtime.load(SeqCst),
            "the start hook ran outside the runtime"
        );
        assert!(count(&log, "stop").is_empty());
        drop(rt); // joins the workers and waits for the blocking threads
        let stops = count(&log, "stop");
        assert_eq!(stops, starts, "every started thread ran its stop hook once");
        // Each thread's stop comes after its start.
        let log = log.lock().unwrap();
        for (name, _) in log.iter() {
            let first = log.iter().position(|(n, _)| n == name).unwrap();
            assert_eq!(log[first].1, "start", "{name}");
        }
    });
}

#[test]
fn park_and_unpark_pair_up_on_worker_threads() {
    watchdog(LIMIT, || {
        let log: Log = Arc::default();
        let (l1, l2) = (log.clone(), log.clone());
        let rt = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("parky")
            .on_thread_park(move || record(&l1, "park"))
            .on_thread_unpark(move || record(&l2, "unpark"))
            .build()
            .unwrap();
        // Every worker goes to sleep when there is nothing to do.
        rt.run_until_blocked();
        assert!(wait_until(Duration::from_secs(10), || count(&log, "park")
            .len()
            == 2));
        // Work from outside wakes a worker.
        for _ in 0..20 {
            rt.block_on(rt.spawn(async {
                safepoint::time::sleep(Duration::from_millis(1)).await;
            }))
            .unwrap();
        }
        rt.run_until_blocked();
        let log = log.lock().unwrap().clone();
        assert!(log.iter().all(|(n, _)| n.starts_with("parky-")), "{log:?}");
        assert!(log.iter().any(|(_, w)| *w == "unpark"));
        // Per thread, park and unpark alternate, starting with a park.
        for name in ["parky-0", "parky-1"] {
            let seq: Vec<&str> = log
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, w)| *w)
                .collect();
            for (i, w) in seq.iter().enumerate() {
                let want = if i % 2 == 0 { "park" } else { "unpark" };
                assert_eq!(*w, want, "{name}: {seq:?}");
            }
        }
    });
}
