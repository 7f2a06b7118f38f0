//! The timer wheel as the driver and the timer futures share it.
//!
//! The wheel sits behind a `parking_lot::Mutex` so that any thread can register
//! or cancel a timer; every critical section here is a handful of pointer
//! updates. Times are converted to 1 ms ticks since `base` (the clock's reading
//! when the driver was built): deadlines round *up* and "now" rounds *down*, so a
//! timer never fires before its deadline.
//!
//! `parked_until` is the tick a blocked turn will wake at on its own (`u64::MAX`
//! when it blocks with no timer pending, `NOT_PARKED` when no turn is blocked on
//! a real clock; a virtual-clock turn never sleeps for timers). A timer
//! registered from another thread with an earlier tick must interrupt that turn,
//! or it would fire late; registration compares under the same lock the turn
//! used to compute its timeout, so the check cannot race.

use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant as StdInstant};

use parking_lot::Mutex;

use super::wheel::Wheel;

/// Wakers fired per lock hold; bounds the time other threads wait on the lock.
const BATCH: usize = 64;

/// `parked_until` when no turn is blocked: no tick is below it, so registering
/// never needs to interrupt anything.
const NOT_PARKED: u64 = 0;

pub(crate) struct Timers {
    wheel: Mutex<Wheel>,
    base: StdInstant,
    parked_until: AtomicU64,
}

/// What registering a timer did.
pub(crate) enum Registered {
    /// Already due: complete now.
    Expired,
    /// Waiting in the wheel under this key; `unpark` says whether a blocked turn
    /// must be woken to shorten its timeout.
    Waiting { key: usize, unpark: bool },
}

impl Timers {
    pub(crate) fn new(base: StdInstant) -> Timers {
        Timers {
            wheel: Mutex::new(Wheel::new()),
            base,
            parked_until: AtomicU64::new(NOT_PARKED),
        }
    }

    /// Deadline to tick, rounding up. In `u64` from the seconds and the
    /// nanoseconds apart: `as_nanos()` is a `u128`, and its division was a
    /// call to `__udivti3` on every timer registered (hyper arms one per
    /// request). Whole seconds are whole ticks, so rounding the nanoseconds
    /// up alone rounds the sum up.
    fn deadline_tick(&self, t: StdInstant) -> u64 {
        let d = t.saturating_duration_since(self.base);
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
    }

    /// Current time to tick, rounding down (in `u64`, as above).
    fn now_tick(&self, now: StdInstant) -> u64 {
        let d = now.saturating_duration_since(self.base);
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_millis()))
    }

    fn tick_instant(&self, tick: u64) -> StdInstant {
        // Saturate far out rather than panic: a tick this large is decades away.
        self.base
            .checked_add(Duration::from_millis(tick))
            .unwrap_or_else(|| self.base + Duration::from_secs(86400 * 365 * 30))
    }

    pub(crate) fn register(&self, deadline: StdInstant, waker: &Waker) -> Registered {
        let when = self.deadline_tick(deadline);
        let mut wheel = self.wheel.lock();
        match wheel.insert(when, waker.clone()) {
            None => Registered::Expired,
            Some(key) => Registered::Waiting {
                key,
                unpark: when < self.parked_until.load(Ordering::Relaxed),
            },
        }
    }

    /// Whether timer `key` fired; if not, updates its waker.
    pub(crate) fn poll(&self, key: usize, waker: &Waker) -> bool {
        let (fired, _old_waker) = self.wheel.lock().poll(key, waker);
        // `_old_waker` drops here, after the guard (statement end) released the lock.
        fired
    }

    /// Cancels (or forgets a fired) timer.
    pub(crate) fn remove(&self, key: usize) -> Option<Waker> {
        self.wheel.lock().remove(key)
    }

    pub(crate) fn pending(&self) -> usize {
        self.wheel.lock().waiting()
    }

    pub(crate) fn next_deadline(&self) -> Option<StdInstant> {
        let tick = self.wheel.lock().next_deadline()?;
        Some(self.tick_instant(tick))
    }

    /// For a turn about to block on a real clock: how long until the next timer
    /// needs attention. Records the wake-up tick for `register` to compare with.
    pub(crate) fn park_timeout(&self, now: StdInstant) -> Option<Duration> {
        let wheel = self.wheel.lock();
        let next = wheel.next_wakeup();
        self.parked_until
            .store(next.unwrap_or(u64::MAX), Ordering::Relaxed);
        next.map(|tick| self.tick_instant(tick).saturating_duration_since(now))
    }

    /// The turn is no longer blocked.
    pub(crate) fn unparked(&self) {
        self.parked_until.store(NOT_PARKED, Ordering::Relaxed);
    }

    /// Fires every timer due at `now`, waking in batches outside the lock.
    /// Returns the number of wakers woken.
    pub(crate) fn process(&self, now: StdInstant, buf: &mut Vec<Waker>) -> usize {
        let now = self.now_tick(now);
        let mut woken = 0;
        loop {
            let done = self.wheel.lock().process(now, buf, BATCH);
            woken += buf.len();
            for w in buf.drain(..) {
                w.wake();
            }
            if done {
                return woken;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Timers;

    #[test]
    fn ticks_round_deadlines_up_and_now_down() {
        let base = Instant::now();
        let timers = Timers::new(base);
        let cases = [
            (Duration::ZERO, 0, 0),
            (Duration::from_nanos(1), 1, 0),
            (Duration::from_millis(1), 1, 1),
            (Duration::from_nanos(1_000_001), 2, 1),
            (Duration::from_nanos(999_999_999), 1000, 999),
            (Duration::from_secs(1), 1000, 1000),
            (Duration::new(1, 999_999_999), 2000, 1999),
            (
                Duration::new(86_400 * 365, 500_000),
                86_400 * 365 * 1000 + 1,
                86_400 * 365 * 1000,
            ),
        ];
        for (d, up, down) in cases {
            let t = base + d;
            assert_eq!(timers.deadline_tick(t), up, "deadline {d:?}");
            assert_eq!(timers.now_tick(t), down, "now {d:?}");
            // The same as the u128 arithmetic it replaces.
            assert_eq!(u128::from(up), d.as_nanos().div_ceil(1_000_000));
            assert_eq!(u128::from(down), d.as_millis());
        }
        // Before the base: tick 0, never an underflow.
        if let Some(early) = base.checked_sub(Duration::from_millis(5)) {
            assert_eq!(timers.deadline_tick(early), 0);
            assert_eq!(timers.now_tick(early), 0);
        }
    }
}
