//! The deterministic flavour: one caller-driven thread, seeded
//! interleavings, virtual time.
//!
//! - `runner`: rounds, `block_on`, `run_until_blocked`, `advance`, deadlock
//!   detection.
//! - `rng`: the seeded PRNG that orders each round.

mod rng;
pub(crate) mod runner;

pub(crate) use runner::Deterministic;
