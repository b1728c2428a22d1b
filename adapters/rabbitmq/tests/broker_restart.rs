//! The server transport survives a broker restart (`rabbitmqctl stop_app`, then `start_app`):
//! its peers are reported gone as soon as the broker goes, it reconnects when the broker is
//! back, and new links work both ways.
//!
//! This stops the whole broker, so it lives alone in this test binary: cargo runs test
//! binaries one after another, so it never overlaps this crate's other broker tests (which
//! run in parallel within their binaries). Anything else using the same broker at that
//! moment (another crate's tests, a game) loses its connections too; the end-to-end tests of
//! `app/pong` wait for the lock file it holds (`common::BrokerLock`), also across two
//! `cargo test` runs. It needs `rabbitmqctl` on the broker's machine; without it (or without
//! a broker) it is skipped loudly, or fails under `CI=true`. A guard restarts the broker app
//! if the test fails half-way.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use pong_ports::{ClientTransport, Incoming, MatchId, PeerId, ServerTransport, TransportError};
use pong_transport_amqp::{AmqpClient, AmqpConnector, AmqpOptions, AmqpServer};

/// Generous: a broker app takes seconds to stop and start, more on a busy machine.
const RESTART_WAIT: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(20);

async fn ctl(args: &'static [&'static str]) {
    tokio::task::spawn_blocking(move || common::rabbitmqctl(args))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn eventually<F: FnMut() -> bool>(what: &str, limit: Duration, mut done: F) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn next_frame_from(server: &mut AmqpServer, peer: PeerId, gone: &mut Vec<PeerId>) -> Bytes {
    loop {
        match tokio::time::timeout(WAIT, server.recv()).await.expect("a frame at the server") {
            Ok(Incoming::Frame { from, frame }) if from == peer => return frame,
            Ok(Incoming::Gone { peer, .. }) => gone.push(peer),
            Ok(_) => {}
            Err(e) => panic!("server recv failed: {e}"),
        }
    }
}

async fn client_recv(client: &mut AmqpClient) -> Result<Bytes, TransportError> {
    tokio::time::timeout(WAIT, client.recv()).await.expect("a frame or Closed at the client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_transport_survives_a_broker_restart() {
    let _hold = common::BrokerLock::exclusive("broker restart");
    let Some(url) = common::broker_with_rabbitmqctl("broker restart") else { return };
    let options = AmqpOptions {
        reconnect_min: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(1),
        probe_interval: Duration::from_millis(200),
        ..common::options("restart")
    };
    let mut server = AmqpServer::connect(&url, options.clone()).await.unwrap();
    let connector = AmqpConnector::new(&url, options).unwrap();
    let mut gone = Vec::new();
    let mut before = connector.connect_client().await.unwrap();
    before.send(Bytes::from_static(b"before")).unwrap();
    let (old_peer, frame) = loop {
        if let Incoming::Frame { from, frame } = server.recv().await.unwrap() {
            break (from, frame);
        }
    };
    assert_eq!(frame, Bytes::from_static(b"before"));

    let mut guard = common::RestartGuard { armed: true };
    ctl(&["stop_app"]).await;

    // The client's link ends. The server notices, reports its peer gone at once (so a game
    // pauses instead of playing on without its players' input), and fails sends fast
    // instead of buffering them.
    assert!(matches!(client_recv(&mut before).await, Err(TransportError::Closed)));
    eventually("the server to notice", WAIT, || !server.is_connected()).await;
    match tokio::time::timeout(WAIT, server.recv()).await.expect("Gone while the broker is down") {
        Ok(Incoming::Gone { peer, reason }) => {
            assert_eq!(peer, old_peer);
            assert!(reason.contains("broker connection"), "unexpected reason: {reason}");
            gone.push(peer);
        }
        other => panic!("expected the peer gone, got {other:?}"),
    }
    let started = Instant::now();
    let refused = server.send(old_peer, Bytes::from_static(b"while down"));
    let published = server.publish(MatchId(1), Bytes::from_static(b"while down"));
    assert!(started.elapsed() < Duration::from_millis(100), "sends blocked while down");
    assert!(matches!(refused, Err(TransportError::UnknownPeer(_))), "{refused:?}");
    assert!(published.is_err(), "a publish while down did not fail fast");

    ctl(&["start_app"]).await;
    ctl(&["await_startup"]).await;
    guard.armed = false;
    eventually("the broker to accept connections", RESTART_WAIT, || {
        common::reachable(&url).is_ok()
    })
    .await;
    eventually("the server to reconnect", RESTART_WAIT, || server.is_connected()).await;
    assert!(server.stats().reconnects >= 1);
    assert!(server.stats().dropped_link_down >= 1);

    // A new link (as the game client's reconnect would make) works both ways, groups too.
    let mut after = connector.connect_client().await.unwrap();
    after.send(Bytes::from_static(b"after")).unwrap();
    let new_peer = loop {
        match tokio::time::timeout(WAIT, server.recv()).await.unwrap().unwrap() {
            Incoming::Frame { from, frame } => {
                assert_eq!(frame, Bytes::from_static(b"after"));
                break from;
            }
            Incoming::Gone { peer, .. } => gone.push(peer),
            Incoming::Connected { .. } => {}
        }
    };
    assert_ne!(new_peer, old_peer);
    server.send(new_peer, Bytes::from_static(b"welcome back")).unwrap();
    assert_eq!(client_recv(&mut after).await.unwrap(), Bytes::from_static(b"welcome back"));
    server.join_group(new_peer, MatchId(2)).unwrap();
    after.subscribe(MatchId(2)).await.unwrap();
    server.publish(MatchId(2), Bytes::from_static(b"tick")).unwrap();
    assert_eq!(client_recv(&mut after).await.unwrap(), Bytes::from_static(b"tick"));

    // The old peer was reported gone once, before the restart, and never again.
    for _ in 0..3 {
        after.send(Bytes::from_static(b"ping")).unwrap();
        next_frame_from(&mut server, new_peer, &mut gone).await;
    }
    assert_eq!(gone, vec![old_peer], "peers reported gone");
    server.shutdown().await;
}
