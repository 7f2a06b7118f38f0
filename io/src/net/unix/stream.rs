//! [`UnixStream`]: a Unix stream connection with `futures-io` traits.
//!
//! The same shape as [`TcpStream`](crate::net::TcpStream): poll slots per
//! direction for the owner, `poll_close` shuts down writing, reads into
//! uninitialised buffers and vectored writes.

use std::fmt;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::split::{split_owned, OwnedReadHalf, OwnedWriteHalf};
use crate::driver::scheduled_io::Direction;
use crate::net::fd::impl_fd;
use crate::net::poll_evented::PollEvented;
use crate::net::uninit;

/// A Unix stream socket.
///
/// # Examples
///
/// ```
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::UnixStream;
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     a.write_all(b"hi").await.unwrap();
///     let mut buf = [0; 2];
///     b.read_exact(&mut buf).await.unwrap();
///     assert_eq!(&buf, b"hi");
/// });
/// ```
pub struct UnixStream {
    /// `pub(crate)` for the owned halves' shared `AsyncWrite` (`net::halves`).
    pub(crate) io: PollEvented<mio::net::UnixStream>,
}

impl UnixStream {
    pub(crate) fn from_mio(io: PollEvented<mio::net::UnixStream>) -> UnixStream {
        UnixStream { io }
    }

    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `NotFound` when nothing is at `path`, `ConnectionRefused` when
    /// nothing listens there.
    ///
    /// # Panics
    ///
    /// When polled outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let path = std::env::temp_dir().join(format!("sp-doc-connect-{}.sock", std::process::id()));
    /// let listener = safepoint_io::net::UnixListener::bind(&path)?;
    /// let stream = UnixStream::connect(&path).await?;
    /// let (_server, _) = listener.accept().await?;
    /// assert_eq!(stream.peer_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let sys = mio::net::UnixStream::connect(path)?;
        let stream = UnixStream {
            io: PollEvented::new(sys)?,
        };
        stream
            .io
            .registration()
            .async_io(Direction::Write, || match stream.io.take_error()? {
                Some(e) => Err(e),
                None => Ok(()),
            })
            .await?;
        Ok(stream)
    }

    /// A connected pair, registered with the current driver.
    ///
    /// # Errors
    ///
    /// When `socketpair(2)` fails.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// let (mut a, mut b) = UnixStream::pair()?;
    /// a.write_all(b"hi").await?;
    /// let mut buf = [0; 2];
    /// b.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((
            UnixStream {
                io: PollEvented::new(a)?,
            },
            UnixStream {
                io: PollEvented::new(b)?,
            },
        ))
    }

    /// Wraps a std stream (switching it to non-blocking mode).
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
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let a = UnixStream::from_std(a)?;
    /// assert!(a.peer_addr()?.is_unnamed());
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            io: PollEvented::new(mio::net::UnixStream::from_std(stream))?,
        })
    }

    /// Deregisters from the driver and returns the std stream, still in
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
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use std::io::Read;
    /// use futures::io::AsyncWriteExt;
    /// let (mut a, b) = UnixStream::pair()?;
    /// let mut b = b.into_std()?;
    /// b.set_nonblocking(false)?;
    /// a.write_all(b"hi").await?;
    /// let mut buf = [0; 2];
    /// b.read_exact(&mut buf)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let fd = self.io.into_inner().into_raw_fd();
        // SAFETY: `fd` is the open Unix socket the mio stream owned until
        // `into_raw_fd` gave up ownership just above.
        Ok(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) })
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
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// assert!(a.local_addr()?.is_unnamed());
    /// # drop(b);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// When `getpeername` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// assert!(b.peer_addr()?.is_unnamed());
    /// # drop(a);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Shuts down reading, writing or both.
    ///
    /// # Errors
    ///
    /// `NotConnected` when the peer is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::AsyncReadExt;
    /// let (a, mut b) = UnixStream::pair()?;
    /// a.shutdown(std::net::Shutdown::Write)?;
    /// let mut rest = Vec::new();
    /// assert_eq!(b.read_to_end(&mut rest).await?, 0);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Splits into halves that two tasks can own, one reading, one writing.
    /// [`OwnedReadHalf::reunite`](super::OwnedReadHalf::reunite) puts them
    /// back together.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use futures::io::{AsyncReadExt, AsyncWriteExt};
    /// let (mut a, b) = UnixStream::pair()?;
    /// let (mut rd, mut wr) = b.into_split();
    /// a.write_all(b"ping").await?;
    /// let mut buf = [0; 4];
    /// rd.read_exact(&mut buf).await?;
    /// wr.write_all(&buf).await?;
    /// a.read_exact(&mut buf).await?;
    /// assert_eq!(&buf, b"ping");
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split_owned(self)
    }

    /// Waits until the stream is readable (see [`TcpStream::readable`](crate::net::TcpStream::readable)).
    ///
    /// # Errors
    ///
    /// When the driver has shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// b.writable().await?;
    /// b.try_write(b"x")?;
    /// a.readable().await?;
    /// let mut buf = [0; 1];
    /// assert_eq!(a.try_read(&mut buf)?, 1);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        self.io.ready(Direction::Read).await
    }

    /// Waits until the stream is writable.
    ///
    /// # Errors
    ///
    /// When the driver has shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// a.writable().await?;
    /// # drop(b);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.io.ready(Direction::Write).await
    }

    /// Reads what is there now, without waiting (`WouldBlock` if nothing is
    /// known to be there).
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above, or the read's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// let mut buf = [0; 8];
    /// let err = a.try_read(&mut buf).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # drop(b);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_read(buf)
    }

    /// Writes what fits now, without waiting (`WouldBlock` when full).
    ///
    /// # Errors
    ///
    /// `WouldBlock` as above, or the write's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// a.writable().await?;
    /// assert_eq!(a.try_write(b"hey")?, 3);
    /// # drop(b);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.try_write(buf)
    }

    /// Reads into `buf`, which may be uninitialised (see
    /// [`TcpStream::poll_read_uninit`](crate::net::TcpStream::poll_read_uninit)).
    /// On `Ready(Ok(n))` the first `n` bytes of `buf` are initialised.
    ///
    /// # Errors
    ///
    /// The read's error.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// use std::mem::MaybeUninit;
    /// use futures::io::AsyncWriteExt;
    /// let (mut a, b) = UnixStream::pair()?;
    /// a.write_all(b"abc").await?;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 8];
    /// let n = std::future::poll_fn(|cx| b.poll_read_uninit(cx, &mut buf)).await?;
    /// assert_eq!(n, 3);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let io = &self.io;
        let len = buf.len();
        io.registration()
            .poll_read_stream(cx, len, || Ok((uninit::recv(io.as_raw_fd(), buf)?, false)))
    }
}

impl_fd!(UnixStream);

impl AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: `poll_read_uninit` only lets `recv(2)` write received
        // (initialised) bytes into the buffer.
        self.poll_read_uninit(cx, unsafe { uninit::as_uninit_mut(buf) })
    }
}

impl AsyncWrite for UnixStream {
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

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts down writing.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream").finish_non_exhaustive()
    }
}
