//! The driver: one mio `Poll`, the timer wheel and the signal source behind a
//! shared [`Handle`], turned by whichever thread the runtime picks.
//!
//! * `config`: what the driver enables and which clock it uses.
//! * `core`: [`Driver`], the owned half that blocks in `turn`.
//! * `block_on`: [`Driver::block_on`], a one-future executor for tests and docs.
//! * `handle`: [`Handle`], the shared half futures keep.
//! * `context`: the thread-local "current driver" and its enter guard.
//! * `scheduled_io`: per-registration readiness and wakers.
//! * `registration`: the RAII registration of one mio source.

mod block_on;
mod config;
pub(crate) mod context;
mod core;
mod handle;
pub(crate) mod registration;
pub(crate) mod scheduled_io;

pub use self::config::Config;
pub use self::context::EnterGuard;
pub use self::core::Driver;
pub use self::handle::Handle;
