//! `RuntimeMetrics`: a snapshot of the runtime's counters.
//!
//! Counters are per worker and written only by their worker; a snapshot sums
//! them when asked, so collecting metrics costs the scheduler nothing.

use std::time::Duration;

use crate::scheduler::Shared;

/// A snapshot of a runtime's counters, from [`Runtime::metrics`](crate::Runtime::metrics).
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// rt.block_on(async { safepoint::spawn(async {}).await.unwrap() });
/// let m = rt.metrics();
/// assert!(m.polls >= 1);
/// println!("{m:?}");
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// Worker threads.
    pub workers: usize,
    /// Live tasks (spawned and not yet finished or dropped).
    pub live_tasks: usize,
    /// Task polls by the workers.
    pub polls: u64,
    /// Successful steals (each moves a batch).
    pub steals: u64,
    /// Times a worker parked for lack of work.
    pub parks: u64,
    /// Tasks spawned from inside the runtime / from outside it.
    pub local_spawns: u64,
    /// Tasks spawned from threads outside the workers.
    pub remote_spawns: u64,
    /// Tasks waiting in the global injector.
    pub injector_depth: usize,
    /// Blocking-pool threads alive, and how many of them are idle.
    pub blocking_threads: usize,
    /// Idle blocking-pool threads.
    pub idle_blocking_threads: usize,
    /// Completed stops (stop-the-world requests that stopped the world).
    pub stops: u64,
    /// Time-to-safepoint percentiles over recent stops.
    pub ttsp_p50: Duration,
    /// 99th percentile time to safepoint.
    pub ttsp_p99: Duration,
    /// Longest time to safepoint seen.
    pub ttsp_max: Duration,
    /// Total time the world has been stopped.
    pub stopped_total: Duration,
}

pub(crate) fn collect(shared: &Shared) -> RuntimeMetrics {
    let (blocking_threads, idle_blocking_threads, _) = shared.blocking.counts();
    let mut m = RuntimeMetrics {
        workers: shared.remotes.len(),
        live_tasks: shared.registry.len(),
        injector_depth: shared.injector.len(),
        remote_spawns: shared.remote_spawns.get(),
        blocking_threads,
        idle_blocking_threads,
        ..RuntimeMetrics::default()
    };
    for r in shared.remotes.iter() {
        m.polls += r.stats.polls.get();
        m.steals += r.stats.steals.get();
        m.parks += r.stats.parks.get();
        m.local_spawns += r.stats.spawned.get();
    }
    let stats = shared.census.stats();
    m.stops = stats.stops;
    m.ttsp_p50 = stats.ttsp_p50;
    m.ttsp_p99 = stats.ttsp_p99;
    m.ttsp_max = stats.ttsp_max;
    m.stopped_total = stats.stopped_total;
    m
}
