//! Journals a server's events into an [`EventStore`] without ever stalling a tick.
//!
//! The server task calls [`Recorder::record`] for each event (from `serve`'s `on_event`):
//! it turns the event into a journal [`Record`] and puts it in a bounded queue with
//! `try_send`, which never waits. A writer task drains the queue in batches, one store
//! transaction each, at most one commit every [`RecorderOptions::flush_every`]: a batch
//! holds what arrived since the last commit (up to [`RecorderOptions::max_batch`]).
//!
//! What a crash loses is what was queued or in the batch being committed: the records of
//! the last `flush_every` plus one commit's time. [`RecorderStats::lag_max`] measures it:
//! the longest a record waited between `record` and its commit.
//!
//! If the queue is full (the store cannot keep up), the record is dropped and its match
//! loses its journal from there on: its later records are dropped too, and the writer
//! marks it abandoned once what was queued before the gap is written, so it is never
//! verified or rebuilt from a journal with a hole. A batch the store refuses after
//! retries does the same to the matches in it. The server plays on either way.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pong_domain::proto::MatchId;
use pong_domain::server::ServerEvent;
use pong_ports::{Entry, EventStore, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::telemetry::Telemetry;

/// How the recorder batches.
#[derive(Clone, Copy, Debug)]
pub struct RecorderOptions {
    /// Records the queue holds before it drops (the store fell that far behind).
    pub queue: usize,
    /// Most records in one batch.
    pub max_batch: usize,
    /// Least time between two commits: a batch collects what arrives meanwhile.
    pub flush_every: Duration,
    /// Attempts at a batch the store refuses before its matches are given up.
    pub attempts: u32,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            queue: 1 << 17,
            max_batch: 1 << 14,
            flush_every: Duration::from_millis(20),
            attempts: 3,
        }
    }
}

/// What the writer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Records committed.
    pub records: u64,
    /// Batches committed.
    pub batches: u64,
    /// Records dropped (queue full, or their match already lost part of its journal).
    pub dropped: u64,
    /// Matches abandoned for a hole in their journal.
    pub abandoned: u64,
    /// The largest batch.
    pub max_batch: usize,
    /// The longest a record waited from [`Recorder::record`] to the end of its commit:
    /// what a crash at the worst moment loses.
    pub lag_max: Duration,
    /// The 99th percentile of that wait over the last batches (one sample per batch, its
    /// oldest record).
    pub lag_p99: Duration,
    /// The median of it.
    pub lag_p50: Duration,
    /// The longest commit.
    pub commit_max: Duration,
}

/// Counters shared by the recorder and its writer.
#[derive(Debug, Default)]
struct Shared {
    dropped: AtomicU64,
    gaps: std::sync::Mutex<Vec<MatchId>>,
}

/// The server side of the recorder: cheap, never blocks. See the module docs.
#[derive(Debug)]
pub struct Recorder {
    tx: Option<mpsc::Sender<(Instant, Entry)>>,
    broken: BTreeSet<MatchId>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<RecorderStats>>,
}

impl Recorder {
    /// Starts a writer task for `store` on the current tokio runtime.
    pub fn spawn(store: Arc<dyn EventStore>, options: RecorderOptions) -> Recorder {
        Recorder::spawn_with(store, options, None)
    }

    /// [`Recorder::spawn`], reporting to `telemetry`: the queue's depth and each commit's
    /// time, and the store's health (failing from a refused batch until one is taken).
    pub fn spawn_with(
        store: Arc<dyn EventStore>,
        options: RecorderOptions,
        telemetry: Option<Telemetry>,
    ) -> Recorder {
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let shared = Arc::new(Shared::default());
        let writer = tokio::spawn(write(store, rx, options, shared.clone(), telemetry));
        Recorder { tx: Some(tx), broken: BTreeSet::new(), shared, writer: Some(writer) }
    }

    /// Journals `event` if it is about a match. Never waits.
    pub fn record(&mut self, event: &ServerEvent) {
        let Some((match_id, record)) = event.record() else { return };
        let record = record.clone();
        if self.broken.contains(&match_id) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(tx) = &self.tx else { return };
        match tx.try_send((Instant::now(), Entry { match_id, record })) {
            Ok(()) => {}
            Err(e) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.broken.insert(match_id);
                let full = matches!(e, mpsc::error::TrySendError::Full(_));
                if full {
                    error!(%match_id, "the event store is not keeping up: this match's journal stops here");
                    if let Ok(mut gaps) = self.shared.gaps.lock() {
                        gaps.push(match_id);
                    }
                } else {
                    error!(%match_id, "the event store writer has stopped: this match is not journaled");
                }
            }
        }
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Stops taking records, waits until everything queued is written, and returns the
    /// writer's statistics.
    pub async fn finish(mut self) -> RecorderStats {
        self.tx = None;
        let Some(writer) = self.writer.take() else { return RecorderStats::default() };
        match writer.await {
            Ok(stats) => stats,
            Err(e) => {
                error!(error = %e, "the event store writer failed");
                RecorderStats { dropped: self.dropped(), ..RecorderStats::default() }
            }
        }
    }
}

/// Samples of per-batch lag kept for the percentiles.
const LAG_SAMPLES: usize = 4096;

async fn write(
    store: Arc<dyn EventStore>,
    mut rx: mpsc::Receiver<(Instant, Entry)>,
    options: RecorderOptions,
    shared: Arc<Shared>,
    telemetry: Option<Telemetry>,
) -> RecorderStats {
    let mut stats = RecorderStats::default();
    let mut lags: VecDeque<Duration> = VecDeque::with_capacity(LAG_SAMPLES);
    let mut broken: BTreeSet<MatchId> = BTreeSet::new();
    let mut batch: Vec<Entry> = Vec::new();
    let mut last_commit = Instant::now();
    let mut open = true;
    while open {
        let Some((first_at, first)) = rx.recv().await else { break };
        let mut oldest = first_at;
        batch.push(first);
        let deadline = last_commit + options.flush_every;
        // Collect until the flush time, or a full batch.
        loop {
            while batch.len() < options.max_batch {
                match rx.try_recv() {
                    Ok((at, e)) => {
                        oldest = oldest.min(at);
                        batch.push(e);
                    }
                    Err(_) => break,
                }
            }
            if batch.len() >= options.max_batch || Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                e = rx.recv() => match e {
                    Some((at, e)) => {
                        oldest = oldest.min(at);
                        batch.push(e);
                    }
                    None => {
                        open = false;
                        break;
                    }
                },
            }
        }
        let before = batch.len();
        batch.retain(|e| !broken.contains(&e.match_id));
        stats.dropped += (before - batch.len()) as u64;
        let len = batch.len();
        let started = Instant::now();
        match commit(store.as_ref(), &batch, options.attempts).await {
            Ok(()) => {
                let done = Instant::now();
                stats.records += len as u64;
                stats.batches += 1;
                stats.max_batch = stats.max_batch.max(len);
                stats.commit_max = stats.commit_max.max(done - started);
                let lag = done - oldest;
                stats.lag_max = stats.lag_max.max(lag);
                if lags.len() == LAG_SAMPLES {
                    lags.pop_front();
                }
                lags.push_back(lag);
                if let Some(t) = &telemetry {
                    t.observe_journal_commit(done - started);
                    t.set_store_healthy(true);
                }
            }
            Err((e, matches)) => {
                if let Some(t) = &telemetry {
                    t.set_store_healthy(false);
                }
                error!(error = %e, records = len, "the event store refused a batch; its matches are no longer journaled");
                stats.dropped += len as u64;
                broken.extend(matches.iter().copied());
                for m in matches {
                    abandon(
                        store.as_ref(),
                        m,
                        &format!("the store refused a batch: {e}"),
                        &mut stats,
                    )
                    .await;
                }
            }
        }
        batch.clear();
        last_commit = Instant::now();
        if let Some(t) = &telemetry {
            t.set_journal_queue_depth(rx.len());
        }
        let gaps: Vec<MatchId> =
            shared.gaps.lock().map(|mut g| std::mem::take(&mut *g)).unwrap_or_default();
        for m in gaps {
            if broken.insert(m) {
                abandon(
                    store.as_ref(),
                    m,
                    "records were dropped: the store did not keep up",
                    &mut stats,
                )
                .await;
            }
        }
    }
    let mut sorted: Vec<Duration> = lags.into_iter().collect();
    sorted.sort_unstable();
    let pick = |q: usize| {
        sorted.get((sorted.len().saturating_sub(1)) * q / 100).copied().unwrap_or_default()
    };
    stats.lag_p50 = pick(50);
    stats.lag_p99 = pick(99);
    stats.dropped += shared.dropped.load(Ordering::Relaxed);
    info!(
        records = stats.records,
        batches = stats.batches,
        dropped = stats.dropped,
        lag_p50_ms = ms(stats.lag_p50),
        lag_p99_ms = ms(stats.lag_p99),
        lag_max_ms = ms(stats.lag_max),
        commit_max_ms = ms(stats.commit_max),
        "event store writer stopped"
    );
    stats
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Appends a batch, retrying a failing store with a short backoff. On failure returns the
/// error and the matches the batch held.
async fn commit(
    store: &dyn EventStore,
    batch: &[Entry],
    attempts: u32,
) -> Result<(), (StoreError, BTreeSet<MatchId>)> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut wait = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match store.append(batch.to_vec()).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < attempts && matches!(e, StoreError::Backend(_)) => {
                warn!(error = %e, attempt, "event store append failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 4;
                attempt += 1;
            }
            Err(e) => return Err((e, batch.iter().map(|e| e.match_id).collect())),
        }
    }
}

async fn abandon(store: &dyn EventStore, m: MatchId, why: &str, stats: &mut RecorderStats) {
    stats.abandoned += 1;
    match store.abandon(m, why).await {
        Ok(()) => warn!(match_id = %m, why, "match journal abandoned"),
        Err(StoreError::UnknownMatch(_)) => {
            debug!(match_id = %m, "nothing of the match was stored")
        }
        Err(e) => error!(match_id = %m, error = %e, "cannot mark the match abandoned"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use async_trait::async_trait;
    use pong_domain::journal::Record;
    use pong_domain::rules::MatchConfig;
    use pong_domain::sim::TickInput;
    use pong_ports::{MatchLog, MatchSummary};

    use super::*;

    /// Keeps batches in memory; can be slow, or refuse.
    #[derive(Default)]
    struct FakeStore {
        batches: Mutex<Vec<Vec<Entry>>>,
        abandoned: Mutex<Vec<MatchId>>,
        delay: Duration,
        refuse: bool,
    }

    #[async_trait]
    impl EventStore for FakeStore {
        async fn append(&self, batch: Vec<Entry>) -> Result<(), StoreError> {
            tokio::time::sleep(self.delay).await;
            if self.refuse {
                return Err(StoreError::Backend("disk full".into()));
            }
            self.batches.lock().unwrap().push(batch);
            Ok(())
        }
        async fn abandon(&self, m: MatchId, _: &str) -> Result<(), StoreError> {
            self.abandoned.lock().unwrap().push(m);
            Ok(())
        }
        async fn matches(&self) -> Result<Vec<MatchSummary>, StoreError> {
            Ok(Vec::new())
        }
        async fn load(&self, m: MatchId) -> Result<MatchLog, StoreError> {
            Err(StoreError::UnknownMatch(m))
        }
        async fn unfinished(&self) -> Result<Vec<MatchId>, StoreError> {
            Ok(Vec::new())
        }
        async fn last_match_id(&self) -> Result<Option<MatchId>, StoreError> {
            Ok(None)
        }
        async fn check(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn created(m: u32) -> ServerEvent {
        ServerEvent::Match {
            match_id: MatchId(m),
            record: Record::Created { config: MatchConfig::new(2, 3, 60, 1).unwrap(), room: None },
        }
    }

    fn tick(m: u32, tick: u32) -> ServerEvent {
        ServerEvent::Match {
            match_id: MatchId(m),
            record: Record::Tick { tick, input: TickInput::IDLE, hash: u64::from(tick) },
        }
    }

    fn ticks_of(store: &FakeStore, m: u32) -> Vec<u32> {
        let batches = store.batches.lock().unwrap();
        batches
            .iter()
            .flatten()
            .filter(|e| e.match_id == MatchId(m))
            .filter_map(|e| match e.record {
                Record::Tick { tick, .. } => Some(tick),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn records_are_written_in_order_in_few_batches() {
        let store = Arc::new(FakeStore::default());
        let mut r = Recorder::spawn(store.clone(), RecorderOptions::default());
        r.record(&created(1));
        r.record(&created(2));
        r.record(&ServerEvent::Overrun { skipped: 3 });
        // 60 ticks a second for two seconds, two matches.
        for t in 1..=120 {
            r.record(&tick(1, t));
            r.record(&tick(2, t));
            tokio::time::sleep(Duration::from_micros(16_667)).await;
        }
        let stats = r.finish().await;
        assert_eq!(stats.records, 242);
        assert_eq!(stats.dropped, 0);
        assert!(stats.batches < 150, "{} batches for 242 records", stats.batches);
        assert!(stats.lag_max <= Duration::from_millis(40), "{:?}", stats.lag_max);
        assert_eq!(ticks_of(&store, 1), (1..=120).collect::<Vec<_>>());
        assert_eq!(ticks_of(&store, 2), (1..=120).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_falls_behind_costs_a_match_its_journal_never_a_tick() {
        let store = Arc::new(FakeStore { delay: Duration::from_secs(1), ..FakeStore::default() });
        let options = RecorderOptions { queue: 8, ..RecorderOptions::default() };
        let mut r = Recorder::spawn(store.clone(), options);
        r.record(&created(1));
        tokio::task::yield_now().await;
        for t in 1..=100 {
            // `record` returns at once even though the store takes a second a batch.
            r.record(&tick(1, t));
        }
        assert!(r.dropped() > 0);
        let stats = r.finish().await;
        assert!(stats.dropped > 0 && stats.abandoned == 1, "{stats:?}");
        assert_eq!(*store.abandoned.lock().unwrap(), vec![MatchId(1)]);
        // What was written has no hole: it is a prefix.
        let written = ticks_of(&store, 1);
        assert_eq!(written, (1..=written.len() as u32).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_refuses_gives_up_the_matches_of_the_batch() {
        let store = Arc::new(FakeStore { refuse: true, ..FakeStore::default() });
        let mut r = Recorder::spawn(store.clone(), RecorderOptions::default());
        r.record(&created(1));
        r.record(&tick(1, 1));
        tokio::time::sleep(Duration::from_secs(5)).await;
        r.record(&tick(1, 2));
        let stats = r.finish().await;
        assert_eq!(stats.records, 0);
        assert_eq!(stats.dropped, 3);
        assert_eq!(*store.abandoned.lock().unwrap(), vec![MatchId(1)]);
    }
}
