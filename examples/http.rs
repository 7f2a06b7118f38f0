//! A minimal HTTP server on safepoint + hyper: `GET /` answers exactly
//! `Hello, World!`, over HTTP/1.1 or HTTP/2 (prior knowledge).
//!
//! ```text
//! cargo run --release --example http -- --port 3000 --workers 2
//! curl http://127.0.0.1:3000/
//! ```
//!
//! It prints `listening on ADDR` once it accepts connections, and on SIGTERM
//! or Ctrl-C shuts down gracefully (stops accepting, lets requests in flight
//! finish, gives connections 5 s) and exits 0. This is the server the
//! benchmark in `benches/http/compare.sh` drives with wrk.

use std::convert::Infallible;
use std::process::ExitCode;
use std::time::Duration;

use futures::future::{select, Either};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};

const USAGE: &str = "usage: http [--port PORT (default 3000)] [--host IP (default 127.0.0.1)] \
                     [--workers N (default: one per CPU)]";

struct Args {
    host: String,
    port: u16,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".to_owned(),
        port: 3000,
        workers: num_cpus::get(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{flag} {value:?}: expected {what}\n{USAGE}");
        match flag.as_str() {
            "--port" => args.port = value.parse().map_err(|_| bad("a port, 0-65535"))?,
            "--host" => args.host = value,
            "--workers" => match value.parse() {
                Ok(n) if n > 0 => args.workers = n,
                _ => return Err(bad("a number of worker threads, at least 1")),
            },
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

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

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> std::io::Result<()> {
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .thread_name("http-worker")
        .build()?;
    rt.block_on(async move {
        // Listening for the signals before announcing the port: a SIGTERM
        // sent right after `listening` is never missed.
        let term = safepoint::signal::terminate();
        let ctrl_c = safepoint::signal::ctrl_c();
        let listener = safepoint::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        println!(
            "http: listening on {} ({} workers)",
            listener.local_addr()?,
            args.workers
        );
        let shutdown = async {
            match select(Box::pin(term), Box::pin(ctrl_c)).await {
                Either::Left((r, _)) | Either::Right((r, _)) => {
                    if let Err(e) = r {
                        eprintln!("http: signal listener failed: {e}");
                    }
                }
            }
            println!("http: shutting down");
        };
        let report = safepoint_hyper::serve(listener, service_fn(hello))
            .with_graceful_shutdown(shutdown, Duration::from_secs(5))
            .await?;
        println!("http: {report}");
        Ok(())
    })
}
