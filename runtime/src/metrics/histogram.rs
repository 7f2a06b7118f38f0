//! `PauseHistogram`: a fixed-size, log-linear histogram of durations.
//!
//! Go 1.22 reports its stop-the-world pauses as two histograms (time to
//! stop, and the total pause from request to release), because a pause
//! distribution's tail is what a server is judged by and a percentile over
//! a ring of recent samples hides how often the tail happens. This is the
//! same shape: counts since the runtime started, in buckets four to each
//! power of two (each bucket's upper bound at most 25 % above its lower),
//! from 256 ns (everything below is the first bucket) to about 34 s
//! (everything above is the last). Recording is an index computation and an
//! increment, under the census lock every stop already takes.

use std::time::Duration;

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 2;
const SUB: usize = 1 << SUB_BITS;
/// The first power of two with buckets of its own: 2^8 ns = 256 ns.
const MIN_POW: u32 = 8;
/// The last: 2^35 ns, about 34 s.
const MAX_POW: u32 = 35;
const BUCKETS: usize = 1 + (MAX_POW - MIN_POW + 1) as usize * SUB;

/// A histogram of pause durations, from
/// [`RuntimeMetrics`](crate::RuntimeMetrics): counts since the runtime
/// started, in log-linear buckets (four per power of two, 256 ns to ~34 s).
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// for _ in 0..3 {
///     drop(rt.handle().stop_the_world_blocking());
/// }
/// let m = rt.metrics();
/// assert_eq!(m.time_to_stop.count(), 3);
/// assert_eq!(m.pause.count(), 3);
/// assert!(m.pause.quantile(0.99) >= m.time_to_stop.quantile(0.0));
/// for (below, count) in m.pause.buckets() {
///     println!("< {below:?}: {count}");
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PauseHistogram {
    counts: Box<[u64]>,
    count: u64,
    max: Duration,
}

impl Default for PauseHistogram {
    fn default() -> PauseHistogram {
        PauseHistogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            max: Duration::ZERO,
        }
    }
}

/// The bucket of `ns` nanoseconds.
fn bucket_of(ns: u64) -> usize {
    if ns < 1 << MIN_POW {
        return 0;
    }
    let pow = 63 - ns.leading_zeros();
    if pow > MAX_POW {
        return BUCKETS - 1;
    }
    let sub = ((ns >> (pow - SUB_BITS)) as usize) & (SUB - 1);
    1 + (pow - MIN_POW) as usize * SUB + sub
}

/// The exclusive upper bound of bucket `i`, in nanoseconds (`u64::MAX` for
/// the last).
fn upper_bound(i: usize) -> u64 {
    if i == 0 {
        return 1 << MIN_POW;
    }
    if i == BUCKETS - 1 {
        return u64::MAX;
    }
    let pow = MIN_POW + ((i - 1) / SUB) as u32;
    let sub = ((i - 1) % SUB) as u64;
    (1u64 << pow) + (sub + 1) * (1u64 << (pow - SUB_BITS))
}

impl PauseHistogram {
    pub(crate) fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.counts[bucket_of(ns)] += 1;
        self.count += 1;
        self.max = self.max.max(d);
    }

    /// How many pauses were recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// assert_eq!(rt.metrics().pause.count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The longest pause recorded (exact, not a bucket bound).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// drop(rt.handle().stop_the_world_blocking());
    /// assert!(rt.metrics().pause.max() > std::time::Duration::ZERO);
    /// ```
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The `q` quantile (0.0 to 1.0), as the upper bound of the bucket it
    /// falls in (at most 25 % above the true value), capped at
    /// [`max`](Self::max); zero when nothing was recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// drop(rt.handle().stop_the_world_blocking());
    /// let m = rt.metrics();
    /// assert!(m.time_to_stop.quantile(0.5) <= m.time_to_stop.max());
    /// ```
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.count as f64 * q.clamp(0.0, 1.0)).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(upper_bound(i)).min(self.max);
            }
        }
        self.max
    }

    /// The non-empty buckets, shortest first: each bucket's exclusive upper
    /// bound and its count (the last bucket's bound is `Duration::MAX`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// drop(rt.handle().stop_the_world_blocking());
    /// let total: u64 = rt.metrics().pause.buckets().map(|(_, n)| n).sum();
    /// assert_eq!(total, 1);
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let upper = match upper_bound(i) {
                    u64::MAX => Duration::MAX,
                    ns => Duration::from_nanos(ns),
                };
                (upper, c)
            })
    }
}

impl std::fmt::Debug for PauseHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PauseHistogram")
            .field("count", &self.count)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .field("max", &self.max)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_falls_in_a_bucket_whose_bounds_hold_it() {
        let mut prev_upper = 0;
        for i in 0..BUCKETS - 1 {
            let upper = upper_bound(i);
            assert!(upper > prev_upper, "bounds increase");
            prev_upper = upper;
        }
        for ns in [
            0u64,
            1,
            255,
            256,
            257,
            320,
            1000,
            1023,
            1024,
            99_999,
            1 << 35,
            u64::MAX,
        ] {
            let i = bucket_of(ns);
            assert!(
                ns < upper_bound(i) || i == BUCKETS - 1,
                "{ns} above bucket {i}"
            );
            if i > 0 {
                assert!(ns >= upper_bound(i - 1), "{ns} below bucket {i}");
            }
        }
    }

    #[test]
    fn quantiles_are_within_a_quarter_of_the_truth() {
        let mut h = PauseHistogram::default();
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.max(), Duration::from_micros(100));
        let p50 = h.quantile(0.5);
        assert!(
            p50 >= Duration::from_micros(50) && p50 <= Duration::from_micros(63),
            "{p50:?}"
        );
        assert_eq!(h.quantile(1.0), Duration::from_micros(100));
        assert_eq!(h.buckets().map(|(_, n)| n).sum::<u64>(), 100);
    }
}
