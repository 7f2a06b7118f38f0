//! Global safepoints: stopping the world, and quiescence.
//!
//! The protocol these modules implement is written down, with numbered
//! points that the code cites, in `runtime/PROTOCOL.md` (rendered as
//! [`crate::protocol`]).
//!
//! - `census`: the one owner of the idle counts and the barrier; every
//!   transition of the protocol is a method there.
//! - `barrier`: the pure state machine (Running → Requested → Stopped).
//! - `flags`: the lock-free phase-and-generation word.
//! - `point`: `safepoint().await`.
//! - `gate`: the implicit safepoint at every runtime resource while a stop
//!   is pending.
//! - `request`: the stop request futures and the blocking form.
//! - `world`: `StoppedWorld`, resume.
//! - `report`: `StopReport`, `StopTimedOut`, `Laggard`.
//! - `laggard`: per-worker records of what ran during a pending stop.
//! - `quiescence`: `run_until_blocked`, `wait_all_blocked`.
//! - `stats`: TTSP percentiles and time stopped, for metrics.

pub(crate) mod barrier;
pub(crate) mod census;
pub(crate) mod flags;
pub(crate) mod gate;
pub(crate) mod laggard;
pub(crate) mod point;
pub(crate) mod quiescence;
pub(crate) mod report;
pub(crate) mod request;
pub(crate) mod stats;
pub(crate) mod world;
