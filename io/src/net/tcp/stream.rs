//! [`TcpStream`]: a TCP connection on the reactor, with `futures-io` traits.
//!
//! Reads and writes go through the registration's poll slots (one waiter per
//! direction, the stream's owner), which is what `AsyncRead`/`AsyncWrite`
//! callers need; to read and write from two tasks, split it with
//! [`into_split`](TcpStream::into_split).

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::inq;
use super::split::{split_owned, OwnedReadHalf, OwnedWriteHalf};
use crate::driver::scheduled_io::Direction;
use crate::net::addr::each_addr;
use crate::net::fd::impl_fd;
use crate::net::poll_evented::PollEvented;
use crate::net::uninit;

/// A TCP connection.
///
/// # Examples
///
/// ```
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::{TcpListener, TcpStream};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let mut stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (mut server, _) = listener.accept().await.unwrap();
///     stream.write_all(b"ping").await.unwrap();
///     let mut buf = [0; 4];
///     server.read_exact(&mut buf).await.unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// ```
pub struct TcpStream {
    /// `pub(crate)` for the owned halves' shared `AsyncWrite` (`net::halves`).
    pub(crate) io: PollEvented<mio::net::TcpStream>,
    /// `TCP_INQ`: reads that fill the buffer learn whether they emptied
    /// the queue.
    inq: inq::Inq,
}

impl TcpStream {
    pub(crate) fn from_mio(io: PollEvented<mio::net::TcpStream>) -> io::Result<TcpStream> {
        let inq = inq::Inq::enable(&*io);
        Ok(TcpStream { io, inq })
    }

    /// Connects to `addr`, trying each resolved address in turn.
    ///
    /// # Errors
    ///
    /// The last address's error when none connects: a closed port fails
    /// with `ErrorKind::ConnectionRefused`, a name that resolves to nothing
    /// with `ErrorKind::InvalidInput`.
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
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, TcpStream::connect_addr).await
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect_mio(mio::net::TcpStream::connect(addr)?).await
    }

    /// Registers `sys`, a socket whose non-blocking connect is under way,
    /// and waits for the outcome (shared with `TcpSocket::connect`).
    pub(crate) async fn connect_mio(sys: mio::net::TcpStream) -> io::Result<TcpStream> {
        let stream = TcpStream::from_mio(PollEvented::new(sys)?)?;
        // A non-blocking connect completes when the socket turns writable; the
        // outcome is then in SO_ERROR (as mio documents).
        stream
            .io
            .registration()
            .async_io(Direction::Write, || {
                if let Some(e) = stream.io.take_error()? {
                    return Err(e);
                }
                match stream.io.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(stream)
    }

    /// Wraps a connected std stream (switching it to non-blocking mode) and
    /// registers it with the current driver.
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
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let std_stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let stream = TcpStream::from_std(std_stream)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(PollEvented::new(mio::net::TcpStream::from_std(stream))?)
    }

    /// Deregisters from the driver and returns the std stream, still in
    /// non-blocking mode (as tokio's does): call `set_nonblocking(false)` to
    /// use it with blocking reads.
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
    /// use std::io::{Read, Write};
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let mut server = server.into_std()?;
    /// server.set_nonblocking(false)?;
    /// let mut stream = stream;
    /// futures::io::AsyncWriteExt::write_all(&mut stream, b"hi").await?;
    /// let mut buf = [0; 2];
    /// server.read_exact(&mut buf)?;
    /// server.write_all(b"ok")?;
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let fd = self.io.into_inner().into_raw_fd();
        // SAFETY: `fd` is the open TCP socket the mio stream owned until
        // `into_raw_fd` gave up ownership just above; nothing else owns it.
        Ok(unsafe { std::net::TcpStream::from_raw_fd(fd) })
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotConnected` once the peer is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// assert_eq!(stream.peer_addr()?, server.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// When the socket's name cannot be read (`getsockname` failed).
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// assert_eq!(stream.local_addr()?, server.peer_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Sets `TCP_NODELAY` (Nagle's algorithm off when `true`): small writes
    /// go out at once instead of waiting for an acknowledgement.
    ///
    /// # Errors
    ///
    /// When the option cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// stream.set_nodelay(true)?;
    /// assert!(stream.nodelay()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.set_nodelay(nodelay)
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
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// assert!(!stream.nodelay()?); // Nagle is on by default
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.nodelay()
    }

    /// Sets `IP_TTL`, the time-to-live of outgoing packets.
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
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// stream.set_ttl(42)?;
    /// assert_eq!(stream.ttl()?, 42);
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
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// assert!(stream.ttl()? > 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.ttl()
    }

    /// Shuts down the read half, the write half or both. Shutting down writing
    /// sends FIN: the peer reads end-of-file once it has read everything sent.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotConnected` when the connection is already gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::AsyncReadExt;
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// stream.shutdown(std::net::Shutdown::Write)?;
    /// let mut server = server;
    /// let mut rest = Vec::new();
    /// assert_eq!(server.read_to_end(&mut rest).await?, 0); // end-of-file
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Splits into halves that two tasks can own, one reading, one writing.
    /// [`OwnedReadHalf::reunite`] puts them back together.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let (mut rd, mut wr) = server.into_split();
    /// let mut stream = stream;
    /// stream.write_all(b"ping").await?;
    /// let mut buf = [0; 4];
    /// rd.read_exact(&mut buf).await?;
    /// wr.write_all(&buf).await?;
    /// stream.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"ping");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split_owned(self)
    }

    /// Receives data without removing it from the queue: the next read
    /// returns the same bytes. Waits until at least one byte (or end-of-file,
    /// `Ok(0)`) is there.
    ///
    /// # Errors
    ///
    /// Any error `recv(2)` reports, such as `ConnectionReset`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let (mut stream, mut server) = (stream, server);
    /// stream.write_all(b"hello").await?;
    /// let mut buf = [0; 5];
    /// let n = server.peek(&mut buf).await?;
    /// assert_eq!(&buf[..n], &b"hello"[..n]);
    /// server.read_exact(&mut buf).await?; // the bytes are still there
    /// assert_eq!(&buf, b"hello");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .async_io(Direction::Read, || self.io.peek(buf))
            .await
    }

    /// Waits until the stream is readable: data, end-of-file or an error is
    /// there for the next [`try_read`](Self::try_read). It may also return
    /// when a read would still block (the readiness was stale); `try_read`
    /// then says `WouldBlock` and the caller waits again.
    ///
    /// # Errors
    ///
    /// When the driver has shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::AsyncWriteExt;
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let mut stream = stream;
    /// stream.write_all(b"hi").await?;
    /// let mut buf = [0; 16];
    /// let n = loop {
    ///     server.readable().await?;
    ///     match server.try_read(&mut buf) {
    ///         Ok(n) => break n,
    ///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
    ///         Err(e) => return Err(e),
    ///     }
    /// };
    /// assert_eq!(&buf[..n], b"hi");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        self.io.ready(Direction::Read).await
    }

    /// Waits until the stream is writable (see [`readable`](Self::readable)
    /// for the caveat about stale readiness).
    ///
    /// # Errors
    ///
    /// When the driver has shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// stream.writable().await?;
    /// let n = stream.try_write(b"hello")?;
    /// assert_eq!(n, 5);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.io.ready(Direction::Write).await
    }

    /// Reads what is there now, without waiting: `Ok(0)` is end-of-file,
    /// `ErrorKind::WouldBlock` means nothing is known to be there (wait with
    /// [`readable`](Self::readable)).
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above, or the read's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (_server, _) = listener.accept().await?;
    /// let mut buf = [0; 16];
    /// // Nothing was sent, so there is nothing to read.
    /// let err = stream.try_read(&mut buf).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_read(buf)
    }

    /// Writes what fits now, without waiting; `ErrorKind::WouldBlock` when
    /// the send buffer is full (wait with [`writable`](Self::writable)).
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above, or the write's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::AsyncReadExt;
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// stream.writable().await?;
    /// stream.try_write(b"hi")?;
    /// let (mut server, mut buf) = (server, [0; 2]);
    /// server.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_write(buf)
    }

    /// [`try_write`](Self::try_write) of several buffers in one system call
    /// (`writev`).
    ///
    /// # Errors
    ///
    /// As [`try_write`](Self::try_write).
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use std::io::IoSlice;
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// stream.writable().await?;
    /// let n = stream.try_write_vectored(&[IoSlice::new(b"head"), IoSlice::new(b"body")])?;
    /// assert_eq!(n, 8);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.io.try_write_vectored(bufs)
    }

    /// Reads into `buf`, which may be uninitialised, waiting for data with
    /// `cx`. On `Ready(Ok(n))` the first `n` bytes of `buf` are initialised
    /// (`n == 0` is end-of-file). This is the primitive behind hyper's
    /// `ReadBufCursor` and tokio's `ReadBuf`: no zero-filling before a read.
    /// It shares the stream's read waker slot with `AsyncRead::poll_read`.
    ///
    /// # Errors
    ///
    /// The read's error, such as `ConnectionReset`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use std::mem::MaybeUninit;
    /// use futures::io::AsyncWriteExt;
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let mut stream = stream;
    /// stream.write_all(b"fresh").await?;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    /// let n = std::future::poll_fn(|cx| server.poll_read_uninit(cx, &mut buf)).await?;
    /// // SAFETY: `poll_read_uninit` initialised the first `n` bytes.
    /// let data = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
    /// assert_eq!(data, b"fresh");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.io
            .registration()
            .poll_read_stream(cx, len, || inq::read(&*self.io, &self.inq, buf))
    }

    pub(crate) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: the reads behind `poll_read_uninit` only let the kernel
        // write received (initialised) bytes into the buffer.
        self.poll_read_uninit(cx, unsafe { uninit::as_uninit_mut(buf) })
    }

    pub(crate) fn poll_read_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io
            .registration()
            .poll_io(cx, Direction::Read, || (&*self.io).read_vectored(bufs))
    }
}

impl_fd!(TcpStream);

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_vectored_priv(cx, bufs)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    /// TCP has no user-space buffer here: nothing to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts down the write half (sends FIN).
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}
