//! TCP on loopback: many concurrent echo clients, half-close, error kinds.

mod common;

use std::io::ErrorKind;
use std::net::Shutdown;

use futures::future::{join, join_all};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use safepoint_io::net::{TcpListener, TcpStream};

use common::block_on;

fn payload(seed: u64, len: usize) -> Vec<u8> {
    // Word-at-a-time xorshift: cheap enough in debug builds for 100 MiB.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn checksum(data: &[u8]) -> u64 {
    assert_eq!(data.len() % 8, 0);
    data.chunks_exact(8).fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn hundred_clients_echo_one_mib_each() {
    const CLIENTS: usize = 100;
    const LEN: usize = 1 << 20;
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = async {
            let mut conns = Vec::new();
            for _ in 0..CLIENTS {
                conns.push(listener.accept().await.unwrap().0);
            }
            join_all(conns.into_iter().map(|conn| async move {
                let (mut rd, mut wr) = conn.into_split();
                futures::io::copy(&mut rd, &mut wr).await.unwrap();
                wr.close().await.unwrap();
            }))
            .await;
        };
        let clients = join_all((0..CLIENTS).map(|i| async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let data = payload(i as u64, LEN);
            let expected = checksum(&data);
            let (mut rd, mut wr) = stream.into_split();
            let write = async {
                wr.write_all(&data).await.unwrap();
                wr.close().await.unwrap();
            };
            let read = async {
                // read_exact into a zeroed buffer, then expect EOF: futures'
                // read_to_end zero-fills as it grows, which dominates in debug.
                let mut back = vec![0u8; LEN];
                rd.read_exact(&mut back).await.unwrap();
                assert_eq!(rd.read(&mut [0u8; 1]).await.unwrap(), 0, "EOF after 1 MiB");
                back
            };
            let ((), back) = join(write, read).await;
            assert_eq!(back.len(), LEN, "client {i}");
            assert_eq!(checksum(&back), expected, "client {i}");
        }));
        join(server, clients).await;
    });
}

#[test]
fn half_close_then_read_to_eof() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = async {
            let (mut s, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, s.peer_addr().unwrap());
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"hello");
            // Our side is still writable after the peer's FIN.
            s.write_all(b"bye").await.unwrap();
            s.shutdown(Shutdown::Write).unwrap();
        };
        let client = async {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"bye");
        };
        join(server, client).await;
    });
}

#[test]
fn refused_connect_is_connection_refused() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = block_on(TcpStream::connect(addr)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err:?}");
}

#[test]
fn bind_in_use_is_addr_in_use() {
    block_on(async {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = TcpListener::bind(a.local_addr().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err:?}");
    });
}

#[test]
fn peer_reset_is_connection_reset() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        // Closing with unread data makes the kernel send RST.
        c.write_all(b"unread").await.unwrap();
        // Give the bytes time to arrive before the close.
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(s);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = [0u8; 8];
        let err = c.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err:?}");
    });
}

#[test]
fn incoming_and_from_std() {
    block_on(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let server = async {
            let mut incoming = listener.incoming();
            for _ in 0..3 {
                let mut s = incoming.next().await.unwrap().unwrap();
                s.write_all(b"x").await.unwrap();
            }
        };
        let clients = join_all((0..3).map(|_| async {
            let std_stream = std::net::TcpStream::connect(addr).unwrap();
            let mut s = TcpStream::from_std(std_stream).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"x");
        }));
        join(server, clients).await;
    });
}
