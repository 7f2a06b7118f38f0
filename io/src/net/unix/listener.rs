//! [`UnixListener`]: accepts Unix stream connections on the reactor.
//!
//! Like tokio, `bind` is synchronous (binding a path never waits on the
//! network); accepted streams register with the listener's driver.

use std::fmt;
use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::UnixStream;
use crate::driver::scheduled_io::Direction;
use crate::net::fd::impl_fd;
use crate::net::poll_evented::PollEvented;

/// A Unix socket server.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("safepoint-doc-{}.sock", std::process::id()));
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let listener = UnixListener::bind(&path).unwrap();
///     let (accepted, connected) =
///         futures::future::join(listener.accept(), UnixStream::connect(&path)).await;
///     accepted.unwrap();
///     connected.unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: PollEvented<mio::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` and registers with the current driver.
    ///
    /// # Errors
    ///
    /// `AddrInUse` when a file exists at `path` (remove a stale socket
    /// file first); the bind's error otherwise.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixListener, UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let path = std::env::temp_dir().join(format!("sp-doc-{}-{}.sock", line!(), std::process::id()));
    /// let listener = UnixListener::bind(&path)?;
    /// assert!(UnixListener::bind(&path).is_err()); // the path is taken
    /// # drop(listener);
    /// std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: PollEvented::new(mio::net::UnixListener::bind(path)?)?,
        })
    }

    /// Wraps a std listener (switching it to non-blocking mode).
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
    /// # use safepoint_io::net::{UnixListener, UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let path = std::env::temp_dir().join(format!("sp-doc-{}-{}.sock", line!(), std::process::id()));
    /// let listener = UnixListener::from_std(std::os::unix::net::UnixListener::bind(&path)?)?;
    /// let _client = UnixStream::connect(&path).await?;
    /// listener.accept().await?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            io: PollEvented::new(mio::net::UnixListener::from_std(listener))?,
        })
    }

    /// Deregisters from the driver and returns the std listener, still in
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
    /// # use safepoint_io::net::{UnixListener, UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let path = std::env::temp_dir().join(format!("sp-doc-{}-{}.sock", line!(), std::process::id()));
    /// let listener = UnixListener::bind(&path)?.into_std()?;
    /// listener.set_nonblocking(false)?;
    /// let _client = std::os::unix::net::UnixStream::connect(&path)?;
    /// listener.accept()?;
    /// std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let fd = self.io.into_inner().into_raw_fd();
        // SAFETY: `fd` is the open listening socket the mio listener owned
        // until `into_raw_fd` gave up ownership just above.
        Ok(unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) })
    }

    /// Accepts a connection.
    ///
    /// # Errors
    ///
    /// The `accept(2)` error, such as `EMFILE`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use safepoint_io::driver::{Config, Driver};
    /// # use safepoint_io::net::{UnixListener, UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let path = std::env::temp_dir().join(format!("sp-doc-{}-{}.sock", line!(), std::process::id()));
    /// let listener = UnixListener::bind(&path)?;
    /// let _client = UnixStream::connect(&path).await?;
    /// let (_stream, peer) = listener.accept().await?;
    /// assert!(peer.is_unnamed());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (sys, addr) = self
            .io
            .registration()
            .async_io(Direction::Read, || self.io.accept())
            .await?;
        let handle = self.io.registration().handle().clone();
        Ok((
            UnixStream::from_mio(PollEvented::with_handle(sys, handle)?),
            addr,
        ))
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
    /// # use safepoint_io::net::{UnixListener, UnixStream};
    /// # let mut driver = Driver::new(Config::default())?;
    /// # driver.block_on(async {
    /// let path = std::env::temp_dir().join(format!("sp-doc-{}-{}.sock", line!(), std::process::id()));
    /// let listener = UnixListener::bind(&path)?;
    /// assert_eq!(listener.local_addr()?.as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<_, std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl_fd!(UnixListener);

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}
