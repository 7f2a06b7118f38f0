//! Laggard records: which tasks ran while a stop was pending.
//!
//! A stop that times out must name what kept it from stopping (protocol
//! point 6). While a stop is requested, each worker notes every task it
//! polls in its own log (its own lock, so workers never contend): first
//! seen, whether it is being polled right now, and drops the record when a
//! poll ends with the task blocked or finished. What is left when the
//! request times out is exactly the set of tasks that were runnable during
//! the stop. With no stop pending, none of this runs: the worker's only
//! cost is the one load of the phase flag per poll.

use std::time::{Duration, Instant};

use crate::task::{Id, TaskInfo};

/// At most this many records per worker: a report names the worst few, not
/// a million.
const CAP: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) info: TaskInfo,
    pub(crate) first_seen: Instant,
    pub(crate) polling_since: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct LaggardLog {
    generation: u64,
    records: Vec<Record>,
}

impl LaggardLog {
    /// A poll of `info`'s task starts during stop `generation`.
    pub(crate) fn begin(&mut self, generation: u64, id: Id, info: impl FnOnce() -> TaskInfo) {
        if self.generation != generation {
            self.generation = generation;
            self.records.clear();
        }
        let now = Instant::now();
        if let Some(r) = self.records.iter_mut().find(|r| r.info.id == id) {
            r.polling_since = Some(now);
        } else if self.records.len() < CAP {
            self.records.push(Record {
                info: info(),
                first_seen: now,
                polling_since: Some(now),
            });
        }
    }

    /// The poll ended; `still_runnable` if the task woke itself or was woken
    /// while it ran.
    pub(crate) fn end(&mut self, id: Id, still_runnable: bool) {
        if let Some(i) = self.records.iter().position(|r| r.info.id == id) {
            if still_runnable {
                self.records[i].polling_since = None;
            } else {
                self.records.swap_remove(i);
            }
        }
    }

    /// The records of stop `generation`.
    pub(crate) fn collect(&self, generation: u64, out: &mut Vec<Record>) {
        if self.generation == generation {
            out.extend(self.records.iter().cloned());
        }
    }
}

/// How long a record's task has been runnable, and polled, as of `now`.
pub(crate) fn ages(r: &Record, now: Instant) -> (Duration, Option<Duration>) {
    (
        now.saturating_duration_since(r.first_seen),
        r.polling_since.map(|s| now.saturating_duration_since(s)),
    )
}
