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
//!
//! The log also keeps the last few tasks that blocked during the stop: the
//! last of all to block is what a stop that did complete waited for, and
//! the slowest recent stops keep their names for inspection in the metrics.

use std::time::{Duration, Instant};

use crate::task::{Id, TaskInfo};

/// At most this many records per worker: a report names the worst few, not
/// a million.
const CAP: usize = 64;

/// The last tasks to block during a stop, kept per worker.
const LAST_BLOCKED: usize = 4;

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) info: TaskInfo,
    pub(crate) first_seen: Instant,
    pub(crate) polling_since: Option<Instant>,
    /// Polls begun since the request.
    pub(crate) polls: u64,
}

/// A task that was runnable during a stop and then blocked (or finished).
#[derive(Clone, Debug)]
pub(crate) struct Arrival {
    pub(crate) info: TaskInfo,
    /// `None` for a poll that began before the request: runnable since
    /// at least the request.
    pub(crate) first_seen: Option<Instant>,
    pub(crate) blocked_at: Instant,
    pub(crate) polls: u64,
}

#[derive(Default)]
pub(crate) struct LaggardLog {
    generation: u64,
    records: Vec<Record>,
    /// The last `LAST_BLOCKED` arrivals, oldest first.
    last_blocked: Vec<Arrival>,
}

impl LaggardLog {
    /// A poll of `info`'s task starts during stop `generation`.
    pub(crate) fn begin(&mut self, generation: u64, id: Id, info: impl FnOnce() -> TaskInfo) {
        if self.generation != generation {
            self.generation = generation;
            self.records.clear();
            self.last_blocked.clear();
        }
        let now = Instant::now();
        if let Some(r) = self.records.iter_mut().find(|r| r.info.id == id) {
            r.polling_since = Some(now);
            r.polls += 1;
        } else if self.records.len() < CAP {
            self.records.push(Record {
                info: info(),
                first_seen: now,
                polling_since: Some(now),
                polls: 1,
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
                let r = self.records.swap_remove(i);
                self.push_arrival(Arrival {
                    info: r.info,
                    first_seen: Some(r.first_seen),
                    blocked_at: Instant::now(),
                    polls: r.polls,
                });
            }
        }
    }

    /// A poll that began before stop `generation` was requested ended
    /// during it with the task blocked: often the very poll the stop waited
    /// for, so it is kept with the last arrivals (it has no record: the
    /// log starts at a poll's beginning).
    pub(crate) fn arrive_after_older_poll(&mut self, generation: u64, info: TaskInfo) {
        if self.generation != generation {
            self.generation = generation;
            self.records.clear();
            self.last_blocked.clear();
        }
        self.push_arrival(Arrival {
            info,
            first_seen: None,
            blocked_at: Instant::now(),
            polls: 1,
        });
    }

    fn push_arrival(&mut self, arrival: Arrival) {
        if self.last_blocked.len() == LAST_BLOCKED {
            self.last_blocked.remove(0);
        }
        self.last_blocked.push(arrival);
    }

    /// The records of stop `generation`.
    pub(crate) fn collect(&self, generation: u64, out: &mut Vec<Record>) {
        if self.generation == generation {
            out.extend(self.records.iter().cloned());
        }
    }

    /// The last tasks to block during stop `generation`.
    pub(crate) fn collect_arrivals(&self, generation: u64, out: &mut Vec<Arrival>) {
        if self.generation == generation {
            out.extend(self.last_blocked.iter().cloned());
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
