//! An idle 4-worker runtime sleeps: under 10 ms of process CPU over 1 s
//! (no spinning or polling timers while idle). In its own test binary so
//! that no other test burns CPU during the measurement.

use std::time::Duration;

use safepoint::Builder;
use safepoint_tests::{proc_stat_cpu_time, process_cpu_time, watchdog};

#[test]
fn idle_runtime_uses_almost_no_cpu() {
    watchdog(Duration::from_secs(60), || {
        let rt = Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        // Some work first, so the measurement is of a runtime that has run
        // and gone idle, not of one that never woke.
        rt.block_on(async {
            let hs: Vec<_> = (0..1000u64)
                .map(|i| safepoint::spawn(async move { i }))
                .collect();
            for h in hs {
                h.await.unwrap();
            }
            safepoint::time::sleep(Duration::from_millis(5)).await;
        });
        std::thread::sleep(Duration::from_millis(100));
        let (cpu0, stat0) = (process_cpu_time(), proc_stat_cpu_time());
        std::thread::sleep(Duration::from_secs(1));
        let (cpu1, stat1) = (process_cpu_time(), proc_stat_cpu_time());
        let used = cpu1 - cpu0;
        let used_ticks = stat1.saturating_sub(stat0);
        // getrusage has microsecond resolution; /proc/self/stat counts clock
        // ticks (10 ms at 100 Hz), so it may show one tick of rounding.
        assert!(
            used < Duration::from_millis(10),
            "idle runtime used {used:?} of CPU in 1 s"
        );
        assert!(
            used_ticks <= Duration::from_millis(10),
            "/proc/self/stat: idle runtime used {used_ticks:?} of CPU in 1 s"
        );
        drop(rt);
    });
}
