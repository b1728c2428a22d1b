//! The RabbitMQ (AMQP 0-9-1) Transport of Distributed Pong: [`AmqpServer`] for the server,
//! [`AmqpConnector`] and [`AmqpClient`] for clients, on lapin 4 and the caller's tokio runtime.
//!
//! `docs/transports/rabbitmq.md` is the long form of this page, with measured numbers.
//!
//! # Topology (per server name `N`, default `pong`)
//! ```text
//!  client k                               broker                                  server N
//!  ─────────────                          ──────                                  ────────
//!  publish ──► default exchange ──(key pong.N.in)──► [pong.N.in] ─────────────► consume
//!   (reply_to = amq.gen-k, mandatory)                 not exclusive, x-expires,
//!                                                     x-max-length drop-head
//!  consume ◄── [amq.gen-k] ◄──(key amq.gen-k)── default exchange ◄── send(peer k), controls
//!   exclusive, auto-delete,  ◄──(key "<match>")── pong.N.matches (direct) ◄── publish(match)
//!   x-max-length drop-head      binding made by the client in subscribe()
//!   dead-letters ──► default exchange ──(key pong.N.dead)──► [pong.N.dead] ──► consume
//! ```
//!
//! - **Start handshake.** `connect()` returns only once the connection's queue is declared and
//!   consumed (the Welcome cannot be missed) and the server's queue is known to exist with
//!   a consumer (the first frame sent reaches it). `subscribe(match)` returns on bind-ok,
//!   when the binding is in the broker's routing table: the client says Ready only then.
//! - **Addresses.** The server knows a connection by the `reply_to` of its messages, a broker-named
//!   queue. It is an address, not an identity: the game protocol signs every message with
//!   the session token.
//! - **Group membership is marked in band.** A client's binding makes the broker route a
//!   match's publishes to its queue, but only the server's own channel orders them against
//!   its calls. So `join_group` sends a `join` control and `leave_group` a `leave` control to
//!   the client's queue on the channel the publishes use, and the client delivers a match's
//!   publishes only between the two. A publish made before `join_group` that reaches the
//!   broker after the binding is dropped; one made after `leave_group` too. (The server
//!   cannot unbind a client's queue itself: it is exclusive to the client's connection and
//!   RabbitMQ answers `RESOURCE_LOCKED`.) A peer therefore receives a match's publishes once
//!   the server has called `join_group` *and* its client's `subscribe` has returned, which is
//!   the order the game protocol uses.
//! - **Vanished peers** are reported [`Incoming::Gone`](pong_ports::Incoming::Gone): by a
//!   mandatory message (a send or an idle-peer probe; a client's `bye` brings its probe
//!   forward) returned `NO_ROUTE` because the exclusive queue died with its connection, or
//!   by dead letters from an overflowing queue. A `bye` alone ends nothing: anyone who
//!   knows a queue's name can send one.
//! - **Broker loss.** The server reconnects with capped exponential backoff and re-declares
//!   everything; meanwhile `send`/`publish` fail fast (nothing is buffered without bound).
//!   A client connection ends (`recv` → `Closed`) and the app reconnects through the connector.

mod amqp;
mod channels;
mod client;
mod options;
mod server;
mod stats;

pub use client::{AmqpClient, AmqpConnector};
pub use options::{AmqpOptions, DEFAULT_SERVER_NAME, DEFAULT_URL};
pub use server::AmqpServer;
pub use stats::AmqpStats;
