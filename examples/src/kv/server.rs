//! The network side: the accept loop, one task per connection, and the graceful
//! shutdown.
//!
//! A connection reads what the socket has and feeds it to its incremental
//! parser ([`RequestParser`]), which keeps a partial request between reads.
//! Each complete command is applied, then `safepoint().await` is called, so a
//! stop finds the connection between commands (a pipelined batch is not
//! finished first). A connection in the middle of a large request needs no
//! safepoint of its own: while a stop is pending its next read parks it
//! (the runtime's protocol point 10), and its partial request touches
//! nothing shared, so a client streaming a huge request never holds a stop.
//! A protocol error is answered and closes that connection only.
//!
//! Why the replies are shaped so: replies are gathered in one buffer and
//! written in one write per read (pipelining), but once the buffer passes
//! [`FLUSH_AT`] it is written before the next command runs, so pipelined GETs
//! of a large value hold one reply at a time rather than all of them. A
//! buffer that grew past [`KEEP_CAPACITY`] for one large reply is given back.
//! `--client-output-buffer-limit` closes a client whose pending replies pass
//! it. Clients past `--maxclients` get `-ERR max number of clients reached`
//! and are closed at once (see [`crate::kv::limits`]).
//!
//! The listener is opened with a backlog of 511, as Redis's `tcp-backlog`
//! (the kernel caps it at `net.core.somaxconn`), and the accept loop takes
//! every pending connection before it waits again.
//!
//! Shutdown (a signal, or the end of the demo) stops the accept loop; each
//! connection finishes the commands it has read, sends their replies and closes
//! instead of reading more. When every connection is gone (or after a grace
//! period) the caller takes the final checkpoint.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, BoxFuture, Either, FutureExt, Shared};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::StreamExt;
use parking_lot::Mutex;
use safepoint::net::{TcpListener, TcpStream};

use crate::kv::checkpoint::Checkpointer;
use crate::kv::commands::{self, Action, ClientCounts, Context, ServerFacts};
use crate::kv::ratelog::RateLimited;
use crate::kv::request::{RequestParser, Step};
use crate::kv::resp::Reply;
use crate::kv::stats::CheckpointStats;
use crate::kv::store::Store;

/// How long connections get to finish their commands at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pending replies past this size are written before the next command runs.
pub const FLUSH_AT: usize = 64 * 1024;
/// A reply buffer that grew past this is given back after it is written.
pub const KEEP_CAPACITY: usize = 1024 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// The listen backlog asked for (Redis's `tcp-backlog`).
pub const BACKLOG: i32 = 511;
/// What a client past `--maxclients` is told.
pub const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// Per-client limits, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Most clients connected at once.
    pub max_clients: usize,
    /// Largest request accepted, in bytes.
    pub max_request: usize,
    /// Pending reply bytes past which a client is closed; 0: no limit.
    pub output_limit: usize,
}

/// Connected clients, and those refused, shared by the accept loop and INFO.
#[derive(Debug, Default)]
pub struct ClientCounter {
    connected: AtomicUsize,
    rejected: AtomicU64,
}

impl ClientCounter {
    /// Clients connected now, and refused since start.
    pub fn counts(&self) -> (usize, u64) {
        (
            self.connected.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }
}

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
    /// Per-client limits.
    pub limits: ClientLimits,
    /// Refuse writes while the last checkpoint failed.
    pub stop_writes_on_checkpoint_error: bool,
    /// Connected and refused clients.
    pub clients: ClientCounter,
    /// Refused clients, failed accepts and closed clients, logged at most once a second each.
    pub logs: ServerLogs,
}

/// The server's rate-limited log lines.
pub struct ServerLogs {
    refused: RateLimited,
    accept_failed: RateLimited,
    output_limit: RateLimited,
}

impl Default for ServerLogs {
    fn default() -> ServerLogs {
        let second = Duration::from_secs(1);
        ServerLogs {
            refused: RateLimited::new(second),
            accept_failed: RateLimited::new(second),
            output_limit: RateLimited::new(second),
        }
    }
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
        // Shutdown is polled first so a stream of new connections cannot
        // delay it. `accept` tries the syscall before it waits, so this loop
        // takes every pending connection before it sleeps again.
        let accept = pin!(listener.accept());
        match future::select(shutdown.clone(), accept).await {
            Either::Right((Ok((stream, peer)), _)) => {
                let connected = shared.clients.connected.fetch_add(1, Ordering::AcqRel);
                if connected >= shared.limits.max_clients {
                    shared.clients.connected.fetch_sub(1, Ordering::AcqRel);
                    shared.clients.rejected.fetch_add(1, Ordering::Relaxed);
                    refuse(stream).await;
                    let max = shared.limits.max_clients;
                    shared.logs.refused.warn(|| {
                        format!("refused client {peer}: max number of clients reached ({max})")
                    });
                    continue;
                }
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
                    shared.clients.connected.fetch_sub(1, Ordering::AcqRel);
                    drop(alive);
                });
            }
            Either::Right((Err(e), _)) => {
                // Out of file descriptors and the like: report, breathe, go on.
                shared
                    .logs
                    .accept_failed
                    .warn(|| format!("accept failed: {e}"));
                safepoint::time::sleep(Duration::from_millis(50)).await;
            }
            Either::Left(((), _)) => return,
        }
    }
}

/// Tells a client past the cap why it is closed. The reply is far smaller
/// than a fresh socket's send buffer, so the write completes as soon as the
/// reactor reports the socket writable (one turn); the accept loop waits for
/// that, at most [`REFUSE_WAIT`], rather than spawning a task, so a flood of
/// extra clients never holds more than one extra descriptor. What the client
/// already sent is read first: closing a socket with unread input resets the
/// connection, and the client may lose the error line.
async fn refuse(mut stream: TcpStream) {
    let _ = safepoint::time::timeout(REFUSE_WAIT, stream.write_all(MAX_CLIENTS_REPLY)).await;
    let _ = stream.read(&mut [0u8; 512]).now_or_never();
}

/// How long the accept loop waits to tell an extra client it is refused.
const REFUSE_WAIT: Duration = Duration::from_millis(20);

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
    let mut parser = RequestParser::new(shared.limits.max_request);
    let mut output: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; READ_CHUNK];
    // With `appendfsync always`: the log's end after this connection's last
    // write; its replies go out once the log is fsynced that far.
    let mut unsynced = Unsynced::default();
    let mut shutdown = shutdown;
    loop {
        // Shutdown is checked before every read, so a client that keeps
        // sending cannot keep the server up (the accept loop's clone
        // completes the shared future when it fires; `peek` is then an
        // atomic load). The read is polled before the signal, and this one
        // clone is kept: polling or dropping a `Shared` takes its waker
        // list's lock, once per request instead of three or four times
        // with a fresh clone per read. Commands already read have been
        // applied and answered.
        if shutdown.peek().is_some() {
            return Ok(());
        }
        let n = match future::select(stream.read(&mut chunk), &mut shutdown).await {
            Either::Left((read, _)) => read?,
            Either::Right(((), _)) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        let mut pos = 0;
        let mut close = false;
        while pos < n && !close {
            match parser.parse(&chunk[pos..n]) {
                Step::NeedMore => break,
                Step::Command(mut args, used) => {
                    pos += used;
                    if args.is_empty() {
                        continue;
                    }
                    let large = args.iter().map(Vec::len).sum::<usize>() > KEEP_CAPACITY;
                    close = apply(shared, &mut args, &mut output).await;
                    unsynced.note(&shared.store, &args[0]);
                    drop(args);
                    if large {
                        give_back_freed_memory();
                    }
                    let limit = shared.limits.output_limit;
                    if limit > 0 && output.len() > limit {
                        let peer = stream.peer_addr();
                        shared.logs.output_limit.warn(|| {
                            format!(
                                "closing client {peer:?}: {} bytes of replies pending, over the \
                                 client output buffer limit ({limit} bytes)",
                                output.len()
                            )
                        });
                        return Ok(());
                    }
                    if output.len() >= FLUSH_AT {
                        unsynced.wait(&shared.store).await;
                        flush(&mut stream, &mut output).await?;
                    }
                    // Between commands: a stop sees whole commands only.
                    safepoint::safepoint().await;
                }
                Step::Error(message) => {
                    Reply::err(message).encode(&mut output);
                    close = true;
                }
            }
        }
        unsynced.wait(&shared.store).await;
        flush(&mut stream, &mut output).await?;
        if close {
            stream.close().await?;
            return Ok(());
        }
        // No safepoint needed here for a client streaming a large request
        // in reads that never wait: while a stop is pending, the next read
        // parks this task (protocol point 10), and mid-request nothing
        // shared is half-changed.
    }
}

/// The log position a connection's replies wait for (`appendfsync always`).
#[derive(Default)]
struct Unsynced(Option<u64>);

impl Unsynced {
    /// After a command: a write's reply must wait for the log's end now.
    fn note(&mut self, store: &Store, name: &[u8]) {
        if let Some(log) = store.log().filter(|log| log.replies_wait()) {
            if commands::is_write(name) {
                self.0 = Some(log.end());
            }
        }
    }

    /// Before replies go out: waits until the log is fsynced past this
    /// connection's writes (one fsync shared by every connection waiting).
    async fn wait(&mut self, store: &Store) {
        if let (Some(lsn), Some(log)) = (self.0.take(), store.log()) {
            log.durable(lsn).await;
        }
    }
}

/// Asks the allocator to return what this thread freed to the system now.
///
/// Called after a request over [`KEEP_CAPACITY`]: its arguments (and the
/// value a large SET replaced) are freed, but mimalloc keeps freed pages
/// cached until the thread that owns them allocates again, so an idle
/// server that took eight 32 MB SETs stayed at 160-270 MB resident instead
/// of returning to one value's worth (50 MB with this call). Forced, the
/// collection purges at once rather than after mimalloc's purge delay,
/// which only runs when the thread next allocates. It costs far less than
/// the request that prompted it. With another global allocator, mimalloc's
/// own (unused) heap is all it touches.
fn give_back_freed_memory() {
    // SAFETY: mi_collect takes no pointers and may be called from any
    // thread at any time; it only walks mimalloc's own structures.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Writes the pending replies and gives back a buffer that one large reply grew.
async fn flush(stream: &mut TcpStream, output: &mut Vec<u8>) -> io::Result<()> {
    if !output.is_empty() {
        stream.write_all(output).await?;
        output.clear();
    }
    if output.capacity() > KEEP_CAPACITY {
        *output = Vec::with_capacity(16 * 1024);
    }
    Ok(())
}

/// Applies one command, appending its reply; true if the connection must close.
async fn apply(shared: &ServerState, args: &mut [Vec<u8>], output: &mut Vec<u8>) -> bool {
    let (connected, rejected) = shared.clients.counts();
    let ctx = Context {
        store: &shared.store,
        checkpoints: &shared.stats,
        server: &shared.facts,
        refuse_writes: (shared.stop_writes_on_checkpoint_error && shared.stats.last_failed())
            || shared.store.log().is_some_and(|log| log.failed()),
        clients: ClientCounts {
            connected,
            rejected,
            max: shared.limits.max_clients,
        },
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

/// Binds the listener (backlog [`BACKLOG`]) and prints `listening on ADDR`.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = listen(addr)
        .and_then(TcpListener::from_std)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// A non-blocking listening socket on `addr` with a backlog of [`BACKLOG`]
/// (std's `bind` asks for 128). Warns when `net.core.somaxconn` caps it lower.
pub fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and Redis do: a restarted server can bind while old connections
    // sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    if let Some(max) = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|&max| max < BACKLOG)
    {
        eprintln!(
            "warning: the listen backlog of {BACKLOG} is capped at {max} by \
             /proc/sys/net/core/somaxconn"
        );
    }
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// With a backlog of 128 (std's), connections past the 129th to a
    /// listener that is not accepting wait for SYN retransmits (a second or
    /// more); with 511 they all complete at once.
    #[test]
    fn backlog_holds_more_than_std_default() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(128);
        let want = 300.min(somaxconn.saturating_sub(1));
        assert!(
            want > 129,
            "net.core.somaxconn ({somaxconn}) is too low to tell 511 from 128"
        );
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..want)
            .map(|i| {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                    .unwrap_or_else(|e| panic!("connection {i} of {want} waited: {e}"))
            })
            .collect();
        assert_eq!(clients.len(), want);
    }
}
