//! An in-process Transport: a server and its clients in one process, on one tokio runtime.
//!
//! It exists so that the server core, bots and clients can be tested together (and a local
//! game played) without sockets, while still obeying every rule of the Transport port
//! ([`pong_ports::transport`]): bounded queues, disconnect on overflow, `Gone` reported
//! exactly once per connection, cancel-safe `recv`.
//!
//! ```text
//! MemoryHub ──server()────► MemoryServer   (one live endpoint at a time)
//!     └──────connector()──► MemoryConnector ──connect()──► MemoryClient (one per connection)
//! ```
//!
//! It is a point-to-point transport: the server keeps group membership
//! ([`ServerTransport::join_group`]) and [`ClientTransport::subscribe`] returns at once.
//!
//! # Connection events
//! Every connection is reported [`Incoming::Connected`] before its first frame and
//! [`Incoming::Gone`] exactly once after its last: when the client closes or drops it, when
//! its queue overflows, and also when the server itself calls
//! [`ServerTransport::disconnect`] (so the server core can clean up in one place).
//!
//! # Queues
//! Each connection has two bounded queues of [`MemoryOptions::queue_capacity`] frames. When the
//! queue towards a client is full, the server's `send`/`publish` disconnects that client,
//! reports [`Incoming::Gone`] and (for `send`) returns [`TransportError::Backpressure`].
//! When the queue from a client towards the server is full (the server is not reading),
//! the client's `send` does the same to its own connection: losing frames silently would break
//! rule 2, and waiting would break rule 7.
//!
//! # Endpoints
//! [`MemoryHub::server`] hands out one endpoint; asking again while it is alive is an error
//! ([`TransportError::Listen`]), asking after it was dropped gives a fresh endpoint (a
//! "restarted server": old connections stay closed, new connections get new ids). Dropping
//! the endpoint closes every connection: clients get [`TransportError::Closed`] after the
//! frames already queued for them.
//!
//! # Silent death
//! [`MemoryClient::sever_silently`] (or [`MemoryHub::sever_silently`] by peer id) makes a
//! connection stop carrying frames in both directions without anyone being told, like a cable
//! pulled out mid-game: only heartbeats can find it. Closing or dropping a severed client
//! tells the server nothing either; [`ServerTransport::disconnect`] still removes it (and
//! reports it gone).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use pong_ports::{
    ClientTransport, Connector, Frame, Incoming, MatchId, Origin, PeerId, ServerTransport,
    TransportError,
};
use pong_transport_support::{
    Credits, EventReceiver, EventSender, Outbox, PeerServer, PeerTable, Refusal, check_frame_len,
    events, lock,
};
use tokio::sync::mpsc;

/// What [`MemoryServer::local_addr`] and [`MemoryConnector::describe`] report.
pub const MEMORY_ADDR: &str = "memory";

/// Tunables of a [`MemoryHub`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Frames each connection may hold in each direction before it is disconnected.
    pub queue_capacity: usize,
    /// Longest frame `send`/`publish` accept, both sides.
    pub max_frame_len: usize,
}

impl MemoryOptions {
    /// The default queue capacity, in frames.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self {
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            max_frame_len: pong_domain::codec::MAX_FRAME_LEN,
        }
    }
}

/// The meeting point of one in-process server and its clients. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryHub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    options: MemoryOptions,
    /// Shared by every endpoint this hub ever had, so a restarted server never reuses an id.
    next_peer: AtomicU64,
    server: Mutex<Option<Arc<ServerShared>>>,
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self::new(MemoryOptions::default())
    }
}

impl MemoryHub {
    /// A hub with no server endpoint yet.
    ///
    /// A `queue_capacity` of 0 is treated as 1 (tokio channels need room for one frame).
    #[must_use]
    pub fn new(options: MemoryOptions) -> Self {
        let options = MemoryOptions { queue_capacity: options.queue_capacity.max(1), ..options };
        Self {
            inner: Arc::new(HubInner {
                options,
                next_peer: AtomicU64::new(1),
                server: Mutex::new(None),
            }),
        }
    }

    /// The options this hub was made with.
    #[must_use]
    pub fn options(&self) -> MemoryOptions {
        self.inner.options
    }

    /// Creates the server endpoint.
    ///
    /// # Errors
    /// [`TransportError::Listen`] while an earlier endpoint of this hub is still alive.
    pub fn server(&self) -> Result<MemoryServer, TransportError> {
        let mut slot = lock(&self.inner.server);
        if slot.as_ref().is_some_and(|live| !live.state().closed) {
            return Err(TransportError::Listen {
                addr: MEMORY_ADDR.to_owned(),
                reason: "this hub already has a live server endpoint".to_owned(),
            });
        }
        let (events_tx, events_rx) = events();
        let shared = Arc::new(ServerShared {
            options: self.inner.options,
            events: events_tx,
            state: Mutex::new(ServerState::default()),
        });
        *slot = Some(Arc::clone(&shared));
        tracing::debug!("memory server endpoint created");
        Ok(MemoryServer { shared, events: events_rx })
    }

    /// A connector that opens connections to this hub's server endpoint.
    #[must_use]
    pub fn connector(&self) -> MemoryConnector {
        MemoryConnector { hub: self.clone(), origin: Origin::Link }
    }

    /// Severs the connection of `peer` silently (see [`MemoryClient::sever_silently`]);
    /// returns false if the live server endpoint has no such connection.
    pub fn sever_silently(&self, peer: PeerId) -> bool {
        let Some(shared) = self.live_server() else { return false };
        let state = shared.state();
        match state.peers.get(peer) {
            Some(entry) => {
                entry.connection.sever();
                true
            }
            None => false,
        }
    }

    fn live_server(&self) -> Option<Arc<ServerShared>> {
        lock(&self.inner.server).as_ref().filter(|s| !s.state().closed).cloned()
    }

    fn connect_client(&self, origin: Origin) -> Result<MemoryClient, TransportError> {
        let options = self.inner.options;
        let refused = |reason: &str| TransportError::Connect {
            addr: MEMORY_ADDR.to_owned(),
            reason: reason.to_owned(),
        };
        let shared =
            lock(&self.inner.server).clone().ok_or_else(|| refused("no server endpoint"))?;
        let peer = PeerId(self.inner.next_peer.fetch_add(1, Ordering::Relaxed));
        let (to_client, from_server) = mpsc::channel(options.queue_capacity);
        let connection = Arc::new(Connection {
            peer,
            severed: AtomicBool::new(false),
            upstream_credit: Credits::new(options.queue_capacity),
        });
        {
            let mut state = shared.state();
            if state.closed {
                return Err(refused("the server endpoint was dropped"));
            }
            state.peers.insert(peer, PeerEntry { to_client, connection: Arc::clone(&connection) });
            // Under the lock, so Connected is queued before any frame of this connection.
            shared.events.connected(peer, origin);
        }
        tracing::debug!(%peer, "memory connection opened");
        Ok(MemoryClient { shared, connection, from_server, closed: false })
    }
}

/// The shared state of a server endpoint; clients hold it to reach the server.
#[derive(Debug)]
struct ServerShared {
    options: MemoryOptions,
    events: EventSender,
    state: Mutex<ServerState>,
}

#[derive(Debug, Default)]
struct ServerState {
    /// Set when the endpoint is dropped; connections are refused from then on.
    closed: bool,
    peers: PeerTable<PeerEntry>,
}

#[derive(Debug)]
struct PeerEntry {
    to_client: mpsc::Sender<Frame>,
    connection: Arc<Connection>,
}

impl Outbox for PeerEntry {
    fn outbox(&self) -> &mpsc::Sender<Frame> {
        &self.to_client
    }

    fn is_severed(&self) -> bool {
        self.connection.is_severed()
    }
}

/// What both ends of one in-memory connection share.
#[derive(Debug)]
struct Connection {
    peer: PeerId,
    severed: AtomicBool,
    /// One place per frame the client may have queued towards the server: the bound of the
    /// upstream queue, which is otherwise one channel shared by every connection.
    upstream_credit: Credits,
}

impl Connection {
    fn sever(&self) {
        if !self.severed.swap(true, Ordering::AcqRel) {
            tracing::debug!(peer = %self.peer, "memory connection severed silently");
        }
    }

    fn is_severed(&self) -> bool {
        self.severed.load(Ordering::Acquire)
    }
}

impl AsMut<PeerTable<PeerEntry>> for ServerState {
    fn as_mut(&mut self) -> &mut PeerTable<PeerEntry> {
        &mut self.peers
    }
}

impl PeerServer for ServerShared {
    type State = ServerState;
    type Entry = PeerEntry;

    fn state(&self) -> MutexGuard<'_, ServerState> {
        lock(&self.state)
    }

    fn max_frame_len(&self) -> usize {
        self.options.max_frame_len
    }

    /// A frame could not be queued for `to`: an overflowing or dropped client is
    /// disconnected. Returns what `send` reports.
    fn refused(&self, state: &mut ServerState, to: PeerId, refusal: Refusal) -> TransportError {
        match refusal {
            Refusal::Unknown => {}
            Refusal::Full => {
                tracing::warn!(peer = %to, "memory queue towards the client is full; disconnecting");
                Self::remove_peer(state, &self.events, to, "send queue overflow");
            }
            // The client was dropped and its Drop has not removed the entry yet.
            Refusal::Closed => Self::remove_peer(state, &self.events, to, "client dropped"),
        }
        refusal.into_error(to)
    }
}

impl ServerShared {
    /// Removes a connection and reports it gone; whoever removes it reports it, so `Gone`
    /// is sent exactly once per connection. Dropping the entry's sender ends the client's
    /// `recv` after the frames already queued.
    fn remove_peer(state: &mut ServerState, events: &EventSender, peer: PeerId, reason: &str) {
        if state.peers.remove(peer).is_some() {
            tracing::debug!(%peer, reason, "memory connection gone");
            events.gone(peer, reason);
        }
    }
}

/// The server endpoint of a [`MemoryHub`]. Dropping it closes every connection.
#[derive(Debug)]
pub struct MemoryServer {
    shared: Arc<ServerShared>,
    events: EventReceiver,
}

impl MemoryServer {
    /// The peers currently connected, in id order (for tests and diagnostics).
    #[must_use]
    pub fn peers(&self) -> Vec<PeerId> {
        self.shared.peer_ids()
    }
}

impl Drop for MemoryServer {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.closed = true;
        state.peers.drain().for_each(drop);
        tracing::debug!("memory server endpoint dropped");
    }
}

#[async_trait]
impl ServerTransport for MemoryServer {
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
        ServerShared::remove_peer(
            &mut state,
            &self.shared.events,
            peer,
            "disconnected by the server",
        );
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.shared.options.max_frame_len
    }

    fn local_addr(&self) -> String {
        MEMORY_ADDR.to_owned()
    }
}

/// Opens connections to a [`MemoryHub`]'s server endpoint.
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    hub: MemoryHub,
    origin: Origin,
}

impl MemoryConnector {
    /// Opens a connection and returns the concrete client, for tests that need
    /// [`MemoryClient::peer`] or [`MemoryClient::sever_silently`].
    ///
    /// # Errors
    /// [`TransportError::Connect`] if the hub has no live server endpoint.
    pub fn connect_client(&self) -> Result<MemoryClient, TransportError> {
        self.hub.connect_client(self.origin)
    }

    /// The same connector, whose connections the server sees coming from `origin` (by
    /// default [`Origin::Link`]): for tests of the per-address bounds.
    #[must_use]
    pub fn from_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }
}

#[async_trait]
impl Connector for MemoryConnector {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        Ok(Box::new(self.hub.connect_client(self.origin)?))
    }

    fn describe(&self) -> String {
        MEMORY_ADDR.to_owned()
    }
}

/// The client end of one in-memory connection. Dropping it closes the connection like
/// [`ClientTransport::close`].
#[derive(Debug)]
pub struct MemoryClient {
    shared: Arc<ServerShared>,
    connection: Arc<Connection>,
    from_server: mpsc::Receiver<Frame>,
    closed: bool,
}

impl MemoryClient {
    /// The id the server knows this connection by.
    #[must_use]
    pub fn peer(&self) -> PeerId {
        self.connection.peer
    }

    /// Makes the connection stop carrying frames in both directions without telling either end:
    /// sends on both sides still succeed, nothing arrives, no `Gone`, no `Closed`. For
    /// testing that heartbeats find dead connections.
    pub fn sever_silently(&self) {
        self.connection.sever();
    }

    fn shut(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        self.from_server.close();
        if self.connection.is_severed() {
            // Nobody can hear a severed connection close; the server finds out by heartbeats.
            return;
        }
        let mut state = self.shared.state();
        let ours = state
            .peers
            .get(self.connection.peer)
            .is_some_and(|e| Arc::ptr_eq(&e.connection, &self.connection));
        if ours {
            ServerShared::remove_peer(
                &mut state,
                &self.shared.events,
                self.connection.peer,
                "closed by the client",
            );
        }
    }
}

impl Drop for MemoryClient {
    fn drop(&mut self) {
        self.shut();
    }
}

#[async_trait]
impl ClientTransport for MemoryClient {
    async fn recv(&mut self) -> Result<Frame, TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        loop {
            let frame = self.from_server.recv().await.ok_or(TransportError::Closed)?;
            if !self.connection.is_severed() {
                return Ok(frame);
            }
            // Queued before the connection was severed, but a severed connection delivers nothing.
        }
    }

    fn send(&self, frame: Frame) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        check_frame_len(&frame, self.shared.options.max_frame_len)?;
        if self.connection.is_severed() {
            return Ok(());
        }
        let peer = self.connection.peer;
        let mut state = self.shared.state();
        let ours =
            state.peers.get(peer).is_some_and(|e| Arc::ptr_eq(&e.connection, &self.connection));
        if state.closed || !ours {
            return Err(TransportError::Closed);
        }
        let Some(credit) = self.connection.upstream_credit.try_take() else {
            tracing::warn!(%peer, "memory queue towards the server is full; disconnecting");
            ServerShared::remove_peer(
                &mut state,
                &self.shared.events,
                peer,
                "receive queue overflow",
            );
            return Err(TransportError::Backpressure(peer));
        };
        self.shared.events.frame(peer, frame, credit);
        Ok(())
    }

    async fn subscribe(&mut self, _group: MatchId) -> Result<(), TransportError> {
        // Point-to-point: the server keeps the groups (join_group), nothing to confirm.
        Ok(())
    }

    async fn close(&mut self) {
        self.shut();
    }

    fn max_frame_len(&self) -> usize {
        self.shared.options.max_frame_len
    }
}

#[cfg(test)]
mod tests;
