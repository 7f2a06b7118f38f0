//! [`Clock`]: the one place the driver and the time types read the time.
//!
//! Real clocks read `std::time::Instant::now()`. Virtual clocks (the deterministic
//! flavour) start at a fixed epoch and move only when told to, so a test can jump
//! an hour in a microsecond and get the same interleaving every run. Keeping this
//! seam in one type means no other code has to know which kind it is running on.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Instant;

/// A real or virtual clock. Cloning shares it: advancing one clone advances all.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use safepoint_io::time::Clock;
///
/// let clock = Clock::new_virtual();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(clock.now() - start, Duration::from_secs(3600));
/// ```
#[derive(Clone)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Real,
    Virtual(Arc<Virtual>),
}

struct Virtual {
    epoch: std::time::Instant,
    /// Nanoseconds since `epoch`; 584 years of range.
    offset_ns: AtomicU64,
}

impl Clock {
    /// The system's monotonic clock.
    pub fn real() -> Clock {
        Clock { kind: Kind::Real }
    }

    /// A virtual clock standing at the moment of creation until advanced.
    pub fn new_virtual() -> Clock {
        Clock {
            kind: Kind::Virtual(Arc::new(Virtual {
                epoch: std::time::Instant::now(),
                offset_ns: AtomicU64::new(0),
            })),
        }
    }

    /// Whether this clock only moves by [`advance`](Self::advance).
    pub fn is_virtual(&self) -> bool {
        matches!(self.kind, Kind::Virtual(_))
    }

    /// The current time of this clock.
    pub fn now(&self) -> Instant {
        Instant::from_std(self.now_std())
    }

    pub(crate) fn now_std(&self) -> std::time::Instant {
        match &self.kind {
            Kind::Real => std::time::Instant::now(),
            Kind::Virtual(v) => v.epoch + Duration::from_nanos(v.offset_ns.load(Ordering::Acquire)),
        }
    }

    /// Moves a virtual clock forward by `d`.
    ///
    /// # Panics
    ///
    /// On a real clock, which cannot be moved.
    #[track_caller]
    pub fn advance(&self, d: Duration) {
        match &self.kind {
            Kind::Real => panic!("Clock::advance called on a real clock; only virtual clocks move"),
            Kind::Virtual(v) => {
                v.offset_ns.fetch_add(duration_ns(d), Ordering::AcqRel);
            }
        }
    }

    /// Moves a virtual clock forward to `t`; a no-op if `t` is not in the future.
    ///
    /// # Panics
    ///
    /// On a real clock.
    #[track_caller]
    pub fn advance_to(&self, t: Instant) {
        match &self.kind {
            Kind::Real => {
                panic!("Clock::advance_to called on a real clock; only virtual clocks move")
            }
            Kind::Virtual(v) => {
                let target = duration_ns(t.into_std().saturating_duration_since(v.epoch));
                v.offset_ns.fetch_max(target, Ordering::AcqRel);
            }
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Real => f.write_str("Clock::Real"),
            Kind::Virtual(v) => f
                .debug_struct("Clock::Virtual")
                .field(
                    "elapsed",
                    &Duration::from_nanos(v.offset_ns.load(Ordering::Acquire)),
                )
                .finish(),
        }
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::real()
    }
}
