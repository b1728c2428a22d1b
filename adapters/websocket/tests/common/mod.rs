//! Helpers the WebSocket test files share: bounded waits, server event filters, and raw
//! tungstenite clients that misbehave in ways `WsClient` never would.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use pong_ports::{ClientTransport, Frame, Incoming, PeerId, ServerTransport};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;

/// The longest any test waits for one thing.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// The next server event.
pub async fn next_event(server: &mut impl ServerTransport) -> Incoming {
    within("a server event", server.recv()).await.expect("server recv")
}

/// Waits for the next `Connected` and returns its peer, skipping everything else.
pub async fn next_connected(server: &mut impl ServerTransport) -> PeerId {
    loop {
        if let Incoming::Connected { peer, .. } = next_event(server).await {
            return peer;
        }
    }
}

/// The next frame from `peer`; panics if `peer` is reported gone first.
pub async fn next_frame_from(server: &mut impl ServerTransport, peer: PeerId) -> Frame {
    loop {
        match next_event(server).await {
            Incoming::Frame { from, frame } if from == peer => return frame,
            Incoming::Gone { peer: gone, reason } if gone == peer => {
                panic!("{peer} went ({reason}) while a frame was expected")
            }
            _ => {}
        }
    }
}

/// Waits for `Gone` of `peer` and returns its reason; panics on any frame from `peer`.
pub async fn expect_gone(server: &mut impl ServerTransport, peer: PeerId) -> String {
    loop {
        match next_event(server).await {
            Incoming::Gone { peer: gone, reason } if gone == peer => return reason,
            Incoming::Frame { from, frame } if from == peer => {
                panic!("{peer} delivered {frame:?} instead of being dropped")
            }
            _ => {}
        }
    }
}

/// One frame each way between the server and a client known as `peer`.
pub async fn round_trip(
    server: &mut impl ServerTransport,
    client: &mut dyn ClientTransport,
    peer: PeerId,
    tag: u8,
) {
    let frame = Frame::from(vec![tag, 1, 2, 3]);
    server.send(peer, frame.clone()).expect("server send");
    assert_eq!(within("a frame at the client", client.recv()).await.expect("client recv"), frame);
    client.send(frame.clone()).expect("client send");
    assert_eq!(next_frame_from(server, peer).await, frame);
}

/// Connects a client and learns its peer id from a hello frame.
pub async fn hello(
    server: &mut impl ServerTransport,
    client: &dyn ClientTransport,
    tag: u8,
) -> PeerId {
    let frame = Frame::from(vec![b'H', tag]);
    client.send(frame.clone()).expect("client send of a hello");
    loop {
        if let Incoming::Frame { from, frame: got } = next_event(server).await
            && got == frame
        {
            return from;
        }
    }
}

/// A raw tungstenite client (no limits of ours) on a plain `ws://` URL.
pub async fn raw_client(url: &str) -> WebSocketStream<TcpStream> {
    let addr = url.trim_start_matches("ws://");
    let tcp = within("TCP connect", TcpStream::connect(addr)).await.expect("TCP connect");
    let (ws, _) = within("WebSocket handshake", tokio_tungstenite::client_async(url, tcp))
        .await
        .expect("WebSocket handshake");
    ws
}
