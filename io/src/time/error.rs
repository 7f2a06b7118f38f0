//! [`Elapsed`]: the error of a [`Timeout`](super::Timeout) whose time ran out.
//!
//! A unit struct like tokio's, convertible into `io::Error` with kind `TimedOut`
//! so it composes with `?` in I/O code.

use std::{error, fmt, io};

/// The deadline of a [`timeout`](super::timeout()) passed before its future finished.
///
/// # Examples
///
/// ```
/// use safepoint_io::time::Elapsed;
/// let e: std::io::Error = Elapsed::new().into();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Elapsed(());

impl Elapsed {
    /// Creates the error (useful in tests of code that handles it).
    pub fn new() -> Elapsed {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(e: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, e)
    }
}
