//! TCP: [`TcpListener`], [`TcpStream`], and the owned halves of a split stream.
//!
//! * `listener`: [`TcpListener`] and its [`Incoming`] stream.
//! * `stream`: [`TcpStream`].
//! * `split`: [`OwnedReadHalf`], [`OwnedWriteHalf`], [`ReuniteError`].
//! * `socket`: [`TcpSocket`], options before `bind`/`listen`/`connect`.
//! * `inq`: reads that say whether they emptied the receive queue.

mod inq;
mod listener;
mod socket;
mod split;
mod stream;

pub use self::listener::{Incoming, TcpListener};
pub use self::socket::TcpSocket;
pub use self::split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use self::stream::TcpStream;
