//! `soak`: a real `pong server` under hours of churn (matches starting and ending, slow
//! links, cut-offs, players killed and resuming, players quitting), then the checks only a
//! long run can make: agreement, the journal, memory and tick cost at the end against the
//! start. Exits non-zero if any check fails. See `docs/testing.md`, Soak.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use pong_bench::soak::seat::Mix;
use pong_bench::soak::server::ServerPlan;
use pong_bench::soak::{SoakOptions, SoakReport, run};
use pong_bench::transports::{AmqpArgs, Kind};

/// Soak a real `pong server` with churn and check it ends as it began.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// How long matches keep starting, in minutes (fractions allowed); the last ones then
    /// play to their end.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// The transport: ws, amqp or zmq.
    #[arg(long, default_value = "ws", value_parser = Kind::parse)]
    transport: Kind,
    #[command(flatten)]
    amqp: AmqpArgs,
    /// The `pong` binary to run as the server (default: the one next to this tool).
    #[arg(long)]
    pong: Option<PathBuf>,
    /// Matches in play at once (each of 2–4 players, chosen at random).
    #[arg(long, default_value_t = 8, value_parser = pong_bench::at_least_one::<usize>())]
    matches: usize,
    /// Lives per player: fewer make shorter matches, so more of them start and end.
    #[arg(long, default_value_t = 3)]
    lives: u8,
    /// Ticks per second.
    #[arg(long, default_value_t = 60)]
    tick_hz: u16,
    /// Seconds a lost player has to come back (the server's --grace-secs).
    #[arg(long, default_value_t = 10)]
    grace_secs: u64,
    /// Percent of players on a slow, lossy link (40–120 ms, 2 % loss, duplicates, reordering).
    #[arg(long, default_value_t = 20)]
    slow_pct: u32,
    /// Percent of players whose link goes silent for 2–6 s during play.
    #[arg(long, default_value_t = 10)]
    cut_pct: u32,
    /// Percent of players killed during play and resuming with their token.
    #[arg(long, default_value_t = 15)]
    killed_pct: u32,
    /// Percent of players killed during play for good (they forfeit after the grace period).
    #[arg(long, default_value_t = 3)]
    quit_pct: u32,
    /// Seeds every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest growth, percent, of the server's memory and loop time per match-tick from
    /// the start (after a warm-up of a tenth of the run) to the end.
    #[arg(long, default_value_t = 5.0)]
    tolerance_pct: f64,
    /// Where the journal and the server's log go (default: a new directory in the system's
    /// temporary directory, kept).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    pong_bench::init_logs();
    match main_inner() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner() -> Result<bool> {
    let args = Args::parse();
    if !(args.minutes > 0.0 && args.minutes.is_finite()) {
        bail!("--minutes must be more than 0");
    }
    let pong = match args.pong {
        Some(p) => p,
        None => {
            std::env::current_exe()?.parent().context("this tool has no directory")?.join("pong")
        }
    };
    if !pong.exists() {
        bail!("no pong binary at {} (build it, or give --pong)", pong.display());
    }
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(pong_bench::transports::unique_name("pong-soak"))
    });
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    // About 60 samples a run, at least one every 10 s and at most one a second.
    let sample_every = (duration / 60).clamp(Duration::from_secs(1), Duration::from_secs(10));
    let opts = SoakOptions {
        server: ServerPlan {
            pong,
            kind: args.transport,
            amqp_url: args.amqp.amqp_url,
            lives: args.lives,
            tick_hz: args.tick_hz,
            grace_secs: args.grace_secs,
            dir,
        },
        duration,
        matches: args.matches,
        mix: Mix {
            slow: args.slow_pct,
            cut: args.cut_pct,
            killed: args.killed_pct,
            quits: args.quit_pct,
        },
        seed: args.seed,
        sample_every,
        tolerance_pct: args.tolerance_pct,
        // A match of 4 at 60 Hz with 15 lives, paused for every disturbance, ends well within.
        match_limit: Duration::from_secs(1800),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(run(&opts))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(report.passed())
}

fn print_report(r: &SoakReport) {
    let t = &r.tally;
    println!(
        "soak over {}: {:.1} min, {} matches at once; {} matches ({} players) started, {:.0} match-ticks",
        r.transport,
        r.seconds / 60.0,
        r.concurrency,
        r.matches_started,
        r.seats_started,
        r.match_ticks
    );
    println!(
        "  players: {} saw their match end, {} on slow links, {} cut off, {} killed and resumed, {} back too late, {} quit",
        t.seats_finished, t.slow, t.cut_off, t.killed_and_resumed, t.came_back_too_late, t.quit
    );
    println!(
        "  matches agreed: {}; journal verified: {}; server pauses {}, forfeits {}, overruns {}, links dropped {}",
        t.matches_agreed,
        t.journal_verified,
        r.server_pauses,
        r.server_forfeits,
        r.overruns,
        r.links_dropped
    );
    for (what, w) in [("start", &r.start), ("end", &r.end)] {
        if let Some(w) = w {
            println!(
                "  {what:5} ({:.0}–{:.0} s): RSS {:.1} MiB, loop {:.2} µs and CPU {:.2} µs per match-tick, {:.1} matches running, {:.0} links, load {:.2}",
                w.from,
                w.to,
                w.rss_mib,
                w.busy_us_per_match_tick,
                w.cpu_us_per_match_tick,
                w.running,
                w.links,
                w.load
            );
        }
    }
    println!("  over the run (each tenth):");
    println!(
        "    {:>11}  {:>8}  {:>8}  {:>8}  {:>7}  {:>5}  {:>6}  {:>8}",
        "s", "RSS MiB", "loop µs", "CPU µs", "matches", "links", "pauses", "overruns"
    );
    for w in &r.series {
        println!(
            "    {:>5.0}–{:<5.0}  {:>8.1}  {:>8.2}  {:>8.1}  {:>7.1}  {:>5.0}  {:>6.0}  {:>8.0}",
            w.from,
            w.to,
            w.rss_mib,
            w.busy_us_per_match_tick,
            w.cpu_us_per_match_tick,
            w.running,
            w.links,
            w.pauses,
            w.overruns
        );
    }
    if let (Some(m), Some(b)) = (r.memory_growth_pct, r.busy_growth_pct) {
        println!("  growth start → end: memory {m:+.1} %, loop time per match-tick {b:+.1} %");
    }
    if r.passed() {
        println!("PASSED (journal and server log in {})", r.dir);
    } else {
        println!("FAILED: {} problems (journal and server log in {})", r.problems.len(), r.dir);
        for p in &r.problems {
            println!("  - {p}");
        }
    }
}
