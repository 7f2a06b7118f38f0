//! The thread-local "current driver".
//!
//! Free functions such as `sleep` or `TcpListener::bind` take no handle argument
//! (to match tokio's shape), so they find the driver through this thread-local.
//! The runtime sets it on every thread that polls tasks; futures clone the handle
//! when they are created so they can later be polled anywhere.

use std::cell::RefCell;
use std::marker::PhantomData;

use super::Handle;

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// Restores the previously current driver when dropped. Returned by
/// [`Handle::enter`]; guards nest.
///
/// It is `!Send` because it restores state of the thread that created it.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver, Handle};
///
/// let driver = Driver::new(Config::default()).unwrap();
/// let guard = driver.handle().enter();
/// assert!(Handle::try_current().is_some());
/// drop(guard);
/// assert!(Handle::try_current().is_none());
/// ```
#[must_use = "the handle is current only while the guard lives"]
#[derive(Debug)]
pub struct EnterGuard {
    prev: Option<Handle>,
    _not_send: PhantomData<*const ()>,
}

pub(crate) fn enter(handle: Handle) -> EnterGuard {
    let prev = CURRENT.with(|c| c.borrow_mut().replace(handle));
    EnterGuard {
        prev,
        _not_send: PhantomData,
    }
}

/// `enter`, or `None` once this thread's locals are torn down (a runtime
/// dropped from a thread-local destructor must not panic).
pub(crate) fn try_enter(handle: Handle) -> Option<EnterGuard> {
    let prev = CURRENT.try_with(|c| c.borrow_mut().replace(handle)).ok()?;
    Some(EnterGuard {
        prev,
        _not_send: PhantomData,
    })
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // `try_with`: a guard dropped during thread teardown must not panic.
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
    }
}

/// A clone of the current handle, if any.
pub(crate) fn try_current() -> Option<Handle> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Runs `f` on the current handle without cloning it (used by `Instant::now`,
/// which is hot enough that an Arc increment per call matters).
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Handle>) -> R) -> R {
    let mut f = Some(f);
    CURRENT
        .try_with(|c| (f.take().unwrap())(c.borrow().as_ref()))
        .unwrap_or_else(|_| (f.take().unwrap())(None))
}

/// The current handle, or the "no runtime" panic.
#[track_caller]
pub(crate) fn current() -> Handle {
    match try_current() {
        Some(h) => h,
        None => panic!("{}", crate::NO_RUNTIME),
    }
}
