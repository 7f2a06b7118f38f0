//! The deterministic flavour: caller-driven rounds, seeded interleavings,
//! virtual time, deadlock detection, and safepoints under it. The
//! scenarios of `shared/seeds/run-until-all-tasks-blocked.md` written as
//! Rust tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use safepoint::time::{sleep, timeout, Instant};
use safepoint::{Builder, Strategy};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.lock().unwrap().push(s.into());
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// The seed question: run until everything is blocked, look, poke, run again.
#[test]
fn run_until_blocked_then_poke() {
    let rt = Builder::new_deterministic(0).build().unwrap();
    let out = log();
    let (tx, rx) = oneshot::channel::<u32>();
    let o = out.clone();
    let task = rt.spawn(async move {
        push(&o, "waiting on event");
        let v = rx.await.unwrap();
        push(&o, "done waiting on event");
        v * 2
    });
    assert!(lines(&out).is_empty(), "spawning must not run anything");
    assert_eq!(rt.step(), 1);
    assert_eq!(lines(&out), ["waiting on event"]);
    assert_eq!(rt.step(), 0, "the task is blocked on the event");
    assert!(!task.is_finished());
    tx.send(21).unwrap();
    rt.run_until_blocked();
    assert_eq!(lines(&out), ["waiting on event", "done waiting on event"]);
    assert!(task.is_finished());
    assert_eq!(rt.block_on(task).unwrap(), 42);
}

/// Awaiting a future inline does not let a spawned task run first;
/// awaiting a task does.
#[safepoint::test(flavor = "deterministic", seed = 3)]
async fn inline_await_versus_task_await() {
    let o = log();
    let o2 = o.clone();
    let spawned = safepoint::spawn(async move { push(&o2, "spawned task ran") });
    async { push(&o, "inline future ran") }.await;
    assert_eq!(lines(&o), ["inline future ran"]);
    spawned.await.unwrap();
    assert_eq!(lines(&o), ["inline future ran", "spawned task ran"]);
}

#[safepoint::test(flavor = "deterministic", seed = 1)]
async fn sleeping_an_hour_takes_no_wall_time() {
    let wall = std::time::Instant::now();
    let before = Instant::now();
    sleep(Duration::from_secs(3600)).await;
    let after = Instant::now();
    assert!(
        wall.elapsed() < Duration::from_secs(2),
        "took {:?}",
        wall.elapsed()
    );
    assert_eq!(after - before, Duration::from_secs(3600));
}

#[test]
fn advance_fires_timers_in_order() {
    let rt = Builder::new_deterministic(5).build().unwrap();
    let out = log();
    for (name, secs) in [("c", 30u64), ("a", 10), ("b", 20)] {
        let o = out.clone();
        rt.spawn(async move {
            sleep(Duration::from_secs(secs)).await;
            push(&o, name);
        });
    }
    rt.run_until_blocked();
    rt.advance(Duration::from_secs(15));
    assert_eq!(lines(&out), ["a"]);
    rt.advance(Duration::from_secs(15));
    assert_eq!(lines(&out), ["a", "b", "c"]);
}

/// A deterministic runtime with an exploration strategy.
fn seeded(seed: u64, strategy: Strategy) -> std::io::Result<safepoint::Runtime> {
    Builder::new_deterministic(seed).strategy(strategy).build()
}

/// `tasks` tasks that log `t{task}.{i}` then yield, `steps` times each,
/// under `strategy`; returns the log.
fn logged_interleaving(seed: u64, strategy: Strategy, tasks: usize, steps: usize) -> Vec<String> {
    let rt = seeded(seed, strategy).unwrap();
    let out = log();
    for t in 0..tasks {
        let o = out.clone();
        rt.spawn(async move {
            for i in 0..steps {
                push(&o, format!("t{t}.{i}"));
                safepoint::task::yield_now().await;
            }
        });
    }
    rt.run_until_blocked();
    lines(&out)
}

/// Three tasks that interleave prints around yields; returns the log.
fn interleaving(seed: u64) -> Vec<String> {
    logged_interleaving(seed, Strategy::Uniform, 3, 4)
}

#[test]
fn same_seed_same_interleaving_other_seeds_differ() {
    let first = interleaving(7);
    for _ in 0..100 {
        assert_eq!(interleaving(7), first);
    }
    let distinct: std::collections::HashSet<Vec<String>> = (0..20).map(interleaving).collect();
    assert!(distinct.len() >= 2, "20 seeds gave one interleaving");
}

/// Two tasks do read, yield, write on a shared counter: a lost update in
/// some interleavings. Returns the final count. The second task starts one
/// round later (as if it had been woken later): tasks in lockstep would
/// lose the update under every seed, so the order within a round is what
/// decides here, and that order is the seed's.
fn racy_counter(seed: u64) -> u32 {
    let rt = Builder::new_deterministic(seed).build().unwrap();
    let counter = Arc::new(Mutex::new(0u32));
    for late in [false, true] {
        let c = counter.clone();
        rt.spawn(async move {
            if late {
                safepoint::task::yield_now().await;
            }
            let read = *c.lock().unwrap();
            safepoint::task::yield_now().await;
            *c.lock().unwrap() = read + 1;
        });
    }
    rt.run_until_blocked();
    let n = *counter.lock().unwrap();
    n
}

#[test]
fn a_race_is_caught_by_seed_search_and_replays() {
    let failing = (0..1000u64)
        .find(|&seed| racy_counter(seed) != 2)
        .expect("no seed in 0..1000 exposed the lost update");
    for _ in 0..10 {
        assert_eq!(racy_counter(failing), 1, "seed {failing} did not replay");
    }
    assert!((0..1000u64).any(|seed| racy_counter(seed) == 2));
}

#[test]
fn deadlock_panics_naming_blocked_tasks() {
    let rt = Builder::new_deterministic(9).build().unwrap();
    let (_tx, rx) = oneshot::channel::<()>();
    let (tx2, rx2) = oneshot::channel::<()>();
    let _stuck = safepoint::task::Builder::new()
        .name("stuck-reader")
        .spawn_on(
            async move {
                let _ = rx2.await;
            },
            rt.handle(),
        )
        .unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            let _keep = tx2;
            let _ = rx.await;
        })
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("deadlock"), "{msg}");
    assert!(msg.contains("stuck-reader"), "{msg}");
    assert!(msg.contains("deterministic.rs"), "{msg}");
    assert!(msg.contains("seed 9"), "{msg}");
}

#[test]
fn task_panic_names_the_seed() {
    let rt = Builder::new_deterministic(77).build().unwrap();
    let err = rt
        .block_on(rt.spawn(async { panic!("bad state") }))
        .unwrap_err();
    assert!(err.is_panic());
    let text = err.to_string();
    assert!(
        text.contains("bad state") && text.contains("seed 77"),
        "{text}"
    );
}

#[test]
fn stop_the_world_from_block_on() {
    for seed in 0..8 {
        stop_the_world_from_block_on_with(seeded(seed, Strategy::Uniform).unwrap());
        stop_the_world_from_block_on_with(seeded(seed, Strategy::Pct { depth: 3 }).unwrap());
    }
}

fn stop_the_world_from_block_on_with(rt: safepoint::Runtime) {
    let progress = Arc::new(Mutex::new(0u32));
    for _ in 0..5 {
        let p = progress.clone();
        rt.spawn(async move {
            loop {
                *p.lock().unwrap() += 1;
                safepoint::safepoint().await;
                safepoint::task::yield_now().await;
            }
        });
    }
    let p = progress.clone();
    let report = rt.block_on(async move {
        let world = safepoint::Handle::current().stop_the_world().await;
        let frozen = *p.lock().unwrap();
        // The requester may await its own timers while holding the world.
        sleep(Duration::from_millis(10)).await;
        assert_eq!(*p.lock().unwrap(), frozen, "a task ran while stopped");
        world.report().clone()
    });
    assert_eq!(report.at_safepoint, 5);
    assert_eq!(report.tasks, 6);
    let before = *progress.lock().unwrap();
    // A task's first poll passes the safepoint and yields; its next counts
    // again (the next round for uniform, a step or a few for PCT).
    let resumed = (0..12).any(|_| {
        rt.step();
        *progress.lock().unwrap() > before
    });
    assert!(resumed, "tasks resumed");
}

#[test]
fn real_sockets_work_and_time_does_not_jump_over_io() {
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    // A peer outside the runtime answers after a real 100 ms: the 1 s
    // virtual timeout must not fire while the reply is in flight.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(&buf).unwrap();
    });
    let rt = Builder::new_deterministic(2).build().unwrap();
    let got = rt.block_on(async move {
        let mut s = safepoint::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        timeout(Duration::from_secs(1), s.read_exact(&mut buf))
            .await
            .expect("virtual time jumped past real I/O")
            .unwrap();
        buf
    });
    assert_eq!(&got, b"ping");
    peer.join().unwrap();
}

#[safepoint::test(flavor = "deterministic", seed = 4)]
async fn wait_all_blocked_inside_the_deterministic_runtime() {
    let o = log();
    for i in 0..3 {
        let o = o.clone();
        safepoint::spawn(async move { push(&o, format!("task {i}")) });
    }
    safepoint::task::wait_all_blocked().await;
    assert_eq!(lines(&o).len(), 3);
}

#[test]
fn step_and_advance_refuse_the_multi_thread_flavour() {
    let rt = Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.step())).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("new_deterministic"), "{msg}");
    let e = Builder::new_deterministic(1)
        .worker_threads(2)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

/// Under PCT a step polls one task: the runnable one of highest priority.
#[test]
fn pct_polls_one_task_per_step() {
    let rt = seeded(11, Strategy::Pct { depth: 3 }).unwrap();
    let out = log();
    for t in 0..5 {
        let o = out.clone();
        rt.spawn(async move { push(&o, format!("t{t}")) });
    }
    for polled in 1..=5 {
        assert_eq!(rt.step(), 1);
        assert_eq!(lines(&out).len(), polled);
    }
    assert_eq!(rt.step(), 0);
}

/// Six tasks that log around yields, under PCT; returns the log.
fn pct_interleaving(seed: u64) -> Vec<String> {
    logged_interleaving(seed, Strategy::Pct { depth: 3 }, 6, 3)
}

#[test]
fn pct_same_seed_same_interleaving_other_seeds_differ() {
    let first = pct_interleaving(5);
    assert_eq!(first.len(), 18);
    for _ in 0..20 {
        assert_eq!(pct_interleaving(5), first);
    }
    let distinct: std::collections::HashSet<Vec<String>> = (0..20).map(pct_interleaving).collect();
    assert!(
        distinct.len() >= 10,
        "20 seeds gave {} interleavings",
        distinct.len()
    );
}

/// A task that spins on `yield_now` waiting for another does not starve it,
/// whatever the priorities (PCT lowers a task that keeps running).
#[safepoint::test(flavor = "deterministic", seeds = 100, strategy = "pct", depth = 2)]
async fn pct_a_spinning_task_does_not_starve_the_one_it_waits_for() {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    let spinner = safepoint::spawn(async move {
        let mut spins = 0u32;
        while !f.load(std::sync::atomic::Ordering::SeqCst) {
            safepoint::task::yield_now().await;
            spins += 1;
        }
        spins
    });
    let f = flag.clone();
    let setter =
        safepoint::spawn(async move { f.store(true, std::sync::atomic::Ordering::SeqCst) });
    setter.await.unwrap();
    assert!(spinner.await.unwrap() < 10);
}

#[test]
fn pct_depth_zero_is_an_invalid_input() {
    let err = seeded(0, Strategy::Pct { depth: 0 }).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("depth"), "{err}");
}
