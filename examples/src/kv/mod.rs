//! `safepoint-kv`: a Redis-compatible (RESP2) key-value server that takes
//! consistent checkpoints by stopping the world.
//!
//! Run it with `cargo run --release --example kv` (then `redis-cli -p 6380`), or
//! `cargo run --release --example kv -- --duration 10` for the built-in load demo.
//!
//! - [`config`]: command-line flags.
//! - [`aof`]: the append-only log (`--appendonly`), its group commit and replay.
//! - [`request`]: the incremental request parser (RESP2 and inline).
//! - [`resp`]: replies on the wire (encoder; parser for the load clients).
//! - [`limits`]: the open-file limit and `--maxclients`.
//! - [`ratelog`]: log lines a client can flood, printed once a second.
//! - [`store`]: the sharded key space, compact tables with versioned buckets.
//! - [`commands`]: what each command does to the store.
//! - [`snapshot`]: the `dump.kv` file format, durable writes, checked loads.
//! - [`checkpoint`]: the task that stops the world, captures, and writes.
//! - [`server`]: accept loop, connections, graceful shutdown.
//! - [`demo`]: built-in load clients for `--duration`.
//! - [`stats`]: latency histogram and checkpoint figures.
//! - [`main`] (here): start-up, signals, the demo report.
//!
//! # Allocator
//!
//! The server binary and the `kv` example use mimalloc as the global
//! allocator (Redis, likewise, ships with jemalloc). What a checkpoint
//! frees was the crux with the store before the current one, built on
//! persistent maps: the snapshot writer dropped the captured version, whose
//! nodes the workers allocated (the old copies of every path a `SET`
//! replaced since the capture).
//!
//! - With glibc's malloc those frees went through the workers' arena lock,
//!   and the (niced, often descheduled) writer held it while a worker
//!   mid-`SET` waited: under a saturating `SET` load at 5 M keys a stop took
//!   up to 190 ms, and the laggard report showed a worker inside one poll
//!   for 2-48 ms.
//! - mimalloc takes another thread's frees without a lock, but the owning
//!   thread sorts them out later, inside one of its own allocations: freed
//!   all at once after the write, they still stalled workers for 3-24 ms
//!   (perf: all of it in `_mi_page_free_collect`), 7 of 30 stops over 1 ms.
//!   Dropping each shard as soon as it was written spread them out (120 of
//!   120 stops under 0.7 ms).
//!
//! The current store ([`store`], versioned buckets) makes no copy to free:
//! the writer frees only its own serialised batches. A `SET` of a value
//! the same size as the old one copies it into the old allocation (up to
//! 64 KB); swapping allocations, each overwrite freed on one worker a
//! block that another thread had allocated, and under a saturating `SET`
//! load over 1 M keys mimalloc's pages filled with such holes: resident
//! memory went from 147 to 179-183 MB with no checkpoint at all, more than
//! the 1.2x a checkpoint may cost in all (now 148-149 MB). A value of
//! another size still replaces the old one, freed by the worker that
//! replaced it. Large requests are another matter: see
//! `give_back_freed_memory` in [`server`].

pub mod aof;
pub mod checkpoint;
pub mod commands;
pub mod config;
pub mod demo;
pub mod limits;
pub mod ratelog;
pub mod request;
pub mod resp;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod store;

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use futures::future::{self, Either};

use checkpoint::Checkpointer;
use commands::ServerFacts;
use config::{Config, Parsed, USAGE};
use server::{ClientCounter, ClientLimits, ServerLogs, ServerState, ShutdownTrigger};
use snapshot::Problem;
use stats::CheckpointStats;
use store::{now_ms, Store, DEFAULT_SHARDS};

/// Runs the server with the process's arguments and exits: 0 on a clean stop,
/// 1 on a runtime error (including a corrupt snapshot), 2 on bad flags.
pub fn main() -> ! {
    let code = match config::parse(std::env::args().skip(1)) {
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            2
        }
        Ok(Parsed::Run(config)) => match run(&config) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
    };
    std::process::exit(code)
}

/// Runs the server (and, with `--duration`, the demo) until it stops.
pub fn run(config: &Config) -> Result<(), String> {
    let started = Instant::now();
    let cap = limits::fit_max_clients(config.max_clients)?;
    let (mut store, loaded_save_ms, snapshot_gen) = load_store(config)?;
    let log_gen = open_log(config, &mut store, snapshot_gen)?;
    let store = Arc::new(store);
    let stats = Arc::new(CheckpointStats::new(loaded_save_ms));
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .thread_name("kv-worker")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = rt.block_on(server::bind(addr)).map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let (trigger, shutdown) = server::shutdown_pair();

    let demo = config.duration.map(|duration| {
        let trigger = trigger.clone();
        let (clients, threads) = (config.clients, (config.workers / 2).max(1));
        std::thread::Builder::new()
            .name("kv-demo".into())
            .spawn(move || {
                let report = demo::run_load(local, clients, duration, threads);
                trigger.fire();
                report
            })
            .map_err(|e| format!("cannot start the demo thread: {e}"))
    });
    let demo = demo.transpose()?;

    let final_checkpoint = rt.block_on(async {
        let checkpointer = Checkpointer::start(
            store.clone(),
            stats.clone(),
            config.dir.clone(),
            config.checkpoint_every,
            log_gen,
        );
        safepoint::spawn(watch_signals(trigger));
        let state = Arc::new(ServerState {
            store: store.clone(),
            stats: stats.clone(),
            facts: ServerFacts {
                started,
                port: local.port(),
                workers: config.workers,
                checkpoint_every: config.checkpoint_every,
                dir: config.dir.display().to_string(),
            },
            checkpointer: checkpointer.clone(),
            limits: ClientLimits {
                max_clients: cap.max_clients,
                max_request: config.max_request,
                output_limit: config.output_limit,
            },
            stop_writes_on_checkpoint_error: config.stop_writes_on_checkpoint_error,
            clients: ClientCounter::default(),
            logs: ServerLogs::default(),
        });
        server::serve(listener, state, shutdown).await;
        println!("shutdown: taking the final checkpoint");
        checkpointer.save().await
    });

    let load = match demo {
        Some(thread) => Some(
            thread
                .join()
                .map_err(|_| "the demo load thread panicked".to_string())?
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    if let Some(log) = store.log() {
        log.close();
    }
    let final_checkpoint = final_checkpoint.map_err(|e| format!("final checkpoint: {e}"))?;
    if let Some(load) = load {
        print_demo_report(config, &load, &stats, store.len());
    }
    println!(
        "stopped: {} keys saved to {}",
        final_checkpoint.keys,
        snapshot::path_in(&config.dir).display()
    );
    rt.shutdown_timeout(server::SHUTDOWN_GRACE);
    Ok(())
}

/// Loads `<dir>/dump.kv` if present. A corrupt file is an error unless
/// `--ignore-corrupt-snapshot`, which moves it aside (so the next checkpoint
/// cannot destroy what might still be recovered) and starts empty.
/// With `--appendonly yes`, replays the log generations from `snapshot_gen`
/// on into `store`, opens the log and attaches it. Returns the generation
/// new records (or, without the log, snapshots) start from.
fn open_log(config: &Config, store: &mut Store, snapshot_gen: u64) -> Result<u64, String> {
    if !config.appendonly {
        let gens = aof::log::generations(&config.dir).map_err(|e| e.to_string())?;
        if let Some(&last) = gens.last() {
            eprintln!(
                "warning: ignoring {} append-only log file(s) in {} (--appendonly no); the next \
                 checkpoint supersedes them",
                gens.len(),
                config.dir.display()
            );
            return Ok((last + 1).max(snapshot_gen));
        }
        return Ok(snapshot_gen);
    }
    let replayed = aof::replay::replay(&config.dir, snapshot_gen, store, now_ms())?;
    if replayed.files > 0 {
        println!(
            "replayed {} writes from {} append-only log file(s); {} keys",
            replayed.records,
            replayed.files,
            store.len()
        );
    }
    let log =
        aof::AppendLog::open(&config.dir, config.appendfsync, replayed.next_gen).map_err(|e| {
            format!(
                "cannot open the append-only log in {}: {e}",
                config.dir.display()
            )
        })?;
    store.attach_log(log);
    Ok(replayed.next_gen)
}

fn load_store(config: &Config) -> Result<(Store, Option<u64>, u64), String> {
    if snapshot::remove_tmp(&config.dir) {
        println!(
            "removed {} left by an interrupted checkpoint",
            config.dir.join(snapshot::TMP_NAME).display()
        );
    }
    let path = snapshot::path_in(&config.dir);
    match snapshot::load(&path) {
        Ok(Some(snap)) => {
            let (saved_at, log_gen) = (snap.saved_at_ms, snap.log_gen);
            let store = Store::from_entries(DEFAULT_SHARDS, snap.entries, now_ms());
            println!("loaded {} keys from {}", store.len(), path.display());
            Ok((store, Some(saved_at), log_gen))
        }
        Ok(None) => Ok((Store::new(DEFAULT_SHARDS), None, 0)),
        Err(e) if config.ignore_corrupt_snapshot && !matches!(e.problem, Problem::Io(_)) => {
            let aside = config.dir.join(format!("dump.kv.corrupt-{}", now_ms()));
            std::fs::rename(&path, &aside).map_err(|re| {
                format!(
                    "{e}; and moving it aside to {} failed: {re}",
                    aside.display()
                )
            })?;
            eprintln!(
                "warning: {e}; moved it to {} and starting empty (--ignore-corrupt-snapshot)",
                aside.display()
            );
            Ok((Store::new(DEFAULT_SHARDS), None, 0))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Fires `trigger` on SIGINT or SIGTERM.
async fn watch_signals(trigger: ShutdownTrigger) {
    let which = match future::select(
        pin!(safepoint::signal::ctrl_c()),
        pin!(safepoint::signal::terminate()),
    )
    .await
    {
        Either::Left((result, _)) => result.map(|()| "SIGINT"),
        Either::Right((result, _)) => result.map(|()| "SIGTERM"),
    };
    match which {
        Ok(name) => println!("shutdown: {name} received; finishing in-flight commands"),
        Err(e) => {
            // Without signal handling the server can still be stopped by the
            // demo timer; say so rather than shutting down for no reason.
            eprintln!("warning: cannot listen for signals: {e}");
            future::pending::<()>().await;
        }
    }
    trigger.fire();
}

fn print_demo_report(
    config: &Config,
    load: &demo::LoadReport,
    stats: &CheckpointStats,
    keys: usize,
) {
    let secs = load.elapsed.as_secs_f64().max(1e-9);
    let c = stats.summary();
    println!();
    println!(
        "demo: {} clients, pipeline {}, {:.1} s, {} workers",
        config.clients,
        demo::PIPELINE,
        secs,
        config.workers
    );
    println!(
        "  throughput   {:.0} ops/s ({} ops, {} error replies)",
        load.ops as f64 / secs,
        load.ops,
        load.errors
    );
    println!(
        "  latency      p50 {} µs, p99 {} µs, max {} µs",
        load.latency.quantile_us(0.5),
        load.latency.quantile_us(0.99),
        load.latency.max_us()
    );
    println!("  checkpoints  {} taken, {} failed", c.taken, c.failed);
    println!(
        "  pause        p50 {} µs, p99 {} µs, max {} µs (request to release)",
        c.pauses.quantile_us(0.5),
        c.pauses.quantile_us(0.99),
        c.pauses.max_us()
    );
    println!(
        "  time to stop p50 {} µs, p99 {} µs, max {} µs",
        c.stops.quantile_us(0.5),
        c.stops.quantile_us(0.99),
        c.stops.max_us()
    );
    println!("  keys         {keys}");
    for failure in &load.failed_clients {
        println!("  failed       {failure}");
    }
}
