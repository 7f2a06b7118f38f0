//! Thread hooks: the closures `Builder::on_thread_start`, `on_thread_stop`,
//! `on_thread_park` and `on_thread_unpark` install, and (with the
//! `tokio-compat` feature) the tokio handle every runtime thread enters.
//!
//! They live in one cloneable value inside the runtime's `Config` so that
//! the worker loop and the blocking pool each need a single line to honour
//! them: [`Hooks::enter_thread`] at the top of a thread's body returns a
//! guard that ran the start hook and runs the stop hook when the thread's
//! body ends (even by unwinding), and the tokio handle, if any, stays
//! entered between the two, so the user's start hook can already use tokio.

use std::fmt;
use std::sync::Arc;

/// A user hook; `Arc` so the builder and the config stay `Clone`.
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync + 'static>;

/// The hooks of one runtime (all optional).
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) start: Option<Hook>,
    pub(crate) stop: Option<Hook>,
    pub(crate) park: Option<Hook>,
    pub(crate) unpark: Option<Hook>,
    #[cfg(feature = "tokio-compat")]
    pub(crate) tokio: Option<Arc<crate::tokio_compat::TokioCompat>>,
}

impl Hooks {
    /// Runs the start hook (inside the tokio context, if any) and returns a
    /// guard that runs the stop hook and leaves the tokio context on drop.
    pub(crate) fn enter_thread(&self) -> ThreadGuard<'_> {
        let guard = ThreadGuard {
            hooks: self,
            _tokio: self.enter_tokio(),
        };
        if let Some(start) = &self.start {
            start();
        }
        guard
    }

    /// Enters the tokio compatibility runtime's handle, if there is one,
    /// for the guard's lifetime (`block_on` and `Handle::enter` use this).
    pub(crate) fn enter_tokio(&self) -> TokioGuard<'_> {
        #[cfg(feature = "tokio-compat")]
        return self.tokio.as_ref().map(|t| t.enter());
        #[cfg(not(feature = "tokio-compat"))]
        None
    }

    /// Runs the park hook; the guard runs the unpark hook when dropped.
    /// A worker holds it from just before it parks for lack of work until
    /// it runs again (however it wakes: by an unpark, or by turning the
    /// driver into work of its own), so the two hooks always alternate.
    #[inline]
    pub(crate) fn parked(&self) -> ParkGuard<'_> {
        if let Some(park) = &self.park {
            park();
        }
        ParkGuard(self)
    }
}

/// Runs the unpark hook when dropped; see [`Hooks::parked`].
pub(crate) struct ParkGuard<'a>(&'a Hooks);

impl Drop for ParkGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(unpark) = &self.0.unpark {
            unpark();
        }
    }
}

/// The tokio context entered by [`Hooks::enter_tokio`].
#[cfg(feature = "tokio-compat")]
pub(crate) type TokioGuard<'a> = Option<tokio::runtime::EnterGuard<'a>>;
/// Without the `tokio-compat` feature there is nothing to enter.
#[cfg(not(feature = "tokio-compat"))]
pub(crate) type TokioGuard<'a> = Option<std::marker::PhantomData<&'a ()>>;

/// Runs the stop hook when a runtime thread's body ends.
pub(crate) struct ThreadGuard<'a> {
    hooks: &'a Hooks,
    // Dropped after the stop hook has run (fields drop after `drop`), so
    // the stop hook can still use tokio too.
    _tokio: TokioGuard<'a>,
}

impl Drop for ThreadGuard<'_> {
    fn drop(&mut self) {
        if let Some(stop) = &self.hooks.stop {
            stop();
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |h: &Option<Hook>| if h.is_some() { "set" } else { "unset" };
        let mut d = f.debug_struct("Hooks");
        d.field("on_thread_start", &set(&self.start))
            .field("on_thread_stop", &set(&self.stop))
            .field("on_thread_park", &set(&self.park))
            .field("on_thread_unpark", &set(&self.unpark));
        #[cfg(feature = "tokio-compat")]
        d.field("tokio_compat", &self.tokio.is_some());
        d.finish()
    }
}
