//! The load tool: many matches at once against one server, and what the server achieves.
//!
//! One process runs the server (`pong_runtime::server::serve` with a real `ServerCore`, on a
//! single-threaded tokio runtime on a thread of its own, over `--transport`, memory by
//! default) and the load generator (`--client-threads` tokio worker threads, 1 by default,
//! so server and load together use the machine's 2 cores). `--matches N` matches of
//! `--players` are filled by `N × players` clients (see `pong_bench::load`):
//! `--clients light` (default) answer every tick with an input and ping once a second but
//! do not simulate; `--clients full` are real predicting clients driven by the bot. After
//! every match is running, `--warmup` seconds pass, then `--seconds` are measured:
//!
//! - ticks per second: wanted (`running matches × 60`), published by the server, and
//!   received per client;
//! - the server's tick duration p50/p99/max: the time the server task is busy on a grid
//!   tick, every match stepped, encoded and handed to the transport (see `pong_bench::timed`);
//! - the snapshot delay p50/p99/max: from the moment a tick was due on the server's grid
//!   to the moment a client task has its `Tick` frame;
//! - CPU: the server thread's (per match and per match-tick), and the whole process's
//!   (server + load generator + transport threads);
//! - memory: resident memory grown from before the server started to steady state, per
//!   connection (both ends of every link are in this process);
//! - pauses, lost members and grid overruns during the window, and a verdict: `ok` when
//!   ≥ 99 % of the wanted ticks were published, p99 tick ≤ 5 ms and nothing paused,
//!   was lost or overran.
//!
//! ```text
//! cargo run --release -p pong-bench --bin loadtest -- [--matches 100] [--players 4]
//!     [--transport memory|ws|zmq|amqp] [--clients light|full] [--seconds 10]
//!     [--warmup 3] [--client-threads 1] [--amqp-url URL] [--telemetry]
//! cargo run --release -p pong-bench --bin loadtest -- --sweep 1,10,100,1000 [options]
//! ```
//!
//! `--sweep` runs one child process per match count (a fresh heap each time, so memory
//! figures do not carry over) and prints one table row per count as it finishes.

#![allow(clippy::print_stdout)] // The report on stdout is this tool's purpose.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Parser, ValueEnum};
use pong_bench::at_least_one;
use pong_bench::load::{ClientStats, LightOptions, Observer, run_full, run_light};
use pong_bench::procstat;
use pong_bench::stats::ms;
use pong_bench::timed::{ServerProbe, TimedServer};
use pong_bench::transports::{self, Kind};
use pong_domain::journal::Record;
use pong_domain::server::{ServerConfig, ServerCore, ServerEvent};
use pong_ports::Connector;
use pong_runtime::server::ServeOptions;
use pong_runtime::telemetry::{ServerInfo, Telemetry};

/// The kind of load client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Clients {
    /// Answer every tick with an input and ping once a second, without simulating.
    Light,
    /// Real predicting clients (prediction, clock sync, hash checks) driven by the bot.
    Full,
}

#[derive(Clone, Debug, Parser)]
#[command(
    name = "loadtest",
    about = "Load test: many matches at once against one in-process server, and what the server \
             achieves (ticks per second, tick duration, snapshot delay, CPU, memory per \
             connection)",
    after_help = "Output: a one-row Markdown table on stdout; with --sweep, one row per match \
                  count. The verdict is ok when at least 99 % of the wanted ticks were \
                  published, p99 tick <= 5 ms, and nothing paused, was lost or overran.",
    args_override_self = true
)]
struct Args {
    /// Matches run at once, each filled by --players clients.
    #[arg(long, value_name = "N", default_value_t = 100)]
    matches: usize,
    /// Players per match, 2 to 4.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u8).range(2..=4)
    )]
    players: u8,
    /// The transport between the server and its clients: memory, ws, amqp or zmq.
    #[arg(long, value_name = "KIND", default_value = "memory", value_parser = Kind::parse)]
    transport: Kind,
    /// The load clients.
    #[arg(long, value_enum, value_name = "KIND", default_value_t = Clients::Light)]
    clients: Clients,
    /// Seconds measured, after the warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = at_least_one::<u64>())]
    seconds: u64,
    /// Seconds of warm-up once every match is running, before measuring.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    warmup: u64,
    /// Tokio worker threads of the load generator (the server runs on a thread of its own).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one::<usize>())]
    client_threads: usize,
    #[command(flatten)]
    amqp: transports::AmqpArgs,
    /// Match counts, comma-separated (e.g. 1,10,100): runs one child process per count (a
    /// fresh heap each time) with the other options, in place of --matches, and prints a
    /// table row for each as it finishes.
    #[arg(
        long,
        value_name = "COUNTS",
        value_delimiter = ',',
        value_parser = match_count,
        action = ArgAction::Set
    )]
    sweep: Option<Vec<usize>>,
    /// Seconds allowed for seating every client (the run fails if they are not all seated
    /// by then) and for every match to start running.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    setup_timeout: u64,
    /// Run the server with its telemetry on, as `pong server` does (metrics published once
    /// a second, every timer wake timed), and render the metrics once a second on another
    /// thread as a scraper would: to measure what they cost the tick path.
    #[arg(long)]
    telemetry: bool,
    /// Print one machine-readable RESULT line (a sweep's child).
    #[arg(long, hide = true)]
    child: bool,
}

/// One count of `--sweep` (spaces around it allowed).
fn match_count(s: &str) -> Result<usize, std::num::ParseIntError> {
    s.trim().parse()
}

/// Declares [`Outcome`] and its `RESULT` line (a sweep's child prints it, the parent parses
/// it) from one list of fields, so that the line carries every field. Each is written as an
/// `f64`.
macro_rules! outcome {
    ($($field:ident: $ty:ty,)*) => {
        /// What one run measured.
        #[derive(Clone, Debug, Default)]
        struct Outcome {
            $($field: $ty,)*
        }

        impl Outcome {
            fn to_line(&self) -> String {
                let pairs = [$(format!(concat!(stringify!($field), "={}"), self.$field as f64)),*];
                format!("RESULT {}", pairs.join(" "))
            }

            fn from_line(line: &str) -> Result<Outcome> {
                let map: HashMap<&str, f64> = line
                    .trim_start_matches("RESULT ")
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                    .collect();
                let g = |k: &str| map.get(k).copied().with_context(|| format!("no {k} in {line}"));
                Ok(Outcome { $($field: g(stringify!($field))? as $ty,)* })
            }
        }
    };
}

outcome! {
    matches: usize,
    running: usize,
    clients: usize,
    secs: f64,
    wanted_tps: f64,
    server_tps: f64,
    client_tps: f64,
    tick_p50: f64,
    tick_p99: f64,
    tick_max: f64,
    delay_p50: f64,
    delay_p99: f64,
    delay_max: f64,
    server_cpu: f64,
    process_cpu: f64,
    busy: f64,
    frames_in_ps: f64,
    rss_per_conn_kb: f64,
    rss_mb: f64,
    pauses: u64,
    lost: u64,
    overruns: u64,
    load: f64,
    down_bps: f64,
    up_bps: f64,
}

impl Outcome {
    fn verdict(&self) -> &'static str {
        let enough = self.running == self.matches && self.server_tps >= 0.99 * self.wanted_tps;
        if enough
            && self.tick_p99 <= 5.0
            && self.pauses == 0
            && self.lost == 0
            && self.overruns == 0
        {
            "ok"
        } else {
            "**missed**"
        }
    }

    fn row(&self) -> String {
        let per_match_tick_us = if self.server_tps > 0.0 {
            self.server_cpu * 1e6 / 100.0 / self.server_tps
        } else {
            0.0
        };
        format!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} % | {:.0} % | {:.2} | {:.0} % | {:.1} | {:.0} / {:.0} | {} / {} / {} | {:.2} | {} |",
            self.matches,
            self.running,
            self.wanted_tps,
            self.server_tps,
            self.client_tps,
            self.tick_p50,
            self.tick_p99,
            self.tick_max,
            self.delay_p50,
            self.delay_p99,
            self.delay_max,
            self.busy,
            self.server_cpu,
            per_match_tick_us,
            self.process_cpu,
            self.rss_per_conn_kb,
            self.down_bps,
            self.up_bps,
            self.pauses,
            self.lost,
            self.overruns,
            self.load,
            self.verdict(),
        )
    }
}

const HEADER: &str = "| matches | running | wanted ticks/s | server ticks/s | ticks/s per client | tick p50 ms | tick p99 ms | tick max ms | snapshot delay p50 ms | p99 ms | max ms | server busy | server thread CPU | server CPU µs per match-tick | process CPU | RSS KB per connection | B/s per client down / up | pauses / lost / overruns | load avg | verdict |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

/// Server-side events, counted.
#[derive(Debug, Default)]
struct Events {
    overruns: AtomicU64,
    lost: AtomicU64,
    paused: AtomicU64,
}

impl Events {
    fn snapshot(&self) -> [u64; 3] {
        [&self.overruns, &self.lost, &self.paused].map(|c| c.load(Ordering::Relaxed))
    }
}

type CpuRequest = tokio::sync::oneshot::Sender<Duration>;

struct ServerHandle {
    connector: Arc<dyn Connector>,
    t0: Arc<OnceLock<Instant>>,
    probe: Arc<ServerProbe>,
    events: Arc<Events>,
    cpu: tokio::sync::mpsc::UnboundedSender<CpuRequest>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The server thread's CPU time so far.
    async fn cpu(&self) -> Result<Duration> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.cpu.send(tx).map_err(|_| anyhow::anyhow!("the server thread is gone"))?;
        Ok(rx.await?)
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the server on a thread of its own with a single-threaded runtime (which also
/// runs the server end's IO tasks, except lapin's own socket thread).
fn start_server(args: &Args) -> Result<ServerHandle> {
    let probe = Arc::new(ServerProbe::default());
    let events = Arc::new(Events::default());
    let t0 = Arc::new(OnceLock::new());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Arc<dyn Connector>>>();
    let (cpu, mut cpu_rx) = tokio::sync::mpsc::unbounded_channel::<CpuRequest>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        default_players: args.players,
        max_matches: args.matches.max(1) * 2 + 16,
        // Every client of this run comes from one address.
        max_links_per_address: u32::MAX,
        matches_per_minute_per_address: u32::MAX,
        ..ServerConfig::default()
    };
    let (kind, url, telemetry) = (args.transport, args.amqp.amqp_url.clone(), args.telemetry);
    let (p, e, t) = (Arc::clone(&probe), Arc::clone(&events), Arc::clone(&t0));
    let thread = std::thread::Builder::new().name("server".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(err) => {
                let _ = ready_tx.send(Err(err.into()));
                return;
            }
        };
        rt.block_on(async move {
            tokio::spawn(async move {
                while let Some(reply) = cpu_rx.recv().await {
                    let _ = reply.send(procstat::thread_cpu().unwrap_or_default());
                }
            });
            let ep = match transports::open(kind, &url).await {
                Ok(ep) => ep,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(ep.connector));
            let transport = Box::new(TimedServer::new(ep.server, p));
            let core = ServerCore::new(config, [9; 32]);
            let on_event = move |ev: &ServerEvent| match ev {
                ServerEvent::Overrun { skipped } => {
                    e.overruns.fetch_add(*skipped, Ordering::Relaxed);
                }
                ServerEvent::Match { record: Record::Lost { .. }, .. } => {
                    e.lost.fetch_add(1, Ordering::Relaxed);
                }
                ServerEvent::Match { record: Record::Paused { .. }, .. } => {
                    e.paused.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            };
            let shutdown = async move {
                let _ = stopped.await;
            };
            let options = ServeOptions {
                telemetry: telemetry.then(|| {
                    let telemetry = Telemetry::new(ServerInfo {
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        transport: kind.name().to_owned(),
                    });
                    scrape_every_second(telemetry.clone());
                    telemetry
                }),
                ..ServeOptions::default()
            };
            // The server's clock reads zero when `serve` first runs, right after this.
            let _ = t.set(Instant::now());
            if let Err(err) =
                pong_runtime::server::serve_with(core, transport, shutdown, on_event, options).await
            {
                tracing::error!(error = %err, "the server stopped");
            }
        });
    })?;
    let connector = ready_rx.recv().context("the server thread died")??;
    while t0.get().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(ServerHandle { connector, t0, probe, events, cpu, stop: Some(stop), thread: Some(thread) })
}

/// Renders the metrics once a second on a thread of its own, as a Prometheus scrape would,
/// for as long as the process runs.
fn scrape_every_second(telemetry: Telemetry) {
    let scraper = std::thread::Builder::new().name("scraper".into()).spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            std::hint::black_box(telemetry.render_metrics(false));
        }
    });
    if let Err(error) = scraper {
        tracing::warn!(%error, "cannot start the scraper thread");
    }
}

fn run_one(args: &Args) -> Result<Outcome> {
    let rss_before = procstat::rss_bytes()?;
    let mut server = start_server(args)?;
    let t0 = *server.t0.get().context("no server clock")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let result = rt.block_on(drive(args, &server, t0));
    server.stop();
    rt.shutdown_timeout(Duration::from_secs(2));
    let mut out = result?;
    out.rss_per_conn_kb =
        (out.rss_mb * 1024.0 * 1024.0 - rss_before as f64) / 1024.0 / out.clients.max(1) as f64;
    Ok(out)
}

async fn drive(args: &Args, server: &ServerHandle, t0: Instant) -> Result<Outcome> {
    let stats = Arc::new(ClientStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let clients = args.matches * usize::from(args.players);
    let opts = LightOptions { players: args.players, lead: 2 };
    // Connect in batches, each batch seated before the next, so no listen backlog overflows.
    const BATCH: usize = 250;
    let setup_deadline = Instant::now() + Duration::from_secs(args.setup_timeout);
    for i in 0..clients {
        let observer = Observer::new(t0, pong_domain::rules::DEFAULT_TICK_HZ, Arc::clone(&stats));
        let connector = Arc::clone(&server.connector);
        let stop = stop_rx.clone();
        let name = format!("l{i}");
        let st = Arc::clone(&stats);
        let kind = args.clients;
        let players = args.players;
        tokio::spawn(async move {
            let r = match kind {
                Clients::Light => run_light(connector, name, opts, observer, stop).await,
                Clients::Full => run_full(connector, name, players, i as u64, observer, stop).await,
            };
            if let Err(e) = r {
                st.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %format!("{e:#}"), "a load client stopped");
            }
        });
        if (i + 1) % BATCH == 0 || i + 1 == clients {
            while stats.welcomed.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed)
                < (i + 1) as u64
            {
                if Instant::now() > setup_deadline {
                    bail!(
                        "only {} of {} clients seated in time",
                        stats.welcomed.load(Ordering::Relaxed),
                        i + 1
                    );
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    // Every match running (countdowns take 3 s).
    while (stats.playing.load(Ordering::Relaxed) as usize) < clients
        && Instant::now() < setup_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let running = stats.playing.load(Ordering::Relaxed) as usize / usize::from(args.players);
    server.probe.reset();
    stats.reset();
    let events0 = server.events.snapshot();
    let server_cpu0 = server.cpu().await?;
    let process_cpu0 = procstat::process_cpu()?;
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let secs = start.elapsed().as_secs_f64();
    let server_cpu = (server.cpu().await? - server_cpu0).as_secs_f64() / secs * 100.0;
    let process_cpu = (procstat::process_cpu()? - process_cpu0).as_secs_f64() / secs * 100.0;
    let events = server.events.snapshot();
    let p = &server.probe;
    let out = Outcome {
        matches: args.matches,
        running,
        clients,
        secs,
        wanted_tps: running as f64 * f64::from(pong_domain::rules::DEFAULT_TICK_HZ),
        server_tps: p.ticks_published.load(Ordering::Relaxed) as f64 / secs,
        client_tps: stats.ticks.load(Ordering::Relaxed) as f64 / secs / clients.max(1) as f64,
        tick_p50: ms(p.tick_spans.quantile(0.5)),
        tick_p99: ms(p.tick_spans.quantile(0.99)),
        tick_max: ms(p.tick_spans.max()),
        delay_p50: ms(stats.delay.quantile(0.5)),
        delay_p99: ms(stats.delay.quantile(0.99)),
        delay_max: ms(stats.delay.max()),
        server_cpu,
        process_cpu,
        busy: p.busy_ns.load(Ordering::Relaxed) as f64 / 1e9 / secs * 100.0,
        frames_in_ps: p.frames_in.load(Ordering::Relaxed) as f64 / secs,
        rss_per_conn_kb: 0.0,
        rss_mb: procstat::rss_bytes()? as f64 / 1024.0 / 1024.0,
        pauses: events[2] - events0[2],
        lost: events[1] - events0[1],
        overruns: events[0] - events0[0],
        load: procstat::load_average().unwrap_or(f64::NAN),
        // Every publish reaches the match's members; direct sends one client.
        down_bps: (p.bytes_published.load(Ordering::Relaxed) as f64 * f64::from(args.players)
            + p.bytes_sent.load(Ordering::Relaxed) as f64)
            / secs
            / clients.max(1) as f64,
        up_bps: p.bytes_in.load(Ordering::Relaxed) as f64 / secs / clients.max(1) as f64,
    };
    let _ = stop_tx.send(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(out)
}

fn describe(args: &Args) -> String {
    format!(
        "{} matches of {} over {}, {} clients, {} load-generator thread(s), {} s warm-up, {} s measured{}",
        args.sweep.as_ref().map_or_else(|| args.matches.to_string(), |s| format!("{s:?}")),
        args.players,
        args.transport.name(),
        if args.clients == Clients::Light { "light" } else { "full" },
        args.client_threads,
        args.warmup,
        args.seconds,
        if args.telemetry { ", telemetry on (scraped every second)" } else { "" }
    )
}

fn sweep(args: &Args, counts: &[usize]) -> Result<()> {
    let exe = std::env::current_exe()?;
    println!(
        "{}; load average at start {:.2}\n",
        describe(args),
        procstat::load_average().unwrap_or(f64::NAN)
    );
    println!("{HEADER}");
    // Every argument but the sweep itself and the match count (as `--flag value` or
    // `--flag=value`), passed on to each child.
    let mut passed = Vec::new();
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        if a == "--sweep" || a == "--matches" {
            it.next();
        } else if !a
            .to_str()
            .is_some_and(|a| a.starts_with("--sweep=") || a.starts_with("--matches="))
        {
            passed.push(a);
        }
    }
    for &n in counts {
        let mut child = Command::new(&exe)
            .args(&passed)
            .args(["--matches", &n.to_string(), "--child"])
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("no child stdout")?;
        let mut outcome = None;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line.starts_with("RESULT ") {
                outcome = Some(Outcome::from_line(&line)?);
            }
        }
        let status = child.wait()?;
        match outcome {
            Some(o) => println!("{}", o.row()),
            None => println!("| {n} | failed ({status}) | | | | | | | | | | | | | | | | | | |"),
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    println!("\nload average at end {:.2}", procstat::load_average().unwrap_or(f64::NAN));
    Ok(())
}

fn main() -> Result<()> {
    pong_bench::init_logs();
    let args = Args::parse();
    if let Some(counts) = args.sweep.clone() {
        return sweep(&args, &counts);
    }
    let out = run_one(&args)?;
    if args.child {
        println!("{}", out.to_line());
    } else {
        println!("{}\n\n{HEADER}\n{}", describe(&args), out.row());
    }
    Ok(())
}
