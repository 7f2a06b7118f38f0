//! The tokio compatibility mode (`Builder::enable_tokio_compat`, feature
//! `tokio-compat`): an axum Router whose handlers use `tokio::time::sleep`,
//! behind tower-http's `TimeoutLayer`, driven with `tower::ServiceExt::
//! oneshot` inside a safepoint task; `tokio::net` over real loopback
//! sockets inside our tasks; tokio's handle on blocking threads and in
//! `block_on`; a stop keeps tokio's timer wakes for the resume while what
//! `tokio::spawn` started keeps running (it lives outside our scheduler);
//! without the mode, a clear panic (a `JoinError`), not a hang; and the
//! mode refused on the deterministic flavour.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

use safepoint::Builder;
use safepoint_tests::{panic_message, wait_until, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

fn compat_rt(workers: usize) -> safepoint::Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_tokio_compat()
        .build()
        .unwrap()
}

fn router() -> Router {
    Router::new()
        .route(
            "/sleep",
            get(|State(greeting): State<&'static str>| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                greeting
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "too late"
            }),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(200),
        ))
        .with_state("slept")
}

async fn get_path(app: Router, path: &str) -> (StatusCode, String) {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[test]
fn axum_handler_with_tokio_sleep_and_tower_http_timeout_layer() {
    watchdog(LIMIT, || {
        let rt = compat_rt(2);
        let app = router();
        let a = app.clone();
        let (status, body) = rt
            .block_on(rt.spawn(async move { get_path(a, "/sleep").await }))
            .unwrap();
        assert_eq!((status, body.as_str()), (StatusCode::OK, "slept"));

        // The timeout layer's tokio timer fires inside our task.
        let start = Instant::now();
        let (status, _) = rt
            .block_on(rt.spawn(async move { get_path(app, "/slow").await }))
            .unwrap();
        let took = start.elapsed();
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(20), "{took:?}");
    });
}

#[test]
fn many_concurrent_requests_on_several_workers() {
    watchdog(LIMIT, || {
        let rt = compat_rt(4);
        let app = router();
        let ok = rt.block_on(async move {
            let mut set = safepoint::task::JoinSet::new();
            for _ in 0..200 {
                let app = app.clone();
                set.spawn(async move { get_path(app, "/sleep").await });
            }
            let mut ok = 0;
            while let Some(res) = set.join_next().await {
                let (status, body) = res.unwrap();
                assert_eq!((status, body.as_str()), (StatusCode::OK, "slept"));
                ok += 1;
            }
            ok
        });
        assert_eq!(ok, 200);
    });
}

#[test]
fn tokio_net_over_loopback_inside_safepoint_tasks() {
    watchdog(LIMIT, || {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = compat_rt(2);
        let echoed = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = safepoint::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 11];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            });
            let client = safepoint::spawn(async move {
                let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
                c.write_all(b"hello tokio").await.unwrap();
                let mut buf = vec![0u8; 11];
                c.read_exact(&mut buf).await.unwrap();
                buf
            });
            server.await.unwrap();
            client.await.unwrap()
        });
        assert_eq!(echoed, b"hello tokio");
    });
}

#[test]
fn tokio_is_current_in_block_on_blocking_threads_and_under_enter() {
    watchdog(LIMIT, || {
        let rt = compat_rt(1);
        rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let on_pool =
                safepoint::spawn_blocking(|| tokio::runtime::Handle::try_current().is_ok());
            assert!(on_pool.await.unwrap());
        });
        {
            let _g = rt.enter();
            assert!(tokio::runtime::Handle::try_current().is_ok());
        }
        assert!(tokio::runtime::Handle::try_current().is_err());
        // A runtime built without the mode enters no tokio runtime.
        let plain = safepoint_tests::rt(1);
        let seen =
            plain.block_on(plain.spawn(async { tokio::runtime::Handle::try_current().is_ok() }));
        assert!(!seen.unwrap());
    });
}

#[test]
fn a_stop_keeps_tokio_timer_wakes_while_tokio_spawned_tasks_run_on() {
    watchdog(LIMIT, || {
        const SLEEP: Duration = Duration::from_millis(300);
        let rt = compat_rt(2);
        let fired = Arc::new(AtomicBool::new(false));
        let armed = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let outside = Arc::new(AtomicU64::new(0));
        let (f, a) = (fired.clone(), armed.clone());
        rt.spawn(async move {
            // Noted before the timer is made: its deadline is no earlier.
            *a.lock().unwrap() = Some(Instant::now());
            tokio::time::sleep(SLEEP).await;
            f.store(true, SeqCst);
        });
        let o = outside.clone();
        rt.spawn(async move {
            // Runs on tokio's thread, outside our scheduler.
            tokio::spawn(async move {
                loop {
                    o.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        });
        assert!(wait_until(Duration::from_secs(10), || {
            armed.lock().unwrap().is_some() && outside.load(SeqCst) > 0
        }));
        let world = rt.handle().stop_the_world_blocking();
        let deadline = armed.lock().unwrap().unwrap() + SLEEP;
        if Instant::now() >= deadline {
            // The machine stalled us past the timer before the stop: what
            // this test checks cannot be seen this time.
            eprintln!("skipped: the stop came after the tokio timer's deadline");
            return;
        }
        let before = outside.load(SeqCst);
        // Hold the world until well after the tokio timer has fired.
        std::thread::sleep(deadline - Instant::now() + Duration::from_millis(100));
        assert!(!fired.load(SeqCst), "a task ran during the stop");
        assert!(
            outside.load(SeqCst) > before,
            "tokio::spawn'd work lives outside the stop and keeps running"
        );
        world.resume();
        assert!(wait_until(Duration::from_secs(10), || fired.load(SeqCst)));
    });
}

#[test]
fn without_the_mode_a_tokio_handler_fails_with_a_clear_panic_not_a_hang() {
    watchdog(LIMIT, || {
        let rt = safepoint_tests::rt(2);
        let err = rt
            .block_on(rt.spawn(async { get_path(router(), "/sleep").await }))
            .unwrap_err();
        assert!(err.is_panic());
        let msg = panic_message(&*err.into_panic());
        assert!(msg.contains("Tokio 1.x"), "{msg}");
        // The runtime is fine afterwards.
        assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    });
}

/// Set in the child process of the hint tests below.
const HINT_CHILD: &str = "SAFEPOINT_TOKIO_HINT_CHILD";

/// Runs the test `name` of this binary in a child process (which sees
/// `HINT_CHILD`) and returns its stderr, after checking it passed.
fn run_child(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(HINT_CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn without_the_mode_the_runtime_prints_how_to_turn_it_on() {
    if std::env::var_os(HINT_CHILD).is_some() {
        // The child: a task dies of tokio's "no runtime" panic.
        let rt = safepoint_tests::rt(1);
        let err = rt
            .block_on(rt.spawn(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }))
            .unwrap_err();
        assert!(err.is_panic());
        return;
    }
    let stderr = run_child("without_the_mode_the_runtime_prints_how_to_turn_it_on");
    assert!(stderr.contains("Tokio 1.x runtime"), "{stderr}");
    assert!(
        stderr.contains("called tokio outside a tokio runtime")
            && stderr.contains("Builder::enable_tokio_compat()"),
        "{stderr}"
    );
}

#[test]
fn with_the_mode_no_hint_is_printed_for_other_panics() {
    if std::env::var_os(HINT_CHILD).is_some() {
        let rt = compat_rt(1);
        let err = rt
            .block_on(rt.spawn(async { panic!("plain failure") }))
            .unwrap_err();
        assert!(err.is_panic());
        return;
    }
    let stderr = run_child("with_the_mode_no_hint_is_printed_for_other_panics");
    assert!(stderr.contains("plain failure"), "{stderr}");
    assert!(!stderr.contains("enable_tokio_compat"), "{stderr}");
}

#[test]
fn the_mode_is_refused_on_the_deterministic_flavour() {
    let err = Builder::new_deterministic(1)
        .enable_tokio_compat()
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("enable_tokio_compat"), "{err}");
}
