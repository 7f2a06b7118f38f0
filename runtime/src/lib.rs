//! # safepoint
//!
//! A multi-threaded, work-stealing async runtime with a **global
//! safepoint**: tasks call [`safepoint()`]`.await` where their state is
//! consistent, and any thread or task can stop the world
//! ([`Handle::stop_the_world`]). The world is stopped once every task is at
//! a safepoint or blocked and every worker has parked; the requester then
//! holds a [`StoppedWorld`] (a consistent cut of the program) until it
//! resumes. The same bookkeeping answers "run until every task is blocked"
//! ([`Runtime::run_until_blocked`], [`task::wait_all_blocked`]).
//!
//! The API is shaped like tokio's.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let rt = safepoint::Runtime::new().unwrap();
//! let counter = Arc::new(AtomicU64::new(0));
//! for _ in 0..4 {
//!     let counter = counter.clone();
//!     rt.spawn(async move {
//!         loop {
//!             counter.fetch_add(1, Ordering::SeqCst);
//!             safepoint::safepoint().await;
//!             safepoint::task::yield_now().await;
//!         }
//!     });
//! }
//! let world = rt.handle().stop_the_world_blocking();
//! let frozen = counter.load(Ordering::SeqCst);
//! std::thread::sleep(std::time::Duration::from_millis(10));
//! assert_eq!(counter.load(Ordering::SeqCst), frozen); // nothing runs while stopped
//! world.resume();
//! ```

#![warn(missing_docs)]

mod block_on;
mod blocking;
mod builder;
mod context;
mod deterministic;
#[doc(hidden)]
pub mod entry;
mod flavor;
mod handle;
mod hooks;
mod metrics;
mod runtime;
mod safepoint;
mod scheduler;
mod sync;
pub mod task;
#[cfg(feature = "tokio-compat")]
mod tokio_compat;

/// The safepoint protocol: what holds, point by point. The code's comments
/// cite these points ("protocol point N").
pub mod protocol {
    #![doc = include_str!("../PROTOCOL.md")]
}

pub use builder::Builder;
pub use deterministic::Strategy;
pub use handle::{EnterGuard, Handle};
pub use metrics::{PauseHistogram, RuntimeMetrics, SlowStop, StopArrival};
pub use runtime::Runtime;
pub use safepoint::point::{safepoint, Safepoint};
pub use safepoint::report::{Laggard, LaggardCause, StopReport, StopTimedOut};
pub use safepoint::request::{StopTheWorld, StopTheWorldTimeout};
pub use safepoint::world::StoppedWorld;
pub use safepoint_macros::{main, test};
#[cfg(loom)]
#[doc(hidden)]
pub use scheduler::loom_reactor::{Reactor, Wait};
pub use task::{spawn, spawn_blocking, JoinError, JoinHandle};

/// Timers and the clock: `sleep`, `timeout`, `interval`, `Instant`.
pub mod time {
    pub use safepoint_io::time::*;
}

/// TCP, UDP and Unix sockets driven by the runtime's reactor.
pub mod net {
    pub use safepoint_io::net::*;
}

/// OS signals as futures and streams: `ctrl_c()`, `terminate()`.
pub mod signal {
    pub use safepoint_io::signal::*;
}
