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
//!
//! With `--stop-every MS` a background task stops the world every MS
//! milliseconds (held 100 µs each) while it serves, and the stop figures
//! (time to stop and pause histograms, what the slowest stop waited for)
//! are printed at exit. The handlers have no `safepoint().await`: hyper's
//! awaits on the socket are safepoints while a stop is pending.

use std::process::ExitCode;
use std::time::Duration;

use hyper::service::service_fn;
use safepoint_examples::hello::hello;
use safepoint_examples::server_args::{self, ServerArgs};

fn main() -> ExitCode {
    server_args::main_with("http", run)
}

fn run(args: ServerArgs) -> std::io::Result<()> {
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .thread_name("http-worker")
        .build()?;
    rt.block_on(async move {
        let shutdown = server_args::shutdown_signal("http");
        let listener = safepoint::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        println!(
            "http: listening on {} ({} workers)",
            listener.local_addr()?,
            args.workers
        );
        let stopper = args
            .stop_every
            .map(|every| safepoint::spawn(safepoint_examples::stopper::run(every)));
        // `hello` does not read the client's address, so the requests do
        // not carry it (three allocations per request saved); the axum
        // example shows a handler that does.
        let report = safepoint_hyper::serve(listener, service_fn(hello))
            .connection_info(false)
            .with_graceful_shutdown(shutdown, Duration::from_secs(5))
            .await?;
        println!("http: {report}");
        if let Some(stopper) = stopper {
            stopper.abort();
            println!(
                "http: {}",
                safepoint_examples::stopper::summary(&safepoint::Handle::current().metrics())
            );
        }
        Ok(())
    })
}
