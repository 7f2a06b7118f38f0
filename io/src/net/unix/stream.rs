//! [`UnixStream`]: a Unix stream connection with `futures-io` traits.
//!
//! The same shape as [`TcpStream`](crate::net::TcpStream): poll slots per
//! direction for the owner, `poll_close` shuts down writing.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::driver::scheduled_io::Direction;
use crate::net::poll_evented::PollEvented;

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
    io: PollEvented<mio::net::UnixStream>,
}

impl UnixStream {
    pub(crate) fn from_mio(io: PollEvented<mio::net::UnixStream>) -> UnixStream {
        UnixStream { io }
    }

    /// Connects to the socket at `path`. Panics (when polled) outside a runtime.
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

    /// A connected pair, registered with the current driver. Panics outside a
    /// runtime.
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

    /// Wraps a std stream (switching it to non-blocking mode). Panics outside a
    /// runtime.
    #[track_caller]
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            io: PollEvented::new(mio::net::UnixStream::from_std(stream))?,
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Shuts down reading, writing or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }
}

impl AsyncRead for UnixStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let io = &self.io;
        let len = buf.len();
        io.registration()
            .poll_read_stream(cx, len, || Ok(((&**io).read(buf)?, false)))
    }
}

impl AsyncWrite for UnixStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let io = &self.io;
        io.registration()
            .poll_io(cx, Direction::Write, || (&**io).write(buf))
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
