//! The slowest recent stops, with the last tasks each one waited for.
//!
//! A histogram says how often stops are slow; this says why, after the
//! fact: for each of the few slowest stops among the recent ones, the tasks
//! that were the last to block before the world stopped (taken from the
//! workers' laggard logs when the requester learns the world is stopped).
//! A stop that timed out has its own report (`StopTimedOut`); these are the
//! ones that completed, slowly.

use std::time::Duration;

use crate::task::Id;

/// How many slow stops are kept.
const KEEP: usize = 8;

/// Only the last this-many stops compete: "recent".
const WINDOW: u64 = 4096;

/// One of the slowest recent stops, from
/// [`RuntimeMetrics::slowest_stops`](crate::RuntimeMetrics::slowest_stops).
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// drop(rt.handle().stop_the_world_blocking());
/// for stop in &rt.metrics().slowest_stops {
///     println!("stop #{} took {:?}", stop.stop, stop.time_to_stop);
///     for task in &stop.last_to_block {
///         println!("  waited for task {} ({:?}) at {}", task.id, task.name, task.location);
///     }
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SlowStop {
    /// Which stop it was: 1 for the runtime's first.
    pub stop: u64,
    /// From the request becoming active to the world stopping.
    pub time_to_stop: Duration,
    /// The last tasks to block (or park at a safepoint) before the world
    /// stopped, the last first: what the stop waited for. Empty when the
    /// workers had nothing to finish.
    pub last_to_block: Vec<StopArrival>,
}

/// A task that was still running when a stop was requested, and blocked
/// before it completed.
///
/// # Examples
///
/// ```
/// # fn show(a: &safepoint::StopArrival) {
/// println!("{} ran {:?} ({} polls) before it blocked", a.location, a.runnable_for, a.polls);
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StopArrival {
    /// The task's id.
    pub id: Id,
    /// Its name, if it was spawned with one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub location: String,
    /// From when a worker first polled it during the request to when it
    /// blocked.
    pub runnable_for: Duration,
    /// Polls it took during the request.
    pub polls: u64,
}

/// The keeper, under the census lock.
#[derive(Default)]
pub(crate) struct SlowStops {
    /// Slowest first.
    kept: Vec<SlowStop>,
}

impl SlowStops {
    /// Drops stops that left the window before `stop`.
    fn expire(&mut self, stop: u64) {
        self.kept
            .retain(|s| s.stop + WINDOW > stop || s.stop > stop);
    }

    /// Whether stop number `stop`, which took `ttsp`, would be kept: asked
    /// first, so that the names are gathered only for the stops kept.
    pub(crate) fn wants(&mut self, stop: u64, ttsp: Duration) -> bool {
        self.expire(stop);
        self.kept.len() < KEEP || self.kept.last().is_some_and(|s| s.time_to_stop < ttsp)
    }

    pub(crate) fn insert(&mut self, slow: SlowStop) {
        if !self.wants(slow.stop, slow.time_to_stop)
            || self.kept.iter().any(|s| s.stop == slow.stop)
        {
            return;
        }
        let at = self
            .kept
            .partition_point(|s| s.time_to_stop >= slow.time_to_stop);
        self.kept.insert(at, slow);
        self.kept.truncate(KEEP);
    }

    pub(crate) fn snapshot(&self) -> Vec<SlowStop> {
        self.kept.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(n: u64, us: u64) -> SlowStop {
        SlowStop {
            stop: n,
            time_to_stop: Duration::from_micros(us),
            last_to_block: Vec::new(),
        }
    }

    #[test]
    fn keeps_the_slowest_recent_stops_slowest_first() {
        let mut s = SlowStops::default();
        for n in 1..=20 {
            s.insert(stop(n, n * 10));
        }
        let kept: Vec<u64> = s.snapshot().iter().map(|s| s.stop).collect();
        assert_eq!(kept, [20, 19, 18, 17, 16, 15, 14, 13]);
        assert!(!s.wants(21, Duration::from_micros(1)));
        // Far later, the old ones have left the window.
        assert!(s.wants(20 + WINDOW + 100, Duration::from_micros(1)));
        s.insert(stop(20 + WINDOW + 100, 1));
        assert_eq!(s.snapshot().len(), 1);
    }
}
