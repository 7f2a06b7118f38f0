//! The `http` example as a real process: it prints `listening`, answers
//! `GET /` with exactly `Hello, World!` over real sockets, rejects bad flags,
//! and on SIGTERM shuts down gracefully and exits 0.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::thread;

use common::{example, request, Server, WAIT};

#[test]
fn serves_hello_world_then_exits_0_on_sigterm_after_a_graceful_shutdown() {
    let mut server = Server::start("http");
    let mut conn = TcpStream::connect(server.addr).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    for _ in 0..3 {
        let (status, _, body) = request(&mut conn, "/");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, b"Hello, World!");
    }
    let (status, _, _) = request(&mut conn, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // An idle keep-alive connection is open when SIGTERM comes: the
    // graceful shutdown closes it and the process exits 0.
    server.sigterm();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let mut rest = Vec::new();
    assert_eq!(
        conn.read_to_end(&mut rest).unwrap(),
        0,
        "the idle connection is closed"
    );
    let lines: Vec<String> = server.lines.try_iter().collect();
    assert!(
        lines.iter().any(|l| l.contains("shutting down")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("1 connection(s) open at shutdown, 1 finished")),
        "{lines:?}"
    );
    // Nothing listens any more.
    assert!(TcpStream::connect(server.addr).is_err());
}

#[test]
fn many_connections_each_get_exactly_hello_world() {
    let server = Server::start("http");
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_read_timeout(Some(WAIT)).unwrap();
                for _ in 0..50 {
                    let (status, head, body) = request(&mut conn, "/");
                    assert_eq!(status, "HTTP/1.1 200 OK");
                    assert!(head.to_ascii_lowercase().contains("content-length: 13"));
                    assert_eq!(body, b"Hello, World!");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    server.sigterm();
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (args, needle) in [
        (&["--workers", "0"][..], "--workers"),
        (&["--port", "http"][..], "--port"),
        (&["--bogus", "1"][..], "unknown flag --bogus"),
        (&["--port"][..], "--port needs a value"),
    ] {
        let out = Command::new(example("http")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
