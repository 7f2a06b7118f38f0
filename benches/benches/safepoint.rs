//! Safepoint benches (no tokio counterpart: tokio has no stop-the-world).
//!
//! * `safepoint_await/*`: the cost of `safepoint().await` with no stop
//!   pending, as a loop of 1 000 awaits inside one `block_on` (criterion
//!   reports the time of the 1 000; the per-call figure is printed).
//! * `ttsp_w{4,2}_{idle,busy4}/{1000,100000,1000000}`: time to stop the world
//!   (request -> stopped, `world.report().time_to_stop`) requested with
//!   `stop_the_world_blocking` from a thread outside the runtime, with N
//!   tasks blocked on `futures::channel::oneshot` receivers whose senders are
//!   kept, with and without 4 busy tasks that loop { spin 10 µs;
//!   safepoint().await }. Each runtime + its N tasks is built once per
//!   (workers, N). Besides criterion, a plain p50/p99/max over
//!   `SP_TTSP_STOPS` (default 2 000) stops is printed, next to the machine's
//!   thread-wake floor (std park/unpark ping-pong between two threads,
//!   each leg timed on its own: the one-way wake). The floor is measured
//!   once idle at the start, and again for each row just before its stops,
//!   with that row's busy tasks already running (the load the requester's
//!   wake meets); each row prints that one-way median and the ratio of its
//!   TTSP median to it (issue 12 wants the busy rows below 1).
//!
//! Environment: `SP_TTSP_STOPS` (stops per percentile run), `SP_TTSP_GAP_US`
//! (pause after each resume so the next request meets a settled runtime,
//! default 100), `SP_TTSP_MAX_TASKS` (skip sizes above it, default 1 000 000),
//! `SP_TTSP_CRIT_STOPS` (about how many stops criterion measures per config,
//! default 2 000: its measurement time is set from the percentile run's wall
//! time per stop, gap included, overriding `--measurement-time`).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use futures::channel::oneshot;
use safepoint_benches::{env_usize, selected, spin_for, us, wake_floor, Percentiles, WakeFloor};

const AWAITS: u64 = 1_000;
const BUSY_TASKS: usize = 4;
const BUSY_SPIN: Duration = Duration::from_micros(10);

fn safepoint_await(c: &mut Criterion) {
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    if !selected("safepoint_await") {
        return;
    }
    let mut g = c.benchmark_group("safepoint_await");
    g.throughput(Throughput::Elements(AWAITS));
    g.bench_function("safepoint_x1000", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..AWAITS {
                        safepoint::safepoint().await;
                    }
                }
                start.elapsed()
            })
        })
    });
    // The loop with a trivially ready future instead, to see the loop's
    // own share.
    g.bench_function("ready_baseline_x1000", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    for _ in 0..AWAITS {
                        black_box(std::future::ready(())).await;
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();

    // A plain figure too: 1 000 block_on runs of 1 000 awaits each, and the
    // same loop over a ready future (the loop's own share).
    let per_call = |sp: bool| {
        let mut ns: Vec<Duration> = (0..1_000)
            .map(|_| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..AWAITS {
                        if sp {
                            safepoint::safepoint().await;
                        } else {
                            black_box(std::future::ready(())).await;
                        }
                    }
                    start.elapsed()
                })
            })
            .collect();
        // Per call, in ns (as f64: Duration division would truncate).
        Percentiles::of(&mut ns).p50.as_secs_f64() * 1e9 / AWAITS as f64
    };
    let sp = per_call(true);
    let base = per_call(false);
    println!(
        "\nsafepoint().await, no stop pending: median {sp:.2} ns/call (ready-future loop {base:.2} ns/call, difference {:.2} ns) over 1 000 x {AWAITS} awaits; target <= 2 ns\n",
        sp - base
    );
}

/// A runtime with `blocked` tasks parked on oneshot receivers.
struct World {
    rt: safepoint::Runtime,
    _senders: Vec<oneshot::Sender<()>>,
    busy: Option<Arc<AtomicBool>>,
}

impl World {
    fn build(workers: usize, blocked: usize) -> World {
        let started = Instant::now();
        let rt = safepoint::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .unwrap();
        let mut senders = Vec::with_capacity(blocked);
        for _ in 0..blocked {
            let (tx, rx) = oneshot::channel::<()>();
            senders.push(tx);
            rt.spawn(async move {
                let _ = rx.await;
            });
        }
        // Every task has been polled once and is now blocked.
        rt.run_until_blocked();
        eprintln!(
            "built {workers} workers + {blocked} blocked tasks in {:?}",
            started.elapsed()
        );
        World {
            rt,
            _senders: senders,
            busy: None,
        }
    }

    fn start_busy(&mut self) {
        let flag = Arc::new(AtomicBool::new(true));
        for _ in 0..BUSY_TASKS {
            let flag = flag.clone();
            self.rt.spawn(async move {
                while flag.load(Ordering::Relaxed) {
                    spin_for(BUSY_SPIN);
                    safepoint::safepoint().await;
                }
            });
        }
        self.busy = Some(flag);
        // Let them get going on the workers.
        std::thread::sleep(Duration::from_millis(20));
    }

    fn stop_busy(&mut self) {
        if let Some(flag) = self.busy.take() {
            flag.store(false, Ordering::Relaxed);
            self.rt.run_until_blocked();
        }
    }

    /// One stop from this (outside) thread: the request -> stopped time.
    fn stop_once(&self, expect_tasks: usize) -> Duration {
        let world = self.rt.handle().stop_the_world_blocking();
        let report = world.report();
        debug_assert!(report.tasks >= expect_tasks);
        let d = report.time_to_stop;
        drop(world);
        d
    }
}

fn gap() {
    let gap = Duration::from_micros(env_usize("SP_TTSP_GAP_US", 100) as u64);
    if !gap.is_zero() {
        std::thread::sleep(gap);
    }
}

struct Row {
    workers: usize,
    blocked: usize,
    busy: usize,
    p: Percentiles,
    wall: Percentiles,
    /// The wake floor measured just before this row's stops, under its load.
    wake: WakeFloor,
}

impl Row {
    /// TTSP median over the one-way wake median of the same row.
    fn floor_ratio(&self) -> f64 {
        self.p.p50.as_secs_f64() / self.wake.one_way.p50.as_secs_f64()
    }
}

/// "p50 X us p99 Y us" of `p`.
fn p50_p99(p: &Percentiles) -> String {
    format!("p50 {} us p99 {} us", us(p.p50), us(p.p99))
}

/// Prints a wake floor measurement, prefixed with `when`.
fn print_wake(when: &str, wake: &WakeFloor) {
    println!(
        "thread wake ({when}; std park/unpark ping-pong, 2 threads): one way {}; round trip {} (half: {} us)",
        p50_p99(&wake.one_way),
        p50_p99(&wake.round_trip),
        us(wake.round_trip.p50 / 2)
    );
}

fn ttsp(c: &mut Criterion) {
    if !selected("ttsp") {
        return;
    }
    let stops = env_usize("SP_TTSP_STOPS", 2_000);
    let max_tasks = env_usize("SP_TTSP_MAX_TASKS", 1_000_000);
    let crit_stops = env_usize("SP_TTSP_CRIT_STOPS", 2_000);
    let wake = wake_floor(2_000);
    println!();
    print_wake("idle, before any runtime", &wake);
    println!();
    let mut rows = Vec::new();
    for workers in [4usize, 2] {
        for blocked in [1_000usize, 100_000, 1_000_000] {
            if blocked > max_tasks {
                continue;
            }
            let id = |busy: usize| {
                format!(
                    "ttsp_w{workers}_{}/{blocked}",
                    if busy > 0 { "busy4" } else { "idle" }
                )
            };
            if !selected(&id(0)) && !selected(&id(BUSY_TASKS)) {
                continue;
            }
            let mut world = World::build(workers, blocked);
            for busy in [0usize, BUSY_TASKS] {
                if !selected(&id(busy)) {
                    continue;
                }
                if busy > 0 {
                    world.start_busy();
                }
                let expect = blocked + busy;
                // The floor now, under this row's load (its busy tasks
                // spinning on the workers), for the ratio.
                let row_wake = wake_floor(2_000);
                // Plain percentiles: the stop as the runtime measures it and
                // as the requesting thread sees it (call to return).
                let mut ttsp = Vec::with_capacity(stops);
                let mut wall = Vec::with_capacity(stops);
                let loop_start = Instant::now();
                for _ in 0..stops {
                    gap();
                    let t = Instant::now();
                    let world_guard = world.rt.handle().stop_the_world_blocking();
                    let w = t.elapsed();
                    ttsp.push(world_guard.report().time_to_stop);
                    drop(world_guard);
                    wall.push(w);
                }
                let row = Row {
                    workers,
                    blocked,
                    busy,
                    p: Percentiles::of(&mut ttsp),
                    wall: Percentiles::of(&mut wall),
                    wake: row_wake,
                };
                println!(
                    "ttsp workers={workers} blocked={blocked} busy={busy}: {}  max {} us  (call->return {}); one-way wake p50 {} us, ttsp p50 / wake {:.2}",
                    p50_p99(&row.p),
                    us(row.p.max),
                    p50_p99(&row.wall),
                    us(row.wake.one_way.p50),
                    row.floor_ratio()
                );
                // Wall time per stop, gap included.
                let per_stop = loop_start.elapsed() / stops as u32;
                rows.push(row);

                let name = format!(
                    "ttsp_w{workers}_{}",
                    if busy > 0 { "busy4" } else { "idle" }
                );
                // Criterion sizes its runs by wall time (for iter_custom too),
                // and each stop also pays the gap: budget ~`crit_stops` stops
                // from the wall time per stop just seen, with flat sampling.
                let measure = (per_stop * crit_stops as u32)
                    .clamp(Duration::from_millis(10), Duration::from_secs(5));
                let mut g = c.benchmark_group(name);
                g.sample_size(10)
                    .sampling_mode(SamplingMode::Flat)
                    .warm_up_time(measure / 10)
                    .measurement_time(measure);
                g.bench_function(BenchmarkId::from_parameter(blocked), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            gap();
                            total += world.stop_once(expect);
                        }
                        total
                    })
                });
                g.finish();
                world.stop_busy();
            }
            let t = Instant::now();
            drop(world);
            eprintln!("dropped the runtime in {:?}", t.elapsed());
        }
    }

    print_table(&rows, &wake);
}

fn print_table(rows: &[Row], wake: &WakeFloor) {
    println!(
        "\n=== TTSP (time_to_stop from StopReport), {} stops per row ===",
        rows.first().map_or(0, |r| r.p.n)
    );
    print_wake("idle, at the start", wake);
    println!("wake1_us: one-way wake p50 measured just before the row, under its load; ratio = p50_us / wake1_us");
    println!(
        "{:>7} {:>9} {:>5} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9} {:>6}",
        "workers",
        "blocked",
        "busy",
        "p50_us",
        "p99_us",
        "max_us",
        "call_p50_us",
        "call_p99_us",
        "wake1_us",
        "ratio"
    );
    for r in rows {
        println!(
            "{:>7} {:>9} {:>5} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9} {:>6.2}",
            r.workers,
            r.blocked,
            r.busy,
            us(r.p.p50),
            us(r.p.p99),
            us(r.p.max),
            us(r.wall.p50),
            us(r.wall.p99),
            us(r.wake.one_way.p50),
            r.floor_ratio()
        );
    }
    // The targets.
    for r in rows.iter().filter(|r| r.busy > 0) {
        let ok = r.p.p50 < Duration::from_micros(30) && r.p.p99 < Duration::from_micros(200);
        println!(
            "target busy (p50 < 30 us, p99 < 200 us) workers={} blocked={}: {}",
            r.workers,
            r.blocked,
            if ok { "met" } else { "MISSED" }
        );
        // Issue 12: the busy median below the one-way wake floor.
        println!(
            "target busy (p50 below the one-way wake floor, {} us; ratio {:.2} < 1) workers={} blocked={}: {}",
            us(r.wake.one_way.p50),
            r.floor_ratio(),
            r.workers,
            r.blocked,
            if r.floor_ratio() < 1.0 { "met" } else { "MISSED" }
        );
    }
    for workers in [4usize, 2] {
        for busy in [0usize, BUSY_TASKS] {
            let find = |n| {
                rows.iter()
                    .find(|r| r.workers == workers && r.busy == busy && r.blocked == n)
            };
            if let (Some(small), Some(big)) = (find(1_000), find(1_000_000)) {
                let ratio = big.p.p50.as_secs_f64() / small.p.p50.as_secs_f64();
                println!(
                    "1M vs 1k blocked (workers={workers} busy={busy}): p50 ratio {ratio:.2} (target <= 1.5): {}",
                    if ratio <= 1.5 { "met" } else { "MISSED" }
                );
            }
        }
    }
    println!();
}

criterion_group!(benches, safepoint_await, ttsp);
criterion_main!(benches);
