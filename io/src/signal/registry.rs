//! The per-driver signal table.
//!
//! Signal handlers cannot touch locks or wakers, so delivery goes through
//! `signal-hook-mio`: its handler writes to a self-pipe that is registered in the
//! driver's `Poll` (once per driver, on the first `signal()` call, so a program
//! that never listens pays nothing). When the pipe is readable the turn drains
//! it and, for each signal that arrived, bumps that signal's *generation* and
//! wakes every listener. A listener remembers the generation it last saw, so
//! each listener sees each delivery (coalesced, like all Unix signals) no matter
//! how many listeners there are or when they poll.

use std::collections::HashMap;
use std::io;
use std::task::{Context, Poll, Waker};

use libc::c_int;
use parking_lot::Mutex;
use signal_hook_mio::v1_0::Signals;

use crate::driver::registration::SIGNAL_TOKEN;

#[derive(Default)]
struct Slot {
    generation: u64,
    waiters: Vec<(u64, Waker)>,
}

#[derive(Default)]
struct State {
    source: Option<Signals>,
    slots: HashMap<c_int, Slot>,
}

pub(crate) struct SignalTable {
    state: Mutex<State>,
}

impl SignalTable {
    pub(crate) fn new() -> SignalTable {
        SignalTable {
            state: Mutex::new(State::default()),
        }
    }

    /// Makes sure `signum` is delivered to this driver; returns its current
    /// generation (a new listener starts there: it waits for the *next* signal).
    pub(crate) fn listen(&self, registry: &mio::Registry, signum: c_int) -> io::Result<u64> {
        // signal-hook panics on these (SIGKILL, SIGSTOP cannot be caught; a
        // handler for SIGSEGV & co would hide real faults): refuse them here.
        if signal_hook::consts::FORBIDDEN.contains(&signum) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {signum} cannot be listened for (it is uncatchable or a fault)"),
            ));
        }
        let mut state = self.state.lock();
        if !state.slots.contains_key(&signum) {
            match &mut state.source {
                Some(source) => source.add_signal(signum)?,
                None => {
                    let mut source = Signals::new([signum])?;
                    registry.register(&mut source, SIGNAL_TOKEN, mio::Interest::READABLE)?;
                    state.source = Some(source);
                }
            }
        }
        Ok(state.slots.entry(signum).or_default().generation)
    }

    /// Whether `signum` was delivered after generation `seen` (a poll would
    /// complete), without consuming the delivery.
    pub(crate) fn delivered_since(&self, signum: c_int, seen: u64) -> bool {
        self.state
            .lock()
            .slots
            .get(&signum)
            .is_some_and(|slot| slot.generation != seen)
    }

    /// Ready when `signum` was delivered after generation `*seen`; advances it.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        signum: c_int,
        seen: &mut u64,
        id: u64,
    ) -> Poll<()> {
        // Wakers this replaces are dropped after the lock is released: dropping
        // a waker can drop a task, and with it a `Signal` that locks again.
        let _old_waker;
        let mut state = self.state.lock();
        let slot = state.slots.entry(signum).or_default();
        let pos = slot.waiters.iter().position(|(i, _)| *i == id);
        if slot.generation != *seen {
            *seen = slot.generation;
            _old_waker = pos.map(|p| slot.waiters.swap_remove(p));
            drop(state);
            return Poll::Ready(());
        }
        match pos {
            Some(p) if slot.waiters[p].1.will_wake(cx.waker()) => {}
            Some(p) => {
                _old_waker = Some(std::mem::replace(
                    &mut slot.waiters[p],
                    (id, cx.waker().clone()),
                ));
            }
            None => slot.waiters.push((id, cx.waker().clone())),
        }
        drop(state);
        Poll::Pending
    }

    /// Forgets listener `id` (it was dropped).
    pub(crate) fn remove(&self, signum: c_int, id: u64) {
        let mut state = self.state.lock();
        let removed = state.slots.get_mut(&signum).and_then(|slot| {
            let pos = slot.waiters.iter().position(|(i, _)| *i == id)?;
            Some(slot.waiters.swap_remove(pos))
        });
        drop(state);
        drop(removed);
    }

    /// Called by the turn when the self-pipe is readable.
    pub(crate) fn dispatch(&self, wakers: &mut Vec<Waker>) {
        let mut state = self.state.lock();
        let State { source, slots } = &mut *state;
        let Some(source) = source else { return };
        for signum in source.pending() {
            if let Some(slot) = slots.get_mut(&signum) {
                slot.generation += 1;
                wakers.extend(slot.waiters.drain(..).map(|(_, w)| w));
            }
        }
    }
}
