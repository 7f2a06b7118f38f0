//! Serving HTTP on a `TcpListener`: [`serve`] and what it hands services.
//!
//! * `info`: [`ConnectionInfo`], put in every request's extensions.
//! * `serve`: [`serve`], [`Serve`] (the accept loop and graceful shutdown),
//!   its [`ShutdownReport`], and [`HttpService`], the services it runs.
//! * `tracker`: the open connections, told to finish or closed at
//!   shutdown.

mod info;
mod serve;
mod tracker;

pub use self::info::ConnectionInfo;
pub use self::serve::{serve, HttpService, Serve, ShutdownReport};
