//! What the entry-point macros cost, and what one seed of exploration costs.
//!
//! * `entry_multi_thread/{hand_built,macro,tokio}`: build a 2-worker
//!   runtime, run a body that spawns and joins one task, drop the runtime:
//!   by hand with `Builder`, through `safepoint::entry::multi_thread_test`
//!   (exactly what `#[safepoint::test]` expands to), and tokio's
//!   `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`
//!   equivalent.
//! * `entry_deterministic/{hand_built,macro}`: the same for one seed of the
//!   deterministic flavour (`entry::deterministic_test` with one seed).
//! * `seed_100_tasks/{uniform,pct,tokio_current_thread}`: one seed of a
//!   100-task test (each task: 3 rounds of lock, update, yield; the body
//!   joins all): fresh runtime, run, drop. tokio's current-thread runtime
//!   runs the same body, unseeded, for scale.
//!
//! Run: `cargo bench -p safepoint-benches --bench entry`. Unset the
//! `SAFEPOINT_*` variables (they steer `deterministic_test`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use safepoint::entry::{deterministic_test, multi_thread_test, Seeds, Site};
use safepoint::{Builder, Strategy};

const SITE: Site = Site {
    package: "safepoint-benches",
    crate_name: "entry",
    module_path: "entry",
    name: "bench",
    integration_test: false,
    bin: None,
    ignored: false,
};

async fn spawn_one_safepoint() {
    assert_eq!(safepoint::spawn(async { 7 }).await.unwrap(), 7);
}

/// The 100-task body, for either runtime: tasks that take turns on a
/// shared counter.
macro_rules! hundred_tasks {
    ($name:ident, $spawn:path, $yield_now:path) => {
        async fn $name() {
            let counter = Arc::new(Mutex::new(0u64));
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    let c = counter.clone();
                    $spawn(async move {
                        for _ in 0..3 {
                            *c.lock().unwrap() += 1;
                            $yield_now().await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(*counter.lock().unwrap(), 300);
        }
    };
}

hundred_tasks!(
    hundred_tasks_safepoint,
    safepoint::spawn,
    safepoint::task::yield_now
);
hundred_tasks!(hundred_tasks_tokio, tokio::spawn, tokio::task::yield_now);

fn entry_multi_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("entry_multi_thread");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("hand_built", |b| {
        b.iter(|| {
            let rt = Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            rt.block_on(spawn_one_safepoint())
        })
    });
    g.bench_function("macro", |b| {
        b.iter(|| multi_thread_test(2, spawn_one_safepoint()))
    });
    g.bench_function("tokio", |b| {
        b.iter(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { assert_eq!(tokio::spawn(async { 7 }).await.unwrap(), 7) })
        })
    });
    g.finish();
}

fn entry_deterministic(c: &mut Criterion) {
    let mut g = c.benchmark_group("entry_deterministic");
    g.measurement_time(Duration::from_secs(4));
    let mut seed = 0u64;
    g.bench_function("hand_built", |b| {
        b.iter(|| {
            seed += 1;
            let rt = Builder::new_deterministic(seed).build().unwrap();
            rt.block_on(spawn_one_safepoint())
        })
    });
    g.bench_function("macro", |b| {
        b.iter(|| {
            seed += 1;
            let seeds = Seeds {
                first: seed,
                count: 1,
                strategy: Strategy::Uniform,
            };
            deterministic_test(SITE, seeds, spawn_one_safepoint)
        })
    });
    g.finish();
}

fn seed_100_tasks(c: &mut Criterion) {
    let mut g = c.benchmark_group("seed_100_tasks");
    g.measurement_time(Duration::from_secs(4));
    let mut seed = 0u64;
    for (name, strategy) in [
        ("uniform", Strategy::Uniform),
        ("pct", Strategy::Pct { depth: 3 }),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                seed += 1;
                let seeds = Seeds {
                    first: seed,
                    count: 1,
                    strategy,
                };
                deterministic_test(SITE, seeds, hundred_tasks_safepoint)
            })
        });
    }
    g.bench_function("tokio_current_thread", |b| {
        b.iter(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(hundred_tasks_tokio())
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    entry_multi_thread,
    entry_deterministic,
    seed_100_tasks
);
criterion_main!(benches);
