//! Focused checks of the RabbitMQ transport against a real broker, beyond the conformance
//! suite: the start handshake (first frame, subscribe then publish), vanished peers (killed
//! connections, overflowing queues), heartbeats over an idle spell, what a hostile or
//! confused peer can put on the inbound queue, leave/join cycles, graceful shutdown and the
//! wording of connection errors. See `tests/common` for how the broker is found.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use pong_ports::{ClientTransport, Incoming, MatchId, PeerId, ServerTransport, TransportError};
use pong_transport_amqp::{AmqpClient, AmqpConnector, AmqpOptions, AmqpServer};

const WAIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The tests look for the broker where the adapter does when nothing else is said.
#[test]
fn the_tests_default_broker_is_the_adapters() {
    assert_eq!(pong_tests::broker::DEFAULT_URL, pong_transport_amqp::DEFAULT_URL);
}

/// The next frame at the server, with the link events before it.
async fn next_frame(server: &mut AmqpServer) -> (PeerId, Bytes, Vec<Incoming>) {
    let mut events = Vec::new();
    loop {
        match within("a frame at the server", server.recv()).await.unwrap() {
            Incoming::Frame { from, frame } => return (from, frame, events),
            other => events.push(other),
        }
    }
}

/// Waits for `Gone` of `peer` and returns its reason.
async fn gone(server: &mut AmqpServer, peer: PeerId) -> String {
    loop {
        match within("Gone at the server", server.recv()).await.unwrap() {
            Incoming::Gone { peer: gone, reason } if gone == peer => return reason,
            _ => {}
        }
    }
}

async fn recv(client: &mut AmqpClient) -> Bytes {
    within("a frame at the client", client.recv()).await.unwrap()
}

async fn expect_closed(client: &mut AmqpClient) {
    loop {
        match within("Closed at the client", client.recv()).await {
            Err(TransportError::Closed) => return,
            Ok(_) => {}
            Err(other) => panic!("recv returned {other:?}, not Closed"),
        }
    }
}

/// A server and a connector with the same options.
async fn start(url: &str, options: AmqpOptions) -> (AmqpServer, AmqpConnector) {
    let server = AmqpServer::connect(url, options.clone()).await.unwrap();
    let connector = AmqpConnector::new(url, options).unwrap();
    (server, connector)
}

/// Connects and learns the link's PeerId from a hello.
async fn open(server: &mut AmqpServer, connector: &AmqpConnector) -> (AmqpClient, PeerId) {
    let client = within("connect", connector.connect_client()).await.unwrap();
    client.send(Bytes::from_static(b"hello")).unwrap();
    let (peer, frame, _) = next_frame(server).await;
    assert_eq!(frame, Bytes::from_static(b"hello"));
    (client, peer)
}

fn numbered(n: u32) -> Bytes {
    Bytes::from(n.to_be_bytes().to_vec())
}

fn number(frame: &Bytes) -> u32 {
    u32::from_be_bytes(frame[..4].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_frame_after_connect_reaches_the_server_and_the_welcome_reaches_the_client() {
    let Some(url) = common::broker("first frame") else { return };
    let (mut server, connector) = start(&url, common::options("first")).await;
    for round in 0..20_u32 {
        let mut client = within("connect", connector.connect_client()).await.unwrap();
        // Sent the instant connect() returns: the server's queue was checked to be consumed.
        client.send(numbered(round)).unwrap();
        let (peer, frame, events) = next_frame(&mut server).await;
        assert_eq!(number(&frame), round);
        assert!(
            events.iter().any(|e| matches!(e, Incoming::Connected { peer: p, .. } if *p == peer)),
            "no Connected before the first frame"
        );
        // Answered at once, like a Welcome: the client's queue was consumed before connect()
        // returned, so this cannot be missed.
        server.send(peer, numbered(round + 1000)).unwrap();
        assert_eq!(number(&recv(&mut client).await), round + 1000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_right_after_subscribe_all_arrive_in_order() {
    let Some(url) = common::broker("subscribe then publish") else { return };
    let (mut server, connector) = start(&url, common::options("subscribe")).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    for round in 0..10_u32 {
        let group = MatchId(500 + round);
        // Published before the join: never delivered, even if it reaches the broker late.
        server.publish(group, numbered(u32::MAX)).unwrap();
        server.join_group(peer, group).unwrap();
        within("subscribe", client.subscribe(group)).await.unwrap();
        // A burst the instant subscribe returns, interleaved with direct sends.
        for n in 0..200 {
            if n % 7 == 0 {
                server.send(peer, numbered(round * 1000 + n)).unwrap();
            } else {
                server.publish(group, numbered(round * 1000 + n)).unwrap();
            }
        }
        for n in 0..200 {
            assert_eq!(number(&recv(&mut client).await), round * 1000 + n, "lost or reordered");
        }
    }
    // Those before-the-join publishes that reached the broker after the binding were dropped
    // by the client; the others found no binding. None was delivered (checked above).
    assert!(client.stats().filtered <= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_then_join_again_stops_then_resumes_a_group() {
    let Some(url) = common::broker("leave and join") else { return };
    let (mut server, connector) = start(&url, common::options("leave")).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    let group = MatchId(7);
    server.join_group(peer, group).unwrap();
    client.subscribe(group).await.unwrap();
    server.publish(group, numbered(1)).unwrap();
    server.leave_group(peer, group).unwrap();
    server.publish(group, numbered(2)).unwrap(); // Right after the leave: dropped.
    server.join_group(peer, group).unwrap();
    within("subscribe", client.subscribe(group)).await.unwrap();
    server.publish(group, numbered(3)).unwrap();
    assert_eq!(number(&recv(&mut client).await), 1);
    assert_eq!(number(&recv(&mut client).await), 3, "a publish between leave and join arrived");
    assert_eq!(client.stats().filtered, 1);
    // Leaving a group one is not in, or twice, is fine.
    server.leave_group(peer, MatchId(99)).unwrap();
    server.leave_group(peer, group).unwrap();
    server.leave_group(peer, group).unwrap();
    server.publish(group, numbered(4)).unwrap();
    server.send(peer, numbered(5)).unwrap();
    assert_eq!(number(&recv(&mut client).await), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_connection_is_killed_is_reported_gone() {
    let Some(url) = common::broker_with_rabbitmqctl("killed connection") else { return };
    let options =
        AmqpOptions { probe_interval: Duration::from_millis(200), ..common::options("killed") };
    let (mut server, connector) = start(&url, options).await;
    let (mut victim, victim_peer) = open(&mut server, &connector).await;
    let (mut witness, witness_peer) = open(&mut server, &connector).await;

    // As an operator would (or the broker itself after missed heartbeats): no goodbye.
    common::kill_connection(victim.connection_name()).unwrap();

    let reason = gone(&mut server, victim_peer).await;
    assert!(reason.contains("queue is gone"), "unexpected reason: {reason}");
    expect_closed(&mut victim).await;
    assert!(matches!(victim.send(numbered(1)), Err(TransportError::Closed)));
    assert!(matches!(server.send(victim_peer, numbered(1)), Err(TransportError::UnknownPeer(_))));
    assert!(server.stats().returned >= 1, "the probe was not returned: {:?}", server.stats());

    // The other link is untouched.
    server.send(witness_peer, numbered(2)).unwrap();
    assert_eq!(number(&recv(&mut witness).await), 2);
    witness.send(numbered(3)).unwrap();
    let (from, frame, _) = next_frame(&mut server).await;
    assert_eq!((from, number(&frame)), (witness_peer, 3));
}

/// Only the server's own broker connection is lost (an operator closes it; a network fault
/// between server and broker): every peer is reported gone at once, and once reconnected
/// the server ends the links whose queues survived, so their clients reconnect as new peers
/// instead of waiting on a server that no longer knows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_connection_cuts_every_link_and_ends_those_that_survived_it() {
    let Some(url) = common::broker_with_rabbitmqctl("server connection killed") else { return };
    let options = AmqpOptions {
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(500),
        ..common::options("cut")
    };
    let (mut server, connector) = start(&url, options).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    let prefix = format!("pong-server/{}/", server.options().server_name);
    common::kill_connection_named_like(&prefix).unwrap();

    let reason = gone(&mut server, peer).await;
    assert!(reason.contains("broker connection"), "unexpected reason: {reason}");
    // The client's own connection and queue were never touched: the server's `close`, sent
    // when it is back, ends the link.
    expect_closed(&mut client).await;
    assert!(server.is_connected() && server.stats().reconnects >= 1);
    let (mut again, again_peer) = open(&mut server, &connector).await;
    assert_ne!(again_peer, peer);
    server.send(again_peer, numbered(1)).unwrap();
    assert_eq!(number(&recv(&mut again).await), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_stay_up_through_an_idle_spell_longer_than_the_heartbeat() {
    let Some(url) = common::broker("idle beyond heartbeat") else { return };
    let options = AmqpOptions {
        heartbeat: Duration::from_secs(1),
        // No probes: nothing but heartbeats crosses either connection while idle.
        probe_interval: Duration::from_secs(3600),
        ..common::options("idle")
    };
    let (mut server, connector) = start(&url, options).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    assert_eq!(client.heartbeat(), Duration::from_secs(1), "the 1 s heartbeat was not agreed");

    // Both ends idle for 6 heartbeats: a link that did not send heartbeats would be closed by
    // the broker after about 2 (and lapin closes one that receives none).
    tokio::time::sleep(Duration::from_secs(6)).await;

    server.send(peer, numbered(1)).unwrap();
    assert_eq!(number(&recv(&mut client).await), 1);
    client.send(numbered(2)).unwrap();
    let (from, frame, events) = next_frame(&mut server).await;
    assert_eq!((from, number(&frame)), (peer, 2));
    assert!(events.is_empty(), "link events during the idle spell: {events:?}");
    assert!(server.is_connected());
    assert_eq!(server.stats().reconnects, 0, "the server's connection dropped while idle");
}

/// The negative control of the test above, and the prototype's failure: heartbeats are sent
/// by a task on the caller's runtime, so a runtime that is blocked (here, a single-threaded
/// one put to sleep) sends none, and the broker closes the link. The adapter cannot help a
/// blocked runtime; it turns the loss into `Closed` at the client and a reconnect at the
/// server instead of a crash.
#[tokio::test(flavor = "current_thread")]
async fn a_blocked_runtime_cannot_service_heartbeats_and_the_loss_is_reported() {
    let Some(url) = common::broker("blocked runtime") else { return };
    let options = AmqpOptions {
        heartbeat: Duration::from_secs(1),
        probe_interval: Duration::from_secs(3600),
        reconnect_min: Duration::from_millis(50),
        ..common::options("blocked")
    };
    let (mut server, connector) = start(&url, options).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    server.send(peer, numbered(1)).unwrap();
    assert_eq!(number(&recv(&mut client).await), 1);

    #[allow(clippy::disallowed_methods)] // Blocking on purpose: that is the point.
    std::thread::sleep(Duration::from_secs(5));

    expect_closed(&mut client).await;
    within("the server's reconnect", async {
        while server.stats().reconnects == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_keep_up_is_disconnected_not_buffered() {
    let Some(url) = common::broker("overflow") else { return };
    let options = AmqpOptions {
        client_queue_max_len: 16,
        prefetch: 4,
        recv_buffer: 4,
        ..common::options("overflow")
    };
    let (mut server, connector) = start(&url, options).await;
    let (mut slow, peer) = open(&mut server, &connector).await;
    // Far more than the client's queue and buffers hold, while it does not read.
    let mut refused = 0;
    for n in 0..500 {
        if server.send(peer, numbered(n)).is_err() {
            refused += 1;
        }
    }
    let reason = gone(&mut server, peer).await;
    assert!(reason.contains("overflowed"), "unexpected reason: {reason}");
    assert!(server.stats().dead_lettered > 0);
    // The client reads its backlog (the newest frames: drop-head), then learns it is closed.
    let mut last = None;
    loop {
        match within("the slow client's backlog", slow.recv()).await {
            Ok(frame) => {
                let n = number(&frame);
                assert!(last.is_none_or(|last| n > last), "backlog out of order");
                last = Some(n);
            }
            Err(TransportError::Closed) => break,
            Err(other) => panic!("recv returned {other:?}"),
        }
    }
    assert!(last.is_some(), "the slow client got none of its backlog");
    let _ = refused; // Sends after the disconnect fail with UnknownPeer: any count is fine.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_the_inbound_queue_is_dropped_and_counted() {
    let Some(url) = common::broker("junk") else { return };
    let options = common::options("junk");
    let inbound = options.inbound_queue();
    let (mut server, connector) = start(&url, options).await;
    let (client, peer) = open(&mut server, &connector).await;

    // A raw AMQP publisher puts what a confused or hostile peer could on the server's queue.
    let raw = Connection::connect(&url, ConnectionProperties::default()).await.unwrap();
    let channel = raw.create_channel().await.unwrap();
    let publish = async |body: &[u8], properties: BasicProperties| {
        channel
            .basic_publish(
                "".into(),
                inbound.clone().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap();
    };
    let me = client.queue_name().to_owned();
    publish(b"no reply_to", BasicProperties::default()).await;
    publish(b"named", BasicProperties::default().with_reply_to("pong.x.in".into())).await;
    publish(&vec![0; 100_000], BasicProperties::default().with_reply_to(me.clone().into())).await;
    publish(
        b"?",
        BasicProperties::default().with_reply_to(me.clone().into()).with_type("x".into()),
    )
    .await;
    publish(
        b"",
        BasicProperties::default()
            .with_reply_to("amq.gen-nobody".into())
            .with_type("pong.bye".into()),
    )
    .await;
    // A goodbye forged under the client's queue name ends nothing: the queue is alive.
    publish(
        b"",
        BasicProperties::default().with_reply_to(me.clone().into()).with_type("pong.bye".into()),
    )
    .await;
    // Someone else's queue name in reply_to: only an address, delivered as a frame of that
    // link (the game protocol's signatures, not the transport, decide who spoke). Published
    // last on the same channel, so everything above was handled when it arrives.
    publish(b"spoofed", BasicProperties::default().with_reply_to(me.clone().into())).await;

    let (from, frame, _) = next_frame(&mut server).await;
    assert_eq!((from, frame), (peer, Bytes::from_static(b"spoofed")));
    client.send(Bytes::from_static(b"after")).unwrap();
    let (from, frame, _) = next_frame(&mut server).await;
    assert_eq!((from, frame), (peer, Bytes::from_static(b"after")));
    let stats = server.stats();
    assert_eq!(
        (
            stats.refused_no_reply_to,
            stats.refused_bad_reply_to,
            stats.refused_oversized,
            stats.refused_unknown
        ),
        (1, 1, 1, 1),
        "{stats:?}"
    );
    let _ = raw.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_client_links_and_refuses_new_ones() {
    let Some(url) = common::broker("shutdown") else { return };
    let (mut server, connector) = start(&url, common::options("shutdown")).await;
    let (mut client, peer) = open(&mut server, &connector).await;
    server.send(peer, numbered(1)).unwrap();
    server.disconnect(peer).unwrap();
    assert_eq!(number(&recv(&mut client).await), 1, "a frame queued before disconnect was lost");
    expect_closed(&mut client).await;

    let (mut client, _) = open(&mut server, &connector).await;
    within("shutdown", server.shutdown()).await;
    // The server's queue is gone, so the next frame bounces and the link ends.
    client.send(numbered(2)).unwrap();
    expect_closed(&mut client).await;
    let error = connector.connect_client().await.unwrap_err();
    assert!(
        matches!(&error, TransportError::Connect { reason, .. } if reason.contains("no pong server named")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_say_what_went_wrong() {
    let Some(url) = common::broker("errors") else { return };
    let error = AmqpServer::connect("amqp://guest:guest@127.0.0.1:1/%2f", common::options("e"))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "cannot reach amqp://127.0.0.1:1: connection refused");

    let options = common::options("errors");
    let connector = AmqpConnector::new(&url, options.clone()).unwrap();
    let error = connector.connect_client().await.unwrap_err();
    assert!(error.to_string().contains("no pong server named"), "{error}");

    let server = AmqpServer::connect(&url, options.clone()).await.unwrap();
    let error = AmqpServer::connect(&url, options.clone()).await.unwrap_err();
    assert!(
        matches!(&error, TransportError::Listen { reason, .. } if reason.contains("already running")),
        "{error}"
    );

    let mut uri: lapin::uri::AMQPUri = url.parse().unwrap();
    uri.authority.userinfo.password = "certainly-not-the-password".to_owned();
    let bad_login = format!(
        "amqp://{}:{}@{}:{}/%2f",
        uri.authority.userinfo.username,
        uri.authority.userinfo.password,
        uri.authority.host,
        uri.authority.port
    );
    let error =
        AmqpConnector::new(&bad_login, options).unwrap().connect_client().await.unwrap_err();
    tracing::info!(%error, "a wrong password reads");
    assert!(matches!(error, TransportError::Connect { .. }), "{error:?}");
    assert!(!error.to_string().contains("certainly-not"), "the password leaked: {error}");
    drop(server);
}
