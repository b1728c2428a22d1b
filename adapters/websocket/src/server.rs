//! The server end: [`WsServer`] accepts WebSocket connections, gives each a [`PeerId`],
//! and moves frames between them and the game server through the
//! [`ServerTransport`] port.
//!
//! ```text
//! accept task ──► per connection: handshake (TLS, then the request head, under one timeout)
//!                 ├─ a plain HTTP request: served by `WsOptions::http` (metrics, status, …)
//!                 └─ a WebSocket upgrade: the game connection
//!                   ├─ reader (the connection's task): frames and connection events → recv()
//!                   └─ writer task: bounded queue ◄── send()/publish() (try_send only)
//! ```
//!
//! Group membership lives here (point-to-point transport): `publish` loops over the
//! members, sharing one buffer. Every connection is reported [`Incoming::Connected`] before its
//! first frame and [`Incoming::Gone`] exactly once after its last, whoever ended it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pong_http::{HttpOptions, HttpService, Prefixed, Sniffed};
use pong_ports::{
    Frame, HttpHandler, HttpRequest, HttpResponse, Incoming, MatchId, Origin, PeerId,
    ServerTransport, TransportError,
};
use pong_transport_support::{Outbox, PeerServer, PeerTable, Refusal, lock};
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
use crate::connection::{self, ConnectionState, Deliver, Ending, ReadLimits};

/// Longest request head read before deciding between HTTP and a WebSocket upgrade.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

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
    peers: PeerTable<PeerEntry>,
}

#[derive(Debug)]
struct PeerEntry {
    /// The only sender of the writer's queue: removing the entry closes the queue, and the
    /// writer then sends what is left and the close frame. Record the connection's ending
    /// first: the writer reads it to know how to close.
    queue: mpsc::Sender<Frame>,
    connection: Arc<ConnectionState>,
    remote: SocketAddr,
}

impl Outbox for PeerEntry {
    fn outbox(&self) -> &mpsc::Sender<Frame> {
        &self.queue
    }
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
            ws_config: connection::ws_config(options.max_frame_len),
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
        self.shared.peer_ids()
    }

    /// The remote address of a connected peer, for logs.
    #[must_use]
    pub fn remote_addr(&self, peer: PeerId) -> Option<SocketAddr> {
        self.shared.state().peers.get(peer).map(|entry| entry.remote)
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

    /// A frame could not be queued for `to`: a peer that cannot keep up is closed at once
    /// (1008), one whose writer is gone is forgotten (its reader reports it). Returns what
    /// `send` reports.
    fn refused(&self, state: &mut State, to: PeerId, refusal: Refusal) -> TransportError {
        match refusal {
            Refusal::Unknown => {}
            Refusal::Full => {
                if let Some(entry) = state.peers.get(to) {
                    tracing::warn!(
                        peer = %to,
                        remote = %entry.remote,
                        "send queue full: the client cannot keep up; disconnecting"
                    );
                    entry.connection.end(Ending::abrupt(CloseCode::Policy, "send queue overflow"));
                }
                state.peers.remove(to);
            }
            // The writer is gone (a write failed); the reader is reporting it.
            Refusal::Closed => drop(state.peers.remove(to)),
        }
        refusal.into_error(to)
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        let peers = {
            let mut state = self.shared.state();
            state.closed = true;
            std::mem::take(&mut state.peers)
        };
        for (_, entry) in peers.iter() {
            entry.connection.end(Ending::polite(CloseCode::Away, "server shutting down"));
        }
        tracing::info!(addr = %self.local_addr, peers = peers.len(), "WebSocket server shut down");
    }
}

#[async_trait]
impl ServerTransport for WsServer {
    async fn recv(&mut self) -> Result<Incoming, TransportError> {
        // The sender lives in `shared`, which we hold, so the channel never reports closed.
        self.events.recv().await.ok_or(TransportError::Closed)
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
        if let Some(entry) = state.peers.remove(peer) {
            tracing::debug!(%peer, remote = %entry.remote, "disconnecting");
            // Before `entry` drops and closes the writer's queue.
            entry.connection.end(Ending::polite(CloseCode::Normal, "disconnected by the server"));
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
/// connection. `slot` is its place under the connection cap, held until the very end.
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
        serve_stream(tls, remote, shared, slot, deadline).await;
        return;
    }
    serve_stream(tcp, remote, shared, slot, deadline).await;
}

/// Reads the first request head and serves the connection as what it asks for: the game
/// over WebSocket, or the HTTP endpoints.
async fn serve_stream<S>(
    stream: S,
    remote: SocketAddr,
    shared: Arc<Shared>,
    slot: OwnedSemaphorePermit,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (asked, stream) =
        match handshake_step(&shared, deadline, pong_http::sniff(stream, MAX_REQUEST_HEAD)).await {
            Some(Ok(sniffed)) => sniffed,
            Some(Err(error)) => {
                tracing::debug!(%error, "no request head");
                return;
            }
            None => return,
        };
    match asked {
        Sniffed::WebSocket => {
            if let Some(ws) = upgrade(stream, &shared, deadline).await {
                run_peer(ws, remote, shared, slot).await;
            }
        }
        Sniffed::Http => {
            let service =
                shared.options.http.clone().unwrap_or_else(|| HttpService::new(UpgradeRequired));
            let options = HttpOptions {
                header_timeout: shared.options.handshake_timeout,
                max_head: MAX_REQUEST_HEAD,
                ..HttpOptions::default()
            };
            tokio::select! {
                () = shared.shutdown.cancelled() => {}
                () = pong_http::serve_connection(stream, service, options) => {}
            }
            drop(slot);
        }
    }
}

/// What a plain HTTP request gets from a server that serves no HTTP endpoints.
struct UpgradeRequired;

#[async_trait]
impl HttpHandler for UpgradeRequired {
    async fn handle(&self, _: HttpRequest) -> HttpResponse {
        HttpResponse::text(
            426,
            "This is a Distributed Pong server: it speaks WebSocket here (pong play --server ws://…).\n",
        )
    }
}

/// The WebSocket handshake over an accepted (and maybe TLS-wrapped) stream whose request
/// head has been read and is replayed.
async fn upgrade<S>(
    stream: Prefixed<S>,
    shared: &Shared,
    deadline: Instant,
) -> Option<WebSocketStream<Prefixed<S>>>
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

/// Gives the connection a peer id and serves it; the slot is held until it is over.
async fn run_peer<S>(
    ws: WebSocketStream<S>,
    remote: SocketAddr,
    shared: Arc<Shared>,
    slot: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = PeerId(shared.next_peer.fetch_add(1, Ordering::Relaxed));
    serve_peer(ws, peer, remote, shared).await;
    drop(slot);
}

/// Registers the peer, spawns its writer and reads until its connection is over.
#[tracing::instrument(name = "ws_peer", skip_all, fields(%peer))]
async fn serve_peer<S>(
    ws: WebSocketStream<S>,
    peer: PeerId,
    remote: SocketAddr,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = &shared.options;
    let (queue, queue_rx) = mpsc::channel(options.queue_capacity);
    let connection = Arc::new(ConnectionState::default());
    {
        let mut state = shared.state();
        if state.closed {
            return;
        }
        let entry = PeerEntry { queue, connection: Arc::clone(&connection), remote };
        state.peers.insert(peer, entry);
    }
    let (sink, mut stream) = ws.split();
    let mut writer = tokio::spawn(
        connection::run_writer(
            sink,
            queue_rx,
            Arc::clone(&connection),
            Some(options.ping_interval),
            options.close_timeout,
        )
        .in_current_span(),
    );
    tracing::debug!("connected");
    // Before any frame of this connection, so the server core learns of it first.
    let _ = shared.events.send(Incoming::Connected { peer, origin: Origin::Ip(remote.ip()) }).await;

    let limits = ReadLimits {
        max_frame_len: options.max_frame_len,
        keepalive_timeout: options.keepalive_timeout,
        close_timeout: options.close_timeout,
    };
    let mut deliver = ToServer { shared: &shared, peer };
    connection::read_frames(&mut stream, &connection, limits, &mut deliver).await;

    // Reading is over; whatever the writer still does is its close frame.
    connection.stop();
    if tokio::time::timeout(options.close_timeout, &mut writer).await.is_err() {
        writer.abort();
    }
    tracing::trace!("connection task done");
}

/// Hands a peer's frames and its end to the server's event queue.
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
        self.shared.state().peers.remove(self.peer);
        tracing::debug!(%reason, "gone");
        let _ = self.shared.events.send(Incoming::Gone { peer: self.peer, reason }).await;
    }
}
