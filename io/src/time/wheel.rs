//! The hierarchical timing wheel: O(1) insert and cancel, amortised O(1) expiry.
//!
//! Six levels of 64 slots; a slot of level `n` spans `64^n` ticks of 1 ms, so the
//! wheel covers 2^36 ms (about 2.2 years) before the top level wraps (it then acts
//! as a ring: an entry further out is simply looked at again one lap later). An
//! entry lives in the level of the highest 6-bit digit in which its deadline
//! differs from the wheel's `elapsed` tick; when that slot comes due its entries
//! either fire or drop to a lower level. This is the layout of tokio's and the
//! Linux kernel's wheels.
//!
//! Entries sit in a `Slab` and the slot lists are intrusive doubly-linked lists of
//! `u32` indices, so one pending timer costs one slab entry (about 48 bytes) and
//! no allocation of its own, and cancelling unlinks in O(1). Each level keeps a
//! 64-bit occupancy mask, so finding the next due slot is a rotate and a
//! `trailing_zeros`, never a scan, which keeps an idle turn cheap whatever the
//! number of pending timers.
//!
//! Expired slots are moved to a `pending` list that is drained in batches, so the
//! caller can release the lock to wake tasks between batches.

use std::task::Waker;

use slab::Slab;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// Ticks one lap of the top level covers.
const MAX_TICKS: u64 = 1 << (SLOT_BITS as u64 * LEVELS as u64);
const NIL: u32 = u32::MAX;
/// `Entry::level` of an entry in the `pending` list.
const PENDING: u8 = u8::MAX;
/// `Entry::level` of an entry that fired and is linked nowhere.
const FIRED: u8 = u8::MAX - 1;

struct Entry {
    /// Deadline tick (ms since the wheel's base), rounded up.
    when: u64,
    waker: Option<Waker>,
    prev: u32,
    next: u32,
    level: u8,
    slot: u8,
}

pub(crate) struct Wheel {
    entries: Slab<Entry>,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    pending: u32,
    /// Every slot up to this tick has been processed.
    elapsed: u64,
    /// Entries linked in a slot or in `pending` (not fired).
    waiting: usize,
}

/// The level an entry due at `when` belongs to, seen from `elapsed`.
fn level_for(elapsed: u64, when: u64) -> usize {
    const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
    let mut masked = (elapsed ^ when) | SLOT_MASK;
    if masked >= MAX_TICKS {
        masked = MAX_TICKS - 1;
    }
    let significant = 63 - masked.leading_zeros() as usize;
    significant / SLOT_BITS as usize
}

fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1)
}

impl Wheel {
    pub(crate) fn new() -> Wheel {
        Wheel {
            entries: Slab::new(),
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            pending: NIL,
            elapsed: 0,
            waiting: 0,
        }
    }

    /// Number of entries waiting to fire.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Adds a timer due at tick `when`. `None` if that tick has already been
    /// processed (the caller completes at once instead).
    pub(crate) fn insert(&mut self, when: u64, waker: Waker) -> Option<usize> {
        if when <= self.elapsed {
            return None;
        }
        let key = self.entries.insert(Entry {
            when,
            waker: Some(waker),
            prev: NIL,
            next: NIL,
            level: FIRED,
            slot: 0,
        });
        assert!(key < NIL as usize, "more than 4 G timers");
        self.link(key as u32);
        self.waiting += 1;
        Some(key)
    }

    /// Removes a timer, fired or not, returning its waker.
    pub(crate) fn remove(&mut self, key: usize) -> Option<Waker> {
        if self.entries[key].level != FIRED {
            self.unlink(key as u32);
            self.waiting -= 1;
        }
        self.entries.remove(key).waker
    }

    /// Whether the timer fired; if not, makes `waker` the one it will wake.
    /// A replaced waker is returned so the caller drops it outside the lock
    /// (dropping a waker can drop a task, whose `Sleep` would lock again).
    pub(crate) fn poll(&mut self, key: usize, waker: &Waker) -> (bool, Option<Waker>) {
        let e = &mut self.entries[key];
        if e.level == FIRED {
            return (true, None);
        }
        match &mut e.waker {
            Some(w) if w.will_wake(waker) => (false, None),
            slot => (false, slot.replace(waker.clone())),
        }
    }

    fn link(&mut self, key: u32) {
        let when = self.entries[key as usize].when;
        let level = level_for(self.elapsed, when);
        let slot = slot_for(when, level);
        let head = self.heads[level][slot];
        {
            let e = &mut self.entries[key as usize];
            e.level = level as u8;
            e.slot = slot as u8;
            e.prev = NIL;
            e.next = head;
        }
        if head != NIL {
            self.entries[head as usize].prev = key;
        }
        self.heads[level][slot] = key;
        self.occupied[level] |= 1 << slot;
    }

    fn unlink(&mut self, key: u32) {
        let (prev, next, level, slot) = {
            let e = &self.entries[key as usize];
            (e.prev, e.next, e.level, e.slot as usize)
        };
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else if level == PENDING {
            self.pending = next;
        } else {
            let level = level as usize;
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1 << slot);
            }
        }
        let e = &mut self.entries[key as usize];
        e.prev = NIL;
        e.next = NIL;
        e.level = FIRED;
    }

    /// The next slot to come due: (level, slot, tick at which it is due).
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        (0..LEVELS).find_map(|level| {
            let occupied = self.occupied[level];
            if occupied == 0 {
                return None;
            }
            let shift = level as u32 * SLOT_BITS;
            let mut now_slot = ((self.elapsed >> shift) & (SLOTS as u64 - 1)) as u32;
            if level == LEVELS - 1 {
                // An entry in the top level's current slot is a whole lap ahead
                // (it was beyond the wheel's range), so search from the next slot.
                now_slot += 1;
            }
            let slot = ((occupied.rotate_right(now_slot).trailing_zeros() + now_slot)
                % SLOTS as u32) as usize;
            let level_range = 1u64 << (shift + SLOT_BITS);
            let level_start = self.elapsed & !(level_range - 1);
            let mut deadline = level_start + ((slot as u64) << shift);
            if deadline <= self.elapsed && level == LEVELS - 1 {
                // The top level wraps: a slot "behind" us is one lap ahead.
                deadline += level_range;
            }
            Some((level, slot, deadline.max(self.elapsed)))
        })
    }

    /// The earliest tick at which some entry is due, exactly (not a slot start),
    /// so that moving a virtual clock there fires something.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.pending != NIL {
            return Some(self.elapsed);
        }
        let (level, slot, deadline) = self.next_expiration()?;
        if level == 0 {
            return Some(deadline);
        }
        // Every entry of this slot is due within it and before anything else in
        // the wheel, so the earliest of them is the earliest overall.
        let mut min = u64::MAX;
        let mut cur = self.heads[level][slot];
        while cur != NIL {
            let e = &self.entries[cur as usize];
            min = min.min(e.when);
            cur = e.next;
        }
        Some(min)
    }

    /// The tick at which the next slot needs processing (cheaper than
    /// `next_deadline`: the driver may wake at a slot start to cascade).
    pub(crate) fn next_wakeup(&self) -> Option<u64> {
        if self.pending != NIL {
            return Some(self.elapsed);
        }
        self.next_expiration().map(|(_, _, d)| d)
    }

    /// Fires every entry due at or before `now`, pushing wakers into `out` until
    /// it holds `max`. Returns `true` when done, `false` when the batch is full
    /// and the caller should wake what it has and call again.
    pub(crate) fn process(&mut self, now: u64, out: &mut Vec<Waker>, max: usize) -> bool {
        loop {
            while self.pending != NIL {
                if out.len() >= max {
                    return false;
                }
                let key = self.pending;
                self.unlink(key);
                let e = &mut self.entries[key as usize];
                if e.when <= self.elapsed {
                    // `unlink` left it marked FIRED.
                    self.waiting -= 1;
                    if let Some(w) = e.waker.take() {
                        out.push(w);
                    }
                } else {
                    self.link(key);
                }
            }
            match self.next_expiration() {
                Some((level, slot, deadline)) if deadline <= now => {
                    self.elapsed = deadline;
                    self.take_slot(level, slot);
                }
                _ => break,
            }
        }
        self.elapsed = self.elapsed.max(now);
        true
    }

    /// Moves a due slot's list to `pending`.
    fn take_slot(&mut self, level: usize, slot: usize) {
        let head = std::mem::replace(&mut self.heads[level][slot], NIL);
        self.occupied[level] &= !(1 << slot);
        let mut cur = head;
        let mut last = NIL;
        while cur != NIL {
            let e = &mut self.entries[cur as usize];
            e.level = PENDING;
            last = cur;
            cur = e.next;
        }
        if last != NIL {
            // Splice the slot's list in front of whatever is pending.
            self.entries[last as usize].next = self.pending;
            if self.pending != NIL {
                self.entries[self.pending as usize].prev = last;
            }
            self.pending = head;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn noop() -> Waker {
        futures::task::noop_waker()
    }

    #[test]
    fn fires_in_order_and_never_early() {
        let mut w = Wheel::new();
        let whens = [
            1u64,
            5,
            63,
            64,
            65,
            100,
            4095,
            4096,
            4097,
            300_000,
            1 << 30,
            1 << 37,
        ];
        let keys: Vec<_> = whens
            .iter()
            .map(|&t| w.insert(t, noop()).unwrap())
            .collect();
        let mut out = Vec::new();
        for (i, &t) in whens.iter().enumerate() {
            assert_eq!(w.next_deadline(), Some(t), "entry {i}");
            assert!(w.process(t - 1, &mut out, usize::MAX));
            assert!(out.is_empty(), "fired early at {}", t - 1);
            assert!(w.process(t, &mut out, usize::MAX));
            assert_eq!(out.len(), 1, "did not fire at {t}");
            out.clear();
            assert!(w.poll(keys[i], &noop()).0);
        }
        assert_eq!(w.waiting(), 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn cancel_unlinks() {
        let mut w = Wheel::new();
        let a = w.insert(10, noop()).unwrap();
        let b = w.insert(10, noop()).unwrap();
        let c = w.insert(10, noop()).unwrap();
        w.remove(b);
        assert_eq!(w.waiting(), 2);
        let mut out = Vec::new();
        w.process(10, &mut out, usize::MAX);
        assert_eq!(out.len(), 2);
        w.remove(a);
        w.remove(c);
        assert!(w.insert(5, noop()).is_none(), "past ticks complete at once");
    }

    #[test]
    fn batches() {
        let mut w = Wheel::new();
        for i in 0..1000 {
            w.insert(1 + i % 7, noop()).unwrap();
        }
        let mut out = Vec::new();
        let mut rounds = 0;
        while !w.process(100, &mut out, 64 * (rounds + 1)) {
            rounds += 1;
        }
        assert_eq!(out.len(), 1000);
        assert_eq!(w.waiting(), 0);
    }
}
