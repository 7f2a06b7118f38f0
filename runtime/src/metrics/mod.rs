//! `RuntimeMetrics`: a snapshot of the runtime's counters.
//!
//! Counters are per worker and written only by their worker; a snapshot sums
//! them when asked, so collecting metrics costs the scheduler nothing. Stop
//! statistics live under the census lock (every stop takes it anyway).
//!
//! - `histogram`: `PauseHistogram`, the time-to-stop and pause histograms.
//! - `slow_stops`: the slowest recent stops and what each waited for.

mod histogram;
mod slow_stops;

use std::time::Duration;

pub use histogram::PauseHistogram;
pub(crate) use slow_stops::SlowStops;
pub use slow_stops::{SlowStop, StopArrival};

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
    /// Every completed stop's time to stop (request to stopped), since the
    /// runtime started: Go's `/sched/pauses/stopping` histogram.
    pub time_to_stop: PauseHistogram,
    /// Every completed stop's whole pause, from the request to the release
    /// (time to stop plus time held): Go's `/sched/pauses/total`.
    pub pause: PauseHistogram,
    /// The slowest of the recent stops (the last 4 096), slowest first, each
    /// with the last tasks it waited for.
    pub slowest_stops: Vec<SlowStop>,
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
    m.time_to_stop = stats.time_to_stop;
    m.pause = stats.pause;
    m.slowest_stops = stats.slowest_stops;
    m
}
