//! The deterministic flavour: one caller-driven thread, seeded
//! interleavings, virtual time.
//!
//! - `runner`: rounds, `block_on`, `run_until_blocked`, `advance`, deadlock
//!   detection.
//! - `rng`: the seeded PRNG that orders each round.
//! - `strategy`: uniform or PCT ordering of each batch, and the schedule
//!   fingerprint for the determinism check.

mod rng;
pub(crate) mod runner;
pub(crate) mod strategy;

pub(crate) use runner::Deterministic;
pub use strategy::Strategy;
