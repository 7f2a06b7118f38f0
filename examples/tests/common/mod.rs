//! Running an HTTP example as a process, and a raw HTTP/1.1 client, for
//! the example tests.
//!
//! The binaries are the ones `cargo test` builds with the examples (it
//! builds every example of the package before running its tests), found next
//! to the test's own executable.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(30);

/// The path of example `name`.
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/http-<hash> -> target/<profile>/examples/http
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(name);
    let built = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("{name}.rs"));
    if let (Some(bin), Some(src)) = (built(&path), built(&source)) {
        // `cargo test --test NAME` builds no examples: a stale binary would
        // test old code without saying so.
        assert!(
            bin >= src,
            "{} is older than {}: run `cargo build -p safepoint-examples --example {name}` \
             (or `cargo test -p safepoint-examples`, which builds the examples)",
            path.display(),
            source.display()
        );
    }
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p safepoint-examples` (which builds the examples) \
         or `cargo build -p safepoint-examples --example {name}` first",
        path.display()
    );
    path
}

/// A running example; killed if the test ends without stopping it.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts example `name` on a free port with two workers and waits
    /// for its `listening` line.
    pub fn start(name: &str) -> Server {
        let mut child = Command::new(example(name))
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
                eprintln!("[server] {line}");
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

    pub fn sigterm(&self) {
        // SAFETY: `kill` with a child's pid and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
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

/// Sends one HTTP/1.1 `GET` on `stream` and reads one response (which
/// must carry a content-length); returns (status line, headers, body).
pub fn request(stream: &mut TcpStream, path: &str) -> (String, String, Vec<u8>) {
    send(stream, format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
    read_response(stream)
}

/// Sends one HTTP/1.1 `POST` of a JSON body and reads one response.
pub fn post_json(stream: &mut TcpStream, path: &str, json: &str) -> (String, String, Vec<u8>) {
    send(
        stream,
        format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{json}",
            json.len()
        ),
    );
    read_response(stream)
}

/// Writes a whole request in one `write` with Nagle off: `write!` would
/// send each formatted piece separately, and Nagle plus the server's
/// delayed ACK would then stall every request by tens of milliseconds.
fn send(stream: &mut TcpStream, request: String) {
    stream.set_nodelay(true).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
}

fn read_response(stream: &mut TcpStream) -> (String, String, Vec<u8>) {
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
