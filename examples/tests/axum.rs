//! The `axum` example as a real process: JSON routes with state and
//! connection info, and consistent reloads by stopping the world while
//! clients keep reading the configuration; SIGTERM exits 0.
//!
//! The torn-read check does catch a reload that skips the stop: with
//! `install` moved out of the stopped world, a run of this test sees
//! `consistent: false` within its twenty reloads.

mod common;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{post_json, request, Server, WAIT};
use serde_json::Value;

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn reloads_under_load_are_consistent_and_report_the_pause() {
    const RELOADS: u64 = 20;
    let mut server = Server::start("axum");
    let addr = server.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (stop, reads) = (stop.clone(), reads.clone());
            thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_read_timeout(Some(WAIT)).unwrap();
                let me = conn.local_addr().unwrap().to_string();
                let mut last_version = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _, body) = request(&mut conn, "/config");
                    assert_eq!(status, "HTTP/1.1 200 OK");
                    let v = json(&body);
                    assert_eq!(v["consistent"], true, "torn read: {v}");
                    assert_eq!(v["client"], me.as_str(), "connection info: {v}");
                    let version = v["version"].as_u64().unwrap();
                    assert!(version >= last_version, "went back in time: {v}");
                    last_version = version;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let mut admin = TcpStream::connect(addr).unwrap();
    admin.set_read_timeout(Some(WAIT)).unwrap();
    for i in 0..RELOADS {
        thread::sleep(Duration::from_millis(10));
        let (status, _, body) = post_json(
            &mut admin,
            "/reload",
            &format!(r#"{{"greeting":"Hi {i}"}}"#),
        );
        assert_eq!(
            status,
            "HTTP/1.1 200 OK",
            "{}",
            String::from_utf8_lossy(&body)
        );
        let r = json(&body);
        assert_eq!(r["version"].as_u64(), Some(i + 2), "{r}");
        let ttsp = r["time_to_stop_us"].as_u64().unwrap();
        assert!(ttsp < 2_000_000, "{r}");
        assert!(r["tasks"].as_u64().unwrap() >= 1, "{r}");
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);

    let (_, _, body) = request(&mut admin, "/config");
    let v = json(&body);
    assert_eq!(v["version"].as_u64(), Some(RELOADS + 1));
    assert_eq!(v["greeting"], format!("Hi {}", RELOADS - 1));
    assert!(v["page_bytes"].as_u64().unwrap() > 50_000, "{v}");

    // Bad input gets a clear status, not a hang.
    let (status, _, _) = post_json(&mut admin, "/reload", r#"{"greeting":""}"#);
    assert_eq!(status, "HTTP/1.1 422 Unprocessable Entity");
    let (status, _, _) = post_json(&mut admin, "/reload", "not json");
    assert!(status.starts_with("HTTP/1.1 4"), "{status}");

    let (_, _, body) = request(&mut admin, "/");
    assert_eq!(body, b"Hello, World!");

    server.sigterm();
    assert_eq!(server.wait_exit().code(), Some(0));
    let lines: Vec<String> = server.lines.try_iter().collect();
    assert!(
        lines.iter().filter(|l| l.contains("reload to v")).count() == RELOADS as usize,
        "{lines:?}"
    );
}
