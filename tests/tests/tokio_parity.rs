//! What tokio's own runtime tests expect, ported where the API maps
//! (`rt_common`, `rt_threaded`, `task_abort`, `rt_panic`): each of these
//! failed, hung or aborted the process on safepoint before it was fixed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use safepoint::task::yield_now;
use safepoint::{Builder, Runtime};
use safepoint_tests::{panic_message, rt, watchdog};

const LIMIT: Duration = Duration::from_secs(60);

/// tokio's `ping_pong_saturation`: a task that yields runs again within a
/// bounded number of polls even while other tasks keep each other runnable
/// (before: it printed its first line and never finished).
#[test]
fn a_yielding_task_is_not_starved_by_tasks_that_keep_each_other_busy() {
    for (workers, pairs) in [(1, 1), (4, 4)] {
        watchdog(LIMIT, move || {
            let rt = rt(workers);
            let stop = Arc::new(AtomicBool::new(false));
            for _ in 0..pairs {
                let (a_tx, mut a_rx) = futures::channel::mpsc::unbounded::<()>();
                let (b_tx, mut b_rx) = futures::channel::mpsc::unbounded::<()>();
                let (s1, s2) = (stop.clone(), stop.clone());
                use futures::StreamExt;
                rt.spawn(async move {
                    while !s1.load(SeqCst) && a_rx.next().await.is_some() {
                        let _ = b_tx.unbounded_send(());
                    }
                });
                let a_tx2 = a_tx.clone();
                rt.spawn(async move {
                    while !s2.load(SeqCst) && b_rx.next().await.is_some() {
                        let _ = a_tx2.unbounded_send(());
                    }
                });
                a_tx.unbounded_send(()).unwrap();
            }
            let yielder = rt.spawn(async {
                for _ in 0..5 {
                    yield_now().await;
                }
            });
            rt.block_on(yielder).unwrap();
            stop.store(true, SeqCst);
        });
    }
}

/// tokio's `yield_defers_until_park` as this issue measured it: with one
/// worker, a task yielding in a loop sees a connection that is already
/// pending after a yield or two (before: about 30), because the driver is
/// polled before yielded tasks run again.
#[test]
fn a_yield_lets_the_driver_be_polled_before_the_task_runs_again() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let yields = rt.block_on(async {
            safepoint::spawn(async {
                let listener = safepoint::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .unwrap();
                let addr = listener.local_addr().unwrap();
                let accept = listener.accept();
                futures::pin_mut!(accept);
                // Registers interest; nothing is pending yet.
                assert!(futures::poll!(accept.as_mut()).is_pending());
                let client = std::net::TcpStream::connect(addr).unwrap();
                let mut yields = 0;
                loop {
                    if let Poll::Ready(r) = futures::poll!(accept.as_mut()) {
                        r.unwrap();
                        break;
                    }
                    yield_now().await;
                    yields += 1;
                }
                drop(client);
                yields
            })
            .await
            .unwrap()
        });
        assert!(
            yields <= 3,
            "the pending connection was seen after {yields} yields"
        );
    });
}

/// tokio's `runtime_in_thread_local`: dropping a runtime from a
/// thread-local destructor works (before: "thread local panicked on drop",
/// and the process aborted).
#[test]
fn a_runtime_dropped_from_a_thread_local_destructor() {
    watchdog(LIMIT, || {
        thread_local! {
            static RT: std::cell::RefCell<Option<Runtime>> = const { std::cell::RefCell::new(None) };
        }
        std::thread::spawn(|| {
            RT.with(|cell| *cell.borrow_mut() = Some(rt(1)));
            let other = rt(1);
            assert_eq!(other.block_on(async { 4 }), 4);
            drop(other);
        })
        .join()
        .unwrap();
    });
}

/// tokio panics with "EnterGuard values dropped out of order" (before: the
/// stale runtime stayed current, and a spawn silently yielded a cancelled
/// task once it was dropped).
#[test]
fn enter_guards_dropped_out_of_order_panic() {
    watchdog(LIMIT, || {
        let (rt1, rt2) = (rt(1), rt(1));
        let e1 = rt1.enter();
        let e2 = rt2.enter();
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(e1)))
            .expect_err("dropping the outer guard first must panic");
        assert!(
            panic_message(&*err).contains("EnterGuard values dropped out of order"),
            "{}",
            panic_message(&*err)
        );
        drop(e2);
        // In order, nesting works and restores (on a thread of its own: the
        // state after the misuse above is not specified).
        let (rt1, rt2) = (Arc::new(rt1), Arc::new(rt2));
        std::thread::spawn(move || {
            {
                let _a = rt1.enter();
                let _b = rt2.enter();
            }
            assert!(safepoint::Handle::try_current().is_err());
        })
        .join()
        .unwrap();
    });
}

struct Boom(Option<futures::channel::oneshot::Sender<bool>>);

impl Future for Boom {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        panic!("boom in poll");
    }
}

impl Drop for Boom {
    fn drop(&mut self) {
        let _ = self.0.take().unwrap().send(std::thread::panicking());
    }
}

/// tokio's `panic_in_task`: a future that panics in `poll` is dropped while
/// the panic unwinds, so its destructor sees `std::thread::panicking()`
/// (before: false, and tokio's version of this test aborted the process).
#[test]
fn a_panicking_task_is_dropped_during_the_unwind() {
    watchdog(LIMIT, || {
        let rt = rt(1);
        let (tx, rx) = futures::channel::oneshot::channel();
        let h = rt.spawn(Boom(Some(tx)));
        assert!(rt.block_on(rx).unwrap(), "not panicking in Drop");
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_panic());
        // tokio's Debug shape, which logs and tests grep for.
        assert_eq!(
            format!("{err:?}"),
            format!("JoinError::Panic({:?}, \"boom in poll\", ...)", err.id())
        );
    });
}

/// `JoinError`'s Debug for a cancelled task, and for a panic whose payload
/// is not a string, match tokio's.
#[test]
fn join_error_debug_has_tokios_shape() {
    let rt = rt(1);
    let h = rt.spawn(std::future::pending::<()>());
    let id = h.id();
    h.abort();
    let err = rt.block_on(h).unwrap_err();
    assert_eq!(format!("{err:?}"), format!("JoinError::Cancelled({id:?})"));
    let h = rt.spawn(async { std::panic::panic_any(5_u32) });
    let id = h.id();
    let err = rt.block_on(h).unwrap_err();
    assert_eq!(format!("{err:?}"), format!("JoinError::Panic({id:?}, ...)"));
}

/// Dropping a runtime inside another runtime's `block_on` panics, as in
/// tokio (before: it blocked there, joining threads inside a future).
#[test]
fn dropping_a_runtime_inside_block_on_panics() {
    watchdog(LIMIT, || {
        let outer = rt(1);
        let inner = rt(1);
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            outer.block_on(async move { drop(inner) })
        }))
        .expect_err("must panic");
        assert!(
            panic_message(&*err).contains("Cannot drop a runtime"),
            "{}",
            panic_message(&*err)
        );
    });
}

/// tokio's `unawaited_blocking_task_wakes_paused_runtime`, on the
/// deterministic flavour: an unawaited blocking job and a virtual sleep do
/// not hang `block_on` (before: hung forever).
#[test]
fn an_unawaited_blocking_job_does_not_hang_a_virtual_sleep() {
    watchdog(LIMIT, || {
        let rt = Builder::new_deterministic(9).build().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        rt.block_on(async move {
            let _h = safepoint::spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(20));
                d.fetch_add(1, SeqCst);
            });
            safepoint::time::sleep(Duration::from_secs(60)).await;
        });
        assert_eq!(done.load(SeqCst), 1);
    });
}

/// A spawn from outside a runtime and `into_panic` on a cancelled error
/// panic at the caller's line (`#[track_caller]`), not inside safepoint.
#[test]
fn misuse_panics_point_at_the_callers_line() {
    let location = Arc::new(std::sync::Mutex::new(None::<String>));
    let l = location.clone();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("track-caller") {
            *l.lock().unwrap() = info.location().map(|l| l.file().to_owned());
        }
    }));
    let spawn_site = std::thread::Builder::new()
        .name("track-caller".into())
        .spawn({
            let location = location.clone();
            move || {
                let _ = std::panic::catch_unwind(|| drop(safepoint::spawn(async {})));
                let spawn = location.lock().unwrap().take();
                let rt = rt(1);
                let h = rt.spawn(std::future::pending::<()>());
                h.abort();
                let err = rt.block_on(h).unwrap_err();
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    drop(err.into_panic())
                }));
                let into_panic = location.lock().unwrap().take();
                (spawn, into_panic)
            }
        })
        .unwrap()
        .join()
        .unwrap();
    std::panic::set_hook(prev);
    let here = file!();
    assert_eq!(
        spawn_site.0.as_deref(),
        Some(here),
        "spawn outside a runtime"
    );
    assert_eq!(
        spawn_site.1.as_deref(),
        Some(here),
        "into_panic on a cancelled error"
    );
}
