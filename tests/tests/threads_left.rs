//! No thread is left behind: after a runtime that ran tasks, timers and
//! blocking jobs is dropped, the process has as many threads as before it
//! was built. In its own test binary so that no other test's threads move
//! the count.

use std::time::Duration;

use safepoint::Builder;
use safepoint_tests::{thread_count, thread_names, wait_until, watchdog};

#[test]
fn no_thread_is_left_behind_after_drop() {
    watchdog(Duration::from_secs(60), || {
        let before = thread_count();
        for round in 0..3 {
            let rt = Builder::new_multi_thread()
                .worker_threads(4)
                .build()
                .unwrap();
            let during = thread_count();
            assert!(
                during >= before + 4,
                "round {round}: {during} threads, expected workers"
            );
            rt.block_on(async {
                let mut hs = Vec::new();
                for i in 0..16u64 {
                    hs.push(safepoint::spawn_blocking(move || {
                        std::thread::sleep(Duration::from_millis(5));
                        i
                    }));
                }
                for i in 0..1000u64 {
                    let h = safepoint::spawn(async move {
                        safepoint::time::sleep(Duration::from_millis(i % 3)).await;
                        i
                    });
                    drop(h);
                }
                for h in hs {
                    h.await.unwrap();
                }
            });
            // Pending work at drop time too.
            rt.spawn(std::future::pending::<()>());
            drop(rt);
            assert!(
                wait_until(Duration::from_secs(2), || thread_count() == before),
                "round {round}: {} threads after drop, {before} before: {:?}",
                thread_count(),
                thread_names()
            );
        }
    });
}
