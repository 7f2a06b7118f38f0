//! Task identity: the id, name and spawn location every task carries.
//!
//! These live in the task cell's header (async-task's metadata), so reading
//! them never needs a lock or an extra allocation: a stop's laggard report
//! reads them straight from the runnable it is about to poll.

use std::any::Any;
use std::fmt;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::Arc as StdArc;

use crate::sync::Mutex;

/// An opaque id that is unique among the tasks of one runtime.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let handle = rt.spawn(async { safepoint::task::id() });
/// let id = handle.id();
/// assert_eq!(rt.block_on(handle).unwrap(), Some(id));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub(crate) NonZeroU64);

impl Id {
    pub(crate) fn from_u64(n: u64) -> Id {
        Id(NonZeroU64::new(n).expect("task ids start at 1"))
    }

    /// The id as a number, for logs and maps.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let handle = rt.spawn(async {});
    /// assert!(handle.id().as_u64() > 0);
    /// ```
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The header of every task cell.
pub(crate) struct TaskMeta {
    pub(crate) id: Id,
    pub(crate) name: Option<StdArc<str>>,
    pub(crate) location: &'static Location<'static>,
    /// Where the panic of an aborted task's destructor goes, so that its
    /// `JoinHandle` reports it (protocol point 14). Set by
    /// `JoinHandle::abort` before it cancels; read by the task cell when it
    /// drops the future. `None` for a task nobody aborted: its destructor's
    /// panic is contained and reported by the panic hook only.
    pub(crate) abort_sink: Mutex<Option<StdArc<PanicSlot>>>,
}

/// One caught panic payload, handed from the task cell to its handle.
pub(crate) type PanicSlot = Mutex<Option<Box<dyn Any + Send + 'static>>>;

impl fmt::Debug for TaskMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskMeta")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A task's identity as reports show it.
#[derive(Clone, Debug)]
pub(crate) struct TaskInfo {
    pub(crate) id: Id,
    pub(crate) name: Option<StdArc<str>>,
    pub(crate) location: &'static Location<'static>,
}

impl TaskMeta {
    pub(crate) fn new(
        id: Id,
        name: Option<StdArc<str>>,
        location: &'static Location<'static>,
    ) -> TaskMeta {
        TaskMeta {
            id,
            name,
            location,
            abort_sink: Mutex::new(None),
        }
    }

    pub(crate) fn info(&self) -> TaskInfo {
        TaskInfo {
            id: self.id,
            name: self.name.clone(),
            location: self.location,
        }
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " \"{name}\"")?;
        }
        write!(f, " spawned at {}", self.location)
    }
}
