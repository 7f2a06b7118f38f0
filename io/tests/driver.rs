//! The driver contract the runtime relies on: enter guards, unpark, turning on
//! one thread while futures are polled on others, waiter accounting, and the
//! message outside a runtime.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use safepoint_io::driver::{Config, Driver, Handle};
use safepoint_io::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use safepoint_io::time::{sleep, timeout};

use common::{block_on, block_on_remote, block_on_with, counting_waker};

fn panic_message(err: &(dyn std::any::Any + Send)) -> String {
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

#[test]
fn enter_guards_nest_and_restore() {
    let a = Driver::new(Config::default()).unwrap();
    let b = Driver::new(Config::default()).unwrap();
    assert!(Handle::try_current().is_none());
    let ga = a.handle().enter();
    assert!(Handle::try_current().unwrap().ptr_eq(&a.handle()));
    {
        let _gb = b.handle().enter();
        assert!(Handle::try_current().unwrap().ptr_eq(&b.handle()));
    }
    assert!(Handle::try_current().unwrap().ptr_eq(&a.handle()));
    drop(ga);
    assert!(Handle::try_current().is_none());
}

#[test]
fn outside_a_runtime_panics_with_a_clear_message() {
    let err = std::panic::catch_unwind(|| sleep(Duration::from_millis(1))).unwrap_err();
    let msg = panic_message(&*err);
    assert!(
        msg.contains("there is no safepoint runtime on this thread"),
        "{msg}"
    );
    assert!(msg.contains("Runtime::block_on"), "{msg}");
    // Instant::now works anywhere.
    let _ = safepoint_io::time::Instant::now();
}

#[test]
fn disabled_time_panics_clearly() {
    let driver = Driver::new(Config {
        enable_time: false,
        ..Config::default()
    })
    .unwrap();
    let h = driver.handle();
    assert!(!h.time_enabled() && h.io_enabled());
    let _g = h.enter();
    let err = std::panic::catch_unwind(|| sleep(Duration::from_millis(1))).unwrap_err();
    let msg = panic_message(&*err);
    assert!(msg.contains("timers are disabled"), "{msg}");
}

#[test]
fn unpark_interrupts_a_blocked_turn_and_is_remembered() {
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    // Remembered: an unpark before the turn makes it return at once.
    handle.unpark();
    let start = std::time::Instant::now();
    driver.turn(None);
    assert!(start.elapsed() < Duration::from_millis(500));
    // Interrupts: from another thread while blocked.
    let h = handle.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        h.unpark();
    });
    let start = std::time::Instant::now();
    driver.turn(None);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_secs(5),
        "{took:?}"
    );
    t.join().unwrap();
}

#[test]
fn futures_polled_on_other_threads_while_one_thread_turns() {
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    let addr = block_on_with(&mut driver, async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    });
    let (listener, addr) = addr;
    let listener = Arc::new(listener);
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let handle = handle.clone();
            let listener = listener.clone();
            std::thread::spawn(move || {
                block_on_remote(&handle, async move {
                    sleep(Duration::from_millis(10 + i)).await;
                    let server = async {
                        let (mut s, _) = listener.accept().await.unwrap();
                        let mut b = [0u8; 5];
                        s.read_exact(&mut b).await.unwrap();
                        s.write_all(&b).await.unwrap();
                    };
                    let client = async {
                        let mut c = TcpStream::connect(addr).await.unwrap();
                        c.write_all(b"howdy").await.unwrap();
                        let mut b = [0u8; 5];
                        c.read_exact(&mut b).await.unwrap();
                        assert_eq!(&b, b"howdy");
                    };
                    futures::future::join(server, client).await;
                })
            })
        })
        .collect();
    let d = done.clone();
    let h = handle.clone();
    let watcher = std::thread::spawn(move || {
        for w in workers {
            w.join().unwrap();
        }
        d.store(true, Ordering::SeqCst);
        h.unpark();
    });
    let start = std::time::Instant::now();
    while !done.load(Ordering::SeqCst) {
        driver.turn(None);
        assert!(start.elapsed() < Duration::from_secs(10), "stuck");
    }
    watcher.join().unwrap();
}

#[test]
fn io_waiters_counts_real_waits_only() {
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    let _g = handle.enter();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let (mut a, mut b) = UnixStream::pair().unwrap();
    // Let the initial writable events land.
    driver.turn(Some(Duration::ZERO));
    assert_eq!(handle.io_waiters(), 0);
    let mut buf = [0u8; 4];
    {
        let mut read = a.read(&mut buf);
        assert!(Pin::new(&mut read).poll(&mut cx).is_pending());
        assert_eq!(handle.io_waiters(), 1);
    }
    block_on_with(&mut driver, async { b.write_all(b"ping").await.unwrap() });
    driver.turn(Some(Duration::ZERO));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(handle.io_waiters(), 0);
    {
        let mut read = a.read(&mut buf);
        assert!(Pin::new(&mut read).poll(&mut cx).is_ready());
    }
    // An async fn's wait is withdrawn when its future is dropped (timeout).
    let sock = block_on_with(&mut driver, UdpSocket::bind("127.0.0.1:0")).unwrap();
    let r = block_on_with(&mut driver, async {
        let mut buf = [0u8; 8];
        timeout(Duration::from_millis(10), sock.recv_from(&mut buf)).await
    });
    assert!(r.is_err());
    assert_eq!(handle.io_waiters(), 0);
    drop((a, b, sock));
    assert_eq!(handle.io_waiters(), 0);
}

#[test]
fn dropped_registration_with_events_in_flight_is_harmless() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..50 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let (s, _) = listener.accept().await.unwrap();
            c.write_all(b"x").await.unwrap();
            // The server's readable event may be queued when it is dropped; its
            // slab slot is then reused by the next accept.
            drop(s);
        }
    });
}

#[test]
fn shutdown_wakes_waiters_with_an_error() {
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    let _g = handle.enter();
    let (a, _b) = UnixStream::pair().unwrap();
    driver.turn(Some(Duration::ZERO));
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut a = a;
    let mut buf = [0u8; 1];
    let mut read = a.read(&mut buf);
    assert!(Pin::new(&mut read).poll(&mut cx).is_pending());
    drop(driver);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    match Pin::new(&mut read).poll(&mut cx) {
        std::task::Poll::Ready(Err(e)) => assert!(e.to_string().contains("shut down"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn thread_safety_of_public_types() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    fn unpin<T: Unpin>() {}
    send::<Driver>();
    send_sync::<Handle>();
    send_sync::<safepoint_io::time::Clock>();
    send_sync::<safepoint_io::time::Sleep>();
    unpin::<safepoint_io::time::Sleep>();
    send_sync::<safepoint_io::time::Interval>();
    send_sync::<safepoint_io::time::Timeout<std::future::Ready<()>>>();
    send_sync::<TcpStream>();
    send_sync::<TcpListener>();
    send_sync::<safepoint_io::net::tcp::OwnedReadHalf>();
    send_sync::<safepoint_io::net::tcp::OwnedWriteHalf>();
    send_sync::<UdpSocket>();
    send_sync::<UnixStream>();
    send_sync::<safepoint_io::net::UnixListener>();
    send_sync::<safepoint_io::signal::unix::Signal>();
    fn send_future<F: std::future::Future + Send>(_: &F) {}
    let d = Driver::new(Config::default()).unwrap();
    let _g = d.handle().enter();
    send_future(&safepoint_io::signal::ctrl_c());
    send_future(&TcpStream::connect("127.0.0.1:1"));
    send_future(&TcpListener::bind("127.0.0.1:0"));
}
