//! Task-API benches: `JoinSet` and `LocalSet`, on safepoint and on tokio's
//! multi-thread runtime side by side (4 workers each, built once per
//! group). Bench ids are `<workload>/safepoint` and `<workload>/tokio`;
//! both crates spell the API the same, so one macro writes both sides.
//!
//! - `joinset_join_10k`: spawn 10 000 tasks (each yields once) into a
//!   `JoinSet` from `block_on`, then `join_next` them all.
//! - `joinset_shutdown_10k`: spawn 10 000 tasks that never finish, then
//!   `shutdown().await` (abort all, join all).
//! - `localset_spawn_10k`: inside `LocalSet::block_on`, `spawn_local` 10 000
//!   `!Send` tasks (each yields once) and await their handles.
//!
//! Each workload is measured twice: `<name>` by wall time, `<name>_cpu` by
//! the CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`), since on
//! a shared, overloaded machine the wall time mostly measures how long the
//! threads waited for a core.

use std::rc::Rc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use safepoint_benches::{sp_rt, tk_rt};

const N: u64 = 10_000;

macro_rules! workloads {
    ($m:ident, $k:ident, $rt:ty) => {
        mod $m {
            use super::*;
            use $k::task::{spawn_local, yield_now, JoinSet, LocalSet};

            pub fn joinset_join(rt: &$rt) -> u64 {
                rt.block_on(async {
                    let mut set = JoinSet::new();
                    for i in 0..N {
                        set.spawn(async move {
                            yield_now().await;
                            i
                        });
                    }
                    let mut sum = 0;
                    while let Some(res) = set.join_next().await {
                        sum += res.unwrap();
                    }
                    sum
                })
            }

            pub fn joinset_shutdown(rt: &$rt) {
                rt.block_on(async {
                    let mut set = JoinSet::new();
                    for _ in 0..N {
                        set.spawn(std::future::pending::<()>());
                    }
                    set.shutdown().await;
                })
            }

            pub fn localset_spawn(rt: &$rt) -> u64 {
                let local = LocalSet::new();
                local.block_on(rt, async {
                    let shared = Rc::new(1u64); // !Send
                    let mut handles = Vec::with_capacity(N as usize);
                    for _ in 0..N {
                        let shared = shared.clone();
                        handles.push(spawn_local(async move {
                            yield_now().await;
                            *shared
                        }));
                    }
                    let mut sum = 0;
                    for h in handles {
                        sum += h.await.unwrap();
                    }
                    sum
                })
            }
        }
    };
}

workloads!(sp, safepoint, safepoint::Runtime);
workloads!(tk, tokio, tokio::runtime::Runtime);

/// CPU time of the whole process (every thread), for the `_cpu` rows.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one `timespec` into the one we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The process CPU time `iters` runs of `work` take.
fn cpu_time(iters: u64, work: &dyn Fn()) -> Duration {
    let start = process_cpu();
    for _ in 0..iters {
        work();
    }
    process_cpu() - start
}

/// Benches `work` on both runtimes twice: `<name>` by wall time, and
/// `<name>_cpu` by the CPU time the process spent (all threads), which the
/// other processes on a shared machine disturb much less.
fn both(c: &mut Criterion, name: &str, sp_work: impl Fn(), tk_work: impl Fn()) {
    let mut g = c.benchmark_group(name);
    g.bench_function("safepoint", |b| b.iter(&sp_work));
    g.bench_function("tokio", |b| b.iter(&tk_work));
    g.finish();
    let mut g = c.benchmark_group(format!("{name}_cpu"));
    g.bench_function("safepoint", |b| {
        b.iter_custom(|iters| cpu_time(iters, &sp_work))
    });
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| cpu_time(iters, &tk_work))
    });
    g.finish();
}

fn tasks(c: &mut Criterion) {
    let sp = sp_rt();
    let tk = tk_rt();
    let sum = N * (N - 1) / 2;
    both(
        c,
        "joinset_join_10k",
        || assert_eq!(sp::joinset_join(&sp), sum),
        || assert_eq!(tk::joinset_join(&tk), sum),
    );
    both(
        c,
        "joinset_shutdown_10k",
        || sp::joinset_shutdown(&sp),
        || tk::joinset_shutdown(&tk),
    );
    both(
        c,
        "localset_spawn_10k",
        || assert_eq!(sp::localset_spawn(&sp), N),
        || assert_eq!(tk::localset_spawn(&tk), N),
    );
}

criterion_group!(task_api, tasks);
criterion_main!(task_api);
