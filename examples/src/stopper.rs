//! A background task that stops the world on a period, for the example
//! servers' `--stop-every MS`: what a server that checkpoints or
//! reconfigures while busy does, with nothing in its handlers for it (no
//! `safepoint().await`: every await on a socket or timer is a safepoint
//! while a stop is pending, the runtime's protocol point 10).
//!
//! Each stop is held for `HOLD` (standing in for the work done on the
//! stopped world) and has a 1 s timeout: a stop that does not complete is
//! withdrawn and its report printed, never a hang. At the end the runtime's
//! stop metrics are printed: time to stop and whole-pause histograms, and
//! what the slowest stop waited for.

use std::time::Duration;

/// How long each stop holds the world.
pub const HOLD: Duration = Duration::from_micros(100);

/// How long a stop may take before it is withdrawn and reported.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Stops the world every `every` until aborted (spawn it, abort it at
/// shutdown); a stop that times out is reported on stderr. Panics outside
/// a runtime.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let stopper = rt.spawn(safepoint_examples::stopper::run(std::time::Duration::from_millis(5)));
/// std::thread::sleep(std::time::Duration::from_millis(50));
/// stopper.abort();
/// assert!(rt.metrics().stops >= 1);
/// ```
pub async fn run(every: Duration) {
    let handle = safepoint::Handle::current();
    let mut tick = safepoint::time::interval(every);
    tick.set_missed_tick_behavior(safepoint::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match handle.stop_the_world_timeout(TIMEOUT).await {
            Ok(world) => {
                let held = std::time::Instant::now();
                while held.elapsed() < HOLD {
                    std::hint::spin_loop();
                }
                drop(world);
            }
            Err(e) => eprintln!("stopper: {e}"),
        }
    }
}

/// The runtime's stop figures, as the example servers print them at exit.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// drop(rt.handle().stop_the_world_blocking());
/// let text = safepoint_examples::stopper::summary(&rt.metrics());
/// assert!(text.contains("1 stops"));
/// ```
pub fn summary(m: &safepoint::RuntimeMetrics) -> String {
    let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
    let mut out = format!(
        "{} stops; time to stop p50 {} p99 {} max {}; pause (request to release) p50 {} p99 {} max {}",
        m.stops,
        us(m.time_to_stop.quantile(0.5)),
        us(m.time_to_stop.quantile(0.99)),
        us(m.time_to_stop.max()),
        us(m.pause.quantile(0.5)),
        us(m.pause.quantile(0.99)),
        us(m.pause.max()),
    );
    if let Some(slowest) = m.slowest_stops.first() {
        out.push_str(&format!(
            "\nslowest stop #{} took {}",
            slowest.stop,
            us(slowest.time_to_stop)
        ));
        for a in &slowest.last_to_block {
            out.push_str(&format!(
                "\n  waited for task {} {} at {} (ran {}, {} polls)",
                a.id,
                a.name.as_deref().unwrap_or("(unnamed)"),
                a.location,
                us(a.runnable_for),
                a.polls
            ));
        }
    }
    out
}
