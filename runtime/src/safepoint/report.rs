//! What a stop reports: `StopReport` on success, `StopTimedOut` on timeout.
//!
//! A timed-out stop names each task that kept the world from stopping, the
//! way the JVM's `-XX:+SafepointTimeout` names the threads that did not
//! reach a safepoint: id, name, spawn location, and how long it has been
//! runnable (and polled, if it was on a worker at the moment of the report).

use std::fmt;
use std::time::Duration;

use crate::task::Id;

/// Facts about one stop, read while the world is stopped.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Runtime::new().unwrap();
/// let world = rt.handle().stop_the_world_blocking();
/// let report = world.report();
/// assert_eq!(report.at_safepoint, 0);
/// println!("stopped in {:?} with {} tasks", report.time_to_stop, report.tasks);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StopReport {
    /// From the request becoming active to the world stopping.
    pub time_to_stop: Duration,
    /// Live tasks (spawned tasks plus `block_on` futures), the requester
    /// included if it is one.
    pub tasks: usize,
    /// Tasks parked in `safepoint().await`, or at an await on a runtime
    /// resource that would have completed during the stop's request
    /// (protocol point 10).
    pub at_safepoint: usize,
    /// Tasks blocked elsewhere (I/O, timers, channels, join handles): every
    /// task that is neither at a safepoint nor the requester.
    pub blocked: usize,
    /// Worker threads, all parked.
    pub workers: usize,
}

/// A task that was runnable while a stop waited for it.
///
/// # Examples
///
/// ```
/// # fn show(l: &safepoint::Laggard) {
/// println!("{} ({:?}) at {}: runnable for {:?}", l.id, l.name, l.location, l.runnable_for);
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Laggard {
    /// The task's id.
    pub id: Id,
    /// The task's name, if it was spawned with one.
    pub name: Option<String>,
    /// Where it was spawned (`file:line:column`).
    pub location: String,
    /// How long it has been runnable since the stop was requested (or since
    /// it was first seen runnable during it).
    pub runnable_for: Duration,
    /// How long its current poll has run, if a worker was polling it when
    /// the request timed out.
    pub polling_for: Option<Duration>,
    /// Its current poll began before the stop was requested and had not
    /// returned at the deadline: `polling_for` is then a lower bound (the
    /// time since the request).
    pub polling_since_before_request: bool,
    /// How many of its polls began after the stop was requested (0 for a
    /// task in one poll since before the request).
    pub polls_since_request: u64,
    /// Which of the two things that can keep a stop from completing it is
    /// doing.
    pub cause: LaggardCause,
}

/// Why a laggard kept the world from stopping.
///
/// While a stop is pending every await on a runtime resource (socket,
/// timer, signal, `JoinHandle`) is a safepoint (protocol point 10), so a task
/// that awaits anything the runtime drives parks within one poll. What is
/// left is one of these.
///
/// # Examples
///
/// ```
/// # fn advise(l: &safepoint::Laggard) {
/// match l.cause {
///     safepoint::LaggardCause::LongPoll => println!("{}: computes without awaiting", l.id),
///     safepoint::LaggardCause::Loops => println!("{}: yields in a loop", l.id),
///     _ => {}
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaggardCause {
    /// In one long poll: it computes (or blocks its thread) without
    /// awaiting. Add `safepoint().await` inside that loop.
    LongPoll,
    /// Polled again and again without blocking: it loops on `yield_now()`,
    /// or on futures that are not runtime resources (another library's
    /// channel polled in a busy loop, a future that wakes itself). Add
    /// `safepoint().await` in that loop.
    Loops,
}

impl LaggardCause {
    /// In one poll for `polling_for` (if polling), since the task was first
    /// seen runnable `runnable_for` ago, with `polls` polls begun since the
    /// request: a task whose current poll is most of the time it has been
    /// runnable is in a long poll; one polled many times, briefly, loops.
    pub(crate) fn classify(
        polling_for: Option<Duration>,
        runnable_for: Duration,
        polls: u64,
    ) -> LaggardCause {
        match polling_for {
            Some(p) if polls <= 1 || p * 2 >= runnable_for => LaggardCause::LongPoll,
            _ => LaggardCause::Loops,
        }
    }
}

/// A stop that did not happen in time: the request was withdrawn and these
/// tasks kept it from stopping.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = safepoint::Runtime::new().unwrap();
/// let spinner = safepoint::task::Builder::new()
///     .name("spinner")
///     .spawn_on(async { loop { safepoint::task::yield_now().await } }, rt.handle())
///     .unwrap();
/// let err = rt.block_on(rt.handle().stop_the_world_timeout(Duration::from_millis(50))).unwrap_err();
/// assert!(err.laggards().iter().any(|l| l.name.as_deref() == Some("spinner")));
/// println!("{err}");
/// spinner.abort();
/// ```
#[derive(Clone, Debug)]
pub struct StopTimedOut {
    pub(crate) waited: Duration,
    pub(crate) laggards: Vec<Laggard>,
    pub(crate) queued: usize,
    pub(crate) at_safepoint: usize,
}

impl StopTimedOut {
    /// The tasks that were runnable during the stop, longest first.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(e: safepoint::StopTimedOut) { for l in e.laggards() { println!("{}", l.id); } }
    /// ```
    pub fn laggards(&self) -> &[Laggard] {
        &self.laggards
    }

    /// How long the request waited before it was withdrawn.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(e: safepoint::StopTimedOut) { println!("{:?}", e.waited()); }
    /// ```
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Runnable tasks still queued when the request timed out (some may not
    /// be named among the laggards if no worker reached them).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(e: safepoint::StopTimedOut) { println!("{}", e.queued()); }
    /// ```
    pub fn queued(&self) -> usize {
        self.queued
    }
}

impl fmt::Display for StopTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the world did not stop within {:?}: {} task(s) kept running ({} parked at safepoints, {} queued)",
            self.waited,
            self.laggards.len(),
            self.at_safepoint,
            self.queued
        )?;
        for l in &self.laggards {
            write!(f, "\n  task {}", l.id)?;
            if let Some(name) = &l.name {
                write!(f, " \"{name}\"")?;
            }
            write!(
                f,
                " spawned at {}: runnable for {:?}",
                l.location, l.runnable_for
            )?;
            match (l.cause, l.polling_for) {
                (LaggardCause::LongPoll, Some(p)) if l.polling_since_before_request => write!(
                    f,
                    ", in one poll since before the request (at least {p:?}): it computes \
                     without awaiting; add `safepoint().await` in that loop"
                )?,
                (LaggardCause::LongPoll, p) => write!(
                    f,
                    ", in one long poll ({:?}): it computes without awaiting; add \
                     `safepoint().await` in that loop",
                    p.unwrap_or_default()
                )?,
                (LaggardCause::Loops, _) => write!(
                    f,
                    ", polled {} time(s) since the request without blocking: it loops on \
                     `yield_now()` or on futures that are not runtime resources (awaits on \
                     sockets, timers and join handles are safepoints during a stop); add \
                     `safepoint().await` in that loop",
                    l.polls_since_request
                )?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for StopTimedOut {}

impl From<StopTimedOut> for std::io::Error {
    fn from(e: StopTimedOut) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}
