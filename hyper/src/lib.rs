//! `safepoint-hyper`: hyper 1.x on the safepoint runtime.
//!
//! What hyper-util's `rt::tokio` module and `axum::serve` give a tokio user,
//! for safepoint:
//!
//! * [`SafepointIo`]: hyper's `rt::Read`/`rt::Write` for safepoint's
//!   `TcpStream` and `UnixStream`, reading straight into hyper's
//!   uninitialised buffer (no zero-filling) and writing vectored.
//! * [`SafepointExecutor`]: hyper's `rt::Executor`, spawning the tasks
//!   hyper needs (HTTP/2 streams) as named safepoint tasks.
//! * [`SafepointTimer`]: hyper's `rt::Timer` on `safepoint::time` (so it
//!   follows the deterministic flavour's virtual clock too).
//! * [`serve`]: an accept loop for a `TcpListener` that spawns each
//!   connection as a named task, serves HTTP/1 and HTTP/2 (auto-detected),
//!   hands each request the connection's [`ConnectionInfo`], and shuts down
//!   gracefully with a deadline.
//!
//! A complete server:
//!
//! ```no_run
//! use std::convert::Infallible;
//! use http_body_util::Full;
//! use hyper::{body::Bytes, service::service_fn, Request, Response};
//!
//! fn main() -> std::io::Result<()> {
//!     safepoint::Runtime::new()?.block_on(async {
//!         let listener = safepoint::net::TcpListener::bind("127.0.0.1:3000").await?;
//!         let hello = service_fn(|_req: Request<hyper::body::Incoming>| async {
//!             Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("Hello, World!"))))
//!         });
//!         safepoint_hyper::serve(listener, hello).await
//!     })
//! }
//! ```
//!
//! And with axum (a `Router` with state, connection info, a route that
//! stops the world, graceful shutdown on Ctrl-C):
//!
//! ```no_run
//! use std::{sync::{atomic::{AtomicU64, Ordering}, Arc}, time::Duration};
//! use axum::{extract::State, routing::{get, post}, Extension, Json, Router};
//! use safepoint_hyper::{serve, ConnectionInfo, TowerToHyperService};
//!
//! #[derive(Default)]
//! struct App { version: AtomicU64 }
//! async fn hello(Extension(conn): Extension<ConnectionInfo>) -> String {
//!     format!("Hello, {}!", conn.peer_addr)
//! }
//!
//! async fn reload(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
//!     let world = safepoint::Handle::current().stop_the_world().await; // nothing else runs now
//!     let version = app.version.fetch_add(1, Ordering::Relaxed) + 1;
//!     let pause = world.report().time_to_stop;
//!     Json(serde_json::json!({ "version": version, "time_to_stop_us": pause.as_micros() }))
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     safepoint::Runtime::new()?.block_on(async {
//!         let app = Router::new().route("/", get(hello)).route("/reload", post(reload))
//!             .with_state(Arc::new(App::default()));
//!         let listener = safepoint::net::TcpListener::bind("127.0.0.1:3000").await?;
//!         let shutdown = async { safepoint::signal::ctrl_c().await.ok(); };
//!         let report = serve(listener, TowerToHyperService::new(app))
//!             .with_graceful_shutdown(shutdown, Duration::from_secs(10)).await?;
//!         println!("{report}");
//!         Ok(())
//!     })
//! }
//! ```
//!
//! hyper-util is used with its `server-auto` and `server-graceful` features
//! only: none of them starts tokio's runtime (tokio appears in the tree for
//! its `sync` channels and the I/O traits h2 is written against).
#![warn(missing_docs)]

mod executor;
mod io;
pub mod server;
mod timer;

pub use self::executor::SafepointExecutor;
pub use self::io::{SafepointIo, Stream};
pub use self::server::{serve, ConnectionInfo, Serve, ShutdownReport};
pub use self::timer::{SafepointSleep, SafepointTimer};

/// hyper-util's adapter from a `tower::Service` (an axum `Router`) to a
/// hyper service, re-exported so that `serve(listener,
/// TowerToHyperService::new(router))` needs no extra dependency.
pub use hyper_util::service::TowerToHyperService;
