//! The one door to synchronisation primitives in `runtime`.
//!
//! Everything the scheduler and the safepoint barrier use to talk between
//! threads (atomics, locks, condition variables, thread-locals, the work
//! queues, thread spawning) is imported from here and nowhere else. Normally
//! these are `std`, `parking_lot` and `crossbeam-deque`; under `--cfg loom`
//! they are loom's, so the models in `loom-tests/` check the real parking and
//! barrier code rather than a copy of it.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread;
    pub(crate) use std::thread_local;

    /// A mutex whose guard is not poisoned by a panicking task: a panic on
    /// one worker must not take the runtime down with it.
    pub(crate) type Mutex<T> = parking_lot::Mutex<T>;
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
    pub(crate) type Condvar = parking_lot::Condvar;

    /// Blocks on `cvar` until notified (spurious wake-ups allowed).
    pub(crate) fn wait<T>(cvar: &Condvar, guard: &mut MutexGuard<'_, T>) {
        cvar.wait(guard);
    }

    /// Blocks on `cvar` until notified or `dur` has passed.
    pub(crate) fn wait_for<T>(
        cvar: &Condvar,
        guard: &mut MutexGuard<'_, T>,
        dur: std::time::Duration,
    ) {
        let _ = cvar.wait_for(guard, dur);
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::thread;
    pub(crate) use loom::thread_local;

    /// loom's mutex, with parking_lot's infallible `lock()` shape so the
    /// runtime code reads the same under both configurations.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        #[track_caller]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok()
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }
        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }

    /// Blocks on `cvar` until notified. loom's condvar takes the guard by
    /// value; this swaps it through so callers keep parking_lot's shape.
    #[track_caller]
    pub(crate) fn wait<T>(cvar: &Condvar, guard: &mut MutexGuard<'_, T>) {
        replace_guard(guard, |g| cvar.0.wait(g).unwrap_or_else(|e| e.into_inner()));
    }

    /// loom has no timed waits that make sense in a model: a timed wait is an
    /// untimed one (models never depend on a timeout firing).
    pub(crate) fn wait_for<T>(
        cvar: &Condvar,
        guard: &mut MutexGuard<'_, T>,
        _dur: std::time::Duration,
    ) {
        wait(cvar, guard)
    }

    fn replace_guard<'a, T>(
        slot: &mut MutexGuard<'a, T>,
        f: impl FnOnce(MutexGuard<'a, T>) -> MutexGuard<'a, T>,
    ) {
        // loom reports a failed model (a deadlock, say) by panicking inside
        // `wait`; unwinding then would drop the guard twice (once in `f`,
        // once from `slot`). Abort instead: the model has failed anyway.
        struct AbortOnUnwind;
        impl Drop for AbortOnUnwind {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    std::process::abort();
                }
            }
        }
        let bomb = AbortOnUnwind;
        // SAFETY: the guard is read out of `slot` and a guard for the same
        // mutex is written back before anyone can observe `slot` again; if
        // `f` unwinds, `bomb` aborts the process before `slot` (holding the
        // moved-out guard) can be dropped.
        unsafe {
            let guard = std::ptr::read(slot);
            std::ptr::write(slot, f(guard));
        }
        std::mem::forget(bomb);
    }
}

pub(crate) use imp::*;

pub(crate) mod queue;

/// A statistics counter: written by one worker, summed by whoever asks.
///
/// It never orders anything (no decision in the scheduler reads it), so it
/// is a plain `std` atomic even under loom: making it a loom atomic would
/// only multiply the interleavings a model explores without checking
/// anything. The owner increments it with a load and a store rather than an
/// RMW, which is cheaper and exact because only the owner writes.
#[derive(Debug, Default)]
pub(crate) struct Counter(std::sync::atomic::AtomicU64);

impl Counter {
    /// Adds `n`. Only the counter's owner may call this.
    pub(crate) fn add_owned(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    /// Adds `n` from any thread.
    pub(crate) fn add_shared(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}
