//! What a running server tells its operators: Prometheus metrics, health and status, served
//! over HTTP by any adapter that speaks it ([`pong_ports::HttpHandler`]).
//!
//! ```text
//! serve_with(.., Some(telemetry)) ── once a second: counters, gauges, health ──► Telemetry
//!                                ◄── status requests (answered from the core) ──┘   │
//! Recorder (journal queue depth, commit time, store health) ────────────────────────┤
//! HTTP: GET /metrics, /healthz, /status, / ◄────────────────────────────────────────┘
//! ```
//!
//! The tick path pays nothing new: the core already counts what it does
//! ([`pong_domain::server::ServerStats`]); the driver copies the counts once a second and
//! times each timer wake (two clock reads). Status pages are built only when asked for.
//!
//! - `metrics`: the metric families and how the driver's figures land in them;
//! - `health`: what `/healthz` checks;
//! - `status`: the `/status` document and the human-readable page;
//! - `http`: the routes.

mod health;
mod http;
mod metrics;
mod status;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pong_domain::server::{MatchOverview, PhaseCounts, ServerStats};
use tokio::sync::{mpsc, oneshot};

pub use health::Health;
pub use status::{StatusReport, render_page};

use health::HealthState;
use metrics::Metrics;

/// How often the driver publishes its figures.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// What the server is, for `/status` and the `pong_build_info` metric.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// The program's version.
    pub version: String,
    /// The transport (`websocket`, `amqp`, `zmq`, `memory`).
    pub transport: String,
}

/// A status request: the driver answers with the core's view of its matches.
pub(crate) type StatusRequest = oneshot::Sender<Vec<MatchOverview>>;

/// The figures a driver publishes once a second.
#[derive(Clone, Debug, Default)]
pub(crate) struct Figures {
    pub(crate) stats: ServerStats,
    pub(crate) phases: PhaseCounts,
    pub(crate) links: u64,
    pub(crate) frames_sent: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) transport_connected: bool,
}

/// A server's telemetry: cheap to clone, shared by its driver, its journal writer and
/// whatever serves HTTP.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    info: ServerInfo,
    /// Where clients reach the server, once its transport is up.
    address: OnceLock<String>,
    started: Instant,
    metrics: Metrics,
    health: HealthState,
    status_tx: mpsc::Sender<StatusRequest>,
    status_rx: Mutex<Option<mpsc::Receiver<StatusRequest>>>,
    last: Mutex<Figures>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").field("info", &self.inner.info).finish_non_exhaustive()
    }
}

/// Status requests waiting for the driver at most; more are answered "busy".
const STATUS_QUEUE: usize = 16;

/// Longest a status request waits for the driver before it is answered without matches.
const STATUS_WAIT: Duration = Duration::from_secs(2);

impl Telemetry {
    /// Telemetry for one server.
    #[must_use]
    pub fn new(info: ServerInfo) -> Telemetry {
        let (status_tx, status_rx) = mpsc::channel(STATUS_QUEUE);
        let metrics = Metrics::new(&info);
        Telemetry {
            inner: Arc::new(Inner {
                info,
                address: OnceLock::new(),
                started: Instant::now(),
                metrics,
                health: HealthState::default(),
                status_tx,
                status_rx: Mutex::new(Some(status_rx)),
                last: Mutex::new(Figures::default()),
            }),
        }
    }

    /// What the server is.
    #[must_use]
    pub fn info(&self) -> &ServerInfo {
        &self.inner.info
    }

    /// Where clients reach the server (empty until it serves).
    #[must_use]
    pub fn address(&self) -> &str {
        self.inner.address.get().map_or("", String::as_str)
    }

    /// Time since the telemetry was made (the server started).
    #[must_use]
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// The metrics in the Prometheus text format (0.0.4), or OpenMetrics when `openmetrics`.
    #[must_use]
    pub fn render_metrics(&self, openmetrics: bool) -> String {
        self.inner.metrics.render(openmetrics)
    }

    /// Whether the server serves, and if not, why.
    #[must_use]
    pub fn health(&self) -> Health {
        self.inner.health.check(self.inner.started.elapsed())
    }

    /// The server has stopped taking new players and is winding down: health turns 503 so
    /// a load balancer sends nobody new.
    pub fn set_draining(&self) {
        self.inner.health.set_draining();
    }

    /// The event store took (`true`) or refused (`false`) the last batch.
    pub fn set_store_healthy(&self, healthy: bool) {
        self.inner.health.set_store(healthy);
    }

    /// Records waiting for the event store.
    pub fn set_journal_queue_depth(&self, depth: usize) {
        self.inner.metrics.journal_queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// One event store commit took `took`.
    pub fn observe_journal_commit(&self, took: Duration) {
        self.inner.metrics.journal_commit.observe(took.as_secs_f64());
    }

    /// The matches and their members, from the driver; `None` if the driver does not answer
    /// in time (it is stopped or stalled).
    pub async fn matches(&self) -> Option<Vec<MatchOverview>> {
        let (reply, answer) = oneshot::channel();
        self.inner.status_tx.try_send(reply).ok()?;
        tokio::time::timeout(STATUS_WAIT, answer).await.ok()?.ok()
    }

    /// The whole status document.
    pub async fn status(&self) -> StatusReport {
        let matches = self.matches().await;
        let figures = self.inner.last.lock().map(|f| f.clone()).unwrap_or_default();
        StatusReport::new(self, &figures, matches)
    }

    // ---- the driver's side ----

    /// The receiver of status requests, for the one driver that serves them.
    pub(crate) fn take_status_requests(&self) -> Option<mpsc::Receiver<StatusRequest>> {
        self.inner.status_rx.lock().ok()?.take()
    }

    /// The driver started (`true`) or stopped serving.
    pub(crate) fn set_serving(&self, serving: bool, address: String) {
        let _ = self.inner.address.set(address);
        self.inner.health.set_serving(serving, self.inner.started.elapsed());
    }

    /// One timer wake of the driver (a grid tick, housekeeping) was busy for `busy`.
    pub(crate) fn observe_tick(&self, busy: Duration) {
        self.inner.metrics.tick_duration.observe(busy.as_secs_f64());
    }

    /// The driver's figures of the last second.
    pub(crate) fn publish(&self, figures: Figures) {
        let inner = &self.inner;
        inner.health.beat(inner.started.elapsed(), figures.transport_connected);
        let Ok(mut last) = inner.last.lock() else { return };
        inner.metrics.publish(&last, &figures);
        *last = figures;
    }
}
