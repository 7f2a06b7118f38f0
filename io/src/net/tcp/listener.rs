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
use crate::net::fd::impl_fd;
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
    /// Binds to `addr` (each resolved address in turn; `SO_REUSEADDR` set, as
    /// mio does). Use [`TcpSocket`](super::TcpSocket) for other options or
    /// another backlog.
    ///
    /// # Errors
    ///
    /// The last address's error: a port already listened on fails with
    /// `ErrorKind::AddrInUse`.
    ///
    /// # Panics
    ///
    /// When polled outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// let taken = TcpListener::bind(listener.local_addr()?).await.unwrap_err();
    /// assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| async move {
            let sys = mio::net::TcpListener::bind(addr)?;
            Ok(TcpListener {
                io: PollEvented::new(sys)?,
            })
        })
        .await
    }

    /// Wraps a std listener (switching it to non-blocking mode) and registers
    /// it with the current driver.
    ///
    /// # Errors
    ///
    /// When the mode cannot be set or the registration fails.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let listener = TcpListener::from_std(std_listener)?;
    /// let _client = TcpStream::connect(listener.local_addr()?).await?;
    /// let (_stream, _peer) = listener.accept().await?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: PollEvented::new(mio::net::TcpListener::from_std(listener))?,
        })
    }

    /// Deregisters from the driver and returns the std listener, still in
    /// non-blocking mode (as tokio's does).
    ///
    /// # Errors
    ///
    /// None today; the `Result` matches tokio's signature.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let listener = listener.into_std()?;
    /// listener.set_nonblocking(false)?;
    /// let _client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let (_stream, _peer) = listener.accept()?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let fd = self.io.into_inner().into_raw_fd();
        // SAFETY: `fd` is the open listening socket the mio listener owned
        // until `into_raw_fd` gave up ownership just above.
        Ok(unsafe { std::net::TcpListener::from_raw_fd(fd) })
    }

    /// Accepts a connection. Many tasks may await this on one listener.
    ///
    /// # Errors
    ///
    /// The `accept(2)` error, such as `EMFILE` when out of descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// let (_stream, peer) = listener.accept().await?;
    /// assert_eq!(peer, client.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sys, addr) = self
            .io
            .registration()
            .async_io(Direction::Read, || self.io.accept())
            .await?;
        Ok((self.wrap(sys)?, addr))
    }

    /// Polls for a connection (one waiter at a time: the last `cx` polled
    /// wins), for hand-written futures and streams.
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let client = TcpStream::connect(listener.local_addr()?).await?;
    /// let (_stream, peer) = std::future::poll_fn(|cx| listener.poll_accept(cx)).await?;
    /// assert_eq!(peer, client.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
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

    /// The local address this listener is bound to (with the port the
    /// system chose when bound to port 0).
    ///
    /// # Errors
    ///
    /// When `getsockname` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// assert!(listener.local_addr()?.ip().is_loopback());
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Sets `IP_TTL` on the listening socket.
    ///
    /// # Errors
    ///
    /// When the option cannot be set (a TTL of 0 is `InvalidInput`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// listener.set_ttl(100)?;
    /// assert_eq!(listener.ttl()?, 100);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    ///
    /// # Errors
    ///
    /// When the option cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// assert!(listener.ttl()? > 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.ttl()
    }

    /// A stream of accepted connections (without their peer addresses).
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::StreamExt;
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let _client = TcpStream::connect(listener.local_addr()?).await?;
    /// let stream = listener.incoming().next().await.expect("never ends")?;
    /// assert_eq!(stream.local_addr()?, listener.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl_fd!(TcpListener);

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
