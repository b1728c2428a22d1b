//! What a server reports happened: for logs, metrics and the event store.
//!
//! Everything that happens to a match is reported as the [`Record`] its journal keeps, so a
//! new kind of match event is one new `Record` variant, handled where it is made and where
//! it is replayed; the other events are about links and the server itself.

use crate::codec::DecodeError;
use crate::journal::Record;
use crate::proto::{CloseReason, MatchId, SessionId};
use crate::route::PeerId;

/// Something that happened, for logs, metrics and the event store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// Something happened to a match: what its journal records.
    Match {
        /// The match.
        match_id: MatchId,
        /// What happened, as the journal keeps it.
        record: Record,
    },
    /// A frame was refused.
    Refused {
        /// The link it came on.
        peer: PeerId,
        /// Why.
        why: Refusal,
    },
    /// A link was dropped for misbehaving.
    PeerDropped {
        /// The link.
        peer: PeerId,
        /// Why.
        reason: CloseReason,
    },
    /// The server fell behind the tick grid and skipped ahead.
    Overrun {
        /// Grid ticks skipped.
        skipped: u64,
    },
}

impl ServerEvent {
    /// The match and the journal record, if this event is about a match.
    pub fn record(&self) -> Option<(MatchId, &Record)> {
        match self {
            ServerEvent::Match { match_id, record } => Some((*match_id, record)),
            _ => None,
        }
    }
}

/// Why a frame was refused (for logs; also counted in [`super::ServerStats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It did not decode.
    Malformed(DecodeError),
    /// Its signature did not verify.
    Forged(SessionId),
    /// Its sequence number was used before.
    Replayed(SessionId),
    /// It named no live session.
    UnknownSession(SessionId),
    /// Its inputs were for ticks far ahead of the match.
    OutOfWindow(SessionId),
    /// Its link is over the rate limit.
    RateLimited,
    /// It was signed for a session that speaks from another link: only a `Prove` moves a
    /// session (a frame captured and replayed elsewhere, or a late frame of a replaced link).
    WrongLink(SessionId),
    /// A `Prove` of no current challenge (a wrong or expired nonce).
    BadProof(SessionId),
    /// A new link from an address that has as many open as it may.
    TooManyLinks,
    /// A `Join` that would open a match, from an address that opened as many as it may
    /// this minute.
    TooManyMatches,
}
