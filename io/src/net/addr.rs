//! Address resolution shared by the socket constructors.
//!
//! Like std (and tokio), a constructor taking `impl ToSocketAddrs` tries every
//! address the name resolves to and returns the last error if none works. The
//! resolution itself is std's and may block on DNS for host names; literal
//! addresses (the common case on servers) never block.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

pub(crate) async fn each_addr<A, T, F, Fut>(addr: A, mut f: F) -> io::Result<T>
where
    A: ToSocketAddrs,
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr).await {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

/// The first address `addr` resolves to (for `send_to`, which sends once).
pub(crate) fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}
