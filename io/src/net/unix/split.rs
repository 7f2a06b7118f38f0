//! The owned halves of [`UnixStream::into_split`], as for TCP (see
//! `tcp::split`): one task reads, another writes; dropping the write half
//! shuts down writing, [`OwnedReadHalf::reunite`] gives the stream back.

use std::io;
use std::mem::MaybeUninit;
use std::os::unix::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_io::AsyncRead;

use super::UnixStream;
use crate::net::halves::owned_halves;
use crate::net::uninit;

pub(crate) fn split_owned(stream: UnixStream) -> (OwnedReadHalf, OwnedWriteHalf) {
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

/// The reading half of a [`UnixStream`].
///
/// # Examples
///
/// ```
/// # use safepoint_io::driver::{Config, Driver};
/// # use safepoint_io::net::UnixStream;
/// # let mut driver = Driver::new(Config::default())?;
/// # driver.block_on(async {
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// let (a, b) = UnixStream::pair()?;
/// // An echo: one half reads, the other writes, in two futures at once.
/// let (mut rd, mut wr) = b.into_split();
/// let echo = async move { futures::io::copy(&mut rd, &mut wr).await };
/// let talk = async move {
///     let (mut rd, mut wr) = a.into_split();
///     wr.write_all(b"hello").await?;
///     drop(wr); // FIN: the echo loop ends
///     let mut back = Vec::new();
///     rd.read_to_end(&mut back).await?;
///     Ok::<_, std::io::Error>(back)
/// };
/// let (n, back) = futures::future::join(echo, talk).await;
/// assert_eq!((n?, &back?[..]), (5, &b"hello"[..]));
/// # Ok::<_, std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<UnixStream>,
}

/// The writing half of a [`UnixStream`]; dropping it shuts down writing
/// ([`forget`](OwnedWriteHalf::forget) lets it go without that).
///
/// # Examples
///
/// ```
/// # use safepoint_io::driver::{Config, Driver};
/// # use safepoint_io::net::UnixStream;
/// # let mut driver = Driver::new(Config::default())?;
/// # driver.block_on(async {
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// let (mut a, b) = UnixStream::pair()?;
/// let (_rd, mut wr) = b.into_split();
/// wr.write_all(b"bye").await?;
/// drop(wr);
/// let mut got = Vec::new();
/// a.read_to_end(&mut got).await?;
/// assert_eq!(got, b"bye");
/// # Ok::<_, std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<UnixStream>,
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
/// # use safepoint_io::net::{UnixStream};
/// # let mut driver = Driver::new(Config::default())?;
/// # driver.block_on(async {
/// let (a, b) = UnixStream::pair()?;
/// let (a_rd, _a_wr) = a.into_split();
/// let (_b_rd, b_wr) = b.into_split();
/// let err = a_rd.reunite(b_wr).unwrap_err();
/// assert!(err.to_string().contains("UnixStream"));
/// # Ok::<_, std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl OwnedReadHalf {
    /// Puts the stream back together from its two halves (without the
    /// shutdown that dropping the write half would send).
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
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// let (rd, wr) = b.into_split();
    /// let b = rd.reunite(wr).expect("halves of one stream");
    /// # drop((a, b));
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reunite(self, write: OwnedWriteHalf) -> Result<UnixStream, ReuniteError> {
        self.reunite_halves(write)
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
    /// let (rd, wr) = b.into_split();
    /// assert!(rd.peer_addr()?.is_unnamed());
    /// # drop((a, wr));
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
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// let (rd, wr) = b.into_split();
    /// assert!(rd.local_addr()?.is_unnamed());
    /// # drop((a, wr));
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// [`UnixStream::poll_read_uninit`] on the read half.
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
    /// let (rd, _wr) = b.into_split();
    /// a.write_all(b"abc").await?;
    /// let mut buf = [MaybeUninit::<u8>::uninit(); 8];
    /// let n = std::future::poll_fn(|cx| rd.poll_read_uninit(cx, &mut buf)).await?;
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
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// let (rd, wr) = b.into_split();
    /// wr.forget();
    /// drop(rd); // the last half: now the stream closes
    /// # drop(a);
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
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
    /// let (rd, wr) = b.into_split();
    /// assert!(wr.peer_addr()?.is_unnamed());
    /// # drop((a, rd));
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
    /// # use safepoint_io::net::{UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let (a, b) = UnixStream::pair()?;
    /// let (rd, wr) = b.into_split();
    /// assert!(wr.local_addr()?.is_unnamed());
    /// # drop((a, rd));
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for OwnedReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: `poll_read_uninit` only lets `recv(2)` write received
        // (initialised) bytes into the buffer.
        self.inner
            .poll_read_uninit(cx, unsafe { uninit::as_uninit_mut(buf) })
    }
}

owned_halves!(UnixStream, OwnedReadHalf, OwnedWriteHalf, ReuniteError);
