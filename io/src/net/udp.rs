//! [`UdpSocket`]: datagrams on the reactor.
//!
//! All methods take `&self` and are `async fn`s that wait with their own waiter
//! entry, so one socket can be shared (in an `Arc`) by many tasks sending and
//! receiving at once, as is usual for UDP servers.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::driver::scheduled_io::Direction;
use crate::net::addr::{each_addr, first_addr};
use crate::net::poll_evented::PollEvented;

/// A UDP socket.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::net::UdpSocket;
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     peer.send_to(b"ping", sock.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0; 1500];
///     let (n, from) = sock.recv_from(&mut buf).await.unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], peer.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    io: PollEvented<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr`. Panics (when polled) outside a runtime.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| async move {
            Ok(UdpSocket {
                io: PollEvented::new(mio::net::UdpSocket::bind(addr)?)?,
            })
        })
        .await
    }

    /// Wraps a std socket (switching it to non-blocking mode) and registers it
    /// with the current driver. Panics outside a runtime.
    #[track_caller]
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: PollEvented::new(mio::net::UdpSocket::from_std(socket))?,
        })
    }

    /// Sets the default peer for `send`/`recv` and filters received datagrams.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |addr| async move { self.io.connect(addr) }).await
    }

    /// Sends to `target` (its first resolved address); returns bytes sent.
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let target = first_addr(target)?;
        self.io
            .registration()
            .async_io(Direction::Write, || self.io.send_to(buf, target))
            .await
    }

    /// Receives one datagram; returns its length and sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .registration()
            .async_io(Direction::Read, || self.io.recv_from(buf))
            .await
    }

    /// Sends to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .registration()
            .async_io(Direction::Write, || self.io.send(buf))
            .await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .registration()
            .async_io(Direction::Read, || self.io.recv(buf))
            .await
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The connected peer's address (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}
