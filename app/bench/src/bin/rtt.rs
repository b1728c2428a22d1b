//! Round-trip latency of one small frame on loopback, for every transport compiled in
//! (and the in-process memory transport as the floor), three ways in one run:
//!
//! - **raw**: the bare library echoing (see `pong_bench::raw`: a tokio-tungstenite echo,
//!   lapin publish/consume both ways through the broker, a zeromq DEALER/ROUTER echo, two
//!   tokio channels);
//! - **adapter echo**: the adapter's client sending, its server end echoing each frame from
//!   a task (the adapters alone);
//! - **adapter + core**: a signed `Ping` from a seated client through the adapter to a real
//!   `ServerCore` run by `pong_runtime::server::serve`, which verifies it and answers
//!   `Pong` through the adapter (the server's rate limit is raised for the run, since one
//!   frame at a time is thousands of frames a second; the limiter still runs).
//!
//! All frames have the length of the signed `Ping`. The three are measured in interleaved
//! rounds (a slice of each in turn, `--rounds` times) so that a change in the machine's load
//! hits all three alike, and reported with the ratio of each to the raw library at p50 and
//! p99. For RabbitMQ the one-way time (publish → consume) is measured too, raw and through
//! the adapter (client `send` → server `recv`).
//!
//! ```text
//! cargo run --release -p pong-bench --bin rtt -- [--frames 10000] [--rounds 10]
//!     [--only memory,ws,amqp,zmq] [--amqp-url URL]
//! ```
//!
//! The broker is `--amqp-url`, else `PONG_AMQP_URL`, else the local default; RabbitMQ is
//! reported as skipped if it cannot be reached. Output: a Markdown table on stdout.

#![allow(clippy::print_stdout)] // The report on stdout is this tool's purpose.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use pong_bench::at_least_one;
use pong_bench::raw::RawEcho;
use pong_bench::session::Session;
use pong_bench::stats::{Samples, Summary, us};
use pong_bench::transports::{self, Endpoints, Kind};
use pong_domain::codec;
use pong_domain::proto::{ServerMsg, SessionMsg};
use pong_domain::server::{ServerConfig, ServerCore};
use pong_ports::{ClientTransport, Incoming, ServerTransport};

const WARMUP: usize = 500;
/// No single round trip may take longer than this (a stuck transport ends the run).
const STEP_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Parser)]
#[command(
    name = "rtt",
    about = "Round-trip latency of one small frame on loopback, per transport: the bare library, \
             the adapter echoing, and the adapter carrying a signed Ping to a real server core",
    after_help = "Output: a Markdown table on stdout (µs), with each path's ratio to the bare \
                  library at p50 and p99. A transport that cannot be opened (e.g. no RabbitMQ \
                  broker) is reported as skipped.",
    args_override_self = true
)]
struct Args {
    /// Timed round trips per path, split evenly over the rounds; each path first makes 500
    /// untimed ones.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = at_least_one::<usize>())]
    frames: usize,
    /// Interleaved rounds: the paths of a transport take turns measuring a slice of the
    /// frames, this many times, so that a change in the machine's load hits them alike (at
    /// most --frames).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = at_least_one::<usize>())]
    rounds: usize,
    #[command(flatten)]
    transports: transports::KindsArgs,
}

/// The command line, checked: clap checks each option, this what they must satisfy together.
fn parse_args() -> Result<Args, clap::Error> {
    let args = Args::parse();
    if args.frames < args.rounds {
        return Err(Args::command().error(
            ErrorKind::ArgumentConflict,
            format!(
                "--frames {} is less than --rounds {}: every round needs at least one frame",
                args.frames, args.rounds
            ),
        ));
    }
    Ok(args)
}

/// One way of making a round trip.
#[async_trait::async_trait]
trait Path: Send {
    /// One round trip (or one-way trip); the time is taken by the caller.
    async fn once(&mut self) -> Result<()>;
}

struct Raw {
    echo: RawEcho,
    frame: Bytes,
}

#[async_trait::async_trait]
impl Path for Raw {
    async fn once(&mut self) -> Result<()> {
        let n = self.echo.round_trip(&self.frame).await?;
        if n != self.frame.len() {
            bail!("echoed {n} bytes, sent {}", self.frame.len());
        }
        Ok(())
    }
}

struct RawOneWay(Raw);

#[async_trait::async_trait]
impl Path for RawOneWay {
    async fn once(&mut self) -> Result<()> {
        self.0.echo.one_way(&self.0.frame).await
    }
}

/// The adapter's client, with the adapter's server end echoing in a task.
struct AdapterEcho {
    client: Box<dyn ClientTransport>,
    frame: Bytes,
    echo: tokio::task::JoinHandle<()>,
}

impl AdapterEcho {
    async fn open(ep: Endpoints, frame: Bytes) -> Result<AdapterEcho> {
        let mut server = ep.server;
        let echo = tokio::spawn(async move {
            loop {
                match server.recv().await {
                    Ok(Incoming::Frame { from, frame }) => {
                        if server.send(from, frame).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let client = ep.connector.connect().await.context("connect")?;
        Ok(AdapterEcho { client, frame, echo })
    }
}

impl Drop for AdapterEcho {
    fn drop(&mut self) {
        self.echo.abort();
    }
}

#[async_trait::async_trait]
impl Path for AdapterEcho {
    async fn once(&mut self) -> Result<()> {
        self.client.send(self.frame.clone())?;
        let echoed = self.client.recv().await?;
        if echoed.len() != self.frame.len() {
            bail!("echoed {} bytes, sent {}", echoed.len(), self.frame.len());
        }
        Ok(())
    }
}

/// The adapter's client and server ends, the server end read by the measuring task.
struct AdapterOneWay {
    client: Box<dyn ClientTransport>,
    server: Box<dyn ServerTransport>,
    frame: Bytes,
}

#[async_trait::async_trait]
impl Path for AdapterOneWay {
    async fn once(&mut self) -> Result<()> {
        self.client.send(self.frame.clone())?;
        loop {
            if let Incoming::Frame { .. } = self.server.recv().await? {
                return Ok(());
            }
        }
    }
}

/// A seated client pinging a real server core through the adapter.
struct AdapterCore {
    session: Session,
    next_id: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The server core of the run: the defaults, but no rate limit to speak of.
fn core() -> ServerCore {
    let config = ServerConfig {
        rate_per_second: 10_000_000,
        rate_burst: 10_000_000,
        ..ServerConfig::default()
    };
    ServerCore::new(config, [42; 32])
}

impl AdapterCore {
    async fn open(ep: Endpoints) -> Result<AdapterCore> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(pong_runtime::server::serve(
            core(),
            ep.server,
            async move {
                let _ = stopped.await;
            },
            |_| {},
        ));
        let session = Session::join(ep.connector.as_ref(), "rtt", Some(2)).await?;
        Ok(AdapterCore { session, next_id: 0, stop: Some(stop) })
    }

    fn ping(&mut self) -> Result<(u32, Bytes)> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        Ok((
            id,
            self.session
                .sign(&SessionMsg::Ping { id, client_time: 1_000_000_000 + u64::from(id) })?,
        ))
    }
}

impl Drop for AdapterCore {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

#[async_trait::async_trait]
impl Path for AdapterCore {
    async fn once(&mut self) -> Result<()> {
        let (id, frame) = self.ping()?;
        self.session.link.send(frame)?;
        loop {
            let f = self.session.link.recv().await?;
            // Lobby heartbeats (one a second) are skipped.
            if let Ok(ServerMsg::Pong { id: got, .. }) = codec::decode_server(&f)
                && got == id
            {
                return Ok(());
            }
        }
    }
}

async fn timed(path: &mut dyn Path, n: usize, into: &mut Samples) -> Result<()> {
    for _ in 0..n {
        let start = Instant::now();
        tokio::time::timeout(STEP_LIMIT, path.once()).await.context("no answer within 10 s")??;
        into.push(start.elapsed());
    }
    Ok(())
}

struct Row {
    path: &'static str,
    summary: Summary,
}

/// Measures every path of one transport in interleaved rounds.
async fn measure(kind: Kind, args: &Args) -> Result<Vec<Row>> {
    let url = args.transports.amqp.amqp_url.as_str();
    // The frame length of the signed Ping, so every path carries as many bytes.
    let mut core_path =
        AdapterCore::open(transports::open(kind, url).await?).await.context("adapter + core")?;
    let size = core_path.ping()?.1.len();
    let frame = Bytes::from(vec![0x5a_u8; size]);
    let raw = Raw { echo: RawEcho::open(kind, url).await.context("raw")?, frame: frame.clone() };
    let echo = AdapterEcho::open(transports::open(kind, url).await?, frame.clone())
        .await
        .context("adapter echo")?;
    let mut paths: Vec<(&'static str, Box<dyn Path>)> = vec![
        ("raw library", Box::new(raw)),
        ("adapter echo", Box::new(echo)),
        ("adapter + core", Box::new(core_path)),
    ];
    if kind == Kind::Amqp {
        let raw = Raw { echo: RawEcho::open(kind, url).await?, frame: frame.clone() };
        let ep = transports::open(kind, url).await?;
        let client = ep.connector.connect().await?;
        let adapter = AdapterOneWay { client, server: ep.server, frame: frame.clone() };
        paths.push(("one way: raw library", Box::new(RawOneWay(raw))));
        paths.push(("one way: adapter", Box::new(adapter)));
    }
    let mut samples: Vec<Samples> =
        paths.iter().map(|_| Samples::with_capacity(args.frames)).collect();
    let mut scratch = Samples::with_capacity(WARMUP);
    for (_, p) in &mut paths {
        timed(p.as_mut(), WARMUP, &mut scratch).await?;
    }
    let per_round = args.frames / args.rounds;
    for round in 0..args.rounds {
        let n = if round + 1 == args.rounds {
            args.frames - per_round * (args.rounds - 1)
        } else {
            per_round
        };
        for ((_, p), s) in paths.iter_mut().zip(samples.iter_mut()) {
            timed(p.as_mut(), n, s).await?;
        }
    }
    Ok(paths.iter().zip(samples).map(|((path, _), s)| Row { path, summary: s.summary() }).collect())
}

fn print_rows(kind: Kind, rows: &[Row]) {
    let base = |one_way: bool| {
        rows.iter()
            .find(|r| r.path == if one_way { "one way: raw library" } else { "raw library" })
            .map(|r| r.summary)
    };
    for r in rows {
        let one_way = r.path.starts_with("one way");
        let s = r.summary;
        let ratio = match base(one_way) {
            Some(b) if !r.path.ends_with("raw library") => format!(
                "{:.2}× | {:.2}×",
                s.p50.as_secs_f64() / b.p50.as_secs_f64(),
                s.p99.as_secs_f64() / b.p99.as_secs_f64()
            ),
            _ => "1 | 1".to_owned(),
        };
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {ratio} |",
            kind.name(),
            r.path,
            s.n,
            us(s.p50),
            us(s.p99),
            us(s.p999),
            us(s.max),
            us(s.mean),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    pong_bench::init_logs();
    let args = parse_args().unwrap_or_else(|e| e.exit());
    let load = pong_bench::procstat::load_average().unwrap_or(f64::NAN);
    println!(
        "round trip on loopback, one frame at a time ({WARMUP} untimed per path, then {} timed \
         in {} interleaved rounds), µs; load average at start {load:.2}\n",
        args.frames, args.rounds
    );
    println!(
        "| transport | path | frames | p50 | p99 | p99.9 | max | mean | × raw p50 | × raw p99 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for kind in Kind::ALL {
        if !args.transports.only.contains(&kind) {
            continue;
        }
        if !kind.compiled_in() {
            println!(
                "| {} | not compiled in (see the crate's features) | | | | | | | | |",
                kind.name()
            );
            continue;
        }
        match measure(kind, &args).await {
            Ok(rows) => print_rows(kind, &rows),
            Err(e) => println!("| {} | skipped: {e:#} | | | | | | | | |", kind.name()),
        }
    }
    let load = pong_bench::procstat::load_average().unwrap_or(f64::NAN);
    println!("\nload average at end {load:.2}");
    // Let the broker connections close.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
