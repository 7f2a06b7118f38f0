//! tokio's I/O traits on safepoint's streams (feature `tokio-io` of
//! `safepoint`): tokio-util codecs and tokio's extension methods over real
//! loopback sockets, in safepoint tasks (no tokio runtime anywhere), and
//! hyper-util's `TokioIo` wrapping our streams directly.

use futures::{SinkExt, StreamExt};
use safepoint::net::{TcpListener, TcpStream, UnixStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};

/// Runs `fut` on a two-worker safepoint runtime, failing if it hangs.
fn block_on<F: std::future::Future + Send + 'static>(fut: F) -> F::Output
where
    F::Output: Send,
{
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        safepoint::time::timeout(std::time::Duration::from_secs(30), safepoint::spawn(fut))
            .await
            .expect("the test hung")
            .unwrap()
    })
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn lines_codec_over_split_tcp_halves() {
    block_on(async {
        let (client, server) = pair().await;
        // The server upper-cases each line it reads, with tokio-util's
        // FramedRead/FramedWrite over the owned halves.
        let (rd, wr) = server.into_split();
        let upper = async move {
            let mut lines = FramedRead::new(rd, LinesCodec::new());
            let mut out = FramedWrite::new(wr, LinesCodec::new());
            let mut n = 0;
            while let Some(line) = lines.next().await {
                out.send(line.unwrap().to_uppercase()).await.unwrap();
                n += 1;
            }
            n
        };
        let talk = async move {
            let (rd, wr) = client.into_split();
            let mut out = FramedWrite::new(wr, LinesCodec::new());
            let mut back = FramedRead::new(rd, LinesCodec::new());
            for i in 0..1000 {
                out.send(format!("line {i}")).await.unwrap();
            }
            drop(out); // FIN: the server's stream of lines ends
            let mut got = Vec::new();
            while let Some(line) = back.next().await {
                got.push(line.unwrap());
            }
            got
        };
        let (n, got) = futures::future::join(upper, talk).await;
        assert_eq!(n, 1000);
        assert_eq!(got.len(), 1000);
        assert_eq!(got[0], "LINE 0");
        assert_eq!(got[999], "LINE 999");
    });
}

#[test]
fn tokio_read_buf_fills_spare_capacity_without_zeroing() {
    const LEN: usize = 2 << 20;
    block_on(async {
        let (mut client, mut server) = pair().await;
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let send = async {
            client.write_all(&data).await.unwrap();
            AsyncWriteExt::shutdown(&mut client).await.unwrap();
        };
        let recv = async {
            let mut got = Vec::with_capacity(4096);
            while server.read_buf(&mut got).await.unwrap() > 0 {
                got.reserve(4096);
            }
            got
        };
        let ((), got) = futures::future::join(send, recv).await;
        assert!(got == data, "the bytes read differ from the bytes sent");
    });
}

#[test]
fn unix_streams_take_tokio_traits_too() {
    block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let bufs = [std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")];
        assert!(tokio::io::AsyncWrite::is_write_vectored(&a));
        let n = a.write_vectored(&bufs).await.unwrap();
        assert_eq!(n, 4);
        AsyncWriteExt::shutdown(&mut a).await.unwrap();
        let mut s = String::new();
        b.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "abcd");
    });
}

#[test]
fn hyper_util_tokio_io_takes_our_streams_as_they_are() {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    block_on(async {
        let (client, server) = pair().await;
        let svc =
            hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let path = req.uri().path().to_owned();
                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                    path,
                ))))
            });
        safepoint::spawn(async move {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), svc)
                .await
                .unwrap();
        });
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .unwrap();
        safepoint::spawn(conn);
        let req = hyper::Request::get("/via-tokio-io")
            .header("host", "x")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "/via-tokio-io");
    });
}
