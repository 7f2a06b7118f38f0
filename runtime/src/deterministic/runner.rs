//! The deterministic flavour's scheduler: caller-driven rounds.
//!
//! No worker threads. Tasks run only on the calling thread, inside
//! `block_on`, `run_until_blocked`, `step` and `advance`. A *round* polls
//! once each task that was runnable when the round began, in an order drawn
//! from a PRNG seeded by the builder's seed; tasks woken during the round
//! wait for the next one. Same seed, same interleaving, same output.
//!
//! Everything else is the multi-thread runtime's code: the task cell, the
//! join handles, the registry, the driver (with a virtual clock) and the
//! safepoint census, which sees no workers and counts a round as it counts
//! a `block_on` poll, so stops and quiescence work unchanged.
//!
//! The caller's own future (`block_on`'s) is polled whenever it is woken,
//! and every poll of it is followed by a round, so a future that yields in
//! a loop still lets the tasks run.
//!
//! Virtual time moves only when everything is blocked and nothing waits on
//! real I/O (protocol point 9): the clock then jumps to the next timer.
//! With I/O in flight the runner waits for the OS instead, so a timeout
//! cannot fire while a reply is still on its way (tokio's auto-advance does
//! that). When `block_on`'s future can never finish (all blocked, no timer,
//! no I/O, no blocking job), it panics with "deadlock" and the blocked tasks.

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use super::strategy::{self, Order, Strategy};
use crate::block_on::{assert_not_holding_world, Polling, Registered};
use crate::context;
use crate::handle::Handle;
use crate::safepoint::census::{BeginPoll, BlockOnSlot, Routed};
use crate::safepoint::flags::STOPPED;
use crate::scheduler::{Shared, Task};
use crate::sync::Mutex;
use crate::task::Id;

/// The deterministic flavour's own state.
pub(crate) struct Deterministic {
    seed: u64,
    pub(crate) order: Mutex<Order>,
}

impl Deterministic {
    pub(crate) fn new(seed: u64, strategy: Strategy) -> Deterministic {
        Deterministic {
            seed,
            order: Mutex::new(Order::new(seed, strategy)),
        }
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }
}

/// async-task's schedule function under the deterministic flavour: the
/// task waits in the run queue for the next round. While the world is
/// stopped, only the requester is set aside to run; other wakes are kept
/// (protocol point 3).
pub(crate) fn schedule(shared: &Shared, task: Task) {
    if shared.census.flags().phase() == STOPPED {
        if let Routed::Resumed(task) = shared
            .census
            .route_while_stopped(task, |task| shared.injector.push(task))
        {
            shared.injector.push(task);
        }
    } else {
        let id = task.metadata().id;
        shared.injector.push(task);
        // A wake of the requester from another thread that raced the stop's
        // declaration (see `Census::rescue_requester`).
        crate::sync::fence(crate::sync::Ordering::SeqCst);
        if shared.census.may_be_requester(id) {
            shared.rescue_requester(id);
        }
    }
    // A wake from another thread (a blocking job, a signal) must reach a
    // caller that is waiting in the driver.
    shared.interrupt_driver();
}

fn det(shared: &Shared) -> &Deterministic {
    shared
        .flavor
        .deterministic()
        .expect("only the deterministic flavour drives rounds")
}

/// Turns the driver, so ready I/O and due timers wake their tasks.
fn poll_driver(shared: &Shared, timeout: Option<Duration>) {
    if let Some(driver) = &shared.driver {
        driver.lock().turn(timeout);
    }
}

/// Counts a round as running (protocol point 11: nothing is idle while a
/// round runs) and, when it ends, lets the census declare stops and
/// quiescence.
struct Round<'a>(&'a Shared);

impl<'a> Round<'a> {
    /// The round, and whether the world is stopped for it.
    fn begin(shared: &'a Shared) -> (Round<'a>, bool) {
        let stopped = shared.census.begin_round();
        (Round(shared), stopped)
    }
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        let wakes = shared.census.end_active(|| shared.has_visible_work());
        shared.deliver(wakes);
    }
}

/// One round: each task runnable now is polled once, in seeded order.
/// Returns how many were polled.
pub(crate) fn step(shared: &Shared) -> usize {
    poll_driver(shared, Some(Duration::ZERO));
    // Count the round as running *before* looking at the phase and taking
    // the batch: a stop requested from another thread cannot then be
    // declared between our look and our polls.
    let (_round, stopped) = Round::begin(shared);
    let mut batch: Vec<Task> = Vec::new();
    if stopped {
        batch.extend(shared.census.take_requester_runnable());
    } else {
        while let Some(task) = shared.injector.pop() {
            batch.push(task);
        }
    }
    if batch.is_empty() {
        // Nothing to poll; ending the round lets the census declare what is
        // due (a stop, quiescence).
        return 0;
    }
    let batch = strategy::order(shared, &det(shared).order, batch);
    let n = batch.len();
    for task in batch {
        let prev = context::set_current_task(Some(task.metadata().id));
        task.run();
        context::set_current_task(prev);
    }
    n
}

/// Rounds until a round polls nothing: every task is blocked or done.
pub(crate) fn run_until_blocked(shared: &Shared) {
    while step(shared) > 0 {}
}

/// Moves virtual time forward by `d`, firing timers in deadline order and
/// running until blocked after each.
pub(crate) fn advance(shared: &Shared, d: Duration) {
    let io = shared
        .io
        .as_ref()
        .expect("the deterministic runtime has a driver");
    let clock = io.clock();
    let target = clock.now() + d;
    run_until_blocked(shared);
    loop {
        match io.next_timer_deadline() {
            Some(next) if next <= target => {
                clock.advance_to(next);
                run_until_blocked(shared);
            }
            _ => break,
        }
    }
    clock.advance_to(target);
    run_until_blocked(shared);
}

/// Wakes the caller's own future: counts it runnable in the census
/// (protocol point 11), raises the flag the runner looks at between rounds,
/// and interrupts the driver for wakes from other threads.
struct MainWaker {
    woken: AtomicBool,
    shared: crate::sync::Arc<Shared>,
    slot: StdArc<BlockOnSlot>,
}

impl Wake for MainWaker {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &StdArc<Self>) {
        let shared = &self.shared;
        let wakes = shared
            .census
            .count_wake(&self.slot, || shared.has_visible_work());
        shared.deliver(wakes);
        self.woken.store(true, StdOrdering::Release);
        self.shared.interrupt_driver();
    }
}

pub(crate) fn block_on<F: Future>(
    handle: &Handle,
    future: F,
    location: &'static Location<'static>,
) -> F::Output {
    let _block_on = context::enter_block_on("Runtime::block_on");
    let shared = &*handle.shared;
    assert_not_holding_world(shared);
    let _enter = context::enter(handle);
    let seed = det(shared).seed;
    let id = shared.next_id();
    let registered = Registered::new(shared, id, location);
    let main = StdArc::new(MainWaker {
        woken: AtomicBool::new(true),
        shared: handle.shared.clone(),
        slot: registered.slot.clone(),
    });
    let waker = Waker::from(main.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if main.woken.swap(false, StdOrdering::AcqRel) {
            if let Some(out) =
                poll_main(shared, &registered.slot, &waker, &mut future, &mut cx, seed)
            {
                return out;
            }
            // A round after every poll of the caller's future, woken or not:
            // a future that yields in a loop lets every runnable task run
            // once per yield instead of starving them.
            step(shared);
            continue;
        }
        if step(shared) > 0 || main.woken.load(StdOrdering::Acquire) {
            continue;
        }
        // Every task is blocked. What can still happen?
        let io = shared
            .io
            .as_ref()
            .expect("the deterministic runtime has a driver");
        if io.io_waiters() > 0 || shared.blocking.busy() > 0 {
            // Real I/O or a blocking job is in flight: wait for the OS (a
            // finished job interrupts the wait), never skip virtual time
            // past it (protocol point 9).
            poll_driver(shared, None);
            continue;
        }
        if shared.census.stopped_for_outside_thread() {
            // Stopped by a thread outside the runtime: only its resume can
            // change anything, and it interrupts the driver.
            poll_driver(shared, None);
            continue;
        }
        if let Some(next) = io.next_timer_deadline() {
            io.clock().advance_to(next);
            poll_driver(shared, Some(Duration::ZERO));
            continue;
        }
        panic!("{}", deadlock_report(shared, id, location, seed));
    }
}

/// Polls the caller's future once, unless the world is stopped by someone
/// else. A panic is re-raised with the seed in its message.
fn poll_main<F: Future>(
    shared: &Shared,
    slot: &BlockOnSlot,
    waker: &Waker,
    future: &mut std::pin::Pin<&mut F>,
    cx: &mut Context<'_>,
    seed: u64,
) -> Option<F::Output> {
    if let BeginPoll::Held = shared.census.begin_block_on_poll(slot, waker) {
        return None;
    }
    let poll = {
        let _polling = Polling::begin(shared, slot);
        let prev = context::set_current_task(Some(slot.id()));
        let poll = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
        context::set_current_task(prev);
        poll
    };
    match poll {
        Ok(Poll::Ready(out)) => Some(out),
        Ok(Poll::Pending) => None,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            match msg {
                Some(msg) => panic!(
                    "{msg} (deterministic runtime, seed {seed}: replay with \
                     Builder::new_deterministic({seed}))"
                ),
                None => resume_unwind(payload),
            }
        }
    }
}

fn deadlock_report(
    shared: &Shared,
    main: Id,
    location: &'static Location<'static>,
    seed: u64,
) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "deadlock: the future passed to block_on (task {main}, at {location}) can never \
         finish: every task is blocked, no timer is pending, no I/O is registered and no \
         blocking job is running (deterministic runtime, seed {seed})"
    );
    let tasks = shared.registry.infos();
    if tasks.is_empty() {
        s.push_str("; no other task is alive");
    } else {
        let _ = write!(s, "; {} blocked task(s):", tasks.len());
        for t in tasks {
            let _ = write!(s, "\n  {t}");
        }
    }
    s
}
