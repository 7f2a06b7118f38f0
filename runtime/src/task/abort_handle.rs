//! `AbortHandle`: aborts a task without owning its output.
//!
//! [`JoinSet::spawn`](super::JoinSet::spawn) returns one, as tokio's does,
//! while the set keeps the `JoinHandle` it joins. The handle is type-erased
//! (the task's output type is not part of it) so that handles to tasks of
//! different sets can sit in one collection.

use std::fmt;
use std::sync::Arc;

use super::Id;

/// What an [`AbortHandle`] can do to the task behind it.
pub(crate) trait Abort: Send + Sync {
    fn abort(&self);
    fn is_finished(&self) -> bool;
}

/// An owned permission to abort a task; it does not give its output.
///
/// Dropping it does nothing to the task. Aborting a task that already
/// finished does nothing.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// rt.block_on(async {
///     let mut set = safepoint::task::JoinSet::new();
///     let abort = set.spawn(std::future::pending::<()>());
///     abort.abort();
///     assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled());
/// });
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    id: Id,
    task: Arc<dyn Abort>,
}

impl AbortHandle {
    pub(crate) fn new(id: Id, task: Arc<dyn Abort>) -> AbortHandle {
        AbortHandle { id, task }
    }

    /// Aborts the task, as [`JoinHandle::abort`](super::JoinHandle::abort)
    /// does: it is dropped without being polled again (or when its current
    /// poll returns), and joining it yields a cancelled `JoinError`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     set.spawn(std::future::pending::<()>()).abort();
    ///     assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the task has finished (completed, panicked or been aborted).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     let abort = set.spawn(async {});
    ///     set.join_next().await.unwrap().unwrap();
    ///     assert!(abort.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// The task's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let mut set = safepoint::task::JoinSet::new();
    ///     let abort = set.spawn(async { safepoint::task::id() });
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), Some(abort.id()));
    /// });
    /// ```
    pub fn id(&self) -> Id {
        self.id
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle").field("id", &self.id).finish()
    }
}
