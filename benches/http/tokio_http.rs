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

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use safepoint_examples::hello::hello;
use safepoint_examples::server_args::{self, ServerArgs};

fn main() -> std::process::ExitCode {
    server_args::main_with("http_tokio", run)
}

fn run(args: ServerArgs) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        println!("http_tokio: listening on {}", listener.local_addr()?);
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
