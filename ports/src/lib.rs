//! The ports of Distributed Pong: what the application needs from the outside world, as
//! traits that adapters implement.
//!
//! # Layout
//! - [`transport`]: moving frames between clients and the server ([`ServerTransport`],
//!   [`ClientTransport`], [`Connector`]), with the guarantees every adapter MUST give.
//! - [`store`]: the append-only journal of matches ([`EventStore`]), for replays and for
//!   rebuilding running matches after a crash, with what every adapter MUST do.
//! - [`http`]: what the server answers over HTTP beside its game traffic ([`HttpHandler`]):
//!   metrics, health and status, written by the application, served by adapters.

pub mod http;
pub mod store;
pub mod transport;

pub use http::{HttpHandler, HttpRequest, HttpResponse};
pub use pong_domain::proto::MatchId;
pub use pong_domain::route::{Origin, PeerId};
pub use store::{Entry, EventStore, MatchLog, MatchStatus, MatchSummary, StoreError};
pub use transport::{ClientTransport, Connector, Frame, Incoming, ServerTransport, TransportError};
