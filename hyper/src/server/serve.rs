//! [`serve`]: accept, spawn a named task per connection, serve HTTP/1 and
//! HTTP/2, shut down gracefully.
//!
//! Shaped like `axum::serve` (a value that is awaited to run forever, or
//! turned into a graceful run with [`Serve::with_graceful_shutdown`]) but on
//! safepoint's listener and tasks:
//!
//! * Each connection is a task named `http-conn` (configurable), so a stop
//!   that times out names connection tasks as such.
//! * The protocol is read from the first bytes (hyper-util's auto builder):
//!   the HTTP/2 preface means HTTP/2 (prior knowledge, h2c), anything else
//!   HTTP/1.1, with upgrades (WebSocket) allowed.
//! * Graceful shutdown: when the signal fires the listener is closed (new
//!   connections are refused), each open connection is told to finish
//!   (HTTP/1 stops keep-alive after the response in flight, HTTP/2 sends
//!   GOAWAY) through the connection tracker (`tracker.rs`: one signal per
//!   connection, no lock per poll), and the call waits for
//!   them up to the deadline. Connections still open then are dropped (the
//!   client sees the connection close) and counted in the report, so nothing
//!   hangs and nothing is lost silently.
//! * The connections belong to the server: dropping its future (say, from
//!   a `select!` that chose another branch) closes every connection it
//!   accepted at once, as a deadline that has passed would. To keep them,
//!   shut down through the signal instead.
//! * Accept errors that concern one connection (it was reset before we took
//!   it) are skipped; others (out of file descriptors) are printed and
//!   retried after a second, as axum does, rather than ending the server.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::server::conn::auto;
use safepoint::net::{TcpListener, TcpStream};
use safepoint::time::{sleep, timeout, Instant};

use super::info::{ConnectionInfo, WithInfo};
use super::tracker::{CloseOnDrop, Tracker};
use crate::{SafepointExecutor, SafepointIo, SafepointTimer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`serve`] can run: a hyper service, cloned per connection and run on
/// other threads, whose response body can be sent there too. Implemented
/// for every such service (`service_fn(..)`, `TowerToHyperService<Router>`);
/// it only names the bounds once.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use http_body_util::Full;
/// use hyper::{body::Bytes, service::service_fn, Request, Response};
/// use safepoint_hyper::server::HttpService;
///
/// fn check<S: HttpService>(_: &S) {}
/// check(&service_fn(|_req: Request<hyper::body::Incoming>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("ok"))))
/// }));
/// ```
pub trait HttpService:
    Service<
        Request<Incoming>,
        Response = Response<Self::ResBody>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
    /// The response body type.
    type ResBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type ResBody = B;
}

/// Serves `service` on every connection `listener` accepts.
///
/// Await the result to serve until an error, or call
/// [`with_graceful_shutdown`](Serve::with_graceful_shutdown). The service is
/// cloned once per connection; each request carries the connection's
/// [`ConnectionInfo`] in its extensions (unless
/// [`connection_info(false)`](Serve::connection_info) turns it off). For a `tower::Service` (an axum
/// `Router`), wrap it in [`TowerToHyperService`](crate::TowerToHyperService).
///
/// # Panics
///
/// Outside a runtime (the connections are spawned on the current one).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use http_body_util::Full;
/// use hyper::{body::Bytes, service::service_fn, Request, Response};
///
/// safepoint::Runtime::new()?.block_on(async {
///     let listener = safepoint::net::TcpListener::bind("127.0.0.1:0").await?;
///     let hello = service_fn(|_req: Request<hyper::body::Incoming>| async {
///         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("Hello, World!"))))
///     });
///     // Serve for 10 ms, then shut down (waiting at most a second).
///     let stop = safepoint::time::sleep(Duration::from_millis(10));
///     let report = safepoint_hyper::serve(listener, hello)
///         .with_graceful_shutdown(stop, Duration::from_secs(1))
///         .await?;
///     assert_eq!(report.forced, 0);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn serve<S>(listener: TcpListener, service: S) -> Serve<S> {
    let mut builder = auto::Builder::new(SafepointExecutor::new().name("http-h2"));
    builder.http1().timer(SafepointTimer::new());
    builder.http2().timer(SafepointTimer::new());
    Serve {
        listener,
        service,
        builder,
        task_name: Arc::from("http-conn"),
        nodelay: true,
        connection_info: true,
    }
}

/// A server being set up by [`serve`]; await it (or its graceful form) to
/// run it.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use http_body_util::Empty;
/// use hyper::{body::Bytes, service::service_fn, Request, Response};
///
/// safepoint::Runtime::new()?.block_on(async {
///     let listener = safepoint::net::TcpListener::bind("127.0.0.1:0").await?;
///     let empty = service_fn(|_req: Request<hyper::body::Incoming>| async {
///         Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
///     });
///     let mut server = safepoint_hyper::serve(listener, empty).task_name("api-conn");
///     server.connection_builder().http2().max_concurrent_streams(64);
///     assert!(server.local_addr()?.ip().is_loopback());
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "a server does nothing until awaited"]
pub struct Serve<S> {
    listener: TcpListener,
    service: S,
    builder: auto::Builder<SafepointExecutor>,
    task_name: Arc<str>,
    nodelay: bool,
    connection_info: bool,
}

/// What a graceful shutdown found and did.
///
/// # Examples
///
/// ```
/// # use std::convert::Infallible;
/// # use std::time::Duration;
/// # use http_body_util::Empty;
/// # use hyper::{body::Bytes, service::service_fn, Request, Response};
/// safepoint::Runtime::new()?.block_on(async {
///     let listener = safepoint::net::TcpListener::bind("127.0.0.1:0").await?;
///     let svc = service_fn(|_req: Request<hyper::body::Incoming>| async {
///         Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
///     });
///     let report = safepoint_hyper::serve(listener, svc)
///         .with_graceful_shutdown(async {}, Duration::from_secs(1))
///         .await?;
///     assert_eq!((report.open, report.forced), (0, 0));
///     println!("{report}");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections open when the shutdown signal came.
    pub open: usize,
    /// Of those, the ones still open at the deadline, closed by force.
    pub forced: usize,
    /// From the signal until the last connection was gone.
    pub elapsed: Duration,
}

impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connection(s) open at shutdown, {} finished, {} closed at the deadline, in {:?}",
            self.open,
            self.open - self.forced,
            self.forced,
            self.elapsed
        )
    }
}

impl<S> Serve<S> {
    /// hyper-util's connection builder, to tune HTTP/1 and HTTP/2 (for
    /// example `http2().max_concurrent_streams(..)`, or `http1_only()`).
    /// Its executor and timers are already safepoint's.
    ///
    /// # Examples
    ///
    /// See [`Serve`].
    pub fn connection_builder(&mut self) -> &mut auto::Builder<SafepointExecutor> {
        &mut self.builder
    }

    /// Names the per-connection tasks (default `http-conn`).
    ///
    /// # Examples
    ///
    /// See [`Serve`].
    pub fn task_name(mut self, name: &str) -> Serve<S> {
        self.task_name = Arc::from(name);
        self
    }

    /// Whether accepted connections get `TCP_NODELAY` (default `true`, as
    /// axum does: responses are written whole, so Nagle only adds delay).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use http_body_util::Empty;
    /// # use hyper::{body::Bytes, service::service_fn, Request, Response};
    /// safepoint::Runtime::new()?.block_on(async {
    ///     let listener = safepoint::net::TcpListener::bind("127.0.0.1:0").await?;
    ///     let svc = service_fn(|_req: Request<hyper::body::Incoming>| async {
    ///         Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
    ///     });
    ///     let _server = safepoint_hyper::serve(listener, svc).tcp_nodelay(false);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tcp_nodelay(mut self, nodelay: bool) -> Serve<S> {
        self.nodelay = nodelay;
        self
    }

    /// Whether each request carries the connection's [`ConnectionInfo`] in
    /// its extensions (default `true`).
    ///
    /// The extension costs three small allocations per request (hyper's
    /// extension map, its table and the boxed value): about 4 % of the CPU
    /// a hello-world request takes. A service that never reads it can turn
    /// it off, as axum's `ConnectInfo` is opt-in.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::convert::Infallible;
    /// # use http_body_util::Full;
    /// # use hyper::{body::Bytes, service::service_fn, Request, Response};
    /// safepoint::Runtime::new()?.block_on(async {
    ///     let listener = safepoint::net::TcpListener::bind("127.0.0.1:0").await?;
    ///     let hello = service_fn(|_req: Request<hyper::body::Incoming>| async {
    ///         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("Hello, World!"))))
    ///     });
    ///     let _server = safepoint_hyper::serve(listener, hello).connection_info(false);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connection_info(mut self, on: bool) -> Serve<S> {
        self.connection_info = on;
        self
    }

    /// The address being served.
    ///
    /// # Errors
    ///
    /// When `getsockname` fails.
    ///
    /// # Examples
    ///
    /// See [`Serve`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl<S: HttpService> Serve<S> {
    /// Serves until `signal` completes, then shuts down gracefully: stops
    /// accepting (the listener is closed), lets in-flight requests finish
    /// and waits up to `deadline` for the connections to close; those still
    /// open then are closed by force. Dropping the returned future before
    /// it completes closes every connection at once.
    ///
    /// # Errors
    ///
    /// None today (accept errors are retried); the `Result` leaves room for
    /// errors that end serving.
    ///
    /// # Examples
    ///
    /// See [`serve`].
    pub async fn with_graceful_shutdown<F>(
        self,
        signal: F,
        deadline: Duration,
    ) -> io::Result<ShutdownReport>
    where
        F: Future<Output = ()>,
    {
        self.run(signal, deadline).await
    }

    async fn run<F>(self, signal: F, deadline: Duration) -> io::Result<ShutdownReport>
    where
        F: Future<Output = ()>,
    {
        let Serve {
            listener,
            service,
            builder,
            task_name,
            nodelay,
            connection_info,
        } = self;
        let tracker = Tracker::new();
        // However this future ends (here, or dropped mid-way), the
        // connections it accepted end with it.
        let _close_on_drop = CloseOnDrop(tracker.clone());
        let mut signal = pin!(signal);
        loop {
            // The signal is polled first: once it has fired, nothing more
            // is accepted even if connections are waiting.
            let accepted = match select(signal.as_mut(), pin!(listener.accept())).await {
                Either::Left(((), _)) => break,
                Either::Right((accepted, _)) => accepted,
            };
            let (stream, peer_addr) = match accepted {
                Ok(conn) => conn,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    eprintln!("safepoint-hyper: accept failed ({e}); retrying in 1 s");
                    match select(pin!(sleep(Duration::from_secs(1))), signal.as_mut()).await {
                        Either::Left(_) => continue,
                        Either::Right(_) => break,
                    }
                }
            };
            let conn = Conn {
                stream,
                peer_addr,
                nodelay,
                connection_info,
            };
            let task = conn.serve(&builder, &tracker, service.clone());
            // `spawn` fails only outside a runtime, and we are in one.
            let spawned = safepoint::task::Builder::new()
                .name(&task_name)
                .spawn(task)
                .expect("serve runs inside a safepoint runtime");
            drop(spawned);
        }
        // Stop accepting: connects from now on are refused, not queued.
        drop(listener);
        let started = Instant::now();
        let open = tracker.count();
        tracker.finish_all();
        if timeout(deadline, tracker.drained()).await.is_err() {
            tracker.close_all();
            tracker.drained().await;
        }
        Ok(ShutdownReport {
            open,
            forced: tracker.closed(),
            elapsed: started.elapsed(),
        })
    }
}

impl<S: HttpService> IntoFuture for Serve<S> {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    /// Serves forever.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.run(std::future::pending(), Duration::ZERO).await?;
            Ok(())
        })
    }
}

/// One accepted connection, before it is served.
struct Conn {
    stream: TcpStream,
    peer_addr: SocketAddr,
    nodelay: bool,
    connection_info: bool,
}

impl Conn {
    /// The future that serves this connection to its end (or until the
    /// graceful shutdown ends it).
    fn serve<S: HttpService>(
        self,
        builder: &auto::Builder<SafepointExecutor>,
        tracker: &Tracker,
        service: S,
    ) -> impl Future<Output = ()> + Send + 'static {
        if self.nodelay {
            // Best effort: a connection already reset fails here and again,
            // with a real error, at its first read.
            let _ = self.stream.set_nodelay(true);
        }
        let info = self.connection_info.then(|| {
            let local_addr = self.stream.local_addr().unwrap_or(self.peer_addr);
            ConnectionInfo::new(self.peer_addr, local_addr)
        });
        let service = WithInfo {
            inner: service,
            info,
        };
        let conn = builder
            .serve_connection_with_upgrades(SafepointIo::new(self.stream), service)
            .into_owned();
        tracker.track(conn)
    }
}

/// Errors that concern only the connection being accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
