//! Sockets on the reactor, shaped like tokio's, with `futures-io` traits.
//!
//! * `poll_evented`: `PollEvented`, the one wrapper that ties a
//!   mio socket to a driver registration; every type below is built on it.
//! * [`tcp`]: [`TcpListener`], [`TcpStream`] and its owned halves, [`TcpSocket`].
//! * `fd`: `AsRawFd`/`AsFd`/`IntoRawFd` for all of them.
//! * `halves`: what the owned halves of TCP and Unix streams share.
//! * `uninit`: reads into uninitialised buffers (hyper's, tokio's).
//! * `tokio_io`: tokio's `AsyncRead`/`AsyncWrite` on the streams (feature
//!   `tokio-io`).
//! * `udp`: [`UdpSocket`].
//! * [`unix`]: [`UnixListener`], [`UnixStream`].
//! * `addr`: resolving `ToSocketAddrs` and trying each address.

mod addr;
mod fd;
mod halves;
mod poll_evented;
pub mod tcp;
#[cfg(feature = "tokio-io")]
mod tokio_io;
mod udp;
mod uninit;
pub mod unix;

pub use self::tcp::{TcpListener, TcpSocket, TcpStream};
pub use self::udp::UdpSocket;
pub use self::unix::{UnixListener, UnixStream};
