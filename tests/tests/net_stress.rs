//! Many connections echoing over loopback for many rounds: a stress test of
//! the driver/scheduler hand-off (wakes from a driver turn run on the worker
//! that turned it; a lost wake there shows up as a hang, which the watchdog
//! turns into a failure).

use futures::io::{AsyncReadExt, AsyncWriteExt};
use safepoint::net::{TcpListener, TcpStream};
use std::time::Duration;

use safepoint_tests::{rt, watchdog};

#[test]
fn echo_32_connections_many_rounds() {
    watchdog(Duration::from_secs(120), || {
        let rt = rt(4);
        let mut clients = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            safepoint::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    s.set_nodelay(true).unwrap();
                    safepoint::spawn(async move {
                        let mut buf = [0u8; 64];
                        while s.read_exact(&mut buf).await.is_ok() {
                            if s.write_all(&buf).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
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
