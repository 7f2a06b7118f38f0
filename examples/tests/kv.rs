//! End-to-end tests of the `safepoint-kv` binary: each test starts the server as
//! a process on a free port (`--port 0`, the port read from its
//! `listening on` line) with its own data directory, and talks RESP over a
//! plain `std::net::TcpStream` the way a real client does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use safepoint_examples::kv::snapshot;

const BIN: &str = env!("CARGO_BIN_EXE_safepoint-kv");
const WAIT: Duration = Duration::from_secs(30);

/// A data directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("safepoint-kv-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn dump(&self) -> PathBuf {
        self.0.join("dump.kv")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process; killed if the test ends without stopping it.
struct Server {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["--port", "0", "--workers", "2", "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start safepoint-kv");
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
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
        };
        let line = server.wait_for_line(|l| l.starts_with("listening on "));
        server.addr = line["listening on ".len()..]
            .trim()
            .parse()
            .expect("address");
        server
    }

    /// Waits for a stdout line matching `want`, skipping others.
    fn wait_for_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("server printed no expected line: {e}"),
            }
        }
    }

    fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    fn wait_exit(&mut self) -> ExitStatus {
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
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, commands: &[Vec<&[u8]>]) {
        let mut out = Vec::new();
        for args in commands {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for arg in args {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.writer.write_all(&out).unwrap();
    }

    fn call(&mut self, args: &[&[u8]]) -> Reply {
        self.send(&[args.to_vec()]);
        self.read()
    }

    fn read(&mut self) -> Reply {
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
    fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.reader.read(&mut byte), Ok(0) | Err(_))
    }
}

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

/// SETs `key:{i}` = `value:{i}` for `range`, pipelined, every reply checked.
fn set_keys(client: &mut Client, prefix: &str, range: std::ops::Range<usize>) {
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
fn check_keys(client: &mut Client, prefix: &str, range: std::ops::Range<usize>) {
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

#[test]
fn sigterm_saves_every_acknowledged_set() {
    let dir = TempDir::new("sigterm");
    let mut server = Server::start(&dir.0, &["--checkpoint-every", "0"]);
    let mut client = server.client();
    assert_eq!(client.call(&[b"PING"]), Reply::Simple("PONG".into()));
    set_keys(&mut client, "key:", 0..10_000);
    server.signal(libc::SIGTERM);
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status}");
    drop(server);

    let server = Server::start(&dir.0, &["--checkpoint-every", "0"]);
    let mut client = server.client();
    assert_eq!(client.call(&[b"DBSIZE"]), Reply::Int(10_000));
    check_keys(&mut client, "key:", 0..10_000);
}

#[test]
fn sigkill_after_a_checkpoint_keeps_the_checkpointed_keys() {
    let dir = TempDir::new("sigkill");
    let mut server = Server::start(&dir.0, &["--checkpoint-every", "0.1"]);
    let mut client = server.client();
    set_keys(&mut client, "a:", 0..5_000);
    // Keep writing other keys while we wait, so the kill lands under load.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut client = server.client();
        thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                set_keys(&mut client, "b:", i..i + 100);
                i += 100;
            }
        })
    };
    // The first checkpoint logged may have started before the last ack; the
    // second one certainly started after it.
    server.wait_for_line(|l| l.starts_with("checkpoint "));
    let line = server.wait_for_line(|l| l.starts_with("checkpoint "));
    server.signal(libc::SIGKILL);
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join(); // it fails once the server is gone; that is expected
    assert!(!server.wait_exit().success());
    drop(server);

    let snap = snapshot::load(&dir.dump())
        .expect("the snapshot left by a SIGKILL is valid")
        .expect("a snapshot exists");
    let logged_keys: usize = line
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(snap.entries.len() >= logged_keys.min(5_000), "{line}");

    let server = Server::start(&dir.0, &["--checkpoint-every", "0"]);
    let mut client = server.client();
    check_keys(&mut client, "a:", 0..5_000);
}

#[test]
fn corrupt_snapshot_refuses_to_start() {
    let dir = TempDir::new("corrupt");
    {
        let mut server = Server::start(&dir.0, &["--checkpoint-every", "0"]);
        let mut client = server.client();
        set_keys(&mut client, "k:", 0..100);
        assert_eq!(client.call(&[b"SAVE"]), ok());
        server.signal(libc::SIGTERM);
        assert!(server.wait_exit().success());
    }
    let good = std::fs::read(dir.dump()).unwrap();

    let refuse = |bytes: &[u8], want: &str| {
        std::fs::write(dir.dump(), bytes).unwrap();
        let out = Command::new(BIN)
            .args(["--port", "0", "--dir"])
            .arg(&dir.0)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started despite {want}");
        let expected = format!("error: {}: {want}", dir.dump().display());
        assert!(
            stderr.contains(&expected),
            "stderr {stderr:?} lacks {expected:?}"
        );
    };
    let cut = good.len() - 10;
    refuse(&good[..cut], &format!("truncated at byte {cut}"));
    let mut flipped = good.clone();
    flipped[60] ^= 1;
    refuse(&flipped, "CRC mismatch");
    refuse(b"not a snapshot at all", "bad magic");

    // Asked to, it starts empty and keeps the bad file aside.
    std::fs::write(dir.dump(), &good[..cut]).unwrap();
    let server = Server::start(&dir.0, &["--ignore-corrupt-snapshot"]);
    assert_eq!(server.client().call(&[b"DBSIZE"]), Reply::Int(0));
    let aside = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("dump.kv.corrupt-")
        });
    assert!(aside, "the corrupt file was not kept");
}

#[test]
fn malformed_resp_closes_only_that_connection() {
    let dir = TempDir::new("malformed");
    let server = Server::start(&dir.0, &[]);
    let mut good = server.client();
    assert_eq!(good.call(&[b"SET", b"k", b"v"]), ok());

    let mut bad = server.client();
    bad.writer.write_all(b"*1\r\n$x\r\n").unwrap();
    match bad.read() {
        Reply::Error(msg) => assert!(msg.starts_with("Protocol error"), "{msg}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(bad.is_closed());

    // Inline commands, as redis-cli sends them, and the other client is fine.
    good.writer.write_all(b"PING\r\n").unwrap();
    assert_eq!(good.read(), Reply::Simple("PONG".into()));
    assert_eq!(good.call(&[b"GET", b"k"]), bulk("v"));
    assert_eq!(
        good.call(&[b"NOPE"]),
        Reply::Error("ERR unknown command 'NOPE'".into())
    );
    let mut third = server.client();
    assert_eq!(third.call(&[b"EXISTS", b"k"]), Reply::Int(1));
    assert_eq!(third.call(&[b"QUIT"]), ok());
    assert!(third.is_closed());
}

#[test]
fn every_snapshot_holds_acknowledged_counts() {
    const CLIENTS: usize = 50;
    const INCRS: u64 = 1000;
    let dir = TempDir::new("incr");
    let server = Server::start(&dir.0, &["--checkpoint-every", "0.05"]);
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..CLIENTS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));

    // Reads every new snapshot while the clients run, recording the acks seen
    // just after reading it (a snapshot was captured before it was read).
    let watcher = {
        let (acked, done, path) = (acked.clone(), done.clone(), dir.dump());
        thread::spawn(move || {
            let mut seen: Vec<(Vec<u8>, Vec<u64>)> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Ok(bytes) = std::fs::read(&path) {
                    let acks = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
                    if !matches!(seen.last(), Some((b, _)) if *b == bytes) {
                        seen.push((bytes, acks));
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
            seen
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (acked, addr) = (acked.clone(), server.addr);
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let key = format!("counter:{i}");
                for n in 1..=INCRS {
                    assert_eq!(
                        client.call(&[b"INCR", key.as_bytes()]),
                        Reply::Int(n as i64)
                    );
                    acked[i].store(n, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(server.client().call(&[b"SAVE"]), ok());
    thread::sleep(Duration::from_millis(50));
    done.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    eprintln!("{} distinct snapshots checked", seen.len());
    assert!(seen.len() >= 3, "only {} snapshots seen", seen.len());

    let mut last: HashMap<String, u64> = HashMap::new();
    for (bytes, acks) in &seen {
        let snap = snapshot::decode(bytes).expect("every snapshot is valid");
        for (key, value) in &snap.entries {
            let key = String::from_utf8(key.to_vec()).unwrap();
            let i: usize = key["counter:".len()..].parse().unwrap();
            let v: u64 = std::str::from_utf8(&value.data).unwrap().parse().unwrap();
            // A value this client was (or, for its one command in flight, was
            // about to be) acknowledged: never more, never a torn one.
            assert!(
                (1..=acks[i] + 1).contains(&v),
                "{key}={v} but {} acked",
                acks[i]
            );
            assert!(v >= *last.get(&key).unwrap_or(&0), "{key} went backwards");
            last.insert(key, v);
        }
    }
    let (final_bytes, _) = seen.last().unwrap();
    let final_snap = snapshot::decode(final_bytes).unwrap();
    assert_eq!(final_snap.entries.len(), CLIENTS);
    assert!(final_snap
        .entries
        .iter()
        .all(|(_, v)| &v.data[..] == INCRS.to_string().as_bytes()));
}

#[test]
fn bad_flags_exit_2_with_the_reason() {
    let out = Command::new(BIN).args(["--port", "http"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: --port: invalid value 'http'"),
        "{stderr}"
    );
    assert!(stderr.contains("usage: safepoint-kv"), "{stderr}");
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--checkpoint-every"));
}

#[test]
fn info_reports_checkpoints() {
    let dir = TempDir::new("info");
    let server = Server::start(&dir.0, &["--checkpoint-every", "0"]);
    let mut client = server.client();
    assert_eq!(client.call(&[b"SET", b"a", b"1", b"EX", b"100"]), ok());
    assert_eq!(client.call(&[b"SAVE"]), ok());
    let Reply::Bulk(Some(info)) = client.call(&[b"INFO", b"persistence"]) else {
        panic!("INFO is a bulk string")
    };
    let info = String::from_utf8(info).unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} missing from {info}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(field("keys"), 1);
    assert_eq!(field("checkpoints_taken"), 1);
    assert!(field("rdb_last_save_time") > 1_600_000_000);
    assert!(field("pause_max_us") >= field("pause_p50_us"));
    assert_eq!(client.call(&[b"COMMAND", b"DOCS"]), Reply::Array(vec![]));
}
