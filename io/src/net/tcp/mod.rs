//! TCP: [`TcpListener`], [`TcpStream`], and the owned halves of a split stream.
//!
//! * `listener`: [`TcpListener`] and its [`Incoming`] stream.
//! * `stream`: [`TcpStream`].
//! * `split`: [`OwnedReadHalf`], [`OwnedWriteHalf`].
//! * `inq`: reads that say whether they emptied the receive queue.

mod inq;
mod listener;
mod split;
mod stream;

pub use self::listener::{Incoming, TcpListener};
pub use self::split::{OwnedReadHalf, OwnedWriteHalf};
pub use self::stream::TcpStream;
