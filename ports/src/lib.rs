//! The ports of Distributed Pong: what the application needs from the outside world, as
//! traits that adapters implement.
//!
//! # Layout
//! - [`transport`]: moving frames between clients and the server ([`ServerTransport`],
//!   [`ClientTransport`], [`Connector`]), with the guarantees every adapter MUST give.
//! - [`store`]: the append-only journal of matches ([`EventStore`]), for replays and for
//!   rebuilding running matches after a crash, with what every adapter MUST do.

pub mod store;
pub mod transport;

pub use pong_domain::proto::MatchId;
pub use pong_domain::route::PeerId;
pub use store::{Entry, EventStore, MatchLog, MatchStatus, MatchSummary, StoreError};
pub use transport::{ClientTransport, Connector, Frame, Incoming, ServerTransport, TransportError};
