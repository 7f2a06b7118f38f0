//! Stops that converge under load (protocol point 10): while a stop is
//! pending, every await on a runtime resource that would complete parks the
//! task as at a safepoint, and the task resumes with nothing lost.
//!
//! Each test runs a task that never calls `safepoint()` and never has to
//! wait: its socket always has data (or room), its timers have already
//! fired, the handles it awaits are finished. Before point 10 such a task
//! never blocked, and every stop timed out. Here each stop must complete
//! (a generous timeout catches a hang, not a figure), the task's progress
//! counter must not move while the world is held, it must move again after
//! the release, and what the task received must be complete and in order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use safepoint::task::yield_now;
use safepoint::{LaggardCause, Runtime};
use safepoint_tests::{rt, wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(120);

/// Only to catch a stop that never completes: a figure this is not.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Stops the world `stops` times while the task under test runs. Each stop
/// must complete; while it is held, `progress` must not move; after the
/// release it must move again (the parked task resumed). Returns the
/// largest time to stop seen.
fn stop_repeatedly(rt: &Runtime, progress: &AtomicU64, stops: usize) -> Duration {
    assert!(
        wait_until(STOP_LIMIT, || progress.load(SeqCst) > 0),
        "the task under test never started"
    );
    let mut worst = Duration::ZERO;
    for i in 0..stops {
        let world = match rt.handle().stop_the_world_blocking_timeout(STOP_LIMIT) {
            Ok(world) => world,
            Err(e) => panic!("stop {i} did not complete under load: {e}"),
        };
        worst = worst.max(world.report().time_to_stop);
        let held = progress.load(SeqCst);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(
            progress.load(SeqCst),
            held,
            "stop {i}: the task under test made progress while the world was held"
        );
        drop(world);
        assert!(
            wait_until(STOP_LIMIT, || progress.load(SeqCst) > held),
            "stop {i}: the task under test did not resume after the release"
        );
    }
    worst
}

/// Spawns `future` on `rt` as a task named `name` (laggard reports and
/// metrics name it).
fn spawn_named<T: Send + 'static>(
    rt: &Runtime,
    name: &str,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> safepoint::JoinHandle<T> {
    safepoint::task::Builder::new()
        .name(name)
        .spawn_on(future, rt.handle())
        .unwrap()
}

/// A byte stream `0, 1, 2, ...` (wrapping) in 64 KiB writes until `done`;
/// returns the bytes sent (the stream closes when it returns).
fn pattern_writer(mut w: impl std::io::Write, done: &AtomicBool) -> usize {
    let mut sent = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    while !done.load(SeqCst) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (sent + i) as u8;
        }
        w.write_all(&buf).unwrap();
        sent += buf.len();
    }
    sent
}

/// Reads to EOF, checking the pattern byte by byte; bumps `progress` per
/// read. Returns the bytes read. Small reads against 64 KiB writes: the
/// socket's buffer stays full, so the reader never finds it empty and
/// never waits (only the gate can park it).
async fn pattern_reader(mut r: impl futures::AsyncRead + Unpin, progress: Arc<AtomicU64>) -> usize {
    let mut got = 0usize;
    let mut buf = vec![0u8; 512];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return got;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, (got + i) as u8, "byte {} lost or out of order", got + i);
        }
        got += n;
        progress.fetch_add(1, SeqCst);
    }
}

/// Streams the pattern from a thread through `writer` while a task reads
/// it from `stream` (made inside the task), stopping the world 20 times.
fn stream_while_stopping<S, F>(
    writer: impl FnOnce() -> Box<dyn std::io::Write + Send> + Send + 'static,
    stream: impl FnOnce() -> F + Send + 'static,
) where
    S: futures::AsyncRead + Unpin + Send,
    F: std::future::Future<Output = S> + Send + 'static,
{
    watchdog(LIMIT, move || {
        let rt = rt(2);
        // The writer streams until every stop is done (a fixed amount could
        // all be read before the last stop, and the "resumes after the
        // release" check would then wait for a reader that has finished).
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let writer = std::thread::spawn(move || pattern_writer(writer(), &d));
        let progress = Arc::new(AtomicU64::new(0));
        let p = progress.clone();
        let reader = rt.spawn(async move { pattern_reader(stream().await, p).await });
        stop_repeatedly(&rt, &progress, 20);
        done.store(true, SeqCst);
        let sent = writer.join().unwrap();
        assert_eq!(rt.block_on(reader).unwrap(), sent);
    });
}

#[test]
fn a_tcp_reader_whose_socket_always_has_data_parks_at_its_next_read_and_loses_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    stream_while_stopping(
        move || Box::new(listener.accept().unwrap().0),
        move || async move { safepoint::net::TcpStream::connect(addr).await.unwrap() },
    );
}

#[test]
fn a_unix_stream_reader_with_data_always_ready_parks_and_loses_nothing() {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    stream_while_stopping(
        move || Box::new(theirs),
        move || async move {
            ours.set_nonblocking(true).unwrap();
            safepoint::net::UnixStream::from_std(ours).unwrap()
        },
    );
}

#[test]
fn a_writer_whose_socket_always_has_room_parks_at_its_next_write_and_loses_nothing() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A fast reader: the writer's socket almost always has room.
        let reader = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let mut got = 0usize;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = std::io::Read::read(&mut peer, &mut buf).unwrap();
                if n == 0 {
                    return got;
                }
                for (i, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, (got + i) as u8, "byte {} lost or out of order", got + i);
                }
                got += n;
            }
        });
        let progress = Arc::new(AtomicU64::new(0));
        let p = progress.clone();
        // Writes until every stop is done, as `pattern_writer` does.
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let writer = rt.spawn(async move {
            let mut s = safepoint::net::TcpStream::connect(addr).await.unwrap();
            let mut sent = 0usize;
            let mut buf = vec![0u8; 4096];
            while !d.load(SeqCst) {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = (sent + i) as u8;
                }
                s.write_all(&buf).await.unwrap();
                sent += buf.len();
                p.fetch_add(1, SeqCst);
            }
            s.close().await.unwrap();
            sent
        });
        stop_repeatedly(&rt, &progress, 20);
        done.store(true, SeqCst);
        let sent = rt.block_on(writer).unwrap();
        assert_eq!(reader.join().unwrap(), sent);
    });
}

#[test]
fn a_udp_echo_server_with_a_datagram_always_waiting_parks_at_its_next_receive() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let progress = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        // UDP: a client thread keeps 64 datagrams in flight (each echo
        // received lets it send one more), so the server always has one
        // waiting, never more than its buffer holds, and every echo is
        // checked in order.
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let p = progress.clone();
        let udp = rt.spawn(async move {
            server.set_nonblocking(true).unwrap();
            let s = safepoint::net::UdpSocket::from_std(server).unwrap();
            let mut buf = [0u8; 64];
            loop {
                let (n, from) = s.recv_from(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                s.send_to(&buf[..n], from).await.unwrap();
                p.fetch_add(1, SeqCst);
            }
        });
        let d = done.clone();
        let udp_client = std::thread::spawn(move || {
            const WINDOW: u64 = 64;
            let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            c.connect(addr).unwrap();
            let (mut sent, mut echoed) = (0u64, 0u64);
            while sent < WINDOW {
                c.send(&sent.to_le_bytes()).unwrap();
                sent += 1;
            }
            while echoed < sent {
                let mut buf = [0u8; 64];
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(
                    &buf[..n],
                    &echoed.to_le_bytes(),
                    "echo {echoed} lost or reordered"
                );
                echoed += 1;
                if !d.load(SeqCst) {
                    c.send(&sent.to_le_bytes()).unwrap();
                    sent += 1;
                }
            }
            c.send(&[]).unwrap();
            echoed
        });
        stop_repeatedly(&rt, &progress, 20);
        done.store(true, SeqCst);
        assert!(udp_client.join().unwrap() > 0);
        rt.block_on(udp).unwrap();
    });
}

#[test]
fn an_accept_loop_with_a_full_backlog_and_a_connect_loop_park_at_their_next_await() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let accepted = Arc::new(AtomicU64::new(0));
        let connected = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let listener = rt.block_on(async {
            safepoint::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap()
        });
        let addr = listener.local_addr().unwrap();
        let (a, d) = (accepted.clone(), done.clone());
        let acceptor = rt.spawn(async move {
            while !d.load(SeqCst) {
                let (s, _) = listener.accept().await.unwrap();
                drop(s);
                a.fetch_add(1, SeqCst);
            }
        });
        // Connections from a thread keep the backlog full; the task's own
        // connects complete at once on loopback.
        let d = done.clone();
        let flooder = std::thread::spawn(move || {
            while !d.load(SeqCst) {
                let _ = std::net::TcpStream::connect(addr);
            }
        });
        let (c, d) = (connected.clone(), done.clone());
        let connector = rt.spawn(async move {
            while !d.load(SeqCst) {
                let s = safepoint::net::TcpStream::connect(addr).await.unwrap();
                drop(s);
                c.fetch_add(1, SeqCst);
            }
        });
        // Both counters must hold while the world is held: stop on the sum.
        let both = Arc::new(AtomicU64::new(0));
        let (b, a, c, d) = (
            both.clone(),
            accepted.clone(),
            connected.clone(),
            done.clone(),
        );
        let summer = std::thread::spawn(move || {
            while !d.load(SeqCst) {
                b.store(a.load(SeqCst) + c.load(SeqCst), SeqCst);
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        for _ in 0..20 {
            let world = rt
                .handle()
                .stop_the_world_blocking_timeout(STOP_LIMIT)
                .unwrap_or_else(|e| panic!("a stop did not complete: {e}"));
            let (a0, c0) = (accepted.load(SeqCst), connected.load(SeqCst));
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!(accepted.load(SeqCst), a0, "accepted while held");
            assert_eq!(connected.load(SeqCst), c0, "connected while held");
            drop(world);
            assert!(wait_until(STOP_LIMIT, || accepted.load(SeqCst) > a0));
            assert!(wait_until(STOP_LIMIT, || connected.load(SeqCst) > c0));
        }
        done.store(true, SeqCst);
        flooder.join().unwrap();
        summer.join().unwrap();
        // One more connection lets the acceptor see `done`.
        let _ = std::net::TcpStream::connect(addr);
        rt.block_on(acceptor).unwrap();
        rt.block_on(connector).unwrap();
        assert!(both.load(SeqCst) > 0);
    });
}

#[test]
fn timers_that_have_already_fired_park_the_task_and_stay_fired() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let progress = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (progress.clone(), done.clone());
        // A sleep whose deadline is past, an interval far behind (its
        // missed ticks burst), and a timeout whose deadline is past around
        // a future that never completes: each completes at once, so the
        // task never waits.
        let task = rt.spawn(async move {
            let past = safepoint::time::Instant::now();
            let mut interval = safepoint::time::interval(Duration::from_nanos(1));
            let mut timeouts = 0u64;
            while !d.load(SeqCst) {
                safepoint::time::sleep_until(past).await;
                interval.tick().await;
                let r = safepoint::time::timeout_at(past, std::future::pending::<()>()).await;
                assert!(
                    r.is_err(),
                    "a timeout past its deadline completed otherwise"
                );
                timeouts += 1;
                p.fetch_add(1, SeqCst);
            }
            timeouts
        });
        stop_repeatedly(&rt, &progress, 20);
        done.store(true, SeqCst);
        assert!(rt.block_on(task).unwrap() > 20);
    });
}

#[test]
fn awaiting_finished_join_handles_and_blocking_results_parks_and_keeps_every_output() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        const N: u64 = 20_000;
        let handles: Vec<_> = (0..N).map(|i| rt.spawn(async move { i })).collect();
        let blocking: Vec<_> = (0..64).map(|i| rt.spawn_blocking(move || i * 2)).collect();
        assert!(wait_until(STOP_LIMIT, || handles
            .iter()
            .all(|h| h.is_finished())
            && blocking.iter().all(|h| h.is_finished())));
        let progress = Arc::new(AtomicU64::new(0));
        let p = progress.clone();
        let joiner = rt.spawn(async move {
            let mut sum = 0u64;
            for h in blocking {
                sum += h.await.unwrap();
                p.fetch_add(1, SeqCst);
            }
            for h in handles {
                sum += h.await.unwrap();
                p.fetch_add(1, SeqCst);
                // Slow enough that the stops below land mid-loop.
                std::thread::sleep(Duration::from_micros(5));
            }
            sum
        });
        stop_repeatedly(&rt, &progress, 10);
        let expected = (0..64).map(|i| i * 2).sum::<u64>() + (0..N).sum::<u64>();
        assert_eq!(rt.block_on(joiner).unwrap(), expected);
    });
}

#[test]
fn a_join_set_of_finished_tasks_parks_once_and_keeps_every_output() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        const N: u64 = 20_000;
        let progress = Arc::new(AtomicU64::new(0));
        let p = progress.clone();
        let joiner = rt.spawn(async move {
            let mut set = safepoint::task::JoinSet::new();
            for i in 0..N {
                set.spawn(async move { i });
            }
            // Let them all finish first: every join_next below is ready.
            while set.len() as u64 > 0 && p.load(SeqCst) == 0 {
                safepoint::time::sleep(Duration::from_millis(5)).await;
                p.fetch_add(1, SeqCst);
            }
            let mut sum = 0u64;
            while let Some(r) = set.join_next().await {
                sum += r.unwrap();
                p.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_micros(5));
            }
            sum
        });
        stop_repeatedly(&rt, &progress, 10);
        assert_eq!(rt.block_on(joiner).unwrap(), (0..N).sum::<u64>());
    });
}

/// The one promise point 10 changed: a task that spins on `yield_now()`
/// until another task's read completes no longer lets the stop complete
/// when the byte arrives, because the reader is parked at its read. The
/// stop times out and names the spinner as a loop (never the reader), the
/// withdrawal releases the reader, and the reader gets its byte.
#[test]
fn a_spinner_waiting_on_a_parked_reader_holds_the_stop_and_is_named_as_a_loop() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let g = got.clone();
        let reader = spawn_named(&rt, "reader", async move {
            let mut s = safepoint::net::TcpStream::connect(addr).await.unwrap();
            let mut byte = [0u8; 1];
            s.read_exact(&mut byte).await.unwrap();
            g.store(true, SeqCst);
            byte[0]
        });
        let (mut peer, _) = listener.accept().unwrap();
        let spinning = Arc::new(AtomicBool::new(false));
        let (sp, g) = (spinning.clone(), got.clone());
        let spinner = spawn_named(&rt, "spinner", async move {
            sp.store(true, SeqCst);
            while !g.load(SeqCst) {
                yield_now().await;
            }
        });
        assert!(wait_until(STOP_LIMIT, || spinning.load(SeqCst)));
        let h = rt.handle().clone();
        let stopper = std::thread::spawn(move || {
            h.stop_the_world_blocking_timeout(Duration::from_millis(300))
        });
        // The byte arrives while the stop is pending.
        std::thread::sleep(Duration::from_millis(50));
        std::io::Write::write_all(&mut peer, &[42]).unwrap();
        let err = match stopper.join().unwrap() {
            Ok(_) => panic!("the world stopped while the spinner was short of its safepoint"),
            Err(e) => e,
        };
        let names: Vec<_> = err.laggards().iter().map(|l| l.name.clone()).collect();
        assert_eq!(names, [Some("spinner".to_string())], "{err}");
        let l = &err.laggards()[0];
        assert_eq!(l.cause, LaggardCause::Loops, "{err}");
        assert!(l.polls_since_request > 1, "{err}");
        assert!(err.to_string().contains("yield_now"), "{err}");
        // Released by the withdrawal: the reader reads its byte, the
        // spinner sees it.
        assert_eq!(rt.block_on(reader).unwrap(), 42);
        rt.block_on(spinner).unwrap();
    });
}

#[test]
fn a_task_in_one_long_poll_is_named_as_a_long_poll() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (s, r) = (started.clone(), release.clone());
        let cruncher = spawn_named(&rt, "cruncher", async move {
            s.store(true, SeqCst);
            while !r.load(SeqCst) {
                std::hint::spin_loop();
            }
        });
        assert!(wait_until(STOP_LIMIT, || started.load(SeqCst)));
        let err = match rt
            .handle()
            .stop_the_world_blocking_timeout(Duration::from_millis(100))
        {
            Ok(_) => panic!("stopped over a task in one endless poll"),
            Err(e) => e,
        };
        release.store(true, SeqCst);
        let l = &err.laggards()[0];
        assert_eq!(l.name.as_deref(), Some("cruncher"));
        assert_eq!(l.cause, LaggardCause::LongPoll, "{err}");
        rt.block_on(cruncher).unwrap();
    });
}

/// The requester is exempt, before and while it holds the world: its own
/// timers fire while its stop is pending (a timeout on the request), and a
/// requester queued behind another gets its timeout too.
#[test]
fn requesters_timers_fire_while_their_stops_are_pending() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        // Keeps every stop pending: it never awaits.
        let spinner = rt.spawn(async move {
            while !s.load(SeqCst) {
                yield_now().await;
            }
        });
        let h = rt.handle().clone();
        let first = rt.spawn(async move {
            let t = Instant::now();
            let r = h.stop_the_world_timeout(Duration::from_millis(400)).await;
            (r.is_err(), t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        let h = rt.handle().clone();
        let queued = rt.spawn(async move {
            let t = Instant::now();
            // Its own timeout, while the first request is pending and it
            // waits in line.
            let r = h.stop_the_world_timeout(Duration::from_millis(100)).await;
            (r.is_err(), t.elapsed())
        });
        let (queued_timed_out, queued_waited) = rt.block_on(queued).unwrap();
        let (first_timed_out, _) = rt.block_on(first).unwrap();
        stop.store(true, SeqCst);
        rt.block_on(spinner).unwrap();
        assert!(first_timed_out && queued_timed_out);
        assert!(
            queued_waited < Duration::from_millis(350),
            "the queued requester's timeout waited for the first request: {queued_waited:?}"
        );
    });
}

#[test]
fn stop_metrics_keep_histograms_and_the_last_tasks_the_slowest_stops_waited_for() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let go = Arc::new(AtomicBool::new(false));
        let g = go.clone();
        // Computes for 20 ms once the flag is set, then blocks: the last
        // task the stop waits for.
        let slow = spawn_named(&rt, "slow-batch", async move {
            while !g.load(SeqCst) {
                safepoint::time::sleep(Duration::from_millis(1)).await;
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(20) {
                std::hint::spin_loop();
            }
            safepoint::time::sleep(Duration::from_secs(3600)).await;
        });
        for _ in 0..5 {
            drop(rt.handle().stop_the_world_blocking());
        }
        go.store(true, SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        let world = rt.handle().stop_the_world_blocking();
        let ttsp = world.report().time_to_stop;
        std::thread::sleep(Duration::from_millis(3));
        drop(world);
        let m = rt.metrics();
        assert_eq!(m.stops, 6);
        assert_eq!(m.time_to_stop.count(), 6);
        assert_eq!(m.pause.count(), 6);
        assert!(m.time_to_stop.max() >= ttsp);
        assert!(m.pause.max() >= ttsp + Duration::from_millis(3));
        assert!(m
            .slowest_stops
            .windows(2)
            .all(|w| w[0].time_to_stop >= w[1].time_to_stop));
        let slowest = m
            .slowest_stops
            .iter()
            .find(|s| s.stop == 6)
            .expect("six stops, all among the eight kept");
        assert_eq!(slowest.time_to_stop, ttsp);
        if ttsp >= Duration::from_millis(5) {
            // The stop landed while the batch computed: it waited for it.
            assert_eq!(
                slowest.last_to_block[0].name.as_deref(),
                Some("slow-batch"),
                "{slowest:?}"
            );
        }
        slow.abort();
    });
}

/// Drops a flag's guard: set when the future holding it is dropped.
struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// A 1-worker runtime where `sleeper`'s 50 ms sleep fires while a stop is
/// requested (a yield loop keeps it from being declared), so its wake is
/// kept for the release. The stop is filed ~10 ms in, by a thread that
/// holds the world 300 ms once it has it; its handle is returned. Returns
/// ~150 ms in, after the sleep fired.
fn with_a_kept_wake(
    sleeper: impl std::future::Future<Output = ()> + Send + 'static,
) -> (Runtime, std::thread::JoinHandle<()>) {
    let rt = rt(1);
    let _spinner = rt.spawn(async {
        loop {
            yield_now().await;
        }
    });
    rt.spawn(sleeper);
    std::thread::sleep(Duration::from_millis(10));
    let h = rt.handle().clone();
    let stopper = std::thread::spawn(move || {
        let world = h.stop_the_world_blocking();
        std::thread::sleep(Duration::from_millis(300));
        drop(world);
    });
    std::thread::sleep(Duration::from_millis(150));
    (rt, stopper)
}

/// Shutdown drops a task whose wake was kept for the release (point 10):
/// the registry's wakes cannot reach it (it is already scheduled).
#[test]
fn a_wake_kept_during_a_request_does_not_survive_shutdown() {
    watchdog(LIMIT, || {
        let dropped = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f) = (dropped.clone(), fired.clone());
        let (rt, stopper) = with_a_kept_wake(async move {
            let _g = SetOnDrop(d);
            safepoint::time::sleep(Duration::from_millis(50)).await;
            f.store(true, SeqCst);
            std::future::pending::<()>().await;
        });
        assert!(!fired.load(SeqCst), "the sleeper ran during the request");
        drop(rt); // shutdown: every task should be dropped
        assert!(
            dropped.load(SeqCst),
            "a task whose wake was kept for the release survived shutdown"
        );
        stopper.join().unwrap();
    });
}

/// Point 15: a quiescence wait filed while a wake was kept for the
/// release (point 10) completes at shutdown: shutdown drops kept wakes.
#[test]
fn a_quiescence_wait_completes_at_shutdown_despite_a_kept_wake() {
    watchdog(LIMIT, || {
        let (rt, stopper) = with_a_kept_wake(async {
            safepoint::time::sleep(Duration::from_millis(50)).await;
            std::future::pending::<()>().await;
        });
        let h = rt.handle().clone();
        let waiter = std::thread::spawn(move || h.run_until_blocked());
        std::thread::sleep(Duration::from_millis(20));
        drop(rt);
        stopper.join().unwrap();
        assert!(
            wait_until(Duration::from_secs(3), || waiter.is_finished()),
            "run_until_blocked never returned after shutdown"
        );
    });
}
