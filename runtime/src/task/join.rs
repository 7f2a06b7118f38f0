//! `JoinHandle` and `JoinError`: awaiting a task's output, aborting it.
//!
//! The handle wraps async-task's `Task`. Aborting goes through async-task's
//! own cancellation (`Task::cancel`), which already does the three things
//! tokio users expect: a queued task is dropped when its runnable comes up, a
//! blocked task is rescheduled so that its future is dropped on a worker, and
//! a task being polled right now is dropped as soon as that poll returns. If
//! the task finished before the abort took effect, awaiting the handle still
//! yields its output, as in tokio.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc as StdArc;
use std::sync::Mutex as StdMutex;
use std::task::{Context, Poll, Waker};

use super::cell::Contained;
use super::id::{Id, PanicSlot, TaskMeta};
use crate::sync::Mutex;

/// async-task's handle in its fallible form: a task whose runnable was
/// dropped before it finished (shutdown, a spawn on a runtime that is
/// shutting down, a blocking job never started) resolves to `None`, which
/// the handle reports as cancelled instead of panicking.
type Cell<T> = async_task::FallibleTask<Output<T>, TaskMeta>;
/// What a task cell yields (see `Contained`).
type Output<T> = Contained<Result<T, JoinError>>;
type Cancelling<T> = Pin<Box<dyn Future<Output = Option<Output<T>>> + Send>>;

/// An owned permission to await a spawned task's output.
///
/// Dropping the handle detaches the task: it keeps running. Awaiting it
/// yields `Ok(output)`, or a [`JoinError`] if the task panicked or was
/// aborted.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let handle = rt.spawn(async { 6 * 7 });
/// assert_eq!(rt.block_on(handle).unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    id: Id,
    meta: MetaRef,
    // A lock so that `abort(&self)` can swap the state, as tokio's
    // `abort` takes `&self`; it is only ever contended by the owner racing
    // itself across threads, which a `&JoinHandle` allows.
    state: Mutex<State<T>>,
}

enum State<T> {
    Running(Cell<T>),
    Aborting {
        cancelling: Cancelling<T>,
        /// Where the cell puts a panic from the future's destructor.
        sink: StdArc<PanicSlot>,
    },
    Done,
}

/// The task's metadata, for `abort`. async-task's fallible handle does not
/// expose it, so the handle keeps its address from when it still could.
struct MetaRef(NonNull<TaskMeta>);

// SAFETY: `TaskMeta` is `Sync` (its one mutable part is behind a lock), so
// sharing a reference to it across threads is sound; when the reference may
// be used is `MetaRef::get`'s contract.
unsafe impl Send for MetaRef {}
// SAFETY: as above.
unsafe impl Sync for MetaRef {}

impl MetaRef {
    /// # Safety
    ///
    /// The caller must hold the task (`State::Running`): a task handle keeps
    /// the cell allocated, and the metadata lives in the cell's header.
    unsafe fn get(&self) -> &TaskMeta {
        // SAFETY: the pointer came from `Task::metadata` and the cell is
        // still allocated (the caller's contract).
        unsafe { self.0.as_ref() }
    }
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn new(task: async_task::Task<Output<T>, TaskMeta>) -> Self {
        JoinHandle {
            id: task.metadata().id,
            meta: MetaRef(NonNull::from(task.metadata())),
            state: Mutex::new(State::Running(task.fallible())),
        }
    }

    /// The task's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let a = rt.spawn(async {});
    /// let b = rt.spawn(async {});
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> Id {
        self.id
    }

    /// Aborts the task. A queued or blocked task is dropped without being
    /// polled again; a task being polled right now is dropped when that poll
    /// returns. Awaiting the handle then yields a cancelled [`JoinError`],
    /// unless the task had already finished, or a panicked one if the
    /// future's destructor panicked (the panic is caught, as in tokio).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let handle = rt.spawn(std::future::pending::<()>());
    /// handle.abort();
    /// let err = rt.block_on(handle).unwrap_err();
    /// assert!(err.is_cancelled());
    /// ```
    pub fn abort(&self) {
        let mut state = self.state.lock();
        if let State::Running(_) = &*state {
            let sink = StdArc::new(PanicSlot::new(None));
            // SAFETY: the state is `Running`: this handle still holds the
            // task, so its cell (and metadata) is allocated.
            let meta = unsafe { self.meta.get() };
            *meta.abort_sink.lock() = Some(sink.clone());
            let State::Running(task) = std::mem::replace(&mut *state, State::Done) else {
                unreachable!()
            };
            // async-task cancels by value, inside an async fn: its first poll
            // marks the cell closed and, if the task is idle, schedules it one
            // last time so the future is dropped on a worker. Poll it once
            // here so the abort takes effect now, not when someone awaits.
            let mut cancelling: Cancelling<T> = Box::pin(task.cancel());
            if let Poll::Ready(out) = cancelling
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                cancelling = Box::pin(std::future::ready(out));
            }
            *state = State::Aborting { cancelling, sink };
        }
    }

    /// Whether the task has finished (completed, panicked or been dropped
    /// after an abort).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let handle = rt.spawn(async {});
    /// rt.run_until_blocked();
    /// assert!(handle.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        match &*self.state.lock() {
            State::Running(task) => task.is_finished(),
            State::Aborting { .. } | State::Done => true,
        }
    }
}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The task finished: while a stop is pending, the awaiting task parks
        // here first (protocol point 10); the output stays in the cell.
        if crate::safepoint::gate::stop_pending() && self.is_finished() {
            std::task::ready!(crate::safepoint::gate::poll_proceed(cx));
        }
        self.get_mut().poll_output(cx)
    }
}

impl<T: Send + 'static> JoinHandle<T> {
    /// Takes the output if the task finished: the poll without the gate, for
    /// a `JoinSet`, which gates once for all its handles.
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let id = self.id;
        let mut state = self.state.lock();
        let out = match &mut *state {
            State::Running(task) => std::task::ready!(Pin::new(task).poll(cx))
                .map(Contained::into_inner)
                .unwrap_or_else(|| Err(JoinError::cancelled(id))),
            State::Aborting { cancelling, sink } => std::task::ready!(cancelling.as_mut().poll(cx))
                .map(Contained::into_inner)
                .unwrap_or_else(|| match sink.lock().take() {
                    Some(payload) => Err(JoinError::panic(id, payload)),
                    None => Err(JoinError::cancelled(id)),
                }),
            State::Done => panic!("JoinHandle polled after it returned Ready"),
        };
        *state = State::Done;
        Poll::Ready(out)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let State::Running(task) = std::mem::replace(&mut *self.state.lock(), State::Done) {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

/// Why awaiting a [`JoinHandle`] did not yield the task's output.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let err = rt.block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
/// assert!(err.is_panic());
/// let payload = err.into_panic();
/// assert_eq!(*payload.downcast::<&str>().unwrap(), "boom");
/// ```
pub struct JoinError {
    id: Id,
    repr: Repr,
    /// The seed of the deterministic runtime the task panicked on, so the
    /// failing run can be replayed.
    seed: Option<u64>,
}

enum Repr {
    Cancelled,
    // The mutex makes the error `Sync` (a panic payload is only `Send`); it
    // is only ever locked by the owner taking the payload out.
    Panic(StdMutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
            seed: None,
        }
    }

    pub(crate) fn panic(id: Id, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic(StdMutex::new(payload)),
            seed: None,
        }
    }

    pub(crate) fn with_seed(mut self, seed: Option<u64>) -> JoinError {
        self.seed = seed;
        self
    }

    /// Whether the task was aborted (or dropped at runtime shutdown).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.spawn(std::future::pending::<()>());
    /// h.abort();
    /// assert!(rt.block_on(h).unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// assert!(rt.block_on(rt.spawn(async { panic!() })).unwrap_err().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The id of the task that failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.spawn(async { panic!() });
    /// let id = h.id();
    /// assert_eq!(rt.block_on(h).unwrap_err().id(), id);
    /// ```
    pub fn id(&self) -> Id {
        self.id
    }

    /// The panic payload, to resume the panic with
    /// `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// Panics if the task was cancelled rather than panicking; the panic
    /// points at the caller's line.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let err = rt.block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
    /// assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic called on a cancelled task's error")
    }

    /// The panic payload, or the error itself if the task was cancelled.
    ///
    /// # Errors
    ///
    /// Returns `self` when the task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Runtime::new().unwrap();
    /// let h = rt.spawn(std::future::pending::<()>());
    /// h.abort();
    /// assert!(rt.block_on(h).unwrap_err().try_into_panic().is_err());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.into_inner().unwrap_or_else(|e| e.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str()))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
            Repr::Panic(p) => {
                let p = p.lock().unwrap_or_else(|e| e.into_inner());
                match panic_message(&**p) {
                    Some(msg) => write!(f, "task {} panicked with message {msg:?}", self.id)?,
                    None => write!(f, "task {} panicked", self.id)?,
                }
                if let Some(seed) = self.seed {
                    write!(
                        f,
                        " (deterministic runtime, seed {seed}: replay with \
                         Builder::new_deterministic({seed}))"
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            // tokio's shape, which logs and tests grep for.
            Repr::Cancelled => write!(f, "JoinError::Cancelled({:?})", self.id),
            Repr::Panic(p) => {
                let p = p.lock().unwrap_or_else(|e| e.into_inner());
                match panic_message(&**p) {
                    Some(msg) => write!(f, "JoinError::Panic({:?}, {msg:?}, ...)", self.id),
                    None => write!(f, "JoinError::Panic({:?}, ...)", self.id),
                }
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> Self {
        std::io::Error::other(e)
    }
}
