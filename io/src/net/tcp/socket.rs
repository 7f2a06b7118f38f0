//! [`TcpSocket`]: a TCP socket not yet listening or connected, to set
//! options that must be in place before `bind`, `listen` or `connect`.
//!
//! The same shape as tokio's: `SO_REUSEADDR`/`SO_REUSEPORT` (several
//! listeners on one port, one per worker), buffer sizes, keepalive,
//! `TCP_NODELAY`, then [`listen`](TcpSocket::listen) into a
//! [`TcpListener`] or [`connect`](TcpSocket::connect) into a [`TcpStream`].
//! It wraps a `socket2::Socket` (non-blocking from birth) and registers with
//! the driver only once it becomes a listener or a stream. For options on a
//! socket that already exists (an accepted stream), `socket2::SockRef::from`
//! works on every socket type here, since they implement `AsFd`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

use super::{TcpListener, TcpStream};

/// A TCP socket that has not yet been turned into a listener or a stream.
///
/// # Examples
///
/// ```
/// # use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::{TcpSocket, TcpStream};
/// # let mut driver = Driver::new(Config::default())?;
/// # driver.block_on(async {
/// let socket = TcpSocket::new_v4()?;
/// socket.set_reuseaddr(true)?;
/// socket.set_recv_buffer_size(256 * 1024)?;
/// socket.bind("127.0.0.1:0".parse().unwrap())?;
/// let listener = socket.listen(1024)?;
/// let _client = TcpStream::connect(listener.local_addr()?).await?;
/// let (_stream, _peer) = listener.accept().await?;
/// # Ok::<_, std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    inner: Socket,
}

impl TcpSocket {
    fn new(domain: Domain) -> io::Result<TcpSocket> {
        let inner = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        inner.set_nonblocking(true)?;
        Ok(TcpSocket { inner })
    }

    /// A new IPv4 TCP socket (non-blocking, close-on-exec).
    ///
    /// # Errors
    ///
    /// When `socket(2)` fails, such as `EMFILE` when out of descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// assert!(!socket.nodelay()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV4)
    }

    /// A new IPv6 TCP socket (non-blocking, close-on-exec).
    ///
    /// # Errors
    ///
    /// When `socket(2)` fails, or IPv6 is unavailable.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// if let Ok(socket) = TcpSocket::new_v6() {
    ///     socket.bind("[::1]:0".parse().unwrap())?;
    /// }
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV6)
    }

    /// Sets `SO_REUSEADDR`: bind a port still in `TIME_WAIT` from an
    /// earlier run.
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_reuseaddr(true)?;
    /// assert!(socket.reuseaddr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_reuseaddr(&self, reuseaddr: bool) -> io::Result<()> {
        self.inner.set_reuse_address(reuseaddr)
    }

    /// Reads `SO_REUSEADDR`.
    ///
    /// # Errors
    ///
    /// When the option cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// assert!(!socket.reuseaddr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.inner.reuse_address()
    }

    /// Sets `SO_REUSEPORT`: several sockets (say one listener per worker)
    /// bind the same port and the kernel spreads connections over them.
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let a = TcpSocket::new_v4()?;
    /// a.set_reuseport(true)?;
    /// a.bind("127.0.0.1:0".parse().unwrap())?;
    /// let port = a.local_addr()?.port();
    /// let b = TcpSocket::new_v4()?;
    /// b.set_reuseport(true)?;
    /// b.bind(([127, 0, 0, 1], port).into())?; // the same port, twice
    /// let (_a, _b) = (a.listen(128)?, b.listen(128)?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_reuseport(&self, reuseport: bool) -> io::Result<()> {
        self.inner.set_reuse_port(reuseport)
    }

    /// Reads `SO_REUSEPORT`.
    ///
    /// # Errors
    ///
    /// When the option cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_reuseport(true)?;
    /// assert!(socket.reuseport()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reuseport(&self) -> io::Result<bool> {
        self.inner.reuse_port()
    }

    /// Sets `SO_SNDBUF`. The kernel may round the size (Linux doubles it
    /// for its own bookkeeping), so read it back with
    /// [`send_buffer_size`](Self::send_buffer_size).
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_send_buffer_size(64 * 1024)?;
    /// assert!(socket.send_buffer_size()? >= 64 * 1024);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_send_buffer_size(size as usize)
    }

    /// Reads `SO_SNDBUF`.
    ///
    /// # Errors
    ///
    /// When the option cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// assert!(socket.send_buffer_size()? > 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.inner.send_buffer_size().map(clamp_u32)
    }

    /// Sets `SO_RCVBUF` (rounded by the kernel, as for the send buffer).
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_recv_buffer_size(64 * 1024)?;
    /// assert!(socket.recv_buffer_size()? >= 64 * 1024);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.inner.set_recv_buffer_size(size as usize)
    }

    /// Reads `SO_RCVBUF`.
    ///
    /// # Errors
    ///
    /// When the option cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// assert!(socket.recv_buffer_size()? > 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.inner.recv_buffer_size().map(clamp_u32)
    }

    /// Sets `SO_KEEPALIVE` (probes at the system's default intervals; for
    /// other intervals use `socket2::SockRef::from(&socket).set_tcp_keepalive`).
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_keepalive(true)?;
    /// assert!(socket.keepalive()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.inner.set_keepalive(keepalive)
    }

    /// Reads `SO_KEEPALIVE`.
    ///
    /// # Errors
    ///
    /// When the option cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// assert!(!socket.keepalive()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn keepalive(&self) -> io::Result<bool> {
        self.inner.keepalive()
    }

    /// Sets `TCP_NODELAY`; a stream made by [`connect`](Self::connect)
    /// keeps it.
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_nodelay(true)?;
    /// assert!(socket.nodelay()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_tcp_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// When the option cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// assert!(!socket.nodelay()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.tcp_nodelay()
    }

    /// Binds to `addr`.
    ///
    /// # Errors
    ///
    /// `ErrorKind::AddrInUse` when another socket holds the address (and
    /// neither set [`set_reuseport`](Self::set_reuseport)),
    /// `AddrNotAvailable` for an address not on this host.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.bind("127.0.0.1:0".parse().unwrap())?;
    /// assert!(socket.local_addr()?.ip().is_loopback());
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner.bind(&addr.into())
    }

    /// The address bound to.
    ///
    /// # Errors
    ///
    /// `InvalidInput` before [`bind`](Self::bind) on some systems; the
    /// `getsockname` error otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.bind("127.0.0.1:0".parse().unwrap())?;
    /// assert_ne!(socket.local_addr()?.port(), 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()?.as_socket().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "TcpSocket::local_addr: the socket has no IP address (bind it first)",
            )
        })
    }

    /// Starts listening with a queue of `backlog` pending connections and
    /// registers the listener with the current driver. An unbound socket
    /// listens on a port the system picks.
    ///
    /// # Errors
    ///
    /// When `listen(2)` fails or the registration fails.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let socket = TcpSocket::new_v4()?;
    /// socket.bind("127.0.0.1:0".parse().unwrap())?;
    /// let listener = socket.listen(16)?;
    /// let _client = safepoint_io::net::TcpStream::connect(listener.local_addr()?).await?;
    /// let (_stream, _peer) = listener.accept().await?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        self.inner.listen(backlog)?;
        TcpListener::from_std(self.inner.into())
    }

    /// Connects to `addr` and registers the stream with the current driver;
    /// the options set on this socket carry over.
    ///
    /// # Errors
    ///
    /// `ErrorKind::ConnectionRefused` for a closed port; the connect's
    /// error otherwise.
    ///
    /// # Panics
    ///
    /// When polled outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = safepoint_io::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_nodelay(true)?;
    /// let stream = socket.connect(listener.local_addr()?).await?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        match self.inner.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let std: std::net::TcpStream = self.inner.into();
        TcpStream::connect_mio(mio::net::TcpStream::from_std(std)).await
    }

    /// Wraps a std stream's socket, to set options and connect it (tokio's
    /// `TcpSocket::from_std_stream`). It is switched to non-blocking mode.
    ///
    /// # Errors
    ///
    /// When the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let std_stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let socket = TcpSocket::from_std_stream(std_stream)?;
    /// socket.set_nodelay(true)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std_stream(stream: std::net::TcpStream) -> io::Result<TcpSocket> {
        let inner = Socket::from(stream);
        inner.set_nonblocking(true)?;
        Ok(TcpSocket { inner })
    }
}

/// Socket buffer sizes are C `int`s; anything beyond `u32` cannot happen
/// but is clamped rather than wrapped.
fn clamp_u32(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl IntoRawFd for TcpSocket {
    fn into_raw_fd(self) -> RawFd {
        self.inner.into_raw_fd()
    }
}

impl FromRawFd for TcpSocket {
    /// # Safety
    ///
    /// `fd` must be an open TCP socket that the caller owns and hands over.
    unsafe fn from_raw_fd(fd: RawFd) -> TcpSocket {
        // SAFETY: the caller hands over ownership of an open socket, which
        // is exactly `OwnedFd::from_raw_fd`'s contract.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        TcpSocket {
            inner: Socket::from(owned),
        }
    }
}
