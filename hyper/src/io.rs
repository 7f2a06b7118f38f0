//! [`SafepointIo`]: hyper's I/O traits over safepoint's streams.
//!
//! The orphan rule keeps `impl hyper::rt::Read for safepoint::net::TcpStream`
//! out of this crate (both are foreign), so, like hyper-util's `TokioIo`, a
//! thin wrapper carries the impls. Reads go through the streams'
//! `poll_read_uninit`, which lets the kernel write into hyper's
//! `ReadBufCursor` as it is: an adapter over `futures-io` would have to
//! zero-fill the cursor before every read, since `AsyncRead` takes
//! `&mut [u8]`. Writes are vectored (`writev`), so hyper can send headers and
//! a body chunk in one system call.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::AsyncWrite;
use safepoint::net::{TcpStream, UnixStream};

/// A safepoint stream that can read into uninitialised memory: what
/// [`SafepointIo`] needs. Implemented for `TcpStream` and `UnixStream`.
///
/// # Examples
///
/// ```
/// use safepoint_hyper::Stream;
///
/// fn takes_a_stream<S: Stream>(_stream: S) {}
/// # let _ = takes_a_stream::<safepoint::net::TcpStream>;
/// # let _ = takes_a_stream::<safepoint::net::UnixStream>;
/// ```
pub trait Stream: AsyncWrite + Unpin {
    /// Reads into `buf`; on `Ready(Ok(n))` its first `n` bytes are
    /// initialised (see `TcpStream::poll_read_uninit`).
    ///
    /// # Errors
    ///
    /// The read's error.
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>>;
}

impl Stream for TcpStream {
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_read_uninit(self, cx, buf)
    }
}

impl Stream for UnixStream {
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        UnixStream::poll_read_uninit(self, cx, buf)
    }
}

/// A safepoint stream with hyper's `rt::Read` and `rt::Write`, for hyper's
/// `serve_connection` and client `handshake`.
///
/// # Examples
///
/// ```
/// use safepoint_hyper::SafepointIo;
///
/// safepoint::Runtime::new()?.block_on(async {
///     let listener = safepoint::net::TcpListener::bind("127.0.0.1:0").await?;
///     let stream = safepoint::net::TcpStream::connect(listener.local_addr()?).await?;
///     let io = SafepointIo::new(stream);
///     assert!(hyper::rt::Write::is_write_vectored(&io));
///     let stream = io.into_inner();
///     assert_eq!(stream.peer_addr()?, listener.local_addr()?);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SafepointIo<T> {
    inner: T,
}

impl<T> SafepointIo<T> {
    /// Wraps `inner`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new()?;
    /// rt.block_on(async {
    ///     let (a, _b) = safepoint::net::UnixStream::pair()?;
    ///     let _io = safepoint_hyper::SafepointIo::new(a);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: T) -> SafepointIo<T> {
        SafepointIo { inner }
    }

    /// The stream inside.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new()?;
    /// rt.block_on(async {
    ///     let (a, _b) = safepoint::net::UnixStream::pair()?;
    ///     let io = safepoint_hyper::SafepointIo::new(a);
    ///     assert!(io.inner().local_addr()?.is_unnamed());
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Unwraps the stream.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new()?;
    /// rt.block_on(async {
    ///     let (a, _b) = safepoint::net::UnixStream::pair()?;
    ///     let a = safepoint_hyper::SafepointIo::new(a).into_inner();
    ///     a.shutdown(std::net::Shutdown::Both)?;
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Stream> hyper::rt::Read for SafepointIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: the slice is only handed to `poll_read_uninit`, which lets
        // the kernel write received bytes into it and never de-initialises
        // a byte (hyper's contract for `as_mut`).
        let n = match self.inner.poll_read_uninit(cx, unsafe { buf.as_mut() }) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        // SAFETY: `poll_read_uninit` returned `n`: the first `n` bytes of
        // the cursor's unfilled part are now initialised.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: Stream> hyper::rt::Write for SafepointIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    /// Both streams write vectored with `writev`.
    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Shuts down writing (FIN), as `AsyncWrite::poll_close` does.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
