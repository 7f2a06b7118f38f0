//! A log line printed at most once per interval, with a count of the ones
//! left out.
//!
//! Why it exists: some events come in floods a client controls (refused
//! connections, failed accepts at the descriptor limit); printing each one
//! turns a misbehaving client into a full disk and hides everything else in
//! the log. Redis rate-limits the same messages.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A rate-limited log line.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use safepoint_examples::kv::ratelog::RateLimited;
///
/// let log = RateLimited::new(Duration::from_secs(1));
/// assert!(log.allow().is_some()); // the first is printed
/// assert!(log.allow().is_none()); // the next ones within a second are counted
/// ```
pub struct RateLimited {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimited {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> RateLimited {
        RateLimited {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(suppressed)` if a line may be printed now (with how many were
    /// left out since the last one); `None` if this one is left out.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock();
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(suppressed)
            }
        }
    }

    /// Prints `message` to stderr if allowed now, noting the lines left out.
    pub fn warn(&self, message: impl FnOnce() -> String) {
        if let Some(suppressed) = self.allow() {
            if suppressed > 0 {
                eprintln!("{} ({suppressed} similar messages suppressed)", message());
            } else {
                eprintln!("{}", message());
            }
        }
    }
}
