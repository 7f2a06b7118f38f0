//! Time: the clock seam, `Instant`, and the timer futures.
//!
//! * `clock`: [`Clock`], real or virtual, the only place time is read.
//! * `instant`: [`Instant`], tokio-shaped, reading the current driver's clock.
//! * `wheel`: the hierarchical timing wheel (O(1) insert and cancel).
//! * `timers`: the wheel behind its lock, as the driver and the futures use it.
//! * `sleep`: [`Sleep`], [`sleep()`], [`sleep_until`].
//! * `timeout`: [`Timeout`], [`timeout()`], [`timeout_at`].
//! * `interval`: [`Interval`], [`MissedTickBehavior`].
//! * `error`: [`Elapsed`].

mod clock;
mod error;
mod instant;
mod interval;
mod sleep;
mod timeout;
pub(crate) mod timers;
mod wheel;

pub use self::clock::Clock;
pub use self::error::Elapsed;
pub use self::instant::Instant;
pub use self::interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use self::sleep::{sleep, sleep_until, Sleep};
pub use self::timeout::{timeout, timeout_at, Timeout};
pub use std::time::Duration;
