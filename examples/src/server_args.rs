//! What the HTTP examples (`http`, `axum`) share around their servers: the
//! command line (`--host`, `--port`, `--workers`, with errors that name the
//! flag and exit status 2) and the shutdown signal (SIGTERM or Ctrl-C).

use std::future::Future;
use std::process::ExitCode;

use futures::future::{select, Either};

/// The parsed flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// Address to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind (default 3000; 0 picks a free one).
    pub port: u16,
    /// Worker threads (default: one per CPU).
    pub workers: usize,
    /// Stop the world on this period while serving (`--stop-every MS`,
    /// default off): see [`crate::stopper`].
    pub stop_every: Option<std::time::Duration>,
}

/// Parses `args` (without the program name). `Err` holds the message to
/// print (the usage line for `--help`); callers exit with status 2.
///
/// # Examples
///
/// ```
/// use safepoint_examples::server_args::parse;
///
/// let args = parse("http", ["--port", "8080", "--workers", "2"]).unwrap();
/// assert_eq!((args.port, args.workers), (8080, 2));
/// let err = parse("http", ["--workers", "0"]).unwrap_err();
/// assert!(err.contains("--workers"));
/// let args = parse("http", ["--stop-every", "100"]).unwrap();
/// assert_eq!(args.stop_every, Some(std::time::Duration::from_millis(100)));
/// ```
pub fn parse<I, S>(program: &str, args: I) -> Result<ServerArgs, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let usage = format!(
        "usage: {program} [--port PORT (default 3000)] [--host IP (default 127.0.0.1)] \
         [--workers N (default: one per CPU)] [--stop-every MS (stop the world every MS \
         milliseconds while serving; default off)]"
    );
    let mut parsed = ServerArgs {
        host: "127.0.0.1".to_owned(),
        port: 3000,
        workers: num_cpus::get(),
        stop_every: None,
    };
    let mut it = args.into_iter().map(Into::into);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(usage);
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{usage}"))?;
        let bad = |what: &str| format!("{flag} {value:?}: expected {what}\n{usage}");
        match flag.as_str() {
            "--port" => parsed.port = value.parse().map_err(|_| bad("a port, 0-65535"))?,
            "--host" => parsed.host = value,
            "--workers" => match value.parse() {
                Ok(n) if n > 0 => parsed.workers = n,
                _ => return Err(bad("a number of worker threads, at least 1")),
            },
            "--stop-every" => match value.parse::<u64>() {
                Ok(0) => parsed.stop_every = None,
                Ok(ms) => parsed.stop_every = Some(std::time::Duration::from_millis(ms)),
                Err(_) => return Err(bad("milliseconds between stops (0: none)")),
            },
            _ => return Err(format!("unknown flag {flag}\n{usage}")),
        }
    }
    Ok(parsed)
}

/// Parses the command line and runs `server` with it: exit status 2 with
/// the message for bad flags, 1 with the error if `server` fails, else 0.
pub fn main_with(
    program: &str,
    server: impl FnOnce(ServerArgs) -> std::io::Result<()>,
) -> ExitCode {
    let args = match parse(program, std::env::args().skip(1)) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match server(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGTERM or Ctrl-C, printing `PROGRAM: shutting down`. The
/// signal handlers are installed by this call, not at the first poll: call
/// it before announcing the port, and a signal sent right after the
/// announcement is never missed. Panics outside a runtime.
pub fn shutdown_signal(program: &str) -> impl Future<Output = ()> + Send + 'static {
    let term = safepoint::signal::terminate();
    let ctrl_c = safepoint::signal::ctrl_c();
    let program = program.to_owned();
    async move {
        if let Either::Left((Err(e), _)) | Either::Right((Err(e), _)) =
            select(Box::pin(term), Box::pin(ctrl_c)).await
        {
            eprintln!("{program}: signal listener failed: {e}");
        }
        println!("{program}: shutting down");
    }
}
