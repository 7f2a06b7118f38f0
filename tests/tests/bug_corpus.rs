//! A corpus of classic async concurrency bugs, each a short program with a
//! real race, and the proof that seed exploration finds each one: a
//! `#[safepoint::test]` per bug that must fail (within its seed budget)
//! with the bug's own message and a replay line.
//!
//! The programs talk to a `Backend` task over channels, as services do, so
//! their awaits block on other tasks rather than on `yield_now`. The
//! ignored `seeds_to_find_table` measures, for each bug and each strategy,
//! how many seeds exploration needs to find it (median over 20 starting
//! seeds): the README's table.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use safepoint::{Builder, Strategy};

/// A service task: each call is a request over a channel and a reply on a
/// oneshot, answered at once or after `delay` of (virtual) time.
#[derive(Clone)]
struct Backend {
    tx: mpsc::UnboundedSender<(Duration, oneshot::Sender<()>)>,
}

impl Backend {
    fn spawn() -> Backend {
        let (tx, mut rx) = mpsc::unbounded::<(Duration, oneshot::Sender<()>)>();
        safepoint::task::Builder::new()
            .name("backend")
            .spawn(async move {
                while let Some((delay, reply)) = rx.next().await {
                    if delay.is_zero() {
                        let _ = reply.send(());
                    } else {
                        safepoint::spawn(async move {
                            safepoint::time::sleep(delay).await;
                            let _ = reply.send(());
                        });
                    }
                }
            })
            .expect("spawn the backend");
        Backend { tx }
    }

    async fn call_after(&self, delay: Duration) {
        let (tx, rx) = oneshot::channel();
        self.tx
            .unbounded_send((delay, tx))
            .expect("the backend runs");
        let _ = rx.await;
    }

    async fn call(&self) {
        self.call_after(Duration::ZERO).await
    }
}

/// Lost update across an await: a deposit reads the balance, awaits an
/// audit call, and writes back what it read plus the amount; a deposit that
/// lands in between is overwritten.
async fn lost_update() {
    let backend = Backend::spawn();
    let balance = Arc::new(Mutex::new(100u64));
    let deposit = |amount: u64, audited: bool| {
        let (balance, backend) = (balance.clone(), backend.clone());
        safepoint::spawn(async move {
            let current = *balance.lock().unwrap();
            if audited {
                backend.call().await;
            }
            *balance.lock().unwrap() = current + amount;
        })
    };
    let (small, large) = (deposit(10, false), deposit(20, true));
    small.await.unwrap();
    large.await.unwrap();
    let total = *balance.lock().unwrap();
    assert_eq!(total, 130, "lost update: balance is {total}, not 130");
}

/// Check-then-act on a shared map: a login creates a session if the user
/// has none, but awaits the token service between the check and the insert;
/// a second login of the same user (slower to parse: two backend calls)
/// that checks in that window creates a second session.
async fn check_then_act() {
    let backend = Backend::spawn();
    let sessions = Arc::new(Mutex::new(HashMap::<&str, u32>::new()));
    let created = Arc::new(AtomicUsize::new(0));
    let login = |parse_calls: u32| {
        let (backend, sessions, created) = (backend.clone(), sessions.clone(), created.clone());
        safepoint::spawn(async move {
            for _ in 0..parse_calls {
                backend.call().await;
            }
            if !sessions.lock().unwrap().contains_key("ada") {
                backend.call().await; // fetch a token
                let token = created.fetch_add(1, SeqCst) as u32;
                sessions.lock().unwrap().insert("ada", token);
            }
        })
    };
    let (first, second) = (login(0), login(2));
    first.await.unwrap();
    second.await.unwrap();
    let n = created.load(SeqCst);
    assert_eq!(n, 1, "check-then-act: {n} sessions created for one user");
}

/// Async-lock ordering deadlock: two transfers take the two account locks
/// in opposite orders, with a ledger call while holding the first.
async fn lock_order_deadlock() {
    let backend = Backend::spawn();
    let accounts = Arc::new([
        futures::lock::Mutex::new(100i64),
        futures::lock::Mutex::new(100i64),
    ]);
    let transfer = |from: usize, to: usize, checks: u32| {
        let (backend, accounts) = (backend.clone(), accounts.clone());
        safepoint::task::Builder::new()
            .name(&format!("transfer {from}->{to}"))
            .spawn(async move {
                for _ in 0..checks {
                    backend.call().await; // fraud check
                }
                let mut a = accounts[from].lock().await;
                backend.call().await; // ledger entry
                let mut b = accounts[to].lock().await;
                *a -= 10;
                *b += 10;
            })
            .expect("spawn a transfer")
    };
    let (t1, t2) = (transfer(0, 1, 0), transfer(1, 0, 1));
    t1.await.unwrap();
    t2.await.unwrap();
}

/// Missed notification: a waiter checks a flag, prepares (a backend call),
/// then registers to be woken; a notifier that sets the flag and wakes the
/// registered waiters in between wakes nobody, and the waiter sleeps
/// forever (the runtime reports the deadlock and who is blocked).
async fn missed_notification() {
    struct Event {
        fired: AtomicBool,
        waiters: Mutex<Vec<oneshot::Sender<()>>>,
    }
    let backend = Backend::spawn();
    let event = Arc::new(Event {
        fired: AtomicBool::new(false),
        waiters: Mutex::new(Vec::new()),
    });
    let (ev, be) = (event.clone(), backend.clone());
    let waiter = safepoint::task::Builder::new()
        .name("waiter")
        .spawn(async move {
            if !ev.fired.load(SeqCst) {
                be.call().await; // prepare
                let (tx, rx) = oneshot::channel();
                ev.waiters.lock().unwrap().push(tx);
                let _ = rx.await;
            }
        })
        .expect("spawn the waiter");
    let notifier = safepoint::spawn(async move {
        backend.call().await; // two calls of setup before it fires
        backend.call().await;
        event.fired.store(true, SeqCst);
        for w in event.waiters.lock().unwrap().drain(..) {
            let _ = w.send(());
        }
    });
    notifier.await.unwrap();
    waiter.await.unwrap();
}

/// Cancellation that leaks a guard: a query takes a pool slot by hand and
/// gives it back after the reply; when its timeout fires first (the
/// deadline equals the backend's latency: a tie the schedule decides), the
/// future is dropped at the await and the slot is never given back.
async fn cancellation_leak() {
    let backend = Backend::spawn();
    let in_use = Arc::new(AtomicUsize::new(0));
    let (slots, be) = (in_use.clone(), backend.clone());
    let client = safepoint::spawn(async move {
        let query = async {
            slots.fetch_add(1, SeqCst);
            be.call_after(Duration::from_millis(5)).await;
            slots.fetch_sub(1, SeqCst);
        };
        let _ = safepoint::time::timeout(Duration::from_millis(5), query).await;
    });
    client.await.unwrap();
    let n = in_use.load(SeqCst);
    assert_eq!(n, 0, "cancellation leaked {n} pool slot(s)");
}

// Exploration finds each bug, with the bug's own message and the replay
// line (`should_panic` matches the message the runner builds).

#[safepoint::test(flavor = "deterministic", seeds = 200)]
#[should_panic(expected = "lost update: balance is 120")]
async fn exploration_finds_the_lost_update() {
    lost_update().await
}

#[safepoint::test(flavor = "deterministic", seeds = 200, strategy = "pct")]
#[should_panic(expected = "check-then-act: 2 sessions created for one user")]
async fn exploration_finds_the_check_then_act() {
    check_then_act().await
}

#[safepoint::test(flavor = "deterministic", seeds = 200)]
#[should_panic(expected = "deadlock: the future passed to block_on")]
async fn exploration_finds_the_lock_order_deadlock() {
    lock_order_deadlock().await
}

#[safepoint::test(flavor = "deterministic", seeds = 200, strategy = "pct")]
#[should_panic(expected = "deadlock: the future passed to block_on")]
async fn exploration_finds_the_missed_notification() {
    missed_notification().await
}

#[safepoint::test(flavor = "deterministic", seeds = 200)]
#[should_panic(expected = "cancellation leaked 1 pool slot(s)")]
async fn exploration_finds_the_cancellation_leak() {
    cancellation_leak().await
}

/// A deadlock is reported with the tasks it blocks, by name.
#[test]
fn the_deadlock_report_names_the_blocked_tasks() {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let report = (0..200).find_map(|seed| {
        let rt = Builder::new_deterministic(seed).build().unwrap();
        catch_unwind(AssertUnwindSafe(|| rt.block_on(lock_order_deadlock())))
            .err()
            .map(|p| safepoint_tests::panic_message(&*p))
    });
    std::panic::set_hook(quiet);
    let report = report.expect("a deadlocking seed within 200");
    assert!(report.starts_with("deadlock:"), "{report}");
    for name in ["transfer 0->1", "transfer 1->0", "backend"] {
        assert!(report.contains(name), "{name} missing from: {report}");
    }
}

type Bug = fn() -> Pin<Box<dyn Future<Output = ()>>>;

const BUGS: [(&str, Bug); 5] = [
    ("lost update across an await", || Box::pin(lost_update())),
    ("check-then-act on a shared map", || {
        Box::pin(check_then_act())
    }),
    ("async-lock ordering deadlock", || {
        Box::pin(lock_order_deadlock())
    }),
    ("missed notification", || Box::pin(missed_notification())),
    ("cancellation leaks a guard", || {
        Box::pin(cancellation_leak())
    }),
];

/// Whether `bug` fails on `seed` under `strategy`.
fn fails(bug: Bug, seed: u64, strategy: Strategy) -> bool {
    let rt = Builder::new_deterministic(seed)
        .strategy(strategy)
        .build()
        .unwrap();
    catch_unwind(AssertUnwindSafe(|| rt.block_on(bug()))).is_err()
}

/// How many seeds, from `first` on, until `bug` fails (`None`: not within
/// `cap`).
fn seeds_to_find(bug: Bug, strategy: Strategy, first: u64, cap: u64) -> Option<u64> {
    (0..cap)
        .find(|i| fails(bug, first + i, strategy))
        .map(|i| i + 1)
}

/// Every bug program passes on some seed (the race is a race, not a bug
/// on every schedule) and fails on some.
#[test]
fn every_bug_is_a_race() {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut report = Vec::new();
    for (name, bug) in BUGS {
        let strategies = [Strategy::Uniform, Strategy::Pct { depth: 3 }];
        let outcomes: Vec<bool> = strategies
            .iter()
            .flat_map(|&s| (0..200).map(move |seed| fails(bug, seed, s)))
            .collect();
        report.push((name, outcomes.contains(&true), outcomes.contains(&false)));
    }
    std::panic::set_hook(quiet);
    for (name, fails_somewhere, passes_somewhere) in report {
        assert!(fails_somewhere, "{name}: no seed finds it");
        assert!(passes_somewhere, "{name}: fails on every seed");
    }
}

/// The README's table: seeds to find each bug, per strategy, median (and
/// worst) over 20 starting seeds. Run with
/// `cargo test --release -p safepoint-tests --test bug_corpus -- seeds_to_find_table --ignored --nocapture`.
#[test]
#[ignore = "a measurement: prints the README's seeds-to-find table"]
fn seeds_to_find_table() {
    const CAP: u64 = 10_000;
    let strategies = [
        ("uniform", Strategy::Uniform),
        ("pct(3)", Strategy::Pct { depth: 3 }),
    ];
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rows = Vec::new();
    for (name, bug) in BUGS {
        let mut cells = Vec::new();
        for (_, strategy) in strategies {
            let mut found: Vec<u64> = (0..20u64)
                .map(|k| seeds_to_find(bug, strategy, k * 1_000_000, CAP).unwrap_or(u64::MAX))
                .collect();
            found.sort_unstable();
            // The median of 20: the mean of the two middle values.
            let median = match (found[9], found[10]) {
                (u64::MAX, _) | (_, u64::MAX) => u64::MAX,
                (a, b) => (a + b).div_ceil(2),
            };
            let cell = |n: u64| match n {
                u64::MAX => format!(">{CAP}"),
                n => n.to_string(),
            };
            cells.push(format!("{} (max {})", cell(median), cell(found[19])));
        }
        rows.push(format!("| {name} | {} |", cells.join(" | ")));
    }
    std::panic::set_hook(quiet);
    println!(
        "| bug | uniform: seeds to find, median (max) | pct(3): seeds to find, median (max) |"
    );
    println!("|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
