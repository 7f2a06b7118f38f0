//! What the kv end-to-end tests share: a server process on a free port
//! (`--port 0`, the port read from its `listening on` line) with its own data
//! directory, and a RESP client over a plain `std::net::TcpStream` that reads
//! replies independently of the server's own parser. Each test binary uses
//! part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_safepoint-kv");
pub const WAIT: Duration = Duration::from_secs(30);

/// A data directory removed at the end of the test.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("safepoint-kv-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn dump(&self) -> PathBuf {
        self.0.join("dump.kv")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process; killed if the test ends without stopping it.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    /// Lines read while waiting for another one, kept for later waits.
    skipped: Vec<String>,
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_ulimit(dir, extra, None)
    }

    /// Starts the server under `sh -c 'ulimit <ulimit> && exec ...'` if given
    /// (e.g. "-n 64": soft and hard open-file limits of 64).
    pub fn start_with_ulimit(dir: &Path, extra: &[&str], ulimit: Option<&str>) -> Server {
        let mut command = match ulimit {
            None => Command::new(BIN),
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                sh
            }
        };
        let mut child = command
            .args(["--port", "0", "--workers", "2", "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start safepoint-kv");
        let (tx, lines) = mpsc::channel();
        // Both streams feed one channel: tests wait for log lines on either.
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn Read + Send>, tx.clone()),
            (Box::new(stderr), tx),
        ] {
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    eprintln!("[server] {line}");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
            skipped: Vec::new(),
        };
        let line = server.wait_for_line(|l| l.starts_with("listening on "));
        server.addr = line["listening on ".len()..]
            .trim()
            .parse()
            .expect("address");
        server
    }

    /// Waits for an output line (stdout or stderr) matching `want`; lines
    /// passed over are kept for later waits.
    pub fn wait_for_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        if let Some(i) = self.skipped.iter().position(|l| want(l)) {
            return self.skipped.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(line) => self.skipped.push(line),
                Err(e) => panic!("server printed no expected line: {e}"),
            }
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RESP reply, read independently of the server's own parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn send(&mut self, commands: &[Vec<&[u8]>]) {
        self.writer.write_all(&encode(commands)).unwrap();
    }

    pub fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.send(&[args.to_vec()]);
        self.read()
    }

    pub fn read(&mut self) -> Reply {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read reply");
        assert!(n > 0, "connection closed");
        let line = line.strip_suffix("\r\n").expect("CRLF");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Simple(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut data = vec![0; len as usize + 2];
                self.reader.read_exact(&mut data).unwrap();
                assert_eq!(&data[len as usize..], b"\r\n");
                data.truncate(len as usize);
                Reply::Bulk(Some(data))
            }
            "*" => {
                let len: usize = rest.parse().unwrap();
                Reply::Array((0..len).map(|_| self.read()).collect())
            }
            other => panic!("unknown reply type {other:?}"),
        }
    }

    /// True once the server has closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

/// Requests as client libraries encode them: arrays of bulk strings.
pub fn encode(commands: &[Vec<&[u8]>]) -> Vec<u8> {
    let mut out = Vec::new();
    for args in commands {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

pub fn ok() -> Reply {
    Reply::Simple("OK".into())
}

pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

/// SETs `key:{i}` = `value:{i}` for `range`, pipelined, every reply checked.
pub fn set_keys(client: &mut Client, prefix: &str, range: std::ops::Range<usize>) {
    let keys: Vec<usize> = range.collect();
    for batch in keys.chunks(100) {
        let owned: Vec<(String, String)> = batch
            .iter()
            .map(|i| (format!("{prefix}{i}"), format!("value:{i}")))
            .collect();
        let cmds: Vec<Vec<&[u8]>> = owned
            .iter()
            .map(|(k, v)| vec![&b"SET"[..], k.as_bytes(), v.as_bytes()])
            .collect();
        client.send(&cmds);
        for _ in batch {
            assert_eq!(client.read(), ok());
        }
    }
}

/// GETs every `{prefix}{i}` and checks its value.
pub fn check_keys(client: &mut Client, prefix: &str, range: std::ops::Range<usize>) {
    let keys: Vec<usize> = range.collect();
    for batch in keys.chunks(100) {
        let owned: Vec<String> = batch.iter().map(|i| format!("{prefix}{i}")).collect();
        let cmds: Vec<Vec<&[u8]>> = owned
            .iter()
            .map(|k| vec![&b"GET"[..], k.as_bytes()])
            .collect();
        client.send(&cmds);
        for i in batch {
            assert_eq!(client.read(), bulk(&format!("value:{i}")), "{prefix}{i}");
        }
    }
}

/// A server started with `flags` in a fresh data directory named after `name`.
pub fn started(name: &str, flags: &[&str]) -> (TempDir, Server) {
    let dir = TempDir::new(name);
    let server = Server::start(&dir.0, flags);
    (dir, server)
}

impl Server {
    /// Every line printed so far that was not yet waited for.
    pub fn lines_so_far(&mut self) -> Vec<String> {
        let mut lines = std::mem::take(&mut self.skipped);
        lines.extend(self.lines.try_iter());
        lines
    }

    /// A field of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
    pub fn memory_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("{field} missing from /proc status"))
            .trim()
            .trim_end_matches(" kB")
            .parse()
            .unwrap()
    }

    /// CPU time the server has used, user and system.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which ends at the last ')'):
        // utime and stime are the 14th and 15th of the whole line.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf reads a constant and touches no memory of ours.
        let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / per_sec)
    }
}

impl Client {
    /// Sends bytes as they are (malformed, partial or inline requests).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// An integer reply, or `None` once the connection is gone (the server
    /// was killed).
    pub fn try_int(&mut self, args: &[&[u8]]) -> Option<i64> {
        self.writer.write_all(&encode(&[args.to_vec()])).ok()?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        let n = line.strip_prefix(':').and_then(|l| l.strip_suffix("\r\n"));
        Some(
            n.unwrap_or_else(|| panic!("not an integer reply: {line:?}"))
                .parse()
                .unwrap(),
        )
    }

    /// A numeric field of `INFO <section>`.
    pub fn info_field(&mut self, section: &str, name: &str) -> u64 {
        let Reply::Bulk(Some(info)) = self.call(&[b"INFO", section.as_bytes()]) else {
            panic!("INFO is a bulk string")
        };
        let info = String::from_utf8(info).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} missing from {info}"))
            .trim()
            .parse()
            .unwrap()
    }
}
