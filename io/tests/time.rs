//! Timers: precision, volume, cancellation, timeouts, intervals, virtual time,
//! and the cost of an idle turn.

mod common;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::join_all;
use safepoint_io::driver::{Config, Driver};
use safepoint_io::net::{TcpListener, TcpStream};
use safepoint_io::time::{
    interval, sleep, sleep_until, timeout, Clock, Elapsed, Instant, MissedTickBehavior,
};

use common::{block_on, block_on_with, counting_waker, thread_cpu_micros};

#[test]
fn sleep_never_wakes_early() {
    block_on(async {
        for ms in [1u64, 2, 10, 10, 10, 15] {
            let start = std::time::Instant::now();
            sleep(Duration::from_millis(ms)).await;
            let took = start.elapsed();
            assert!(
                took >= Duration::from_millis(ms),
                "sleep({ms}ms) took {took:?}"
            );
            assert!(
                took < Duration::from_millis(ms + 200),
                "sleep({ms}ms) took {took:?}"
            );
        }
        // A deadline in the past completes at once.
        sleep_until(Instant::now() - Duration::from_millis(5)).await;
    });
}

#[test]
fn hundred_thousand_timers_half_cancelled() {
    const N: usize = 100_000;
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    let start = std::time::Instant::now();
    block_on_with(&mut driver, async {
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut sleeps: Vec<_> = (0..N)
            .map(|i| sleep(Duration::from_millis(200 + (i % 50) as u64)))
            .collect();
        // Registration is lazy: nothing is in the wheel until the first poll.
        assert_eq!(handle.pending_timers(), 0);
        for s in &mut sleeps {
            assert!(Pin::new(s).poll(&mut cx).is_pending());
        }
        assert_eq!(handle.pending_timers(), N);
        let kept: Vec<_> = sleeps
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| (i % 2 == 0).then_some(s))
            .collect();
        assert_eq!(handle.pending_timers(), N / 2);
        join_all(kept).await;
        assert_eq!(handle.pending_timers(), 0);
    });
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(249), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn timeout_drops_inner_future() {
    block_on(async {
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(dropped.clone());
        let inner = async move {
            let _guard = guard;
            std::future::pending::<()>().await
        };
        let mut t = pin!(timeout(Duration::from_millis(20), inner));
        let res = t.as_mut().await;
        assert_eq!(res, Err(Elapsed::new()));
        // Dropped at the deadline, not only when the Timeout is.
        assert!(dropped.load(Ordering::SeqCst));
        let io_err: std::io::Error = res.unwrap_err().into();
        assert_eq!(io_err.kind(), std::io::ErrorKind::TimedOut);

        let ok = timeout(Duration::from_secs(5), async { 42 }).await;
        assert_eq!(ok, Ok(42));
    });
}

/// Builds a driver on a virtual clock and enters it.
fn virtual_driver() -> (Driver, Clock) {
    let clock = Clock::new_virtual();
    let driver = Driver::new(Config {
        clock: clock.clone(),
        ..Config::default()
    })
    .unwrap();
    (driver, clock)
}

#[test]
fn virtual_clock_sleep_fires_only_after_advance_and_turn() {
    let (mut driver, clock) = virtual_driver();
    let handle = driver.handle();
    let _g = handle.enter();
    let start = clock.now();
    assert_eq!(
        Instant::now(),
        start,
        "Instant::now reads the virtual clock"
    );
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut s = sleep(Duration::from_secs(3600));
    assert!(Pin::new(&mut s).poll(&mut cx).is_pending());
    assert_eq!(
        handle.next_timer_deadline(),
        Some(start + Duration::from_secs(3600))
    );
    driver.turn(Some(Duration::ZERO));
    clock.advance(Duration::from_secs(3600) - Duration::from_millis(1));
    driver.turn(Some(Duration::ZERO));
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    assert!(Pin::new(&mut s).poll(&mut cx).is_pending());
    clock.advance(Duration::from_millis(1));
    // Moved, but not turned: still pending.
    assert!(Pin::new(&mut s).poll(&mut cx).is_pending());
    assert_eq!(driver.turn(Some(Duration::ZERO)), 1);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(Pin::new(&mut s).poll(&mut cx), Poll::Ready(()));
    assert_eq!(handle.pending_timers(), 0);
    assert_eq!(handle.next_timer_deadline(), None);
}

#[test]
fn virtual_clock_next_deadline_is_exact() {
    let (mut driver, clock) = virtual_driver();
    let handle = driver.handle();
    let _g = handle.enter();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut sleeps: Vec<_> = [7000u64, 300, 123_456, 65, 5]
        .iter()
        .map(|&ms| sleep(Duration::from_millis(ms) + Duration::from_micros(300)))
        .collect();
    for s in &mut sleeps {
        assert!(Pin::new(s).poll(&mut cx).is_pending());
    }
    // Auto-advance as the deterministic flavour does: jump to the next deadline.
    let mut fired = 0;
    while let Some(next) = handle.next_timer_deadline() {
        clock.advance_to(next);
        let woke = driver.turn(Some(Duration::ZERO));
        assert!(woke >= 1, "advancing to next_timer_deadline fires a timer");
        fired += woke;
    }
    assert_eq!(fired, 5);
    for s in &mut sleeps {
        assert!(Pin::new(&mut *s).poll(&mut cx).is_ready());
        assert!(s.is_elapsed());
    }
}

/// Polls an interval by hand on a virtual clock, returning ticks relative to `t0`.
fn ticks_after_stall(behavior: MissedTickBehavior) -> Vec<u64> {
    let (mut driver, clock) = virtual_driver();
    let handle = driver.handle();
    let _g = handle.enter();
    let t0 = clock.now();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut iv = interval(Duration::from_millis(10));
    iv.set_missed_tick_behavior(behavior);
    let mut out = Vec::new();
    let mut tick =
        |iv: &mut safepoint_io::time::Interval, out: &mut Vec<u64>| match iv.poll_tick(&mut cx) {
            Poll::Ready(t) => {
                out.push((t - t0).as_millis() as u64);
                true
            }
            Poll::Pending => false,
        };
    assert!(tick(&mut iv, &mut out), "the first tick is immediate");
    assert!(!tick(&mut iv, &mut out));
    clock.advance(Duration::from_millis(10));
    driver.turn(Some(Duration::ZERO));
    assert!(tick(&mut iv, &mut out));
    // Stall for 35 ms: the ticks at 20 and 30 (and 40 for Burst) are missed.
    clock.advance(Duration::from_millis(35));
    driver.turn(Some(Duration::ZERO));
    while tick(&mut iv, &mut out) {}
    // Run on to 70 ms.
    for _ in 0..25 {
        clock.advance(Duration::from_millis(1));
        driver.turn(Some(Duration::ZERO));
        while tick(&mut iv, &mut out) {}
    }
    out
}

#[test]
fn interval_missed_tick_behaviours() {
    // Burst: catch up back to back at 20, 30, 40 (now = 45), then 50, 60, 70.
    assert_eq!(
        ticks_after_stall(MissedTickBehavior::Burst),
        vec![0, 10, 20, 30, 40, 50, 60, 70]
    );
    // Delay: one tick now (scheduled 20), then every 10 ms from now: 55, 65.
    assert_eq!(
        ticks_after_stall(MissedTickBehavior::Delay),
        vec![0, 10, 20, 55, 65]
    );
    // Skip: one tick now (scheduled 20), then the next on the grid: 50, 60, 70.
    assert_eq!(
        ticks_after_stall(MissedTickBehavior::Skip),
        vec![0, 10, 20, 50, 60, 70]
    );
}

#[test]
fn interval_ticks_on_real_clock_and_resets() {
    block_on(async {
        let start = std::time::Instant::now();
        let mut iv = interval(Duration::from_millis(5));
        assert_eq!(iv.period(), Duration::from_millis(5));
        let first = iv.tick().await;
        for _ in 0..4 {
            iv.tick().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(20));
        iv.reset();
        let t = iv.tick().await;
        assert!(t - first >= Duration::from_millis(25));
    });
}

#[test]
#[should_panic(expected = "`period` must be non-zero.")]
fn zero_period_panics() {
    let driver = Driver::new(Config::default()).unwrap();
    let _g = driver.handle().enter();
    let _ = interval(Duration::ZERO);
}

#[test]
fn idle_turn_is_cheap() {
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    // Open sockets and a far timer, then idle.
    let (listener, client, server, mut far) = block_on_with(&mut driver, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (listener, client, server, sleep(Duration::from_secs(3600)))
    });
    let (_, waker) = counting_waker();
    {
        let _g = handle.enter();
        assert!(Pin::new(&mut far)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    let cpu0 = thread_cpu_micros();
    let start = std::time::Instant::now();
    let mut turns = 0;
    while start.elapsed() < Duration::from_secs(1) {
        driver.turn(Some(Duration::from_secs(1).saturating_sub(start.elapsed())));
        turns += 1;
    }
    let cpu = thread_cpu_micros() - cpu0;
    assert!(
        cpu < 10_000,
        "idle second cost {cpu} µs of CPU in {turns} turns"
    );
    assert!(turns < 10, "{turns} turns in an idle second");
    drop((listener, client, server, far));
}

#[test]
fn registering_a_timer_does_not_make_the_next_turn_spurious() {
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    let _g = handle.enter();
    let (count, waker) = counting_waker();
    let mut s = sleep(Duration::from_millis(30));
    assert!(Pin::new(&mut s)
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let start = std::time::Instant::now();
    let woken = driver.turn(None);
    // One turn: it slept until the timer, not returned at once for nothing.
    assert_eq!(woken, 1);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(
        start.elapsed() >= Duration::from_millis(25),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn timer_registered_from_another_thread_shortens_a_blocked_turn() {
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    let h = handle.clone();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let start = std::time::Instant::now();
        common::block_on_remote(&h, async { sleep(Duration::from_millis(30)).await });
        let took = start.elapsed();
        d.store(true, Ordering::SeqCst);
        h.unpark(); // let the turning loop see that we are done
        took
    });
    // Blocks with no timer at all until the other thread registers one. (A
    // 1 s cap rather than `None`, so a panicking helper cannot hang the test:
    // without the wake-up on registration the sleep would take about 1 s.)
    let start = std::time::Instant::now();
    while !done.load(Ordering::SeqCst) && !t.is_finished() {
        driver.turn(Some(Duration::from_secs(1)));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the new timer did not wake the turn"
        );
    }
    let took = t.join().unwrap();
    assert!(
        took >= Duration::from_millis(30) && took < Duration::from_millis(500),
        "{took:?}"
    );
}
