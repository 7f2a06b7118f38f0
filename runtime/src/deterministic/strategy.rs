//! How the deterministic flavour picks what runs next: the exploration
//! strategy, and the schedule fingerprint the determinism check compares.
//!
//! The runner hands every batch of runnable tasks to [`order`], which puts
//! them in the order they will be polled and may set some aside for later
//! (they go back to the run queue, still runnable). Two strategies:
//!
//! - **Uniform** (the default): every task runnable at the start of a round
//!   is polled once, in a uniformly random order (Fisher–Yates from the
//!   seed). Cheap, and good at bugs that need two tasks to interleave within
//!   one round.
//! - **PCT** (probabilistic concurrency testing, Burckhardt et al., ASPLOS
//!   2010): each task gets a random priority when first seen; each step
//!   polls only the runnable task of highest priority; at `depth - 1`
//!   random steps (the change points) the task just chosen drops below every
//!   other task. A bug that needs `d` ordering constraints is found with
//!   probability at least `1 / (n * k^(d-1))` per seed (n tasks, k steps),
//!   whatever the program does, where a uniform shuffle can make such a
//!   schedule exponentially unlikely: it never lets one task run many steps
//!   while another waits.
//!
//! Two adaptations for async code. The number of steps of a run is not
//! known in advance, so each change point is drawn log-uniformly over the
//! first 2^16 steps (as likely in 1..2 as in 1024..2048): short tests and
//! long ones both get change points where they run. And a task that keeps
//! running step after step (it yields, or wakes itself) drops below every
//! other task, as shuttle's PCT does for `yield_now`: a
//! task that spins on yields waiting for another would otherwise starve it
//! forever. A task counts as spinning when it would run a third step in a
//! row while another task is runnable (a single repeat is common without
//! a spin: a timer or a reply can wake a task right after its poll).
//!
//! The fingerprint is off unless asked for (it grows with every round): it
//! lists, per round, the ids of the tasks polled in the order they ran. Two
//! runs of one seed must produce the same list; the first round where they
//! differ is where something outside the runtime's control (a real clock,
//! thread timing, global state left by an earlier run) leaked in.

use super::rng::Rng;
use crate::scheduler::{Shared, Task};
use crate::sync::Mutex;
use crate::task::Id;

/// How the deterministic flavour orders runnable tasks; see
/// [`Builder::strategy`](crate::Builder::strategy).
///
/// Both are fully determined by the seed: the same seed and strategy give
/// the same interleaving on every run.
///
/// # Examples
///
/// ```
/// use safepoint::{Builder, Strategy};
///
/// let rt = Builder::new_deterministic(7)
///     .strategy(Strategy::Pct { depth: 3 })
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { safepoint::spawn(async { 2 }).await.unwrap() }), 2);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Each round polls every runnable task once, in a uniformly random
    /// order. The default.
    #[default]
    Uniform,
    /// Probabilistic concurrency testing: random task priorities, one poll
    /// of the highest-priority runnable task per step, and `depth - 1`
    /// random priority change points. Finds a bug that needs `depth`
    /// ordering constraints with a probability bounded below. `depth` must
    /// be at least 1; 3 is a good default.
    Pct {
        /// The bug depth aimed at: one more than the number of change points.
        depth: u32,
    },
}

/// The strategy's name as the `strategy = "..."` argument of
/// `#[safepoint::test]` spells it, with PCT's depth.
///
/// # Examples
///
/// ```
/// assert_eq!(safepoint::Strategy::Pct { depth: 3 }.to_string(), "pct(depth 3)");
/// assert_eq!(safepoint::Strategy::Uniform.to_string(), "uniform");
/// ```
impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Uniform => f.write_str("uniform"),
            Strategy::Pct { depth } => write!(f, "pct(depth {depth})"),
        }
    }
}

/// A task chosen this many steps in a row is lowered if another waits.
const MAX_STREAK: u32 = 2;

/// Change points are drawn log-uniformly below this many steps (2^16).
const MAX_CHANGE_POINT_LOG2: u64 = 16;

/// Initial PCT priorities lie in `[2^62, 2^63)`; lowered ones count down
/// from `2^61`, so a lowered task is below every task not yet lowered, and
/// below every task lowered before it.
const FIRST_LOW_PRIORITY: u64 = 1 << 61;

/// The ordering state of one deterministic runtime.
pub(crate) struct Order {
    rng: Rng,
    pct: Option<Pct>,
    /// Per round, the ids of the tasks polled, in order; `None` unless the
    /// determinism check asked for it.
    record: Option<Vec<Vec<u64>>>,
}

struct Pct {
    /// By task id (ids are small and dense: a runtime counts them from 1);
    /// 0 for a task not seen yet.
    priorities: Vec<u64>,
    /// Sorted step numbers (1-based) after which the chosen task is lowered.
    change_points: Vec<u64>,
    step: u64,
    next_low: u64,
    /// The task polled by the last step, and how many steps in a row it
    /// has been chosen, to spot one that spins.
    last: Option<Id>,
    streak: u32,
}

impl Order {
    pub(crate) fn new(seed: u64, strategy: Strategy) -> Order {
        let mut rng = Rng::new(seed);
        let pct = match strategy {
            Strategy::Uniform => None,
            Strategy::Pct { depth } => {
                let mut change_points: Vec<u64> = (1..depth.max(1))
                    .map(|_| {
                        let log2 = rng.next_u64() % (MAX_CHANGE_POINT_LOG2 + 1);
                        1 + rng.next_u64() % (1u64 << log2)
                    })
                    .collect();
                change_points.sort_unstable();
                Some(Pct {
                    priorities: Vec::new(),
                    change_points,
                    step: 0,
                    next_low: FIRST_LOW_PRIORITY,
                    last: None,
                    streak: 0,
                })
            }
        };
        Order {
            rng,
            pct,
            record: None,
        }
    }

    /// Starts recording the schedule fingerprint (from the next round on).
    pub(crate) fn record(&mut self) {
        self.record.get_or_insert_with(Vec::new);
    }

    /// The fingerprint recorded so far: per round, the task ids in the
    /// order they were polled.
    pub(crate) fn fingerprint(&self) -> Option<&[Vec<u64>]> {
        self.record.as_deref()
    }
}

impl Pct {
    fn set(&mut self, id: Id, priority: u64) {
        let i = id.as_u64() as usize;
        if self.priorities.len() <= i {
            self.priorities.resize(i + 1, 0);
        }
        self.priorities[i] = priority;
    }

    fn lower(&mut self, id: Id) {
        self.set(id, self.next_low);
        self.next_low -= 1;
    }

    /// The priority of task `id`; 0 if it has none yet.
    fn priority(&self, id: Id) -> u64 {
        self.priorities
            .get(id.as_u64() as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Picks the index in `batch` of the task to poll this step.
    fn choose(&mut self, rng: &mut Rng, batch: &[Task]) -> usize {
        // New tasks get their priority in id order, so the draw does not
        // depend on the order in which wakes reached the queue.
        let mut fresh: Vec<Id> = batch
            .iter()
            .map(|t| t.metadata().id)
            .filter(|&id| self.priority(id) == 0)
            .collect();
        fresh.sort_unstable();
        for id in fresh {
            let p = (1 << 62) | (rng.next_u64() >> 2);
            self.set(id, p);
        }
        let top = |pct: &Pct| {
            batch
                .iter()
                .enumerate()
                .map(|(i, t)| (i, t.metadata().id))
                .max_by_key(|&(_, id)| (pct.priority(id), std::cmp::Reverse(id)))
                .expect("a batch is never empty")
        };
        let (mut index, mut id) = top(self);
        // A task about to run a third step in a row while others wait is
        // spinning (yielding, or waking itself): let the others run (see
        // the module docs). Two in a row is common without a spin (a
        // timer or a reply woke it again), so it does not count.
        if batch.len() > 1 && self.last == Some(id) && self.streak >= MAX_STREAK {
            self.lower(id);
            (index, id) = top(self);
        }
        if self.last == Some(id) {
            self.streak += 1;
        } else {
            self.last = Some(id);
            self.streak = 1;
        }
        self.step += 1;
        while self.change_points.first() == Some(&self.step) {
            self.change_points.remove(0);
            self.lower(id);
        }
        index
    }
}

/// Puts `batch` (not empty) in the order it is to be polled; tasks set
/// aside go back to the run queue, still runnable, for a later step. Records
/// the round in the fingerprint when asked to.
pub(crate) fn order(shared: &Shared, order: &Mutex<Order>, mut batch: Vec<Task>) -> Vec<Task> {
    let mut guard = order.lock();
    let Order { rng, pct, record } = &mut *guard;
    match pct {
        None => rng.shuffle(&mut batch),
        Some(pct) => {
            let chosen = pct.choose(rng, &batch);
            let task = batch.remove(chosen);
            // Keep the rest in queue order: the next step sees the same
            // batch, so nothing depends on where the chosen one sat.
            for rest in std::mem::replace(&mut batch, vec![task]) {
                shared.injector.push(rest);
            }
        }
    }
    if let Some(record) = record {
        record.push(batch.iter().map(|t| t.metadata().id.as_u64()).collect());
    }
    batch
}
