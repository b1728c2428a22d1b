//! Round-trip latency of one small frame through each transport adapter on this machine:
//! a client sends a frame, the server's transport receives it and sends it straight back,
//! the client receives it; repeated one frame at a time. It measures the adapters (and, for
//! RabbitMQ, the broker), not the game: no codec, no server core, no bot.
//!
//! ```text
//! cargo run --release -p pong --example transport_rtt \
//!     --no-default-features --features websocket,rabbitmq,zeromq -- [--frames N] [--size BYTES]
//! ```
//!
//! Every transport compiled in is measured, and the in-process memory transport as a
//! baseline. Options: `--frames N` timed round trips per transport (default 10 000, after
//! 500 untimed ones), `--size BYTES` frame length (default 32, about a game input frame),
//! `--only NAMES` a comma-separated subset of `memory,ws,amqp,zmq`. RabbitMQ uses the broker
//! named by `--amqp-url` or `PONG_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! and is reported as skipped if it cannot be reached. Results go to stdout, one table row
//! per transport, in milliseconds.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use pong_ports::{Connector, Frame, Incoming, ServerTransport};

const WARMUP: usize = 500;
/// No single round trip may take longer than this (a stuck transport ends the run).
const STEP_LIMIT: Duration = Duration::from_secs(10);

struct Args {
    frames: usize,
    size: usize,
    only: Option<Vec<String>>,
    amqp_url: String,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        frames: 10_000,
        size: 32,
        only: None,
        amqp_url: std::env::var("PONG_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--frames" => args.frames = value()?.parse().context("--frames")?,
            "--size" => args.size = value()?.parse().context("--size")?,
            "--only" => args.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--amqp-url" => args.amqp_url = value()?,
            other => bail!("unknown option {other} (see the example's doc comment)"),
        }
    }
    if args.frames == 0 || args.size == 0 || args.size > 1024 {
        bail!("--frames must be positive and --size between 1 and 1024");
    }
    Ok(args)
}

/// Round trip times, one frame at a time: `warmup` untimed, then `frames` timed.
async fn measure(
    mut server: Box<dyn ServerTransport>,
    connector: Arc<dyn Connector>,
    frames: usize,
    size: usize,
) -> Result<Vec<Duration>> {
    // The server end echoes every frame to its sender, in a task of its own (as the game
    // server runs its transport).
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
        server
    });
    let mut client = connector.connect().await.context("connect")?;
    let frame = Frame::from(vec![0x5a_u8; size]);
    let mut times = Vec::with_capacity(frames);
    for i in 0..WARMUP + frames {
        let start = Instant::now();
        client.send(frame.clone()).context("send")?;
        let echoed = tokio::time::timeout(STEP_LIMIT, client.recv())
            .await
            .context("no echo within 10 s")?
            .context("recv")?;
        let took = start.elapsed();
        if echoed.len() != size {
            bail!("echoed {} bytes, sent {size}", echoed.len());
        }
        if i >= WARMUP {
            times.push(took);
        }
    }
    client.close().await;
    echo.abort();
    Ok(times)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(out: &mut impl Write, name: &str, mut times: Vec<Duration>) -> Result<()> {
    times.sort_unstable();
    let n = times.len();
    let at = |p: f64| times[((n as f64 * p) as usize).min(n - 1)];
    let mean = times.iter().sum::<Duration>() / u32::try_from(n)?;
    writeln!(
        out,
        "| {name} | {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(0.999)),
        ms(times[n - 1]),
        ms(mean)
    )?;
    Ok(())
}

type Endpoints = (Box<dyn ServerTransport>, Arc<dyn Connector>);

async fn memory() -> Result<Endpoints> {
    use pong_transport_memory::{MemoryHub, MemoryOptions};
    let hub = MemoryHub::new(MemoryOptions::default());
    let server = hub.server()?;
    Ok((Box::new(server), Arc::new(hub.connector())))
}

#[cfg(feature = "websocket")]
async fn ws() -> Result<Option<Endpoints>> {
    use pong_transport_ws::{WsConnector, WsOptions, WsServer};
    let server = WsServer::bind("127.0.0.1:0", WsOptions::default())?;
    let connector = WsConnector::new(&server.local_addr(), WsOptions::default())?;
    Ok(Some((Box::new(server), Arc::new(connector))))
}

#[cfg(not(feature = "websocket"))]
async fn ws() -> Result<Option<Endpoints>> {
    Ok(None)
}

#[cfg(feature = "rabbitmq")]
async fn amqp(url: &str) -> Result<Option<Endpoints>> {
    use pong_transport_amqp::{AmqpConnector, AmqpOptions, AmqpServer};
    let options = AmqpOptions::named(format!("rtt-{}", std::process::id()));
    let server = AmqpServer::connect(url, options.clone()).await?;
    let connector = AmqpConnector::new(url, options)?;
    Ok(Some((Box::new(server), Arc::new(connector))))
}

#[cfg(not(feature = "rabbitmq"))]
async fn amqp(_: &str) -> Result<Option<Endpoints>> {
    Ok(None)
}

#[cfg(feature = "zeromq")]
async fn zmq() -> Result<Option<Endpoints>> {
    use pong_transport_zmq::{ZmqConnector, ZmqOptions, ZmqServer};
    let server = ZmqServer::bind("tcp://127.0.0.1:0", ZmqOptions::default()).await?;
    let connector = ZmqConnector::new(&server.local_addr(), ZmqOptions::default())?;
    Ok(Some((Box::new(server), Arc::new(connector))))
}

#[cfg(not(feature = "zeromq"))]
async fn zmq() -> Result<Option<Endpoints>> {
    Ok(None)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let wanted = |name: &str| args.only.as_ref().is_none_or(|only| only.iter().any(|o| o == name));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "round trip of one {}-byte frame, client -> server -> client, one at a time \
         ({WARMUP} untimed, then timed), in ms:\n",
        args.size
    )?;
    writeln!(out, "| transport | frames | p50 | p99 | p99.9 | max | mean |")?;
    writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |")?;
    out.flush()?;
    for name in ["memory", "ws", "amqp", "zmq"] {
        if !wanted(name) {
            continue;
        }
        let endpoints = match name {
            "memory" => memory().await.map(Some),
            "ws" => ws().await,
            "amqp" => amqp(&args.amqp_url).await,
            _ => zmq().await,
        };
        match endpoints {
            Ok(Some((server, connector))) => {
                let times = measure(server, connector, args.frames, args.size)
                    .await
                    .with_context(|| format!("measuring {name}"))?;
                row(&mut out, name, times)?;
            }
            Ok(None) => writeln!(out, "| {name} | not compiled in (see --features) | | | | | |")?,
            Err(e) => writeln!(out, "| {name} | skipped: {e:#} | | | | | |")?,
        }
        out.flush()?;
    }
    Ok(())
}
