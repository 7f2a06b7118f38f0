//! What a test function's return value says about the run.
//!
//! Tests return `()` or a `Result` (as with `#[test]`); a seeded run must
//! tell an `Err` from a pass to stop at the first failing seed and name it,
//! so the return type implements [`Outcome`].

use std::fmt::Debug;

/// A test's return value: `()` or `Result<T, E: Debug>`.
///
/// # Examples
///
/// ```
/// use safepoint::entry::Outcome;
///
/// assert_eq!(().failure(), None);
/// assert_eq!(Ok::<u8, &str>(1).failure(), None);
/// assert_eq!(Err::<u8, &str>("boom").failure().as_deref(), Some("\"boom\""));
/// ```
pub trait Outcome {
    /// `Some(description)` when the value means the test failed.
    fn failure(&self) -> Option<String>;
}

impl Outcome for () {
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<T, E: Debug> Outcome for Result<T, E> {
    fn failure(&self) -> Option<String> {
        self.as_ref().err().map(|e| format!("{e:?}"))
    }
}
