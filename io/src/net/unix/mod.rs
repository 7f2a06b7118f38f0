//! Unix domain stream sockets.
//!
//! * `listener`: [`UnixListener`].
//! * `stream`: [`UnixStream`].

mod listener;
mod stream;

pub use self::listener::UnixListener;
pub use self::stream::UnixStream;
pub use std::os::unix::net::SocketAddr;
