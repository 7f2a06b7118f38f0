//! `Builder`: bad settings are refused with `io::ErrorKind::InvalidInput`
//! and a message naming the setting (never a runtime that hangs), and good
//! settings take effect (worker count, thread names, 16 workers on 2 cores).

use std::collections::HashSet;
use std::io::ErrorKind;
use std::time::Duration;

use safepoint::Builder;
use safepoint_tests::watchdog;

fn expect_invalid(b: &mut Builder, setting: &str) {
    let err = b.build().expect_err("a bad setting must be refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{setting}: {err}");
    assert!(
        err.to_string().contains(setting),
        "the error for a bad {setting} should name it, got: {err}"
    );
}

#[test]
fn zero_workers_is_invalid_input() {
    expect_invalid(
        Builder::new_multi_thread().worker_threads(0),
        "worker_threads",
    );
}

#[test]
fn other_bad_values_are_invalid_input() {
    expect_invalid(
        Builder::new_multi_thread().worker_threads(1 << 16),
        "worker_threads",
    );
    expect_invalid(
        Builder::new_multi_thread().max_blocking_threads(0),
        "max_blocking_threads",
    );
    expect_invalid(
        Builder::new_multi_thread().global_queue_interval(0),
        "global_queue_interval",
    );
    expect_invalid(
        Builder::new_multi_thread().event_interval(0),
        "event_interval",
    );
    expect_invalid(Builder::new_multi_thread().thread_name(""), "thread_name");
    expect_invalid(
        Builder::new_multi_thread().thread_name("a\0b"),
        "thread_name",
    );
    expect_invalid(
        Builder::new_multi_thread().thread_stack_size(0),
        "thread_stack_size",
    );
    // The first bad value found is reported even when a good one follows.
    expect_invalid(
        Builder::new_multi_thread()
            .worker_threads(0)
            .thread_name("ok"),
        "worker_threads",
    );
}

#[test]
fn good_settings_take_effect() {
    watchdog(Duration::from_secs(60), || {
        let rt = Builder::new_multi_thread()
            .worker_threads(3)
            .thread_name("bld")
            .thread_stack_size(1 << 20)
            .max_blocking_threads(2)
            .global_queue_interval(7)
            .event_interval(5)
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.metrics().workers, 3);
        let names: Vec<String> = rt.block_on(async {
            let mut hs = Vec::new();
            for _ in 0..50 {
                hs.push(safepoint::spawn(async {
                    std::thread::current().name().unwrap().to_owned()
                }));
            }
            let mut out = Vec::new();
            for h in hs {
                out.push(h.await.unwrap());
            }
            out
        });
        for n in &names {
            let idx: usize = n
                .strip_prefix("bld-")
                .unwrap_or_else(|| panic!("worker thread named {n:?}, expected bld-<index>"))
                .parse()
                .unwrap();
            assert!(idx < 3, "worker index {idx} out of range");
        }
        let blocking = rt
            .block_on(rt.spawn_blocking(|| std::thread::current().name().unwrap().to_owned()))
            .unwrap();
        assert!(
            blocking.starts_with("bld-blocking"),
            "blocking thread named {blocking:?}"
        );
        // max_blocking_threads(2): four jobs that each wait for the others
        // would deadlock, so check the cap through the metrics instead.
        let hs: Vec<_> = (0..6)
            .map(|_| rt.spawn_blocking(|| std::thread::sleep(Duration::from_millis(30))))
            .collect();
        std::thread::sleep(Duration::from_millis(10));
        assert!(rt.metrics().blocking_threads <= 2, "{:?}", rt.metrics());
        for h in hs {
            rt.block_on(h).unwrap();
        }
    });
}

#[test]
fn more_workers_than_cores() {
    watchdog(Duration::from_secs(60), || {
        let rt = Builder::new_multi_thread()
            .worker_threads(16)
            .thread_name("w16")
            .build()
            .unwrap();
        assert_eq!(rt.metrics().workers, 16);
        // 16 tasks that each wait (blocking their worker) until all 16 run
        // at once: only possible if all 16 workers are alive and the work
        // reaches each of them.
        let arrived = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let arrived = arrived.clone();
                rt.spawn(async move {
                    arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let all = safepoint_tests::wait_until(Duration::from_secs(20), || {
                        arrived.load(std::sync::atomic::Ordering::SeqCst) == 16
                    });
                    (all, std::thread::current().name().unwrap().to_owned())
                })
            })
            .collect();
        let mut names = HashSet::new();
        for h in hs {
            let (all, name) = rt.block_on(h).unwrap();
            assert!(all, "not all 16 workers ran a task at the same time");
            names.insert(name);
        }
        assert_eq!(names.len(), 16, "{names:?}");
        // And ordinary work completes on them.
        let sum: u64 = rt.block_on(async {
            let hs: Vec<_> = (0..10_000u64)
                .map(|i| safepoint::spawn(async move { i }))
                .collect();
            let mut s = 0;
            for h in hs {
                s += h.await.unwrap();
            }
            s
        });
        assert_eq!(sum, 10_000 * 9_999 / 2);
    });
}
