//! The transport conformance suite: one check per MUST rule of [`pong_ports::transport`].
//!
//! An adapter joins the suite by implementing [`Harness`] (a fresh server endpoint and a
//! connector to it) and expanding [`conformance_tests!`](crate::conformance_tests), which
//! generates one named `#[test]` per rule:
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! use std::sync::Arc;
//!
//! use pong_ports::{Connector, ServerTransport};
//! use pong_tests::conformance::Harness;
//! use pong_transport_memory::MemoryHub;
//!
//! struct Memory;
//!
//! #[async_trait::async_trait]
//! impl Harness for Memory {
//!     async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
//!         let hub = MemoryHub::default();
//!         (Box::new(hub.server().unwrap()), Arc::new(hub.connector()))
//!     }
//! }
//!
//! pong_tests::conformance_tests!(Memory);
//! # fn main() {}
//! ```
//!
//! [`run_all`] runs every rule in one go instead.
//!
//! # How the checks are written
//! - Real adapters run them over real sockets and brokers, so they use real time, never
//!   assert a latency, and wrap every wait in [`WAIT`] (10 s): a broken adapter fails with a
//!   message naming what it was waiting for instead of hanging.
//! - Transports need not report [`Incoming::Connected`], so a test learns a link's
//!   [`PeerId`] from the first frame it sends (a "hello"), and ignores link events it is
//!   not looking at.
//! - Queues are bounded, so bulk traffic goes in lockstep batches or behind a window far
//!   below any sensible queue capacity; only rule 7 overflows a queue on purpose.
//! - Synchronous calls (`send`, `publish`, group calls) that could block run on a blocking
//!   thread under a timeout, since a blocked thread cannot be interrupted by a tokio timer.
//! - Frames carry a kind byte, a sequence number and a padding whose length varies with the
//!   sequence number, so framing bugs (split or merged frames) show up as bad frames.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pong_ports::{
    ClientTransport, Connector, Frame, Incoming, MatchId, PeerId, ServerTransport, TransportError,
};

/// The longest any single check waits for one thing before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Frames each way in the bulk checks (rules 1 and 2).
pub const BULK_FRAMES: u32 = 5_000;

/// Frames in flight at most in the windowed checks; far below any adapter's queue.
const WINDOW: usize = 64;

/// Frames sent in one lockstep batch before they are read back.
const BATCH: u32 = 100;

/// What an adapter provides to be checked.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A fresh server endpoint and a connector to it. Called once per check; may panic if
    /// the endpoint cannot be set up (the check then fails with that message).
    async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>);
}

/// A [`Harness`] whose endpoints are made without waiting (an in-process transport): each
/// check calls the function once.
pub struct Fresh<F>(pub F);

#[async_trait]
impl<F> Harness for Fresh<F>
where
    F: Fn() -> (Box<dyn ServerTransport>, Arc<dyn Connector>) + Send + Sync,
{
    async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
        (self.0)()
    }
}

/// Runs one check on a fresh multi-thread tokio runtime (two workers, timers and IO on):
/// what `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` does, without
/// requiring tokio in the adapter's test crate. Used by [`conformance_tests!`](crate::conformance_tests).
///
/// # Panics
/// If the runtime cannot be built, or the check fails.
pub fn block_on<F: Future>(check: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime for the conformance suite")
        .block_on(check)
}

/// Runs every rule against `harness`, one after the other.
pub async fn run_all(harness: &dyn Harness) {
    order_is_kept(harness).await;
    no_loss_on_a_healthy_link(harness).await;
    publish_reaches_members_only(harness).await;
    oversized_frames_are_refused(harness).await;
    vanished_peers_are_reported(harness).await;
    reconnect_gets_a_new_peer_id(harness).await;
    sends_never_block(harness).await;
    recv_is_cancel_safe(harness).await;
    subscribe_is_confirmed(harness).await;
}

/// Generates one `#[test]` per rule of the Transport port for a [`Harness`] expression
/// (evaluated afresh in each test), each named after its check in
/// [`conformance`](crate::conformance) and run by [`block_on`].
///
/// ```text
/// pong_tests::conformance_tests!(MyHarness::new());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    (@rules $harness:expr; $($rule:ident,)+) => {
        $(
            #[test]
            fn $rule() {
                $crate::conformance::block_on(async {
                    let harness = $harness;
                    $crate::conformance::$rule(&harness).await;
                });
            }
        )+
    };
    ($harness:expr) => {
        $crate::conformance_tests!(@rules $harness;
            order_is_kept,
            no_loss_on_a_healthy_link,
            publish_reaches_members_only,
            oversized_frames_are_refused,
            vanished_peers_are_reported,
            reconnect_gets_a_new_peer_id,
            sends_never_block,
            recv_is_cancel_safe,
            subscribe_is_confirmed,
        );
    };
}

// ---------------------------------------------------------------------------------------
// The rules.
// ---------------------------------------------------------------------------------------

/// Rule 1: frames keep their order, client → server, and server → client whether sent
/// directly or through a group (the two interleaved).
pub async fn order_is_kept(harness: &dyn Harness) {
    let (mut server, connector) = harness.start().await;
    let mut link = open(&mut server, &*connector, 1).await;
    let group = MatchId(1);
    join(&*server, &mut link, group).await;

    for start in (0..BULK_FRAMES).step_by(BATCH as usize) {
        let end = (start + BATCH).min(BULK_FRAMES);
        for seq in start..end {
            link.client.send(data(UP, seq)).expect("client send on a healthy link");
        }
        for seq in start..end {
            let frame = next_frame_from(&mut server, link.peer).await;
            assert_eq!(seq_of(&frame, UP), seq, "client → server frames out of order");
        }
    }

    for start in (0..BULK_FRAMES).step_by(BATCH as usize) {
        let end = (start + BATCH).min(BULK_FRAMES);
        for seq in start..end {
            if seq % 3 == 0 {
                server.publish(group, data(DOWN, seq)).expect("publish on a healthy link");
            } else {
                server.send(link.peer, data(DOWN, seq)).expect("send on a healthy link");
            }
        }
        for seq in start..end {
            let frame = client_recv(&mut link).await;
            assert_eq!(seq_of(&frame, DOWN), seq, "server → client frames out of order");
        }
    }
}

/// Rule 2: on healthy links every frame arrives exactly once, with traffic flowing both
/// ways on several links at the same time.
pub async fn no_loss_on_a_healthy_link(harness: &dyn Harness) {
    const LINKS: usize = 3;
    let (mut server, connector) = harness.start().await;
    let mut links = Vec::new();
    for id in 0..LINKS {
        links.push(open(&mut server, &*connector, id as u8).await);
    }
    let per_link = BULK_FRAMES.div_ceil(LINKS as u32);
    let mut up_seen = vec![vec![false; per_link as usize]; LINKS];
    let mut down_seen = vec![vec![false; per_link as usize]; LINKS];

    for start in (0..per_link).step_by(BATCH as usize) {
        let end = (start + BATCH).min(per_link);
        for seq in start..end {
            for link in &links {
                link.client.send(data(UP, seq)).expect("client send on a healthy link");
                server.send(link.peer, data(DOWN, seq)).expect("server send on a healthy link");
            }
        }
        for _ in 0..(end - start) as usize * LINKS {
            let (from, frame) = next_frame(&mut server).await;
            let index = links
                .iter()
                .position(|l| l.peer == from)
                .unwrap_or_else(|| panic!("frame from unknown {from}"));
            let seq = seq_of(&frame, UP);
            mark_once(&mut up_seen[index], seq, "server");
        }
        for (index, link) in links.iter_mut().enumerate() {
            for _ in start..end {
                let seq = seq_of(&client_recv(link).await, DOWN);
                mark_once(&mut down_seen[index], seq, "client");
            }
        }
    }
    assert!(up_seen.iter().flatten().all(|&s| s), "the server missed client frames");
    assert!(down_seen.iter().flatten().all(|&s| s), "a client missed server frames");

    // Nothing extra is still on its way (a late duplicate would arrive before the marker).
    for link in &mut links {
        link.client.send(marker()).expect("client send on a healthy link");
        assert_eq!(next_frame_from(&mut server, link.peer).await, marker(), "extra frame");
        server.send(link.peer, marker()).expect("server send on a healthy link");
        assert_eq!(client_recv(link).await, marker(), "extra frame at a client");
    }
}

/// Rule 3: a publish reaches every member of the group and no one else, the server never
/// receives its own publishes, and a peer that left the group stops receiving them.
pub async fn publish_reaches_members_only(harness: &dyn Harness) {
    let (mut server, connector) = harness.start().await;
    let (red, blue, empty) = (MatchId(10), MatchId(20), MatchId(30));
    let mut a = open(&mut server, &*connector, 1).await;
    let mut b = open(&mut server, &*connector, 2).await;
    let mut c = open(&mut server, &*connector, 3).await;
    join(&*server, &mut a, red).await;
    join(&*server, &mut b, red).await;
    join(&*server, &mut c, blue).await;

    server.publish(empty, data(DOWN, 0)).expect("publishing to an empty group is fine");
    server.publish(red, data(DOWN, 1)).expect("publish");
    server.publish(blue, data(DOWN, 2)).expect("publish");
    for link in [&mut a, &mut b, &mut c] {
        server.send(link.peer, marker()).expect("send");
    }
    for link in [&mut a, &mut b] {
        assert_eq!(seq_of(&client_recv(link).await, DOWN), 1, "a red member missed a publish");
        assert_eq!(client_recv(link).await, marker(), "a red member got another group's publish");
    }
    assert_eq!(seq_of(&client_recv(&mut c).await, DOWN), 2, "the blue member missed a publish");
    assert_eq!(client_recv(&mut c).await, marker(), "a non-member got a publish");

    // The server's own publishes never come back to it: the next frame it sees is a's.
    a.client.send(marker()).expect("client send");
    let (from, frame) = next_frame(&mut server).await;
    assert_eq!((from, frame), (a.peer, marker()), "the server received its own publish");

    server.leave_group(b.peer, red).expect("leave_group");
    // A round trip on b's link, so a transport that applies group changes asynchronously
    // has had a chance to.
    round_trip(&mut server, &mut b).await;
    server.publish(red, data(DOWN, 3)).expect("publish");
    server.send(b.peer, marker()).expect("send");
    assert_eq!(seq_of(&client_recv(&mut a).await, DOWN), 3, "a remaining member missed a publish");
    assert_eq!(client_recv(&mut b).await, marker(), "a peer that left still got a publish");
}

/// Rule 4: `send` and `publish` refuse frames over `max_frame_len` with `FrameTooLarge`;
/// a client's oversized frame is refused by its `send` or, if sent, never delivered; a
/// frame of exactly the limit goes through.
pub async fn oversized_frames_are_refused(harness: &dyn Harness) {
    let (mut server, connector) = harness.start().await;
    let group = MatchId(4);
    let mut link = open(&mut server, &*connector, 1).await;
    join(&*server, &mut link, group).await;
    let server_max = server.max_frame_len();
    let client_max = link.client.max_frame_len();
    let limit = server_max.min(client_max);

    let big = filled(OVERSIZED, server_max + 1);
    assert!(
        matches!(server.send(link.peer, big.clone()), Err(TransportError::FrameTooLarge { .. })),
        "server send accepted a frame over max_frame_len"
    );
    assert!(
        matches!(server.publish(group, big), Err(TransportError::FrameTooLarge { .. })),
        "publish accepted a frame over max_frame_len"
    );

    // Over the client's own limit, and (if that is larger) over the server's.
    let mut oversized = vec![client_max + 1];
    if client_max > server_max {
        oversized.push(server_max + 1);
    }
    for len in oversized {
        match link.client.send(filled(OVERSIZED, len)) {
            Err(TransportError::FrameTooLarge { .. }) => {}
            Ok(()) if len <= client_max => {} // Over the server's limit only: must be dropped.
            other => panic!("client send of a {len}-byte frame returned {other:?}"),
        }
    }

    let largest = filled(LARGEST, limit);
    link.client.send(largest.clone()).expect("a frame of exactly the limit is accepted");
    link.client.send(marker()).expect("client send");
    assert_eq!(
        next_frame_from(&mut server, link.peer).await,
        largest,
        "an oversized frame arrived"
    );
    assert_eq!(next_frame_from(&mut server, link.peer).await, marker());

    server.send(link.peer, largest.clone()).expect("a frame of exactly the limit is accepted");
    server.send(link.peer, marker()).expect("send");
    assert_eq!(client_recv(&mut link).await, largest, "an oversized frame arrived");
    assert_eq!(client_recv(&mut link).await, marker());
}

/// Rule 5: a client that closes or vanishes is reported `Gone` exactly once; a client the
/// server disconnects receives what was queued for it and then `Closed`.
pub async fn vanished_peers_are_reported(harness: &dyn Harness) {
    let (mut server, connector) = harness.start().await;
    let mut closer = open(&mut server, &*connector, 1).await;
    let dropper = open(&mut server, &*connector, 2).await;
    let mut kicked = open(&mut server, &*connector, 3).await;

    within("close()", closer.client.close()).await;
    expect_gone(&mut server, closer.peer).await;
    drop(dropper.client);
    expect_gone(&mut server, dropper.peer).await;

    server.send(kicked.peer, data(DOWN, 1)).expect("send");
    server.send(kicked.peer, data(DOWN, 2)).expect("send");
    server.disconnect(kicked.peer).expect("disconnect");
    assert_eq!(seq_of(&client_recv(&mut kicked).await, DOWN), 1, "queued frame lost on disconnect");
    assert_eq!(seq_of(&client_recv(&mut kicked).await, DOWN), 2, "queued frame lost on disconnect");
    match within("recv after disconnect", kicked.client.recv()).await {
        Err(TransportError::Closed) => {}
        other => panic!("recv on a disconnected link returned {other:?}, not Closed"),
    }

    // No second Gone for the same link: everything up to a fresh link's hello is checked.
    let witness_hello = hello(9);
    let witness = within("connect", connector.connect()).await.expect("connect");
    witness.send(witness_hello.clone()).expect("client send");
    loop {
        match within("the server's next event", server.recv()).await.expect("server recv") {
            Incoming::Gone { peer, reason } => assert!(
                peer != closer.peer && peer != dropper.peer,
                "{peer} reported gone twice (again: {reason})"
            ),
            Incoming::Frame { frame, .. } if frame == witness_hello => break,
            _ => {}
        }
    }
}

/// Rule 6: the same connector connects again after a link is lost, the new link gets a new
/// `PeerId`, and frames flow on it both ways.
pub async fn reconnect_gets_a_new_peer_id(harness: &dyn Harness) {
    let (mut server, connector) = harness.start().await;
    let mut first = open(&mut server, &*connector, 1).await;
    round_trip(&mut server, &mut first).await;
    within("close()", first.client.close()).await;
    expect_gone(&mut server, first.peer).await;

    let mut second = open(&mut server, &*connector, 2).await;
    assert_ne!(second.peer, first.peer, "a new link reused the old PeerId");
    round_trip(&mut server, &mut second).await;

    // Lost from the server's side this time.
    server.disconnect(second.peer).expect("disconnect");
    match within("recv after disconnect", second.client.recv()).await {
        Err(TransportError::Closed) => {}
        other => panic!("recv on a disconnected link returned {other:?}, not Closed"),
    }
    let mut third = open(&mut server, &*connector, 3).await;
    assert!(third.peer != first.peer && third.peer != second.peer, "a PeerId was reused");
    round_trip(&mut server, &mut third).await;
}

/// Rule 7: `send`, `publish` and the group calls return promptly whatever the peer does:
/// unknown peers, closed peers, a peer that never reads (far past any queue), and a client
/// flooding a server that is not reading. Healthy peers keep being served.
pub async fn sends_never_block(harness: &dyn Harness) {
    const FLOOD: u32 = 10_000;
    let (mut server, connector) = harness.start().await;
    let group = MatchId(7);
    let mut healthy = open(&mut server, &*connector, 1).await;
    let mut stalled = open(&mut server, &*connector, 2).await;
    let mut dead = open(&mut server, &*connector, 3).await;
    let flooder = open(&mut server, &*connector, 4).await;
    join(&*server, &mut healthy, group).await;
    join(&*server, &mut stalled, group).await;
    within("close()", dead.client.close()).await;
    let unknown = PeerId(u64::MAX - 7);

    let (stalled_peer, dead_peer) = (stalled.peer, dead.peer);
    let server = off_thread("server sends to stalled, dead and unknown peers", move || {
        // Any outcome is fine except blocking or panicking.
        let _ = server.join_group(unknown, group);
        server.leave_group(unknown, group).expect("leaving a group one is not in is fine");
        let _ = server.send(unknown, data(DOWN, 0));
        for seq in 0..FLOOD {
            let _ = server.send(stalled_peer, data(DOWN, seq));
            let _ = server.send(dead_peer, data(DOWN, seq));
        }
        for seq in 0..BATCH {
            server
                .publish(group, data(PUBLISHED, seq))
                .expect("publish never fails on a slow member");
        }
        server.disconnect(unknown).expect("disconnecting an unknown peer is fine");
        server
    })
    .await;

    let flooder = off_thread("a client flooding a server that does not read", move || {
        for seq in 0..FLOOD {
            match flooder.client.send(data(UP, seq)) {
                Ok(()) => {}
                Err(TransportError::Backpressure(_) | TransportError::Closed) => break,
                Err(other) => panic!("client send while flooding returned {other:?}"),
            }
        }
        flooder
    })
    .await;

    for seq in 0..BATCH {
        let frame = client_recv(&mut healthy).await;
        assert_eq!(seq_of(&frame, PUBLISHED), seq, "a healthy member lost publishes");
    }
    let mut server = server;
    // The flooder's frames may still be queued at the server; skip them.
    round_trip(&mut server, &mut healthy).await;
    drop((stalled, flooder));
}

/// Rule 8: `recv` on either side can be dropped at any await point (here, whenever a short
/// timer or a yield wins a `select!`) while frames keep arriving, without losing a frame.
pub async fn recv_is_cancel_safe(harness: &dyn Harness) {
    const FRAMES: u32 = 2_000;
    let (mut server, connector) = harness.start().await;
    let link = open(&mut server, &*connector, 1).await;
    let peer = link.peer;

    // Client → server, the server's recv being cancelled.
    let progress = Arc::new(AtomicUsize::new(0));
    let producer = tokio::spawn(paced(FRAMES, Arc::clone(&progress), move |seq| {
        link.client.send(data(UP, seq)).expect("client send on a healthy link");
    }));
    let interrupted =
        receive_interrupted("server recv", FRAMES, &progress, async || {
            match server.recv().await.expect("server recv") {
                Incoming::Frame { from, frame } => {
                    assert_eq!(from, peer, "frame from an unexpected link");
                    Some(seq_of(&frame, UP))
                }
                _ => None,
            }
        })
        .await;
    let send_one = within("the client producer", producer).await.expect("producer panicked");
    drop(send_one);
    tracing::debug!(interrupted, "server recv interrupted");

    // Server → client, the client's recv being cancelled. Needs a second link, since the
    // first one's client moved into the finished producer.
    let mut link = open(&mut server, &*connector, 2).await;
    let peer = link.peer;
    let progress = Arc::new(AtomicUsize::new(0));
    let producer = tokio::spawn(paced(FRAMES, Arc::clone(&progress), move |seq| {
        server.send(peer, data(DOWN, seq)).expect("server send on a healthy link");
    }));
    let interrupted = receive_interrupted("client recv", FRAMES, &progress, async || {
        Some(seq_of(&link.client.recv().await.expect("client recv"), DOWN))
    })
    .await;
    let send_one = within("the server producer", producer).await.expect("producer panicked");
    drop(send_one);
    tracing::debug!(interrupted, "client recv interrupted");
}

/// Rule 9: once `subscribe` returns (after the server's `join_group`, which point-to-point
/// transports rely on), a publish made right away reaches the new member and the earlier
/// ones, for many fresh groups in a row.
pub async fn subscribe_is_confirmed(harness: &dyn Harness) {
    const ROUNDS: u32 = 20;
    let (mut server, connector) = harness.start().await;
    let mut links = Vec::new();
    for id in 0..3 {
        links.push(open(&mut server, &*connector, id).await);
    }
    for round in 0..ROUNDS {
        let group = MatchId(100 + round);
        for (index, link) in links.iter_mut().enumerate() {
            join(&*server, link, group).await;
            server.publish(group, data(PUBLISHED, round * 10 + index as u32)).expect("publish");
        }
        // Member k joined k-th, so it gets the publishes made from its join on.
        for (index, link) in links.iter_mut().enumerate() {
            for later in index..3 {
                let frame = client_recv(link).await;
                assert_eq!(
                    seq_of(&frame, PUBLISHED),
                    round * 10 + later as u32,
                    "a publish right after subscribe was missed or misrouted"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

/// One client link and the id the server knows it by.
struct Link {
    client: Box<dyn ClientTransport>,
    peer: PeerId,
}

const HELLO: u8 = b'H';
const UP: u8 = b'U';
const DOWN: u8 = b'D';
const PUBLISHED: u8 = b'P';
const MARKER: u8 = b'M';
const OVERSIZED: u8 = b'X';
const LARGEST: u8 = b'L';

/// `[kind][seq: u32 BE][seq % 61 bytes of padding, each seq as u8]`.
fn data(kind: u8, seq: u32) -> Frame {
    let pad = (seq % 61) as usize;
    let mut bytes = Vec::with_capacity(5 + pad);
    bytes.push(kind);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.resize(5 + pad, seq as u8);
    Bytes::from(bytes)
}

/// The sequence number of a [`data`] frame of `kind`; panics on anything else.
#[track_caller]
fn seq_of(frame: &Frame, kind: u8) -> u32 {
    assert!(
        frame.len() >= 5 && frame[0] == kind,
        "expected a {:?} frame, got {frame:?}",
        kind as char
    );
    let seq = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
    assert!(
        frame.len() == 5 + (seq % 61) as usize && frame[5..].iter().all(|&b| b == seq as u8),
        "frame {seq} is corrupt: {frame:?}"
    );
    seq
}

fn hello(id: u8) -> Frame {
    Bytes::from(vec![HELLO, id])
}

fn marker() -> Frame {
    Bytes::from_static(&[MARKER])
}

fn filled(kind: u8, len: usize) -> Frame {
    let mut bytes = vec![kind; len];
    if let Some(last) = bytes.last_mut() {
        *last = b'$';
    }
    Bytes::from(bytes)
}

#[track_caller]
fn mark_once(seen: &mut [bool], seq: u32, side: &str) {
    let slot =
        seen.get_mut(seq as usize).unwrap_or_else(|| panic!("{side} got an unknown frame {seq}"));
    assert!(!*slot, "{side} received frame {seq} twice");
    *slot = true;
}

/// Awaits `fut`, failing the check if it takes longer than [`WAIT`].
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Runs blocking work (calls that must not block) on a blocking thread, failing the check
/// if it does not finish within [`WAIT`].
async fn off_thread<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    within(what, tokio::task::spawn_blocking(work)).await.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Connects and learns the link's id from its hello (link events of others are skipped).
async fn open(server: &mut Box<dyn ServerTransport>, connector: &dyn Connector, id: u8) -> Link {
    let client = within("connect", connector.connect())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", connector.describe()));
    client.send(hello(id)).expect("client send of a hello");
    let (from, frame) = next_frame(server).await;
    assert_eq!(frame, hello(id), "expected hello {id} first, got another frame from {from}");
    Link { client, peer: from }
}

/// Joins a group both ways: server side for point-to-point transports, client side
/// (confirmed) for broker transports.
async fn join(server: &dyn ServerTransport, link: &mut Link, group: MatchId) {
    server.join_group(link.peer, group).expect("join_group of a live peer");
    within("subscribe", link.client.subscribe(group)).await.expect("subscribe");
}

/// The next frame at the server, skipping link events.
async fn next_frame(server: &mut Box<dyn ServerTransport>) -> (PeerId, Frame) {
    loop {
        match within("a frame at the server", server.recv()).await {
            Ok(Incoming::Frame { from, frame }) => return (from, frame),
            Ok(Incoming::Connected { .. } | Incoming::Gone { .. }) => {}
            Err(e) => panic!("server recv failed: {e}"),
        }
    }
}

/// The next frame at the server from `peer`, skipping everything else.
async fn next_frame_from(server: &mut Box<dyn ServerTransport>, peer: PeerId) -> Frame {
    loop {
        let (from, frame) = next_frame(server).await;
        if from == peer {
            return frame;
        }
    }
}

async fn client_recv(link: &mut Link) -> Frame {
    match within("a frame at a client", link.client.recv()).await {
        Ok(frame) => frame,
        Err(e) => panic!("client recv on {} failed: {e}", link.peer),
    }
}

/// Waits for `Gone` of `peer`, skipping frames and other links' events.
async fn expect_gone(server: &mut Box<dyn ServerTransport>, peer: PeerId) {
    loop {
        match within("Gone at the server", server.recv()).await {
            Ok(Incoming::Gone { peer: gone, .. }) if gone == peer => return,
            Ok(_) => {}
            Err(e) => panic!("server recv failed while waiting for {peer} to go: {e}"),
        }
    }
}

/// One frame each way on a link.
async fn round_trip(server: &mut Box<dyn ServerTransport>, link: &mut Link) {
    server.send(link.peer, marker()).expect("server send on a healthy link");
    assert_eq!(client_recv(link).await, marker(), "round trip: wrong frame at the client");
    link.client.send(marker()).expect("client send on a healthy link");
    assert_eq!(next_frame_from(server, link.peer).await, marker(), "round trip: wrong frame");
}

/// Calls `send(seq)` for `0..frames`, keeping at most [`WINDOW`] frames ahead of
/// `progress` (frames received), and yields or sleeps now and then so the receiver's
/// `recv` is often pending when a frame lands. Returns `send` (and what it owns).
async fn paced<S: FnMut(u32) + Send + 'static>(
    frames: u32,
    progress: Arc<AtomicUsize>,
    mut send: S,
) -> S {
    let mut sent = 0_u32;
    while sent < frames {
        if (sent as usize).saturating_sub(progress.load(Ordering::Acquire)) >= WINDOW {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        send(sent);
        sent += 1;
        match sent % 16 {
            0 => tokio::time::sleep(Duration::from_millis(1)).await,
            n if n % 4 == 0 => tokio::task::yield_now().await,
            _ => {}
        }
    }
    send
}

/// Receives the data frames `0..frames` in order through `recv` (a frame's sequence number,
/// or `None` for an event that is not one), every call raced against an [`interruption`]
/// that cancels it, and tells the paced producer how far it got through `progress`.
/// Returns how many calls were cancelled.
async fn receive_interrupted(
    what: &str,
    frames: u32,
    progress: &AtomicUsize,
    mut recv: impl AsyncFnMut() -> Option<u32>,
) -> u32 {
    let (mut next, mut interrupted) = (0, 0_u32);
    within(&format!("{what}: frames under cancellation"), async {
        while next < frames {
            tokio::select! {
                seq = recv() => {
                    if let Some(seq) = seq {
                        assert_eq!(seq, next, "{what} lost or reordered a frame");
                        next += 1;
                        progress.store(next as usize, Ordering::Release);
                    }
                }
                () = interruption(interrupted) => interrupted += 1,
            }
        }
    })
    .await;
    interrupted
}

/// What races `recv` in the cancel-safety check: a yield (cancels right after recv's first
/// poll) or a 1 ms timer (cancels a recv that has been waiting).
async fn interruption(round: u32) {
    if round.is_multiple_of(2) {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
