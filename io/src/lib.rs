//! `safepoint-io`: the driver of the safepoint runtime.
//!
//! This crate owns everything that waits on the outside world: the mio reactor
//! (sockets), the timer wheel, and signal delivery, plus the socket types built on
//! them. It deliberately knows nothing about the scheduler: the runtime owns a
//! [`driver::Driver`] and decides which thread turns it, while futures reach the
//! shared state through a cheap, cloneable [`driver::Handle`] that the runtime makes
//! current on its threads with [`driver::Handle::enter`].
//!
//! Layout, one folder per subsystem:
//!
//! * [`driver`]: the `Driver`/`Handle` pair, the reactor's registrations and readiness.
//! * [`time`]: the clock seam (real or virtual), `Instant`, the timing wheel,
//!   `sleep`, `timeout`, `interval`.
//! * [`net`]: `TcpListener`, `TcpStream`, `UdpSocket`, `UnixListener`, `UnixStream`.
//! * [`signal`]: `ctrl_c`, `terminate` and `signal::unix::signal`.
//! * [`gate`]: the seam where every resource's poll lets a pending stop of
//!   the world park its task (the runtime's protocol point 10).
#![warn(missing_docs)]

pub mod driver;
pub mod gate;
pub mod net;
pub mod signal;
pub mod time;

/// The message every entry point that needs a driver panics with when called
/// outside a runtime: it says what to do instead, because the bare "no reactor"
/// wording of other runtimes sends people searching.
pub(crate) const NO_RUNTIME: &str =
    "there is no safepoint runtime on this thread: create one with \
     safepoint::Runtime::new() and call this inside Runtime::block_on or a spawned task";
