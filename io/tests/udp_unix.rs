//! UDP and Unix stream round trips on the local machine.

mod common;

use futures::future::join;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use safepoint_io::net::{UdpSocket, UnixListener, UnixStream};

use common::block_on;

#[test]
fn udp_round_trip() {
    block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let echo = async {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, a_addr);
            b.send_to(&buf[..n], from).await.unwrap();
        };
        let ask = async {
            a.send_to(b"ping", b_addr).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"ping"[..], b_addr));
        };
        join(echo, ask).await;

        // Connected form.
        a.connect(b_addr).await.unwrap();
        b.connect(a_addr).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        a.send(b"hi").await.unwrap();
        let mut buf = [0u8; 8];
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hi");
    });
}

#[test]
fn unix_stream_round_trip() {
    let dir = std::env::temp_dir().join(format!("safepoint-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let server = async {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            s.close().await.unwrap();
        };
        let client = async {
            let mut c = UnixStream::connect(&path).await.unwrap();
            let data = vec![7u8; 300_000];
            c.write_all(&data).await.unwrap();
            c.close().await.unwrap();
            let mut back = Vec::new();
            c.read_to_end(&mut back).await.unwrap();
            assert_eq!(back, data);
        };
        join(server, client).await;

        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"pair").await.unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pair");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
