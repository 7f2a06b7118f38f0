//! The owned halves of [`TcpStream::into_split`].
//!
//! Both halves share the stream through an `Arc`; that is safe for the waiters
//! because reading uses only the read direction's poll slot and writing only the
//! write direction's. As in tokio, dropping the write half shuts down writing,
//! so the peer sees end-of-file; [`OwnedReadHalf::reunite`] gives the stream
//! back without that shutdown.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_io::AsyncRead;

use super::TcpStream;
use crate::net::halves::owned_halves;

pub(crate) fn split_owned(stream: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
    let inner = Arc::new(stream);
    (
        OwnedReadHalf {
            inner: inner.clone(),
        },
        OwnedWriteHalf {
            inner,
            shutdown_on_drop: true,
        },
    )
}

/// The reading half of a [`TcpStream`].
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
///     let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     // An echo server: one half reads, the other writes.
///     let (mut rd, mut wr) = server.into_split();
///     let echo = async move { futures::io::copy(&mut rd, &mut wr).await.unwrap() };
///     let talk = async move {
///         let (mut rd, mut wr) = client.into_split();
///         wr.write_all(b"hello").await.unwrap();
///         drop(wr); // shuts down writing: the echo loop sees end-of-file
///         let mut back = Vec::new();
///         rd.read_to_end(&mut back).await.unwrap();
///         back
///     };
///     let (n, back) = futures::future::join(echo, talk).await;
///     assert_eq!((n, &back[..]), (5, &b"hello"[..]));
/// });
/// ```
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<TcpStream>,
}

/// The writing half of a [`TcpStream`]; dropping it shuts down writing
/// ([`forget`](OwnedWriteHalf::forget) lets it go without that).
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
///     let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     let (_rd, mut wr) = server.into_split();
///     wr.write_all(b"bye").await.unwrap();
///     drop(wr); // sends FIN
///     let mut got = Vec::new();
///     client.read_to_end(&mut got).await.unwrap();
///     assert_eq!(got, b"bye");
/// });
/// ```
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<TcpStream>,
    /// Cleared by `forget` and `reunite`: dropping then leaves the stream open.
    shutdown_on_drop: bool,
}

/// The error of [`OwnedReadHalf::reunite`] when the halves come from two
/// different streams; it hands both back.
///
/// # Examples
///
/// ```
/// # use safepoint_io::driver::{Config, Driver};
/// # use safepoint_io::net::{TcpListener, TcpStream};
/// # let mut driver = Driver::new(Config::default())?;
/// # driver.block_on(async {
/// let listener = TcpListener::bind("127.0.0.1:0").await?;
/// let a = TcpStream::connect(listener.local_addr()?).await?;
/// let b = TcpStream::connect(listener.local_addr()?).await?;
/// let (a_rd, _a_wr) = a.into_split();
/// let (_b_rd, b_wr) = b.into_split();
/// let err = a_rd.reunite(b_wr).unwrap_err();
/// let (_a_rd, _b_wr) = (err.0, err.1);
/// # Ok::<_, std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl OwnedReadHalf {
    /// Puts the stream back together from its two halves.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`], holding both halves, when `write` belongs to
    /// another stream.
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
    /// let (rd, wr) = server.into_split();
    /// let server = rd.reunite(wr).expect("halves of one stream");
    /// assert_eq!(server.peer_addr()?, stream.local_addr()?);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        self.reunite_halves(write)
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
    /// let (rd, wr) = server.into_split();
    /// assert_eq!(rd.peer_addr()?, stream.local_addr()?);
    /// # drop(wr);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
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
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let (rd, wr) = server.into_split();
    /// assert_eq!(rd.local_addr()?, stream.peer_addr()?);
    /// # drop(wr);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// [`TcpStream::peek`] on the read half.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::peek`].
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
    /// let (rd, wr) = server.into_split();
    /// let mut stream = stream;
    /// stream.write_all(b"x").await?;
    /// let mut buf = [0; 1];
    /// assert_eq!(rd.peek(&mut buf).await?, 1);
    /// # drop(wr);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }

    /// [`TcpStream::readable`] on the read half.
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
    /// let (rd, wr) = server.into_split();
    /// let mut stream = stream;
    /// stream.write_all(b"x").await?;
    /// rd.readable().await?;
    /// # drop(wr);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        self.inner.readable().await
    }

    /// [`TcpStream::try_read`] on the read half.
    ///
    /// # Errors
    ///
    /// `ErrorKind::WouldBlock` when nothing is known to be there.
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
    /// let (rd, wr) = server.into_split();
    /// let mut buf = [0; 8];
    /// let err = rd.try_read(&mut buf).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # drop((wr, stream));
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.try_read(buf)
    }

    /// [`TcpStream::poll_read_uninit`] on the read half.
    ///
    /// # Errors
    ///
    /// The read's error.
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
    /// let (rd, wr) = server.into_split();
    /// let mut stream = stream;
    /// stream.write_all(b"abc").await?;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 8];
    /// let n = std::future::poll_fn(|cx| rd.poll_read_uninit(cx, &mut buf)).await?;
    /// assert_eq!(n, 3);
    /// # drop(wr);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_read_uninit(cx, buf)
    }
}

impl OwnedWriteHalf {
    /// Drops the half *without* shutting down writing: the stream closes
    /// when the read half is dropped too.
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
    /// let (rd, wr) = server.into_split();
    /// wr.forget();
    /// let mut stream = stream;
    /// let mut buf = [0; 1];
    /// // No FIN was sent: the client's read would wait, not see end-of-file.
    /// let read = safepoint_io::time::timeout(std::time::Duration::from_millis(50), stream.read(&mut buf));
    /// assert!(read.await.is_err());
    /// # drop(rd);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
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
    /// let (rd, wr) = server.into_split();
    /// assert_eq!(wr.peer_addr()?, stream.local_addr()?);
    /// # drop(rd);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
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
    /// # use safepoint_io::net::{TcpListener, TcpStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let listener = TcpListener::bind("127.0.0.1:0").await?;
    /// let stream = TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// let (rd, wr) = server.into_split();
    /// assert_eq!(wr.local_addr()?, stream.peer_addr()?);
    /// # drop(rd);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// [`TcpStream::writable`] on the write half.
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
    /// let (rd, wr) = server.into_split();
    /// wr.writable().await?;
    /// # drop((rd, stream));
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        self.inner.writable().await
    }

    /// [`TcpStream::try_write`] on the write half.
    ///
    /// # Errors
    ///
    /// `ErrorKind::WouldBlock` when the send buffer is full.
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
    /// let (rd, wr) = server.into_split();
    /// wr.writable().await?;
    /// assert_eq!(wr.try_write(b"hi")?, 2);
    /// # drop((rd, stream));
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.try_write(buf)
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_read_priv(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_read_vectored_priv(cx, bufs)
    }
}

owned_halves!(TcpStream, OwnedReadHalf, OwnedWriteHalf, ReuniteError);
