//! The tokio-shaped socket API on loopback: `TcpSocket` options, file
//! descriptors in and out (`AsFd`, `into_std`, `into_raw_fd`), `peek`,
//! `readable`/`try_read`, reads into uninitialised buffers, vectored writes,
//! and reuniting split halves.

mod common;

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd};
use std::time::Duration;

use futures::future::join;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use safepoint_io::net::{TcpListener, TcpSocket, TcpStream, UnixStream};

use common::block_on;

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn reuseport_listeners_share_a_port_and_both_accept() {
    block_on(async {
        let a = TcpSocket::new_v4().unwrap();
        a.set_reuseport(true).unwrap();
        a.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let b = TcpSocket::new_v4().unwrap();
        b.set_reuseport(true).unwrap();
        b.bind(addr).unwrap();
        let (a, b) = (a.listen(64).unwrap(), b.listen(64).unwrap());
        // The kernel hashes connections over the two; with enough of them
        // both listeners get some.
        let mut clients = Vec::new();
        for _ in 0..64 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        // Accept them all without the driver: each listener as a std one,
        // polled until every connection is counted (the last ACKs may still
        // be in flight when `connect` returns).
        let (a, b) = (a.into_std().unwrap(), b.into_std().unwrap());
        let (mut na, mut nb) = (0, 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while na + nb < 64 && std::time::Instant::now() < deadline {
            while a.accept().is_ok() {
                na += 1;
            }
            while b.accept().is_ok() {
                nb += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(na + nb, 64);
        assert!(na > 0 && nb > 0, "one listener got nothing: {na} / {nb}");
    });
}

#[test]
fn a_socket_without_reuseport_cannot_share_the_port() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        let err = socket.bind(listener.local_addr().unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
    });
}

#[test]
fn tcp_socket_options_carry_over_to_the_stream() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_nodelay(true).unwrap();
        socket.set_keepalive(true).unwrap();
        socket.set_send_buffer_size(1 << 20).unwrap();
        let sndbuf = socket.send_buffer_size().unwrap();
        assert!(sndbuf >= 1 << 20, "SO_SNDBUF {sndbuf}");
        let stream = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(stream.nodelay().unwrap());
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.send_buffer_size().unwrap(), sndbuf as usize);
    });
}

#[test]
fn tcp_socket_connect_to_a_closed_port_is_refused() {
    block_on(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = TcpSocket::new_v4()
            .unwrap()
            .connect(port)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn keepalive_on_an_accepted_stream_through_sockref() {
    block_on(async {
        let (_client, server) = pair().await;
        let sock = socket2::SockRef::from(&server);
        let params = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
        sock.set_tcp_keepalive(&params).unwrap();
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
        assert_eq!(server.as_fd().as_raw_fd(), server.as_raw_fd());
    });
}

#[test]
fn ttl_and_nodelay_on_streams() {
    block_on(async {
        let (client, _server) = pair().await;
        client.set_ttl(9).unwrap();
        assert_eq!(client.ttl().unwrap(), 9);
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        assert_eq!(
            client.set_ttl(0).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    });
}

#[test]
fn into_std_and_back_keeps_the_connection() {
    block_on(async {
        let (mut client, server) = pair().await;
        let mut std = server.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        client.write_all(b"to std").await.unwrap();
        let mut buf = [0; 6];
        std.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"to std");
        // And back onto the driver.
        let mut server = TcpStream::from_std(std).unwrap();
        server.write_all(b"back").await.unwrap();
        let mut buf = [0; 4];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"back");
    });
}

#[test]
fn into_raw_fd_hands_over_an_open_deregistered_socket() {
    block_on(async {
        let (mut client, server) = pair().await;
        let fd = server.into_raw_fd();
        // SAFETY: `into_raw_fd` gave us ownership of this open socket.
        let mut std = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        std.set_nonblocking(false).unwrap();
        std.write_all(b"raw").unwrap();
        let mut buf = [0; 3];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"raw");
        // A second registration of the same fd works: the first is gone
        // (epoll would refuse a duplicate with EEXIST).
        let again = TcpStream::from_std(std).unwrap();
        drop(again);
    });
}

#[test]
fn peek_leaves_the_bytes_for_the_next_read() {
    block_on(async {
        let (mut client, mut server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut head = [0; 3];
        let mut n = 0;
        while n < 3 {
            n = server.peek(&mut head).await.unwrap();
        }
        assert_eq!(&head, b"GET");
        let mut all = [0; 16];
        server.read_exact(&mut all).await.unwrap();
        assert_eq!(&all, b"GET / HTTP/1.1\r\n");
        drop(client);
        assert_eq!(server.peek(&mut head).await.unwrap(), 0, "end-of-file");
    });
}

#[test]
fn try_read_would_block_until_readable_then_reads() {
    block_on(async {
        let (client, server) = pair().await;
        let mut buf = [0; 64];
        assert_eq!(
            server.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let writer = async {
            safepoint_io::time::sleep(Duration::from_millis(20)).await;
            client.writable().await.unwrap();
            client.try_write(b"late").unwrap()
        };
        let reader = async {
            loop {
                server.readable().await.unwrap();
                match server.try_read(&mut buf) {
                    Ok(n) => return n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        };
        let (sent, got) = join(writer, reader).await;
        assert_eq!((sent, &buf[..got]), (4, &b"late"[..]));
        // Drained: the next try_read blocks again rather than spinning.
        assert_eq!(
            server.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
    });
}

#[test]
fn try_write_fills_the_send_buffer_then_would_block() {
    block_on(async {
        let (client, _server) = pair().await;
        let chunk = vec![0u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            client.writable().await.unwrap();
            match client.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
            assert!(sent < 1 << 30, "the peer never reads: the buffer must fill");
        }
        assert!(sent > 0);
    });
}

#[test]
fn uninit_reads_carry_a_large_transfer_intact() {
    const LEN: usize = 4 << 20;
    block_on(async {
        let (mut client, server) = pair().await;
        let data = pattern(LEN);
        let writer = async {
            client.write_all(&data).await.unwrap();
            client.close().await.unwrap();
        };
        let reader = async {
            let mut got: Vec<u8> = Vec::with_capacity(LEN);
            loop {
                let spare = got.spare_capacity_mut();
                let take = spare.len().min(17_000);
                let spare = &mut spare[..take];
                let n = std::future::poll_fn(|cx| server.poll_read_uninit(cx, spare))
                    .await
                    .unwrap();
                if n == 0 {
                    break got;
                }
                // SAFETY: `poll_read_uninit` initialised `n` more bytes.
                unsafe { got.set_len(got.len() + n) };
                if got.len() == got.capacity() {
                    got.reserve(1);
                }
            }
        };
        let ((), got) = join(writer, reader).await;
        assert!(got == data, "the bytes read differ from the bytes sent");
    });
}

#[test]
fn uninit_reads_on_unix_streams_and_split_halves() {
    block_on(async {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"unix").await.unwrap();
        let mut buf = [MaybeUninit::<u8>::uninit(); 16];
        let n = std::future::poll_fn(|cx| b.poll_read_uninit(cx, &mut buf))
            .await
            .unwrap();
        assert_eq!(n, 4);

        let (mut client, server) = pair().await;
        let (rd, _wr) = server.into_split();
        client.write_all(b"half").await.unwrap();
        let n = std::future::poll_fn(|cx| rd.poll_read_uninit(cx, &mut buf))
            .await
            .unwrap();
        assert_eq!(n, 4);
    });
}

#[test]
fn vectored_writes_send_every_slice_in_order() {
    block_on(async {
        let (mut client, mut server) = pair().await;
        let (mut ua, mut ub) = UnixStream::pair().unwrap();
        let parts: [&[u8]; 3] = [b"HTTP/1.1 200 OK\r\n", b"content-length: 2\r\n\r\n", b"ok"];
        let slices = parts.map(IoSlice::new);
        let want: Vec<u8> = parts.concat();
        for (w, r) in [
            (
                &mut client as &mut (dyn futures::AsyncWrite + Unpin),
                &mut server as &mut (dyn futures::AsyncRead + Unpin),
            ),
            (&mut ua, &mut ub),
        ] {
            let n = w.write_vectored(&slices).await.unwrap();
            // Loopback takes a small write whole, in one writev.
            assert_eq!(n, want.len());
            let mut got = vec![0; want.len()];
            r.read_exact(&mut got).await.unwrap();
            assert_eq!(got, want);
        }
    });
}

#[test]
fn split_halves_reunite_and_forget() {
    block_on(async {
        let (mut client, server) = pair().await;
        let (rd, wr) = server.into_split();
        let mut server = rd.reunite(wr).unwrap();
        // Reuniting did not shut down writing: the stream still writes.
        server.write_all(b"still open").await.unwrap();
        let mut buf = [0; 10];
        client.read_exact(&mut buf).await.unwrap();

        let (other, _other_server) = pair().await;
        let (rd, wr) = server.into_split();
        let (_ord, owr) = other.into_split();
        let err = rd.reunite(owr).unwrap_err();
        assert!(err.to_string().contains("not from the same TcpStream"));
        let (rd, _owr) = (err.0, err.1);

        wr.forget();
        // Forgotten, not shut down: the client sees no end-of-file while the
        // read half lives...
        let read = safepoint_io::time::timeout(Duration::from_millis(50), client.read(&mut buf));
        assert!(read.await.is_err(), "forget must not send FIN");
        // ...and sees it once the last half is gone.
        drop(rd);
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    });
}

#[test]
fn unix_split_halves_echo_reunite_and_forget() {
    block_on(async {
        let (client, server) = UnixStream::pair().unwrap();
        let (mut rd, mut wr) = server.into_split();
        let echo = async move {
            futures::io::copy(&mut rd, &mut wr).await.unwrap();
            (rd, wr)
        };
        let data = pattern(300_000);
        let talk = async {
            let (mut crd, mut cwr) = client.into_split();
            let send = async {
                cwr.write_all(&data).await.unwrap();
                cwr
            };
            let recv = async {
                let mut back = vec![0; data.len()];
                crd.read_exact(&mut back).await.unwrap();
                back
            };
            let (cwr, back) = join(send, recv).await;
            drop(cwr); // FIN: the echo's copy ends
            (crd, back)
        };
        let ((rd, wr), (mut crd, back)) = join(echo, talk).await;
        assert!(back == data, "the echo differs");

        // Reunited, the server stream still writes (no FIN was sent).
        let mut server = rd.reunite(wr).unwrap();
        server.write_all(b"after").await.unwrap();
        let mut buf = [0; 5];
        crd.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"after");

        let (other, _keep) = UnixStream::pair().unwrap();
        let (rd, wr) = server.into_split();
        let (_ord, owr) = other.into_split();
        let err = rd.reunite(owr).unwrap_err();
        assert!(err.to_string().contains("not from the same UnixStream"));
        let (rd, _owr) = (err.0, err.1);
        wr.forget();
        let read = safepoint_io::time::timeout(Duration::from_millis(50), crd.read(&mut buf));
        assert!(read.await.is_err(), "forget must not send FIN");
        drop(rd);
        assert_eq!(crd.read(&mut buf).await.unwrap(), 0);
    });
}
