//! `Builder`: configure and build a runtime.
//!
//! Bad values are reported by `build()` as an `io::Error` of kind
//! `InvalidInput` whose message names the setting and the value, so a typo
//! in a config file fails loudly at start-up instead of producing a runtime
//! that hangs.

use std::io;
use std::time::Duration;

use crate::deterministic::{Deterministic, Strategy};
use crate::flavor::Flavor;
use crate::hooks::Hooks;
use crate::runtime::Runtime;
use crate::scheduler::{worker, Config, Shared};
use crate::sync::queue::Local;
use crate::sync::Arc;

/// Builds a [`Runtime`] with custom settings.
///
/// # Examples
///
/// ```
/// let rt = safepoint::Builder::new_multi_thread()
///     .worker_threads(4)
///     .thread_name("app")
///     .build()
///     .unwrap();
/// assert_eq!(rt.metrics().workers, 4);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    worker_threads: Option<usize>,
    thread_name: String,
    thread_stack_size: Option<usize>,
    global_queue_interval: u32,
    event_interval: u32,
    max_blocking_threads: usize,
    thread_keep_alive: Duration,
    enable_io: bool,
    enable_time: bool,
    /// `Some(seed)` for the deterministic flavour.
    seed: Option<u64>,
    /// The deterministic flavour's exploration strategy, if set.
    strategy: Option<Strategy>,
    hooks: Hooks,
    /// Start a side tokio runtime (see [`Builder::enable_tokio_compat`]).
    #[cfg(feature = "tokio-compat")]
    tokio_compat: bool,
}

/// The most workers a runtime can have (the census packs counts in 16 bits).
const MAX_WORKERS: usize = (1 << 15) - 1;

impl Builder {
    /// A builder for the multi-thread, work-stealing runtime. I/O and time
    /// are enabled by default (`enable_all` is accepted for tokio habits).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().enable_all().build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn new_multi_thread() -> Builder {
        Builder {
            worker_threads: None,
            thread_name: "safepoint-worker".to_owned(),
            thread_stack_size: None,
            global_queue_interval: 61,
            event_interval: 61,
            max_blocking_threads: 512,
            thread_keep_alive: Duration::from_secs(10),
            enable_io: true,
            enable_time: true,
            seed: None,
            strategy: None,
            hooks: Hooks::default(),
            #[cfg(feature = "tokio-compat")]
            tokio_compat: false,
        }
    }

    /// A builder for the deterministic flavour: no worker threads; tasks run
    /// only on the calling thread inside `block_on`, `run_until_blocked`,
    /// `step` and `advance`, each round in an order drawn from `seed`; time
    /// is virtual and jumps to the next timer when every task is blocked and
    /// none waits on real I/O. The same seed gives the same interleaving on
    /// every run and machine (up to the order in which the OS delivers real
    /// I/O, if the program uses sockets).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = safepoint::Builder::new_deterministic(42).build().unwrap();
    /// let start = std::time::Instant::now();
    /// rt.block_on(async { safepoint::time::sleep(Duration::from_secs(3600)).await });
    /// assert!(start.elapsed() < Duration::from_secs(5)); // virtual time
    /// ```
    pub fn new_deterministic(seed: u64) -> Builder {
        Builder {
            seed: Some(seed),
            ..Builder::new_multi_thread()
        }
    }

    /// The number of worker threads (default: the number of CPUs).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    /// assert_eq!(rt.metrics().workers, 2);
    /// let err = safepoint::Builder::new_multi_thread().worker_threads(0).build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn worker_threads(&mut self, n: usize) -> &mut Builder {
        self.worker_threads = Some(n);
        self
    }

    /// The prefix of worker thread names (workers are `{name}-{index}`,
    /// blocking threads `{name}-blocking-{n}`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().thread_name("app").build().unwrap();
    /// let name = rt.block_on(rt.spawn(async { std::thread::current().name().unwrap().to_owned() }));
    /// assert!(name.unwrap().starts_with("app-"));
    /// ```
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Builder {
        self.thread_name = name.into();
        self
    }

    /// Stack size of worker and blocking threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().thread_stack_size(4 << 20).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Builder {
        self.thread_stack_size = Some(bytes);
        self
    }

    /// The most threads the blocking pool may start (default 512).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().max_blocking_threads(8).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Builder {
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread waits for a job before it exits
    /// (default 10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = safepoint::Builder::new_multi_thread()
    ///     .thread_keep_alive(Duration::from_millis(100))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn thread_keep_alive(&mut self, d: Duration) -> &mut Builder {
        self.thread_keep_alive = d;
        self
    }

    /// Ticks between checks of the global queue ahead of the local one
    /// (fairness; default 61, as tokio).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().global_queue_interval(31).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn global_queue_interval(&mut self, ticks: u32) -> &mut Builder {
        self.global_queue_interval = ticks;
        self
    }

    /// The most ticks between non-blocking polls of the I/O driver by a busy
    /// worker (default 61, as tokio).
    ///
    /// Unlike tokio, the interval is an upper bound: while these polls keep
    /// finding several ready tasks, a worker polls sooner (down to every 8
    /// ticks, or `ticks` if that is smaller), and it backs off again after a
    /// poll that finds nothing. Under heavy I/O the events then reach the
    /// workers as they come instead of in bursts that leave cores idle; a
    /// CPU-bound queue still pays one poll per `ticks` tasks. While a stop
    /// of the world is requested, polls keep to every `ticks` ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().event_interval(31).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn event_interval(&mut self, ticks: u32) -> &mut Builder {
        self.event_interval = ticks;
        self
    }

    /// Enables the I/O and time drivers (they are on by default; this is
    /// here so tokio-shaped code compiles unchanged).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().enable_all().build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn enable_all(&mut self) -> &mut Builder {
        self.enable_io = true;
        self.enable_time = true;
        self
    }

    /// Enables the I/O driver (on by default).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().enable_io().build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn enable_io(&mut self) -> &mut Builder {
        self.enable_io = true;
        self
    }

    /// Enables the time driver (on by default).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = safepoint::Builder::new_multi_thread().enable_time().build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn enable_time(&mut self) -> &mut Builder {
        self.enable_time = true;
        self
    }

    /// The deterministic flavour's exploration strategy: how each step
    /// picks which runnable tasks to poll, and in what order (default
    /// [`Strategy::Uniform`]). [`Strategy::Pct`] finds bugs that need one
    /// task to run many steps while another waits; see [`Strategy`]. The
    /// interleaving stays a function of the seed and the strategy.
    ///
    /// # Errors
    ///
    /// `build()` fails with `InvalidInput` if this is set on the
    /// multi-thread flavour (it has no seeded order) or if PCT's depth is 0.
    /// Runs `f` on every worker thread and blocking-pool thread of the
    /// runtime when it starts, before it runs any task, inside the runtime
    /// (so `Handle::current()` works there). As in tokio.
    ///
    /// # Examples
    ///
    /// ```
    /// use safepoint::{Builder, Strategy};
    ///
    /// let rt = Builder::new_deterministic(1).strategy(Strategy::Pct { depth: 2 }).build().unwrap();
    /// # drop(rt);
    /// let err = Builder::new_multi_thread().strategy(Strategy::Uniform).build().unwrap_err();
    /// assert!(err.to_string().contains("strategy"));
    /// ```
    pub fn strategy(&mut self, strategy: Strategy) -> &mut Builder {
        self.strategy = Some(strategy);
        self
    }

    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let s = started.clone();
    /// let rt = safepoint::Builder::new_multi_thread()
    ///     .worker_threads(2)
    ///     .on_thread_start(move || {
    ///         s.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(async { safepoint::spawn_blocking(|| ()).await.unwrap() });
    /// rt.run_until_blocked(); // every worker has started (and gone idle)
    /// assert_eq!(started.load(Ordering::SeqCst), 3); // 2 workers, 1 blocking thread
    /// ```
    pub fn on_thread_start<F>(&mut self, f: F) -> &mut Builder
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.hooks.start = Some(std::sync::Arc::new(f));
        self
    }

    /// Runs `f` on every worker thread and blocking-pool thread of the
    /// runtime just before it exits (at shutdown, or when an idle blocking
    /// thread's keep-alive ends), after its last task. As in tokio.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let s = stopped.clone();
    /// let rt = safepoint::Builder::new_multi_thread()
    ///     .worker_threads(2)
    ///     .on_thread_stop(move || {
    ///         s.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// drop(rt); // joins the workers
    /// assert_eq!(stopped.load(Ordering::SeqCst), 2);
    /// ```
    pub fn on_thread_stop<F>(&mut self, f: F) -> &mut Builder
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.hooks.stop = Some(std::sync::Arc::new(f));
        self
    }

    /// Runs `f` on a worker thread each time it is about to sleep for lack
    /// of work (it may still turn the I/O driver while asleep). As in
    /// tokio, keep it short: it runs on the path to every park.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let parks = Arc::new(AtomicUsize::new(0));
    /// let p = parks.clone();
    /// let rt = safepoint::Builder::new_multi_thread()
    ///     .worker_threads(1)
    ///     .on_thread_park(move || {
    ///         p.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(rt.spawn(async {})).unwrap();
    /// rt.run_until_blocked(); // the worker has gone to sleep
    /// assert!(parks.load(Ordering::SeqCst) >= 1);
    /// ```
    pub fn on_thread_park<F>(&mut self, f: F) -> &mut Builder
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.hooks.park = Some(std::sync::Arc::new(f));
        self
    }

    /// Runs `f` on a worker thread each time it wakes from the sleep that
    /// [`Builder::on_thread_park`] announced. As in tokio.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let unparks = Arc::new(AtomicUsize::new(0));
    /// let u = unparks.clone();
    /// let rt = safepoint::Builder::new_multi_thread()
    ///     .worker_threads(1)
    ///     .on_thread_unpark(move || {
    ///         u.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// rt.run_until_blocked(); // the worker is asleep
    /// rt.block_on(rt.spawn(async {})).unwrap(); // and is woken to run this
    /// assert!(unparks.load(Ordering::SeqCst) >= 1);
    /// ```
    pub fn on_thread_unpark<F>(&mut self, f: F) -> &mut Builder
    where
        F: Fn() + Send + Sync + 'static,
    {
        self.hooks.unpark = Some(std::sync::Arc::new(f));
        self
    }

    /// Starts a tokio runtime on a side thread and makes it the current
    /// tokio runtime on every thread of this runtime (workers and blocking
    /// threads for their whole life, `block_on` and `Handle::enter` for
    /// their scope), so that code written for tokio (`tokio::time::sleep`,
    /// `tokio::time::timeout`, `tokio::net`, tower-http's `TimeoutLayer`,
    /// axum handlers) works inside safepoint tasks instead of panicking with
    /// "there is no reactor running". Needs the `tokio-compat` feature.
    ///
    /// What then lives outside this runtime's scheduler, and so outside a
    /// stop of the world: every task spawned with `tokio::spawn` or
    /// `tokio::task::spawn_blocking` (it runs on tokio's thread and keeps
    /// running during a stop; stop reports do not see it), and tokio's
    /// timer and socket drivers, whose wakes reach our tasks as wakes from
    /// another thread, kept during a stop and delivered on the resume.
    ///
    /// # Errors
    ///
    /// [`Builder::build`] fails with `InvalidInput` on the deterministic
    /// flavour (tokio's clock is real time and no seed can replay it), or
    /// with the OS error if tokio's thread or drivers cannot start.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = safepoint::Builder::new_multi_thread().enable_tokio_compat().build().unwrap();
    /// let out = rt.block_on(rt.spawn(async {
    ///     tokio::time::sleep(Duration::from_millis(5)).await;
    ///     tokio::time::timeout(Duration::from_millis(5), std::future::pending::<()>())
    ///         .await
    ///         .is_err()
    /// }));
    /// assert!(out.unwrap());
    /// ```
    #[cfg(feature = "tokio-compat")]
    pub fn enable_tokio_compat(&mut self) -> &mut Builder {
        self.tokio_compat = true;
        self
    }

    fn validate(&self) -> io::Result<Config> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.seed.is_none() && self.strategy.is_some() {
            return invalid(
                "strategy applies only to the deterministic flavour \
                 (Builder::new_deterministic): the multi-thread flavour has no seeded order"
                    .into(),
            );
        }
        if self.strategy == Some(Strategy::Pct { depth: 0 }) {
            return invalid("the PCT strategy's depth must be at least 1 (got 0)".into());
        }
        if self.seed.is_some() && self.worker_threads.is_some() {
            return invalid(
                "worker_threads cannot be set on the deterministic flavour: it runs every task \
                 on the calling thread"
                    .into(),
            );
        }
        let workers = match self.seed {
            Some(_) => 0,
            None => self.worker_threads.unwrap_or_else(num_cpus::get),
        };
        if workers == 0 && self.seed.is_none() {
            return invalid("worker_threads must be at least 1 (got 0)".into());
        }
        if workers > MAX_WORKERS {
            return invalid(format!(
                "worker_threads must be at most {MAX_WORKERS} (got {workers})"
            ));
        }
        if self.max_blocking_threads == 0 {
            return invalid("max_blocking_threads must be at least 1 (got 0)".into());
        }
        if self.global_queue_interval == 0 {
            return invalid("global_queue_interval must be at least 1 (got 0)".into());
        }
        if self.event_interval == 0 {
            return invalid("event_interval must be at least 1 (got 0)".into());
        }
        if self.thread_name.is_empty() {
            return invalid("thread_name must not be empty".into());
        }
        if self.thread_name.contains('\0') {
            return invalid(format!(
                "thread_name must not contain a NUL byte (got {:?})",
                self.thread_name
            ));
        }
        if self.thread_stack_size == Some(0) {
            return invalid("thread_stack_size must be more than 0 bytes".into());
        }
        Ok(Config {
            worker_threads: workers,
            thread_name: self.thread_name.clone(),
            thread_stack_size: self.thread_stack_size,
            global_queue_interval: self.global_queue_interval,
            event_interval: self.event_interval,
            max_blocking_threads: self.max_blocking_threads,
            thread_keep_alive: self.thread_keep_alive,
            hooks: self.hooks.clone(),
        })
    }

    /// Builds the runtime and starts its workers.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad setting (the message names it); otherwise
    /// the OS error from starting a thread or creating the I/O driver.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = safepoint::Builder::new_multi_thread()
    ///     .worker_threads(0)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("worker_threads"));
    /// ```
    pub fn build(&mut self) -> io::Result<Runtime> {
        #[allow(unused_mut)] // mutated only with the `tokio-compat` feature
        let mut config = self.validate()?;
        #[cfg(feature = "tokio-compat")]
        if self.tokio_compat {
            if self.seed.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "enable_tokio_compat cannot be used with the deterministic flavour: tokio's \
                     timers and sockets run on real time on a thread of their own, which no seed \
                     can replay",
                ));
            }
            let tokio = crate::tokio_compat::TokioCompat::new(&config.thread_name)?;
            config.hooks.tokio = Some(std::sync::Arc::new(tokio));
        }
        let driver = self.make_driver()?;
        crate::safepoint::gate::install();
        let locals: Vec<Local<crate::scheduler::Task>> =
            (0..config.worker_threads).map(|_| Local::new()).collect();
        let stealers = locals.iter().map(|l| l.stealer()).collect();
        let flavor = match self.seed {
            Some(seed) => {
                Flavor::Deterministic(Deterministic::new(seed, self.strategy.unwrap_or_default()))
            }
            None => Flavor::MultiThread,
        };
        let shared = Arc::new(Shared::new(config, stealers, driver, flavor));
        let threads = match worker::spawn_workers(&shared, locals) {
            Ok(t) => t,
            Err(e) => {
                shared.shutdown.store(true, crate::sync::Ordering::Release);
                shared.unpark_all();
                return Err(e);
            }
        };
        Ok(Runtime::from_parts(shared, threads))
    }

    #[cfg(not(loom))]
    fn make_driver(&self) -> io::Result<Option<safepoint_io::driver::Driver>> {
        if !self.enable_io && !self.enable_time && self.seed.is_none() {
            return Ok(None);
        }
        let config = safepoint_io::driver::Config {
            enable_io: self.enable_io,
            enable_time: true,
            clock: match self.seed {
                Some(_) => safepoint_io::time::Clock::new_virtual(),
                None => safepoint_io::time::Clock::real(),
            },
        };
        safepoint_io::driver::Driver::new(config).map(Some)
    }

    /// Loom models run without a driver: blocking in `epoll_wait` inside a
    /// model would hang it, and the driver is not what they check.
    #[cfg(loom)]
    fn make_driver(&self) -> io::Result<Option<safepoint_io::driver::Driver>> {
        Ok(None)
    }
}
