//! An axum server on safepoint: a `Router` with state and JSON, and a
//! route that stops the world to swap the configuration atomically while
//! requests keep coming (a consistent reload), reporting the pause.
//!
//! ```text
//! cargo run --release --example axum -- --port 3000 --workers 2
//! curl http://127.0.0.1:3000/config
//! curl -X POST -H 'content-type: application/json' \
//!      -d '{"greeting":"Bonjour"}' http://127.0.0.1:3000/reload
//! ```
//!
//! The configuration is kept in three parts synchronised separately (the
//! greeting and a page rendered from it behind two mutexes, their version in
//! an atomic), the way real configuration ends up spread over several
//! structures with derived data. Each part alone is safe to read, but a
//! reader between the writes of a reload would see a new greeting with an
//! old page or version. `POST /reload` therefore writes all three, rendering
//! included, while the world is stopped: no handler runs then, and handlers
//! read the parts with no `.await` in between, so every response sees one
//! version. `GET /config` reports `consistent: true` when the page's header
//! matches the greeting and version it was read with; the reload answers
//! with the stop's report (time to stop, how long the world was held, how
//! many tasks were parked).
//! Handlers read the client's address through `Extension<ConnectionInfo>`.
//! SIGTERM or Ctrl-C shuts down gracefully; the process then exits 0.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use parking_lot::Mutex;
use safepoint_examples::server_args::{self, ServerArgs};
use safepoint_hyper::{ConnectionInfo, TowerToHyperService};
use serde::{Deserialize, Serialize};

/// The shared state: the three-part configuration and a request counter.
struct App {
    greeting: Mutex<String>,
    /// [`render`] of the greeting and version.
    page: Mutex<Arc<str>>,
    version: AtomicU64,
    served: AtomicU64,
}

impl App {
    fn new(greeting: &str) -> App {
        App {
            greeting: Mutex::new(greeting.to_owned()),
            page: Mutex::new(render(greeting, 1).into()),
            version: AtomicU64::new(1),
            served: AtomicU64::new(0),
        }
    }

    /// Reads the parts. No `.await` between the reads: a stop cannot happen
    /// in between, so they belong together.
    fn read(&self) -> (String, Arc<str>, u64) {
        let greeting = self.greeting.lock().clone();
        let page = self.page.lock().clone();
        let version = self.version.load(Ordering::Relaxed);
        (greeting, page, version)
    }

    /// Installs a new configuration part by part, rendering the page from
    /// the greeting just stored. Only called while the world is stopped: a
    /// reader in the middle (new greeting, old page) is what must never be.
    fn install(&self, greeting: String) -> u64 {
        let version = self.version.load(Ordering::Relaxed) + 1;
        *self.greeting.lock() = greeting.clone();
        let page = render(&greeting, version);
        *self.page.lock() = page.into();
        self.version.store(version, Ordering::Relaxed);
        version
    }
}

fn header(greeting: &str, version: u64) -> String {
    format!("<h1>{greeting}</h1><!-- v{version} -->\n")
}

/// The page served for a configuration: some 100 KiB, derived data that
/// takes real work to rebuild.
fn render(greeting: &str, version: u64) -> String {
    let mut page = header(greeting, version);
    for i in 0..4000 {
        page.push_str(&format!("<p>{greeting}, reader #{i}</p>\n"));
    }
    page
}

#[derive(Serialize)]
struct ConfigView {
    greeting: String,
    page_bytes: usize,
    version: u64,
    consistent: bool,
    client: String,
    served: u64,
}

async fn config(
    State(app): State<Arc<App>>,
    Extension(conn): Extension<ConnectionInfo>,
) -> Json<ConfigView> {
    let served = app.served.fetch_add(1, Ordering::Relaxed) + 1;
    let (greeting, page, version) = app.read();
    let consistent = page.starts_with(&header(&greeting, version));
    Json(ConfigView {
        page_bytes: page.len(),
        greeting,
        version,
        consistent,
        client: conn.peer_addr.to_string(),
        served,
    })
}

#[derive(Deserialize)]
struct Reload {
    greeting: String,
}

#[derive(Serialize)]
struct ReloadReport {
    version: u64,
    /// From the request to every other task parked or blocked.
    time_to_stop_us: u128,
    /// How long the world stayed stopped (the swap itself).
    held_us: u128,
    tasks: usize,
    blocked: usize,
    at_safepoint: usize,
}

async fn reload(
    State(app): State<Arc<App>>,
    Json(new): Json<Reload>,
) -> Result<Json<ReloadReport>, (StatusCode, String)> {
    if new.greeting.is_empty() {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, "greeting is empty".into()));
    }
    let handle = safepoint::Handle::current();
    // A deadline, so a task that never yields cannot hold the reload
    // forever: the error names it.
    let world = handle
        .stop_the_world_timeout(Duration::from_secs(2))
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let held = Instant::now();
    let version = app.install(new.greeting);
    let held_us = held.elapsed().as_micros();
    let r = world.report();
    let report = ReloadReport {
        version,
        time_to_stop_us: r.time_to_stop.as_micros(),
        held_us,
        tasks: r.tasks,
        blocked: r.blocked,
        at_safepoint: r.at_safepoint,
    };
    world.resume();
    println!(
        "axum: reload to v{version}: time to stop {} us, held {} us, {} task(s) parked",
        report.time_to_stop_us, report.held_us, report.tasks
    );
    Ok(Json(report))
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route("/config", get(config))
        .route("/reload", post(reload))
        .with_state(app)
}

fn main() -> ExitCode {
    server_args::main_with("axum", run)
}

fn run(args: ServerArgs) -> std::io::Result<()> {
    let app = Arc::new(App::new("Hello"));
    let rt = safepoint::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .thread_name("axum-worker")
        .build()?;
    rt.block_on(async move {
        let shutdown = server_args::shutdown_signal("axum");
        let listener = safepoint::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        println!("axum: listening on {}", listener.local_addr()?);
        // axum's Router is a tower service; hyper wants its own trait.
        let service = TowerToHyperService::new(router(app));
        let report = safepoint_hyper::serve(listener, service)
            .with_graceful_shutdown(shutdown, Duration::from_secs(5))
            .await?;
        println!("axum: {report}");
        Ok(())
    })
}
