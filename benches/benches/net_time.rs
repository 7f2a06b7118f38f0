//! I/O and timer benches, safepoint and tokio side by side (4 workers each).
//!
//! * `tcp_echo_c32`, `tcp_echo_c256`: 64-byte echo round trips over loopback
//!   with 32 / 256 concurrent connections. Server and clients live in the
//!   same runtime; connections are opened once per runtime, and each
//!   iteration has every client do `ROUNDS` sequential round trips (write 64
//!   bytes, read the 64-byte echo). Ours uses `safepoint::net` with
//!   `futures::io::{AsyncReadExt, AsyncWriteExt}`, tokio uses `tokio::net`
//!   with `tokio::io`.
//! * `timers_100k`: create 100 000 sleeps of pseudo-random 1..10 s, poll each
//!   once (so it registers with the timer wheel), then drop them all; inside
//!   one spawned task.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use safepoint_benches::{sp_rt, tk_rt};

const MSG: usize = 64;
const TIMERS: usize = 100_000;

/// Round trips per client per iteration, by connection count (about 3–5 k
/// round trips per iteration either way).
fn rounds(conns: usize) -> usize {
    if conns <= 32 {
        100
    } else {
        20
    }
}

mod sp {
    use super::*;
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    use safepoint::net::{TcpListener, TcpStream};

    /// Starts an echo server and opens `conns` client connections.
    pub fn setup(rt: &safepoint::Runtime, conns: usize) -> Vec<TcpStream> {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr: SocketAddr = listener.local_addr().unwrap();
            safepoint::spawn(async move {
                loop {
                    let Ok((mut s, _)) = listener.accept().await else {
                        return;
                    };
                    s.set_nodelay(true).unwrap();
                    safepoint::spawn(async move {
                        let mut buf = [0u8; MSG];
                        while s.read_exact(&mut buf).await.is_ok() {
                            if s.write_all(&buf).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            let mut clients = Vec::with_capacity(conns);
            for _ in 0..conns {
                let s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                clients.push(s);
            }
            clients
        })
    }

    pub fn round(rt: &safepoint::Runtime, clients: &mut Vec<TcpStream>, n: usize) {
        let handles: Vec<_> = clients
            .drain(..)
            .map(|mut s| {
                rt.spawn(async move {
                    let mut buf = [7u8; MSG];
                    for _ in 0..n {
                        s.write_all(&buf).await.unwrap();
                        s.read_exact(&mut buf).await.unwrap();
                    }
                    s
                })
            })
            .collect();
        rt.block_on(async {
            for h in handles {
                clients.push(h.await.unwrap());
            }
        });
    }

    pub fn timers(rt: &safepoint::Runtime, durations: &'static [Duration]) {
        let h = rt.spawn(async move {
            let mut sleeps: Vec<Pin<Box<safepoint::time::Sleep>>> = durations
                .iter()
                .map(|d| Box::pin(safepoint::time::sleep(*d)))
                .collect();
            for s in sleeps.iter_mut() {
                assert!(super::poll_once(s.as_mut()).await.is_none());
            }
            drop(sleeps);
        });
        rt.block_on(h).unwrap();
    }
}

mod tk {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub fn setup(rt: &tokio::runtime::Runtime, conns: usize) -> Vec<TcpStream> {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr: SocketAddr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                loop {
                    let Ok((mut s, _)) = listener.accept().await else {
                        return;
                    };
                    s.set_nodelay(true).unwrap();
                    tokio::spawn(async move {
                        let mut buf = [0u8; MSG];
                        while s.read_exact(&mut buf).await.is_ok() {
                            if s.write_all(&buf).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            let mut clients = Vec::with_capacity(conns);
            for _ in 0..conns {
                let s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                clients.push(s);
            }
            clients
        })
    }

    pub fn round(rt: &tokio::runtime::Runtime, clients: &mut Vec<TcpStream>, n: usize) {
        let handles: Vec<_> = clients
            .drain(..)
            .map(|mut s| {
                rt.spawn(async move {
                    let mut buf = [7u8; MSG];
                    for _ in 0..n {
                        s.write_all(&buf).await.unwrap();
                        s.read_exact(&mut buf).await.unwrap();
                    }
                    s
                })
            })
            .collect();
        rt.block_on(async {
            for h in handles {
                clients.push(h.await.unwrap());
            }
        });
    }

    pub fn timers(rt: &tokio::runtime::Runtime, durations: &'static [Duration]) {
        let h = rt.spawn(async move {
            let mut sleeps: Vec<Pin<Box<tokio::time::Sleep>>> = durations
                .iter()
                .map(|d| Box::pin(tokio::time::sleep(*d)))
                .collect();
            for s in sleeps.iter_mut() {
                assert!(super::poll_once(s.as_mut()).await.is_none());
            }
            drop(sleeps);
        });
        rt.block_on(h).unwrap();
    }
}

/// Polls `f` exactly once.
async fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Option<F::Output> {
    let mut f = Some(f);
    std::future::poll_fn(move |cx| {
        let f = f.take().unwrap();
        std::task::Poll::Ready(match f.poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

fn tcp_echo(c: &mut Criterion, conns: usize) {
    let n = rounds(conns);
    let mut g = c.benchmark_group(format!("tcp_echo_c{conns}"));
    g.throughput(Throughput::Elements((conns * n) as u64));
    {
        let rt = sp_rt();
        let mut clients = sp::setup(&rt, conns);
        g.bench_function("safepoint", |b| b.iter(|| sp::round(&rt, &mut clients, n)));
        drop(clients);
    }
    {
        let rt = tk_rt();
        let mut clients = tk::setup(&rt, conns);
        g.bench_function("tokio", |b| b.iter(|| tk::round(&rt, &mut clients, n)));
        drop(clients);
    }
    g.finish();
}

fn tcp_echo_c32(c: &mut Criterion) {
    tcp_echo(c, 32);
}

fn tcp_echo_c256(c: &mut Criterion) {
    tcp_echo(c, 256);
}

/// 100 000 durations in 1..10 s (millisecond steps), the same for both
/// runtimes (xorshift, fixed seed).
fn durations() -> &'static [Duration] {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let v: Vec<Duration> = (0..TIMERS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(1_000 + x % 9_000)
        })
        .collect();
    Box::leak(v.into_boxed_slice())
}

fn timers_100k(c: &mut Criterion) {
    let d = durations();
    let mut g = c.benchmark_group("timers_100k");
    g.throughput(Throughput::Elements(TIMERS as u64));
    {
        let rt = sp_rt();
        g.bench_function("safepoint", |b| b.iter(|| sp::timers(&rt, d)));
    }
    {
        let rt = tk_rt();
        g.bench_function("tokio", |b| b.iter(|| tk::timers(&rt, d)));
    }
    g.finish();
}

criterion_group!(benches, tcp_echo_c32, tcp_echo_c256, timers_100k);
criterion_main!(benches);
