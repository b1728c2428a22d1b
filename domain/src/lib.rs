//! The pure core of Distributed Pong: the rules, a deterministic fixed-step simulation, the
//! wire messages and their codec.
//!
//! Nothing in this crate performs IO, spawns tasks, sleeps or reads a clock: time is always an
//! argument. That makes every behaviour reproducible in a test, and lets the same code run on
//! the server, in every client, in bots and in replays.
//!
//! # Layout
//! - [`route`]: peer and group addresses shared with the transports.
//! - [`rules`]: match configuration, arena geometry and physics constants.
//! - [`server`]: the authoritative server as a sans-IO state machine ([`server::ServerCore`]).
//! - [`sim`]: the match state and its step function (state + inputs → state + events).
//! - [`hash`]: the stable 64-bit state digest used to detect desyncs.
//! - [`proto`]: the wire messages exchanged by clients and server.
//! - [`bot`]: a computer player that reads a state and picks an intent.
//! - [`client`]: a player's end of the protocol as a sans-IO state machine ([`client::ClientCore`]).
//! - [`codec`]: frames: version byte, compact encoding, signatures and typed decode errors.
//! - [`journal`]: what an event store keeps of a match; verifying a finished match and
//!   rebuilding a running one from it.
//! - [`report`]: what a player saw of its finished match, in the shape every frontend prints
//!   (`pong bot --json`, the browser's `pongResult`), so scripts compare hosts key by key.
//! - [`playback`]: a journaled match played back to a viewer, the server's side of the
//!   protocol as a sans-IO state machine ([`playback::PlaybackCore`]).
//! - `standings`: who went out when, and the result; shared by the server and the journal's
//!   replay so the two agree by construction.
//! - `testing` (feature `testing`, for tests only): a simulated network on a virtual clock
//!   and frame helpers, shared by the tests of this crate and of others.

pub mod bot;
pub mod client;
pub mod codec;
pub mod hash;
pub mod journal;
pub mod playback;
pub mod proto;
pub mod report;
pub mod route;
pub mod rules;
pub mod server;
pub mod sim;
mod standings;
#[cfg(feature = "testing")]
pub mod testing;

pub use rules::{MatchConfig, PlayerId, Rules, Side};
pub use sim::{Ball, Event, Intent, MatchState, OutReason, TickInput};
