//! Signals, delivered through the reactor.
//!
//! * `registry`: the per-driver signal table and the lazily registered source.
//! * [`unix`]: [`unix::signal`], [`unix::Signal`], [`unix::SignalKind`].
//! * `ctrl_c`: [`ctrl_c`] and [`terminate`], the two everyone needs.

mod ctrl_c;
pub(crate) mod registry;
pub mod unix;

pub use self::ctrl_c::{ctrl_c, terminate};
