//! Measures the RabbitMQ transport on this machine, with publisher confirms off
//! (fire-and-forget) and on, and reports the numbers `docs/transports/rabbitmq.md` quotes:
//!
//! ```text
//! cargo run --release -p pong-transport-amqp --example amqp_bench [-- FRAMES]
//! ```
//!
//! The broker is `PONG_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`). For each
//! mode it measures, with frames of 64 bytes:
//! - latency, one frame at a time (send, wait for it at the other end, repeat): server →
//!   client direct, server → client through a match group, client → server; p50 and p99;
//! - throughput, FRAMES frames (default 20 000) with at most 1 000 in flight (far below the
//!   queue bounds, so nothing is shed): server → client and client → server.
//!
//! It also times raw lapin publishing, each publish awaited before the next versus pipelined
//! the way the transport's publisher does it, which is why the publisher pipelines.
#![allow(clippy::print_stdout, clippy::unwrap_used)] // A report on stdout is its purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use pong_ports::{ClientTransport, Incoming, MatchId, PeerId, ServerTransport};
use pong_transport_amqp::{AmqpClient, AmqpConnector, AmqpOptions, AmqpServer, DEFAULT_URL};

const FRAME_LEN: usize = 64;
const LATENCY_SAMPLES: usize = 2_000;
const WINDOW: u64 = 1_000;

fn frame(n: u64) -> Bytes {
    let mut bytes = vec![0_u8; FRAME_LEN];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    Bytes::from(bytes)
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    (at(50), at(99))
}

async fn next_frame(server: &mut AmqpServer) -> (PeerId, Bytes) {
    loop {
        if let Incoming::Frame { from, frame } = server.recv().await.unwrap() {
            return (from, frame);
        }
    }
}

/// Which way a frame goes in the latency measurement.
#[derive(Clone, Copy)]
enum Way {
    /// Server → client, sent to the peer.
    Direct(PeerId),
    /// Server → client, published to a group the client is in.
    Group(MatchId),
    /// Client → server.
    Up,
}

/// p50 and p99 of `LATENCY_SAMPLES` trips of one frame `way`, one at a time.
async fn latency(
    server: &mut AmqpServer,
    client: &mut AmqpClient,
    way: Way,
) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for n in 0..LATENCY_SAMPLES as u64 {
        let start = Instant::now();
        match way {
            Way::Direct(peer) => server.send(peer, frame(n)).unwrap(),
            Way::Group(group) => server.publish(group, frame(n)).unwrap(),
            Way::Up => client.send(frame(n)).unwrap(),
        }
        if let Way::Up = way {
            next_frame(server).await;
        } else {
            client.recv().await.unwrap();
        }
        samples.push(start.elapsed());
    }
    percentiles(samples)
}

/// Frames per second of sending `frames` frames with `send`, never more than `WINDOW` ahead
/// of what `reader` has counted in `received`, until `reader` has them all; with what the
/// reader hands back.
async fn throughput<T>(
    frames: u64,
    received: &AtomicU64,
    reader: tokio::task::JoinHandle<T>,
    mut send: impl FnMut(Bytes),
) -> (f64, T) {
    let start = Instant::now();
    for n in 0..frames {
        while n - received.load(Ordering::Acquire) >= WINDOW {
            tokio::task::yield_now().await;
        }
        send(frame(n));
    }
    let reader = reader.await.unwrap();
    (frames as f64 / start.elapsed().as_secs_f64(), reader)
}

struct Report {
    mode: &'static str,
    down_direct: (Duration, Duration),
    down_group: (Duration, Duration),
    up: (Duration, Duration),
    down_rate: f64,
    up_rate: f64,
}

async fn measure(url: &str, confirms: bool, frames: u64) -> Report {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let options = AmqpOptions {
        confirms,
        ..AmqpOptions::named(format!("bench-{}-{}", std::process::id(), nanos.subsec_nanos()))
    };
    let mut server = AmqpServer::connect(url, options.clone()).await.unwrap();
    let connector = AmqpConnector::new(url, options).unwrap();
    let mut client: AmqpClient = connector.connect_client().await.unwrap();
    client.send(frame(0)).unwrap();
    let (peer, _) = next_frame(&mut server).await;
    let group = MatchId(1);
    server.join_group(peer, group).unwrap();
    client.subscribe(group).await.unwrap();

    // Warm up both directions.
    for n in 0..200 {
        server.send(peer, frame(n)).unwrap();
        client.recv().await.unwrap();
        client.send(frame(n)).unwrap();
        next_frame(&mut server).await;
    }

    let down_direct = latency(&mut server, &mut client, Way::Direct(peer)).await;
    let down_group = latency(&mut server, &mut client, Way::Group(group)).await;
    let up = latency(&mut server, &mut client, Way::Up).await;

    // Server → client: a reader task counts, the sender keeps at most WINDOW in flight.
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let reader = tokio::spawn(async move {
        for _ in 0..frames {
            client.recv().await.unwrap();
            counter.fetch_add(1, Ordering::Release);
        }
        client
    });
    let send = |frame| server.send(peer, frame).unwrap();
    let (down_rate, client) = throughput(frames, &received, reader, send).await;

    // Client → server, the same way.
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let reader = tokio::spawn(async move {
        for _ in 0..frames {
            next_frame(&mut server).await;
            counter.fetch_add(1, Ordering::Release);
        }
        server
    });
    let (up_rate, server) =
        throughput(frames, &received, reader, |frame| client.send(frame).unwrap()).await;

    let mut client = client;
    client.close().await;
    server.shutdown().await;
    Report {
        mode: if confirms { "confirms" } else { "fire-and-forget" },
        down_direct,
        down_group,
        up,
        down_rate,
        up_rate,
    }
}

/// Raw lapin: publishing FRAMES messages to a queue, awaiting each publish before the next
/// versus starting each at once and awaiting them later in order (window of 256).
async fn raw_publish(url: &str, frames: u64) -> (f64, f64) {
    let connection = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let declare = QueueDeclareOptions { exclusive: true, ..QueueDeclareOptions::default() };
    let queue = channel.queue_declare("".into(), declare, FieldTable::default()).await.unwrap();
    let body = vec![0_u8; FRAME_LEN];
    let publish = || {
        let channel = channel.clone();
        let (queue, body) = (queue.name().clone(), body.clone());
        async move {
            let options = BasicPublishOptions::default();
            channel
                .basic_publish("".into(), queue, options, &body, BasicProperties::default())
                .await
        }
    };
    let start = Instant::now();
    for _ in 0..frames {
        publish().await.unwrap();
    }
    let sequential = frames as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut in_flight = std::collections::VecDeque::new();
    for _ in 0..frames {
        let mut publishing = Box::pin(publish());
        if (&mut publishing).now_or_never().is_none() {
            in_flight.push_back(publishing);
        }
        while in_flight.len() > 256 {
            in_flight.pop_front().unwrap().await.unwrap();
        }
    }
    for publishing in in_flight {
        publishing.await.unwrap();
    }
    let pipelined = frames as f64 / start.elapsed().as_secs_f64();
    let _ = connection.close(200, "bench done".into()).await;
    (sequential, pipelined)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("PONG_AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let frames: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "frames of {FRAME_LEN} B; latency over {LATENCY_SAMPLES} frames one at a time; \
         throughput over {frames} frames, at most {WINDOW} in flight"
    );
    println!(
        "{:<16} {:>19} {:>19} {:>19} {:>12} {:>12}",
        "mode", "srv→cli direct", "srv→cli group", "cli→srv", "srv→cli", "cli→srv"
    );
    println!(
        "{:<16} {:>19} {:>19} {:>19} {:>12} {:>12}",
        "", "p50/p99 ms", "p50/p99 ms", "p50/p99 ms", "frames/s", "frames/s"
    );
    for confirms in [false, true] {
        let r = measure(&url, confirms, frames).await;
        let pair = |(p50, p99): (Duration, Duration)| format!("{:.3}/{:.3}", ms(p50), ms(p99));
        println!(
            "{:<16} {:>19} {:>19} {:>19} {:>12.0} {:>12.0}",
            r.mode,
            pair(r.down_direct),
            pair(r.down_group),
            pair(r.up),
            r.down_rate,
            r.up_rate
        );
    }
    let (sequential, pipelined) = raw_publish(&url, frames).await;
    println!(
        "raw lapin publish, {frames} frames: each awaited {sequential:.0}/s, pipelined {pipelined:.0}/s"
    );
}
