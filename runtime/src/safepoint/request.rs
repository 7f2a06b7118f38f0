//! Stop requests: the futures and blocking calls that stop the world.
//!
//! A request is filed with the barrier on its first poll and then waits
//! like any blocked task: a requester running on a worker gives the worker
//! back while it waits (the Turbopack deadlock came from a requester that
//! did not), and the worker goes on draining work and parks like the rest.
//! When the last participant parks, the barrier declares the stop and wakes
//! the requester, which the wake path routes to the requester slot so that
//! exactly one task runs while the world is stopped. Dropping a request, or
//! its timing out, withdraws it cleanly: tasks parked at safepoints are
//! released and the next requester in line gets its turn.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::laggard::{ages, Record};
use super::report::{Laggard, StopTimedOut};
use super::world::StoppedWorld;
use crate::context;
use crate::scheduler::park::ThreadParker;
use crate::scheduler::Shared;
use crate::sync::Arc;

/// A pending stop request: resolves to a [`StoppedWorld`] once every other
/// task is at a safepoint or blocked and every worker has parked.
///
/// Returned by [`Handle::stop_the_world`](crate::Handle::stop_the_world).
/// Dropping it before it resolves withdraws the request.
#[must_use = "a stop request does nothing unless awaited"]
pub struct StopTheWorld {
    shared: Arc<Shared>,
    ticket: Option<u64>,
    done: bool,
}

impl StopTheWorld {
    pub(crate) fn new(shared: Arc<Shared>) -> StopTheWorld {
        StopTheWorld {
            shared,
            ticket: None,
            done: false,
        }
    }

    fn poll_stop(&mut self, waker: &Waker) -> Poll<StoppedWorld> {
        let shared = self.shared.clone();
        let mut inner = shared.idle.lock();
        let ticket = match self.ticket {
            Some(ticket) => ticket,
            None => {
                let me = requester_id(&shared);
                if me.is_some() && inner.barrier.is_requester(me) {
                    drop(inner);
                    panic!(
                        "stop_the_world called by the task that already holds the stopped world: \
                         it would wait for itself forever; use the StoppedWorld it holds"
                    );
                }
                let (ticket, active) =
                    inner
                        .barrier
                        .enqueue(&shared.flags, me, waker.clone(), Instant::now());
                self.ticket = Some(ticket);
                if active {
                    // Everything may be idle already (a request from outside
                    // an idle runtime): then the stop needs no thread wake.
                    let mut wakes = shared.check_all_idle(&mut inner);
                    wakes.wakers.retain(|w| !w.will_wake(waker));
                    if !wakes.is_empty() {
                        drop(inner);
                        wakes.wake();
                        inner = shared.idle.lock();
                    }
                }
                ticket
            }
        };
        if inner.barrier.active_ticket() == Some(ticket) && inner.barrier.is_stopped() {
            self.done = true;
            let me = requester_id(&shared);
            let report = StoppedWorld::make_report(&shared, &inner, me);
            drop(inner);
            return Poll::Ready(StoppedWorld::new(shared, ticket, report));
        }
        inner.barrier.update_waker(ticket, waker);
        Poll::Pending
    }

    /// Gives up: builds the laggard report and withdraws the request. If the
    /// world stopped in the meantime, returns it instead.
    fn time_out(&mut self, waited: Duration) -> Result<StoppedWorld, StopTimedOut> {
        let shared = self.shared.clone();
        let Some(ticket) = self.ticket else {
            return Err(StopTimedOut {
                waited,
                laggards: Vec::new(),
                queued: 0,
                at_safepoint: 0,
            });
        };
        let inner = shared.idle.lock();
        if inner.barrier.active_ticket() == Some(ticket) && inner.barrier.is_stopped() {
            self.done = true;
            let report = StoppedWorld::make_report(&shared, &inner, requester_id(&shared));
            drop(inner);
            return Ok(StoppedWorld::new(shared, ticket, report));
        }
        let mut records: Vec<Record> = Vec::new();
        let active = inner.barrier.active_ticket() == Some(ticket);
        let at_safepoint = if active {
            inner.barrier.at_safepoint()
        } else {
            0
        };
        if active {
            let generation = inner.barrier.generation();
            for remote in shared.remotes.iter() {
                remote.laggards.lock().collect(generation, &mut records);
            }
            shared
                .block_on_laggards
                .lock()
                .collect(generation, &mut records);
        }
        let queued = shared.injector.len()
            + shared
                .remotes
                .iter()
                .map(|r| usize::from(!r.stealer.is_empty()))
                .sum::<usize>();
        let now = Instant::now();
        let requested_at = inner.barrier.requested_at().unwrap_or(now);
        let mut laggards: Vec<Laggard> = records
            .iter()
            .map(|r| {
                let (runnable_for, polling_for) = ages(r, now);
                Laggard {
                    id: r.info.id,
                    name: r.info.name.as_deref().map(str::to_owned),
                    location: r.info.location.to_string(),
                    runnable_for: runnable_for.min(now.saturating_duration_since(requested_at)),
                    polling_for,
                }
            })
            .collect();
        laggards.sort_by_key(|l| std::cmp::Reverse(l.runnable_for));
        self.done = true;
        drop(inner);
        // If the world stopped since the lock was released, this resumes it.
        shared.end_request(ticket);
        Err(StopTimedOut {
            waited,
            laggards,
            queued,
            at_safepoint,
        })
    }
}

/// The requesting task, if it is a task (or `block_on` future) of *this*
/// runtime. Task ids are unique only within a runtime: a task of another
/// runtime asking this one to stop is, for this runtime, an outside
/// requester.
fn requester_id(shared: &Shared) -> Option<crate::task::Id> {
    let here = context::try_current().is_some_and(|h| std::ptr::eq(&*h.shared, shared));
    if here {
        context::current_task()
    } else {
        None
    }
}

impl Future for StopTheWorld {
    type Output = StoppedWorld;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StoppedWorld> {
        assert!(!self.done, "StopTheWorld polled after it resolved");
        self.poll_stop(cx.waker())
    }
}

impl Drop for StopTheWorld {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(ticket) = self.ticket {
            // Withdraws it, dequeues it, or (stopped for us but never handed
            // over) resumes the world.
            self.shared.end_request(ticket);
        }
    }
}

/// A stop request with a deadline: resolves to the world, or to a
/// [`StopTimedOut`] naming the tasks that kept it from stopping.
///
/// Returned by
/// [`Handle::stop_the_world_timeout`](crate::Handle::stop_the_world_timeout).
#[must_use = "a stop request does nothing unless awaited"]
pub struct StopTheWorldTimeout {
    request: StopTheWorld,
    sleep: Pin<Box<safepoint_io::time::Sleep>>,
    started: Instant,
}

impl StopTheWorldTimeout {
    pub(crate) fn new(shared: Arc<Shared>, timeout: Duration) -> Self {
        let _enter = shared.io.as_ref().map(|io| io.enter());
        StopTheWorldTimeout {
            request: StopTheWorld::new(shared),
            sleep: Box::pin(safepoint_io::time::sleep(timeout)),
            started: Instant::now(),
        }
    }
}

impl Future for StopTheWorldTimeout {
    type Output = Result<StoppedWorld, StopTimedOut>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(world) = self.request.poll_stop(cx.waker()) {
            return Poll::Ready(Ok(world));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            let waited = self.started.elapsed();
            return Poll::Ready(self.request.time_out(waited));
        }
        Poll::Pending
    }
}

/// Blocks the calling thread until the world stops, or until `timeout`.
pub(crate) fn stop_blocking(
    shared: Arc<Shared>,
    timeout: Option<Duration>,
) -> Result<StoppedWorld, StopTimedOut> {
    context::assert_may_block(
        "Handle::stop_the_world_blocking",
        "use `handle.stop_the_world().await` from a task",
    );
    context::assert_not_in_block_on(
        "Handle::stop_the_world_blocking",
        "use `handle.stop_the_world().await` inside the future",
    );
    let parker = StdArc::new(ThreadParker::new());
    let waker = Waker::from(parker.clone());
    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    let det = shared.det.is_some();
    let handle = crate::Handle::from_shared(shared.clone());
    let mut request = StopTheWorld::new(shared);
    loop {
        if let Poll::Ready(world) = request.poll_stop(&waker) {
            return Ok(world);
        }
        if det && handle.shared.idle.lock().block_on_count == 0 {
            // Nobody else drives the deterministic runtime: run rounds on
            // this thread until the tasks reach their safepoints. (With a
            // `block_on` running elsewhere, that thread drives and this one
            // waits, so rounds never run on two threads at once.)
            let _enter = context::enter(&handle);
            if crate::deterministic::runner::step(&handle.shared) == 0 {
                // Everything idle now: the census has declared the stop.
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return request.time_out(started.elapsed());
            }
            continue;
        }
        match deadline {
            None => parker.park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return request.time_out(now - started);
                }
                parker.park_timeout(deadline - now);
            }
        }
    }
}
