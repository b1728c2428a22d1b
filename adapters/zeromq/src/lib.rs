//! A ZeroMQ Transport: a ROUTER server and one DEALER per client connection, speaking standard
//! ZMTP 3 (mechanism NULL) over tcp or ipc, built on the pure-Rust [`zeromq`] crate.
//!
//! ```text
//!  ZmqConnector ──connect()──► ZmqClient: a DEALER with a fresh routing id per connection
//!                                  │ tcp://host:port (or ipc://path)
//!  ┌─ ZmqServer::bind ─────────────▼─────────────────────────────────────────┐
//!  │  public listener ─► guard relay ─► ROUTER on a private backplane        │
//!  │                     (ZMTP limits,    ├─► pump task ─► recv()            │
//!  │                      stalls)         └─◄ one writer per peer ◄─ send()  │
//!  └──────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! # Why ROUTER/DEALER with server-side fan-out
//! Every frame for one peer, sent directly or through a group, goes through that peer's
//! single ordered queue on the ROUTER socket, so rule 1 (order) holds across `send` and
//! `publish`. Groups live in the server ([`ServerTransport::join_group`]): a publish is a
//! loop over members, and membership changes take effect synchronously, so rule 9 holds
//! without a subscription handshake and [`ClientTransport::subscribe`] returns at once.
//! PUB/SUB would have needed a second socket (no ordering against ROUTER traffic), SUB
//! subscriptions that are only confirmed by seeing traffic (the slow-joiner problem), and
//! it drops silently for slow subscribers. `docs/transports/zeromq.md` has the whole story.
//!
//! # Peer identity
//! Each [`ZmqClient`] sets a fresh random 16-byte routing id on its DEALER; a libzmq peer
//! that sets none gets a random one from the ROUTER. The server maps each routing id it
//! hears from to a fresh [`PeerId`], so a reconnect is a new `PeerId` (rule 6). Routing
//! ids are addresses, not credentials: the game protocol signs every frame with the
//! session token, and that is what the server trusts.
//!
//! # The guard
//! zeromq 0.7 has no maximum message size and reserves the length a frame header claims
//! before reading it, so one 9-byte header can make it allocate terabytes and abort the
//! process. The server therefore never exposes the crate's socket: it accepts connections
//! itself and relays them to a ROUTER bound on a private backplane (a unix socket in a
//! 0700 directory; loopback tcp elsewhere), checking the ZMTP framing of every byte a
//! client sends and cutting connections that break it, exceed the limits, do not finish
//! the handshake in time, or stop reading what the server sends. Accepting connections
//! itself also lets it cap them: at most [`ZmqOptions::max_connections`] relayed at once,
//! [`ZmqOptions::max_connections_per_address`] from one IP address; a connection beyond
//! either is closed as soon as it is accepted.
//!
//! # Connection events
//! A peer whose connection closes (the client closed, dropped, crashed, or its process was
//! killed: the kernel still closes the socket), that the guard cuts, or whose queue
//! overflows is reported [`Incoming::Gone`] exactly once, as is a peer the server
//! disconnects; the client then gets the frames queued before the disconnect and
//! [`TransportError::Closed`]. A peer that vanishes without its connection closing (cable
//! pulled, host frozen) is seen by nobody, exactly as with any TCP transport: the
//! protocol's heartbeats find it.
//!
//! [`ServerTransport::join_group`]: pong_ports::ServerTransport::join_group
//! [`ClientTransport::subscribe`]: pong_ports::ClientTransport::subscribe
//! [`PeerId`]: pong_ports::PeerId
//! [`Incoming::Gone`]: pong_ports::Incoming::Gone
//! [`TransportError::Closed`]: pong_ports::TransportError::Closed

mod backplane;
mod caps;
mod client;
mod guard;
mod relay;
mod server;

/// The guard's parser for the fuzz targets in `fuzz/` (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::guard::{Guard, Limits};

    /// Feeds the guard `chunks` in order, as a connection delivers them, with the server's
    /// default limits: `Ok` with whether the handshake passed, or the violation that would
    /// cut the connection.
    ///
    /// # Errors
    /// The violation, as text.
    pub fn guard_verdict(chunks: &[&[u8]]) -> Result<bool, String> {
        let mut guard = Guard::new(Limits::for_frames(pong_domain::codec::MAX_FRAME_LEN));
        for chunk in chunks {
            guard.feed(chunk).map_err(|v| format!("{v:?}"))?;
        }
        Ok(guard.handshake_done())
    }
}

use std::time::Duration;

use bytes::Bytes;
use pong_ports::Frame;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeromq::{SocketSend, ZmqMessage};

pub use client::{ZmqClient, ZmqConnector};
pub use server::{ZmqServer, ZmqServerStats};

/// Tunables of a [`ZmqServer`] or a [`ZmqConnector`]. Fields marked "server" or "client"
/// matter only on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZmqOptions {
    /// Frames each connection may hold in each of the adapter's own queues before the connection is
    /// disconnected (server → peer and peer → server on the server; both ways on a client).
    /// The zeromq crate adds its own fixed queue of 100 000 messages per connection behind
    /// the server → peer queue; see `docs/transports/zeromq.md`.
    pub queue_capacity: usize,
    /// Longest frame `send`/`publish` accept and that is delivered, both sides.
    pub max_frame_len: usize,
    /// Client: how long `connect` keeps trying (refused connections are retried).
    pub connect_timeout: Duration,
    /// Server: a connection has this long to complete the ZMTP greeting and READY.
    pub handshake_timeout: Duration,
    /// Server: a peer whose connection accepts no bytes for this long, while the server has
    /// bytes for it, is cut (the slow-consumer rule, checked where the kernel buffers end).
    pub stall_timeout: Duration,
    /// Server: client connections relayed at once, counting those still in their handshake.
    /// Each costs a task, two buffers and a backplane connection, so without a cap a flood
    /// of idle connections could exhaust the server's memory or descriptors. A connection
    /// beyond it is closed as soon as it is accepted, before any byte is relayed, and
    /// counted in [`ZmqServerStats::refused_max_connections`].
    pub max_connections: usize,
    /// Server: client connections relayed at once from one IP address (tcp endpoints; ipc
    /// connections count against [`ZmqOptions::max_connections`] only). Keeps one host from
    /// taking every place under `max_connections` by itself; several players behind one NAT
    /// share it. A connection beyond it is closed as soon as it is accepted and counted in
    /// [`ZmqServerStats::refused_max_connections_per_address`].
    pub max_connections_per_address: usize,
}

impl ZmqOptions {
    /// The default queue capacity, in frames.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
    /// The default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default handshake timeout.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default stall timeout.
    pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default of [`ZmqOptions::max_connections`], the same as the WebSocket
    /// transport's.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// The default of [`ZmqOptions::max_connections_per_address`]: room for a few dozen
    /// players or bots behind one address, a small share of the total.
    pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 32;

    /// The options with a zero `queue_capacity` raised to 1 (tokio channels need room), zero
    /// durations to 1 ms, and zero connection caps to 1 (a server that refuses every
    /// connection is never what was meant).
    fn normalized(self) -> Self {
        let positive = |d: Duration| d.max(Duration::from_millis(1));
        Self {
            queue_capacity: self.queue_capacity.max(1),
            max_frame_len: self.max_frame_len,
            connect_timeout: positive(self.connect_timeout),
            handshake_timeout: positive(self.handshake_timeout),
            stall_timeout: positive(self.stall_timeout),
            max_connections: self.max_connections.max(1),
            max_connections_per_address: self.max_connections_per_address.max(1),
        }
    }
}

impl Default for ZmqOptions {
    fn default() -> Self {
        Self {
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            max_frame_len: pong_domain::codec::MAX_FRAME_LEN,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            stall_timeout: Self::DEFAULT_STALL_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: Self::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
        }
    }
}

/// Formats a routing id for logs: hex, at most 16 bytes.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in self.0.iter().take(16) {
            write!(f, "{byte:02x}")?;
        }
        if self.0.len() > 16 {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// Moves frames from a connection's bounded queue into a socket, in order: what a client's
/// writer and each of the server's peer writers do. Returns `Ok` when the queue closes (all
/// of it sent) or `abort` fires (the rest dropped), and the error of a send the socket
/// refused. `envelope` is the ROUTER's routing-id part, put before each frame.
async fn write_queued<S: SocketSend + Send>(
    socket: &mut S,
    queued: &mut mpsc::Receiver<Frame>,
    abort: &CancellationToken,
    envelope: Option<&Bytes>,
) -> zeromq::ZmqResult<()> {
    loop {
        let frame = tokio::select! {
            biased;
            () = abort.cancelled() => return Ok(()),
            frame = queued.recv() => match frame {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        let mut message = ZmqMessage::from(frame);
        if let Some(identity) = envelope {
            message.push_front(identity.clone());
        }
        tokio::select! {
            biased;
            () = abort.cancelled() => return Ok(()),
            sent = socket.send(message) => sent?,
        }
    }
}

/// Splits a zeromq endpoint for binding our own listener, accepting libzmq's `*` for "all
/// interfaces".
fn parse_endpoint(endpoint: &str) -> Result<zeromq::Endpoint, String> {
    let endpoint: zeromq::Endpoint = endpoint.parse().map_err(|e| format!("{e}"))?;
    Ok(match endpoint {
        zeromq::Endpoint::Tcp(zeromq::Host::Domain(name), port) if name == "*" => {
            zeromq::Endpoint::Tcp(zeromq::Host::Ipv4(std::net::Ipv4Addr::UNSPECIFIED), port)
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let options = ZmqOptions::default();
        assert_eq!(options.queue_capacity, 4096);
        assert_eq!(options.max_frame_len, pong_domain::codec::MAX_FRAME_LEN);
        assert_eq!(options.max_connections, 10_000);
        assert_eq!(options.max_connections_per_address, 32);
        assert_eq!(options.handshake_timeout, Duration::from_secs(5));
        assert_eq!(options.normalized(), options);
    }

    #[test]
    fn zeros_are_raised_to_the_least_that_works() {
        let zero = ZmqOptions {
            queue_capacity: 0,
            connect_timeout: Duration::ZERO,
            handshake_timeout: Duration::ZERO,
            stall_timeout: Duration::ZERO,
            max_connections: 0,
            max_connections_per_address: 0,
            ..ZmqOptions::default()
        }
        .normalized();
        assert_eq!(zero.queue_capacity, 1);
        assert_eq!((zero.max_connections, zero.max_connections_per_address), (1, 1));
        assert_eq!(zero.stall_timeout, Duration::from_millis(1));
    }
}
