//! The Transport port: opaque frames between clients and one server.
//!
//! A frame is one encoded protocol message ([`pong_domain::codec`]); transports never look
//! inside. Routes are logical: the server sends to one peer or publishes to a match group;
//! a client sends to the server and receives what is sent to it. A peer is one client
//! connection as the server sees it, named by a [`PeerId`].
//!
//! Point-to-point transports (memory, WebSocket, ZeroMQ's ROUTER/DEALER) keep group
//! membership on the server side ([`ServerTransport::join_group`]) and fan a publish out
//! over each member's own queue; [`ClientTransport::subscribe`] returns at once. The broker
//! transport (RabbitMQ) maps a publish onto the broker's fan-out: the client binds its queue
//! in [`ClientTransport::subscribe`], and the server's `join_group` marks where membership
//! starts. Both calls exist on every transport, and each adapter implements the one that
//! matters to it and accepts the other.
//!
//! # What every adapter MUST do
//! The conformance suite in `tests/` has one test per rule.
//! 1. **Order**: frames a client sends reach the server in the order sent; frames the server
//!    sends to a peer, directly or through a group, reach it in the order sent.
//! 2. **No loss on a healthy connection**: while a connection is up, every frame sent on it
//!    arrives once.
//! 3. **Group fan-out**: [`ServerTransport::publish`] reaches every peer in the group (joined
//!    with [`ServerTransport::join_group`] or confirmed by [`ClientTransport::subscribe`]) and
//!    no other. The server never receives its own publishes.
//! 4. **Size limit**: a frame longer than [`ServerTransport::max_frame_len`] (or
//!    [`ClientTransport::max_frame_len`]) is refused by `send`/`publish` with
//!    [`TransportError::FrameTooLarge`]; an oversized frame arriving from a peer is dropped,
//!    never delivered.
//! 5. **Vanished peers**: when a transport learns that a client's connection is gone (the
//!    client closed or dropped it, its process died, it overflowed, or the server
//!    disconnected it) it MUST report [`Incoming::Gone`] exactly once; a client whose
//!    connection is gone gets [`TransportError::Closed`] from `recv`. A peer that vanishes
//!    without its connection ever closing (a cable pulled) is seen by no transport: the
//!    protocol's heartbeats find it.
//! 6. **Reconnect**: [`Connector::connect`] may be called again after a connection is lost;
//!    the new connection gets a new [`PeerId`] at the server.
//! 7. **Never block on a peer**: `send`, `publish` and the group calls only queue work; a
//!    slow or dead peer never stalls them. A peer whose queue overflows is disconnected
//!    (and reported as gone) rather than buffered without bound.
//! 8. **Cancel safety**: `recv` may be dropped at any await point (it sits in `select!`)
//!    without losing a frame.
//! 9. **Subscriptions are confirmed**: [`ClientTransport::subscribe`] returns only once
//!    frames published to the group after that moment will reach this client.

use async_trait::async_trait;
use pong_domain::proto::MatchId;
use pong_domain::route::{Origin, PeerId};

/// One encoded message. Cheap to clone, so a fan-out shares one buffer.
pub type Frame = bytes::Bytes;

/// What a transport can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The connection (or the server endpoint) is closed.
    #[error("the link is closed")]
    Closed,
    /// A connection attempt failed.
    #[error("cannot reach {addr}: {reason}")]
    Connect {
        /// What was dialled.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// Binding a listening endpoint failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// What was asked for.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// No peer with that id (it may have gone).
    #[error("{0} is not connected")]
    UnknownPeer(PeerId),
    /// The frame is longer than the transport carries.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer's queue is full; the peer is being disconnected.
    #[error("the send queue of {0} is full")]
    Backpressure(PeerId),
    /// A group subscription could not be confirmed.
    #[error("cannot subscribe to {group}: {reason}")]
    Subscribe {
        /// The group.
        group: MatchId,
        /// Why.
        reason: String,
    },
    /// Anything else the underlying library reported.
    #[error("{0}")]
    Other(String),
}

/// Something that happened at the server end of a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A frame from a peer.
    Frame {
        /// The peer it came from (not proof of who sent it).
        from: PeerId,
        /// The frame.
        frame: Frame,
    },
    /// A new peer, before its first frame.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Where it comes from, as far as the transport can tell: what the server's
        /// per-address bounds count by.
        origin: Origin,
    },
    /// A peer's connection is gone.
    Gone {
        /// The peer.
        peer: PeerId,
        /// Why, for logs.
        reason: String,
    },
}

/// The server end of a transport. See the module docs for the rules every adapter follows.
#[async_trait]
pub trait ServerTransport: Send {
    /// Waits for the next frame or peer event. Cancel-safe.
    ///
    /// # Errors
    /// [`TransportError::Closed`] once the endpoint is shut down; other errors are
    /// reported only when the transport cannot go on.
    async fn recv(&mut self) -> Result<Incoming, TransportError>;

    /// Queues `frame` for one peer. Never waits for the peer.
    ///
    /// # Errors
    /// [`TransportError::UnknownPeer`], [`TransportError::FrameTooLarge`] or
    /// [`TransportError::Backpressure`] (the peer is then disconnected).
    fn send(&self, to: PeerId, frame: Frame) -> Result<(), TransportError>;

    /// Queues `frame` for every member of `group`. Never waits for the members.
    ///
    /// # Errors
    /// [`TransportError::FrameTooLarge`], or a broker failure.
    fn publish(&self, group: MatchId, frame: Frame) -> Result<(), TransportError>;

    /// Adds a peer to a group (point-to-point transports fan out to these members).
    ///
    /// # Errors
    /// [`TransportError::UnknownPeer`] if the peer is gone.
    fn join_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError>;

    /// Removes a peer from a group.
    ///
    /// # Errors
    /// Only transport failures; leaving a group one is not in is fine.
    fn leave_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError>;

    /// Closes a peer's connection after the frames already queued for it.
    ///
    /// # Errors
    /// Only transport failures; closing an unknown peer is fine.
    fn disconnect(&self, peer: PeerId) -> Result<(), TransportError>;

    /// Largest frame this transport carries.
    fn max_frame_len(&self) -> usize {
        pong_domain::codec::MAX_FRAME_LEN
    }

    /// Where clients can reach this server, for logs and banners.
    fn local_addr(&self) -> String;

    /// False while the endpoint can reach none of its peers and is trying to get back (a
    /// broker connection being re-established); health checks report it. A transport
    /// without such a state is always connected (the default).
    fn is_connected(&self) -> bool {
        true
    }

    /// Shuts the endpoint down gracefully: closes every connection after what is queued for it and
    /// releases what the transport holds outside this process (a broker's queues), waiting
    /// a bounded time. Dropping the endpoint closes connections too, but may leave such resources
    /// to expire on their own. The default does nothing more than dropping.
    async fn shutdown(&mut self) {}
}

/// The client end of one connection to a server.
#[async_trait]
pub trait ClientTransport: Send {
    /// Waits for the next frame from the server. Cancel-safe.
    ///
    /// # Errors
    /// [`TransportError::Closed`] once the connection is gone.
    async fn recv(&mut self) -> Result<Frame, TransportError>;

    /// Queues `frame` for the server. Never waits for the network.
    ///
    /// # Errors
    /// [`TransportError::Closed`] or [`TransportError::FrameTooLarge`].
    fn send(&self, frame: Frame) -> Result<(), TransportError>;

    /// Subscribes this connection to a match group and returns once the subscription is confirmed
    /// (rule 9). Point-to-point transports, whose groups the server keeps, return at once.
    ///
    /// # Errors
    /// [`TransportError::Subscribe`] if the confirmation never came.
    async fn subscribe(&mut self, group: MatchId) -> Result<(), TransportError>;

    /// Closes the connection, after sending what is queued where the transport can.
    async fn close(&mut self);

    /// Largest frame this transport carries.
    fn max_frame_len(&self) -> usize {
        pong_domain::codec::MAX_FRAME_LEN
    }
}

/// Opens client connections to one server; called again to reconnect.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Opens a new connection.
    ///
    /// # Errors
    /// [`TransportError::Connect`] if the server cannot be reached.
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError>;

    /// What this connector dials, for logs and error messages.
    fn describe(&self) -> String;
}
