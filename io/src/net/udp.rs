//! [`UdpSocket`]: datagrams on the reactor.
//!
//! All methods take `&self` and are `async fn`s that wait with their own waiter
//! entry, so one socket can be shared (in an `Arc`) by many tasks sending and
//! receiving at once, as is usual for UDP servers.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::driver::scheduled_io::Direction;
use crate::net::addr::{each_addr, first_addr};
use crate::net::fd::impl_fd;
use crate::net::poll_evented::PollEvented;

/// A UDP socket.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::UdpSocket;
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     peer.send_to(b"ping", sock.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0; 1500];
///     let (n, from) = sock.recv_from(&mut buf).await.unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], peer.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    io: PollEvented<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (each resolved address in turn).
    ///
    /// # Errors
    ///
    /// The last address's error, such as `AddrInUse`.
    ///
    /// # Panics
    ///
    /// When polled outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let sock = UdpSocket::bind("127.0.0.1:0").await?;
    /// assert_ne!(sock.local_addr()?.port(), 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| async move {
            Ok(UdpSocket {
                io: PollEvented::new(mio::net::UdpSocket::bind(addr)?)?,
            })
        })
        .await
    }

    /// Wraps a std socket (switching it to non-blocking mode) and registers
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
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let sock = UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    /// assert!(sock.local_addr()?.ip().is_loopback());
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: PollEvented::new(mio::net::UdpSocket::from_std(socket))?,
        })
    }

    /// Deregisters from the driver and returns the std socket, still in
    /// non-blocking mode.
    ///
    /// # Errors
    ///
    /// None today; the `Result` matches tokio's signature.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let a = UdpSocket::bind("127.0.0.1:0").await?;
    /// let b = UdpSocket::bind("127.0.0.1:0").await?;
    /// let a = a.into_std()?;
    /// a.set_nonblocking(false)?;
    /// b.send_to(b"hi", a.local_addr()?).await?;
    /// let mut buf = [0; 2];
    /// assert_eq!(a.recv(&mut buf)?, 2);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let fd = self.io.into_inner().into_raw_fd();
        // SAFETY: `fd` is the open UDP socket the mio socket owned until
        // `into_raw_fd` gave up ownership just above.
        Ok(unsafe { std::net::UdpSocket::from_raw_fd(fd) })
    }

    /// Sets the default peer for `send`/`recv` and filters received
    /// datagrams to that peer's.
    ///
    /// # Errors
    ///
    /// The last resolved address's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let a = UdpSocket::bind("127.0.0.1:0").await?;
    /// let b = UdpSocket::bind("127.0.0.1:0").await?;
    /// a.connect(b.local_addr()?).await?;
    /// assert_eq!(a.peer_addr()?, b.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |addr| async move { self.io.connect(addr) }).await
    }

    /// Sends to `target` (its first resolved address); returns bytes sent.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when `target` resolves to nothing; the send's error
    /// (such as `EMSGSIZE` for a datagram too large) otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let a = UdpSocket::bind("127.0.0.1:0").await?;
    /// let b = UdpSocket::bind("127.0.0.1:0").await?;
    /// assert_eq!(a.send_to(b"ping", b.local_addr()?).await?, 4);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let target = first_addr(target)?;
        self.io
            .registration()
            .async_io(Direction::Write, || self.io.send_to(buf, target))
            .await
    }

    /// Receives one datagram; returns its length and sender. A datagram
    /// longer than `buf` is truncated to fit.
    ///
    /// # Errors
    ///
    /// The receive's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let a = UdpSocket::bind("127.0.0.1:0").await?;
    /// let b = UdpSocket::bind("127.0.0.1:0").await?;
    /// a.send_to(b"ping", b.local_addr()?).await?;
    /// let mut buf = [0; 64];
    /// let (n, from) = b.recv_from(&mut buf).await?;
    /// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .async_io(Direction::Read, || self.io.recv_from(buf))
            .await
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](Self::connect); the send's error
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let a = UdpSocket::bind("127.0.0.1:0").await?;
    /// let b = UdpSocket::bind("127.0.0.1:0").await?;
    /// a.connect(b.local_addr()?).await?;
    /// assert_eq!(a.send(b"hi").await?, 2);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .registration()
            .async_io(Direction::Write, || self.io.send(buf))
            .await
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// The receive's error (`ConnectionRefused` after a datagram to a
    /// closed port bounced).
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let a = UdpSocket::bind("127.0.0.1:0").await?;
    /// let b = UdpSocket::bind("127.0.0.1:0").await?;
    /// b.connect(a.local_addr()?).await?;
    /// a.send_to(b"hi", b.local_addr()?).await?;
    /// let mut buf = [0; 8];
    /// assert_eq!(b.recv(&mut buf).await?, 2);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .async_io(Direction::Read, || self.io.recv(buf))
            .await
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// When `getsockname` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let sock = UdpSocket::bind("127.0.0.1:0").await?;
    /// assert!(sock.local_addr()?.ip().is_loopback());
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` if [`connect`](Self::connect) was not called.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let sock = UdpSocket::bind("127.0.0.1:0").await?;
    /// let err = sock.peer_addr().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Sets `IP_TTL` for outgoing datagrams.
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let sock = UdpSocket::bind("127.0.0.1:0").await?;
    /// sock.set_ttl(7)?;
    /// assert_eq!(sock.ttl()?, 7);
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
    /// # use safepoint_io::net::{UdpSocket};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let sock = UdpSocket::bind("127.0.0.1:0").await?;
    /// assert!(sock.ttl()? > 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.ttl()
    }
}

impl_fd!(UdpSocket);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}
