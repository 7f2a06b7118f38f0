//! Readiness and wakers of one registered source.
//!
//! The reactor is edge-triggered: mio reports a transition once, so the readiness
//! is remembered here until an operation returns `WouldBlock`. The readiness word
//! also carries a *tick* that every event bumps. An operation that saw readiness
//! at tick `t` and then hit `WouldBlock` clears it only if the tick is still `t`:
//! if an event arrived in between, the clear is skipped and that event is not lost.
//!
//! Wakers are kept per direction. Each direction has one inline slot for
//! `poll_*` callers (the owner of a stream, as in tokio) and a short list for the
//! `async fn`s of shared sockets (`&UdpSocket` used by several tasks), each entry
//! removed again when its future is dropped, so that [`Handle::io_waiters`]
//! counts only tasks that really wait.
//!
//! That count is kept as a running counter only where it is read on a hot
//! path (a virtual clock's auto-advance asks it at every idle point). On a
//! real clock the counter would be one process-wide atomic written twice per
//! request by every worker (first waiter in, last waiter out), its cache line
//! moving between cores on every request of a busy server; there the
//! handle counts by a scan instead ([`ScheduledIo::has_waiters`]).
//!
//! [`Handle::io_waiters`]: super::Handle::io_waiters

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

/// Readiness bits (low byte of the state word).
pub(crate) const READABLE: usize = 1;
pub(crate) const WRITABLE: usize = 1 << 1;
pub(crate) const READ_CLOSED: usize = 1 << 2;
pub(crate) const WRITE_CLOSED: usize = 1 << 3;
pub(crate) const ERROR: usize = 1 << 4;
/// Set when the driver shut down: every wait ends with an error.
pub(crate) const SHUTDOWN: usize = 1 << 5;
const READY_MASK: usize = 0xff;
const TICK_SHIFT: usize = 8;

/// A direction of interest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The readiness bits that end a wait in this direction. Closed and error
    /// states count as ready so that the operation runs and reports them.
    fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR | SHUTDOWN,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR | SHUTDOWN,
        }
    }
}

/// Readiness observed by a waiter, with the tick it was observed at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyEvent {
    pub(crate) ready: usize,
    tick: usize,
}

impl ReadyEvent {
    pub(crate) fn is_shutdown(&self) -> bool {
        self.ready & SHUTDOWN != 0
    }
}

/// Identifies a waiter in a direction's list. `POLL_SLOT` is the single slot of
/// `poll_*` callers; other ids are unique per `async fn` call.
pub(crate) type WaiterId = u64;
pub(crate) const POLL_SLOT: WaiterId = 0;

#[derive(Default)]
struct Waiters {
    /// The `poll_*` caller's waker (id `POLL_SLOT`) per direction, inline:
    /// a stream's owner is nearly always the only waiter, and an event then
    /// touches no memory beyond this struct (a list's entries sit in a heap
    /// block of their own, one more cache miss per event on a busy server).
    read_slot: Option<Waker>,
    write_slot: Option<Waker>,
    /// The other waiters (`async fn`s on shared sockets), by id.
    read: Vec<(WaiterId, Waker)>,
    write: Vec<(WaiterId, Waker)>,
}

impl Waiters {
    fn slot_and_list(
        &mut self,
        dir: Direction,
    ) -> (&mut Option<Waker>, &mut Vec<(WaiterId, Waker)>) {
        match dir {
            Direction::Read => (&mut self.read_slot, &mut self.read),
            Direction::Write => (&mut self.write_slot, &mut self.write),
        }
    }

    fn is_empty(&self) -> bool {
        self.read_slot.is_none()
            && self.write_slot.is_none()
            && self.read.is_empty()
            && self.write.is_empty()
    }

    /// Stores `waker` for waiter `id`, replacing its earlier one.
    fn store(&mut self, dir: Direction, id: WaiterId, waker: &Waker) {
        let (slot, list) = self.slot_and_list(dir);
        let old = if id == POLL_SLOT {
            match slot {
                Some(old) => old,
                None => {
                    *slot = Some(waker.clone());
                    return;
                }
            }
        } else {
            match list.iter_mut().find(|(i, _)| *i == id) {
                Some((_, old)) => old,
                None => {
                    list.push((id, waker.clone()));
                    return;
                }
            }
        };
        if !old.will_wake(waker) {
            old.clone_from(waker);
        }
    }

    /// Moves every waker of `dir` into `out`.
    fn take_into(&mut self, dir: Direction, out: &mut Vec<Waker>) {
        let (slot, list) = self.slot_and_list(dir);
        out.extend(slot.take());
        // Checked first: an empty list's heap block (if any) is not touched.
        if !list.is_empty() {
            out.extend(list.drain(..).map(|(_, waker)| waker));
        }
    }

    /// Forgets waiter `id`'s waker.
    fn remove(&mut self, dir: Direction, id: WaiterId) {
        let (slot, list) = self.slot_and_list(dir);
        if id == POLL_SLOT {
            *slot = None;
        } else {
            list.retain(|(i, _)| *i != id);
        }
    }

    fn clear(&mut self) {
        *self = Waiters::default();
    }
}

/// Per-registration state shared between the reactor and the socket.
pub(crate) struct ScheduledIo {
    /// Generation stamped into the mio token; an event whose token carries another
    /// generation belongs to an earlier registration in the same slab slot.
    pub(crate) generation: usize,
    state: AtomicUsize,
    waiters: Mutex<Waiters>,
}

impl ScheduledIo {
    pub(crate) fn new(generation: usize) -> ScheduledIo {
        ScheduledIo {
            generation,
            state: AtomicUsize::new(0),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    /// Records an event (OR-ing `ready` in and bumping the tick), then moves the
    /// wakers it satisfies into `wakers`. `waiting` is the handle's `io_waiters`
    /// counter where it keeps one; it is adjusted under the waiters lock so it
    /// never underflows.
    pub(crate) fn set_readiness(
        &self,
        ready: usize,
        wakers: &mut Vec<Waker>,
        waiting: Option<&AtomicUsize>,
    ) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let tick = (cur >> TICK_SHIFT).wrapping_add(1);
                Some((tick << TICK_SHIFT) | (cur & READY_MASK) | ready)
            });
        let mut w = self.waiters.lock();
        let was_waiting = !w.is_empty();
        for dir in [Direction::Read, Direction::Write] {
            if ready & dir.mask() != 0 {
                w.take_into(dir, wakers);
            }
        }
        if was_waiting && w.is_empty() {
            if let Some(waiting) = waiting {
                waiting.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Drops every waker (the registration is going away).
    /// Whether some task waits on this source (holds a stored waker).
    pub(crate) fn has_waiters(&self) -> bool {
        !self.waiters.lock().is_empty()
    }

    pub(crate) fn clear_wakers(&self, waiting: Option<&AtomicUsize>) {
        let mut w = self.waiters.lock();
        if !w.is_empty() {
            if let Some(waiting) = waiting {
                waiting.fetch_sub(1, Ordering::AcqRel);
            }
        }
        w.clear();
    }

    /// The readiness in `dir` right now, if any (no waker stored).
    pub(crate) fn ready_event(&self, dir: Direction) -> Option<ReadyEvent> {
        let cur = self.state.load(Ordering::Acquire);
        let ready = cur & dir.mask();
        (ready != 0).then_some(ReadyEvent {
            ready,
            tick: cur >> TICK_SHIFT,
        })
    }

    /// Returns the readiness if any, else stores `cx`'s waker under `id`.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        id: WaiterId,
        waiting: Option<&AtomicUsize>,
    ) -> Poll<ReadyEvent> {
        if let Some(ev) = self.ready_event(dir) {
            return Poll::Ready(ev);
        }
        let mut w = self.waiters.lock();
        // Re-check under the lock: the reactor sets readiness before it takes the
        // waiters, so either we see the event now or it sees our waker.
        if let Some(ev) = self.ready_event(dir) {
            return Poll::Ready(ev);
        }
        let was_waiting = !w.is_empty();
        w.store(dir, id, cx.waker());
        if !was_waiting {
            if let Some(waiting) = waiting {
                waiting.fetch_add(1, Ordering::AcqRel);
            }
        }
        Poll::Pending
    }

    /// Removes waiter `id` (its future was dropped).
    pub(crate) fn remove_waiter(
        &self,
        dir: Direction,
        id: WaiterId,
        waiting: Option<&AtomicUsize>,
    ) {
        let mut w = self.waiters.lock();
        let was_waiting = !w.is_empty();
        w.remove(dir, id);
        if was_waiting && w.is_empty() {
            if let Some(waiting) = waiting {
                waiting.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Clears the readiness in `ev` after an operation returned `WouldBlock`,
    /// unless a newer event arrived since `ev` was observed. Closed and shutdown
    /// states are final and never cleared; an error is cleared like readiness
    /// (the operation that hit `WouldBlock` has already consumed it).
    pub(crate) fn clear_readiness(&self, ev: ReadyEvent) {
        self.clear_bits(ev, READABLE | WRITABLE | ERROR);
    }

    /// After a stream read that returned less than its buffer: the socket
    /// was drained at that instant, so only READABLE is cleared (an error or
    /// a close must still be seen), under the same tick check.
    pub(crate) fn clear_readable(&self, ev: ReadyEvent) {
        self.clear_bits(ev, READABLE);
    }

    fn clear_bits(&self, ev: ReadyEvent, bits: usize) {
        let clear = ev.ready & bits;
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                if cur >> TICK_SHIFT != ev.tick {
                    return None;
                }
                Some(cur & !clear)
            });
    }
}
