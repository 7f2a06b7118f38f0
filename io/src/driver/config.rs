//! What a [`Driver`](super::Driver) enables and which clock it reads.
//!
//! A plain struct with public fields (plus `Default`) rather than a builder: the
//! runtime's own `Builder` is the user-facing API and simply fills this in.

use crate::time::Clock;

/// Configuration of a [`Driver`](super::Driver).
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::time::Clock;
///
/// let config = Config { clock: Clock::new_virtual(), ..Config::default() };
/// let driver = Driver::new(config).unwrap();
/// assert!(driver.handle().clock().is_virtual());
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Allow sockets to register with the reactor. When off, creating a socket panics.
    pub enable_io: bool,
    /// Allow timers. When off, `sleep` and friends panic.
    pub enable_time: bool,
    /// The clock timers are measured against.
    pub clock: Clock,
}

impl Default for Config {
    /// I/O and time on, real clock.
    fn default() -> Config {
        Config {
            enable_io: true,
            enable_time: true,
            clock: Clock::real(),
        }
    }
}
