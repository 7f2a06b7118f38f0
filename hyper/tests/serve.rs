//! hyper's client against `safepoint_hyper::serve` over real loopback
//! sockets: HTTP/1 and HTTP/2 (auto-detected), connection info, large
//! bodies through the uninitialised-buffer reads, the timer (header-read
//! timeout), Unix streams, and graceful shutdown with a request in flight.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use safepoint::net::{TcpListener, TcpStream, UnixStream};
use safepoint_hyper::{serve, ConnectionInfo, SafepointExecutor, SafepointIo, SafepointTimer};

/// Runs `fut` on a two-worker runtime, failing the test if it hangs.
fn run<F: Future<Output = ()> + Send + 'static>(fut: F) {
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        safepoint::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("the test hung");
    });
}

/// `GET /` says hello and who asked; `POST /echo` sends the body back;
/// `GET /slow` answers after `slow` has been told a request arrived and
/// 300 ms have passed; `GET /stuck` never answers in time.
async fn handler(
    req: Request<Incoming>,
    arrived: Arc<AtomicUsize>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let info = *req
        .extensions()
        .get::<ConnectionInfo>()
        .expect("serve sets it");
    let body = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Bytes::from(format!("Hello, World! from {}", info.peer_addr)),
        (&Method::POST, "/echo") => req.into_body().collect().await.unwrap().to_bytes(),
        (&Method::GET, "/slow") => {
            arrived.fetch_add(1, Ordering::SeqCst);
            safepoint::time::sleep(Duration::from_millis(300)).await;
            Bytes::from("slow but done")
        }
        (&Method::GET, "/stuck") => {
            arrived.fetch_add(1, Ordering::SeqCst);
            safepoint::time::sleep(Duration::from_secs(20)).await;
            Bytes::from("too late")
        }
        _ => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return Ok(r);
        }
    };
    Ok(Response::new(Full::new(body)))
}

/// Starts a server; returns its address, the count of slow requests that
/// arrived, the trigger of its graceful shutdown and its outcome.
async fn start(
    deadline: Duration,
) -> (
    SocketAddr,
    Arc<AtomicUsize>,
    oneshot::Sender<()>,
    safepoint::JoinHandle<std::io::Result<safepoint_hyper::ShutdownReport>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrived = Arc::new(AtomicUsize::new(0));
    let seen = arrived.clone();
    let svc = service_fn(move |req| handler(req, seen.clone()));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = safepoint::spawn(async move {
        serve(listener, svc)
            .with_graceful_shutdown(
                async move {
                    let _ = stopped.await;
                },
                deadline,
            )
            .await
    });
    (addr, arrived, stop, server)
}

async fn http1_client(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(SafepointIo::new(stream))
        .await
        .unwrap();
    safepoint::spawn(async move {
        let _ = conn.await;
    });
    send
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn body_of(resp: Response<Incoming>) -> Bytes {
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[test]
fn http1_get_says_hello_and_sees_the_peer_address() {
    run(async {
        let (addr, _, stop, server) = start(Duration::from_secs(5)).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let me = stream.local_addr().unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(SafepointIo::new(stream))
            .await
            .unwrap();
        safepoint::spawn(conn);
        for _ in 0..3 {
            // Keep-alive: three requests on one connection.
            // hyper's HTTP/1 client takes the next request only once the
            // connection is idle again.
            send.ready().await.unwrap();
            let resp = send.send_request(get("/")).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.version(), Version::HTTP_11);
            let body = body_of(resp).await;
            assert_eq!(body, format!("Hello, World! from {me}"));
        }
        send.ready().await.unwrap();
        let resp = send.send_request(get("/nope")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        stop.send(()).unwrap();
        let report = server.await.unwrap().unwrap();
        assert_eq!(report.forced, 0);
    });
}

#[test]
fn connection_info_off_leaves_the_extensions_empty() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let svc = service_fn(|req: Request<Incoming>| async move {
            let has = req.extensions().get::<ConnectionInfo>().is_some();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!("{has}")))))
        });
        let server = serve(listener, svc).connection_info(false);
        let server = safepoint::spawn(std::future::IntoFuture::into_future(server));
        let mut send = http1_client(addr).await;
        let resp = send.send_request(get("/")).await.unwrap();
        assert_eq!(&body_of(resp).await[..], b"false");
        server.abort();
    });
}

#[test]
fn http2_prior_knowledge_is_detected_and_multiplexed() {
    run(async {
        let (addr, _, stop, server) = start(Duration::from_secs(5)).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http2::Builder::new(SafepointExecutor::new())
            .timer(SafepointTimer::new())
            .handshake(SafepointIo::new(stream))
            .await
            .unwrap();
        safepoint::spawn(conn);
        // Twenty concurrent streams on the one connection, slow ones
        // included: they overlap rather than queue.
        let started = std::time::Instant::now();
        let mut requests = Vec::new();
        for i in 0..20 {
            let mut send = send.clone();
            let path = if i % 2 == 0 { "/slow" } else { "/" };
            requests.push(safepoint::spawn(async move {
                let resp = send.send_request(get(path)).await.unwrap();
                assert_eq!(resp.version(), Version::HTTP_2);
                assert_eq!(resp.status(), StatusCode::OK);
                body_of(resp).await
            }));
        }
        for r in requests {
            let body = r.await.unwrap();
            assert!(body.starts_with(b"Hello") || body == "slow but done");
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "ten 300 ms requests took {:?}: not multiplexed",
            started.elapsed()
        );
        stop.send(()).unwrap();
        assert_eq!(server.await.unwrap().unwrap().forced, 0);
    });
}

#[test]
fn large_bodies_round_trip_intact_on_http1_and_http2() {
    run(async {
        let (addr, _, stop, server) = start(Duration::from_secs(5)).await;
        let payload: Bytes = (0..(3 << 20) + 17)
            .map(|i: usize| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
            .collect::<Vec<u8>>()
            .into();
        let post = |p: &Bytes| {
            Request::post("/echo")
                .header("host", "localhost")
                .body(Full::new(p.clone()))
                .unwrap()
        };
        let mut h1 = http1_client(addr).await;
        let back = body_of(h1.send_request(post(&payload)).await.unwrap()).await;
        assert!(back == payload, "HTTP/1 echo differs");

        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut h2, conn) = hyper::client::conn::http2::handshake(
            SafepointExecutor::new(),
            SafepointIo::new(stream),
        )
        .await
        .unwrap();
        safepoint::spawn(conn);
        let back = body_of(h2.send_request(post(&payload)).await.unwrap()).await;
        assert!(back == payload, "HTTP/2 echo differs");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    });
}

#[test]
fn graceful_shutdown_lets_the_request_in_flight_finish_and_refuses_new_ones() {
    run(async {
        let (addr, arrived, stop, server) = start(Duration::from_secs(10)).await;
        let mut send = http1_client(addr).await;
        let in_flight = safepoint::spawn(async move {
            let resp = send.send_request(get("/slow")).await.unwrap();
            (resp.status(), body_of(resp).await)
        });
        while arrived.load(Ordering::SeqCst) == 0 {
            safepoint::time::sleep(Duration::from_millis(1)).await;
        }
        stop.send(()).unwrap();
        // The listener closes at once: a new connection is refused while
        // the slow request is still being handled.
        let mut refused = false;
        for _ in 0..200 {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    refused = true;
                    break;
                }
                _ => safepoint::time::sleep(Duration::from_millis(1)).await,
            }
        }
        assert!(refused, "the listener still accepts after the signal");
        assert!(!in_flight.is_finished());
        let (status, body) = in_flight.await.unwrap();
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"slow but done"[..]));
        let report = server.await.unwrap().unwrap();
        assert_eq!((report.open, report.forced), (1, 0), "{report}");
        assert!(report.elapsed >= Duration::from_millis(100), "{report}");
    });
}

#[test]
fn a_connection_still_busy_at_the_deadline_is_closed_and_counted() {
    run(async {
        let (addr, arrived, stop, server) = start(Duration::from_millis(200)).await;
        let mut send = http1_client(addr).await;
        let stuck = safepoint::spawn(async move { send.send_request(get("/stuck")).await });
        while arrived.load(Ordering::SeqCst) == 0 {
            safepoint::time::sleep(Duration::from_millis(1)).await;
        }
        stop.send(()).unwrap();
        let report = server.await.unwrap().unwrap();
        assert_eq!((report.open, report.forced), (1, 1), "{report}");
        assert!(report.elapsed < Duration::from_secs(5), "{report}");
        // The client sees the connection close, not a hang.
        assert!(stuck.await.unwrap().is_err());
    });
}

#[test]
fn header_read_timeout_runs_on_the_safepoint_timer() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let svc = service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hi"))))
        });
        let mut server = serve(listener, svc);
        server
            .connection_builder()
            .http1()
            .header_read_timeout(Duration::from_millis(150));
        safepoint::spawn(std::future::IntoFuture::into_future(server));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        use futures::io::{AsyncReadExt, AsyncWriteExt};
        // Half a request head, then silence.
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
            "closed after {waited:?}"
        );
    });
}

#[test]
fn hyper_over_a_unix_stream_pair() {
    run(async {
        let (client, server) = UnixStream::pair().unwrap();
        let svc = service_fn(|req: Request<Incoming>| async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Full::new(body)))
        });
        safepoint::spawn(async move {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(SafepointIo::new(server), svc)
                .await
                .unwrap();
        });
        let (mut send, conn) = hyper::client::conn::http1::handshake(SafepointIo::new(client))
            .await
            .unwrap();
        safepoint::spawn(conn);
        let req = Request::post("/")
            .header("host", "unix")
            .body(Full::new(Bytes::from(vec![7u8; 200_000])))
            .unwrap();
        let body = body_of(send.send_request(req).await.unwrap()).await;
        assert_eq!(body.len(), 200_000);
        assert!(body.iter().all(|&b| b == 7));
    });
}

#[test]
fn dropping_the_server_closes_its_connections() {
    run(async {
        let (addr, arrived, _stop, server) = start(Duration::from_secs(60)).await;
        let mut send = http1_client(addr).await;
        let stuck = safepoint::spawn(async move { send.send_request(get("/stuck")).await });
        while arrived.load(Ordering::SeqCst) == 0 {
            safepoint::time::sleep(Duration::from_millis(1)).await;
        }
        server.abort(); // drops the serve future
        let started = std::time::Instant::now();
        assert!(
            stuck.await.unwrap().is_err(),
            "the connection outlived its server"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    });
}

#[test]
fn a_stop_that_times_out_names_the_busy_connection_task() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spinning = Arc::new(AtomicUsize::new(0));
        let flag = spinning.clone();
        let svc = service_fn(move |_req: Request<Incoming>| {
            let flag = flag.clone();
            async move {
                // CPU work in slices with `yield_now` between them (not a
                // safepoint): the world cannot stop while it goes on.
                flag.store(1, Ordering::SeqCst);
                let t = std::time::Instant::now();
                while t.elapsed() < Duration::from_millis(600) {
                    std::hint::spin_loop();
                    safepoint::task::yield_now().await;
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done"))))
            }
        });
        let server = serve(listener, svc).task_name("api-conn");
        safepoint::spawn(std::future::IntoFuture::into_future(server));
        let mut send = http1_client(addr).await;
        let req = safepoint::spawn(async move { send.send_request(get("/")).await });
        while spinning.load(Ordering::SeqCst) == 0 {
            safepoint::time::sleep(Duration::from_millis(1)).await;
        }
        let err = safepoint::Handle::current()
            .stop_the_world_timeout(Duration::from_millis(100))
            .await
            .expect_err("a handler is spinning: the stop cannot complete");
        assert!(
            err.laggards()
                .iter()
                .any(|l| l.name.as_deref() == Some("api-conn")),
            "{err}"
        );
        assert_eq!(req.await.unwrap().unwrap().status(), StatusCode::OK);
    });
}

#[test]
fn graceful_shutdown_lets_http2_streams_in_flight_finish() {
    run(async {
        let (addr, arrived, stop, server) = start(Duration::from_secs(10)).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http2::handshake(
            SafepointExecutor::new(),
            SafepointIo::new(stream),
        )
        .await
        .unwrap();
        let conn = safepoint::spawn(conn);
        let in_flight: Vec<_> = (0..4)
            .map(|_| {
                let mut send = send.clone();
                safepoint::spawn(async move {
                    let resp = send.send_request(get("/slow")).await.unwrap();
                    assert_eq!(resp.version(), Version::HTTP_2);
                    body_of(resp).await
                })
            })
            .collect();
        while arrived.load(Ordering::SeqCst) < 4 {
            safepoint::time::sleep(Duration::from_millis(1)).await;
        }
        stop.send(()).unwrap();
        for r in in_flight {
            assert_eq!(r.await.unwrap(), "slow but done");
        }
        let report = server.await.unwrap().unwrap();
        assert_eq!((report.open, report.forced), (1, 0), "{report}");
        // The server said GOAWAY and closed: the client connection ends.
        conn.await.unwrap().unwrap();
    });
}

/// Shutdown reaches every connection while they are busy: 4 workers (more
/// than this machine's cores), 120 keep-alive connections, of which 80 loop
/// on `GET /` through the signal, 30 are in `/slow` (they finish inside the
/// deadline) and 10 in `/stuck` (closed at it). Every connection must end,
/// every slow request must be answered, and the report must count exactly
/// the stuck ones as closed.
#[test]
fn shutdown_reaches_every_busy_connection_exactly_once() {
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    rt.block_on(async {
        safepoint::time::timeout(Duration::from_secs(60), async {
            let (addr, arrived, stop, server) = start(Duration::from_millis(1500)).await;
            let answered = Arc::new(AtomicUsize::new(0));
            let mut clients = Vec::new();
            for _ in 0..80 {
                let mut send = http1_client(addr).await;
                let answered = answered.clone();
                clients.push(safepoint::spawn(async move {
                    // Until the server ends keep-alive: then the connection
                    // closes and the next request fails.
                    while let Ok(resp) = send.send_request(get("/")).await {
                        assert_eq!(resp.status(), StatusCode::OK);
                        body_of(resp).await;
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    "looping"
                }));
            }
            for (n, path) in [(30, "/slow"), (10, "/stuck")] {
                for _ in 0..n {
                    let mut send = http1_client(addr).await;
                    clients.push(safepoint::spawn(async move {
                        match send.send_request(get(path)).await {
                            Ok(resp) => {
                                assert_eq!(&body_of(resp).await[..], b"slow but done");
                                "slow"
                            }
                            Err(_) => "closed",
                        }
                    }));
                }
            }
            while arrived.load(Ordering::SeqCst) < 40 || answered.load(Ordering::Relaxed) < 2_000 {
                safepoint::time::sleep(Duration::from_millis(1)).await;
            }
            stop.send(()).unwrap();
            let report = server.await.unwrap().unwrap();
            assert_eq!((report.open, report.forced), (120, 10), "{report}");
            // The deadline is 1.5 s; the stuck handlers sleep 20 s, so a
            // close that did not wake them would take that long.
            assert!(report.elapsed < Duration::from_secs(5), "{report}");
            let mut ends = std::collections::HashMap::new();
            for client in clients {
                *ends.entry(client.await.unwrap()).or_insert(0) += 1;
            }
            assert_eq!(ends.get("looping"), Some(&80));
            assert_eq!(ends.get("slow"), Some(&30));
            assert_eq!(ends.get("closed"), Some(&10));
        })
        .await
        .expect("the test hung");
    });
}
