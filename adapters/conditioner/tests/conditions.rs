//! The conditioner's own behaviour, over the memory transport, on paused (virtual) time:
//! delays, reproducibility, loss, duplication, reordering, cut-offs and link ends.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pong_link_conditioner::{ConditionedConnector, LinkConditions};
use pong_ports::{
    ClientTransport, Connector, Frame, Incoming, PeerId, ServerTransport, TransportError,
};
use pong_transport_memory::{MemoryHub, MemoryServer};
use tokio::time::{Instant, timeout};

const MS: Duration = Duration::from_millis(1);

fn frame(n: u32) -> Frame {
    Bytes::copy_from_slice(&n.to_be_bytes())
}

fn number(frame: &Frame) -> u32 {
    u32::from_be_bytes(frame[..4].try_into().unwrap())
}

struct Setup {
    server: MemoryServer,
    connector: ConditionedConnector,
    client: Box<dyn ClientTransport>,
    peer: PeerId,
}

/// The server gets `frame(1)` from `peer`, then its end.
async fn frame_1_then_gone(server: &mut MemoryServer, peer: PeerId) {
    assert_eq!(server.recv().await.unwrap(), Incoming::Frame { from: peer, frame: frame(1) });
    assert!(matches!(server.recv().await.unwrap(), Incoming::Gone { peer: p, .. } if p == peer));
}

async fn setup(conditions: LinkConditions) -> Setup {
    let hub = MemoryHub::default();
    let mut server = hub.server().unwrap();
    let connector = ConditionedConnector::new(Arc::new(hub.connector()), conditions);
    let client = connector.connect().await.unwrap();
    let Incoming::Connected { peer, .. } = server.recv().await.unwrap() else {
        panic!("no Connected")
    };
    Setup { server, connector, client, peer }
}

/// Frames at the server, with arrival times since `start`, until it has been quiet for a
/// (virtual) second.
async fn drain_server(server: &mut MemoryServer, start: Instant) -> Vec<(Duration, u32)> {
    let mut got = Vec::new();
    while let Ok(event) = timeout(Duration::from_secs(1), server.recv()).await {
        if let Incoming::Frame { frame, .. } = event.unwrap() {
            got.push((start.elapsed(), number(&frame)));
        }
    }
    got
}

/// Frames at the client, with arrival times since `start`, until it has been quiet for a
/// (virtual) second.
async fn drain_client(
    client: &mut Box<dyn ClientTransport>,
    start: Instant,
) -> Vec<(Duration, u32)> {
    let mut got = Vec::new();
    while let Ok(Ok(frame)) = timeout(Duration::from_secs(1), client.recv()).await {
        got.push((start.elapsed(), number(&frame)));
    }
    got
}

/// Sends `count` frames each way at once and returns what arrived, with arrival times.
async fn exchange(
    conditions: LinkConditions,
    count: u32,
) -> (Vec<(Duration, u32)>, Vec<(Duration, u32)>) {
    let mut s = setup(conditions).await;
    let start = Instant::now();
    for n in 0..count {
        s.client.send(frame(n)).unwrap();
        s.server.send(s.peer, frame(n)).unwrap();
    }
    tokio::join!(drain_server(&mut s.server, start), drain_client(&mut s.client, start))
}

fn inversions(arrivals: &[(Duration, u32)]) -> usize {
    arrivals.windows(2).filter(|w| w[1].1 < w[0].1).count()
}

#[tokio::test(start_paused = true)]
async fn delays_are_latency_plus_or_minus_jitter_and_reproducible() {
    let conditions = LinkConditions::wan(50 * MS, 20 * MS).with_seed(7);
    let (up, down) = exchange(conditions, 200).await;
    for arrivals in [&up, &down] {
        assert_eq!(arrivals.len(), 200);
        assert!(arrivals.iter().all(|(at, _)| (30 * MS..=70 * MS).contains(at)), "{arrivals:?}");
        // Jitter far above the frames' spacing reorders them (by design).
        assert!(inversions(arrivals) > 10);
    }
    // The directions draw independently.
    assert_ne!(up, down);

    assert_eq!(exchange(conditions, 200).await, (up.clone(), down), "same seed, same run");
    let (other_up, _) = exchange(conditions.with_seed(8), 200).await;
    assert_ne!(other_up, up, "another seed, another run");
}

#[tokio::test(start_paused = true)]
async fn links_of_one_connector_get_different_draws() {
    let mut s = setup(LinkConditions::wan(50 * MS, 20 * MS)).await;
    let mut second = s.connector.connect().await.unwrap();
    let Incoming::Connected { peer: second_peer, .. } = s.server.recv().await.unwrap() else {
        panic!()
    };
    for n in 0..50 {
        s.server.send(s.peer, frame(n)).unwrap();
        s.server.send(second_peer, frame(n)).unwrap();
    }
    let first = drain_client(&mut s.client, Instant::now()).await;
    assert_ne!(first, drain_client(&mut second, Instant::now()).await);
}

#[tokio::test(start_paused = true)]
async fn without_jitter_or_reordering_order_is_kept() {
    let (up, down) = exchange(LinkConditions::wan(30 * MS, Duration::ZERO), 500).await;
    for arrivals in [up, down] {
        assert_eq!(arrivals.iter().map(|a| a.1).collect::<Vec<_>>(), (0..500).collect::<Vec<_>>());
        assert!(arrivals.iter().all(|(at, _)| *at == 30 * MS));
    }
}

#[tokio::test(start_paused = true)]
async fn loss_drops_about_the_configured_fraction() {
    // Well under the memory transport's queue, so the inner link never overflows.
    let conditions = LinkConditions::perfect().with_loss(0.2).with_seed(3);
    let (up, down) = exchange(conditions, 3000).await;
    for arrivals in [up, down] {
        let lost = 1.0 - arrivals.len() as f64 / 3000.0;
        assert!((0.16..0.24).contains(&lost), "lost {lost}");
        // What arrives arrives in order: loss alone does not reorder.
        assert_eq!(inversions(&arrivals), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn duplication_repeats_about_the_configured_fraction() {
    let conditions = LinkConditions::perfect().with_duplicate(0.1).with_seed(4);
    let (up, _) = exchange(conditions, 2000).await;
    let extra = up.len() as f64 / 2000.0 - 1.0;
    assert!((0.07..0.13).contains(&extra), "duplicated {extra}");
    let mut numbers: Vec<u32> = up.iter().map(|a| a.1).collect();
    numbers.dedup();
    assert_eq!(numbers, (0..2000).collect::<Vec<_>>(), "every frame arrives, copies adjacent");
}

#[tokio::test(start_paused = true)]
async fn reordering_holds_some_frames_back() {
    let conditions =
        LinkConditions::wan(5 * MS, Duration::ZERO).with_reorder(0.25, 20 * MS).with_seed(5);
    let mut s = setup(conditions).await;
    for n in 0..400 {
        s.client.send(frame(n)).unwrap();
        tokio::time::sleep(MS).await;
    }
    let up = drain_server(&mut s.server, Instant::now()).await;
    assert_eq!(up.len(), 400);
    let held = up.windows(2).filter(|w| w[1].1 < w[0].1).count();
    assert!((60..140).contains(&held), "{held} frames overtaken");
}

#[tokio::test(start_paused = true)]
async fn a_cut_drops_everything_including_frames_in_flight_until_restored() {
    let mut s = setup(LinkConditions::wan(100 * MS, Duration::ZERO)).await;
    let control = s.connector.control();
    s.client.send(frame(1)).unwrap();
    s.server.send(s.peer, frame(1)).unwrap();
    tokio::time::sleep(50 * MS).await;
    control.cut();
    assert!(control.is_cut());
    s.client.send(frame(2)).unwrap();
    s.server.send(s.peer, frame(2)).unwrap();
    tokio::time::sleep(200 * MS).await;
    control.restore();
    s.client.send(frame(3)).unwrap();
    s.server.send(s.peer, frame(3)).unwrap();

    let up: Vec<u32> =
        drain_server(&mut s.server, Instant::now()).await.into_iter().map(|a| a.1).collect();
    let down: Vec<u32> =
        drain_client(&mut s.client, Instant::now()).await.into_iter().map(|a| a.1).collect();
    assert_eq!(up, [3]);
    assert_eq!(down, [3]);
}

#[tokio::test(start_paused = true)]
async fn scheduled_cut_offs_follow_virtual_time() {
    let mut s = setup(LinkConditions::perfect()).await;
    let control = s.connector.control();
    let start = Instant::now();
    let schedule = control.schedule_cut(Duration::from_secs(1), Duration::from_secs(2));
    for n in 0..8 {
        tokio::time::sleep_until(start + Duration::from_millis(500 * u64::from(n) + 250)).await;
        s.client.send(frame(n)).unwrap();
    }
    schedule.await.unwrap();
    assert!(!control.is_cut());
    let up: Vec<u32> =
        drain_server(&mut s.server, Instant::now()).await.into_iter().map(|a| a.1).collect();
    // Sent at 0.25, 0.75 … 3.75 s; the cut covers 1 s ..= 3 s.
    assert_eq!(up, [0, 1, 6, 7]);

    // Aborting a schedule mid-cut restores the link.
    let schedule = control.schedule_cut(Duration::ZERO, Duration::from_secs(60));
    tokio::time::sleep(MS).await;
    assert!(control.is_cut());
    schedule.abort();
    let _ = schedule.await;
    assert!(!control.is_cut());
}

#[tokio::test(start_paused = true)]
async fn close_hands_over_frames_in_flight_then_closes_the_inner_link() {
    let mut s = setup(LinkConditions::wan(100 * MS, Duration::ZERO)).await;
    s.client.send(frame(1)).unwrap();
    let start = Instant::now();
    s.client.close().await;
    assert_eq!(start.elapsed(), 100 * MS);
    assert_eq!(s.client.send(frame(2)), Err(TransportError::Closed));
    assert_eq!(s.client.recv().await, Err(TransportError::Closed));
    frame_1_then_gone(&mut s.server, s.peer).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_client_closes_the_inner_link_after_frames_in_flight() {
    let mut s = setup(LinkConditions::wan(100 * MS, Duration::ZERO)).await;
    s.client.send(frame(1)).unwrap();
    drop(s.client);
    frame_1_then_gone(&mut s.server, s.peer).await;
}

#[tokio::test(start_paused = true)]
async fn when_the_inner_link_closes_frames_in_flight_arrive_then_closed() {
    let mut s = setup(LinkConditions::wan(100 * MS, Duration::ZERO)).await;
    s.server.send(s.peer, frame(1)).unwrap();
    s.server.send(s.peer, frame(2)).unwrap();
    s.server.disconnect(s.peer).unwrap();
    assert_eq!(s.client.recv().await, Ok(frame(1)));
    assert_eq!(s.client.recv().await, Ok(frame(2)));
    assert_eq!(s.client.recv().await, Err(TransportError::Closed));
    assert_eq!(s.client.send(frame(3)), Err(TransportError::Closed));
}

#[tokio::test(start_paused = true)]
async fn oversized_frames_are_refused_at_once_and_subscribe_passes_through() {
    let mut s = setup(LinkConditions::wan(100 * MS, Duration::ZERO)).await;
    let max = s.client.max_frame_len();
    assert_eq!(max, pong_domain_max());
    assert_eq!(
        s.client.send(Bytes::from(vec![0; max + 1])),
        Err(TransportError::FrameTooLarge { len: max + 1, max })
    );
    s.client.subscribe(pong_ports::MatchId(1)).await.unwrap();
    assert!(s.connector.describe().contains("memory"));
}

fn pong_domain_max() -> usize {
    pong_transport_memory::MemoryOptions::default().max_frame_len
}
