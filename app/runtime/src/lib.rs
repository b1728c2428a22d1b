//! The async side of Distributed Pong: small drivers that pump any [`pong_ports`] transport
//! into the sans-IO cores of [`pong_domain`] and back, written once for every transport.
//!
//! # Layout
//! - [`clock`]: the monotonic microsecond clock the cores are fed (tokio time, so tests can
//!   pause and advance it).
//! - [`server`]: runs a [`pong_domain::server::ServerCore`] over a `ServerTransport`.
//! - [`client`]: runs a [`pong_domain::client::ClientCore`] over a `Connector`, reconnecting
//!   when the link drops, steered by a [`client::Controller`].
//! - [`bot`]: the computer player as a controller.
//! - [`report`]: the summary a bot gives of its match (printed as JSON by `pong bot --json`);
//!   it lives in the domain, so the browser frontend reports in the same shape.
//! - [`local`]: a server and bots in one process over the memory transport.
//! - [`telemetry`]: what a running server tells its operators: Prometheus metrics, health
//!   and status, answered over HTTP.
//! - [`recorder`]: journals a server's events into an event store, batched, off the tick
//!   path.

pub mod bot;
pub mod client;
pub mod clock;
pub mod local;
pub mod recorder;
pub use pong_domain::report;
pub mod server;
pub mod telemetry;
