//! Helpers shared by the criterion benches in `benches/` (spinning,
//! percentiles, the thread-wake floor). The benches themselves live in
//! `benches/benches/*.rs`; `benches/compare.sh` runs them all and prints the
//! ours/tokio ratios.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Worker threads for both runtimes in every bench.
pub const WORKERS: usize = 4;

/// A safepoint multi-thread runtime with [`WORKERS`] workers and defaults.
pub fn sp_rt() -> safepoint::Runtime {
    safepoint::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .unwrap()
}

/// A tokio multi-thread runtime with [`WORKERS`] workers, I/O and time.
pub fn tk_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap()
}

/// Busy-waits for `d` without yielding the thread (the "~10 µs of work" of
/// the busy tasks).
pub fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Busy-waits for `d`, calling `std::thread::yield_now` in the loop, as
/// tokio's `stall()` does in `spawn_many_remote_busy1`.
pub fn stall(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::thread::yield_now();
    }
}

/// p50 / p99 / max (and mean) of a sample of durations.
#[derive(Clone, Copy, Debug)]
pub struct Percentiles {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

impl Percentiles {
    /// Computes the percentiles (sorts `samples`). Panics on an empty sample.
    pub fn of(samples: &mut [Duration]) -> Percentiles {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let n = samples.len();
        let rank = |q: f64| {
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            samples[i]
        };
        let total: Duration = samples.iter().sum();
        Percentiles {
            n,
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[n - 1],
            mean: total / n as u32,
        }
    }
}

/// Formats a duration in microseconds with two decimals.
pub fn us(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

/// The machine's thread-wake floor, measured by [`wake_floor`].
///
/// # Examples
///
/// ```
/// let floor: safepoint_benches::WakeFloor = safepoint_benches::wake_floor(50);
/// assert_eq!(floor.one_way.n, 2 * floor.round_trip.n);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct WakeFloor {
    /// The ping-pong's round trip: two wakes, one each way.
    pub round_trip: Percentiles,
    /// One wake, measured directly: from just before `unpark` to the woken
    /// thread running again, both legs of every round trip (on one
    /// monotonic clock, which `Instant` is on Linux). This is the floor for
    /// anything that has to wake a parked thread, such as a stop whose
    /// requester sleeps until the last worker arrives.
    pub one_way: Percentiles,
}

/// The machine's thread-wake floor: two std threads ping-pong a token
/// `rounds` times with `std::thread::park`/`unpark` (the primitive a parked
/// worker, or a requester waiting in `stop_the_world_blocking`, is woken
/// with). Each side stamps the time just before it unparks the other, and
/// the woken side reads the clock as soon as it sees its turn, so each leg
/// is one wake measured on its own. Half the round trip, the figure this
/// used to give, assumes both legs cost the same and folds the hand-offs
/// in; the direct legs need no such assumption (both are printed, so the
/// two can be compared). Returns the round trip and the one-way legs.
///
/// # Examples
///
/// ```
/// let floor = safepoint_benches::wake_floor(100);
/// // Every leg lies inside its round trip.
/// assert!(floor.one_way.max <= floor.round_trip.max);
/// println!("one wake: p50 {:?}", floor.one_way.p50);
/// ```
pub fn wake_floor(rounds: usize) -> WakeFloor {
    // turn: 0 = main's turn, 1 = the echo thread's turn. `stamp`: ns since
    // `origin` just before the last unpark.
    let turn = Arc::new(AtomicU64::new(0));
    let stamp = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let now_ns = move || origin.elapsed().as_nanos() as u64;
    let since = move |stamp: &AtomicU64| {
        Duration::from_nanos(now_ns().saturating_sub(stamp.load(Ordering::Acquire)))
    };
    let main = std::thread::current();
    let (t2, st2, s2) = (turn.clone(), stamp.clone(), stop.clone());
    let echo = std::thread::spawn(move || {
        let mut legs = Vec::with_capacity(rounds + rounds / 10);
        loop {
            while t2.load(Ordering::Acquire) != 1 {
                if s2.load(Ordering::Acquire) {
                    return legs;
                }
                std::thread::park();
            }
            legs.push(since(&st2));
            st2.store(now_ns(), Ordering::Release);
            t2.store(0, Ordering::Release);
            main.unpark();
        }
    });
    let echo_thread = echo.thread().clone();
    let mut trips = Vec::with_capacity(rounds);
    let mut back = Vec::with_capacity(rounds);
    for i in 0..rounds + rounds / 10 {
        let start = Instant::now();
        stamp.store(now_ns(), Ordering::Release);
        turn.store(1, Ordering::Release);
        echo_thread.unpark();
        while turn.load(Ordering::Acquire) != 0 {
            std::thread::park();
        }
        let leg = since(&stamp);
        let rt = start.elapsed();
        // Let the echo thread go back to sleep so each round trip includes
        // two real wakes, not a spin that happens to catch the flag.
        spin_for(Duration::from_micros(20));
        if i >= rounds / 10 {
            trips.push(rt);
            back.push(leg);
        }
    }
    stop.store(true, Ordering::Release);
    echo_thread.unpark();
    let mut legs = echo.join().unwrap();
    // The echo thread's legs of the warm-up rounds are not kept either.
    legs.drain(..legs.len().min(rounds / 10));
    legs.extend(back);
    WakeFloor {
        round_trip: Percentiles::of(&mut trips),
        one_way: Percentiles::of(&mut legs),
    }
}

/// Reads a `usize` from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether criterion, given this process's command line, would run a bench
/// whose id contains `id`: the first positional argument is criterion's
/// filter (a regex; here matched as a plain substring either way, which is
/// what `compare.sh` and hand runs use). Lets the benches skip their plain
/// (non-criterion) printouts when filtered out.
pub fn selected(id: &str) -> bool {
    // criterion flags that take a value.
    const VALUED: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--color",
        "-c",
        "--output-format",
        "--format",
        "--plotting-backend",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--logfile",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if VALUED.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        return id.contains(a.as_str()) || a.contains(id);
    }
    true
}
