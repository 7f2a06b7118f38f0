//! What `#[safepoint::main]` and `#[safepoint::test]` expand to.
//!
//! The macros (crate `safepoint-macros`) only parse arguments and wrap the
//! function; everything that runs lives here, as ordinary Rust that is
//! tested and documented like the rest of the runtime, and that the
//! generated code reaches as `::safepoint::entry::...`. Not a stable API:
//! write `#[safepoint::test]` (or use [`Builder`](crate::Builder)) instead.
//!
//! - `flavors`: the multi-thread entry points (`main`, tests).
//! - `seeds`: the deterministic test runner: seeds, environment, replay
//!   messages, the determinism check.
//! - `site`: where a test lives, and the cargo command that replays it.
//! - `outcome`: what counts as a failed test (a panic, an `Err`).

mod flavors;
mod outcome;
mod seeds;
mod site;

pub use flavors::{main, multi_thread_test};
pub use outcome::Outcome;
pub use seeds::{deterministic_test, Seeds};
pub use site::Site;
