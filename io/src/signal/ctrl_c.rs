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
/// ```ignore
/// // Needs a runtime (the `safepoint` crate).
/// safepoint::signal::ctrl_c().await?;
/// println!("shutting down");
/// ```
#[track_caller]
pub fn ctrl_c() -> impl Future<Output = io::Result<()>> + Send + 'static {
    once(SignalKind::interrupt())
}

/// Completes on the next SIGTERM. Panics outside a runtime.
///
/// # Examples
///
/// ```ignore
/// // Needs a runtime (the `safepoint` crate).
/// safepoint::signal::terminate().await?;
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
