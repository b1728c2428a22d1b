//! What the ZeroMQ transport does with dying, silent, slow, reconnecting and hostile peers,
//! beyond the conformance suite.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pong_ports::{ClientTransport, Connector, Incoming, MatchId, PeerId, ServerTransport};
use pong_ports::{Frame, TransportError};
use pong_transport_zmq::{ZmqConnector, ZmqOptions, ZmqServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use zeromq::{DealerSocket, Socket, SocketOptions, SocketSend, ZmqMessage};

const WAIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn bind(options: ZmqOptions) -> (ZmqServer, ZmqConnector) {
    let server = ZmqServer::bind("tcp://127.0.0.1:0", options).await.unwrap();
    let connector = ZmqConnector::new(&server.local_addr(), options).unwrap();
    (server, connector)
}

/// The next frame at the server, skipping link events.
async fn next_frame(server: &mut ZmqServer) -> (PeerId, Frame) {
    loop {
        match within("a frame at the server", server.recv()).await.unwrap() {
            Incoming::Frame { from, frame } => return (from, frame),
            Incoming::Connected { .. } | Incoming::Gone { .. } => {}
        }
    }
}

/// Waits for `Gone` of `peer`, returning its reason.
async fn gone(server: &mut ZmqServer, peer: PeerId) -> String {
    loop {
        match within("Gone at the server", server.recv()).await.unwrap() {
            Incoming::Gone { peer: p, reason } if p == peer => return reason,
            _ => {}
        }
    }
}

/// True if nothing but frames from other peers arrives for `quiet`.
async fn stays_quiet(server: &mut ZmqServer, quiet: Duration) -> Option<Incoming> {
    match tokio::time::timeout(quiet, server.recv()).await {
        Err(_) => None,
        Ok(event) => Some(event.unwrap()),
    }
}

/// Opens a link and learns its `PeerId` from a hello.
async fn open(
    server: &mut ZmqServer,
    connector: &ZmqConnector,
) -> (Box<dyn ClientTransport>, PeerId) {
    let client = within("connect", connector.connect()).await.unwrap();
    client.send(Bytes::from_static(b"hello")).unwrap();
    let (peer, frame) = next_frame(server).await;
    assert_eq!(frame, Bytes::from_static(b"hello"));
    (client, peer)
}

// ---- Raw ZMTP, to act as peers this adapter would never be ----

fn greeting() -> [u8; 64] {
    let mut g = [0_u8; 64];
    g[0] = 0xff;
    g[8] = 1;
    g[9] = 0x7f;
    g[10] = 3;
    g[12..16].copy_from_slice(b"NULL");
    g
}

fn short_frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![flags, u8::try_from(body.len()).unwrap()];
    f.extend_from_slice(body);
    f
}

fn ready(socket_type: &[u8]) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&u32::try_from(socket_type.len()).unwrap().to_be_bytes());
    body.extend_from_slice(socket_type);
    short_frame(0x04, &body)
}

fn tcp_addr(server: &ZmqServer) -> String {
    server.local_addr().strip_prefix("tcp://").unwrap().to_owned()
}

/// A connection that has done the ZMTP handshake as a DEALER, by hand.
async fn raw_dealer(server: &ZmqServer) -> TcpStream {
    try_raw_dealer(server, None).await.expect("the server closed a connection without a byte")
}

/// Connects (from `source` if given, an address of this host), and does the ZMTP handshake
/// as a DEALER: the connection if the server relayed it, `None` if the server closed it
/// without sending a byte (turned away at accept).
async fn try_raw_dealer(server: &ZmqServer, source: Option<IpAddr>) -> Option<TcpStream> {
    let to: SocketAddr = tcp_addr(server).parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0)).unwrap();
    }
    let mut stream = within("a tcp connection", socket.connect(to)).await.unwrap();
    // The server may already have closed a connection it turns away: what is written then
    // may fail, and reading says so.
    let _ = stream.write_all(&greeting()).await;
    let _ = stream.write_all(&ready(b"DEALER")).await;
    let mut peer_greeting = [0_u8; 64];
    match within("the server's greeting or close", stream.read(&mut peer_greeting)).await {
        Ok(0) | Err(_) => return None,
        Ok(n) => {
            let rest = &mut peer_greeting[n..];
            within("the server's greeting", stream.read_exact(rest)).await.unwrap();
        }
    }
    assert_eq!((peer_greeting[0], peer_greeting[9]), (0xff, 0x7f), "not a ZMTP greeting");
    let mut header = [0_u8; 2];
    within("the server's READY", stream.read_exact(&mut header)).await.unwrap();
    assert_eq!(header[0], 0x04, "the server's READY is not a short command");
    let mut body = vec![0_u8; usize::from(header[1])];
    stream.read_exact(&mut body).await.unwrap();
    assert!(body.starts_with(b"\x05READY"), "expected READY, got {body:?}");
    Some(stream)
}

/// A raw DEALER the server relays, once a place under its caps is free: tries again (a
/// closed connection gives its place back when its relay has finished, not at once) until
/// one is admitted, for up to `WAIT`.
async fn admitted_eventually(server: &ZmqServer) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(stream) = try_raw_dealer(server, None).await {
            return stream;
        }
        assert!(Instant::now() < deadline, "no place was given back within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to `WAIT`) for the server to relay no connection at all.
async fn no_connections_left(server: &ZmqServer) {
    let deadline = Instant::now() + WAIT;
    while server.connections() != 0 {
        assert!(Instant::now() < deadline, "{} connections still counted", server.connections());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one short single-part message (a frame of at most 255 bytes) off a raw DEALER.
async fn read_short_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0_u8; 2];
    within("a frame from the server", stream.read_exact(&mut header)).await.unwrap();
    assert_eq!(header[0], 0, "not a short single-part message");
    let mut body = vec![0_u8; usize::from(header[1])];
    within("a frame from the server", stream.read_exact(&mut body)).await.unwrap();
    body
}

/// Both ways through a raw DEALER the server knows as `peer`.
async fn exchange(server: &mut ZmqServer, raw: &mut TcpStream, peer: PeerId) {
    server.send(peer, Bytes::from_static(b"down")).unwrap();
    assert_eq!(read_short_frame(raw).await, b"down");
    raw.write_all(&short_frame(0, b"up")).await.unwrap();
    assert_eq!(next_frame(server).await, (peer, Bytes::from_static(b"up")));
}

/// A raw DEALER that has sent one frame, `first`, and the peer the server gave it.
async fn raw_peer(server: &mut ZmqServer, first: &[u8]) -> (TcpStream, PeerId, Frame) {
    let mut raw = raw_dealer(server).await;
    raw.write_all(&short_frame(0, first)).await.unwrap();
    let (peer, frame) = next_frame(server).await;
    (raw, peer, frame)
}

/// Reads until the server closes the connection; true if it did (EOF or reset).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut sink = vec![0_u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

// ---- Dying and silent clients ----

/// A client whose process dies has its socket closed by the kernel (here: a reset, with no
/// ZMTP goodbye and no FIN): the server reports it gone, quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_dies_is_reported_gone() {
    let (mut server, connector) = bind(ZmqOptions::default()).await;

    let (raw, peer, frame) = raw_peer(&mut server, b"alive").await;
    assert_eq!(frame, Bytes::from_static(b"alive"));
    raw.set_zero_linger().unwrap();
    let died = Instant::now();
    drop(raw);
    gone(&mut server, peer).await;
    assert!(died.elapsed() < Duration::from_secs(2), "Gone took {:?}", died.elapsed());

    // Our own client, dropped without close(): the same.
    let (client, peer) = open(&mut server, &connector).await;
    let died = Instant::now();
    drop(client);
    gone(&mut server, peer).await;
    assert!(died.elapsed() < Duration::from_secs(2), "Gone took {:?}", died.elapsed());
    assert!(server.peers().is_empty());
}

/// A peer that stops talking while its connection stays open (a frozen process, a pulled
/// cable) is reported by nobody: the transport cannot tell it from a quiet peer. The
/// protocol's heartbeats (a ping every 200 ms, lost after 1.5 s) are what find it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_left_to_the_heartbeats() {
    let (mut server, _connector) = bind(ZmqOptions::default()).await;
    let (mut raw, peer, _) = raw_peer(&mut server, b"then silence").await;
    assert_eq!(stays_quiet(&mut server, Duration::from_millis(500)).await, None);
    assert_eq!(server.peers(), vec![peer]);
    // The server can still drop it, which the peer sees as the end of its connection.
    server.disconnect(peer).unwrap();
    assert!(closed_by_server(&mut raw).await, "the disconnected peer's connection stayed open");
}

// ---- Reconnects ----

/// Every link is a new routing id and a new `PeerId`, also for a peer that reuses a fixed
/// routing id (as a libzmq DEALER with ZMQ_ROUTING_ID does) once its old link is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_is_a_new_peer() {
    let (mut server, connector) = bind(ZmqOptions::default()).await;
    let first = connector.connect_client().await.unwrap();
    first.send(Bytes::from_static(b"one")).unwrap();
    let (first_peer, _) = next_frame(&mut server).await;
    let first_id = first.routing_id().to_vec();
    drop(first);
    gone(&mut server, first_peer).await;

    let second = connector.connect_client().await.unwrap();
    second.send(Bytes::from_static(b"two")).unwrap();
    let (second_peer, _) = next_frame(&mut server).await;
    assert_ne!(second_peer, first_peer);
    assert_ne!(second.routing_id(), first_id.as_slice(), "a routing id was reused");

    let mut seen = vec![first_peer, second_peer];
    for round in 0..2 {
        let mut options = SocketOptions::default();
        options.peer_identity("fixed-routing-id".parse().unwrap());
        let mut dealer = DealerSocket::with_options(options);
        dealer.connect(&server.local_addr()).await.unwrap();
        dealer.send(ZmqMessage::from(format!("fixed {round}"))).await.unwrap();
        let (peer, frame) = next_frame(&mut server).await;
        assert_eq!(frame, Bytes::from(format!("fixed {round}")));
        assert!(!seen.contains(&peer), "{peer} was reused");
        seen.push(peer);
        drop(dealer);
        gone(&mut server, peer).await;
    }
}

// ---- Slow peers ----

/// A peer that stops reading is cut once the kernel buffers towards it are full and
/// nothing more goes in for `stall_timeout`; the other members of its group receive
/// everything, in order, meanwhile and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_peer_is_cut_while_others_keep_up() {
    const BATCH: u32 = 50;
    let options = ZmqOptions {
        // Big frames fill the buffers towards the slow peer in fewer rounds.
        max_frame_len: 32 * 1024,
        queue_capacity: 256,
        stall_timeout: Duration::from_millis(300),
        ..ZmqOptions::default()
    };
    let (mut server, connector) = bind(options).await;
    let (mut fast, fast_peer) = open(&mut server, &connector).await;
    let (slow, slow_peer) = open(&mut server, &connector).await;
    let group = MatchId(1);
    server.join_group(fast_peer, group).unwrap();
    server.join_group(slow_peer, group).unwrap();

    let frame_of = |seq: u32| {
        let mut bytes = vec![(seq % 251) as u8; 16 * 1024];
        bytes[..4].copy_from_slice(&seq.to_be_bytes());
        Bytes::from(bytes)
    };
    let started = Instant::now();
    let mut seq = 0;
    let mut slow_gone = None;
    while slow_gone.is_none() {
        assert!(started.elapsed() < WAIT, "the slow peer was never cut");
        for _ in 0..BATCH {
            server.publish(group, frame_of(seq)).unwrap();
            seq += 1;
        }
        for expected in seq - BATCH..seq {
            let frame = within("a frame at the fast peer", fast.recv()).await.unwrap();
            assert_eq!(frame, frame_of(expected), "the fast peer lost or reordered a frame");
        }
        if let Some(Incoming::Gone { peer, reason }) =
            stays_quiet(&mut server, Duration::from_millis(1)).await
        {
            assert_eq!(peer, slow_peer, "the wrong peer went ({reason})");
            slow_gone = Some(reason);
        }
    }
    assert_eq!(server.stats().stalls, 1);
    assert_eq!(server.peers(), vec![fast_peer]);

    // The fast peer is still served; the slow one is simply gone from the group.
    for _ in 0..BATCH {
        server.publish(group, frame_of(seq)).unwrap();
        seq += 1;
    }
    for expected in seq - BATCH..seq {
        assert_eq!(within("a frame", fast.recv()).await.unwrap(), frame_of(expected));
    }
    assert!(matches!(
        server.send(slow_peer, frame_of(0)),
        Err(TransportError::UnknownPeer(p)) if p == slow_peer
    ));
    drop(slow);
}

/// `send` never waits: when a peer's queue is full the peer is disconnected at once, the
/// call says `Backpressure`, and the server reports the peer gone.
#[tokio::test(flavor = "current_thread")]
async fn a_full_send_queue_disconnects_the_peer() {
    // One thread: the peer's writer cannot run while this test sends, so the queue fills.
    let options = ZmqOptions { queue_capacity: 8, ..ZmqOptions::default() };
    let (mut server, connector) = bind(options).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    let mut refused = None;
    for seq in 0..100_u32 {
        if let Err(e) = server.send(peer, Bytes::from(seq.to_be_bytes().to_vec())) {
            refused = Some((seq, e));
            break;
        }
    }
    assert_eq!(refused, Some((8, TransportError::Backpressure(peer))));
    assert_eq!(gone(&mut server, peer).await, "send queue overflow");
    assert_eq!(server.stats().overflows, 1);
    // The client's link ends (what was queued is dropped with it).
    loop {
        match within("the end of the link", client.recv()).await {
            Ok(_) => {}
            Err(TransportError::Closed) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

// ---- Hostile and malformed input ----

/// Messages a standard ZMTP peer can send but that are not protocol frames (several parts,
/// empty, over the frame limit) are dropped and counted; they never reach the core and
/// never create a peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_are_not_frames_never_reach_the_core() {
    let (mut server, _connector) = bind(ZmqOptions::default()).await;
    let mut dealer = DealerSocket::new();
    dealer.connect(&server.local_addr()).await.unwrap();

    let two_parts = ZmqMessage::try_from(vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
    dealer.send(two_parts.unwrap()).await.unwrap();
    // A REQ-style envelope: an empty delimiter, then the payload.
    let envelope = ZmqMessage::try_from(vec![Bytes::new(), Bytes::from_static(b"payload")]);
    dealer.send(envelope.unwrap()).await.unwrap();
    dealer.send(ZmqMessage::from(Bytes::new())).await.unwrap();
    dealer.send(ZmqMessage::from(vec![b'x'; server.max_frame_len() + 1])).await.unwrap();
    dealer.send(ZmqMessage::from(vec![b'y'; 60_000])).await.unwrap();
    assert!(server.peers().is_empty());
    dealer.send(ZmqMessage::from(vec![b'z'; server.max_frame_len()])).await.unwrap();

    // The first event of all is this link's Connected, then the one good frame.
    let peer = match within("Connected", server.recv()).await.unwrap() {
        Incoming::Connected { peer, .. } => peer,
        other => panic!("expected Connected first, got {other:?}"),
    };
    match within("the frame", server.recv()).await.unwrap() {
        Incoming::Frame { from, frame } => {
            assert_eq!(from, peer);
            assert_eq!(frame, Bytes::from(vec![b'z'; server.max_frame_len()]));
        }
        other => panic!("expected the good frame, got {other:?}"),
    }
    let stats = server.stats();
    assert_eq!((stats.malformed, stats.oversized, stats.frames), (3, 2, 1), "{stats:?}");
}

/// A connection that keeps sending such messages is closed after a few dozen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_keeps_sending_garbage_is_closed() {
    let (mut server, connector) = bind(ZmqOptions::default()).await;
    let (mut raw, peer, _) = raw_peer(&mut server, b"good").await;
    let mut garbage = Vec::new();
    for _ in 0..100 {
        garbage.extend(short_frame(0, b""));
    }
    raw.write_all(&garbage).await.unwrap();
    assert_eq!(gone(&mut server, peer).await, "too many malformed messages");
    assert!(closed_by_server(&mut raw).await, "the connection stayed open");
    assert_eq!(server.stats().misbehaving, 1);
    // Everyone else is fine.
    let (client, _) = open(&mut server, &connector).await;
    drop(client);
}

/// Bytes that are not ZMTP, frame headers claiming huge lengths (which would make the
/// zeromq crate abort the process), too many parts and unfinished handshakes are cut by
/// the guard, never reach the ROUTER as messages, and leave the server serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_are_cut_without_harm() {
    let options =
        ZmqOptions { handshake_timeout: Duration::from_millis(200), ..ZmqOptions::default() };
    let (mut server, connector) = bind(options).await;
    let addr = tcp_addr(&server);

    let mut http = TcpStream::connect(&addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: pong\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut http).await, "a non-ZMTP connection stayed open");

    let mut huge = raw_dealer(&server).await;
    let mut header = vec![0x02];
    header.extend_from_slice(&(1_u64 << 44).to_be_bytes());
    huge.write_all(&header).await.unwrap();
    assert!(closed_by_server(&mut huge).await, "a 16 TiB frame header was accepted");

    let mut parts = raw_dealer(&server).await;
    let mut many = Vec::new();
    for _ in 0..1000 {
        many.extend(short_frame(0x01, b"more"));
    }
    parts.write_all(&many).await.unwrap();
    assert!(closed_by_server(&mut parts).await, "a 1000-part message was accepted");

    let mut mute = TcpStream::connect(&addr).await.unwrap();
    mute.write_all(&greeting()[..20]).await.unwrap();
    assert!(closed_by_server(&mut mute).await, "an unfinished handshake stayed open");

    let stats = server.stats();
    assert_eq!((stats.violations, stats.handshake_timeouts), (3, 1), "{stats:?}");
    assert_eq!(stats.frames, 0);
    assert!(server.peers().is_empty(), "a hostile connection became a peer");

    let (mut client, peer) = open(&mut server, &connector).await;
    server.send(peer, Bytes::from_static(b"still here")).unwrap();
    assert_eq!(within("a reply", client.recv()).await.unwrap(), Bytes::from_static(b"still here"));
}

// ---- Connection caps ----

/// At most `max_connections_per_address` connections from one address are relayed at once:
/// one more is closed at accept without a byte relayed, and counted, while those already
/// there are served as before. When one of them closes, its place is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_one_address_are_capped() {
    let options = ZmqOptions { max_connections_per_address: 2, ..ZmqOptions::default() };
    let (mut server, _connector) = bind(options).await;
    let (mut first, first_peer, _) = raw_peer(&mut server, b"first").await;
    let (mut second, second_peer, _) = raw_peer(&mut server, b"second").await;

    assert!(try_raw_dealer(&server, None).await.is_none(), "a third connection was relayed");
    let stats = server.stats();
    assert_eq!(
        (stats.refused_max_connections_per_address, stats.refused_max_connections),
        (1, 0),
        "{stats:?}"
    );
    assert_eq!(server.connections(), 2);
    exchange(&mut server, &mut first, first_peer).await;
    exchange(&mut server, &mut second, second_peer).await;

    // Another address of this host is not held back by 127.0.0.1's connections (Linux
    // routes all of 127/8 to loopback).
    if cfg!(target_os = "linux") {
        let other = try_raw_dealer(&server, Some(IpAddr::from([127, 0, 0, 2]))).await;
        assert!(other.is_some(), "a connection from 127.0.0.2 was refused");
    }

    drop(first);
    gone(&mut server, first_peer).await;
    let mut third = admitted_eventually(&server).await;
    third.write_all(&short_frame(0, b"third")).await.unwrap();
    let (third_peer, frame) = next_frame(&mut server).await;
    assert_eq!(frame, Bytes::from_static(b"third"));
    exchange(&mut server, &mut third, third_peer).await;
    exchange(&mut server, &mut second, second_peer).await;
    // The cap holds again.
    assert!(try_raw_dealer(&server, None).await.is_none(), "the cap was lifted");
}

/// At most `max_connections` connections are relayed at once, whatever their address: one
/// more is closed at accept and counted, those already there are served as before, and a
/// place is given back when one of them closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_in_all() {
    let options = ZmqOptions { max_connections: 2, ..ZmqOptions::default() };
    let (mut server, connector) = bind(options).await;
    let (mut one, one_peer) = open(&mut server, &connector).await;
    let (mut two, two_peer) = open(&mut server, &connector).await;

    assert!(try_raw_dealer(&server, None).await.is_none(), "a third connection was relayed");
    // Our own client is told at once.
    match within("a refused connect", connector.connect()).await {
        Err(TransportError::Connect { .. }) => {}
        other => panic!("connecting to a full server gave {:?}", other.map(|_| "a link")),
    }
    let stats = server.stats();
    assert_eq!(
        (stats.refused_max_connections, stats.refused_max_connections_per_address),
        (2, 0),
        "{stats:?}"
    );
    assert_eq!((server.peers().len(), server.connections()), (2, 2));
    for (client, peer) in [(&mut one, one_peer), (&mut two, two_peer)] {
        server.send(peer, Bytes::from_static(b"still served")).unwrap();
        let frame = within("a frame", client.recv()).await.unwrap();
        assert_eq!(frame, Bytes::from_static(b"still served"));
        client.send(Bytes::from_static(b"still heard")).unwrap();
        assert_eq!(next_frame(&mut server).await, (peer, Bytes::from_static(b"still heard")));
    }

    one.close().await;
    gone(&mut server, one_peer).await;
    let mut three = admitted_eventually(&server).await;
    three.write_all(&short_frame(0, b"three")).await.unwrap();
    let (three_peer, _) = next_frame(&mut server).await;
    exchange(&mut server, &mut three, three_peer).await;
    assert!(try_raw_dealer(&server, None).await.is_none(), "the cap was lifted");

    drop((two, three));
    no_connections_left(&server).await;
}

/// A connection's place is given back however its relay ends: a handshake that times out,
/// a guard cut, a disconnect by the server, a client that closes. With room for one
/// connection, each next one is admitted only once the one before has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gives_its_place_back_however_it_ends() {
    let options = ZmqOptions {
        max_connections: 1,
        handshake_timeout: Duration::from_millis(300),
        ..ZmqOptions::default()
    };
    let (mut server, _connector) = bind(options).await;

    // An unfinished handshake holds the place until it times out.
    let mut mute = TcpStream::connect(tcp_addr(&server)).await.unwrap();
    mute.write_all(&greeting()[..20]).await.unwrap();
    assert!(closed_by_server(&mut mute).await, "an unfinished handshake stayed open");
    assert_eq!(server.stats().handshake_timeouts, 1);
    drop(mute);

    // A guard cut.
    let mut huge = admitted_eventually(&server).await;
    assert!(try_raw_dealer(&server, None).await.is_none(), "a second connection was relayed");
    let mut header = vec![0x02];
    header.extend_from_slice(&(1_u64 << 44).to_be_bytes());
    huge.write_all(&header).await.unwrap();
    assert!(closed_by_server(&mut huge).await, "a 16 TiB frame header was accepted");
    assert_eq!(server.stats().violations, 1);
    drop(huge);

    // A disconnect by the server.
    let mut raw = admitted_eventually(&server).await;
    raw.write_all(&short_frame(0, b"hello")).await.unwrap();
    let (peer, _) = next_frame(&mut server).await;
    server.disconnect(peer).unwrap();
    assert!(closed_by_server(&mut raw).await, "the disconnected peer's connection stayed open");
    drop(raw);

    // A client that closes.
    let mut raw = admitted_eventually(&server).await;
    raw.write_all(&short_frame(0, b"hello")).await.unwrap();
    let (peer, _) = next_frame(&mut server).await;
    drop(raw);
    gone(&mut server, peer).await;

    let last = admitted_eventually(&server).await;
    assert_eq!(server.connections(), 1);
    assert!(server.stats().refused_max_connections >= 1);
    drop(last);
    no_connections_left(&server).await;
}

// ---- Endpoints ----

/// Dropping the server ends every link: clients get what was sent, then `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_closes_its_links() {
    let (mut server, connector) = bind(ZmqOptions::default()).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    server.send(peer, Bytes::from_static(b"bye")).unwrap();
    assert_eq!(within("a frame", client.recv()).await.unwrap(), Bytes::from_static(b"bye"));
    drop(server);
    assert_eq!(within("the end of the link", client.recv()).await, Err(TransportError::Closed));
    assert_eq!(client.send(Bytes::from_static(b"x")), Err(TransportError::Closed));
    // Nobody listens there any more.
    let again = ZmqConnector::new(
        &connector.describe(),
        ZmqOptions { connect_timeout: Duration::from_millis(300), ..ZmqOptions::default() },
    )
    .unwrap();
    assert!(matches!(again.connect().await, Err(TransportError::Connect { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_endpoints_are_refused_with_a_reason() {
    let taken = ZmqServer::bind("tcp://127.0.0.1:0", ZmqOptions::default()).await.unwrap();
    for endpoint in
        ["127.0.0.1:7879", "udp://127.0.0.1:7879", "tcp://127.0.0.1", &taken.local_addr()]
    {
        match ZmqServer::bind(endpoint, ZmqOptions::default()).await {
            Err(TransportError::Listen { addr, reason }) => {
                assert_eq!(addr, endpoint);
                assert!(!reason.is_empty());
            }
            other => panic!("binding {endpoint} gave {other:?}"),
        }
    }
    assert!(matches!(
        ZmqConnector::new("game.example:7879", ZmqOptions::default()),
        Err(TransportError::Connect { .. })
    ));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_endpoints_work() {
    let path = std::env::temp_dir().join(format!("pong-zmq-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let endpoint = format!("ipc://{}", path.display());
    let mut server = ZmqServer::bind(&endpoint, ZmqOptions::default()).await.unwrap();
    assert_eq!(server.local_addr(), endpoint);
    let connector = ZmqConnector::new(&endpoint, ZmqOptions::default()).unwrap();
    let (mut client, peer) = open(&mut server, &connector).await;
    server.send(peer, Bytes::from_static(b"over ipc")).unwrap();
    assert_eq!(within("a frame", client.recv()).await.unwrap(), Bytes::from_static(b"over ipc"));
    drop(server);
    assert!(!path.exists(), "the ipc socket file was left behind");
}

/// ipc connections have no address: they count against `max_connections` only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_connections_count_against_the_total_only() {
    let path = std::env::temp_dir().join(format!("pong-zmq-cap-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let endpoint = format!("ipc://{}", path.display());
    let options =
        ZmqOptions { max_connections: 2, max_connections_per_address: 1, ..ZmqOptions::default() };
    let mut server = ZmqServer::bind(&endpoint, options).await.unwrap();
    let connector = ZmqConnector::new(&endpoint, options).unwrap();
    let (mut one, one_peer) = open(&mut server, &connector).await;
    let (_two, _) = open(&mut server, &connector).await;

    let mut third = tokio::net::UnixStream::connect(&path).await.unwrap();
    let _ = third.write_all(&greeting()).await;
    let mut byte = [0_u8; 1];
    match within("the third connection to close", third.read(&mut byte)).await {
        Ok(0) | Err(_) => {}
        Ok(_) => panic!("a third ipc connection was relayed"),
    }
    let stats = server.stats();
    assert_eq!(
        (stats.refused_max_connections, stats.refused_max_connections_per_address),
        (1, 0),
        "{stats:?}"
    );
    server.send(one_peer, Bytes::from_static(b"over ipc")).unwrap();
    assert_eq!(within("a frame", one.recv()).await.unwrap(), Bytes::from_static(b"over ipc"));
    drop(server);
}
