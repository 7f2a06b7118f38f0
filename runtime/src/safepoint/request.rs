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

use super::barrier::Requester;
use super::census::{PendingFacts, RequestState, StopFacts};
use super::flags::STOPPED;
use super::laggard::{ages, Arrival, Record};
use super::report::{Laggard, LaggardCause, StopTimedOut};
use super::world::StoppedWorld;
use crate::context;
use crate::metrics::{SlowStop, StopArrival};
use crate::scheduler::park::ThreadParker;
use crate::scheduler::Shared;
use crate::sync::Arc;
use crate::task::Id;

/// A pending stop request: resolves to a [`StoppedWorld`] once every other
/// task is at a safepoint or blocked and every worker has parked.
///
/// Returned by [`Handle::stop_the_world`](crate::Handle::stop_the_world).
/// Dropping it before it resolves withdraws the request.
#[must_use = "a stop request does nothing unless awaited"]
pub struct StopTheWorld {
    shared: Arc<Shared>,
    ticket: Option<u64>,
    /// Filed by a thread that blocks until the stop (`stop_blocking`): it is
    /// then the holder of the world (protocol point 14).
    blocking: bool,
    done: bool,
}

impl StopTheWorld {
    pub(crate) fn new(shared: Arc<Shared>) -> StopTheWorld {
        StopTheWorld {
            shared,
            ticket: None,
            blocking: false,
            done: false,
        }
    }

    fn requester(&self) -> Requester {
        match requester_id(&self.shared) {
            Some(id) => Requester::Task(id),
            None if self.blocking => Requester::Thread(crate::sync::thread::current().id()),
            None => Requester::Outside,
        }
    }

    fn poll_stop(&mut self, waker: &Waker) -> Poll<StoppedWorld> {
        let shared = self.shared.clone();
        let ticket = match self.ticket {
            Some(ticket) => ticket,
            None => {
                let requester = self.requester();
                let filed = shared.census.file_request(
                    requester,
                    waker,
                    || shared.polls_snapshot(),
                    || shared.has_visible_work(),
                );
                let Ok((ticket, wakes)) = filed else {
                    self.done = true;
                    match requester {
                        Requester::Task(_) => panic!(
                            "stop_the_world called by the task that already holds the stopped \
                             world: it would wait for itself forever; use the StoppedWorld it holds"
                        ),
                        _ => panic!(
                            "Handle::stop_the_world_blocking called by the thread that already \
                             holds this runtime's stopped world: it would wait for itself \
                             forever; use the StoppedWorld it holds, or drop it first"
                        ),
                    }
                };
                self.ticket = Some(ticket);
                shared.deliver(wakes);
                ticket
            }
        };
        match shared.census.poll_request(ticket, Some(waker)) {
            RequestState::Stopped(facts) => Poll::Ready(self.stopped(shared, ticket, &facts)),
            RequestState::Pending(_) | RequestState::NotActive => Poll::Pending,
        }
    }

    /// The world is stopped for this request: its report, and, if it is one
    /// of the slowest recent stops, the last tasks it waited for, kept for
    /// the metrics.
    fn stopped(&mut self, shared: Arc<Shared>, ticket: u64, facts: &StopFacts) -> StoppedWorld {
        self.done = true;
        let requester = self.requester();
        if shared
            .census
            .wants_slow_stop(facts.stop, facts.time_to_stop)
        {
            let me = match requester {
                Requester::Task(id) => Some(id),
                _ => None,
            };
            shared.census.record_slow_stop(SlowStop {
                stop: facts.stop,
                time_to_stop: facts.time_to_stop,
                last_to_block: last_to_block(&shared, facts.generation, facts.requested_at, me),
            });
        }
        let report = StoppedWorld::make_report(&shared, facts, requester);
        StoppedWorld::new(shared, ticket, report)
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
        let (laggards, at_safepoint) = match shared.census.poll_request(ticket, None) {
            RequestState::Stopped(facts) => return Ok(self.stopped(shared, ticket, &facts)),
            RequestState::NotActive => (Vec::new(), 0),
            RequestState::Pending(facts) => (laggards(&shared, &facts), facts.at_safepoint),
        };
        let queued = shared.injector.len()
            + shared
                .remotes
                .iter()
                .map(|r| usize::from(!r.stealer.is_empty()))
                .sum::<usize>();
        self.done = true;
        // If the world stopped since, this resumes it.
        shared.end_request(ticket);
        Err(StopTimedOut {
            waited,
            laggards,
            queued,
            at_safepoint,
        })
    }
}

/// The last tasks to block before stop `generation` completed, the last
/// first, from every worker's log (and the `block_on` log); never the
/// requester, whose own polls are not what the stop waited for.
fn last_to_block(
    shared: &Shared,
    generation: u64,
    requested_at: Instant,
    requester: Option<Id>,
) -> Vec<StopArrival> {
    let mut arrivals: Vec<Arrival> = Vec::new();
    for remote in shared.remotes.iter() {
        remote
            .laggards
            .lock()
            .collect_arrivals(generation, &mut arrivals);
    }
    shared
        .block_on_laggards
        .lock()
        .collect_arrivals(generation, &mut arrivals);
    arrivals.retain(|a| Some(a.info.id) != requester);
    arrivals.sort_by_key(|a| std::cmp::Reverse(a.blocked_at));
    arrivals.truncate(4);
    arrivals
        .into_iter()
        .map(|a| StopArrival {
            id: a.info.id,
            name: a.info.name.as_deref().map(str::to_owned),
            location: a.info.location.to_string(),
            runnable_for: a
                .blocked_at
                .saturating_duration_since(a.first_seen.unwrap_or(requested_at)),
            polls: a.polls,
        })
        .collect()
}

/// The tasks that kept a pending stop from completing (protocol point 6):
/// those polled since the request and not since blocked (the workers'
/// laggard logs), and those in a poll that began before the request (the
/// workers' current-poll slots, and `block_on` futures in a poll).
fn laggards(shared: &Shared, facts: &PendingFacts) -> Vec<Laggard> {
    let mut records: Vec<Record> = Vec::new();
    for remote in shared.remotes.iter() {
        remote
            .laggards
            .lock()
            .collect(facts.generation, &mut records);
    }
    shared
        .block_on_laggards
        .lock()
        .collect(facts.generation, &mut records);
    let now = Instant::now();
    let since_request = now.saturating_duration_since(facts.requested_at);
    // A task polled by several workers has a record in each log: keep the
    // one runnable longest. The requester waits for the others; it is never
    // their laggard.
    records.retain(|r| Some(r.info.id) != facts.requester);
    records.sort_by_key(|r| (r.info.id, r.first_seen));
    records.dedup_by(|later, kept| {
        let same = later.info.id == kept.info.id;
        if same {
            kept.polling_since = kept.polling_since.or(later.polling_since);
            kept.polls += later.polls;
        }
        same
    });
    let mut laggards: Vec<Laggard> = records
        .iter()
        .map(|r| {
            let (runnable_for, polling_for) = ages(r, now);
            let runnable_for = runnable_for.min(since_request);
            Laggard {
                id: r.info.id,
                name: r.info.name.as_deref().map(str::to_owned),
                location: r.info.location.to_string(),
                runnable_for,
                polling_for,
                polling_since_before_request: false,
                polls_since_request: r.polls,
                cause: LaggardCause::classify(polling_for, runnable_for, r.polls),
            }
        })
        .collect();
    // Polls begun before the request and still running: (id, name,
    // location) from the workers' slots and the `block_on` calls.
    let mut in_one_poll: Vec<(Id, Option<String>, String)> = Vec::new();
    // A worker whose poll count has not moved since the request and that
    // is polling: one poll, begun before the request, still running.
    for (i, remote) in shared.remotes.iter().enumerate() {
        let Some((id, location)) = remote.stats.current_poll() else {
            continue;
        };
        let unmoved = facts.polls_at_request.get(i) == Some(&remote.stats.polls.get());
        if !unmoved {
            continue;
        }
        // The name is in the registry for a named task (registered at
        // spawn); an unnamed one in its first poll is not there yet.
        let name = shared
            .registry
            .info(id)
            .and_then(|info| info.name.as_deref().map(str::to_owned));
        in_one_poll.push((id, name, location.to_string()));
    }
    // `block_on` polls begun during the request are in the log above; one
    // polling now and not logged began before the request.
    for slot in &facts.block_ons {
        if slot.polling().1 {
            in_one_poll.push((
                slot.id(),
                Some(String::from("block_on")),
                slot.location().to_string(),
            ));
        }
    }
    for (id, name, location) in in_one_poll {
        if Some(id) == facts.requester || laggards.iter().any(|l| l.id == id) {
            continue;
        }
        laggards.push(Laggard {
            id,
            name,
            location,
            runnable_for: since_request,
            polling_for: Some(since_request),
            polling_since_before_request: true,
            polls_since_request: 0,
            cause: LaggardCause::LongPoll,
        });
    }
    laggards.sort_by_key(|l| std::cmp::Reverse(l.runnable_for));
    laggards
}

/// The requesting task, if it is a task (or `block_on` future) of *this*
/// runtime. Task ids are unique only within a runtime: a task of another
/// runtime asking this one to stop is, for this runtime, an outside
/// requester.
fn requester_id(shared: &Shared) -> Option<Id> {
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

/// How long a thread waiting for a stop spins before it parks: about one
/// thread wake on a loaded machine, the latency the spin saves.
const SPIN_FOR_DECLARATION: Duration = Duration::from_micros(25);

/// Spins for up to `SPIN_FOR_DECLARATION` while the stop is pending, so a
/// stop that completes within a few microseconds hands the world to this
/// thread without a futex wake and a context switch on the way back (the
/// declaring worker's unpark finds it awake). Only while a core is left
/// over: with every core taken by an unparked worker, spinning would take
/// a core from the very worker the stop waits for, so it parks at once.
/// Returns whether the world stopped (for someone) during the spin.
fn spin_for_declaration(shared: &Shared, deadline: Option<Instant>) -> bool {
    if cfg!(loom) || !matches!(shared.flavor, crate::flavor::Flavor::MultiThread) {
        return false;
    }
    let start = Instant::now();
    let until = match deadline {
        Some(d) => d.min(start + SPIN_FOR_DECLARATION),
        None => start + SPIN_FOR_DECLARATION,
    };
    loop {
        if shared.census.flags().phase() == STOPPED {
            return true;
        }
        if shared.census.unparked_workers() >= shared.cores || Instant::now() >= until {
            return false;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
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
    let mut request = StopTheWorld::new(shared.clone());
    request.blocking = true;
    let mut spun = false;
    loop {
        if let Poll::Ready(world) = request.poll_stop(&waker) {
            return Ok(world);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return request.time_out(started.elapsed());
        }
        if crate::flavor::drive_for_stop(&shared).is_some() {
            // A deterministic runtime with nobody else driving: this thread
            // ran a round; once everything is idle the census has declared.
            continue;
        }
        // Once per call: if the world that stopped was someone else's (this
        // request waits in line), the spin is spent and this thread parks.
        if !spun {
            spun = true;
            if spin_for_declaration(&shared, deadline) {
                continue;
            }
        }
        match deadline {
            None => parker.park(),
            Some(deadline) => {
                parker.park_timeout(deadline.saturating_duration_since(Instant::now()));
            }
        }
    }
}
