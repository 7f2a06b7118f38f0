//! The append-only log against the `safepoint-kv` process: SIGKILL under a
//! write load with each fsync policy, a torn last record, corruption in an
//! older generation, truncation at checkpoints, and group commit.

mod kv_common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kv_common::*;

const CLIENTS: usize = 8;

/// Log files in `dir`, by generation.
fn log_files(dir: &std::path::Path) -> Vec<(u64, u64)> {
    let mut files: Vec<(u64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let gen = name
                .strip_prefix("appendonly-")?
                .strip_suffix(".kv")?
                .parse()
                .ok()?;
            Some((gen, e.metadata().ok()?.len()))
        })
        .collect();
    files.sort_unstable();
    files
}

/// Runs CLIENTS threads INCRing `counter:<i>` until the server dies,
/// SIGKILLs it after `load_for` (and at least two checkpoints), and returns
/// the acknowledged counts sampled every 50 ms, the last sample taken just
/// before the kill.
fn incr_until_killed(server: &mut Server, load_for: Duration) -> Vec<(Instant, Vec<u64>)> {
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..CLIENTS).map(|_| AtomicU64::new(0)).collect());
    let dead = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (acked, dead, addr) = (acked.clone(), dead.clone(), server.addr);
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let key = format!("counter:{i}");
                for n in 1.. {
                    match client.try_int(&[b"INCR", key.as_bytes()]) {
                        Some(got) => {
                            assert_eq!(got, n, "{key}");
                            acked[i].store(n as u64, Ordering::SeqCst);
                        }
                        None => {
                            assert!(dead.load(Ordering::SeqCst), "{key}: failed before the kill");
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    server.wait_for_line(|l| l.starts_with("checkpoint "));
    server.wait_for_line(|l| l.starts_with("checkpoint "));
    let mut samples = Vec::new();
    while started.elapsed() < load_for {
        samples.push((
            Instant::now(),
            acked.iter().map(|a| a.load(Ordering::SeqCst)).collect(),
        ));
        thread::sleep(Duration::from_millis(50));
    }
    samples.push((
        Instant::now(),
        acked.iter().map(|a| a.load(Ordering::SeqCst)).collect(),
    ));
    dead.store(true, Ordering::SeqCst);
    server.signal(libc::SIGKILL);
    for c in clients {
        c.join().unwrap();
    }
    assert!(!server.wait_exit().success());
    samples
}

fn counters_after_restart(dir: &std::path::Path) -> Vec<u64> {
    let server = Server::start(dir, &["--appendonly", "yes", "--checkpoint-every", "0"]);
    let mut client = server.client();
    (0..CLIENTS)
        .map(
            |i| match client.call(&[b"GET", format!("counter:{i}").as_bytes()]) {
                Reply::Bulk(Some(v)) => String::from_utf8(v).unwrap().parse().unwrap(),
                Reply::Bulk(None) => 0,
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

/// Starts a server with the log on (`appendfsync` as given) and a
/// checkpoint every 0.2 s (so the kill comes after log cuts), SIGKILLs it
/// under an INCR load after `load_for`, restarts it, and returns the
/// acknowledged samples and the counters restored.
fn kill_and_restore(appendfsync: &str, load_for: Duration) -> (Vec<(Instant, Vec<u64>)>, Vec<u64>) {
    let flags = ["--appendonly", "yes", "--checkpoint-every", "0.2"];
    let (dir, mut server) = started(
        &format!("aof-{appendfsync}"),
        &[&flags[..], &["--appendfsync", appendfsync]].concat(),
    );
    let samples = incr_until_killed(&mut server, load_for);
    drop(server);
    let restored = counters_after_restart(&dir.0);
    eprintln!(
        "acknowledged {:?}, restored {restored:?}",
        samples.last().unwrap().1
    );
    (samples, restored)
}

#[test]
fn sigkill_with_appendfsync_always_loses_no_acknowledged_write() {
    let (samples, restored) = kill_and_restore("always", Duration::from_millis(1500));
    let (_, acked) = samples.last().unwrap();
    for i in 0..CLIENTS {
        // Never less than acknowledged; at most the one INCR in flight more.
        assert!(
            (acked[i]..=acked[i] + 1).contains(&restored[i]),
            "counter:{i}: {} acknowledged, {} restored",
            acked[i],
            restored[i]
        );
    }
    assert!(acked.iter().sum::<u64>() > 100, "too little load to tell");
}

#[test]
fn sigkill_with_appendfsync_everysec_loses_at_most_a_second() {
    let (samples, restored) = kill_and_restore("everysec", Duration::from_millis(2500));
    let (killed_at, acked) = samples.last().unwrap();
    let (_, a_second_before) = samples
        .iter()
        .rev()
        .find(|(at, _)| killed_at.duration_since(*at) >= Duration::from_millis(1100))
        .expect("samples reach back over a second");
    for i in 0..CLIENTS {
        assert!(
            restored[i] >= a_second_before[i] && restored[i] <= acked[i] + 1,
            "counter:{i}: {} acknowledged ({} a second before), {} restored",
            acked[i],
            a_second_before[i],
            restored[i]
        );
    }
}

#[test]
fn a_torn_last_record_is_cut_with_a_message_and_older_corruption_refused() {
    let dir = TempDir::new("aof-torn");
    let flags = [
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--checkpoint-every",
        "0",
    ];
    let mut server = Server::start(&dir.0, &flags);
    let mut client = server.client();
    set_keys(&mut client, "k:", 0..100);
    server.signal(libc::SIGKILL);
    server.wait_exit();
    drop(server);
    let files = log_files(&dir.0);
    let &(gen, len) = files.last().unwrap();
    let path = dir.0.join(format!("appendonly-{gen}.kv"));
    // Half a record: a header announcing 64 bytes, then 5 of them.
    let mut torn = std::fs::read(&path).unwrap();
    torn.extend_from_slice(&64u32.to_le_bytes());
    torn.extend_from_slice(&[1, 2, 3, 4, 0, 1, 2, 3, 4]);
    std::fs::write(&path, &torn).unwrap();

    let mut server = Server::start(&dir.0, &flags);
    let line = server.wait_for_line(|l| l.contains("torn last record"));
    assert!(
        line.contains(&format!("cut 13 bytes at byte {len}")),
        "{line}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    let mut client = server.client();
    check_keys(&mut client, "k:", 0..100);
    server.signal(libc::SIGKILL);
    server.wait_exit();
    drop(server);

    // The same damage in a generation that is not the last is corruption.
    assert!(log_files(&dir.0).len() >= 2);
    let mut bad = std::fs::read(&path).unwrap();
    bad[20] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--port", "0", "--appendonly", "yes", "--dir"])
        .arg(&dir.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("corrupt append-only log") && stderr.contains("checksum mismatch"),
        "{stderr}"
    );
}

#[test]
fn each_checkpoint_truncates_the_log() {
    let dir = TempDir::new("aof-truncate");
    // `always`: the SIGKILL below must not take the last writes with it.
    let flags = "--appendonly yes --appendfsync always --checkpoint-every 0";
    let flags: Vec<&str> = flags.split(' ').collect();
    let mut server = Server::start(&dir.0, &flags);
    let mut client = server.client();
    set_keys(&mut client, "a:", 0..2000);
    let before: u64 = log_files(&dir.0).iter().map(|f| f.1).sum();
    assert!(before > 2000 * 20, "{before} bytes logged");
    assert_eq!(client.call(&[b"SAVE"]), ok());
    set_keys(&mut client, "b:", 0..10);
    // The writer deletes what the snapshot covers once it is durable.
    let deadline = Instant::now() + WAIT;
    loop {
        let total: u64 = log_files(&dir.0).iter().map(|f| f.1).sum();
        if total < 2000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "log still {total} bytes after SAVE"
        );
        thread::sleep(Duration::from_millis(20));
    }
    server.signal(libc::SIGKILL);
    server.wait_exit();
    drop(server);
    // Snapshot plus what came after the cut.
    let server = Server::start(&dir.0, &flags);
    let mut client = server.client();
    assert_eq!(client.call(&[b"DBSIZE"]), Reply::Int(2010));
    check_keys(&mut client, "a:", 0..2000);
    check_keys(&mut client, "b:", 0..10);
}

#[test]
fn always_shares_fsyncs_between_clients() {
    let always = "--appendonly yes --appendfsync always --checkpoint-every 0";
    let flags: Vec<&str> = always.split(' ').collect();
    let (_dir, server) = started("aof-group", &flags);
    const WRITERS: usize = 32;
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let addr = server.addr;
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                for n in 1..=50 {
                    assert_eq!(
                        client.call(&[b"INCR", format!("c{i}").as_bytes()]),
                        Reply::Int(n)
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut client = server.client();
    let appends = client.info_field("persistence", "aof_appends");
    let fsyncs = client.info_field("persistence", "aof_fsyncs");
    eprintln!("{appends} appends, {fsyncs} fsyncs");
    assert_eq!(appends, (WRITERS * 50) as u64);
    // One fsync per write would be serialising the clients.
    assert!(fsyncs * 2 < appends, "{fsyncs} fsyncs for {appends} writes");
}
