//! [`Interval`]: ticks at a fixed period, with tokio's missed-tick policies.
//!
//! It is one [`Sleep`] re-armed after every tick, so an interval costs one wheel
//! entry however long it runs. The policy for ticks missed while the task was
//! busy is tokio's, so code moved from tokio behaves the same.

use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{Instant, Sleep};
use crate::driver::context;

/// Ticks first at once, then every `period`. Panics if `period` is zero or
/// outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{interval, Duration};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let mut every = interval(Duration::from_millis(10));
///     let first = every.tick().await; // at once
///     let second = every.tick().await; // 10 ms later
///     assert_eq!(second - first, Duration::from_millis(10));
/// });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    let handle = context::current();
    let now = handle.clock().now();
    Interval::new(handle, now, period)
}

/// Ticks first at `start`, then every `period`. Panics if `period` is zero or
/// outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{interval_at, Duration, Instant};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let start = Instant::now() + Duration::from_millis(20);
///     let mut every = interval_at(start, Duration::from_millis(5));
///     assert_eq!(every.tick().await, start); // 20 ms from now
/// });
/// ```
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    Interval::new(context::current(), start, period)
}

/// What an [`Interval`] does about ticks it missed because it was not polled
/// in time (the same three choices, and meanings, as tokio).
///
/// With a 10 ms period, ticks due at 10, 20, 30, ... and a task that next polls at
/// 45 ms: `Burst` yields 20, 30, 40 at once and goes on at 50; `Delay` yields one
/// tick now and goes on at 55, 65; `Skip` yields one tick now and goes on at 50.
///
/// # Examples
///
/// ```
/// use safepoint_io::time::MissedTickBehavior;
/// assert_eq!(MissedTickBehavior::default(), MissedTickBehavior::Burst);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks back to back until caught up, keeping the original
    /// schedule (`start + n * period`). The default.
    #[default]
    Burst,
    /// Fire one tick now, then `period` after *now*: the schedule shifts.
    Delay,
    /// Fire one tick now, then at the next multiple of `period` on the original
    /// schedule, skipping the missed ones.
    Skip,
}

impl MissedTickBehavior {
    fn next_timeout(self, timeout: Instant, now: Instant, period: Duration) -> Instant {
        match self {
            MissedTickBehavior::Burst => timeout.far_add(period),
            MissedTickBehavior::Delay => now.far_add(period),
            MissedTickBehavior::Skip => {
                let late = now.saturating_duration_since(timeout).as_nanos();
                let rem = late % period.as_nanos();
                // `rem < period`, which is a `Duration`, so this fits.
                let rem = Duration::from_nanos(rem as u64);
                now.far_add(period - rem)
            }
        }
    }
}

/// The stream of ticks of [`interval()`] and [`interval_at`].
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::{interval, Duration, Instant, MissedTickBehavior};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let mut every = interval(Duration::from_millis(5));
///     every.set_missed_tick_behavior(MissedTickBehavior::Delay);
///     let start = Instant::now();
///     for _ in 0..3 {
///         every.tick().await;
///     }
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
#[derive(Debug)]
pub struct Interval {
    delay: Sleep,
    period: Duration,
    missed_tick_behavior: MissedTickBehavior,
}

impl Interval {
    #[track_caller]
    fn new(handle: crate::driver::Handle, start: Instant, period: Duration) -> Interval {
        assert!(period > Duration::ZERO, "`period` must be non-zero.");
        Interval {
            delay: Sleep::new(handle, start),
            period,
            missed_tick_behavior: MissedTickBehavior::default(),
        }
    }

    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; returns its scheduled instant when it is due.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if self.delay.poll_sleep(cx).is_pending() {
            return Poll::Pending;
        }
        let timeout = self.delay.deadline();
        // The interval's own driver's clock, not the polling thread's current one.
        let now = self.delay.clock_now();
        // Like tokio: a tick less than 5 ms late is not "missed" (timer slack).
        let next = if now.saturating_duration_since(timeout) > Duration::from_millis(5) {
            self.missed_tick_behavior
                .next_timeout(timeout, now, self.period)
        } else {
            timeout.far_add(self.period)
        };
        self.delay.reset_inner(next);
        Poll::Ready(timeout)
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        let next = self.delay.clock_now().far_add(self.period);
        self.delay.reset_inner(next);
    }

    /// Makes the next tick due at once.
    pub fn reset_immediately(&mut self) {
        let now = self.delay.clock_now();
        self.delay.reset_inner(now);
    }

    /// Makes the next tick due at `deadline`.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.delay.reset_inner(deadline);
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The current missed-tick policy.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed_tick_behavior
    }

    /// Sets the missed-tick policy.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed_tick_behavior = behavior;
    }
}
