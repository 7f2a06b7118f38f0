//! A TCP echo server that shuts down cleanly on Ctrl-C or SIGTERM.
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:7000
//! ```
//!
//! Each connection is a task. On a signal the accept loop stops, open
//! connections get a second to finish, and the process exits 0.

use std::time::Duration;

use futures::future::{select, Either};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use safepoint::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_owned());
    let rt = safepoint::Runtime::new()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("echo: listening on {}", listener.local_addr()?);
        let mut connections = Vec::new();
        let mut shutdown = Box::pin(async {
            let ctrl_c = Box::pin(safepoint::signal::ctrl_c());
            let term = Box::pin(safepoint::signal::terminate());
            match select(ctrl_c, term).await {
                Either::Left((r, _)) | Either::Right((r, _)) => r,
            }
        });
        loop {
            let accept = Box::pin(listener.accept());
            match select(accept, shutdown.as_mut()).await {
                Either::Left((Ok((mut stream, peer)), _)) => {
                    connections.push(safepoint::spawn(async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = peer;
                    }));
                    connections.retain(|c| !c.is_finished());
                }
                Either::Left((Err(e), _)) => eprintln!("echo: accept failed: {e}"),
                Either::Right((signal, _)) => {
                    signal?;
                    break;
                }
            }
        }
        println!(
            "echo: shutting down, {} connection(s) open",
            connections.len()
        );
        for c in connections {
            // Give each connection a moment to drain, then drop it.
            if safepoint::time::timeout(Duration::from_secs(1), c)
                .await
                .is_err()
            {
                eprintln!("echo: a connection did not close in time");
            }
        }
        println!("echo: bye");
        Ok(())
    })
}
