//! The metric families (prometheus-client, one registry per server) and how the driver's
//! figures land in them. Every name starts with `pong_`; docs/operations.md lists them
//! with what to alert on.

use pong_domain::server::{MatchPhase, ServerStats};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::{Figures, ServerInfo};

/// One label, as prometheus-client encodes it.
type Label = [(&'static str, &'static str); 1];
type OwnedLabel = [(&'static str, String); 1];

/// Reads one counter of [`ServerStats`].
type Stat = fn(&ServerStats) -> u64;

/// Why a frame was refused: the `cause` label of `pong_frames_refused_total`, with the
/// counter of [`ServerStats`] it comes from.
const CAUSES: [(&str, Stat); 8] = [
    ("malformed", |s| s.malformed),
    ("forged", |s| s.forged),
    ("replayed", |s| s.replayed),
    ("unknown_session", |s| s.unknown_session),
    ("out_of_window", |s| s.out_of_window),
    ("rate_limited", |s| s.rate_limited),
    ("wrong_link", |s| s.wrong_link),
    ("bad_proof", |s| s.bad_proof),
];

/// Bounds a client reached: the `bound` label of `pong_bounds_reached_total`, with the
/// counter of [`ServerStats`] it comes from (docs/protocol.md, Bounds).
const BOUNDS: [(&str, Stat); 4] = [
    ("links_per_address", |s| s.links_refused),
    ("matches_per_address", |s| s.matches_refused),
    ("join_timeout", |s| s.links_idle),
    ("resend_budget", |s| s.resends_limited),
];

/// Why a `Join` got no seat, beyond the bounds: the `reason` label of
/// `pong_joins_refused_total`.
const JOINS_REFUSED: [(&str, Stat); 4] = [
    ("room_full", |s| s.joins_room_full),
    ("server_full", |s| s.joins_server_full),
    ("draining", |s| s.joins_draining),
    ("bad_request", |s| s.joins_bad_request),
];

pub(super) struct Metrics {
    registry: Registry,
    /// The series of the families, fetched once so publishing allocates nothing.
    phases: [Gauge; 5],
    links: Gauge,
    refused: [Counter; 8],
    bounds: [Counter; 4],
    joins_refused: [Counter; 4],
    ticks: Counter,
    pub(super) tick_duration: Histogram,
    frames_received: Counter,
    frames_sent: Counter,
    bytes_sent: Counter,
    peers_dropped: Counter,
    matches_created: Counter,
    matches_finished: Counter,
    pauses: Counter,
    forfeits: Counter,
    resyncs: Counter,
    lobbies_expired: Counter,
    overruns: Counter,
    pub(super) journal_queue_depth: Gauge,
    pub(super) journal_commit: Histogram,
}

impl Metrics {
    pub(super) fn new(info: &ServerInfo) -> Metrics {
        let mut registry = Registry::default();
        let matches = Family::<Label, Gauge>::default();
        let links = Family::<OwnedLabel, Gauge>::default();
        let refused = Family::<Label, Counter>::default();
        let bounds = Family::<Label, Counter>::default();
        let joins_refused = Family::<Label, Counter>::default();
        // Every series exists from the start, at 0, so alerts and graphs never miss one.
        let m = Metrics {
            registry: Registry::default(),
            phases: MatchPhase::ALL
                .map(|p| matches.get_or_create(&[("phase", p.as_str())]).clone()),
            links: links.get_or_create(&[("transport", info.transport.clone())]).clone(),
            refused: CAUSES.map(|(cause, _)| refused.get_or_create(&[("cause", cause)]).clone()),
            bounds: BOUNDS.map(|(bound, _)| bounds.get_or_create(&[("bound", bound)]).clone()),
            joins_refused: JOINS_REFUSED
                .map(|(reason, _)| joins_refused.get_or_create(&[("reason", reason)]).clone()),
            ticks: Counter::default(),
            // 25 µs to about 0.4 s: a healthy tick is well under a millisecond.
            tick_duration: Histogram::new(exponential_buckets(25e-6, 2.0, 15)),
            frames_received: Counter::default(),
            frames_sent: Counter::default(),
            bytes_sent: Counter::default(),
            peers_dropped: Counter::default(),
            matches_created: Counter::default(),
            matches_finished: Counter::default(),
            pauses: Counter::default(),
            forfeits: Counter::default(),
            resyncs: Counter::default(),
            lobbies_expired: Counter::default(),
            overruns: Counter::default(),
            journal_queue_depth: Gauge::default(),
            // 0.1 ms to about 1.6 s.
            journal_commit: Histogram::new(exponential_buckets(1e-4, 2.0, 15)),
        };
        registry.register(
            "pong_build",
            "The server's version and transport",
            Info::new(vec![
                ("version", info.version.clone()),
                ("transport", info.transport.clone()),
            ]),
        );
        registry.register("pong_matches", "Matches hosted, by phase", matches);
        registry.register("pong_links", "Client links connected, by transport", links);
        registry.register("pong_ticks", "Match ticks simulated, over all matches", m.ticks.clone());
        registry.register(
            "pong_tick_duration_seconds",
            "Busy time of the server loop per timer wake (grid tick and housekeeping)",
            m.tick_duration.clone(),
        );
        registry.register(
            "pong_frames_received",
            "Frames received from clients",
            m.frames_received.clone(),
        );
        registry.register(
            "pong_frames_sent",
            "Frames handed to the transport (a group frame counts once)",
            m.frames_sent.clone(),
        );
        registry.register(
            "pong_bytes_sent",
            "Bytes of the frames handed to the transport (a group frame counts once)",
            m.bytes_sent.clone(),
        );
        registry.register("pong_frames_refused", "Frames refused, by cause", refused);
        registry.register(
            "pong_bounds_reached",
            "Times a client reached one of the server's bounds, by bound",
            bounds,
        );
        registry.register(
            "pong_joins_refused",
            "Joins that got no seat for another reason than a bound, by reason",
            joins_refused,
        );
        registry.register(
            "pong_links_dropped",
            "Links the server dropped for misbehaving",
            m.peers_dropped.clone(),
        );
        registry.register("pong_matches_created", "Matches created", m.matches_created.clone());
        registry.register("pong_matches_finished", "Matches finished", m.matches_finished.clone());
        registry.register(
            "pong_pauses",
            "Running matches paused for a lost member",
            m.pauses.clone(),
        );
        registry.register(
            "pong_forfeits",
            "Members who forfeited a started match",
            m.forfeits.clone(),
        );
        registry.register("pong_resyncs", "Resync requests answered", m.resyncs.clone());
        registry.register(
            "pong_lobbies_expired",
            "Lobbies closed because they did not fill in time",
            m.lobbies_expired.clone(),
        );
        registry.register(
            "pong_overruns",
            "Grid ticks skipped because the server fell behind",
            m.overruns.clone(),
        );
        registry.register(
            "pong_journal_queue_depth",
            "Records waiting for the event store",
            m.journal_queue_depth.clone(),
        );
        registry.register(
            "pong_journal_commit_seconds",
            "Time of one event store commit",
            m.journal_commit.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Moves the counters on by what happened since `last` and sets the gauges.
    pub(super) fn publish(&self, last: &Figures, now: &Figures) {
        let (was, is) = (&last.stats, &now.stats);
        let add = |counter: &Counter, of: Stat| {
            counter.inc_by(of(is).saturating_sub(of(was)));
        };
        add(&self.ticks, |s| s.ticks);
        add(&self.frames_received, |s| s.frames);
        add(&self.peers_dropped, |s| s.peers_dropped);
        add(&self.matches_created, |s| s.matches_created);
        add(&self.matches_finished, |s| s.matches_finished);
        add(&self.pauses, |s| s.pauses);
        add(&self.forfeits, |s| s.forfeits);
        add(&self.resyncs, |s| s.resyncs);
        add(&self.lobbies_expired, |s| s.lobbies_expired);
        add(&self.overruns, |s| s.overruns);
        for ((_, of), counter) in CAUSES.iter().zip(&self.refused) {
            add(counter, *of);
        }
        for ((_, of), counter) in BOUNDS.iter().zip(&self.bounds) {
            add(counter, *of);
        }
        for ((_, of), counter) in JOINS_REFUSED.iter().zip(&self.joins_refused) {
            add(counter, *of);
        }
        self.frames_sent.inc_by(now.frames_sent.saturating_sub(last.frames_sent));
        self.bytes_sent.inc_by(now.bytes_sent.saturating_sub(last.bytes_sent));
        for ((_, count), gauge) in now.phases.iter().zip(&self.phases) {
            gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.links.set(i64::try_from(now.links).unwrap_or(i64::MAX));
    }

    /// The registry in the Prometheus text format (0.0.4), or OpenMetrics.
    pub(super) fn render(&self, openmetrics: bool) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let encoded = if openmetrics {
            text::encode(&mut out, &self.registry)
        } else {
            prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String cannot fail; an encoder error would be a bug in a label.
        if let Err(error) = encoded {
            tracing::error!(%error, "cannot encode the metrics");
        }
        out
    }
}

/// The `Content-Type` of what [`Metrics::render`] writes.
pub(super) fn content_type(openmetrics: bool) -> &'static str {
    if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        prometheus_text::CONTENT_TYPE
    }
}
