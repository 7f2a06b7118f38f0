//! Unix domain stream sockets.
//!
//! * `listener`: [`UnixListener`].
//! * `stream`: [`UnixStream`].
//! * `split`: [`OwnedReadHalf`], [`OwnedWriteHalf`], [`ReuniteError`].

mod listener;
mod split;
mod stream;

pub use self::listener::UnixListener;
pub use self::split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use self::stream::UnixStream;
pub use std::os::unix::net::SocketAddr;
