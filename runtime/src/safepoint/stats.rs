//! Stop statistics: count, time-to-safepoint percentiles, time stopped,
//! the time-to-stop and pause histograms, the slowest recent stops.
//!
//! Kept under the census lock (every stop already takes it), so recording is
//! free of extra synchronisation. TTSP samples live in a bounded ring: the
//! percentiles describe the most recent stops, and memory stays fixed on a
//! server that stops every second for months; the histograms count every
//! stop since the start, in fixed buckets.

use std::time::Duration;

use crate::metrics::{PauseHistogram, SlowStops};

const RING: usize = 4096;

#[derive(Default)]
pub(crate) struct StopStats {
    pub(crate) stops: u64,
    ttsp_ns: Vec<u64>,
    next: usize,
    pub(crate) ttsp_max: Duration,
    pub(crate) stopped_total: Duration,
    pub(crate) time_to_stop: PauseHistogram,
    /// Request to release, for stops that stopped the world.
    pub(crate) pause: PauseHistogram,
    pub(crate) slow: SlowStops,
}

impl StopStats {
    pub(crate) fn record_stop(&mut self, ttsp: Duration) {
        self.stops += 1;
        let ns = ttsp.as_nanos().min(u128::from(u64::MAX)) as u64;
        if self.ttsp_ns.len() < RING {
            self.ttsp_ns.push(ns);
        } else {
            self.ttsp_ns[self.next] = ns;
            self.next = (self.next + 1) % RING;
        }
        self.ttsp_max = self.ttsp_max.max(ttsp);
        self.time_to_stop.record(ttsp);
    }

    /// A stop ends: it held the world for `held`, `pause` after its request.
    pub(crate) fn record_release(&mut self, held: Duration, pause: Duration) {
        self.stopped_total += held;
        self.pause.record(pause);
    }

    /// The `q` quantile (0..=1) of recent TTSPs; zero with no stops.
    pub(crate) fn ttsp_quantile(&self, q: f64) -> Duration {
        if self.ttsp_ns.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.ttsp_ns.clone();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        Duration::from_nanos(v[i.min(v.len() - 1)])
    }
}
