//! What the server allows each link and each address: a rate limit per link, strikes for
//! bad frames, links and new matches per address, and a deadline to take a seat.
//!
//! These bounds are what keep one client from filling the server: a link carries at most
//! one session (`trust`), an address at most [`ServerConfig::max_links_per_address`]
//! links, so what one address can hold in lobbies is bounded too, and how fast it can open
//! new ones by [`ServerConfig::matches_per_minute_per_address`]. A link that holds no seat
//! for [`ServerConfig::join_timeout`] is closed, so idle connections cannot take the
//! transport's slots. What "address" means is the transport's [`Origin`].
//!
//! [`ServerConfig::max_links_per_address`]: super::ServerConfig::max_links_per_address
//! [`ServerConfig::matches_per_minute_per_address`]: super::ServerConfig::matches_per_minute_per_address
//! [`ServerConfig::join_timeout`]: super::ServerConfig::join_timeout

use std::net::IpAddr;

use crate::proto::{CloseReason, Reject, ServerMsg, SessionId};
use crate::route::{Origin, PeerId};

use super::{Output, Refusal, SECOND, ServerCore, ServerEvent};

/// How often links are checked for the join deadline and addresses forgotten.
pub(super) const SWEEP_EVERY: u64 = SECOND;
/// A link being closed that its transport never reports gone is forgotten after this.
const CLOSING_FOR: u64 = 60 * SECOND;

/// How fast a [`RateLimiter`] refills: `units` per `per` microseconds, holding at most
/// `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rate {
    pub(super) units: u64,
    pub(super) per: u64,
    pub(super) burst: u64,
}

/// A token bucket, in millionths of a unit so that refills over a few microseconds are not
/// lost to rounding: a link's frames, an address's new matches, a seat's resent ticks.
#[derive(Clone, Copy, Debug)]
pub(super) struct RateLimiter {
    level: u64,
    last: u64,
}

impl RateLimiter {
    pub(super) fn full(rate: Rate, now: u64) -> Self {
        RateLimiter { level: rate.burst.saturating_mul(SECOND), last: now }
    }

    fn level_at(&self, now: u64, rate: Rate) -> u64 {
        let elapsed = u128::from(now.saturating_sub(self.last));
        let refill =
            elapsed * u128::from(rate.units) * u128::from(SECOND) / u128::from(rate.per.max(1));
        let refill = u64::try_from(refill).unwrap_or(u64::MAX);
        self.level.saturating_add(refill).min(rate.burst.saturating_mul(SECOND))
    }

    /// Takes `n` units; false (taking nothing) if fewer are left.
    pub(super) fn take(&mut self, now: u64, n: u64, rate: Rate) -> bool {
        self.level = self.level_at(now, rate);
        self.last = now;
        let cost = n.saturating_mul(SECOND);
        if self.level >= cost {
            self.level -= cost;
            true
        } else {
            false
        }
    }

    /// True once the bucket has refilled to its burst: nothing is owed any more.
    fn is_full(&self, now: u64, rate: Rate) -> bool {
        self.level_at(now, rate) >= rate.burst.saturating_mul(SECOND)
    }
}

/// What the server knows of one link.
#[derive(Clone, Debug)]
pub(super) struct PeerInfo {
    /// The session that last proved itself on this link.
    pub(super) session: Option<SessionId>,
    origin: Origin,
    /// Malformed or forged frames so far.
    bad: u32,
    /// Frames refused by the rate limit so far.
    over_rate: u64,
    limiter: RateLimiter,
    /// New matches this link may open, where the link is its own address.
    matches: RateLimiter,
    /// Since when the link holds no seat (set by the sweep when it notices).
    seatless_since: Option<u64>,
    /// The server closed the link and waits for its transport to report it gone; what it
    /// still sends is ignored.
    closing_since: Option<u64>,
}

/// What the server knows of one IP address.
#[derive(Clone, Debug)]
pub(super) struct AddressInfo {
    links: u32,
    /// New matches the address may open.
    matches: RateLimiter,
}

impl ServerCore {
    /// A transport reports a new link, from `origin`. Transports that report no
    /// `Connected` get links of [`Origin::Link`] on their first frame instead.
    pub fn handle_peer_opened(&mut self, now: u64, peer: PeerId, origin: Origin) {
        self.set_origin(now);
        if self.peers.contains_key(&peer) {
            return;
        }
        self.open_link(now, peer, origin);
    }

    fn open_link(&mut self, now: u64, peer: PeerId, origin: Origin) {
        let frames = self.config.rate();
        let matches = self.match_rate();
        self.peers.insert(
            peer,
            PeerInfo {
                session: None,
                origin,
                bad: 0,
                over_rate: 0,
                limiter: RateLimiter::full(frames, now),
                matches: RateLimiter::full(matches, now),
                seatless_since: Some(now),
                closing_since: None,
            },
        );
        let Origin::Ip(ip) = origin else { return };
        let max = self.config.max_links_per_address;
        let address = self
            .addresses
            .entry(ip)
            .or_insert_with(|| AddressInfo { links: 0, matches: RateLimiter::full(matches, now) });
        address.links += 1;
        if address.links > max {
            self.stats.links_refused += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::TooManyLinks });
            self.send(peer, ServerMsg::Rejected(Reject::TooManyLinks));
            self.close_link(now, peer);
        }
    }

    /// The link is gone for good: forget it, and its place in its address's count.
    /// Returns what the server knew of it.
    pub(super) fn forget_link(&mut self, peer: PeerId) -> Option<PeerInfo> {
        let info = self.peers.remove(&peer)?;
        if let Origin::Ip(ip) = info.origin
            && let Some(address) = self.addresses.get_mut(&ip)
        {
            address.links = address.links.saturating_sub(1);
        }
        Some(info)
    }

    /// Notes a frame from `peer` against its rate limit; false if it must be refused (and
    /// the link may have been dropped), or if the link is being closed.
    pub(super) fn admit(&mut self, now: u64, peer: PeerId) -> bool {
        if !self.peers.contains_key(&peer) {
            self.open_link(now, peer, Origin::Link);
        }
        let rate = self.config.rate();
        let Some(info) = self.peers.get_mut(&peer) else { return false };
        if info.closing_since.is_some() {
            return false;
        }
        if info.limiter.take(now, 1, rate) {
            return true;
        }
        info.over_rate += 1;
        let drop = info.over_rate > rate.burst && info.origin.closable();
        self.stats.rate_limited += 1;
        self.event(ServerEvent::Refused { peer, why: Refusal::RateLimited });
        if drop {
            self.drop_peer(now, peer, CloseReason::Flooding);
        }
        false
    }

    /// Counts a bad frame against a link and drops the link past the limit (unless anyone
    /// could have sent it under the link's name: see [`Origin::Named`]).
    pub(super) fn strike(&mut self, now: u64, peer: PeerId, reason: CloseReason) {
        let limit = self.config.max_bad_frames;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.bad += 1;
            if info.bad > limit && info.origin.closable() {
                self.drop_peer(now, peer, reason);
            }
        }
    }

    /// Closes a link for misbehaving: told why, counted, and its seat (if any) lost.
    pub(super) fn drop_peer(&mut self, now: u64, peer: PeerId, reason: CloseReason) {
        self.stats.peers_dropped += 1;
        self.send(peer, ServerMsg::Closed(reason));
        self.event(ServerEvent::PeerDropped { peer, reason });
        self.close_link(now, peer);
    }

    /// Closes a link: it lets go of its session (the seat is lost as if the link had gone),
    /// and the transport is asked to close it after what is queued. The link is counted
    /// against its address until the transport reports it gone.
    pub(super) fn close_link(&mut self, now: u64, peer: PeerId) {
        let Some(info) = self.peers.get_mut(&peer) else { return };
        if info.closing_since.is_some() {
            return;
        }
        info.closing_since = Some(now);
        let session = info.session.take();
        self.out.push_back(Output::Disconnect(peer));
        if let Some(session) = session {
            self.release_seat_link(now, peer, session);
        }
    }

    /// `peer` no longer carries `session`: if the seat still speaks from it, the seat has
    /// no link now and its member is lost.
    pub(super) fn release_seat_link(&mut self, now: u64, peer: PeerId, session: SessionId) {
        let Some(&(mid, player)) = self.sessions.get(&session) else { return };
        let Some(seat) = self.seat_mut(mid, player) else { return };
        if seat.peer != Some(peer) {
            return;
        }
        seat.peer = None;
        self.out.push_back(Output::Leave(peer, mid));
        self.lose(now, mid, player);
    }

    /// May `peer` open a new match now? Takes one from its address's allowance.
    pub(super) fn may_open_match(&mut self, now: u64, peer: PeerId) -> bool {
        let rate = self.match_rate();
        let Some(info) = self.peers.get_mut(&peer) else { return true };
        let allowed = match info.origin {
            Origin::Ip(ip) => {
                self.addresses.get_mut(&ip).is_none_or(|a| a.matches.take(now, 1, rate))
            }
            Origin::Link | Origin::Named => info.matches.take(now, 1, rate),
        };
        if !allowed {
            self.stats.matches_refused += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::TooManyMatches });
            self.send(peer, ServerMsg::Rejected(Reject::TooManyMatches));
        }
        allowed
    }

    /// New matches per address: the allowance refills over a minute, and a whole minute's
    /// worth may be used at once.
    fn match_rate(&self) -> Rate {
        let per_minute = u64::from(self.config.matches_per_minute_per_address.max(1));
        Rate { units: per_minute, per: 60 * SECOND, burst: per_minute }
    }

    /// Closes links that have held no seat for the join deadline, forgets links whose
    /// transport never reported them gone, and forgets addresses that owe nothing.
    pub(super) fn sweep_links(&mut self, now: u64) {
        let deadline = self.config.join_timeout;
        let mut idle = Vec::new();
        let mut never_gone = Vec::new();
        for (&peer, info) in &mut self.peers {
            if let Some(since) = info.closing_since {
                if now >= since.saturating_add(CLOSING_FOR) {
                    never_gone.push(peer);
                }
            } else if info.session.is_some() {
                info.seatless_since = None;
            } else {
                let since = *info.seatless_since.get_or_insert(now);
                if now >= since.saturating_add(deadline) {
                    idle.push(peer);
                }
            }
        }
        for peer in never_gone {
            self.forget_link(peer);
        }
        for peer in idle {
            self.stats.links_idle += 1;
            self.send(peer, ServerMsg::Closed(CloseReason::Idle));
            self.close_link(now, peer);
        }
        let rate = self.match_rate();
        self.addresses.retain(|_, a| a.links > 0 || !a.matches.is_full(now, rate));
    }

    /// Links open from `ip` (for tests and the overview).
    #[must_use]
    pub fn links_from(&self, ip: IpAddr) -> u32 {
        self.addresses.get(&ip).map_or(0, |a| a.links)
    }
}
