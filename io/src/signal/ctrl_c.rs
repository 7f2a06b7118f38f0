//! [`ctrl_c`] and [`terminate`]: one-shot waits for the two shutdown signals.
//!
//! Thin wrappers over [`unix::signal`](super::unix::signal). The listener is
//! installed when the function is *called* (not at first poll), so
//! `let c = ctrl_c();` followed by raising SIGINT is never missed.

use std::future::Future;
use std::io;

use super::unix::{signal, SignalKind};

/// Completes on the next SIGINT. Panics outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let interrupted = safepoint_io::signal::ctrl_c(); // listening from here on
///     // SAFETY: sends SIGINT to this thread; the listener above handles it.
///     unsafe { libc::raise(libc::SIGINT) };
///     interrupted.await.unwrap();
///     println!("shutting down");
/// });
/// ```
#[track_caller]
pub fn ctrl_c() -> impl Future<Output = io::Result<()>> + Send + 'static {
    once(SignalKind::interrupt())
}

/// Completes on the next SIGTERM. Panics outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let terminated = safepoint_io::signal::terminate();
///     // SAFETY: sends SIGTERM to this thread; the listener above handles it.
///     unsafe { libc::raise(libc::SIGTERM) };
///     terminated.await.unwrap();
/// });
/// ```
#[track_caller]
pub fn terminate() -> impl Future<Output = io::Result<()>> + Send + 'static {
    once(SignalKind::terminate())
}

#[track_caller]
fn once(kind: SignalKind) -> impl Future<Output = io::Result<()>> + Send + 'static {
    let listener = signal(kind);
    async move {
        let mut listener = listener?;
        listener.recv().await;
        Ok(())
    }
}
