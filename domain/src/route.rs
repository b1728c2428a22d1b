//! Addresses the server cores speak in; transports map them onto their own.

use crate::proto::MatchId;

/// One client link as a transport knows it (a WebSocket connection, a reply queue, a socket
/// identity). Transports hand these out; the server core never trusts one as proof of who
/// is speaking (a signed frame is), it only uses it as where to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer#{}", self.0)
    }
}

/// Where the server sends a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// One client link.
    Peer(PeerId),
    /// Every member of a match (the match's group).
    Group(MatchId),
}
