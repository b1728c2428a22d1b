//! Input-to-remote latency per transport at the default tick rate (60 Hz): from the moment
//! a bot sets a new intent to the moment another member's `ClientCore` shows its effect.
//!
//! An in-process server (`pong_runtime::server::serve`, default configuration but 15 lives
//! and a 1 s countdown) hosts `--matches` 2-player matches at once; each member is a full
//! client (`pong_runtime::client::play`, with prediction, clock sync and hash checks) steered
//! by a *flipping bot*: every 12 predicted ticks (200 ms) it reverses its paddle (up ↔
//! down), deciding right after its predicted tick advanced, as the game's bot does. The
//! instant it returns the new intent (which the driver applies at once with `set_intent`)
//! is the start. The other member's controller looks at its core after every frame and
//! timeout the driver handles; the first time its **confirmed** state has the flipper's
//! paddle moving the new way (the paddle position between two consecutive confirmed
//! ticks), that is the end. `view()` interpolates other paddles between the last two
//! confirmed ticks, so a frontend starts drawing the move at that same instant and reaches
//! the confirmed position one tick later. When a match ends the pair plays another until
//! `--seconds` have passed for the transport.
//!
//! ```text
//! cargo run --release -p pong-bench --bin input_latency -- [--seconds 30] [--matches 4]
//!     [--only memory,ws,amqp,zmq] [--amqp-url URL] [--tick-hz 60] [--held-lobbies N]
//! ```
//!
//! `--held-lobbies N` first opens N lobbies, each on a link of its own that pings once a
//! second to keep its seat (the held-lobby attack of issue 19, without its bounds), and
//! keeps them for the whole run: the server's cost per event must not grow with them.
//!
//! A flip not yet seen when the next one is made is counted as missed. Output: a Markdown
//! table on stdout (ms, and in ticks), with each client's prediction lead and
//! measured round trip at the end of its last match, which explain the numbers.

#![allow(clippy::print_stdout)] // The report on stdout is this tool's purpose.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use pong_bench::at_least_one;
use pong_bench::stats::{Samples, ms};
use pong_bench::transports::{self, Kind};
use pong_domain::client::{ClientConfig, ClientCore, ClientPhase};
use pong_domain::proto::{Name, RoomName};
use pong_domain::server::{ServerConfig, ServerCore};
use pong_domain::sim::Intent;
use pong_runtime::client::{Controller, ReconnectPolicy};

/// Flips every this many predicted ticks.
const PERIOD: u32 = 12;

#[derive(Debug, Parser)]
#[command(
    name = "input_latency",
    about = "Input-to-remote latency per transport: from a bot flipping its paddle to another \
             member's confirmed state showing the move",
    after_help = "Output: a Markdown table on stdout (ms, and in ticks), with each client's \
                  prediction lead and round trip at the end of its last match. A transport \
                  that cannot be opened (e.g. no RabbitMQ broker) is reported as skipped.",
    args_override_self = true
)]
struct Args {
    /// How long each transport is measured, in seconds; every pair plays one match after
    /// another until then.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = at_least_one::<u64>())]
    seconds: u64,
    /// 2-player matches played at once (two full clients each, against one in-process
    /// server).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = at_least_one::<usize>())]
    matches: usize,
    #[command(flatten)]
    transports: transports::KindsArgs,
    /// The server's tick rate, in ticks per second (Hz); the bot flips every 12 ticks.
    #[arg(
        long,
        value_name = "HZ",
        default_value_t = pong_domain::rules::DEFAULT_TICK_HZ,
        value_parser = clap::value_parser!(u16).range(
            i64::from(pong_domain::rules::MIN_TICK_HZ)..=i64::from(pong_domain::rules::MAX_TICK_HZ)
        )
    )]
    tick_hz: u16,
    /// Lobbies held open during the measurement, each by a link that pings once a second.
    #[arg(long, value_name = "N", default_value_t = 0)]
    held_lobbies: usize,
}

/// Opens `n` lobbies (a room each) and keeps each seat alive with a signed ping a second
/// until `until`. Returns once every lobby is open.
async fn hold_lobbies(
    connector: &Arc<dyn pong_ports::Connector>,
    n: usize,
    until: Instant,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    use pong_domain::codec::{decode_server, encode_open, encode_signed};
    use pong_domain::proto::{Join, OpenMsg, ServerMsg, SessionMsg, Signed};

    let mut holders = Vec::with_capacity(n);
    for i in 0..n {
        let mut link = connector.connect().await?;
        let join = Join {
            name: Name::new("holder").context("name")?,
            players: Some(2),
            room: Some(RoomName::new(&format!("held-{i}")).context("room")?),
        };
        let mut buf = Vec::new();
        encode_open(&OpenMsg::Join(join), &mut buf)?;
        link.send(buf.into())?;
        let welcome = loop {
            let frame = link.recv().await?;
            if let Ok(ServerMsg::Welcome(w)) = decode_server(&frame) {
                break w;
            }
        };
        holders.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            let mut seq = 0;
            while Instant::now() < until {
                tokio::select! {
                    _ = every.tick() => {
                        seq += 1;
                        let mut buf = Vec::new();
                        let ping = SessionMsg::Ping { id: seq, client_time: 0 };
                        let signed = Signed { session: welcome.session, seq };
                        if encode_signed(signed, &ping, &welcome.token, &mut buf).is_err()
                            || link.send(buf.into()).is_err()
                        {
                            return;
                        }
                    }
                    frame = link.recv() => if frame.is_err() { return },
                }
            }
            link.close().await;
        }));
    }
    Ok(holders)
}

/// A flip made and not yet seen by the other member.
#[derive(Clone, Copy)]
struct Pending {
    sign: i32,
    at: Instant,
}

/// What the two members of one match share.
#[derive(Default)]
struct Pair {
    pending: [Option<Pending>; 4],
    samples: Samples,
    missed: u64,
    /// (prediction lead, round trip) of each member, last seen.
    lead_rtt: Vec<(Duration, Duration)>,
}

struct Flipper {
    pair: Arc<Mutex<Pair>>,
    dir: i32,
    last_predicted: Option<u32>,
    last_confirmed: Option<(u32, [i32; 4])>,
}

impl Flipper {
    fn new(pair: Arc<Mutex<Pair>>) -> Flipper {
        Flipper { pair, dir: -1, last_predicted: None, last_confirmed: None }
    }
}

impl Controller for Flipper {
    fn steer(&mut self, core: &ClientCore) -> Option<Intent> {
        let now = Instant::now();
        let me = core.player()?;
        let mut pair = self.pair.lock().unwrap_or_else(PoisonError::into_inner);
        // Observe: has another member's paddle started moving the way it last flipped to?
        if let Some(conf) = core.confirmed() {
            if let Some((tick, paddles)) = self.last_confirmed
                && conf.tick > tick
            {
                for (i, pending) in pair.pending.clone().iter().enumerate() {
                    let Some(p) = pending else { continue };
                    if i == me.index() {
                        continue;
                    }
                    if (conf.paddles[i] - paddles[i]).signum() == p.sign {
                        pair.samples.push(now - p.at);
                        pair.pending[i] = None;
                    }
                }
            }
            self.last_confirmed = Some((conf.tick, conf.paddles));
        }
        // Act: flip every PERIOD predicted ticks, the two members half a period apart.
        if !matches!(core.phase(), ClientPhase::Playing) {
            return None;
        }
        let tick = core.predicted()?.tick;
        if self.last_predicted == Some(tick) {
            return None;
        }
        self.last_predicted = Some(tick);
        let offset = u32::from(me.get()) * PERIOD / 2;
        if tick.wrapping_add(offset) % PERIOD != 0 {
            return None;
        }
        self.dir = -self.dir;
        if pair.pending[me.index()].is_some() {
            pair.missed += 1;
        }
        pair.pending[me.index()] = Some(Pending { sign: self.dir, at: now });
        Some(if self.dir > 0 { Intent::Plus } else { Intent::Minus })
    }
}

/// Plays matches in one room after another until `until`, both members in this task.
async fn pair_loop(
    connector: Arc<dyn pong_ports::Connector>,
    pair: Arc<Mutex<Pair>>,
    name: String,
    until: Instant,
) -> Result<()> {
    let mut round = 0;
    while Instant::now() < until {
        let room = RoomName::new(&format!("{name}-{round}")).context("room name")?;
        round += 1;
        let mut tasks = Vec::new();
        for seat in 0..2 {
            let connector = Arc::clone(&connector);
            let pair = Arc::clone(&pair);
            let room = room.clone();
            let name = format!("{name}{seat}");
            tasks.push(tokio::spawn(async move {
                let mut config = ClientConfig::new(Name::new(&name)?);
                config.players = Some(2);
                config.room = Some(room);
                let mut flipper = Flipper::new(Arc::clone(&pair));
                let stop = tokio::time::sleep_until(until.into());
                let (_, core) = pong_runtime::client::play(
                    ClientCore::new(config),
                    connector,
                    &mut flipper,
                    ReconnectPolicy::default(),
                    stop,
                )
                .await?;
                pair.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .lead_rtt
                    .push((Duration::from_micros(core.lead()), Duration::from_micros(core.rtt())));
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        // A flip made just before the match ended is never seen.
        let mut p = pair.lock().unwrap_or_else(PoisonError::into_inner);
        p.pending = [None; 4];
    }
    Ok(())
}

async fn measure(kind: Kind, args: &Args) -> Result<(Samples, u64, Vec<(Duration, Duration)>)> {
    let ep = transports::open(kind, &args.transports.amqp.amqp_url).await?;
    let config = ServerConfig {
        default_players: 2,
        lives: pong_domain::rules::MAX_LIVES,
        tick_hz: args.tick_hz,
        countdown: 1_000_000,
        max_matches: args.held_lobbies + 2 * args.matches + 16,
        // Every client of this run comes from one address.
        max_links_per_address: u32::MAX,
        matches_per_minute_per_address: u32::MAX,
        ..ServerConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pong_runtime::server::serve(
        ServerCore::new(config, [3; 32]),
        ep.server,
        async move {
            let _ = stopped.await;
        },
        |_| {},
    ));
    let held_until = Instant::now() + Duration::from_secs(args.seconds + 600);
    let holders = hold_lobbies(&ep.connector, args.held_lobbies, held_until).await?;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let pairs: Vec<Arc<Mutex<Pair>>> = (0..args.matches).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let name = format!("{}{i}", kind.name());
        tasks.push(tokio::spawn(pair_loop(
            Arc::clone(&ep.connector),
            Arc::clone(pair),
            name,
            until,
        )));
    }
    for t in tasks {
        t.await??;
    }
    for h in holders {
        h.abort();
    }
    let _ = stop.send(());
    let _ = server.await;
    let mut all = Samples::default();
    let mut missed = 0;
    let mut lead_rtt = Vec::new();
    for p in pairs {
        let p = p.lock().unwrap_or_else(PoisonError::into_inner);
        all.extend(&p.samples);
        missed += p.missed;
        lead_rtt.extend(p.lead_rtt.iter().copied());
    }
    Ok((all, missed, lead_rtt))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    pong_bench::init_logs();
    let args = Args::parse();
    let load = pong_bench::procstat::load_average().unwrap_or(f64::NAN);
    println!(
        "input to remote at {} Hz: a bot flips its paddle every {PERIOD} ticks; time until the \
         other member's confirmed state shows the move. {} matches of 2 at once, {} s per \
         transport, {} lobbies held open meanwhile; load average at start {load:.2}\n",
        args.tick_hz, args.matches, args.seconds, args.held_lobbies
    );
    println!(
        "| transport | flips seen | missed | p50 ms | p99 ms | max ms | p50 ticks | p99 ticks | lead ms | client rtt ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let tick = Duration::from_secs_f64(1.0 / f64::from(args.tick_hz.max(1)));
    for kind in Kind::ALL {
        if !args.transports.only.contains(&kind) {
            continue;
        }
        if !kind.compiled_in() {
            println!("| {} | not compiled in | | | | | | | | |", kind.name());
            continue;
        }
        match measure(kind, &args).await {
            Ok((samples, missed, lead_rtt)) => {
                let s = samples.summary();
                let leads: Vec<Duration> = lead_rtt.iter().map(|(l, _)| *l).collect();
                let (lo, hi) = (
                    ms(leads.iter().min().copied().unwrap_or_default()),
                    ms(leads.iter().max().copied().unwrap_or_default()),
                );
                let rtt = lead_rtt.iter().map(|(_, r)| *r).max().unwrap_or_default();
                println!(
                    "| {} | {} | {missed} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {lo:.1}–{hi:.1} | ≤ {:.2} |",
                    kind.name(),
                    s.n,
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    s.p50.as_secs_f64() / tick.as_secs_f64(),
                    s.p99.as_secs_f64() / tick.as_secs_f64(),
                    ms(rtt),
                );
            }
            Err(e) => println!("| {} | skipped: {e:#} | | | | | | | | |", kind.name()),
        }
    }
    let load = pong_bench::procstat::load_average().unwrap_or(f64::NAN);
    println!("\nload average at end {load:.2}");
    Ok(())
}
