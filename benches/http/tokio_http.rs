//! The tokio twin of `examples/http.rs`, for `benches/http/compare.sh`: the
//! same `Hello, World!` service on tokio + hyper-util (auto HTTP/1 + HTTP/2,
//! `TCP_NODELAY`, one task per connection), so wrk compares runtimes, not
//! servers.
//!
//! ```text
//! cargo run --release -p safepoint-benches --example http_tokio -- --port 3001 --workers 2
//! ```
//!
//! It prints `listening on ADDR` when ready and exits on SIGTERM.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == "/" {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(resp);
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(b"not found\n")));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    Ok(resp)
}

fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} needs a number")),
        None => default,
    }
}

fn main() -> std::io::Result<()> {
    let port = flag("--port", 3001);
    let workers = flag("--workers", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port as u16)).await?;
        println!("http_tokio: listening on {}", listener.local_addr()?);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                _ = term.recv() => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    })
}
