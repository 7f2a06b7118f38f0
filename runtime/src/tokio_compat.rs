//! The tokio compatibility mode (feature `tokio-compat`,
//! `Builder::enable_tokio_compat`).
//!
//! Code written for tokio calls `tokio::time::sleep`, `tokio::net::*` or
//! `tokio::spawn`, and each of those looks up a tokio handle in a
//! thread-local and panics ("there is no reactor running") without one. The
//! mode gives them one: a tokio multi-thread runtime with a single worker
//! thread and its I/O and time drivers, owned by our runtime, whose handle
//! every one of our threads enters (workers and blocking threads for their
//! whole life, `block_on` and `Handle::enter` for their scope).
//!
//! Why a whole tokio runtime rather than only its drivers: tokio's drivers
//! are not public, and something has to turn them. Tokio's own worker does
//! that when it has nothing to run, which in this mode is nearly always:
//! it sleeps in `epoll_wait` and delivers tokio timer and socket wakes to
//! our tasks' wakers. Those arrive as wakes from outside our scheduler, so
//! during a stop they are kept for the resume like any other. What tokio
//! spawns (`tokio::spawn`, `spawn_blocking`) runs on tokio's thread, outside
//! our scheduler and so outside any stop of the world.

use std::io;

/// The side tokio runtime; shut down without blocking when the last
/// reference to our runtime's shared state goes.
pub(crate) struct TokioCompat {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl TokioCompat {
    /// Starts the side runtime; its thread is `{thread_name}-tokio`.
    pub(crate) fn new(thread_name: &str) -> io::Result<TokioCompat> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("{thread_name}-tokio"))
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(TokioCompat {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Makes the side runtime the current tokio runtime on this thread
    /// until the guard drops.
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.handle.enter()
    }
}

impl Drop for TokioCompat {
    fn drop(&mut self) {
        // The last reference can go on any thread, including one inside an
        // async context where a blocking shutdown would panic: so never
        // block. Tasks still on tokio's side are dropped by its thread.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
