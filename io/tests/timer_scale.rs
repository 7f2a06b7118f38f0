//! A million pending timers: memory per timer and the cost of a turn.
//! In its own test binary so that other tests' allocations do not blur the
//! resident-set measurement.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::{Duration, Instant};

use safepoint_io::driver::{Config, Driver};
use safepoint_io::time::sleep;

use common::counting_waker;

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_million_pending_timers_are_small_and_do_not_slow_the_turn() {
    const N: usize = 1_000_000;
    let mut driver = Driver::new(Config::default()).unwrap();
    let handle = driver.handle();
    let _g = handle.enter();
    let (_, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);

    let idle_turn = |driver: &mut Driver| {
        let start = Instant::now();
        for _ in 0..100 {
            driver.turn(Some(Duration::ZERO));
        }
        start.elapsed() / 100
    };
    let empty = idle_turn(&mut driver);

    let before = resident_bytes();
    let mut sleeps: Vec<_> = (0..N)
        // Spread over an hour, so every level of the wheel is used.
        .map(|i| {
            sleep(Duration::from_secs(60) + Duration::from_millis((i * 3571 % 3_600_000) as u64))
        })
        .collect();
    for s in &mut sleeps {
        assert!(Pin::new(s).poll(&mut cx).is_pending());
    }
    assert_eq!(handle.pending_timers(), N);
    let per_timer = (resident_bytes() - before) / N;
    // The `Sleep` itself plus its wheel entry (and slab/Vec growth slack).
    assert!(per_timer < 300, "{per_timer} bytes per pending timer");

    let full = idle_turn(&mut driver);
    assert!(
        full < empty + Duration::from_micros(200),
        "turn with {N} timers {full:?}, empty {empty:?}"
    );

    // Cancelling is O(1) each: dropping them all is quick.
    let start = Instant::now();
    drop(sleeps);
    assert_eq!(handle.pending_timers(), 0);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    eprintln!("{per_timer} B/timer, turn {empty:?} empty vs {full:?} with {N} timers");
}
