//! What the WebSocket transport does beyond the conformance suite: misbehaving clients,
//! slow clients, idle and half-open connections, the connection cap, keepalive, close
//! reasons, and connect errors. Real loopback sockets, generous timeouts only.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{WAIT, expect_gone, hello, next_connected, raw_client, round_trip, within};
use futures_util::{SinkExt, StreamExt};
use pong_ports::{Connector, Frame, MatchId, ServerTransport, TransportError};
use pong_transport_ws::{WsConnector, WsOptions, WsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn server(options: WsOptions) -> (WsServer, WsConnector) {
    let server = WsServer::bind("127.0.0.1:0", options.clone()).unwrap();
    let connector = WsConnector::new(&server.local_addr(), options).unwrap();
    (server, connector)
}

/// The close code a raw client receives next, or `None` if the connection ends without one.
async fn close_code(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> Option<CloseCode> {
    loop {
        match within("a close frame", ws.next()).await {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_drops_only_its_sender() {
    let (mut server, connector) = server(WsOptions::default());
    let group = MatchId(1);
    let mut good = connector.connect().await.unwrap();
    let good_peer = hello(&mut server, &*good, 1).await;
    server.join_group(good_peer, group).unwrap();

    // A text frame: refused with 1003, never delivered.
    let mut text = raw_client(&server.local_addr()).await;
    let text_peer = next_connected(&mut server).await;
    text.send(Message::text("hello")).await.unwrap();
    let reason = expect_gone(&mut server, text_peer).await;
    assert!(reason.contains("text"), "unexpected reason {reason:?}");
    assert_eq!(close_code(&mut text).await, Some(CloseCode::Unsupported));
    round_trip(&mut server, &mut *good, good_peer, 1).await;

    // A frame one byte over the limit: refused with 1009, never delivered.
    let mut big = raw_client(&server.local_addr()).await;
    let big_peer = next_connected(&mut server).await;
    let oversized = vec![7_u8; server.max_frame_len() + 1];
    big.send(Message::binary(oversized)).await.unwrap();
    let reason = expect_gone(&mut server, big_peer).await;
    assert!(reason.contains("exceeds"), "unexpected reason {reason:?}");
    // The server closes with 1009; the unread payload may turn its FIN into a reset, so
    // the frame is not always seen.
    let code = close_code(&mut big).await;
    assert!(matches!(code, Some(CloseCode::Size) | None), "unexpected close {code:?}");
    server.publish(group, Frame::from_static(b"after big")).unwrap();
    assert_eq!(within("publish", good.recv()).await.unwrap(), Frame::from_static(b"after big"));

    // Bytes that are not WebSocket framing at all (reserved opcode and bits, unmasked).
    let mut garbage = raw_client(&server.local_addr()).await;
    let garbage_peer = next_connected(&mut server).await;
    garbage.get_mut().write_all(&[0xFF; 16]).await.unwrap();
    let reason = expect_gone(&mut server, garbage_peer).await;
    assert!(reason.contains("protocol error"), "unexpected reason {reason:?}");

    // A client that vanishes without a close frame is reported at once.
    let rude = raw_client(&server.local_addr()).await;
    let rude_peer = next_connected(&mut server).await;
    drop(rude);
    expect_gone(&mut server, rude_peer).await;

    // The good client never noticed.
    server.publish(group, Frame::from_static(b"still here")).unwrap();
    assert_eq!(within("publish", good.recv()).await.unwrap(), Frame::from_static(b"still here"));
    round_trip(&mut server, &mut *good, good_peer, 2).await;
    assert_eq!(server.peers(), vec![good_peer]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_disconnected_and_a_fast_one_keeps_up() {
    const WINDOW: usize = 64;
    const MAX_FRAMES: usize = 200_000;
    let options = WsOptions::default()
        .with_queue_capacity(256)
        .with_close_timeout(Duration::from_millis(300));
    let (mut server, connector) = server(options.clone());
    let mut fast = connector.connect().await.unwrap();
    let fast_peer = hello(&mut server, &*fast, 1).await;
    // The slow client buffers only a few frames and never reads them.
    let slow_connector =
        WsConnector::new(&server.local_addr(), options.with_queue_capacity(4)).unwrap();
    let mut slow = slow_connector.connect().await.unwrap();
    let slow_peer = hello(&mut server, &*slow, 2).await;

    let received = Arc::new(AtomicUsize::new(0));
    let reader = tokio::spawn({
        let received = Arc::clone(&received);
        async move {
            let mut next = 0_u32;
            loop {
                let frame = fast.recv().await.unwrap();
                if frame.as_ref() == b"end" {
                    return (fast, next);
                }
                assert_eq!(frame[..4], next.to_be_bytes(), "fast client lost or reordered a frame");
                next += 1;
                received.store(next as usize, Ordering::Release);
            }
        }
    });

    let sent = within("the slow client to overflow", async {
        let mut sent = 0_usize;
        loop {
            assert!(sent < MAX_FRAMES, "the slow client was never disconnected");
            while sent - received.load(Ordering::Acquire) >= WINDOW {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let mut frame = vec![0_u8; 1000];
            frame[..4].copy_from_slice(&(sent as u32).to_be_bytes());
            let frame = Frame::from(frame);
            server.send(fast_peer, frame.clone()).expect("the fast client keeps up");
            match server.send(slow_peer, frame) {
                Ok(()) => {}
                Err(TransportError::Backpressure(peer)) => {
                    assert_eq!(peer, slow_peer);
                    break sent + 1;
                }
                Err(other) => panic!("send to the slow client returned {other:?}"),
            }
            sent += 1;
            if sent.is_multiple_of(16) {
                tokio::task::yield_now().await;
            }
        }
    })
    .await;

    let reason = expect_gone(&mut server, slow_peer).await;
    assert!(reason.contains("overflow"), "unexpected reason {reason:?}");
    assert!(matches!(
        server.send(slow_peer, Frame::from_static(b"x")),
        Err(TransportError::UnknownPeer(_))
    ));
    server.send(fast_peer, Frame::from_static(b"end")).unwrap();
    let (mut fast, got) = within("the fast client", reader).await.unwrap();
    assert_eq!(got as usize, sent, "the fast client missed frames");
    round_trip(&mut server, &mut *fast, fast_peer, 3).await;

    // The slow client sees what reached it, then the end of its link.
    within("the slow client's link to end", async { while slow.recv().await.is_ok() {} }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_stop_a_normal_client() {
    const IDLE: usize = 1000;
    let (mut server, connector) = server(WsOptions::default());
    let url = server.local_addr();
    let addr = url.trim_start_matches("ws://").to_owned();

    // Half never send a byte (half-open), half finish the WebSocket handshake and go quiet.
    let mut opening = tokio::task::JoinSet::new();
    for index in 0..IDLE {
        let (url, addr) = (url.clone(), addr.clone());
        opening.spawn(async move {
            let tcp = TcpStream::connect(&addr).await.unwrap();
            if index % 2 == 0 {
                (Some(tcp), None)
            } else {
                let (ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp).await.unwrap();
                (None, Some(ws))
            }
        });
    }
    let idle = within("a thousand connections", opening.join_all()).await;
    assert_eq!(idle.len(), IDLE);

    let mut client = connector.connect().await.unwrap();
    let peer = hello(&mut server, &*client, 1).await;
    for round in 0..50 {
        round_trip(&mut server, &mut *client, peer, round).await;
    }
    // Every handshaken connection is served (the server side of a handshake may finish a
    // little after the client side).
    within("every handshaken connection to be registered", async {
        while server.peers().len() < IDLE / 2 + 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_until_one_leaves() {
    let options = WsOptions::default().with_max_connections(2);
    let (mut server, connector) = server(options);
    let mut first = connector.connect().await.unwrap();
    let first_peer = hello(&mut server, &*first, 1).await;
    let second = connector.connect().await.unwrap();
    hello(&mut server, &*second, 2).await;

    match within("a refused connect", connector.connect()).await {
        Err(TransportError::Connect { addr, reason }) => {
            assert_eq!(addr, server.local_addr());
            assert!(reason.contains("handshake"), "unexpected reason {reason:?}");
        }
        Ok(_) => panic!("a third connection was accepted over a cap of 2"),
        Err(other) => panic!("unexpected error {other}"),
    }

    first.close().await;
    let reason = expect_gone(&mut server, first_peer).await;
    assert_eq!(reason, "closed by the peer (1000 closed by the client)");
    // The slot comes back once the connection task has finished; retry until it has.
    let mut third = within("a slot to free up", async {
        loop {
            if let Ok(client) = connector.connect().await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let third_peer = hello(&mut server, &*third, 3).await;
    round_trip(&mut server, &mut *third, third_peer, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_handshake_is_cut_off() {
    let options = WsOptions::default().with_handshake_timeout(Duration::from_millis(200));
    let (server, _) = server(options);
    let addr = server.local_addr().trim_start_matches("ws://").to_owned();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0_u8; 16];
    // The server closes the socket: end of stream (or a reset).
    let read = within("the server to close a silent socket", tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "got {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_closes_a_silent_peer_and_spares_a_live_one() {
    let options = WsOptions::default()
        .with_ping_interval(Duration::from_millis(50))
        .with_keepalive_timeout(Duration::from_millis(400));
    let (mut server, connector) = server(options);
    let mut live = connector.connect().await.unwrap();
    let live_peer = hello(&mut server, &*live, 1).await;
    // Never polled, so it never answers the server's pings.
    let silent = raw_client(&server.local_addr()).await;
    let silent_peer = next_connected(&mut server).await;

    let reason = expect_gone(&mut server, silent_peer).await;
    assert!(reason.contains("keepalive"), "unexpected reason {reason:?}");
    // The live client idles through many keepalive periods; its reader answers pings.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    round_trip(&mut server, &mut *live, live_peer, 1).await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_and_shutdown_close_with_a_reason() {
    let (mut server, connector) = server(WsOptions::default());
    let mut kicked = raw_client(&server.local_addr()).await;
    let kicked_peer = next_connected(&mut server).await;
    server.send(kicked_peer, Frame::from_static(b"last words")).unwrap();
    server.disconnect(kicked_peer).unwrap();
    assert_eq!(
        within("a frame", kicked.next()).await.unwrap().unwrap(),
        Message::binary(&b"last words"[..])
    );
    match within("a close frame", kicked.next()).await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Normal);
            assert_eq!(frame.reason.as_str(), "disconnected by the server");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let reason = expect_gone(&mut server, kicked_peer).await;
    assert_eq!(reason, "disconnected by the server");

    let mut raw = raw_client(&server.local_addr()).await;
    let mut client = connector.connect().await.unwrap();
    let peer = hello(&mut server, &*client, 1).await;
    server.send(peer, Frame::from_static(b"bye")).unwrap();
    drop(server);
    match within("a close frame", raw.next()).await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Away);
            assert_eq!(frame.reason.as_str(), "server shutting down");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(within("a frame", client.recv()).await.unwrap(), Frame::from_static(b"bye"));
    assert_eq!(within("the end", client.recv()).await, Err(TransportError::Closed));
    assert_eq!(client.send(Frame::from_static(b"x")), Err(TransportError::Closed));
    // The server is gone, so reconnecting fails with a connect error.
    assert!(matches!(
        within("a refused connect", connector.connect()).await,
        Err(TransportError::Connect { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_closed_port_fails_promptly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("ws://127.0.0.1:{port}");
    let connector = WsConnector::new(&url, WsOptions::default()).unwrap();
    let started = std::time::Instant::now();
    match within("a refused connect", connector.connect()).await {
        Err(error @ TransportError::Connect { .. }) => {
            assert_eq!(error.to_string(), format!("cannot reach {url}: connection refused"));
        }
        Ok(_) => panic!("connected to a closed port"),
        Err(other) => panic!("unexpected error {other}"),
    }
    assert!(started.elapsed() < WAIT);
    assert_eq!(connector.describe(), url);
}

#[test]
fn bad_urls_and_addresses_are_refused() {
    for url in ["http://127.0.0.1:1", "127.0.0.1:80", "ws://", "not a url"] {
        assert!(
            matches!(
                WsConnector::new(url, WsOptions::default()),
                Err(TransportError::Connect { .. })
            ),
            "{url} was accepted"
        );
    }
    #[cfg(not(feature = "tls"))]
    assert!(matches!(
        WsConnector::new("wss://127.0.0.1:1", WsOptions::default()),
        Err(TransportError::Connect { .. })
    ));
    // No runtime: a typed error, not a panic.
    assert!(matches!(
        WsServer::bind("127.0.0.1:0", WsOptions::default()),
        Err(TransportError::Listen { .. })
    ));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        assert!(matches!(
            WsServer::bind("127.0.0.1:99999", WsOptions::default()),
            Err(TransportError::Listen { .. })
        ));
        let taken = WsServer::bind("127.0.0.1:0", WsOptions::default()).unwrap();
        let addr = taken.local_addr().trim_start_matches("ws://").to_owned();
        // SO_REUSEADDR does not let two listeners share a port.
        assert!(matches!(
            WsServer::bind(&addr, WsOptions::default()),
            Err(TransportError::Listen { .. })
        ));
    });
}
