//! [`TcpListener`]: accepts TCP connections on the reactor.
//!
//! `accept` is an `async fn` that many tasks may await on one listener at once
//! (each waits with its own waiter entry); `poll_accept` is the single-waiter
//! form for hand-written futures and for [`Incoming`]. Accepted streams register
//! with the listener's driver, whichever thread polls the accept.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::TcpStream;
use crate::driver::scheduled_io::Direction;
use crate::net::addr::each_addr;
use crate::net::poll_evented::PollEvented;

/// A TCP socket server, listening for connections.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::{TcpListener, TcpStream};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let (accepted, connected) =
///         futures::future::join(listener.accept(), TcpStream::connect(addr)).await;
///     let (_stream, peer) = accepted.unwrap();
///     assert_eq!(peer, connected.unwrap().local_addr().unwrap());
/// });
/// ```
pub struct TcpListener {
    io: PollEvented<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` (each resolved address in turn; `SO_REUSEADDR` set, as mio
    /// does). A port already listened on fails with `ErrorKind::AddrInUse`.
    /// Panics (when polled) outside a runtime.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| async move {
            let sys = mio::net::TcpListener::bind(addr)?;
            Ok(TcpListener {
                io: PollEvented::new(sys)?,
            })
        })
        .await
    }

    /// Wraps a std listener (switching it to non-blocking mode) and registers it
    /// with the current driver. Panics outside a runtime.
    #[track_caller]
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: PollEvented::new(mio::net::TcpListener::from_std(listener))?,
        })
    }

    /// Accepts a connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sys, addr) = self
            .io
            .registration()
            .async_io(Direction::Read, || self.io.accept())
            .await?;
        Ok((self.wrap(sys)?, addr))
    }

    /// Polls for a connection (one waiter at a time: the last `cx` polled wins).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || self.io.accept())
            .map(|r| r.and_then(|(sys, addr)| Ok((self.wrap(sys)?, addr))))
    }

    fn wrap(&self, sys: mio::net::TcpStream) -> io::Result<TcpStream> {
        let handle = self.io.registration().handle().clone();
        TcpStream::from_mio(PollEvented::with_handle(sys, handle)?)
    }

    /// The local address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// A stream of accepted connections (without their peer addresses).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// The stream of [`TcpListener::incoming`]; never ends.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::{TcpListener, TcpStream};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let clients = async move {
///         let a = TcpStream::connect(addr).await.unwrap();
///         let b = TcpStream::connect(addr).await.unwrap();
///         (a, b)
///     };
///     let server = listener.incoming().take(2).count();
///     let (served, _clients) = futures::future::join(server, clients).await;
///     assert_eq!(served, 2);
/// });
/// ```
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl futures_core::Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .poll_accept(cx)
            .map(|r| Some(r.map(|(s, _)| s)))
    }
}
