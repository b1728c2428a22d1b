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

/// Where a link comes from, as far as its transport can tell: what the server's
/// per-address bounds count by (docs/protocol.md, Trust).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Origin {
    /// No address is known: the link is its own origin, and only the per-link bounds apply
    /// (the memory transport; ZeroMQ, whose relay bounds connections per address itself).
    #[default]
    Link,
    /// The IP address the connection came from (WebSocket).
    Ip(std::net::IpAddr),
    /// A name anyone who knows it can send under (a broker queue named in `reply_to`): the
    /// link is its own origin, and since a frame under the name proves nothing of who sent
    /// it, bad frames on it are refused but never close it — that would let a stranger
    /// close someone else's link.
    Named,
}

impl Origin {
    /// True where the transport vouches that frames on the link come from one sender, so a
    /// link that misbehaves may be closed for it.
    #[must_use]
    pub fn closable(self) -> bool {
        !matches!(self, Origin::Named)
    }
}
