//! Serving HTTP on a `TcpListener`: [`serve`] and what it hands services.
//!
//! * `info`: [`ConnectionInfo`], put in every request's extensions.
//! * `serve`: [`serve`], [`Serve`] (the accept loop and graceful shutdown),
//!   its [`ShutdownReport`], and [`HttpService`], the services it runs.

mod info;
mod serve;

pub use self::info::ConnectionInfo;
pub use self::serve::{serve, HttpService, Serve, ShutdownReport};
