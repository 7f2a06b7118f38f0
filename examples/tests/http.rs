//! The `http` example as a real process: it prints `listening`, answers
//! `GET /` with exactly `Hello, World!` over real sockets, rejects bad flags,
//! and on SIGTERM shuts down gracefully and exits 0.
//!
//! The binary is the one `cargo test` builds with the examples (it builds
//! every example of the package before running its tests), found next to
//! this test's own executable.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn example() -> PathBuf {
    // target/<profile>/deps/http-<hash> -> target/<profile>/examples/http
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join("http");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p safepoint-examples` (which builds the examples) \
         or `cargo build -p safepoint-examples --example http` first",
        path.display()
    );
    path
}

struct Server {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(example())
            .args(["--port", "0", "--workers", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the http example");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[http] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = lines.recv_timeout(WAIT).expect("no `listening` line");
        assert!(line.contains("listening"), "first line: {line}");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .expect("an address on the listening line");
        Server { child, addr, lines }
    }

    fn sigterm(&self) {
        // SAFETY: `kill` with a child's pid and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one HTTP/1.1 request on `stream` and reads one response (which
/// must carry a content-length); returns (status line, headers, body).
fn request(stream: &mut TcpStream, path: &str) -> (String, String, Vec<u8>) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0; len];
    stream.read_exact(&mut body).unwrap();
    let status = head.lines().next().unwrap().to_owned();
    (status, head, body)
}

#[test]
fn serves_hello_world_then_exits_0_on_sigterm_after_a_graceful_shutdown() {
    let mut server = Server::start();
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
    let server = Server::start();
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
        let out = Command::new(example()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
