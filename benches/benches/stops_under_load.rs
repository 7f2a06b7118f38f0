//! Stops under load (issue 12): how long a stop of the world takes while a
//! 2-worker runtime serves loopback TCP connections whose tasks never call
//! `safepoint()`, and what the stops cost the load's throughput.
//!
//! Plain `main` (no criterion): one run prints a table per scenario and one
//! `summary` line each (`key=value`, for `benches/stops/medians.sh`).
//!
//! * **A, request/response**: `SP_STOPS_CONNS` (64) connections, each with
//!   exactly one 64-byte request in flight at all times; the server task
//!   reads it, busy-works `SP_STOPS_WORK_NS` (2 000 ns), writes 64 bytes
//!   back. `SP_STOPS_A` (200) stops.
//! * **B, streaming**: one client writes 64 KB buffers in a loop to a
//!   server task that only reads (and counts bytes), so its socket always
//!   has data; plus `SP_STOPS_IDLE` (16) idle connections whose tasks wait
//!   in a read. `SP_STOPS_B` (50) stops. For the socket to stay non-empty
//!   the reader must be clearly the slower side: a reader with a 64 KB
//!   buffer outruns the writer on loopback (the writer's `send` also runs
//!   the receive path), and on this shared 2-core machine even 1 KB reads
//!   found the socket empty a few times a second (the writer thread
//!   descheduled), which let most stops complete. So it reads
//!   `SP_STOPS_READ_BUF` (256) bytes per call: the syscall per 256 bytes
//!   stands in for a parser's work per byte (~250-600 MB/s here), and the
//!   socket rarely runs dry (loopback TCP still stalls now and then on the
//!   loaded machine: see `benches/stops/README.md`). Both ends' socket
//!   buffers are set to
//!   `SP_STOPS_SOCK_BUF` (4 MiB, this machine's `rmem_max`; 0 leaves them
//!   autotuned), so the kernel holds a backlog of megabytes across the
//!   writer's scheduling gaps. The reader counts its reads that returned
//!   `Pending` and the share of the time they waited, per window: in the
//!   windows without stops each is a socket found empty (`pending_quiet`,
//!   `waited_pct_quiet`), a moment a stop could have completed with no
//!   help from the runtime; in the stops windows (`pending_stops`,
//!   `waited_pct_stops`) they also include, once the runtime implements
//!   protocol point 10, the reader parked at its read by each stop.
//!
//! The clients are plain std blocking sockets on `SP_STOPS_CLIENT_THREADS`
//! (2) OS threads, outside the runtime under test. Each thread owns a share
//! of the connections, writes one request on each, then cycles over them:
//! read the response, write the next request at once. So every connection
//! is driven at full speed (one request always in flight) by two threads
//! that sleep in `read` whenever the server is behind, instead of 64
//! threads that would spend the cores on context switches, or a second
//! runtime whose own workers and reactor would compete with the server's
//! two for the same cores (this machine has two).
//!
//! The stopper is this process's main thread, outside the runtime: each
//! stop is `Handle::stop_the_world_blocking_timeout(SP_STOPS_TIMEOUT_MS)`
//! (2 000), held `SP_STOPS_HOLD_US` (100) by spinning, then released, then
//! `SP_STOPS_GAP_US` (5 000) of sleep before the next request. Per stop it
//! records `StopReport::time_to_stop` (request to stopped, as the runtime
//! measures it) and its own wall time (call to return, which adds the
//! requester's wake; a timed-out stop counts its full wait here). The
//! first timeout's report (its laggards) is printed. After
//! `SP_STOPS_MAX_TIMEOUTS` (3) timeouts a scenario attempts no more stops,
//! so the defaults finish in well under a minute even where every stop
//! times out.
//!
//! Throughput is measured over the same wall windows with and without
//! stops, alternating, in `SP_STOPS_ROUNDS` (10) rounds: each round runs the
//! stops window (its share of the stops) and a window without stops of the
//! same wall length, in the order stops-first on even rounds and
//! quiet-first on odd ones (a quiet-first window takes the length of the
//! previous stops window). The figure is the server-side count (requests
//! answered, or bytes read) over each window's measured wall time; the
//! ratio is with-stops / without, over all rounds. Before any of it the
//! load runs `SP_STOPS_WARMUP_MS` (500) and takes 5 unrecorded stops.
//!
//! Other knobs: `SP_STOPS_WORKERS` (2), `SP_STOPS_SCENARIOS` (`AB`).
//!
//! ```sh
//! cargo bench -p safepoint-benches --bench stops_under_load
//! ```

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use safepoint::net::{TcpListener, TcpStream};
use safepoint_benches::{env_usize, selected, spin_for, us, Percentiles};
use socket2::SockRef;

/// Request and response size in scenario A.
const MSG: usize = 64;
/// Write (and read buffer) size in scenario B.
const CHUNK: usize = 64 * 1024;
/// Warm-up stops, and their (short) timeout: they only warm the paths.
const WARMUP_STOPS: usize = 5;
const WARMUP_TIMEOUT: Duration = Duration::from_millis(200);

struct Config {
    workers: usize,
    conns: usize,
    idle: usize,
    read_buf: usize,
    sock_buf: usize,
    client_threads: usize,
    work: Duration,
    stops_a: usize,
    stops_b: usize,
    hold: Duration,
    gap: Duration,
    timeout: Duration,
    max_timeouts: usize,
    rounds: usize,
    warmup: Duration,
    scenarios: String,
}

impl Config {
    fn from_env() -> Config {
        let dur_us = |name, default| Duration::from_micros(env_usize(name, default) as u64);
        let dur_ms = |name, default| Duration::from_millis(env_usize(name, default) as u64);
        Config {
            workers: env_usize("SP_STOPS_WORKERS", 2),
            conns: env_usize("SP_STOPS_CONNS", 64),
            idle: env_usize("SP_STOPS_IDLE", 16),
            read_buf: env_usize("SP_STOPS_READ_BUF", 256).max(1),
            sock_buf: env_usize("SP_STOPS_SOCK_BUF", 4 << 20),
            client_threads: env_usize("SP_STOPS_CLIENT_THREADS", 2).max(1),
            work: Duration::from_nanos(env_usize("SP_STOPS_WORK_NS", 2_000) as u64),
            stops_a: env_usize("SP_STOPS_A", 200),
            stops_b: env_usize("SP_STOPS_B", 50),
            hold: dur_us("SP_STOPS_HOLD_US", 100),
            gap: dur_us("SP_STOPS_GAP_US", 5_000),
            timeout: dur_ms("SP_STOPS_TIMEOUT_MS", 2_000),
            max_timeouts: env_usize("SP_STOPS_MAX_TIMEOUTS", 3).max(1),
            rounds: env_usize("SP_STOPS_ROUNDS", 10).max(1),
            warmup: dur_ms("SP_STOPS_WARMUP_MS", 500),
            scenarios: std::env::var("SP_STOPS_SCENARIOS").unwrap_or_else(|_| "AB".into()),
        }
    }
}

/// A running load: the server's progress counter and the client threads.
struct Load {
    /// Requests answered (A) or bytes read (B), counted by the server tasks.
    done: Arc<AtomicU64>,
    quit: Arc<AtomicBool>,
    /// B's reads that waited (nothing in A).
    reads: Arc<ReadWaits>,
    clients: Vec<JoinHandle<()>>,
    /// Held open without traffic (B's idle connections).
    _idle: Vec<StdStream>,
}

impl Load {
    fn count(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the clients; their sockets close, so the server tasks see EOF
    /// and finish.
    fn finish(self) {
        self.quit.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.join().expect("a client thread panicked");
        }
    }
}

/// Binds a listener in `rt` whose accept loop spawns `serve(stream)` as a
/// task named `name` per connection; returns its address and the count of
/// accepted connections.
fn listen<F, Fut>(
    rt: &safepoint::Runtime,
    name: &'static str,
    serve: F,
) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    safepoint::task::Builder::new()
        .name("accept")
        .spawn_on(
            async move {
                while let Ok((s, _)) = listener.accept().await {
                    s.set_nodelay(true).unwrap();
                    safepoint::task::Builder::new()
                        .name(name)
                        .spawn(serve(s))
                        .unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            },
            rt.handle(),
        )
        .unwrap();
    (addr, accepted)
}

/// Opens `n` client connections and waits until the server has accepted
/// (and spawned a task for) `expect` in all.
fn connect(addr: SocketAddr, n: usize, accepted: &AtomicUsize, expect: usize) -> Vec<StdStream> {
    let conns: Vec<StdStream> = (0..n)
        .map(|_| {
            let s = StdStream::connect(addr).expect("connect to the bench server");
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::Relaxed) < expect {
        assert!(Instant::now() < deadline, "the server did not accept");
        std::thread::sleep(Duration::from_millis(1));
    }
    conns
}

/// Scenario A: request/response connections, every one always busy.
fn start_a(rt: &safepoint::Runtime, cfg: &Config) -> Load {
    let done = Arc::new(AtomicU64::new(0));
    let (d, work) = (done.clone(), cfg.work);
    let (addr, accepted) = listen(rt, "A conn", move |mut s| {
        let d = d.clone();
        async move {
            let mut buf = [0u8; MSG];
            while s.read_exact(&mut buf).await.is_ok() {
                spin_for(work);
                if s.write_all(&buf).await.is_err() {
                    return;
                }
                d.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let mut conns = connect(addr, cfg.conns, &accepted, cfg.conns);
    let quit = Arc::new(AtomicBool::new(false));
    let per_thread = cfg.conns.div_ceil(cfg.client_threads);
    let mut clients = Vec::new();
    while !conns.is_empty() {
        let mut mine: Vec<StdStream> = conns.drain(..per_thread.min(conns.len())).collect();
        let quit = quit.clone();
        clients.push(std::thread::spawn(move || {
            let mut buf = [7u8; MSG];
            for c in &mut mine {
                c.write_all(&buf).expect("first request");
            }
            // One request in flight per connection: each response read is
            // answered by the next request at once.
            while !quit.load(Ordering::Relaxed) {
                for c in &mut mine {
                    if c.read_exact(&mut buf).is_err() || c.write_all(&buf).is_err() {
                        return;
                    }
                }
            }
        }));
    }
    Load {
        done,
        quit,
        reads: Arc::default(),
        clients,
        _idle: Vec::new(),
    }
}

/// How B's reads waited: the socket was empty or (protocol point 10) a stop
/// parked the read. Without stops, B is "the socket always has data" only
/// while both stay near zero.
#[derive(Default)]
struct ReadWaits {
    /// Reads that returned `Pending` at least once.
    pending: AtomicU64,
    /// Their time from the first `Pending` to completion, in ns (added when
    /// the read completes).
    waited_ns: AtomicU64,
}

/// `s.read(buf)`, recording in `waits` whether and how long it waited.
async fn counted_read(s: &mut TcpStream, buf: &mut [u8], waits: &ReadWaits) -> io::Result<usize> {
    let mut since: Option<Instant> = None;
    std::future::poll_fn(|cx| {
        let r = Pin::new(&mut *s).poll_read(cx, buf);
        match (r.is_pending(), since) {
            (true, None) => {
                waits.pending.fetch_add(1, Ordering::Relaxed);
                since = Some(Instant::now());
            }
            (false, Some(t)) => {
                let ns = t.elapsed().as_nanos() as u64;
                waits.waited_ns.fetch_add(ns, Ordering::Relaxed);
            }
            _ => {}
        }
        r
    })
    .await
}

/// Scenario B: one streaming connection to a reader, plus idle ones.
fn start_b(rt: &safepoint::Runtime, cfg: &Config) -> Load {
    let done = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(ReadWaits::default());
    let (d, read_buf, sock_buf) = (done.clone(), cfg.read_buf, cfg.sock_buf);
    // The same task for the streamed and the idle connections: read and
    // count until EOF.
    let rw = reads.clone();
    let (addr, accepted) = listen(rt, "B reader", move |mut s| {
        let (d, w) = (d.clone(), rw.clone());
        if sock_buf > 0 {
            SockRef::from(&s).set_recv_buffer_size(sock_buf).unwrap();
        }
        async move {
            let mut buf = vec![0u8; read_buf];
            while let Ok(n @ 1..) = counted_read(&mut s, &mut buf, &w).await {
                d.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    });
    let idle = connect(addr, cfg.idle, &accepted, cfg.idle);
    let mut stream = connect(addr, 1, &accepted, cfg.idle + 1).remove(0);
    if cfg.sock_buf > 0 {
        SockRef::from(&stream)
            .set_send_buffer_size(cfg.sock_buf)
            .unwrap();
    }
    let quit = Arc::new(AtomicBool::new(false));
    let q = quit.clone();
    let client = std::thread::spawn(move || {
        let buf = vec![7u8; CHUNK];
        while !q.load(Ordering::Relaxed) {
            if stream.write_all(&buf).is_err() {
                return;
            }
        }
    });
    Load {
        done,
        quit,
        reads,
        clients: vec![client],
        _idle: idle,
    }
}

/// What the stops of one scenario looked like.
#[derive(Default)]
struct Stops {
    /// `StopReport::time_to_stop` of each completed stop.
    ttsp: Vec<Duration>,
    /// The requester's call-to-return time of each attempt (timeouts
    /// included, at their full wait).
    wall: Vec<Duration>,
    timeouts: usize,
    first_timeout: Option<safepoint::StopTimedOut>,
}

impl Stops {
    /// One stop from this thread: request, hold, release, then the gap.
    fn one(&mut self, handle: &safepoint::Handle, cfg: &Config) {
        let t = Instant::now();
        match handle.stop_the_world_blocking_timeout(cfg.timeout) {
            Ok(world) => {
                self.wall.push(t.elapsed());
                self.ttsp.push(world.report().time_to_stop);
                spin_for(cfg.hold);
                world.resume();
            }
            Err(e) => {
                self.wall.push(t.elapsed());
                self.timeouts += 1;
                self.first_timeout.get_or_insert(e);
            }
        }
        std::thread::sleep(cfg.gap);
    }

    fn gave_up(&self, cfg: &Config) -> bool {
        self.timeouts >= cfg.max_timeouts
    }
}

/// One measured window: its progress count and wall length.
#[derive(Clone, Copy, Default)]
struct Window {
    count: u64,
    /// Reads that returned `Pending`, and how long those waited.
    pending: u64,
    waited: Duration,
    wall: Duration,
}

impl Window {
    fn measure(load: &Load, body: impl FnOnce()) -> Window {
        let waits = || {
            let r = &load.reads;
            let ns = r.waited_ns.load(Ordering::Relaxed);
            (r.pending.load(Ordering::Relaxed), ns)
        };
        let (c0, (p0, w0), t0) = (load.count(), waits(), Instant::now());
        body();
        let (p1, w1) = waits();
        Window {
            count: load.count() - c0,
            pending: p1 - p0,
            waited: Duration::from_nanos(w1 - w0),
            wall: t0.elapsed(),
        }
    }

    fn add(&mut self, w: Window) {
        self.count += w.count;
        self.pending += w.pending;
        self.waited += w.waited;
        self.wall += w.wall;
    }

    /// The share of the window the reads spent waiting.
    fn waited_share(&self) -> f64 {
        self.waited.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

struct Outcome {
    attempted: usize,
    stops: Stops,
    with: Window,
    without: Window,
    /// Per round: the with-stops and the quiet window.
    rounds: Vec<(Window, Window)>,
}

/// Warms up, then runs the alternating windows.
fn run(rt: &safepoint::Runtime, cfg: &Config, load: &Load, stops: usize) -> Outcome {
    let handle = rt.handle();
    std::thread::sleep(cfg.warmup);
    let warm_timeouts = (0..WARMUP_STOPS)
        .filter(|_| {
            // Released at once (the world is dropped inside the statement).
            let timed_out = handle
                .stop_the_world_blocking_timeout(WARMUP_TIMEOUT)
                .is_err();
            std::thread::sleep(cfg.gap);
            timed_out
        })
        .count();
    if warm_timeouts > 0 {
        println!(
            "  warm-up: {warm_timeouts} of {WARMUP_STOPS} stops timed out at {WARMUP_TIMEOUT:?}"
        );
    }
    let mut out = Outcome {
        attempted: 0,
        stops: Stops::default(),
        with: Window::default(),
        without: Window::default(),
        rounds: Vec::new(),
    };
    let per_round = stops.div_ceil(cfg.rounds);
    let mut last_len = None;
    for round in 0..cfg.rounds {
        let n = per_round.min(stops - out.attempted);
        if n == 0 || out.stops.gave_up(cfg) {
            break;
        }
        let stop_window = |out: &mut Outcome| {
            Window::measure(load, || {
                for _ in 0..n {
                    out.stops.one(handle, cfg);
                    out.attempted += 1;
                    if out.stops.gave_up(cfg) {
                        break;
                    }
                }
            })
        };
        let quiet = |len: Duration| Window::measure(load, || std::thread::sleep(len));
        let (w, q) = match last_len {
            Some(len) if round % 2 == 1 => {
                let q = quiet(len);
                (stop_window(&mut out), q)
            }
            _ => {
                let w = stop_window(&mut out);
                (w, quiet(w.wall))
            }
        };
        last_len = Some(w.wall);
        out.rounds.push((w, q));
        out.with.add(w);
        out.without.add(q);
    }
    out
}

fn report(scenario: &str, unit: &str, scale: f64, planned: usize, cfg: &Config, mut out: Outcome) {
    let s = &mut out.stops;
    let completed = s.ttsp.len();
    let ttsp = (completed > 0).then(|| Percentiles::of(&mut s.ttsp));
    let wall = (!s.wall.is_empty()).then(|| Percentiles::of(&mut s.wall));
    // p50 / p99 / max in µs, or "-" when there is no sample.
    let cols = |p: Option<Percentiles>| {
        p.map_or_else(
            || ["-".to_owned(), "-".to_owned(), "-".to_owned()],
            |p| [us(p.p50), us(p.p99), us(p.max)],
        )
    };
    let (ttsp, wall) = (cols(ttsp), cols(wall));
    println!(
        "  stops: {} attempted of {planned}, {completed} completed, {} timed out (timeout {:?}){}",
        out.attempted,
        s.timeouts,
        cfg.timeout,
        if out.attempted < planned {
            format!(", gave up after {} timeouts", s.timeouts)
        } else {
            String::new()
        }
    );
    for (what, [p50, p99, max]) in [
        ("", ["p50_us", "p99_us", "max_us"].map(str::to_owned)),
        ("time to stop (StopReport)", ttsp.clone()),
        ("requester wall (call->return)", wall.clone()),
    ] {
        println!("  {what:<34} {p50:>10} {p99:>10} {max:>10}");
    }
    let (with, without) = (out.with.rate() * scale, out.without.rate() * scale);
    let ratio = with / without;
    // Per round: the ratio, and the with-stops window's length.
    // B's pending reads in the stops and the quiet windows ("-" in A).
    let pending = if scenario == "B" {
        let w = &out.with;
        let q = &out.without;
        [w.pending, q.pending]
            .map(|n| n.to_string())
            .into_iter()
            .chain([w.waited_share(), q.waited_share()].map(|f| format!("{:.2}", f * 100.0)))
            .collect()
    } else {
        vec!["-".to_owned(); 4]
    };
    let rounds: Vec<String> = out
        .rounds
        .iter()
        .map(|(w, q)| match q.count {
            0 => format!("-/{}ms", w.wall.as_millis()),
            _ => format!("{:.3}/{}ms", w.rate() / q.rate(), w.wall.as_millis()),
        })
        .collect();
    println!(
        "  throughput: with stops {with:.0} {unit} over {:.2} s, without {without:.0} {unit} over {:.2} s: ratio {ratio:.3} (per round, ratio/window: {})",
        out.with.wall.as_secs_f64(),
        out.without.wall.as_secs_f64(),
        rounds.join(" ")
    );
    if scenario == "B" {
        println!(
            "  reads that waited (returned Pending): {} in the stops windows (socket empty, or parked by a stop), waiting {}% of the time; {} in the quiet ones (socket empty), waiting {}% of the time",
            pending[0], pending[2], pending[1], pending[3]
        );
    }
    if let Some(e) = &s.first_timeout {
        println!("  first timeout's report: {e}");
    }
    println!(
        "summary {scenario} stops={planned} attempted={} completed={completed} timeouts={} \
         ttsp_p50_us={} ttsp_p99_us={} ttsp_max_us={} wall_p50_us={} wall_p99_us={} \
         wall_max_us={} with={with:.0} without={without:.0} ratio={ratio:.3} \
         pending_stops={} pending_quiet={} waited_pct_stops={} waited_pct_quiet={}",
        out.attempted,
        s.timeouts,
        ttsp[0],
        ttsp[1],
        ttsp[2],
        wall[0],
        wall[1],
        wall[2],
        pending[0],
        pending[1],
        pending[2],
        pending[3],
    );
    println!();
}

fn runtime(cfg: &Config) -> safepoint::Runtime {
    safepoint::Builder::new_multi_thread()
        .worker_threads(cfg.workers)
        .build()
        .expect("build the runtime")
}

fn main() {
    // `cargo bench -p safepoint-benches -- <filter>` passes the filter to
    // every bench binary: run only if it names this one.
    if !selected("stops_under_load") {
        return;
    }
    let cfg = Config::from_env();
    println!(
        "stops under load: {} workers, stops held {:?}, {:?} apart, timeout {:?}, {} rounds alternating with/without stops",
        cfg.workers, cfg.hold, cfg.gap, cfg.timeout, cfg.rounds
    );
    if cfg.scenarios.contains('A') {
        println!(
            "\n=== A: {} connections, {MSG} B request/response, {:?} of work per request, {} client threads; {} stops ===",
            cfg.conns, cfg.work, cfg.client_threads, cfg.stops_a
        );
        let rt = runtime(&cfg);
        let load = start_a(&rt, &cfg);
        let out = run(&rt, &cfg, &load, cfg.stops_a);
        load.finish();
        report("A", "req/s", 1.0, cfg.stops_a, &cfg, out);
    }
    if cfg.scenarios.contains('B') {
        println!(
            "\n=== B: one client streaming {} KB writes to a reading task, {} idle connections; {} stops ===",
            CHUNK / 1024,
            cfg.idle,
            cfg.stops_b
        );
        let rt = runtime(&cfg);
        let load = start_b(&rt, &cfg);
        let out = run(&rt, &cfg, &load, cfg.stops_b);
        load.finish();
        report("B", "MB/s", 1e-6, cfg.stops_b, &cfg, out);
    }
}
