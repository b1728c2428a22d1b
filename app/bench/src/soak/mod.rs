//! A soak: a real `pong server` process over a real transport for a long time, with
//! matches of 2–4 bots starting and ending all along, some players on slow and lossy links,
//! some cut off for seconds, some killed and coming back with their tokens, a few never
//! coming back. At the end it checks what only a long run shows: every finished match's
//! players agree with each other and the server, the journal re-runs every match to the
//! same result, and the server's memory and cost per match-tick at the end are those of the
//! start (no leak, no slowdown).
//!
//! - [`server`]: the process under test, watched through `/metrics` and `/proc`.
//! - [`seat`]: one player and what happens to it.
//! - [`check`]: the end-of-run checks.

pub mod check;
pub mod seat;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pong_domain::proto::{Name, RoomName};
use pong_ports::Connector;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

use check::{MatchOutcome, Tally, Window};
use seat::{Mix, Planner, SeatEnd, SeatOutcome};
use server::{Sample, ServerPlan, ServerProcess};

/// What to soak.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// The server and its rules.
    pub server: ServerPlan,
    /// How long matches keep starting.
    pub duration: Duration,
    /// Matches in play at once.
    pub matches: usize,
    /// Shares of disturbed seats.
    pub mix: Mix,
    /// Seeds every random choice (seat plans, sizes, skills, links).
    pub seed: u64,
    /// How often the server is sampled.
    pub sample_every: Duration,
    /// Largest growth, in percent, of memory and loop time per match-tick from the start
    /// window to the end window.
    pub tolerance_pct: f64,
    /// A match that has not ended this long after it started is a failure.
    pub match_limit: Duration,
}

/// What a soak found.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    /// The transport.
    pub transport: &'static str,
    /// Seconds matches kept starting.
    pub seconds: f64,
    /// Matches in play at once.
    pub concurrency: usize,
    /// Matches started.
    pub matches_started: usize,
    /// Seats (players) started.
    pub seats_started: usize,
    /// Match ticks the server simulated.
    pub match_ticks: f64,
    /// Matches, seats and disturbances.
    pub tally: Tally,
    /// The server over the window after the warm-up.
    pub start: Option<Window>,
    /// The server over the last window before matches stopped starting.
    pub end: Option<Window>,
    /// The server over each tenth of the run.
    pub series: Vec<Window>,
    /// Growth of resident memory from start to end, percent.
    pub memory_growth_pct: Option<f64>,
    /// Growth of the loop's busy time per match-tick, percent.
    pub busy_growth_pct: Option<f64>,
    /// Grid ticks the server skipped for falling behind.
    pub overruns: f64,
    /// Pauses the server counted.
    pub server_pauses: f64,
    /// Forfeits the server counted.
    pub server_forfeits: f64,
    /// Links the server dropped for misbehaving (none expected from these clients).
    pub links_dropped: f64,
    /// Every problem: the soak passes when there is none.
    pub problems: Vec<String>,
    /// The journal and the server's log.
    pub dir: String,
}

impl SoakReport {
    /// Whether every check passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs a soak to its end.
///
/// # Errors
/// The server cannot be started or the transport opened; what goes wrong in play is
/// reported in [`SoakReport::problems`].
pub async fn run(opts: &SoakOptions) -> Result<SoakReport> {
    std::fs::create_dir_all(&opts.server.dir)?;
    let server = ServerProcess::start(&opts.server).await?;
    let kind = opts.server.kind;
    info!(address = %server.address, pid = server.pid(), dir = %opts.server.dir.display(), "server up");
    let connector = crate::transports::dial(kind, &server.address, &opts.server.amqp_url)
        .context("cannot dial the server")?;
    let grace = Duration::from_secs(opts.server.grace_secs);
    let mut planner = Planner::new(opts.seed, opts.mix, grace);
    let mut sizes = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5eed);

    let t0 = Instant::now();
    let stop_starting = t0 + opts.duration;
    let mut samples = vec![server.sample(0.0).await?];
    let mut sampler = tokio::time::interval_at(t0 + opts.sample_every, opts.sample_every);
    sampler.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut games = JoinSet::new();
    let (mut started, mut seats) = (0usize, 0usize);
    let mut outcomes = Vec::new();
    let mut problems = Vec::new();
    let mut last_progress = t0;

    while Instant::now() < stop_starting {
        while games.len() < opts.matches {
            let players = 2 + u8::try_from(sizes.next_u32() % 3).unwrap_or(0);
            let plans: Vec<_> = (0..players).map(|_| planner.seat()).collect();
            seats += plans.len();
            games.spawn(one_match(
                started,
                players,
                plans,
                Arc::clone(&connector),
                opts.match_limit,
            ));
            started += 1;
        }
        tokio::select! {
            Some(done) = games.join_next() => match done {
                Ok(m) => outcomes.push(m),
                Err(e) => problems.push(format!("a match task failed: {e}")),
            },
            _ = sampler.tick() => {
                let at = t0.elapsed().as_secs_f64();
                match server.sample(at).await {
                    Ok(s) => samples.push(s),
                    Err(e) => {
                        problems.push(format!("the server stopped answering at {at:.0} s: {e:#}"));
                        break;
                    }
                }
                if last_progress.elapsed() >= Duration::from_secs(60) {
                    last_progress = Instant::now();
                    info!(elapsed_s = at as u64, started, finished = outcomes.len(), "soak going on");
                }
            },
            () = tokio::time::sleep_until(stop_starting) => {}
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    if let Ok(s) = server.sample(seconds).await {
        samples.push(s);
    }
    info!(running = games.len(), "no more matches start; waiting for the last ones");
    while let Some(done) = games.join_next().await {
        match done {
            Ok(m) => outcomes.push(m),
            Err(e) => problems.push(format!("a match task failed: {e}")),
        }
    }
    // Every player has left: the server must let go of every match and link it held
    // (finished matches are kept a moment for late frames, then dropped).
    let mut last = Sample::default();
    let settle = Instant::now() + Duration::from_secs(30);
    loop {
        match server.sample(t0.elapsed().as_secs_f64()).await {
            Ok(s) => last = s,
            Err(e) => {
                problems.push(format!("the server stopped answering at the end: {e:#}"));
                break;
            }
        }
        if last.hosted == 0.0 && last.links == 0.0 {
            break;
        }
        if Instant::now() > settle {
            problems.push(format!(
                "30 s after every player left, the server still holds {} matches and {} links",
                last.hosted, last.links
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let (mut tally, mut found, agreed) = check::agreement(&outcomes);
    problems.append(&mut found);
    let d = seconds;
    let start = check::window(&samples, 0.1 * d, 0.2 * d);
    let end = check::window(&samples, 0.9 * d, d);
    match (&start, &end) {
        (Some(a), Some(b)) => problems.extend(check::stability(a, b, opts.tolerance_pct)),
        _ => problems.push("too few samples to compare the start and the end".into()),
    }
    if last.dropped > 0.0 {
        problems.push(format!("the server dropped {} links for misbehaving", last.dropped));
    }

    let pong = server.pong().to_owned();
    let db = server.db.clone();
    if let Err(e) = server.stop().await {
        problems.push(format!("the server did not stop cleanly: {e:#}"));
    }
    match ServerProcess::verify_journal(&pong, &db) {
        Ok(lines) => {
            let (verified, mut found) = check::journal(&lines, &agreed);
            tally.journal_verified = verified;
            problems.append(&mut found);
        }
        Err(e) => problems.push(format!("cannot verify the journal: {e:#}")),
    }
    let first = samples.first().copied().unwrap_or_default();
    Ok(SoakReport {
        transport: kind.name(),
        seconds,
        concurrency: opts.matches,
        matches_started: started,
        seats_started: seats,
        match_ticks: last.ticks - first.ticks,
        tally,
        memory_growth_pct: start.zip(end).map(|(a, b)| check::growth(a.rss_mib, b.rss_mib)),
        busy_growth_pct: start
            .zip(end)
            .map(|(a, b)| check::growth(a.busy_us_per_match_tick, b.busy_us_per_match_tick)),
        start,
        end,
        series: check::series(&samples, d, 10),
        overruns: last.overruns,
        server_pauses: last.pauses,
        server_forfeits: last.forfeits,
        links_dropped: last.dropped,
        problems,
        dir: opts.server.dir.display().to_string(),
    })
}

/// One match: its seats join one room (a few milliseconds apart, as people do) and play
/// to its end, each as planned.
async fn one_match(
    n: usize,
    players: u8,
    plans: Vec<seat::SeatPlan>,
    connector: Arc<dyn Connector>,
    limit: Duration,
) -> MatchOutcome {
    let room = format!("soak-{n}");
    let mut seats = JoinSet::new();
    for (i, plan) in plans.iter().copied().enumerate() {
        let (Ok(name), Ok(room)) = (Name::new(&format!("m{n}p{}", i + 1)), RoomName::new(&room))
        else {
            continue;
        };
        let connector = Arc::clone(&connector);
        let stagger = Duration::from_millis(40 * i as u64);
        seats.spawn(async move {
            tokio::time::sleep(stagger).await;
            seat::run_seat(plan, connector, name, room, players).await
        });
    }
    let mut outcomes: Vec<SeatOutcome> = Vec::new();
    let all = async {
        while let Some(done) = seats.join_next().await {
            if let Ok(o) = done {
                outcomes.push(o);
            }
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        warn!(%room, "the match did not end in time");
        seats.abort_all();
        let finished = outcomes.len();
        for plan in plans.iter().skip(finished) {
            outcomes.push(SeatOutcome {
                plan: *plan,
                end: SeatEnd::Failed(format!("still playing after {} s", limit.as_secs())),
                match_id: None,
                resumes: 0,
            });
        }
    }
    MatchOutcome { room, players, seats: outcomes }
}
