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
    /// Tasks parked in `safepoint().await`.
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
            match l.polling_for {
                Some(p) if l.polling_since_before_request => write!(
                    f,
                    ", in one poll since before the request (at least {p:?}): it computes \
                     without awaiting; add `safepoint().await` in that loop"
                )?,
                Some(p) => write!(f, ", in a poll for {p:?}")?,
                None => {}
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
