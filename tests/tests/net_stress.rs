//! Many connections echoing over loopback for many rounds: a stress test of
//! the driver/scheduler hand-off (wakes from a driver turn run on the worker
//! that turned it; a lost wake there shows up as a hang, which the watchdog
//! turns into a failure).

use futures::io::{AsyncReadExt, AsyncWriteExt};
use safepoint::net::{TcpListener, TcpStream};
use std::time::Duration;

use safepoint_tests::{rt, watchdog};

/// Starts a server (on the current runtime) that reads `N`-byte frames with
/// `read_exact`, applies `reply` to each, and writes it back; returns its
/// address. Replies go out a frame per write, so Nagle is off: otherwise a
/// burst's second reply waits for the peer's delayed ACK (40 ms).
async fn serve_frames<const N: usize>(reply: fn(&mut [u8; N])) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    safepoint::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            s.set_nodelay(true).unwrap();
            safepoint::spawn(async move {
                let mut frame = [0u8; N];
                while s.read_exact(&mut frame).await.is_ok() {
                    reply(&mut frame);
                    if s.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn echo_32_connections_many_rounds() {
    watchdog(Duration::from_secs(120), || {
        let rt = rt(4);
        let mut clients = rt.block_on(async {
            let addr = serve_frames::<64>(|_| {}).await;
            let mut clients = Vec::new();
            for _ in 0..32 {
                let s = TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                clients.push(s);
            }
            clients
        });
        let rounds = if cfg!(debug_assertions) { 150 } else { 1500 };
        for round in 0..rounds {
            let handles: Vec<_> = clients
                .drain(..)
                .enumerate()
                .map(|(i, mut s)| {
                    rt.spawn(async move {
                        for k in 0..20u8 {
                            let msg = [i as u8 ^ k ^ round as u8; 64];
                            s.write_all(&msg).await.unwrap();
                            let mut back = [0u8; 64];
                            s.read_exact(&mut back).await.unwrap();
                            assert_eq!(back, msg);
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
    });
}

/// Frames read with `read_exact` that each fill the buffer exactly, sent in
/// bursts (several frames in one write, or one frame in two writes): the
/// reads that leave data queued must keep the socket readable, and the one
/// that empties it (TCP_INQ says so) may clear readiness only until the next
/// byte arrives. A wrong clear is a lost wake: the watchdog fails the test.
#[test]
fn exact_frames_in_bursts_and_pieces() {
    watchdog(Duration::from_secs(120), || {
        let rt = rt(3);
        rt.block_on(async {
            let addr = serve_frames::<32>(|frame| frame.reverse()).await;
            let rounds = if cfg!(debug_assertions) { 300 } else { 3000 };
            let clients: Vec<_> = (0..8u64)
                .map(|c| {
                    safepoint::spawn(async move {
                        let mut s = TcpStream::connect(addr).await.unwrap();
                        s.set_nodelay(true).unwrap();
                        let mut x = c.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                        for round in 0..rounds {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let frames = 1 + (x % 6) as usize;
                            let mut out = Vec::with_capacity(frames * 32);
                            for f in 0..frames {
                                out.extend((0..32).map(|b| (b + f + round) as u8 ^ c as u8));
                            }
                            if x & 64 == 0 {
                                s.write_all(&out).await.unwrap();
                            } else {
                                // The first frame in two pieces, apart in time.
                                s.write_all(&out[..13]).await.unwrap();
                                safepoint::task::yield_now().await;
                                s.write_all(&out[13..]).await.unwrap();
                            }
                            let mut back = vec![0u8; out.len()];
                            s.read_exact(&mut back).await.unwrap();
                            for (sent, got) in out.chunks(32).zip(back.chunks(32)) {
                                let mut expected = sent.to_vec();
                                expected.reverse();
                                assert_eq!(got, &expected[..]);
                            }
                        }
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
        });
    });
}
