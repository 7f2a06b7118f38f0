//! Global safepoints: stopping the world, and quiescence.
//!
//! - `barrier`: the state machine (Running → Requested → Stopped), kept
//!   under the scheduler's census lock.
//! - `point`: `safepoint().await`.
//! - `request`: the stop request futures and the blocking form.
//! - `world`: `StoppedWorld`, resume.
//! - `report`: `StopReport`, `StopTimedOut`, `Laggard`.
//! - `laggard`: per-worker records of what ran during a pending stop.
//! - `quiescence`: `run_until_blocked`, `wait_all_blocked`.
//! - `stats`: TTSP percentiles and time stopped, for metrics.

pub(crate) mod barrier;
pub(crate) mod laggard;
pub(crate) mod point;
pub(crate) mod quiescence;
pub(crate) mod report;
pub(crate) mod request;
pub(crate) mod stats;
pub(crate) mod world;
