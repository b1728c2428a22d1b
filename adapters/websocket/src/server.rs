//! The server end: [`WsServer`] accepts WebSocket connections, gives each a [`PeerId`],
//! and moves frames between them and the game server through the
//! [`ServerTransport`] port.
//!
//! ```text
//! accept task ──► per connection: handshake (TLS, then WebSocket, under one timeout)
//!                   ├─ reader (the connection's task): frames and link events → recv()
//!                   └─ writer task: bounded queue ◄── send()/publish() (try_send only)
//! ```
//!
//! Group membership lives here (point-to-point transport): `publish` loops over the
//! members, sharing one buffer. Every link is reported [`Incoming::Connected`] before its
//! first frame and [`Incoming::Gone`] exactly once after its last, whoever ended it.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pong_ports::{Frame, Incoming, MatchId, PeerId, ServerTransport, TransportError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::WsOptions;
use crate::link::{self, Deliver, Ending, LinkState, ReadLimits, lock};

/// Connections the kernel may hold, fully open, before the accept task takes them; large
/// so a burst of connects is not dropped and retried a second later.
const LISTEN_BACKLOG: u32 = 1024;

/// Pause after a failed accept (typically out of file descriptors) before the next try,
/// so the accept task does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server end of the WebSocket transport. Dropping it stops accepting and closes every
/// connection (close code 1001) after the frames already queued for it.
pub struct WsServer {
    shared: Arc<Shared>,
    events: mpsc::Receiver<Incoming>,
    local_addr: String,
}

struct Shared {
    options: WsOptions,
    ws_config: WebSocketConfig,
    events: mpsc::Sender<Incoming>,
    state: Mutex<State>,
    next_peer: AtomicU64,
    /// Cancelled when the server is dropped: stops the accept task and pending handshakes.
    shutdown: CancellationToken,
    #[cfg(feature = "tls")]
    acceptor: Option<tokio_rustls::TlsAcceptor>,
}

#[derive(Debug, Default)]
struct State {
    /// Set when the server is dropped; handshakes that finish later are turned away.
    closed: bool,
    peers: HashMap<PeerId, PeerEntry>,
    groups: HashMap<MatchId, HashSet<PeerId>>,
}

#[derive(Debug)]
struct PeerEntry {
    /// The only sender of the writer's queue: removing the entry closes the queue, and the
    /// writer then sends what is left and the close frame.
    queue: mpsc::Sender<Frame>,
    link: Arc<LinkState>,
    remote: SocketAddr,
    /// The groups this peer is in, so removing it does not scan every group.
    groups: Vec<MatchId>,
}

impl WsServer {
    /// Listens on `addr` (`"0.0.0.0:7878"`, `"127.0.0.1:0"` for any free port,
    /// `"[::]:7878"`, or a host name) and starts accepting connections. With a certificate
    /// in `options.tls` (`WsOptions::with_tls_pem`, feature `tls`) it serves `wss://`.
    ///
    /// Must be called inside a tokio runtime with I/O and timers enabled; the accept task
    /// and every connection task run on it.
    ///
    /// # Errors
    /// [`TransportError::Listen`] if there is no runtime, the address does not resolve, or
    /// no resolved address can be bound.
    pub fn bind(addr: &str, options: WsOptions) -> Result<Self, TransportError> {
        let fail = |reason: String| TransportError::Listen { addr: addr.to_owned(), reason };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| fail("not inside a tokio runtime".to_owned()))?;
        let candidates: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve the address: {e}")))?
            .collect();
        let mut last_error = format!("{addr} resolves to no address");
        let mut bound = None;
        for candidate in candidates {
            match listen(candidate) {
                Ok(listener) => {
                    bound = Some(listener);
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        let listener = bound.ok_or_else(|| fail(last_error))?;
        let local = listener.local_addr().map_err(|e| fail(e.to_string()))?;

        let options = options.sanitized();
        let scheme = if options.tls.serves_tls() { "wss" } else { "ws" };
        let local_addr = format!("{scheme}://{local}");
        let (events_tx, events) = mpsc::channel(options.incoming_capacity);
        let shared = Arc::new(Shared {
            ws_config: link::ws_config(options.max_frame_len),
            events: events_tx,
            state: Mutex::new(State::default()),
            next_peer: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
            #[cfg(feature = "tls")]
            acceptor: options.tls.acceptor(),
            options,
        });
        let slots = Arc::new(Semaphore::new(shared.options.max_connections));
        runtime.spawn(
            accept_loop(listener, Arc::clone(&shared), slots)
                .instrument(tracing::info_span!("ws_accept", addr = %local_addr)),
        );
        tracing::info!(
            addr = %local_addr,
            max_connections = shared.options.max_connections,
            queue_capacity = shared.options.queue_capacity,
            max_frame_len = shared.options.max_frame_len,
            "WebSocket server listening"
        );
        Ok(Self { shared, events, local_addr })
    }

    /// The peers currently connected, in id order (for tests and diagnostics).
    #[must_use]
    pub fn peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.shared.state().peers.keys().copied().collect();
        peers.sort_unstable();
        peers
    }

    /// The remote address of a connected peer, for logs.
    #[must_use]
    pub fn remote_addr(&self, peer: PeerId) -> Option<SocketAddr> {
        self.shared.state().peers.get(&peer).map(|entry| entry.remote)
    }
}

impl std::fmt::Debug for WsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServer")
            .field("local_addr", &self.local_addr)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // A restarted server can bind while the old one's connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn check_len(&self, frame: &Frame) -> Result<(), TransportError> {
        let max = self.options.max_frame_len;
        if frame.len() > max {
            return Err(TransportError::FrameTooLarge { len: frame.len(), max });
        }
        Ok(())
    }

    /// Queues a frame for one peer; a full queue ends that link at once.
    fn deliver(state: &mut State, to: PeerId, frame: Frame) -> Result<(), TransportError> {
        let Some(entry) = state.peers.get(&to) else {
            return Err(TransportError::UnknownPeer(to));
        };
        match entry.queue.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    peer = %to,
                    remote = %entry.remote,
                    "send queue full: the client cannot keep up; disconnecting"
                );
                entry.link.end(Ending::abrupt(CloseCode::Policy, "send queue overflow"));
                remove_peer(state, to);
                Err(TransportError::Backpressure(to))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The writer is gone (a write failed); the reader is reporting it.
                remove_peer(state, to);
                Err(TransportError::UnknownPeer(to))
            }
        }
    }
}

/// Takes a peer out of the map and its groups. Record the link's ending first: dropping
/// the entry closes the writer's queue, and the writer reads the ending to know how to
/// close.
fn remove_peer(state: &mut State, peer: PeerId) -> Option<PeerEntry> {
    let entry = state.peers.remove(&peer)?;
    for group in &entry.groups {
        if let Some(members) = state.groups.get_mut(group) {
            members.remove(&peer);
            if members.is_empty() {
                state.groups.remove(group);
            }
        }
    }
    Some(entry)
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        let peers = {
            let mut state = self.shared.state();
            state.closed = true;
            state.groups.clear();
            std::mem::take(&mut state.peers)
        };
        for entry in peers.values() {
            entry.link.end(Ending::polite(CloseCode::Away, "server shutting down"));
        }
        tracing::info!(addr = %self.local_addr, links = peers.len(), "WebSocket server shut down");
    }
}

#[async_trait]
impl ServerTransport for WsServer {
    async fn recv(&mut self) -> Result<Incoming, TransportError> {
        // The sender lives in `shared`, which we hold, so the channel never reports closed.
        self.events.recv().await.ok_or(TransportError::Closed)
    }

    fn send(&self, to: PeerId, frame: Frame) -> Result<(), TransportError> {
        self.shared.check_len(&frame)?;
        let mut state = self.shared.state();
        Shared::deliver(&mut state, to, frame)
    }

    fn publish(&self, group: MatchId, frame: Frame) -> Result<(), TransportError> {
        self.shared.check_len(&frame)?;
        let mut state = self.shared.state();
        let Some(members) = state.groups.get(&group) else { return Ok(()) };
        let members: Vec<PeerId> = members.iter().copied().collect();
        for peer in members {
            // A member that overflows is disconnected and reported; the others still get it.
            let _ = Shared::deliver(&mut state, peer, frame.clone());
        }
        Ok(())
    }

    fn join_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        let mut state = self.shared.state();
        let entry = state.peers.get_mut(&peer).ok_or(TransportError::UnknownPeer(peer))?;
        if !entry.groups.contains(&group) {
            entry.groups.push(group);
        }
        state.groups.entry(group).or_default().insert(peer);
        Ok(())
    }

    fn leave_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        let mut state = self.shared.state();
        if let Some(entry) = state.peers.get_mut(&peer) {
            entry.groups.retain(|g| *g != group);
        }
        if let Some(members) = state.groups.get_mut(&group) {
            members.remove(&peer);
            if members.is_empty() {
                state.groups.remove(&group);
            }
        }
        Ok(())
    }

    fn disconnect(&self, peer: PeerId) -> Result<(), TransportError> {
        let mut state = self.shared.state();
        if let Some(entry) = state.peers.get(&peer) {
            tracing::debug!(%peer, remote = %entry.remote, "disconnecting");
            entry.link.end(Ending::polite(CloseCode::Normal, "disconnected by the server"));
            remove_peer(&mut state, peer);
        }
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.shared.options.max_frame_len
    }

    fn local_addr(&self) -> String {
        self.local_addr.clone()
    }
}

/// Accepts connections until the server is dropped, turning away those over the cap.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, slots: Arc<Semaphore>) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::select! {
                    () = shared.shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(
                %remote,
                max_connections = shared.options.max_connections,
                "connection limit reached; refusing"
            );
            drop(tcp);
            continue;
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%remote, %error, "cannot set TCP_NODELAY");
        }
        tokio::spawn(serve(tcp, remote, Arc::clone(&shared), slot));
    }
    tracing::debug!("accept task stopped");
}

/// One connection, from TCP accept to the end: handshakes under one deadline, then the
/// link. `slot` is its place under the connection cap, held until the very end.
#[tracing::instrument(name = "ws_conn", skip_all, fields(%remote))]
async fn serve(
    tcp: TcpStream,
    remote: SocketAddr,
    shared: Arc<Shared>,
    slot: OwnedSemaphorePermit,
) {
    let deadline = Instant::now() + shared.options.handshake_timeout;
    #[cfg(feature = "tls")]
    if let Some(acceptor) = shared.acceptor.clone() {
        let tls = match handshake_step(&shared, deadline, acceptor.accept(tcp)).await {
            Some(Ok(tls)) => tls,
            Some(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
            None => return,
        };
        if let Some(ws) = upgrade(tls, &shared, deadline).await {
            run_link(ws, remote, shared, slot).await;
        }
        return;
    }
    if let Some(ws) = upgrade(tcp, &shared, deadline).await {
        run_link(ws, remote, shared, slot).await;
    }
}

/// The WebSocket handshake over an accepted (and maybe TLS-wrapped) stream.
async fn upgrade<S>(stream: S, shared: &Shared, deadline: Instant) -> Option<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let accept = tokio_tungstenite::accept_async_with_config(stream, Some(shared.ws_config));
    match handshake_step(shared, deadline, accept).await? {
        Ok(ws) => Some(ws),
        Err(error) => {
            tracing::debug!(%error, "WebSocket handshake failed");
            None
        }
    }
}

/// Runs one handshake step; `None` if the deadline passed or the server shut down.
async fn handshake_step<F: Future>(
    shared: &Shared,
    deadline: Instant,
    step: F,
) -> Option<F::Output> {
    tokio::select! {
        () = shared.shutdown.cancelled() => None,
        done = tokio::time::timeout_at(deadline, step) => {
            if done.is_err() {
                tracing::debug!(timeout = ?shared.options.handshake_timeout, "handshake timed out");
            }
            done.ok()
        }
    }
}

/// Registers the link, spawns its writer and reads until it is over.
async fn run_link<S>(
    ws: WebSocketStream<S>,
    remote: SocketAddr,
    shared: Arc<Shared>,
    slot: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = PeerId(shared.next_peer.fetch_add(1, Ordering::Relaxed));
    serve_link(ws, peer, remote, shared).await;
    drop(slot);
}

#[tracing::instrument(name = "ws_link", skip_all, fields(%peer))]
async fn serve_link<S>(
    ws: WebSocketStream<S>,
    peer: PeerId,
    remote: SocketAddr,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = &shared.options;
    let (queue, queue_rx) = mpsc::channel(options.queue_capacity);
    let link = Arc::new(LinkState::default());
    {
        let mut state = shared.state();
        if state.closed {
            return;
        }
        let entry = PeerEntry { queue, link: Arc::clone(&link), remote, groups: Vec::new() };
        state.peers.insert(peer, entry);
    }
    let (sink, mut stream) = ws.split();
    let mut writer = tokio::spawn(
        link::run_writer(
            sink,
            queue_rx,
            Arc::clone(&link),
            Some(options.ping_interval),
            options.close_timeout,
        )
        .in_current_span(),
    );
    tracing::debug!("connected");
    // Before any frame of this link, so the server core learns of it first.
    let _ = shared.events.send(Incoming::Connected(peer)).await;

    let limits = ReadLimits {
        max_frame_len: options.max_frame_len,
        keepalive_timeout: options.keepalive_timeout,
        close_timeout: options.close_timeout,
    };
    let mut deliver = ToServer { shared: &shared, peer };
    link::read_frames(&mut stream, &link, limits, &mut deliver).await;

    // Reading is over; whatever the writer still does is its close frame.
    link.stop();
    if tokio::time::timeout(options.close_timeout, &mut writer).await.is_err() {
        writer.abort();
    }
    tracing::trace!("connection task done");
}

/// Hands a link's frames and its end to the server's event queue.
struct ToServer<'a> {
    shared: &'a Shared,
    peer: PeerId,
}

impl Deliver for ToServer<'_> {
    async fn frame(&mut self, frame: Frame) {
        // Fails only once the server is dropped, when nobody listens.
        let _ = self.shared.events.send(Incoming::Frame { from: self.peer, frame }).await;
    }

    async fn ended(&mut self, reason: String) {
        remove_peer(&mut self.shared.state(), self.peer);
        tracing::debug!(%reason, "gone");
        let _ = self.shared.events.send(Incoming::Gone { peer: self.peer, reason }).await;
    }
}
