//! [`Handle`]: the shared, cloneable half of the driver.
//!
//! Everything a future needs from the driver lives behind one `Arc` here: the
//! mio `Registry` (registering is thread-safe in mio), the registration slab, the
//! timer wheel, the signal table and the mio `Waker` that interrupts a blocked
//! turn. The owned [`Driver`](super::Driver) holds only what must not be shared:
//! the `Poll` and its event buffer.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use slab::Slab;

use super::context;
use super::scheduled_io::ScheduledIo;
use crate::signal::registry::SignalTable;
use crate::time::timers::Timers;
use crate::time::{Clock, Instant};

/// A handle to a [`Driver`](super::Driver): `Clone + Send + Sync`, an `Arc` inside.
///
/// Futures created inside a runtime keep a clone, so they can be polled on any
/// thread afterwards.
///
/// # Examples
///
/// ```
/// use safepoint_io::driver::{Config, Driver, Handle};
///
/// let driver = Driver::new(Config::default()).unwrap();
/// let handle = driver.handle();
/// assert!(Handle::try_current().is_none());
/// {
///     let _guard = handle.enter();
///     assert!(Handle::try_current().is_some());
/// }
/// assert!(Handle::try_current().is_none());
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) registry: mio::Registry,
    waker: mio::Waker,
    /// `IDLE`, `POLLING` or `NOTIFIED`: an unpark writes the eventfd only when
    /// a turn is actually blocked in `poll`; otherwise it just leaves `NOTIFIED`
    /// for the next turn to see (no syscall, no lost wake).
    park_state: AtomicU8,
    pub(crate) ios: Mutex<Slab<Arc<ScheduledIo>>>,
    next_generation: AtomicUsize,
    /// Registrations with a stored waker, kept only on a virtual clock
    /// (`count_waiters`); see `scheduled_io.rs` for why not always.
    io_waiters: AtomicUsize,
    count_waiters: bool,
    pub(crate) timers: Option<Timers>,
    pub(crate) clock: Clock,
    pub(crate) signals: SignalTable,
    io_enabled: bool,
    pub(crate) shutdown: AtomicBool,
}

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const NOTIFIED: u8 = 2;

impl Inner {
    pub(crate) fn new(registry: mio::Registry, waker: mio::Waker, config: &super::Config) -> Inner {
        Inner {
            registry,
            waker,
            park_state: AtomicU8::new(IDLE),
            ios: Mutex::new(Slab::new()),
            next_generation: AtomicUsize::new(0),
            io_waiters: AtomicUsize::new(0),
            count_waiters: config.clock.is_virtual(),
            timers: config
                .enable_time
                .then(|| Timers::new(config.clock.now().into_std())),
            clock: config.clock.clone(),
            signals: SignalTable::new(),
            io_enabled: config.enable_io,
            shutdown: AtomicBool::new(false),
        }
    }

    /// The running count of registrations waited on, where one is kept.
    pub(crate) fn io_waiters(&self) -> Option<&AtomicUsize> {
        self.count_waiters.then_some(&self.io_waiters)
    }

    pub(crate) fn next_generation(&self) -> usize {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Called by the turn before it polls. Returns `true` if an unpark arrived
    /// since the last turn, in which case the poll must not block.
    pub(crate) fn begin_poll(&self) -> bool {
        match self
            .park_state
            .compare_exchange(IDLE, POLLING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => false,
            Err(_) => {
                // NOTIFIED: consume it; the poll below runs with a zero timeout.
                self.park_state.store(POLLING, Ordering::SeqCst);
                true
            }
        }
    }

    /// Called by the turn after its poll returned, before it handles events:
    /// wakes from now on are seen by the caller after `turn` returns.
    pub(crate) fn end_poll(&self) {
        self.park_state.store(IDLE, Ordering::SeqCst);
    }

    pub(crate) fn unpark(&self) {
        if self.park_state.swap(NOTIFIED, Ordering::SeqCst) == POLLING {
            // An error here means the eventfd is gone, i.e. the process is out of
            // file descriptors or tearing down; there is nobody to report it to.
            let _ = self.waker.wake();
        }
    }
}

impl Handle {
    /// Interrupts a blocked [`Driver::turn`](super::Driver::turn). If no turn is
    /// blocked, the next one returns at once (the wake is remembered), so an
    /// unpark that races the start of a turn is never lost.
    pub fn unpark(&self) {
        self.inner.unpark();
    }

    /// Makes this the current driver of the thread until the guard drops; the
    /// guard restores the previous one. Guards nest.
    pub fn enter(&self) -> context::EnterGuard {
        context::enter(self.clone())
    }

    /// Like [`Handle::enter`], but `None` instead of a panic when called
    /// during thread teardown, after this thread's locals are destroyed.
    ///
    /// # Examples
    ///
    /// ```
    /// use safepoint_io::driver::{Config, Driver, Handle};
    ///
    /// let driver = Driver::new(Config::default()).unwrap();
    /// let guard = driver.handle().try_enter().expect("thread is alive");
    /// assert!(Handle::try_current().is_some());
    /// drop(guard);
    /// ```
    pub fn try_enter(&self) -> Option<context::EnterGuard> {
        context::try_enter(self.clone())
    }

    /// The current thread's driver handle, if a runtime entered one.
    pub fn try_current() -> Option<Handle> {
        context::try_current()
    }

    /// The clock this driver measures timers against.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The tick-rounded instant of the earliest pending timer: advancing a virtual
    /// clock to it and turning fires at least that timer. `None` when no timer is
    /// pending or time is disabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::Future;
    /// use std::pin::Pin;
    /// use std::task::{Context, Poll};
    /// use safepoint_io::driver::{Config, Driver};
    /// use safepoint_io::time::{sleep, Clock, Duration};
    ///
    /// let clock = Clock::new_virtual();
    /// let mut driver = Driver::new(Config { clock: clock.clone(), ..Config::default() }).unwrap();
    /// let handle = driver.handle();
    /// let _guard = handle.enter();
    /// let mut nap = sleep(Duration::from_secs(3600));
    /// let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    /// assert!(Pin::new(&mut nap).poll(&mut cx).is_pending());
    /// // The deterministic flavour's auto-advance: jump straight to the next timer.
    /// while let Some(next) = handle.next_timer_deadline() {
    ///     assert_eq!(handle.io_waiters(), 0); // nothing waits on real I/O
    ///     clock.advance_to(next);
    ///     driver.turn(Some(Duration::ZERO));
    /// }
    /// assert_eq!(Pin::new(&mut nap).poll(&mut cx), Poll::Ready(()));
    /// ```
    pub fn next_timer_deadline(&self) -> Option<Instant> {
        let timers = self.inner.timers.as_ref()?;
        timers.next_deadline().map(Instant::from_std)
    }

    /// Number of timers registered and not yet fired or cancelled.
    pub fn pending_timers(&self) -> usize {
        self.inner.timers.as_ref().map_or(0, |t| t.pending())
    }

    /// Number of registrations on which some task currently waits for readiness
    /// (holds a stored waker). Signal listeners are not counted: they wait on the
    /// outside world but are no reason to hold virtual time still.
    ///
    /// An `async fn` on a socket (`accept`, `recv_from`, `connect`, ...) withdraws
    /// its waker when its future is dropped, so a cancelled call stops counting at
    /// once. The `poll_*` trait methods (`AsyncRead::poll_read` & co) have no such
    /// hook, as in tokio: a read abandoned mid-wait keeps counting until the
    /// socket gets an event or is dropped.
    ///
    /// On a virtual clock this is a counter read; on a real clock it scans
    /// the registrations (see the module's note on why), so it is meant for
    /// idle checks and diagnostics, not for every poll.
    pub fn io_waiters(&self) -> usize {
        match self.inner.io_waiters() {
            Some(count) => count.load(Ordering::Acquire),
            None => {
                let ios: Vec<_> = self
                    .inner
                    .ios
                    .lock()
                    .iter()
                    .map(|(_, io)| io.clone())
                    .collect();
                ios.iter().filter(|io| io.has_waiters()).count()
            }
        }
    }

    /// Whether sockets may register with this driver.
    pub fn io_enabled(&self) -> bool {
        self.inner.io_enabled
    }

    /// Whether timers are enabled on this driver.
    pub fn time_enabled(&self) -> bool {
        self.inner.timers.is_some()
    }

    /// Whether the two handles refer to the same driver.
    pub fn ptr_eq(&self, other: &Handle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The timers, or a clear panic when time is disabled.
    #[track_caller]
    pub(crate) fn timers(&self) -> &Timers {
        match &self.inner.timers {
            Some(t) => t,
            None => panic!(
                "timers are disabled on this safepoint runtime: enable them with \
                 Builder::enable_time (or enable_all)"
            ),
        }
    }

    /// Panics clearly when I/O is disabled.
    #[track_caller]
    pub(crate) fn assert_io_enabled(&self) {
        assert!(
            self.inner.io_enabled,
            "I/O is disabled on this safepoint runtime: enable it with Builder::enable_io \
             (or enable_all)"
        );
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("clock", &self.inner.clock)
            .field("pending_timers", &self.pending_timers())
            .field("io_waiters", &self.io_waiters())
            .finish()
    }
}
