//! The deterministic test runner behind
//! `#[safepoint::test(flavor = "deterministic", ...)]`.
//!
//! The body runs once per seed, each time on a fresh deterministic runtime,
//! so no state of one run reaches the next through the runtime. The first
//! seed that fails (a panic, a deadlock, an `Err`) stops the run, and the
//! failure names it as `SAFEPOINT_SEED=N` with the cargo command that runs
//! that seed alone, which fails the same way (same seed, same schedule).
//!
//! The environment steers it without recompiling:
//! - `SAFEPOINT_SEED=N` runs seed N only (replay);
//! - `SAFEPOINT_SEEDS=N` sets how many seeds to run (explore more in a
//!   nightly job), starting at the test's `seed` (0 by default);
//! - `SAFEPOINT_CHECK_DETERMINISM=1` runs each seed twice, recording which
//!   task ran at which position of which round, and fails at the first
//!   round where the two runs differ.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use super::outcome::Outcome;
use super::site::Site;
use crate::{Builder, Strategy};

/// The seeds a deterministic test explores, from the macro's arguments.
///
/// # Examples
///
/// ```
/// let seeds = safepoint::entry::Seeds { first: 0, count: 256, strategy: safepoint::Strategy::Uniform };
/// # drop(seeds);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Seeds {
    /// The first seed (`seed = N`, default 0).
    pub first: u64,
    /// How many seeds, `first`, `first + 1`, ... (`seeds = N`, default 1).
    pub count: u64,
    /// The exploration strategy (`strategy = "pct"`).
    pub strategy: Strategy,
}

/// The environment's say, read once per test.
struct Env {
    seed: Option<u64>,
    seeds: Option<u64>,
    check_determinism: bool,
}

fn parse_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name} must be an unsigned integer (got {value:?})"),
    }
}

impl Env {
    /// The environment, read once per process (like `RUST_BACKTRACE`): a
    /// test then pays nothing for it (three reads cost ~135 ns, 4% of a
    /// one-task seed). A malformed value panics in every test that reads it.
    fn get() -> &'static Env {
        static ENV: OnceLock<Env> = OnceLock::new();
        ENV.get_or_init(Env::read)
    }

    fn read() -> Env {
        let seeds = parse_u64("SAFEPOINT_SEEDS");
        if seeds == Some(0) {
            panic!("SAFEPOINT_SEEDS must be at least 1 (got 0)");
        }
        let check_determinism = match std::env::var("SAFEPOINT_CHECK_DETERMINISM") {
            Err(_) => false,
            Ok(v) if v.is_empty() || v == "0" => false,
            Ok(v) if v == "1" => true,
            Ok(v) => panic!("SAFEPOINT_CHECK_DETERMINISM must be 1 or 0 (got {v:?})"),
        };
        Env {
            seed: parse_u64("SAFEPOINT_SEED"),
            seeds,
            check_determinism,
        }
    }
}

/// One run of the body on a fresh runtime: its result, and the schedule
/// fingerprint if asked for.
struct Run<T> {
    result: std::thread::Result<T>,
    fingerprint: Vec<Vec<u64>>,
}

#[track_caller]
fn run_once<T, Fut: Future<Output = T>>(
    seed: u64,
    strategy: Strategy,
    record: bool,
    body: &impl Fn() -> Fut,
) -> Run<T> {
    let rt = Builder::new_deterministic(seed)
        .strategy(strategy)
        .build()
        .unwrap_or_else(|e| panic!("#[safepoint::test]: cannot build the runtime: {e}"));
    let det = rt
        .handle()
        .shared
        .flavor
        .deterministic()
        .expect("deterministic");
    if record {
        det.order.lock().record();
    }
    // The deadlock report names where the test is (this is track_caller up
    // to the generated code), not this line.
    let location = std::panic::Location::caller();
    let result = catch_unwind(AssertUnwindSafe(|| {
        crate::flavor::block_on(rt.handle(), body(), location)
    }));
    let fingerprint = det
        .order
        .lock()
        .fingerprint()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    drop(rt);
    Run {
        result,
        fingerprint,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// Where two fingerprints of one seed first differ, as a sentence.
fn divergence(a: &[Vec<u64>], b: &[Vec<u64>]) -> Option<String> {
    let round = (0..a.len().max(b.len())).find(|&r| a.get(r) != b.get(r))?;
    let show = |f: &[Vec<u64>]| match f.get(round) {
        Some(ids) => format!("polled tasks {ids:?}"),
        None => format!("had ended (after {} rounds)", f.len()),
    };
    Some(format!(
        "at round {round}: the first run {}, the second {}",
        show(a),
        show(b)
    ))
}

/// Runs a deterministic `#[safepoint::test]`: `body` once per seed, each on
/// a fresh runtime, stopping at the first failure, which it names with its
/// replay command. Returns the last run's output.
///
/// # Panics
///
/// With the test's own panic message plus the failing seed and the command
/// that replays it; on a divergence under `SAFEPOINT_CHECK_DETERMINISM=1`;
/// on a malformed `SAFEPOINT_*` variable.
///
/// # Examples
///
/// ```
/// use safepoint::entry::{deterministic_test, Seeds, Site};
///
/// let site = Site { package: "p", crate_name: "p", module_path: "p", name: "t",
///                   integration_test: false, bin: None, ignored: false };
/// let seeds = Seeds { first: 0, count: 8, strategy: safepoint::Strategy::Uniform };
/// deterministic_test(site, seeds, || async {
///     let h = safepoint::spawn(async { 1 });
///     assert_eq!(h.await.unwrap(), 1);
/// });
/// ```
#[track_caller]
pub fn deterministic_test<T, Fut>(site: Site, seeds: Seeds, body: impl Fn() -> Fut) -> T
where
    T: Outcome,
    Fut: Future<Output = T>,
{
    let env = Env::get();
    let (first, count) = match env.seed {
        Some(seed) => (seed, 1),
        None => (seeds.first, env.seeds.unwrap_or(seeds.count).max(1)),
    };
    let check = if env.check_determinism {
        "SAFEPOINT_CHECK_DETERMINISM=1 "
    } else {
        ""
    };
    let mut last = None;
    for i in 0..count {
        let seed = first.wrapping_add(i);
        let replay = || {
            format!(
                "safepoint: `{}` failed with seed {seed} (seed {} of {count} run from {first}, \
                 strategy {}); replay this run with:\n    {}",
                site.test_path(),
                i + 1,
                seeds.strategy,
                site.replay_command(&format!("{check}SAFEPOINT_SEED={seed}")),
            )
        };
        let run = run_once(seed, seeds.strategy, env.check_determinism, &body);
        if env.check_determinism {
            let again = run_once(seed, seeds.strategy, true, &body);
            let diverged = divergence(&run.fingerprint, &again.fingerprint).or_else(|| {
                (run.result.is_ok() != again.result.is_ok())
                    .then(|| "same schedule, but only one of the two runs panicked".to_owned())
            });
            if let Some(at) = diverged {
                panic!(
                    "safepoint: SAFEPOINT_CHECK_DETERMINISM: two runs of seed {seed} diverged \
                     {at}. Something the runtime does not control (a real clock, another \
                     thread, OS randomness, global state left by an earlier run) decides the \
                     interleaving, so a failing seed may not replay. Rerun with:\n    {}",
                    site.replay_command(&format!("{check}SAFEPOINT_SEED={seed}"))
                );
            }
        }
        match run.result {
            Err(payload) => {
                // The panic was printed when it happened; print the replay
                // once, and carry it in the payload (for `should_panic`).
                let replay = replay();
                eprintln!("\n{replay}\n");
                match panic_message(&*payload) {
                    Some(msg) => resume_unwind(Box::new(format!("{msg}\n\n{replay}"))),
                    None => resume_unwind(payload),
                }
            }
            Ok(out) => {
                if let Some(err) = out.failure() {
                    eprintln!("test returned Err({err})\n{}", replay());
                    return out;
                }
                last = Some(out);
            }
        }
    }
    last.expect("at least one seed runs")
}
