//! Where the *whole* server allocates per tick in steady state, by layer: the real
//! `pong_runtime::server::serve` over the memory transport with `--matches` running
//! 4-player matches of light load clients, everything on one thread, counted for
//! `--seconds` (default 5) after every match runs. The allocation test
//! (`tests/alloc_per_tick.rs`) covers the core alone; this shows what the driver and the
//! transport add around it.
//!
//! Allocations are counted on this thread by the `allocation-counter` crate; the load
//! clients' polls are excluded (`opt_out`), so what is counted is the server task and the
//! runtime around it. A decorator on the server transport counts, with nested
//! measurements, what happens inside the transport's calls: `publish`/`send` (the memory
//! adapter), and the creation of each `recv` future (the `Box` that the port's
//! `#[async_trait]` signature costs, plus the adapter's). The decorator's own `recv` costs
//! one such `Box` per call too; it is counted separately and not charged to the server.
//! The rest is the core and the driver: the driver copies every frame into a fresh `Bytes`
//! (one allocation per frame sent), and the core's own share is what the allocation test
//! finds.
//!
//! ```text
//! cargo run --release -p pong-bench --bin alloc_profile -- [--matches 100] [--seconds 5]
//! ```

#![allow(clippy::print_stdout)] // The report on stdout is this tool's purpose.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use allocation_counter::{AllocationInfo, measure, opt_out};
use anyhow::{Result, bail};
use async_trait::async_trait;
use clap::Parser;
use pong_bench::load::{ClientStats, LightOptions, Observer, run_light};
use pong_bench::timed::tick_variant;
use pong_domain::server::{ServerConfig, ServerCore};
use pong_ports::{Frame, Incoming, MatchId, PeerId, ServerTransport, TransportError};
use pong_transport_memory::{MemoryHub, MemoryOptions};

/// Runs a future with allocation counting switched off for its polls.
struct Uncounted<F: Future>(Pin<Box<F>>);

impl<F: Future> Future for Uncounted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let mut out = Poll::Pending;
        opt_out(|| out = self.0.as_mut().poll(cx));
        out
    }
}

#[derive(Default)]
struct Counts {
    recv_calls: AtomicU64,
    recv_allocs: AtomicU64,
    recv_bytes: AtomicU64,
    out_calls: AtomicU64,
    out_allocs: AtomicU64,
    out_bytes: AtomicU64,
    frames_in: AtomicU64,
    ticks_out: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> [u64; 8] {
        [
            &self.recv_calls,
            &self.recv_allocs,
            &self.recv_bytes,
            &self.out_calls,
            &self.out_allocs,
            &self.out_bytes,
            &self.frames_in,
            &self.ticks_out,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

struct Counting {
    inner: Box<dyn ServerTransport>,
    counts: Arc<Counts>,
    tick_kind: u8,
}

impl Counting {
    fn out(&self, frame: &Frame, info: AllocationInfo) {
        bump(&self.counts.out_calls, 1);
        bump(&self.counts.out_allocs, info.count_total);
        bump(&self.counts.out_bytes, info.bytes_total);
        if frame.get(1) == Some(&self.tick_kind) {
            bump(&self.counts.ticks_out, 1);
        }
    }
}

#[async_trait]
impl ServerTransport for Counting {
    async fn recv(&mut self) -> Result<Incoming, TransportError> {
        let mut fut = None;
        let info = measure(|| fut = Some(self.inner.recv()));
        bump(&self.counts.recv_calls, 1);
        bump(&self.counts.recv_allocs, info.count_total);
        bump(&self.counts.recv_bytes, info.bytes_total);
        let r = match fut {
            Some(f) => f.await,
            None => Err(TransportError::Closed),
        };
        if let Ok(Incoming::Frame { .. }) = &r {
            bump(&self.counts.frames_in, 1);
        }
        r
    }

    fn send(&self, to: PeerId, frame: Frame) -> Result<(), TransportError> {
        let mut r = Ok(());
        let copy = frame.clone();
        let info = measure(|| r = self.inner.send(to, frame));
        self.out(&copy, info);
        r
    }

    fn publish(&self, group: MatchId, frame: Frame) -> Result<(), TransportError> {
        let mut r = Ok(());
        let copy = frame.clone();
        let info = measure(|| r = self.inner.publish(group, frame));
        self.out(&copy, info);
        r
    }

    pong_bench::forward_server_control!();
}

#[derive(Debug, Parser)]
#[command(
    name = "alloc_profile",
    about = "Where the whole server allocates per tick in steady state, by layer: the real \
             server loop over the memory transport, with running 4-player matches of light \
             load clients, all on one thread",
    after_help = "Output: a Markdown table on stdout: allocations in the window, per grid tick \
                  and per match-tick, for the transport's recv, the transport's publish/send, \
                  and the rest (core, driver and runtime).",
    args_override_self = true
)]
struct Args {
    /// Running 4-player matches, each filled by 4 light load clients.
    #[arg(long, value_name = "N", default_value_t = 100)]
    matches: usize,
    /// Seconds counted, once every match runs (and 2 s more have passed).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    seconds: u64,
}

fn main() -> Result<()> {
    let Args { matches, seconds } = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let hub = MemoryHub::new(MemoryOptions::default());
    let counts = Arc::new(Counts::default());
    let stats = Arc::new(ClientStats::default());
    let players = 4u8;
    let clients = matches * usize::from(players);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    rt.block_on(async {
        let server = Counting {
            inner: Box::new(hub.server()?),
            counts: Arc::clone(&counts),
            tick_kind: tick_variant(),
        };
        let config = ServerConfig { default_players: players, ..ServerConfig::default() };
        tokio::spawn(pong_runtime::server::serve(
            ServerCore::new(config, [1; 32]),
            Box::new(server),
            std::future::pending(),
            |_| {},
        ));
        let connector: Arc<dyn pong_ports::Connector> = Arc::new(hub.connector());
        let t0 = Instant::now();
        for i in 0..clients {
            let observer = Observer::new(t0, 60, Arc::clone(&stats));
            let run = run_light(
                Arc::clone(&connector),
                format!("a{i}"),
                LightOptions { players, lead: 2 },
                observer,
                stop_rx.clone(),
            );
            tokio::spawn(Uncounted(Box::pin(async move {
                let _ = run.await;
            })));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while (stats.playing.load(Ordering::Relaxed) as usize) < clients {
            if Instant::now() > deadline {
                bail!("the matches did not start");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        anyhow::Ok(())
    })?;
    // Steady state: count everything on this thread but the clients' polls.
    let before = counts.snapshot();
    let total =
        measure(|| rt.block_on(async { tokio::time::sleep(Duration::from_secs(seconds)).await }));
    let after = counts.snapshot();
    let d: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    let [
        recv_calls,
        recv_allocs,
        recv_bytes,
        out_calls,
        out_allocs,
        out_bytes,
        frames_in,
        match_ticks,
    ] = d[..]
    else {
        bail!("counter snapshot of the wrong size");
    };
    let _ = stop_tx.send(true);
    let grid_ticks = match_ticks / matches.max(1) as u64;
    // The decorator's own `recv` is one more `Box` per call: not the server's.
    let own = recv_calls;
    let rest = total.count_total.saturating_sub(recv_allocs + out_allocs + own);
    let per_tick = |n: u64| n as f64 / grid_ticks.max(1) as f64;
    println!(
        "steady state, {matches} running 4-player matches over memory, {seconds} s: about {grid_ticks} grid \
         ticks, {match_ticks} match ticks, {frames_in} frames in, {out_calls} frames out, {recv_calls} recv calls\n"
    );
    println!("| where | allocations | per grid tick | per match-tick | bytes per allocation |");
    println!("| --- | --- | --- | --- | --- |");
    let row = |name: &str, n: u64, b: Option<u64>| {
        println!(
            "| {name} | {n} | {:.1} | {:.2} | {} |",
            per_tick(n),
            n as f64 / match_ticks.max(1) as f64,
            b.and_then(|b| b.checked_div(n)).map_or_else(|| "".to_owned(), |x| x.to_string())
        );
    };
    row(
        "transport `recv()` calls: the `#[async_trait]` box and the adapter",
        recv_allocs,
        Some(recv_bytes),
    );
    row("transport `publish`/`send` (memory adapter)", out_allocs, Some(out_bytes));
    row("core + driver + runtime (the rest)", rest, None);
    row("the server thread in all", total.count_total - own, None);
    println!(
        "\n{:.2} recv calls per frame received; the driver copies every frame it sends into a \
         fresh `Bytes` ({out_calls} in the window: {:.1} per grid tick, part of the rest)",
        recv_calls as f64 / frames_in.max(1) as f64,
        per_tick(out_calls)
    );
    Ok(())
}
