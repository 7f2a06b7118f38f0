//! The multi-thread entry points: `#[safepoint::main]` and the default
//! flavour of `#[safepoint::test]`.
//!
//! Both build a multi-thread runtime with the public `Builder` and
//! `block_on` the function's body, exactly what a user writes by hand, so
//! the macro costs nothing at run time beyond that.

use std::future::Future;

use crate::{Builder, Runtime};

fn build(worker_threads: Option<usize>, who: &str) -> Runtime {
    let mut builder = Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("{who}: cannot build the safepoint runtime: {e}"))
}

/// Runs `#[safepoint::main]`'s body on a new multi-thread runtime
/// (`worker_threads` workers, or one per CPU) and returns its output.
///
/// # Panics
///
/// If the runtime cannot be built (the message says why).
///
/// # Examples
///
/// ```
/// let out = safepoint::entry::main(Some(2), async { safepoint::spawn(async { 7 }).await.unwrap() });
/// assert_eq!(out, 7);
/// ```
pub fn main<F: Future>(worker_threads: Option<usize>, body: F) -> F::Output {
    build(worker_threads, "#[safepoint::main]").block_on(body)
}

/// Runs a `#[safepoint::test]` body on a new multi-thread runtime with
/// `worker_threads` workers.
///
/// # Panics
///
/// If the runtime cannot be built; a panic in the body propagates.
///
/// # Examples
///
/// ```
/// let out = safepoint::entry::multi_thread_test(2, async { 1 + 1 });
/// assert_eq!(out, 2);
/// ```
pub fn multi_thread_test<F: Future>(worker_threads: usize, body: F) -> F::Output {
    build(Some(worker_threads), "#[safepoint::test]").block_on(body)
}
