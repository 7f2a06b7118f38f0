//! Unix signals as async streams: [`signal`] returns a [`Signal`] listener.
//!
//! Shaped like `tokio::signal::unix`. Every listener of a signal is notified of
//! every delivery; several deliveries before a listener looks coalesce into one
//! (as the OS itself does).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use libc::c_int;

use crate::driver::{context, Handle};

/// A signal number, with constructors for the common ones.
///
/// # Examples
///
/// ```
/// use safepoint_io::signal::unix::SignalKind;
/// assert_eq!(SignalKind::terminate().as_raw_value(), libc::SIGTERM);
/// assert_eq!(SignalKind::from_raw(libc::SIGUSR1), SignalKind::user_defined1());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(c_int);

impl SignalKind {
    /// Any signal by number.
    pub const fn from_raw(signum: c_int) -> SignalKind {
        SignalKind(signum)
    }
    /// The signal number.
    pub const fn as_raw_value(&self) -> c_int {
        self.0
    }
    /// SIGINT (Ctrl-C).
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }
    /// SIGTERM.
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }
    /// SIGHUP.
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }
    /// SIGQUIT.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }
    /// SIGUSR1.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }
    /// SIGUSR2.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }
    /// SIGCHLD.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }
    /// SIGWINCH.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

static NEXT_LISTENER: AtomicU64 = AtomicU64::new(1);

/// Starts listening for `kind` on the current driver. From now on the signal's
/// default action (say, terminating on SIGTERM) is replaced by delivery to
/// listeners. Fails with the OS error for signals that cannot be caught
/// (SIGKILL, SIGSTOP) or that signal-hook forbids (SIGSEGV, SIGILL, SIGFPE). Panics outside a runtime.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::signal::unix::{signal, SignalKind};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let mut hup = signal(SignalKind::hangup()).unwrap();
///     // SAFETY: sends SIGHUP to this thread; the listener above handles it.
///     unsafe { libc::raise(libc::SIGHUP) };
///     assert_eq!(hup.recv().await, Some(()));
/// });
/// ```
#[track_caller]
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let handle = context::current();
    let seen = handle
        .inner
        .signals
        .listen(&handle.inner.registry, kind.0)?;
    Ok(Signal {
        handle,
        signum: kind.0,
        seen,
        id: NEXT_LISTENER.fetch_add(1, Ordering::Relaxed),
    })
}

/// A listener for one signal; also a `Stream` of `()`.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// use safepoint_io::driver::{Config, Driver};
/// use safepoint_io::signal::unix::{signal, SignalKind};
///
/// let mut driver = Driver::new(Config::default()).unwrap();
/// driver.block_on(async {
///     let first = signal(SignalKind::user_defined2()).unwrap();
///     let second = signal(SignalKind::user_defined2()).unwrap();
///     // SAFETY: sends SIGUSR2 to this thread; the listeners above handle it.
///     unsafe { libc::raise(libc::SIGUSR2) };
///     // Every listener sees every delivery.
///     let (a, b) = futures::future::join(first.take(1).count(), second.take(1).count()).await;
///     assert_eq!((a, b), (1, 1));
/// });
/// ```
#[derive(Debug)]
pub struct Signal {
    handle: Handle,
    signum: c_int,
    seen: u64,
    id: u64,
}

impl Signal {
    /// Waits for the next delivery. Never returns `None` today (the driver keeps
    /// the signal source for its whole life); the `Option` is tokio's shape.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let signals = &self.handle.inner.signals;
        // A delivery waiting: a pending stop parks the task before it is
        // consumed, so the poll after the resume still receives it.
        if crate::gate::stop_pending() && signals.delivered_since(self.signum, self.seen) {
            std::task::ready!(crate::gate::poll_proceed(cx));
        }
        signals
            .poll_recv(cx, self.signum, &mut self.seen, self.id)
            .map(Some)
    }
}

impl futures_core::Stream for Signal {
    type Item = ();
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.handle.inner.signals.remove(self.signum, self.id);
    }
}
