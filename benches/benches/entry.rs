//! What the entry-point macros cost, and what one seed of exploration costs.
//!
//! * `multi_thread`: build a 2-worker runtime, run a body that spawns and
//!   joins one task, drop the runtime: by hand with `Builder`
//!   (`hand_built`), through `safepoint::entry::multi_thread_test`
//!   (`macro`: exactly what `#[safepoint::test]` expands to), and tokio's
//!   equivalent (`tokio`).
//! * `deterministic`: the same for one seed of the deterministic flavour
//!   (`entry::deterministic_test` with one seed).
//! * `seed_100_tasks`: one seed of a 100-task test (each task: 3 rounds of
//!   lock, update, yield; the body joins all): fresh runtime, run, drop,
//!   under the uniform and the PCT strategy; tokio's current-thread
//!   runtime runs the same body, unseeded, for scale.
//!
//! Not criterion: the variants of a group are measured in interleaved
//! rounds (15 rounds, each variant in turn, the order rotating), so that
//! the load of this shared machine drifts over all of them alike. Each
//! iteration is timed; the median, p99 and max are printed, and the median
//! ratio to the first variant.
//!
//! Run: `cargo bench -p safepoint-benches --bench entry`. Unset the
//! `SAFEPOINT_*` variables (they steer `deterministic_test`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use safepoint::entry::{deterministic_test, multi_thread_test, Seeds, Site};
use safepoint::{Builder, Strategy};
use safepoint_benches::{us, Percentiles};

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

/// One variant: a name and one iteration.
type Variant<'a> = (&'a str, Box<dyn FnMut(u64) + 'a>);

/// Runs the variants in interleaved rounds of `n` iterations each and
/// prints per-iteration percentiles and median ratios.
fn group(name: &str, n: u64, mut variants: Vec<Variant<'_>>) {
    const ROUNDS: usize = 15;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let mut seed = 0u64;
    for round in 0..ROUNDS {
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            for _ in 0..n {
                seed += 1;
                let start = Instant::now();
                (variants[v].1)(seed);
                samples[v].push(start.elapsed());
            }
        }
    }
    let stats: Vec<Percentiles> = samples.iter_mut().map(|s| Percentiles::of(s)).collect();
    println!("{name} ({} iterations per variant)", stats[0].n);
    for ((label, _), p) in variants.iter().zip(&stats) {
        println!(
            "  {label:<22} p50 {:>9} us  p99 {:>9} us  max {:>9} us  p50 ratio {:.3}",
            us(p.p50),
            us(p.p99),
            us(p.max),
            p.p50.as_secs_f64() / stats[0].p50.as_secs_f64()
        );
    }
}

fn main() {
    group(
        "multi_thread: build, spawn + join one task, drop",
        40,
        vec![
            (
                "hand_built",
                Box::new(|_| {
                    let rt = Builder::new_multi_thread()
                        .worker_threads(2)
                        .build()
                        .unwrap();
                    rt.block_on(spawn_one_safepoint())
                }),
            ),
            (
                "macro",
                Box::new(|_| multi_thread_test(2, spawn_one_safepoint())),
            ),
            (
                "tokio",
                Box::new(|_| {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async { assert_eq!(tokio::spawn(async { 7 }).await.unwrap(), 7) })
                }),
            ),
        ],
    );
    let seeds = |first, strategy| Seeds {
        first,
        count: 1,
        strategy,
    };
    group(
        "deterministic: one seed, spawn + join one task",
        2000,
        vec![
            (
                "hand_built",
                Box::new(|seed| {
                    let rt = Builder::new_deterministic(seed).build().unwrap();
                    rt.block_on(spawn_one_safepoint())
                }),
            ),
            (
                "macro",
                Box::new(|seed| {
                    deterministic_test(SITE, seeds(seed, Strategy::Uniform), spawn_one_safepoint)
                }),
            ),
        ],
    );
    group(
        "seed_100_tasks: one seed of a 100-task test",
        30,
        vec![
            (
                "uniform",
                Box::new(|seed| {
                    deterministic_test(
                        SITE,
                        seeds(seed, Strategy::Uniform),
                        hundred_tasks_safepoint,
                    )
                }),
            ),
            (
                "pct(3)",
                Box::new(|seed| {
                    deterministic_test(
                        SITE,
                        seeds(seed, Strategy::Pct { depth: 3 }),
                        hundred_tasks_safepoint,
                    )
                }),
            ),
            (
                "tokio_current_thread",
                Box::new(|_| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(hundred_tasks_tokio())
                }),
            ),
        ],
    );
}
