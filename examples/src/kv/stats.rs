//! Measurements: a latency histogram and the checkpoint record behind INFO's
//! persistence section and the demo's pause figures.
//!
//! Why it is shaped so: the demo records millions of request latencies, so the
//! histogram keeps counts in log-linear buckets (64 per power of two, under 2%
//! error) instead of samples; it merges, so each load client records into its
//! own without sharing a cache line. Checkpoint figures are few and written by
//! one task, so they sit behind one mutex.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;

/// A histogram of durations in microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; bucket(u64::MAX) + 1],
            total: 0,
            max: 0,
        }
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Records one value in microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest sample, exactly; 0 when empty.
    pub fn max_us(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), within the bucket precision; never
    /// above the max; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }
}

fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros();
    let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The largest value that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let sub = i % SUB;
    let low = (1u64 << exp) | (sub << (exp - SUB_BITS));
    low.saturating_add((1u64 << (exp - SUB_BITS)) - 1)
}

/// One checkpoint's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Keys written.
    pub keys: u64,
    /// From the stop request until the world was stopped.
    pub time_to_stop: Duration,
    /// From the stop request until the world resumed: what clients felt.
    pub pause: Duration,
    /// Serialising and writing the file, off the workers.
    pub write: Duration,
    /// When it completed, in ms since the Unix epoch.
    pub saved_at_ms: u64,
}

/// Everything INFO's persistence section reports.
#[derive(Debug, Clone, Default)]
pub struct CheckpointSummary {
    /// Checkpoints written since start.
    pub taken: u64,
    /// Checkpoints that failed since start.
    pub failed: u64,
    /// Time of the last successful save (or of the snapshot loaded at start), ms since the epoch.
    pub last_save_ms: Option<u64>,
    /// The most recent successful checkpoint.
    pub last: Option<CheckpointRecord>,
    /// The most recent failure's message.
    pub last_error: Option<String>,
    /// Whether the most recent checkpoint failed.
    pub last_failed: bool,
    /// Every pause, in µs.
    pub pauses: Histogram,
    /// Every time to stop, in µs.
    pub stops: Histogram,
}

/// The shared checkpoint record.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    inner: Mutex<CheckpointSummary>,
    /// `last_failed`, readable without the lock: every write command asks.
    last_failed: AtomicBool,
}

impl CheckpointStats {
    /// Starts the record, with the save time of a snapshot loaded at start.
    pub fn new(loaded_save_ms: Option<u64>) -> CheckpointStats {
        CheckpointStats {
            inner: Mutex::new(CheckpointSummary {
                last_save_ms: loaded_save_ms,
                ..CheckpointSummary::default()
            }),
            last_failed: AtomicBool::new(false),
        }
    }

    /// Records a pause (counted even if the write that follows fails).
    pub fn record_pause(&self, time_to_stop: Duration, pause: Duration) {
        let mut s = self.inner.lock();
        s.stops.record(time_to_stop);
        s.pauses.record(pause);
    }

    /// Records a checkpoint written to disk.
    pub fn record_success(&self, record: CheckpointRecord) {
        let mut s = self.inner.lock();
        s.taken += 1;
        s.last_save_ms = Some(record.saved_at_ms);
        s.last_failed = false;
        s.last = Some(record);
        self.last_failed.store(false, Ordering::Release);
    }

    /// Records a checkpoint whose write failed.
    pub fn record_failure(&self, message: String) {
        let mut s = self.inner.lock();
        s.failed += 1;
        s.last_failed = true;
        s.last_error = Some(message);
        self.last_failed.store(true, Ordering::Release);
    }

    /// Whether the most recent checkpoint failed.
    pub fn last_failed(&self) -> bool {
        self.last_failed.load(Ordering::Acquire)
    }

    /// A copy of the record.
    pub fn summary(&self) -> CheckpointSummary {
        self.inner.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in (0..200_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last, "{us}");
            last = b;
            assert!(bucket_high(b) >= us, "{us}");
            assert!(bucket_high(b) - us <= us / 32, "{us}: {}", bucket_high(b));
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile_us(0.99), 0);
        for us in 1..=1000 {
            h.record_us(us);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max_us(), 1000);
        let p50 = h.quantile_us(0.5);
        assert!((500..=516).contains(&p50), "{p50}");
        let p99 = h.quantile_us(0.99);
        assert!((990..=1000).contains(&p99), "{p99}");
        assert_eq!(h.quantile_us(1.0), 1000);
        assert_eq!(h.quantile_us(0.0), 1);
    }

    #[test]
    fn merge() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(Duration::from_micros(10));
        b.record(Duration::from_millis(5));
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max_us(), 5000);
        assert_eq!(a.quantile_us(0.5), 10);
    }

    #[test]
    fn checkpoint_stats() {
        let stats = CheckpointStats::new(Some(7));
        assert_eq!(stats.summary().last_save_ms, Some(7));
        stats.record_pause(Duration::from_micros(40), Duration::from_micros(90));
        stats.record_success(CheckpointRecord {
            keys: 3,
            time_to_stop: Duration::from_micros(40),
            pause: Duration::from_micros(90),
            write: Duration::from_millis(2),
            saved_at_ms: 99,
        });
        stats.record_failure("disk full".into());
        let s = stats.summary();
        assert_eq!((s.taken, s.failed, s.last_save_ms), (1, 1, Some(99)));
        assert_eq!(s.pauses.max_us(), 90);
        assert_eq!(s.last_error.as_deref(), Some("disk full"));
    }
}
