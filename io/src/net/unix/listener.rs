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
    /// Binds to `path` and registers with the current driver. Panics outside
    /// a runtime.
    #[track_caller]
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: PollEvented::new(mio::net::UnixListener::bind(path)?)?,
        })
    }

    /// Wraps a std listener (switching it to non-blocking mode). Panics outside
    /// a runtime.
    #[track_caller]
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            io: PollEvented::new(mio::net::UnixListener::from_std(listener))?,
        })
    }

    /// Accepts a connection.
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
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}
