//! End-to-end tests of the `safepoint-kv` binary: each test starts the server as
//! a process on a free port (`--port 0`, the port read from its
//! `listening on` line) with its own data directory, and talks RESP over a
//! plain `std::net::TcpStream` the way a real client does.

mod kv_common;

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use safepoint_examples::kv::snapshot;

use kv_common::*;

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
        Reply::Error(msg) => assert!(msg.starts_with("ERR Protocol error"), "{msg}"),
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
    assert!(info.starts_with("# Persistence"), "{info}");
    let mut field = |name: &str| client.info_field("persistence", name);
    assert_eq!(field("keys"), 1);
    assert_eq!(field("checkpoints_taken"), 1);
    assert!(field("rdb_last_save_time") > 1_600_000_000);
    assert!(field("pause_max_us") >= field("pause_p50_us"));
    assert_eq!(client.call(&[b"COMMAND", b"DOCS"]), Reply::Array(vec![]));
}
