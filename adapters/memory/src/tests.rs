//! Behaviour specific to the memory transport (queue bounds, endpoint lifetime, severing);
//! the port's general rules are checked by the conformance suite in `pong-tests`.

use std::time::Duration;

use bytes::Bytes;
use pong_ports::{
    ClientTransport, Connector, Incoming, MatchId, PeerId, ServerTransport, TransportError,
};

use crate::{MemoryClient, MemoryHub, MemoryOptions, MemoryServer};

fn small(capacity: usize) -> MemoryHub {
    MemoryHub::new(MemoryOptions { queue_capacity: capacity, ..MemoryOptions::default() })
}

fn frame(n: u32) -> Bytes {
    Bytes::copy_from_slice(&n.to_be_bytes())
}

/// The next event, or None if nothing comes within a (virtual) second.
async fn next_event(server: &mut impl ServerTransport) -> Option<Incoming> {
    tokio::time::timeout(Duration::from_secs(1), server.recv()).await.ok().map(|r| r.unwrap())
}

async fn expect_connected(server: &mut impl ServerTransport) -> PeerId {
    match next_event(server).await {
        Some(Incoming::Connected { peer, .. }) => peer,
        other => panic!("expected Connected, got {other:?}"),
    }
}

/// A default hub with its server and one client, seen connected.
async fn one_client() -> (MemoryHub, MemoryServer, MemoryClient, PeerId) {
    let hub = MemoryHub::default();
    let mut server = hub.server().unwrap();
    let client = hub.connector().connect_client().unwrap();
    let peer = expect_connected(&mut server).await;
    (hub, server, client, peer)
}

/// A default hub with its server and two clients, their `Connected` events not yet read.
fn two_clients() -> (MemoryHub, MemoryServer, MemoryClient, MemoryClient) {
    let hub = MemoryHub::default();
    let server = hub.server().unwrap();
    let a = hub.connector().connect_client().unwrap();
    let b = hub.connector().connect_client().unwrap();
    (hub, server, a, b)
}

#[tokio::test(start_paused = true)]
async fn connecting_needs_a_live_server_endpoint() {
    let hub = MemoryHub::default();
    let connector = hub.connector();
    assert!(matches!(connector.connect().await.err(), Some(TransportError::Connect { .. })));

    let server = hub.server().unwrap();
    assert!(matches!(hub.server(), Err(TransportError::Listen { .. })));
    let first = connector.connect_client().unwrap();
    drop(server);
    assert!(matches!(connector.connect().await.err(), Some(TransportError::Connect { .. })));

    // A restarted endpoint never reuses an id.
    let mut server = hub.server().unwrap();
    let second = connector.connect_client().unwrap();
    assert_ne!(first.peer(), second.peer());
    assert_eq!(expect_connected(&mut server).await, second.peer());
    assert_eq!(server.peers(), vec![second.peer()]);
}

#[tokio::test(start_paused = true)]
async fn close_and_drop_report_gone_exactly_once() {
    let hub = MemoryHub::default();
    let mut server = hub.server().unwrap();
    let mut a = hub.connector().connect().await.unwrap();
    let b = hub.connector().connect().await.unwrap();
    let pa = expect_connected(&mut server).await;
    let pb = expect_connected(&mut server).await;

    a.send(frame(1)).unwrap();
    a.close().await;
    a.close().await;
    assert_eq!(a.send(frame(2)), Err(TransportError::Closed));
    assert_eq!(a.recv().await, Err(TransportError::Closed));
    drop(a);
    drop(b);

    assert_eq!(next_event(&mut server).await, Some(Incoming::Frame { from: pa, frame: frame(1) }));
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer, .. }) if peer == pa)
    );
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer, .. }) if peer == pb)
    );
    assert_eq!(next_event(&mut server).await, None);
    assert_eq!(server.send(pa, frame(3)), Err(TransportError::UnknownPeer(pa)));
}

#[tokio::test(start_paused = true)]
async fn disconnect_delivers_queued_frames_then_closes() {
    let (_hub, mut server, mut client, peer) = one_client().await;

    server.send(peer, frame(1)).unwrap();
    server.send(peer, frame(2)).unwrap();
    server.disconnect(peer).unwrap();
    server.disconnect(peer).unwrap();
    assert_eq!(client.recv().await, Ok(frame(1)));
    assert_eq!(client.recv().await, Ok(frame(2)));
    assert_eq!(client.recv().await, Err(TransportError::Closed));
    assert_eq!(client.send(frame(3)), Err(TransportError::Closed));
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer: p, .. }) if p == peer)
    );
    drop(client);
    assert_eq!(next_event(&mut server).await, None);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_server_closes_every_link() {
    let (_hub, mut server, mut a, mut b) = two_clients();
    let pa = expect_connected(&mut server).await;
    server.send(pa, frame(7)).unwrap();
    drop(server);

    assert_eq!(a.recv().await, Ok(frame(7)));
    assert_eq!(a.recv().await, Err(TransportError::Closed));
    assert_eq!(b.recv().await, Err(TransportError::Closed));
    assert_eq!(b.send(frame(1)), Err(TransportError::Closed));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_towards_a_client_disconnects_it() {
    let hub = small(4);
    let mut server = hub.server().unwrap();
    let mut slow = hub.connector().connect_client().unwrap();
    let mut other = hub.connector().connect_client().unwrap();
    let ps = expect_connected(&mut server).await;
    let po = expect_connected(&mut server).await;
    for p in [ps, po] {
        server.join_group(p, MatchId(1)).unwrap();
    }

    for n in 0..4 {
        server.send(ps, frame(n)).unwrap();
    }
    // The publish overflows the slow peer only; the other member still gets it.
    server.publish(MatchId(1), frame(99)).unwrap();
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer, .. }) if peer == ps)
    );
    assert_eq!(server.send(ps, frame(5)), Err(TransportError::UnknownPeer(ps)));
    assert_eq!(other.recv().await, Ok(frame(99)));

    for n in 0..4 {
        assert_eq!(slow.recv().await, Ok(frame(n)));
    }
    assert_eq!(slow.recv().await, Err(TransportError::Closed));

    for n in 0..4 {
        server.send(po, frame(n)).unwrap();
    }
    assert_eq!(server.send(po, frame(4)), Err(TransportError::Backpressure(po)));
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer, .. }) if peer == po)
    );
    assert_eq!(next_event(&mut server).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_towards_the_server_disconnects_the_link() {
    let hub = small(4);
    let mut server = hub.server().unwrap();
    let client = hub.connector().connect_client().unwrap();
    let peer = expect_connected(&mut server).await;

    // Credit comes back as the server reads.
    for round in 0..3 {
        for n in 0..4 {
            client.send(frame(round * 10 + n)).unwrap();
        }
        for n in 0..4 {
            assert_eq!(
                next_event(&mut server).await,
                Some(Incoming::Frame { from: peer, frame: frame(round * 10 + n) })
            );
        }
    }

    for n in 0..4 {
        client.send(frame(n)).unwrap();
    }
    assert_eq!(client.send(frame(4)), Err(TransportError::Backpressure(peer)));
    assert_eq!(client.send(frame(5)), Err(TransportError::Closed));
    for n in 0..4 {
        assert_eq!(
            next_event(&mut server).await,
            Some(Incoming::Frame { from: peer, frame: frame(n) })
        );
    }
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer: p, .. }) if p == peer)
    );
}

#[tokio::test(start_paused = true)]
async fn frame_size_is_configurable_and_enforced_both_ways() {
    let hub = MemoryHub::new(MemoryOptions { max_frame_len: 8, ..MemoryOptions::default() });
    let mut server = hub.server().unwrap();
    let client = hub.connector().connect_client().unwrap();
    let peer = expect_connected(&mut server).await;
    assert_eq!(server.max_frame_len(), 8);
    assert_eq!(client.max_frame_len(), 8);

    let big = Bytes::from(vec![0; 9]);
    let too_large = Err(TransportError::FrameTooLarge { len: 9, max: 8 });
    assert_eq!(client.send(big.clone()), too_large);
    assert_eq!(server.send(peer, big.clone()), too_large);
    assert_eq!(server.publish(MatchId(1), big), too_large);
    client.send(Bytes::from(vec![1; 8])).unwrap();
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Frame { frame, .. }) if frame.len() == 8)
    );
}

#[tokio::test(start_paused = true)]
async fn leaving_or_vanishing_removes_a_peer_from_its_groups() {
    let (_hub, mut server, mut a, mut b) = two_clients();
    let pa = expect_connected(&mut server).await;
    let pb = expect_connected(&mut server).await;
    let g = MatchId(3);
    server.join_group(pa, g).unwrap();
    server.join_group(pb, g).unwrap();
    assert_eq!(server.join_group(PeerId(999), g), Err(TransportError::UnknownPeer(PeerId(999))));
    server.leave_group(PeerId(999), g).unwrap();

    server.leave_group(pb, g).unwrap();
    server.publish(g, frame(1)).unwrap();
    server.send(pb, frame(2)).unwrap();
    assert_eq!(a.recv().await, Ok(frame(1)));
    assert_eq!(b.recv().await, Ok(frame(2)));

    drop(a);
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer, .. }) if peer == pa)
    );
    server.publish(g, frame(3)).unwrap();
    assert_eq!(server.state_groups_len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_severed_link_goes_quiet_without_telling_anyone() {
    let (_hub, mut server, mut client, peer) = one_client().await;
    server.send(peer, frame(1)).unwrap();
    client.sever_silently();

    client.send(frame(2)).unwrap();
    server.send(peer, frame(3)).unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), client.recv()).await.is_err());
    client.close().await;
    assert_eq!(next_event(&mut server).await, None);

    // Only the server giving up on it (after missed heartbeats) ends it.
    server.disconnect(peer).unwrap();
    assert!(
        matches!(next_event(&mut server).await, Some(Incoming::Gone { peer: p, .. }) if p == peer)
    );
}

#[tokio::test(start_paused = true)]
async fn the_hub_severs_by_peer_id() {
    let (hub, mut server, client, peer) = one_client().await;
    assert!(hub.sever_silently(peer));
    assert!(!hub.sever_silently(PeerId(12345)));
    client.send(frame(1)).unwrap();
    drop(client);
    assert_eq!(next_event(&mut server).await, None);
    assert_eq!(server.local_addr(), "memory");
    assert_eq!(hub.connector().describe(), "memory");
}

impl crate::MemoryServer {
    fn state_groups_len(&self) -> usize {
        use pong_transport_support::PeerServer;
        self.shared.state().peers.group_count()
    }
}
