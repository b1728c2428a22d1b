//! The WebSocket Transport: the default way clients reach a Distributed Pong server over a
//! network, through browsers' and proxies' favourite protocol, with TLS (`wss://`) as the
//! `tls` feature.
//!
//! ```text
//! WsServer::bind("0.0.0.0:7878", options) ──► ServerTransport   (one per listening socket)
//! WsConnector::new("ws://host:7878", options) ──connect()──► WsClient: ClientTransport
//! ```
//!
//! It obeys every rule of the Transport port ([`pong_ports::transport`]) over real sockets:
//! - **Framing**: one protocol frame is one binary WebSocket message, carried unchanged.
//!   Text messages are refused (close code 1003); messages over
//!   [`WsOptions::max_frame_len`] are refused by `send`/`publish` with
//!   [`TransportError::FrameTooLarge`] and, arriving, close the connection (1009) without being
//!   delivered.
//! - **Queues**: each connection has a bounded send queue of [`WsOptions::queue_capacity`]
//!   frames; `send` and `publish` only `try_send` into it. A full queue means the peer
//!   cannot keep up: it is disconnected (1008) and reported [`Incoming::Gone`], and the
//!   other peers never wait.
//! - **Connection events**: every connection is reported [`Incoming::Connected`] before its first
//!   frame and [`Incoming::Gone`] exactly once, as soon as it is seen ending: the client
//!   closed or vanished, broke a rule, stopped answering pings (keepalive), overflowed, or
//!   the server called [`ServerTransport::disconnect`] (close code 1000, after the frames
//!   already queued). Dropping the server closes every connection with 1001.
//! - **Groups** are kept by the server ([`ServerTransport::join_group`]);
//!   [`ClientTransport::subscribe`] returns at once.
//! - **Protection**: at most [`WsOptions::max_connections`] connections at once, each
//!   given [`WsOptions::handshake_timeout`] to finish its handshakes; an idle connection
//!   costs two small tasks, a small read buffer and an empty queue.
//!
//! See `docs/transports/websocket.md` for the operator's view.
//!
//! [`TransportError::FrameTooLarge`]: pong_ports::TransportError::FrameTooLarge
//! [`Incoming::Gone`]: pong_ports::Incoming::Gone
//! [`Incoming::Connected`]: pong_ports::Incoming::Connected
//! [`ServerTransport::disconnect`]: pong_ports::ServerTransport::disconnect
//! [`ServerTransport::join_group`]: pong_ports::ServerTransport::join_group
//! [`ClientTransport::subscribe`]: pong_ports::ClientTransport::subscribe

mod client;
mod connection;
mod options;
mod server;
mod tls;

pub use client::{WsClient, WsConnector};
pub use options::WsOptions;
pub use server::WsServer;
#[cfg(feature = "tls")]
pub use tls::TlsError;
pub use tls::TlsOptions;
