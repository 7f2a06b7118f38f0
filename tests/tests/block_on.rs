//! `Runtime::block_on` reuses one waker per thread and runtime across calls
//! (no allocation, no census lock per call). What that must not change: a
//! wake after a call returned counts nothing (a stop and quiescence are
//! still reached), a stale waker woken during a later call is only a
//! spurious wake for it, a stop counts exactly the calls in progress, and a
//! thread's cached waker does not mix two runtimes up, nor act on one
//! that was dropped.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use safepoint_tests::{rt, watchdog};

const LIMIT: Duration = Duration::from_secs(60);
const STOP: Duration = Duration::from_secs(10);

/// The waker of a `block_on` call on `rt` that has returned.
fn waker_of_a_finished_call(rt: &safepoint::Runtime) -> Waker {
    rt.block_on(poll_fn(|cx: &mut Context<'_>| {
        Poll::Ready(cx.waker().clone())
    }))
}

/// A stop is reached (nothing left counted runnable) and counts no task.
fn assert_nothing_counted(rt: &safepoint::Runtime) {
    let world = rt
        .handle()
        .stop_the_world_blocking_timeout(STOP)
        .expect("a block_on count was left behind: the world cannot stop");
    assert_eq!(world.report().tasks, 0, "a finished block_on still counted");
}

#[test]
fn a_wake_after_the_call_returned_counts_nothing() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let waker = waker_of_a_finished_call(&rt);
        // From another thread, as a timer or a handle would.
        std::thread::spawn(move || {
            waker.wake_by_ref();
            waker.wake();
        })
        .join()
        .unwrap();
        // Had the wake counted the finished future runnable, no stop could
        // ever be declared (nobody would poll it to uncount it).
        assert_nothing_counted(&rt);
    });
}

#[test]
fn a_stale_waker_woken_during_the_next_call_is_a_spurious_wake() {
    watchdog(LIMIT, || {
        let rt = Arc::new(rt(2));
        let stale = waker_of_a_finished_call(&rt);
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let (in_call_tx, in_call_rx) = mpsc::channel();
        let rt2 = rt.clone();
        let helper = std::thread::spawn(move || {
            in_call_rx.recv().unwrap();
            // The call is in progress and blocked on the channel: a stop
            // counts it (and only it) as a live task.
            let world = rt2
                .handle()
                .stop_the_world_blocking_timeout(STOP)
                .expect("stop with one block_on call waiting");
            assert_eq!(world.report().tasks, 1, "the call in progress, once");
            drop(world);
            // The earlier call's waker, woken now: one extra poll.
            stale.wake();
            tx.send(7).unwrap();
        });
        let mut polls = 0;
        let mut rx = rx;
        let got = rt.block_on(poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                in_call_tx.send(()).unwrap();
            }
            Pin::new(&mut rx).poll(cx)
        }));
        assert_eq!(got.unwrap(), 7);
        assert!(polls >= 2, "polled {polls} times");
        helper.join().unwrap();
        assert_nothing_counted(&rt);
    });
}

#[test]
fn one_thread_alternates_runtimes_and_outlives_one() {
    watchdog(LIMIT, || {
        let a = rt(1);
        let b = rt(1);
        for i in 0..3u32 {
            assert_eq!(a.block_on(a.spawn(async move { i })).unwrap(), i);
            assert_eq!(b.block_on(b.spawn(async move { i + 1 })).unwrap(), i + 1);
        }
        let stale = waker_of_a_finished_call(&a);
        // The thread's cached waker points at `a`, weakly: a late wake after
        // `a` is gone must do nothing.
        drop(a);
        stale.wake();
        assert_eq!(b.block_on(b.spawn(async { 5 })).unwrap(), 5);
        assert_nothing_counted(&b);
    });
}

#[test]
fn a_panicking_block_on_future_leaves_the_next_call_working() {
    watchdog(LIMIT, || {
        let rt = rt(2);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                safepoint::task::yield_now().await;
                panic!("boom");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
        assert_nothing_counted(&rt);
    });
}
