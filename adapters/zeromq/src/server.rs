//! The server end: a ROUTER socket behind the guard relay, a pump task that turns what the
//! socket hears into [`Incoming`] events, and one writer task per peer.
//!
//! ```text
//! clients ─tcp─► accept loop ─► relay (guard) ─backplane─► ROUTER ─► pump ─► recv()
//!                                                   ▲
//! send()/publish() ─► peer outbox (bounded) ─► peer writer
//! ```
//!
//! # Peers
//! A peer (a [`PeerId`]) is created when the first well-formed message arrives from a
//! routing id the pump does not know, and reported [`Incoming::Connected`] just before that
//! message. It ends exactly once, with [`Incoming::Gone`], when:
//! - the socket monitor reports its connection closed (the client closed or died, or the
//!   guard cut it);
//! - the server calls [`ServerTransport::disconnect`]: its writer sends what is queued,
//!   then the pump closes the connection in the ROUTER, and the client sees its end;
//! - either of its queues overflows, or it keeps sending messages that are not protocol
//!   frames: it is closed at once, dropping what is queued for it.
//!
//! A routing id the server is closing is remembered until its connection is seen closed,
//! and messages from it in the meantime are dropped, so a closed peer never comes back as
//! a new one by accident.
//!
//! # Queues
//! Each peer's outbox holds [`ZmqOptions::queue_capacity`] frames; `send` and `publish`
//! only `try_send` into it (rule 7). Its writer moves frames into the crate's own per-peer
//! queue (100 000 messages, not configurable in zeromq 0.7) in order, so direct sends and
//! group publishes stay in one order (rule 1). Upstream, each peer may have
//! `queue_capacity` frames waiting in [`ZmqServer::recv`]; the pump never waits on a peer.
//!
//! # Connection caps
//! The accept loop relays at most [`ZmqOptions::max_connections`] client connections at
//! once (default [`ZmqOptions::DEFAULT_MAX_CONNECTIONS`], 10 000), counting those still in
//! their handshake, and at most [`ZmqOptions::max_connections_per_address`] from one IP
//! address (default [`ZmqOptions::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS`], 32; ipc
//! connections count against the total only). A connection beyond either cap is closed as
//! soon as it is accepted, before any byte is relayed either way, so it never reaches the
//! ROUTER and never becomes a peer; it is counted in
//! [`ZmqServerStats::refused_max_connections`] or
//! [`ZmqServerStats::refused_max_connections_per_address`] and logged at `warn` on the 1st,
//! 2nd, 4th, 8th… refusal (`debug` otherwise), so a flood cannot flood the log. A
//! connection's place is given back when its relay ends, however it ends (the client
//! closes, the server disconnects it, the guard cuts it, its handshake times out, it
//! stalls, or the endpoint is dropped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use pong_ports::{Frame, Incoming, MatchId, Origin, PeerId, ServerTransport, TransportError};
use pong_transport_support::{
    Counter, Credits, EventReceiver, EventSender, Outbox, PeerServer, PeerTable, Refusal, events,
    lock,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeromq::util::PeerIdentity;
use zeromq::{
    MultiPeerBackend, RouterRecvHalf, RouterSendHalf, RouterSocket, Socket, SocketEvent,
    SocketRecv, ZmqMessage,
};

use crate::backplane::Backplane;
use crate::caps::{Caps, Refused, Slot};
use crate::guard::Limits;
use crate::relay::{self, Ended, RelayConfig};
use crate::{Hex, ZmqOptions, parse_endpoint, write_queued};

/// Messages that are not protocol frames a connection may send before it is cut.
const MAX_BAD_MESSAGES: u32 = 64;

/// How long a routing id being closed is remembered if its close is never seen.
const CLOSING_MEMORY: Duration = Duration::from_secs(60);

/// What a [`ZmqServer`] has dropped, cut and delivered since it was bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZmqServerStats {
    /// Frames delivered by [`ServerTransport::recv`].
    pub frames: u64,
    /// Messages dropped for their shape: several parts, or an empty part.
    pub malformed: u64,
    /// Messages dropped for being longer than [`ZmqOptions::max_frame_len`].
    pub oversized: u64,
    /// Messages dropped because the server was closing their connection.
    pub after_close: u64,
    /// Peers disconnected because a queue overflowed, either way.
    pub overflows: u64,
    /// Peers disconnected for sending too many messages that are not protocol frames.
    pub misbehaving: u64,
    /// Connections cut by the guard for breaking ZMTP framing or its limits.
    pub violations: u64,
    /// Connections cut for not finishing the ZMTP handshake in time.
    pub handshake_timeouts: u64,
    /// Connections cut because the client stopped reading.
    pub stalls: u64,
    /// Connections closed at accept because [`ZmqOptions::max_connections`] connections
    /// were being relayed already.
    pub refused_max_connections: u64,
    /// Connections closed at accept because [`ZmqOptions::max_connections_per_address`]
    /// connections from the same IP address were being relayed already.
    pub refused_max_connections_per_address: u64,
}

#[derive(Debug, Default)]
struct Counters {
    frames: Counter,
    malformed: Counter,
    oversized: Counter,
    after_close: Counter,
    overflows: Counter,
    misbehaving: Counter,
    violations: Counter,
    handshake_timeouts: Counter,
    stalls: Counter,
    refused_max_connections: Counter,
    refused_max_connections_per_address: Counter,
}

impl Counters {
    fn snapshot(&self) -> ZmqServerStats {
        ZmqServerStats {
            frames: self.frames.get(),
            malformed: self.malformed.get(),
            oversized: self.oversized.get(),
            after_close: self.after_close.get(),
            overflows: self.overflows.get(),
            misbehaving: self.misbehaving.get(),
            violations: self.violations.get(),
            handshake_timeouts: self.handshake_timeouts.get(),
            stalls: self.stalls.get(),
            refused_max_connections: self.refused_max_connections.get(),
            refused_max_connections_per_address: self.refused_max_connections_per_address.get(),
        }
    }
}

#[derive(Debug)]
struct PeerEntry {
    identity: Bytes,
    outbox: mpsc::Sender<Frame>,
    /// Makes the writer stop at once, dropping what is queued.
    abort: CancellationToken,
    /// One place per frame this peer may have waiting in `recv`.
    credit: Credits,
}

impl Outbox for PeerEntry {
    fn outbox(&self) -> &mpsc::Sender<Frame> {
        &self.outbox
    }
}

#[derive(Debug, Default)]
struct State {
    /// Set when the endpoint is dropped.
    closed: bool,
    peers: PeerTable<PeerEntry>,
    by_identity: HashMap<Bytes, PeerId>,
    /// Routing ids the server is closing, and since when.
    closing: HashMap<Bytes, Instant>,
    /// Messages that were not protocol frames, per routing id still connected.
    bad: HashMap<Bytes, u32>,
}

/// How a peer leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Its connection is already closed: nothing to do in the socket.
    Vanished,
    /// Close its connection after what is queued for it.
    Close,
    /// Close its connection now, dropping what is queued.
    Abort,
}

#[derive(Debug)]
struct Shared {
    options: ZmqOptions,
    events: EventSender,
    /// Routing ids whose writer has finished; the pump closes those the server is closing.
    finished: mpsc::UnboundedSender<Bytes>,
    state: Mutex<State>,
    next_peer: AtomicU64,
    counters: Counters,
}

impl AsMut<PeerTable<PeerEntry>> for State {
    fn as_mut(&mut self) -> &mut PeerTable<PeerEntry> {
        &mut self.peers
    }
}

impl PeerServer for Shared {
    type State = State;
    type Entry = PeerEntry;

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn max_frame_len(&self) -> usize {
        self.options.max_frame_len
    }

    /// A frame could not be queued for `to`: an overflowing peer is closed at once, one
    /// whose writer failed is gone. Returns what `send` reports.
    fn refused(&self, state: &mut State, to: PeerId, refusal: Refusal) -> TransportError {
        match refusal {
            Refusal::Unknown => {}
            Refusal::Full => {
                tracing::warn!(peer = %to, "zmq send queue of a peer is full; disconnecting it");
                self.counters.overflows.bump();
                self.remove_peer(state, to, "send queue overflow", Removal::Abort);
            }
            // Its writer failed and has not reported it yet.
            Refusal::Closed => {
                self.remove_peer(state, to, "connection lost", Removal::Vanished);
            }
        }
        refusal.into_error(to)
    }
}

impl Shared {
    /// Removes a peer and reports it gone; whoever removes it reports it, so `Gone` is sent
    /// exactly once per peer. Dropping the entry closes its outbox: the writer sends what is
    /// queued (unless aborted) and then tells the pump it has finished.
    fn remove_peer(&self, state: &mut State, peer: PeerId, reason: &str, how: Removal) -> bool {
        let Some(entry) = state.peers.remove(peer) else { return false };
        state.by_identity.remove(&entry.identity);
        if how != Removal::Vanished {
            let now = Instant::now();
            state.closing.retain(|_, since| now.duration_since(*since) < CLOSING_MEMORY);
            state.closing.insert(entry.identity.clone(), now);
        }
        if how == Removal::Abort {
            entry.abort.cancel();
        }
        tracing::debug!(%peer, identity = %Hex(&entry.identity), reason, "zmq peer gone");
        self.events.gone(peer, reason);
        true
    }

    /// A peer's writer could not hand a frame to the socket: the crate has dropped the
    /// connection, and the monitor may or may not say so.
    fn writer_failed(&self, peer: PeerId, reason: &str) {
        let mut state = self.state();
        self.remove_peer(&mut state, peer, reason, Removal::Vanished);
    }

    /// Handles one message the ROUTER received: `[routing id, part, ...]`.
    fn on_message(self: &Arc<Self>, message: ZmqMessage, router: &RouterSendHalf) -> Option<Bytes> {
        let mut parts = message.into_vecdeque();
        let identity = parts.pop_front()?;
        let frame = match parts.pop_front() {
            Some(frame) if parts.is_empty() && !frame.is_empty() => frame,
            first => {
                self.counters.malformed.bump();
                let parts = parts.len() + usize::from(first.is_some());
                tracing::debug!(
                    identity = %Hex(&identity),
                    parts,
                    "zmq message dropped: not one non-empty part",
                );
                return self.strike(identity);
            }
        };
        if frame.len() > self.options.max_frame_len {
            self.counters.oversized.bump();
            tracing::debug!(
                identity = %Hex(&identity),
                len = frame.len(),
                "zmq message dropped: over the frame limit",
            );
            return self.strike(identity);
        }

        let mut state = self.state();
        if state.closed {
            return None;
        }
        if state.closing.contains_key(&identity) {
            self.counters.after_close.bump();
            return None;
        }
        let peer = match state.by_identity.get(&identity) {
            Some(&peer) => peer,
            None => self.new_peer(&mut state, identity, router),
        };
        let entry = state.peers.get(peer)?;
        match entry.credit.try_take() {
            Some(credit) => {
                self.counters.frames.bump();
                self.events.frame(peer, frame, credit);
            }
            None => {
                tracing::warn!(%peer, "zmq receive queue of a peer is full; disconnecting it");
                self.counters.overflows.bump();
                self.remove_peer(&mut state, peer, "receive queue overflow", Removal::Abort);
            }
        }
        None
    }

    /// Counts a message that was not a protocol frame against its connection; returns the
    /// routing id to close in the socket if the connection is over the limit and the server
    /// has no peer for it (a peer is closed through its writer instead).
    fn strike(&self, identity: Bytes) -> Option<Bytes> {
        let mut state = self.state();
        if state.closed || state.closing.contains_key(&identity) {
            return None;
        }
        let count = state.bad.entry(identity.clone()).or_insert(0);
        *count += 1;
        if *count <= MAX_BAD_MESSAGES {
            return None;
        }
        state.bad.remove(&identity);
        self.counters.misbehaving.bump();
        tracing::warn!(
            identity = %Hex(&identity),
            "zmq connection keeps sending messages that are not protocol frames; closing it",
        );
        match state.by_identity.get(&identity).copied() {
            Some(peer) => {
                self.remove_peer(&mut state, peer, "too many malformed messages", Removal::Abort);
                None
            }
            None => {
                state.closing.insert(identity.clone(), Instant::now());
                Some(identity)
            }
        }
    }

    fn new_peer(
        self: &Arc<Self>,
        state: &mut State,
        identity: Bytes,
        router: &RouterSendHalf,
    ) -> PeerId {
        let peer = PeerId(self.next_peer.fetch_add(1, Ordering::Relaxed));
        let capacity = self.options.queue_capacity;
        let (outbox, queued) = mpsc::channel(capacity);
        let abort = CancellationToken::new();
        let entry = PeerEntry {
            identity: identity.clone(),
            outbox,
            abort: abort.clone(),
            credit: Credits::new(capacity),
        };
        state.peers.insert(peer, entry);
        state.by_identity.insert(identity.clone(), peer);
        tracing::debug!(%peer, identity = %Hex(&identity), "zmq peer connected");
        self.events.connected(peer, Origin::Link);
        tokio::spawn(write_to_peer(
            Arc::clone(self),
            peer,
            identity,
            queued,
            abort,
            router.clone(),
        ));
        peer
    }

    /// A writer has finished: if the server is closing that routing id, returns it so the
    /// pump closes the connection in the socket.
    fn should_close(&self, identity: &Bytes) -> bool {
        self.state().closing.contains_key(identity)
    }

    fn on_socket_event(&self, event: SocketEvent) {
        match event {
            SocketEvent::Disconnected(identity) => {
                let identity = Bytes::from(identity);
                let mut state = self.state();
                state.bad.remove(&identity);
                if state.closing.remove(&identity).is_some() {
                    tracing::debug!(
                        identity = %Hex(&identity),
                        "zmq connection closed by the server is gone",
                    );
                    return;
                }
                if let Some(peer) = state.by_identity.get(&identity).copied() {
                    self.remove_peer(&mut state, peer, "connection closed", Removal::Vanished);
                }
            }
            SocketEvent::Accepted(_, identity) => {
                tracing::trace!(identity = %Hex(&identity), "zmq connection handshake done");
            }
            SocketEvent::AcceptFailed(error) => {
                tracing::debug!(%error, "zmq connection handshake failed");
            }
            other => tracing::trace!(event = ?other, "zmq socket event"),
        }
    }
}

/// Moves one peer's frames from its outbox into the socket, in order.
async fn write_to_peer(
    shared: Arc<Shared>,
    peer: PeerId,
    identity: Bytes,
    mut queued: mpsc::Receiver<Frame>,
    abort: CancellationToken,
    mut router: RouterSendHalf,
) {
    // The ROUTER envelope: the routing id part, then the frame.
    if let Err(e) = write_queued(&mut router, &mut queued, &abort, Some(&identity)).await {
        shared.writer_failed(peer, &format!("cannot send: {e}"));
    }
    let _ = shared.finished.send(identity);
}

/// Everything the pump owns. `M` is the crate's monitor channel.
struct Pump<M> {
    shared: Arc<Shared>,
    router_rx: RouterRecvHalf,
    router_tx: RouterSendHalf,
    monitor: M,
    backend: Arc<dyn MultiPeerBackend>,
    finished: mpsc::UnboundedReceiver<Bytes>,
    cancel: CancellationToken,
}

impl<M: futures_util::Stream<Item = SocketEvent> + Unpin> Pump<M> {
    async fn run(mut self) {
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                Some(identity) = self.finished.recv() => {
                    if self.shared.should_close(&identity) {
                        self.close_in_router(identity);
                    }
                }
                event = self.monitor.next() => match event {
                    Some(event) => self.shared.on_socket_event(event),
                    None => {
                        self.fail("the ROUTER socket monitor ended");
                        break;
                    }
                },
                // Cancel-safe: the crate's recv returns a message in the poll that takes it.
                message = self.router_rx.recv() => match message {
                    Ok(message) => {
                        if let Some(identity) = self.shared.on_message(message, &self.router_tx) {
                            self.close_in_router(identity);
                        }
                    }
                    Err(e) => {
                        self.fail(&format!("the ROUTER socket failed: {e}"));
                        break;
                    }
                },
            }
        }
        tracing::debug!("zmq server pump stopped");
    }

    /// Drops a connection from the ROUTER: its read side at once, its write side once the
    /// crate has written what it holds for it. Called from this task only, between polls
    /// of `recv`, so the crate is never reading that connection at the same time.
    fn close_in_router(&self, identity: Bytes) {
        match PeerIdentity::try_from(identity) {
            Ok(identity) => self.backend.peer_disconnected(&identity),
            Err(e) => tracing::debug!(error = %e, "zmq routing id cannot be closed"),
        }
    }

    fn fail(&self, reason: &str) {
        tracing::error!(reason, "zmq server stopped receiving");
        self.shared.events.failed(reason);
    }
}

/// A listening endpoint of our own, in front of the guard.
enum PublicListener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Ipc(tokio::net::UnixListener),
}

impl PublicListener {
    /// Binds `endpoint`; returns the listener and the endpoint as bound.
    async fn bind(endpoint: &zeromq::Endpoint) -> std::io::Result<(Self, String)> {
        match endpoint {
            zeromq::Endpoint::Tcp(host, port) => {
                let listener = tokio::net::TcpListener::bind((host.to_string(), *port)).await?;
                let addr = listener.local_addr()?;
                Ok((Self::Tcp(listener), format!("tcp://{addr}")))
            }
            #[cfg(unix)]
            zeromq::Endpoint::Ipc(Some(path)) => {
                let listener = tokio::net::UnixListener::bind(path)?;
                Ok((Self::Ipc(listener), format!("ipc://{}", path.display())))
            }
            other => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("cannot listen on {other}"),
            )),
        }
    }
}

/// What every relay of one endpoint shares.
struct RelayContext {
    shared: Arc<Shared>,
    backplane: Arc<Backplane>,
    config: RelayConfig,
    cancel: CancellationToken,
    caps: Arc<Caps>,
}

/// True on the 1st, 2nd, 4th, 8th… occurrence: refusals a client can cause at will are
/// logged on these only, so a flood cannot flood the log (every one is still counted).
fn worth_logging(count: u64) -> bool {
    count.is_power_of_two()
}

impl RelayContext {
    /// A place under the connection caps for a connection from `remote` (`None`: ipc), or
    /// `None` after counting and logging the refusal; the caller then closes the connection.
    fn admit(&self, remote: Option<std::net::SocketAddr>) -> Option<Slot> {
        let refused = match self.caps.try_admit(remote.map(|r| r.ip())) {
            Ok(slot) => return Some(slot),
            Err(refused) => refused,
        };
        let options = &self.shared.options;
        let counters = &self.shared.counters;
        let remote = remote.map_or_else(|| "ipc".to_owned(), |r| r.to_string());
        let (count, cap, what) = match refused {
            Refused::Total => (
                counters.refused_max_connections.bump(),
                options.max_connections,
                "zmq connection refused: max_connections reached",
            ),
            Refused::PerAddress => (
                counters.refused_max_connections_per_address.bump(),
                options.max_connections_per_address,
                "zmq connection refused: max_connections_per_address reached for its address",
            ),
        };
        if worth_logging(count) {
            tracing::warn!(%remote, cap, refused = count, "{what}");
        } else {
            tracing::debug!(%remote, cap, refused = count, "{what}");
        }
        None
    }
}

/// Accepts connections until the endpoint is dropped, closing at once those over a
/// connection cap and relaying the others, each holding its place until its relay ends.
async fn accept_loop(listener: PublicListener, context: Arc<RelayContext>) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = context.cancel.cancelled() => break,
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, remote)) => {
                // Over a cap: dropping the stream closes it before a byte is relayed.
                let Some(slot) = context.admit(Some(remote)) else { continue };
                // Frames are small and latency matters more than packet count.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot disable Nagle on a zmq connection");
                }
                tokio::spawn(serve(stream, remote.to_string(), Arc::clone(&context), slot));
            }
            #[cfg(unix)]
            Ok(Accepted::Ipc(stream)) => {
                let Some(slot) = context.admit(None) else { continue };
                tokio::spawn(serve(stream, "ipc".to_owned(), Arc::clone(&context), slot));
            }
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "zmq server cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, std::net::SocketAddr),
    #[cfg(unix)]
    Ipc(tokio::net::UnixStream),
}

async fn accept(listener: &PublicListener) -> std::io::Result<Accepted> {
    match listener {
        PublicListener::Tcp(l) => l.accept().await.map(|(s, a)| Accepted::Tcp(s, a)),
        #[cfg(unix)]
        PublicListener::Ipc(l) => l.accept().await.map(|(s, _)| Accepted::Ipc(s)),
    }
}

/// Relays one admitted connection until it ends. `slot` is its place under the connection
/// caps: dropped when this returns (or when the task is dropped with the runtime), after
/// the relay has dropped both of its connections.
async fn serve<C>(client: C, remote: String, context: Arc<RelayContext>, slot: Slot)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send,
{
    tracing::trace!(%remote, "zmq connection accepted");
    let counters = &context.shared.counters;
    let report = |ended: Ended| match ended {
        Ended::Closed | Ended::Cancelled => tracing::trace!(%remote, "zmq connection closed"),
        Ended::Violation(violation) => {
            counters.violations.bump();
            tracing::warn!(
                %remote,
                %violation,
                "zmq connection cut: it broke ZMTP framing or its limits",
            );
        }
        Ended::HandshakeTimeout => {
            counters.handshake_timeouts.bump();
            tracing::info!(%remote, "zmq connection cut: no ZMTP handshake in time");
        }
        Ended::Stalled => {
            counters.stalls.bump();
            tracing::warn!(%remote, "zmq connection cut: the client stopped reading");
        }
        Ended::Backplane(error) => {
            tracing::error!(
                %remote,
                %error,
                "zmq connection dropped: the ROUTER backplane is unreachable",
            );
        }
    };
    relay::run(client, &context.backplane, context.config, &context.cancel, report).await;
    drop(slot);
}

/// The server end of the ZeroMQ transport: a ROUTER socket behind the guard. Dropping it
/// closes every connection (clients see their connection end) and frees the endpoint.
pub struct ZmqServer {
    shared: Arc<Shared>,
    events: EventReceiver,
    local_addr: String,
    cancel: CancellationToken,
    /// The connection caps and what counts against them.
    caps: Arc<Caps>,
    /// Kept so the backplane directory lives as long as the endpoint.
    _backplane: Arc<Backplane>,
    /// The socket file of a public ipc endpoint, removed on drop.
    ipc_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ZmqServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqServer").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl ZmqServer {
    /// Binds a ROUTER endpoint such as `tcp://0.0.0.0:7879`, `tcp://*:7879`,
    /// `tcp://127.0.0.1:0` (any free port; see [`ServerTransport::local_addr`]) or
    /// `ipc:///run/pong.sock` (unix). Must be called inside a tokio runtime, which then
    /// runs the endpoint's tasks.
    ///
    /// # Errors
    /// [`TransportError::Listen`] if the endpoint does not parse or cannot be bound.
    pub async fn bind(endpoint: &str, options: ZmqOptions) -> Result<Self, TransportError> {
        let options = options.normalized();
        let listen = |reason: String| TransportError::Listen { addr: endpoint.to_owned(), reason };
        let parsed = parse_endpoint(endpoint).map_err(listen)?;
        let (public, local_addr) =
            PublicListener::bind(&parsed).await.map_err(|e| listen(e.to_string()))?;
        let ipc_path = match &parsed {
            zeromq::Endpoint::Ipc(path) => path.clone(),
            zeromq::Endpoint::Tcp(..) => None,
            _ => None,
        };

        let (backplane, backplane_listener) = Backplane::create()
            .map_err(|e| listen(format!("cannot create the private backplane: {e}")))?;
        let mut router = RouterSocket::new();
        let monitor = router.monitor();
        let backend = router.backend();
        router
            .bind_listener(backplane_listener)
            .await
            .map_err(|e| listen(format!("the ROUTER cannot adopt the backplane: {e}")))?;
        let (router_tx, router_rx) = router.split();

        let (events_tx, events_rx) = events();
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            options,
            events: events_tx,
            finished: finished_tx,
            state: Mutex::new(State::default()),
            next_peer: AtomicU64::new(1),
            counters: Counters::default(),
        });
        let cancel = CancellationToken::new();
        let backplane = Arc::new(backplane);

        let pump = Pump {
            shared: Arc::clone(&shared),
            router_rx,
            router_tx,
            monitor,
            backend,
            finished: finished_rx,
            cancel: cancel.clone(),
        };
        tokio::spawn(pump.run());
        let context = Arc::new(RelayContext {
            shared: Arc::clone(&shared),
            backplane: Arc::clone(&backplane),
            config: RelayConfig {
                limits: Limits::for_frames(options.max_frame_len),
                handshake_timeout: options.handshake_timeout,
                stall_timeout: options.stall_timeout,
            },
            cancel: cancel.clone(),
            caps: Caps::new(options.max_connections, options.max_connections_per_address),
        });
        let caps = Arc::clone(&context.caps);
        tokio::spawn(accept_loop(public, context));
        tracing::info!(endpoint = %local_addr, "zmq server listening");

        Ok(Self {
            shared,
            events: events_rx,
            local_addr,
            cancel,
            caps,
            _backplane: backplane,
            ipc_path,
        })
    }

    /// What the endpoint has dropped, cut and delivered so far.
    #[must_use]
    pub fn stats(&self) -> ZmqServerStats {
        self.shared.counters.snapshot()
    }

    /// The peers currently connected, in id order (for tests and diagnostics).
    #[must_use]
    pub fn peers(&self) -> Vec<PeerId> {
        self.shared.peer_ids()
    }

    /// Client connections being relayed now, the number [`ZmqOptions::max_connections`]
    /// caps (for tests and diagnostics). Unlike [`ZmqServer::peers`] it counts connections
    /// still in their handshake or not yet heard from, and a connection stays counted until
    /// its relay has finished with it, which can be a few seconds after its peer is
    /// reported gone (each side gets time to finish).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.caps.current()
    }
}

impl Drop for ZmqServer {
    fn drop(&mut self) {
        self.cancel.cancel();
        {
            let mut state = self.shared.state();
            state.closed = true;
            for (_, entry) in state.peers.drain() {
                entry.abort.cancel();
            }
            state.by_identity.clear();
            state.closing.clear();
            state.bad.clear();
        }
        if let Some(path) = &self.ipc_path {
            let _ = std::fs::remove_file(path);
        }
        tracing::debug!(endpoint = %self.local_addr, "zmq server endpoint dropped");
    }
}

#[async_trait]
impl ServerTransport for ZmqServer {
    async fn recv(&mut self) -> Result<Incoming, TransportError> {
        // The sender lives in `shared`, which we hold, so the queue never reports closed.
        self.events.recv().await
    }

    fn send(&self, to: PeerId, frame: Frame) -> Result<(), TransportError> {
        self.shared.send_to(to, frame)
    }

    fn publish(&self, group: MatchId, frame: Frame) -> Result<(), TransportError> {
        self.shared.publish_to(group, &frame)
    }

    fn join_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        self.shared.join(peer, group)
    }

    fn leave_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        self.shared.leave(peer, group);
        Ok(())
    }

    fn disconnect(&self, peer: PeerId) -> Result<(), TransportError> {
        let mut state = self.shared.state();
        self.shared.remove_peer(&mut state, peer, "disconnected by the server", Removal::Close);
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.shared.options.max_frame_len
    }

    fn local_addr(&self) -> String {
        self.local_addr.clone()
    }
}
