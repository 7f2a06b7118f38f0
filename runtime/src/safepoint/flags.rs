//! The lock-free view of the barrier: one word holding the phase and the
//! stop generation, and the process-wide count of pending stops.
//!
//! Hot paths ask "is a stop pending, and which one?" without the census
//! lock: `safepoint()`, the wake path, a worker's per-poll laggard check and
//! `block_on`'s poll. Phase and generation share one word so that a single
//! load gives a consistent pair (protocol point 13): loaded separately, a
//! weak-memory CPU could pair the new phase with the previous generation
//! and tag a poll with a stop that is already over.
//!
//! The word is written only by the census, under its lock, with SeqCst:
//! `block_on` and the quiescence wait rely on a SeqCst store-then-load pair
//! with it (see `census.rs`, "the block_on count").

use crate::sync::{AtomicU64, Ordering};

pub(crate) const RUNNING: u64 = 0;
pub(crate) const REQUESTED: u64 = 1;
pub(crate) const STOPPED: u64 = 2;

const PHASE_MASK: u64 = 0b11;
const GENERATION_SHIFT: u32 = 2;

/// How many runtimes in this process have a stop requested or in force.
/// `safepoint()` and every runtime resource's gate (protocol points 1 and
/// 10) read only this when it is zero: one atomic load, no thread-local
/// lookup. It lives in the I/O crate, whose resources read it without
/// knowing the runtime. It is a `std` atomic even under loom because loom
/// atomics cannot live in statics; under loom `safepoint()` and the gate
/// skip it and read the runtime's own (loom) word, so the models check the
/// real order.
pub(crate) use safepoint_io::gate::STOPS_IN_PROCESS;

/// `generation << 2 | phase`.
pub(crate) struct StopFlags {
    word: AtomicU64,
}

/// One consistent reading of the word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) phase: u64,
    pub(crate) generation: u64,
}

fn unpack(word: u64) -> Snapshot {
    Snapshot {
        phase: word & PHASE_MASK,
        generation: word >> GENERATION_SHIFT,
    }
}

impl StopFlags {
    pub(crate) fn new() -> StopFlags {
        StopFlags {
            word: AtomicU64::new(RUNNING),
        }
    }

    /// The phase. Acquire: a reader that sees STOPPED and then takes the
    /// census lock finds the barrier stopped or already resumed.
    pub(crate) fn phase(&self) -> u64 {
        self.word.load(Ordering::Acquire) & PHASE_MASK
    }

    /// Phase and generation from one load. Relaxed: for bookkeeping that
    /// tolerates a stale value for one poll (the laggard log) and for hints
    /// that a decision under the census lock re-checks (whether to offer a
    /// driver wake for keeping), never for a decision about the census.
    pub(crate) fn snapshot_relaxed(&self) -> Snapshot {
        unpack(self.word.load(Ordering::Relaxed))
    }

    /// The phase, SeqCst: the load half of a store-then-load pair with the
    /// census (`census.rs`, "the block_on count").
    pub(crate) fn phase_seqcst(&self) -> u64 {
        self.word.load(Ordering::SeqCst) & PHASE_MASK
    }

    /// Publishes a new phase and generation. Census lock held.
    pub(crate) fn publish(&self, phase: u64, generation: u64) {
        debug_assert!(phase <= STOPPED);
        self.word
            .store(generation << GENERATION_SHIFT | phase, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn one_load_gives_phase_and_generation_together() {
        let flags = StopFlags::new();
        assert_eq!(
            flags.snapshot_relaxed(),
            Snapshot {
                phase: RUNNING,
                generation: 0
            }
        );
        flags.publish(REQUESTED, 7);
        assert_eq!(flags.phase(), REQUESTED);
        assert_eq!(
            flags.snapshot_relaxed(),
            Snapshot {
                phase: REQUESTED,
                generation: 7
            }
        );
        flags.publish(STOPPED, 7);
        assert_eq!(flags.phase_seqcst(), STOPPED);
        flags.publish(RUNNING, 7);
        assert_eq!(flags.snapshot_relaxed().generation, 7);
    }
}
