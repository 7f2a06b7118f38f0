//! Demo mode (`--duration SECS`): built-in load clients hammer the server over
//! loopback while it checkpoints, then the figures are printed.
//!
//! Why it is shaped so: the clients run on a runtime of their own, on their own
//! threads, so they behave like outside clients: a stop of the server's world
//! does not stop them, and the pause shows up in their latencies as it would
//! for real clients. Each client keeps a small pipeline of SET/GET (half each,
//! uniform over a fixed key space) in flight and records the round-trip time of
//! every batch for each command in it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};
use safepoint::net::TcpStream;

use crate::kv::resp::{encode_command, parse_reply, Parse, Reply};
use crate::kv::stats::Histogram;

/// Commands each client sends per round trip.
pub const PIPELINE: usize = 4;
/// Distinct keys the clients write.
pub const KEY_SPACE: u64 = 100_000;

/// What the load clients measured.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Commands acknowledged.
    pub ops: u64,
    /// Error replies received.
    pub errors: u64,
    /// Per-command latency (the round trip of its batch).
    pub latency: Histogram,
    /// How long the clients ran.
    pub elapsed: Duration,
    /// Clients that failed (could not connect, lost the connection).
    pub failed_clients: Vec<String>,
}

/// Runs `clients` load clients against `addr` for `duration` on a runtime of
/// their own with `threads` workers, and gathers their figures.
pub fn run_load(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    threads: usize,
) -> io::Result<LoadReport> {
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("kv-load")
        .build()
        .map_err(|e| io::Error::other(format!("cannot start the load runtime: {e}")))?;
    let started = Instant::now();
    let deadline = started + duration;
    let report = rt.block_on(async move {
        let handles: Vec<_> = (0..clients)
            .map(|id| safepoint::spawn(client(addr, id as u64, deadline)))
            .collect();
        let mut report = LoadReport::default();
        for (id, handle) in handles.into_iter().enumerate() {
            match handle.await {
                Ok(Ok(one)) => {
                    report.ops += one.ops;
                    report.errors += one.errors;
                    report.latency.merge(&one.latency);
                }
                Ok(Err(e)) => report.failed_clients.push(format!("client {id}: {e}")),
                Err(e) => report.failed_clients.push(format!("client {id}: {e}")),
            }
        }
        report
    });
    let mut report = report;
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn client(addr: SocketAddr, id: u64, deadline: Instant) -> io::Result<LoadReport> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    let mut report = LoadReport::default();
    let mut out = Vec::with_capacity(1024);
    let mut input = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    while Instant::now() < deadline {
        out.clear();
        for _ in 0..PIPELINE {
            let r = rng.next();
            let key = format!("key:{}", r % KEY_SPACE);
            if r & (1 << 40) == 0 {
                let value = format!("value-{id}-{r:016x}");
                encode_command(&mut out, &[b"SET", key.as_bytes(), value.as_bytes()]);
            } else {
                encode_command(&mut out, &[b"GET", key.as_bytes()]);
            }
        }
        let sent = Instant::now();
        stream.write_all(&out).await?;
        let mut replies = 0;
        while replies < PIPELINE {
            match parse_reply(&input) {
                Parse::Complete(reply, used) => {
                    input.drain(..used);
                    replies += 1;
                    if matches!(reply, Reply::Error(_)) {
                        report.errors += 1;
                    }
                }
                Parse::Incomplete => {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection",
                        ));
                    }
                    input.extend_from_slice(&chunk[..n]);
                }
                Parse::Error(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad reply: {e}"),
                    ))
                }
            }
        }
        let latency = sent.elapsed();
        for _ in 0..PIPELINE {
            report.latency.record(latency);
        }
        report.ops += PIPELINE as u64;
    }
    Ok(report)
}

/// xorshift64*: a tiny deterministic generator for picking keys.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
