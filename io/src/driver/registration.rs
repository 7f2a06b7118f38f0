//! [`Registration`]: one mio source registered with a driver, as an RAII value.
//!
//! It owns the slab slot and the `Arc<ScheduledIo>`; dropping it removes the slot
//! and drops any stored wakers. The mio token carries the slot key *and* a
//! generation, so an event already in flight for a dropped registration, whose
//! slot was reused, is recognised and ignored by the turn.
//!
//! The two ways of waiting mirror the two kinds of callers: `poll_io` for
//! `poll_*` trait methods (one waker slot per direction, owned by whoever owns
//! the stream) and `async_io` for `async fn`s on shared sockets (one waiter entry
//! per call, removed when the call's future is dropped).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use mio::event::Source;
use mio::{Interest, Token};

use super::scheduled_io::{Direction, ReadyEvent, ScheduledIo, WaiterId, POLL_SLOT};
use super::Handle;

/// Bits of the token that hold the slab key: 16 M live registrations per driver.
const KEY_BITS: u32 = 24;
const KEY_MASK: usize = (1 << KEY_BITS) - 1;
/// Generation bits, keeping clear of the two reserved tokens at the top.
const GEN_MASK: usize = (1 << (usize::BITS - KEY_BITS - 2)) - 1;
/// Token of the driver's mio `Waker`.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);
/// Token of the signal source.
pub(crate) const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);

pub(crate) fn token_for(key: usize, generation: usize) -> Token {
    Token(((generation & GEN_MASK) << KEY_BITS) | key)
}

/// Splits a token into (slab key, generation).
pub(crate) fn split_token(token: Token) -> (usize, usize) {
    (token.0 & KEY_MASK, token.0 >> KEY_BITS)
}

/// Matches a registration's generation against a token's.
pub(crate) fn generation_matches(io: &ScheduledIo, token_generation: usize) -> bool {
    io.generation & GEN_MASK == token_generation
}

/// Unique ids for `async_io` waiters (0 is the poll slot).
static NEXT_WAITER: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Registration {
    handle: Handle,
    key: usize,
    shared: Arc<ScheduledIo>,
}

impl Registration {
    /// Registers `source` with the current driver, panicking outside a runtime.
    #[track_caller]
    pub(crate) fn new<S: Source + ?Sized>(
        source: &mut S,
        interest: Interest,
    ) -> io::Result<Registration> {
        let handle = super::context::current();
        handle.assert_io_enabled();
        Registration::with_handle(handle, source, interest)
    }

    pub(crate) fn with_handle<S: Source + ?Sized>(
        handle: Handle,
        source: &mut S,
        interest: Interest,
    ) -> io::Result<Registration> {
        let inner = &handle.inner;
        let generation = inner.next_generation();
        let shared = Arc::new(ScheduledIo::new(generation));
        let key = {
            let mut ios = inner.ios.lock();
            let entry = ios.vacant_entry();
            let key = entry.key();
            if key > KEY_MASK {
                return Err(io::Error::other(
                    "too many registrations with one safepoint driver (16 M)",
                ));
            }
            entry.insert(shared.clone());
            key
        };
        if let Err(e) = inner
            .registry
            .register(source, token_for(key, generation), interest)
        {
            inner.ios.lock().remove(key);
            return Err(e);
        }
        if inner.shutdown.load(Ordering::Acquire) {
            shared.set_readiness(
                super::scheduled_io::SHUTDOWN,
                &mut Vec::new(),
                inner.io_waiters(),
            );
        }
        Ok(Registration {
            handle,
            key,
            shared,
        })
    }

    /// The driver this is registered with (sockets accepted from a listener
    /// register with the listener's driver, not the polling thread's).
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Removes `source` from the poll. Called by the socket's `Drop` before the
    /// file descriptor closes.
    pub(crate) fn deregister<S: Source + ?Sized>(&self, source: &mut S) -> io::Result<()> {
        self.handle.inner.registry.deregister(source)
    }

    fn poll_ready_id(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        id: WaiterId,
    ) -> Poll<io::Result<ReadyEvent>> {
        let ev = ready!(self
            .shared
            .poll_ready(cx, dir, id, self.handle.inner.io_waiters()));
        // About to complete: a pending stop parks the task here first. The
        // readiness stays recorded (nothing clears it until an operation
        // returns `WouldBlock`), so the poll after the resume finds it.
        ready!(crate::gate::poll_proceed(cx));
        if ev.is_shutdown() {
            return Poll::Ready(Err(shutdown_error()));
        }
        Poll::Ready(Ok(ev))
    }

    /// Waits for readiness in `dir` using the direction's poll slot.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        self.poll_ready_id(cx, dir, POLL_SLOT)
    }

    pub(crate) fn clear_readiness(&self, ev: ReadyEvent) {
        self.shared.clear_readiness(ev);
    }

    /// Runs `op` when ready; on `WouldBlock` clears the readiness it saw and waits
    /// again. For `poll_*` methods.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let ev = ready!(self.poll_ready(cx, dir))?;
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(ev),
                res => return Poll::Ready(res),
            }
        }
    }

    /// [`poll_io`](Self::poll_io) for stream reads into a buffer of
    /// `buf_len` bytes. `op` returns the bytes read and whether the socket
    /// said its receive queue is empty after the read (TCP's `TCP_INQ`; see
    /// `net::tcp::inq`). Such a read, or one that fills less than the
    /// buffer, drained the socket when it ran, so readiness is cleared right
    /// away instead of after one more `read` that would return `WouldBlock`:
    /// one system call less per message. Data that arrives after the read
    /// raises a newer event (a later tick), which this clear leaves alone,
    /// so nothing is lost.
    pub(crate) fn poll_read_stream(
        &self,
        cx: &mut Context<'_>,
        buf_len: usize,
        mut op: impl FnMut() -> io::Result<(usize, bool)>,
    ) -> Poll<io::Result<usize>> {
        loop {
            let ev = ready!(self.poll_ready(cx, Direction::Read))?;
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(ev),
                Err(e) => return Poll::Ready(Err(e)),
                Ok((n, drained)) => {
                    if n > 0 && (drained || n < buf_len) {
                        self.shared.clear_readable(ev);
                    }
                    return Poll::Ready(Ok(n));
                }
            }
        }
    }

    /// Waits until the source is ready in `dir` (or closed, or in error),
    /// with its own waiter entry, without consuming the readiness: the next
    /// operation (say a `try_read`) sees it. For `readable()`/`writable()`.
    pub(crate) async fn readiness(&self, dir: Direction) -> io::Result<()> {
        Readiness::new(self, dir).await.map(drop)
    }

    /// Runs `op` only if the source is known to be ready in `dir`, never
    /// waiting: `WouldBlock` when it is not, and, as in [`poll_io`](Self::poll_io),
    /// readiness cleared when `op` itself hits `WouldBlock`. For `try_read`
    /// and friends, which callers pair with [`readiness`](Self::readiness).
    pub(crate) fn try_io<R>(
        &self,
        dir: Direction,
        op: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        let Some(ev) = self.shared.ready_event(dir) else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        if ev.is_shutdown() {
            return Err(shutdown_error());
        }
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_readiness(ev);
                Err(e)
            }
            res => res,
        }
    }

    /// The `async fn` counterpart of [`poll_io`](Self::poll_io): each call waits
    /// with its own waiter entry, so several tasks can share one socket.
    pub(crate) async fn async_io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let ev = Readiness::new(self, dir).await?;
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(ev),
                res => return res,
            }
        }
    }
}

fn shutdown_error() -> io::Error {
    io::Error::other("the safepoint I/O driver has shut down")
}

impl Drop for Registration {
    fn drop(&mut self) {
        let inner = &self.handle.inner;
        {
            let mut ios = inner.ios.lock();
            // The slot is ours unless the driver already emptied it at shutdown.
            if ios
                .get(self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.shared))
            {
                ios.remove(self.key);
            }
        }
        self.shared.clear_wakers(inner.io_waiters());
    }
}

/// One wait for readiness by an `async fn`; removes its waker when dropped so a
/// cancelled call (say, by `timeout`) is not counted as waiting.
struct Readiness<'a> {
    reg: &'a Registration,
    dir: Direction,
    id: WaiterId,
    waiting: bool,
}

impl<'a> Readiness<'a> {
    fn new(reg: &'a Registration, dir: Direction) -> Readiness<'a> {
        Readiness {
            reg,
            dir,
            id: NEXT_WAITER.fetch_add(1, Ordering::Relaxed),
            waiting: false,
        }
    }
}

impl Future for Readiness<'_> {
    type Output = io::Result<ReadyEvent>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let res = this.reg.poll_ready_id(cx, this.dir, this.id);
        this.waiting = res.is_pending();
        res
    }
}

impl Drop for Readiness<'_> {
    fn drop(&mut self) {
        if self.waiting {
            self.reg
                .shared
                .remove_waiter(self.dir, self.id, self.reg.handle.inner.io_waiters());
        }
    }
}
