//! The network side: the accept loop, one task per connection, and the graceful
//! shutdown.
//!
//! A connection reads what the socket has, applies every complete command in
//! its buffer (pipelining), calling `safepoint().await` after each one so a stop
//! finds it between commands, then writes all the replies in one write. A
//! protocol error is answered and closes that connection only.
//!
//! Shutdown (a signal, or the end of the demo) stops the accept loop; each
//! connection finishes the commands it has read, sends their replies and closes
//! instead of reading more. When every connection is gone (or after a grace
//! period) the caller takes the final checkpoint.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, BoxFuture, Either, FutureExt, Shared};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use parking_lot::Mutex;
use safepoint::net::{TcpListener, TcpStream};

use crate::kv::checkpoint::Checkpointer;
use crate::kv::commands::{self, Action, Context, ServerFacts};
use crate::kv::resp::{parse_command, Parse, Reply};
use crate::kv::stats::CheckpointStats;
use crate::kv::store::Store;

/// How long connections get to finish their commands at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every connection shares.
pub struct ServerState {
    /// The key space.
    pub store: Arc<Store>,
    /// Checkpoint figures.
    pub stats: Arc<CheckpointStats>,
    /// Facts for INFO.
    pub facts: ServerFacts,
    /// Where SAVE asks for a checkpoint.
    pub checkpointer: Checkpointer,
}

/// Resolves once shutdown has begun. Cheap to clone.
pub type ShutdownSignal = Shared<BoxFuture<'static, ()>>;

/// Starts shutdown when fired (by whichever clone fires first). Dropping every
/// clone without firing also starts it.
#[derive(Clone)]
pub struct ShutdownTrigger(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl ShutdownTrigger {
    /// Begins shutdown; later calls do nothing.
    pub fn fire(&self) {
        if let Some(tx) = self.0.lock().take() {
            let _ = tx.send(());
        }
    }
}

/// A trigger and the signal it fires.
pub fn shutdown_pair() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = oneshot::channel::<()>();
    let trigger = ShutdownTrigger(Arc::new(Mutex::new(Some(tx))));
    (trigger, rx.map(|_| ()).boxed().shared())
}

/// Accepts connections until `shutdown`, then waits for the open ones to
/// finish (at most [`SHUTDOWN_GRACE`]). Returns false if some were still open.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<ServerState>,
    shutdown: ShutdownSignal,
) -> bool {
    // Each connection holds a clone of `alive`; `gone` ends when all are dropped.
    let (alive, mut gone) = mpsc::channel::<()>(0);
    accept_until_shutdown(listener, &shared, &shutdown, alive).await;
    let all_closed = gone.next();
    match future::select(all_closed, pin!(safepoint::time::sleep(SHUTDOWN_GRACE))).await {
        Either::Left(_) => true,
        Either::Right(_) => {
            eprintln!("shutdown: connections still busy after {SHUTDOWN_GRACE:?}; closing anyway");
            false
        }
    }
}

/// The accept loop; the listener is closed when it returns.
async fn accept_until_shutdown(
    listener: TcpListener,
    shared: &Arc<ServerState>,
    shutdown: &ShutdownSignal,
    alive: mpsc::Sender<()>,
) {
    loop {
        // Shutdown is polled first so a stream of new connections cannot delay it.
        let accept = pin!(listener.accept());
        match future::select(shutdown.clone(), accept).await {
            Either::Right((Ok((stream, _peer)), _)) => {
                // Replies go out in one write per batch; Nagle would only delay them.
                // Failing to set it costs latency, not correctness.
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                let alive = alive.clone();
                safepoint::spawn(async move {
                    if let Err(e) = connection(stream, &shared, shutdown).await {
                        if !is_disconnect(&e) {
                            eprintln!("connection error: {e}");
                        }
                    }
                    drop(alive);
                });
            }
            Either::Right((Err(e), _)) => {
                // Out of file descriptors and the like: report, breathe, go on.
                eprintln!("accept failed: {e}");
                safepoint::time::sleep(Duration::from_millis(50)).await;
            }
            Either::Left(((), _)) => return,
        }
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

async fn connection(
    mut stream: TcpStream,
    shared: &ServerState,
    shutdown: ShutdownSignal,
) -> io::Result<()> {
    let mut input: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut output: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Shutdown is polled first: a client that keeps sending must not keep
        // the server up. Commands already read have been applied and answered.
        let n = match future::select(shutdown.clone(), stream.read(&mut chunk)).await {
            Either::Left(((), _)) => return Ok(()),
            Either::Right((read, _)) => read?,
        };
        if n == 0 {
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        let mut close = false;
        while !close {
            match parse_command(&input[used..]) {
                Parse::Complete(args, len) => {
                    used += len;
                    if args.is_empty() {
                        continue;
                    }
                    close = apply(shared, &args, &mut output).await;
                    // Between commands: the only place a stop may catch us.
                    safepoint::safepoint().await;
                }
                Parse::Incomplete => break,
                Parse::Error(message) => {
                    Reply::Error(message).encode(&mut output);
                    close = true;
                }
            }
        }
        input.drain(..used);
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
        if close {
            stream.close().await?;
            return Ok(());
        }
    }
}

/// Applies one command, appending its reply; true if the connection must close.
async fn apply(shared: &ServerState, args: &[Vec<u8>], output: &mut Vec<u8>) -> bool {
    let ctx = Context {
        store: &shared.store,
        checkpoints: &shared.stats,
        server: &shared.facts,
    };
    match commands::execute(&ctx, args) {
        Action::Reply(reply) => reply.encode(output),
        Action::Save => match shared.checkpointer.save().await {
            Ok(_) => Reply::ok().encode(output),
            Err(e) => Reply::err(format!("checkpoint failed: {e}")).encode(output),
        },
        Action::Quit => {
            Reply::ok().encode(output);
            return true;
        }
    }
    false
}

/// Binds the listener and prints `listening on ADDR`.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}
