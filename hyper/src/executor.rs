//! [`SafepointExecutor`]: hyper's `rt::Executor` on a safepoint runtime.
//!
//! hyper spawns background futures for HTTP/2 (one per connection's driver
//! and per streamed body). They are ordinary safepoint tasks, named so that
//! a stop report that names a laggard says it is hyper's. The executor keeps
//! the runtime's `Handle`, so it works from any thread, not only from a task.

use std::future::Future;
use std::sync::Arc;

use safepoint::Handle;

/// Spawns hyper's background futures as named tasks on a safepoint runtime.
///
/// # Examples
///
/// ```
/// use safepoint_hyper::SafepointExecutor;
/// use hyper_util::server::conn::auto;
///
/// let rt = safepoint::Runtime::new()?;
/// let _builder = auto::Builder::new(SafepointExecutor::with_handle(rt.handle().clone()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SafepointExecutor {
    handle: Handle,
    name: Arc<str>,
}

impl SafepointExecutor {
    /// An executor for the current runtime; tasks are named `hyper`.
    ///
    /// # Panics
    ///
    /// Outside a runtime (use [`with_handle`](Self::with_handle) there).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new()?;
    /// let exec = rt.block_on(async { safepoint_hyper::SafepointExecutor::new() });
    /// # drop(exec);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    // No `Default`: a default value that panics outside a runtime would
    // surprise generic code; `new` says so in its name's documentation.
    #[allow(clippy::new_without_default)]
    #[track_caller]
    pub fn new() -> SafepointExecutor {
        SafepointExecutor::with_handle(Handle::current())
    }

    /// An executor for the runtime of `handle`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new()?;
    /// let exec = safepoint_hyper::SafepointExecutor::with_handle(rt.handle().clone());
    /// # drop(exec);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_handle(handle: Handle) -> SafepointExecutor {
        SafepointExecutor {
            handle,
            name: Arc::from("hyper"),
        }
    }

    /// Names the tasks it spawns (shown in stop reports and panics).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new()?;
    /// let exec = safepoint_hyper::SafepointExecutor::with_handle(rt.handle().clone())
    ///     .name("h2-stream");
    /// # drop(exec);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(mut self, name: &str) -> SafepointExecutor {
        self.name = Arc::from(name);
        self
    }
}

impl<F> hyper::rt::Executor<F> for SafepointExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        // `spawn_on` cannot fail (the `Result` is tokio's shape); the task
        // runs detached, as hyper expects.
        let spawned = safepoint::task::Builder::new()
            .name(&self.name)
            .spawn_on(fut, &self.handle);
        drop(spawned);
    }
}
