//! Scheduler benches: tokio's own `benches/rt_multi_threaded.rs` workloads,
//! run on safepoint and on tokio's multi-thread runtime side by side (4
//! workers each, built once per bench). Bench ids are `<workload>/safepoint`
//! and `<workload>/tokio`. Both sides use the same channels: std `mpsc` for
//! "done" signals and `futures::channel::oneshot` for ping-pong.
//!
//! `SP_GLOBAL_QUEUE_INTERVAL=n` sets safepoint's `global_queue_interval`
//! (a diagnostic; the default is the runtime's).

use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use safepoint_benches::{stall, WORKERS};

const NUM_SPAWN: usize = 10_000;
const NUM_YIELD: usize = 1_000;
const YIELD_TASKS: usize = 200;
const NUM_PINGS: usize = 1_000;
const CHAIN: usize = 1_000;
const STALL: Duration = Duration::from_micros(10);
const BUSY_TASKS: usize = 2 * WORKERS;

/// The same workload bodies for both runtimes: `$k` is the crate whose
/// `spawn` and `task::yield_now` the tasks call (both crates spell them the
/// same), `$rt` the runtime type.
macro_rules! workloads {
    ($m:ident, $k:ident, $rt:ty) => {
        mod $m {
            use super::*;

            pub fn spawn_many_local(
                rt: &$rt,
                tx: &mpsc::SyncSender<()>,
                rx: &mpsc::Receiver<()>,
                rem: &Arc<AtomicUsize>,
            ) {
                rem.store(NUM_SPAWN, Relaxed);
                rt.block_on(async {
                    for _ in 0..NUM_SPAWN {
                        let tx = tx.clone();
                        let rem = rem.clone();
                        $k::spawn(async move {
                            if 1 == rem.fetch_sub(1, Relaxed) {
                                tx.send(()).unwrap();
                            }
                        });
                    }
                    rx.recv().unwrap();
                });
            }

            /// tokio's per-call shape: every handle awaited with its own
            /// `Runtime::block_on` from outside (the fixed cost of a
            /// `block_on` call, as sync wrappers around async clients pay it).
            pub fn block_on_each(rt: &$rt, handles: &mut Vec<$k::task::JoinHandle<()>>) {
                for _ in 0..NUM_SPAWN {
                    handles.push(rt.spawn(async {}));
                }
                for handle in handles.drain(..) {
                    rt.block_on(handle).unwrap();
                }
            }

            pub fn spawn_many_remote(rt: &$rt, handles: &mut Vec<$k::task::JoinHandle<()>>) {
                for _ in 0..NUM_SPAWN {
                    handles.push(rt.spawn(async {}));
                }
                rt.block_on(async {
                    for h in handles.drain(..) {
                        h.await.unwrap();
                    }
                });
            }

            /// Starts `BUSY_TASKS` tasks that loop { yield; stall 10 µs }
            /// until the returned flag is cleared.
            pub fn start_busy(rt: &$rt) -> Arc<AtomicBool> {
                let flag = Arc::new(AtomicBool::new(true));
                for _ in 0..BUSY_TASKS {
                    let flag = flag.clone();
                    rt.spawn(async move {
                        while flag.load(Relaxed) {
                            $k::task::yield_now().await;
                            stall(STALL);
                        }
                    });
                }
                flag
            }

            pub fn yield_many(rt: &$rt, tx: &mpsc::SyncSender<()>, rx: &mpsc::Receiver<()>) {
                for _ in 0..YIELD_TASKS {
                    let tx = tx.clone();
                    rt.spawn(async move {
                        for _ in 0..NUM_YIELD {
                            $k::task::yield_now().await;
                        }
                        tx.send(()).unwrap();
                    });
                }
                for _ in 0..YIELD_TASKS {
                    rx.recv().unwrap();
                }
            }

            pub fn ping_pong(
                rt: &$rt,
                done_tx: &mpsc::SyncSender<()>,
                done_rx: &mpsc::Receiver<()>,
                rem: &Arc<AtomicUsize>,
            ) {
                let done_tx = done_tx.clone();
                let rem = rem.clone();
                rem.store(NUM_PINGS, Relaxed);
                rt.block_on(async {
                    $k::spawn(async move {
                        for _ in 0..NUM_PINGS {
                            let rem = rem.clone();
                            let done_tx = done_tx.clone();
                            $k::spawn(async move {
                                let (tx1, rx1) = futures::channel::oneshot::channel::<()>();
                                let (tx2, rx2) = futures::channel::oneshot::channel::<()>();
                                $k::spawn(async move {
                                    rx1.await.unwrap();
                                    tx2.send(()).unwrap();
                                });
                                tx1.send(()).unwrap();
                                rx2.await.unwrap();
                                if 1 == rem.fetch_sub(1, Relaxed) {
                                    done_tx.send(()).unwrap();
                                }
                            });
                        }
                    });
                    done_rx.recv().unwrap();
                });
            }

            fn chain(done_tx: mpsc::SyncSender<()>, n: usize) {
                if n == 0 {
                    done_tx.send(()).unwrap();
                } else {
                    $k::spawn(async move {
                        chain(done_tx, n - 1);
                    });
                }
            }

            pub fn chained_spawn(
                rt: &$rt,
                done_tx: &mpsc::SyncSender<()>,
                done_rx: &mpsc::Receiver<()>,
            ) {
                let done_tx = done_tx.clone();
                rt.block_on(async {
                    $k::spawn(async move {
                        chain(done_tx, CHAIN);
                    });
                    done_rx.recv().unwrap();
                });
            }
        }
    };
}

workloads!(sp, safepoint, safepoint::Runtime);
workloads!(tk, tokio, tokio::runtime::Runtime);

fn sp_rt() -> safepoint::Runtime {
    let mut b = safepoint::Builder::new_multi_thread();
    b.worker_threads(WORKERS);
    // Diagnostic knob (default: the runtime's own default).
    if let Ok(n) = std::env::var("SP_GLOBAL_QUEUE_INTERVAL") {
        b.global_queue_interval(n.parse().expect("SP_GLOBAL_QUEUE_INTERVAL: a number"));
    }
    b.build().unwrap()
}

fn tk_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

fn spawn_many_local(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_many_local");
    let (tx, rx) = mpsc::sync_channel(1000);
    let rem = Arc::new(AtomicUsize::new(0));
    {
        let rt = sp_rt();
        g.bench_function("safepoint", |b| {
            b.iter(|| sp::spawn_many_local(&rt, &tx, &rx, &rem))
        });
    }
    {
        let rt = tk_rt();
        g.bench_function("tokio", |b| {
            b.iter(|| tk::spawn_many_local(&rt, &tx, &rx, &rem))
        });
    }
    g.finish();
}

fn spawn_many_remote_idle(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_many_remote_idle");
    {
        let rt = sp_rt();
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("safepoint", |b| {
            b.iter(|| sp::spawn_many_remote(&rt, &mut handles))
        });
    }
    {
        let rt = tk_rt();
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("tokio", |b| {
            b.iter(|| tk::spawn_many_remote(&rt, &mut handles))
        });
    }
    g.finish();
}

fn block_on_each_idle(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_on_each_idle");
    {
        let rt = sp_rt();
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("safepoint", |b| {
            b.iter(|| sp::block_on_each(&rt, &mut handles))
        });
    }
    {
        let rt = tk_rt();
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("tokio", |b| b.iter(|| tk::block_on_each(&rt, &mut handles)));
    }
    g.finish();
}

fn block_on_each_busy(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_on_each_busy");
    {
        let rt = sp_rt();
        let busy = sp::start_busy(&rt);
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("safepoint", |b| {
            b.iter(|| sp::block_on_each(&rt, &mut handles))
        });
        busy.store(false, Relaxed);
    }
    {
        let rt = tk_rt();
        let busy = tk::start_busy(&rt);
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("tokio", |b| b.iter(|| tk::block_on_each(&rt, &mut handles)));
        busy.store(false, Relaxed);
    }
    g.finish();
}

fn spawn_many_remote_busy1(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_many_remote_busy1");
    {
        let rt = sp_rt();
        let busy = sp::start_busy(&rt);
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("safepoint", |b| {
            b.iter(|| sp::spawn_many_remote(&rt, &mut handles))
        });
        busy.store(false, Relaxed);
    }
    {
        let rt = tk_rt();
        let busy = tk::start_busy(&rt);
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        g.bench_function("tokio", |b| {
            b.iter(|| tk::spawn_many_remote(&rt, &mut handles))
        });
        busy.store(false, Relaxed);
    }
    g.finish();
}

fn yield_many(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_many");
    let (tx, rx) = mpsc::sync_channel(YIELD_TASKS);
    {
        let rt = sp_rt();
        g.bench_function("safepoint", |b| b.iter(|| sp::yield_many(&rt, &tx, &rx)));
    }
    {
        let rt = tk_rt();
        g.bench_function("tokio", |b| b.iter(|| tk::yield_many(&rt, &tx, &rx)));
    }
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("ping_pong");
    let (tx, rx) = mpsc::sync_channel(1000);
    let rem = Arc::new(AtomicUsize::new(0));
    {
        let rt = sp_rt();
        g.bench_function("safepoint", |b| {
            b.iter(|| sp::ping_pong(&rt, &tx, &rx, &rem))
        });
    }
    {
        let rt = tk_rt();
        g.bench_function("tokio", |b| b.iter(|| tk::ping_pong(&rt, &tx, &rx, &rem)));
    }
    g.finish();
}

fn chained_spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("chained_spawn");
    let (tx, rx) = mpsc::sync_channel(1000);
    {
        let rt = sp_rt();
        g.bench_function("safepoint", |b| b.iter(|| sp::chained_spawn(&rt, &tx, &rx)));
    }
    {
        let rt = tk_rt();
        g.bench_function("tokio", |b| b.iter(|| tk::chained_spawn(&rt, &tx, &rx)));
    }
    g.finish();
}

criterion_group!(
    scheduler,
    spawn_many_local,
    spawn_many_remote_idle,
    spawn_many_remote_busy1,
    block_on_each_idle,
    block_on_each_busy,
    yield_many,
    ping_pong,
    chained_spawn
);
criterion_main!(scheduler);
