//! Who may speak for a session, and how much any link may say.
//!
//! The transport's idea of the sender is only the address to answer: a client proves every
//! message after its first with a signature made with its session token, and each session
//! accepts a sequence number once ([`ReplayWindow`]), also across resumes. A session moves
//! to another link only by signing a fresh challenge (`Resume`, `Challenge`, `Prove`): a
//! signed frame from any other link is refused, so a captured frame replayed elsewhere
//! moves nothing. Session ids are random. Every link is held to a rate
//! ([`RateLimiter`]) and dropped after too many bad frames. Nothing refused here reaches a
//! match.

use rand_core::Rng;

use crate::codec::SignedFrame;
use crate::proto::{CloseReason, MatchId, Reject, ServerMsg, SessionId, SessionMsg, Token};
use crate::route::PeerId;
use crate::rules::PlayerId;

use super::{Output, Refusal, SECOND, ServerCore, ServerEvent};

/// How long an unanswered resume challenge stays valid.
const CHALLENGE_TTL: u64 = 10 * SECOND;
/// A link with no session that stays silent this long is forgotten.
const IDLE_PEER: u64 = 60 * SECOND;

/// Sequence numbers seen recently (a 64-wide sliding window), so a replayed frame is
/// refused while frames reordered by the network are still accepted once.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReplayWindow {
    top: u32,
    bits: u64,
}

impl ReplayWindow {
    pub(super) fn new() -> Self {
        ReplayWindow { top: 0, bits: 1 }
    }

    /// Accepts nothing until [`ReplayWindow::reset`]: a restored session must first answer
    /// a fresh challenge, so frames captured before the restart cannot be replayed.
    pub(super) fn closed() -> Self {
        ReplayWindow { top: u32::MAX, bits: u64::MAX }
    }

    fn accept(&mut self, seq: u32) -> bool {
        if seq > self.top {
            let shift = seq - self.top;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = seq;
            true
        } else {
            let d = self.top - seq;
            if d >= 64 || self.bits & (1 << d) != 0 {
                return false;
            }
            self.bits |= 1 << d;
            true
        }
    }

    fn reset(&mut self, seq: u32) {
        *self = ReplayWindow { top: seq, bits: 1 };
    }

    fn is_closed(&self) -> bool {
        self.top == u32::MAX && self.bits == u64::MAX
    }

    /// The least sequence number still accepted as new: where a resuming client continues.
    pub(super) fn next(&self) -> u32 {
        if self.is_closed() { 1 } else { self.top.saturating_add(1) }
    }
}

/// A link's rate limit: a token bucket, in millionths of a frame so that refills over a
/// few microseconds are not lost to rounding.
#[derive(Clone, Copy, Debug)]
pub(super) struct RateLimiter {
    level: u64,
    last: u64,
}

impl RateLimiter {
    fn full(burst: u64, now: u64) -> Self {
        RateLimiter { level: burst * SECOND, last: now }
    }

    /// Takes one frame's worth; false if the link is over its rate.
    fn take(&mut self, now: u64, rate: u64, burst: u64) -> bool {
        let refill = now.saturating_sub(self.last).saturating_mul(rate);
        self.level = self.level.saturating_add(refill).min(burst * SECOND);
        self.last = now;
        if self.level >= SECOND {
            self.level -= SECOND;
            true
        } else {
            false
        }
    }
}

/// What the server knows of one link.
#[derive(Clone, Debug)]
pub(super) struct PeerInfo {
    /// The session that last proved itself on this link.
    pub(super) session: Option<SessionId>,
    /// Malformed or forged frames so far.
    bad: u32,
    /// Frames refused by the rate limit so far.
    over_rate: u64,
    limiter: RateLimiter,
    last_seen: u64,
}

impl ServerCore {
    /// Notes a frame from `peer` against its rate limit; false if it must be refused (and
    /// the link may have been dropped).
    pub(super) fn admit(&mut self, now: u64, peer: PeerId) -> bool {
        let (rate, burst) = self.config.rate();
        let info = self.peers.entry(peer).or_insert_with(|| PeerInfo {
            session: None,
            bad: 0,
            over_rate: 0,
            limiter: RateLimiter::full(burst, now),
            last_seen: now,
        });
        info.last_seen = now;
        if info.limiter.take(now, rate, burst) {
            return true;
        }
        info.over_rate += 1;
        let drop = info.over_rate > burst;
        self.stats.rate_limited += 1;
        self.event(ServerEvent::Refused { peer, why: Refusal::RateLimited });
        if drop {
            self.drop_peer(peer, CloseReason::Flooding);
        }
        false
    }

    /// Counts a bad frame against a link and drops the link past the limit.
    pub(super) fn strike(&mut self, peer: PeerId, reason: CloseReason) {
        let limit = self.config.max_bad_frames;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.bad += 1;
            if info.bad > limit {
                self.drop_peer(peer, reason);
            }
        }
    }

    fn drop_peer(&mut self, peer: PeerId, reason: CloseReason) {
        self.stats.peers_dropped += 1;
        self.send(peer, ServerMsg::Closed(reason));
        self.out.push_back(Output::Disconnect(peer));
        self.event(ServerEvent::PeerDropped { peer, reason });
        if let Some(info) = self.peers.remove(&peer)
            && let Some(session) = info.session
            && let Some(&(mid, player)) = self.sessions.get(&session)
        {
            if let Some(seat) = self.seat_mut(mid, player)
                && seat.peer == Some(peer)
            {
                seat.peer = None;
            }
            self.out.push_back(Output::Leave(peer, mid));
        }
    }

    /// Forgets links that hold no session and have been silent a while.
    pub(super) fn forget_idle_peers(&mut self, now: u64) {
        self.peers.retain(|_, info| {
            info.session.is_some() || now.saturating_sub(info.last_seen) < IDLE_PEER
        });
    }

    /// A new session: an id nobody can guess or has, and its secret token.
    pub(super) fn new_session(&mut self) -> (SessionId, Token) {
        let session = loop {
            let id = SessionId(self.session_ids.next_u32());
            if id.0 != 0 && !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let mut token = [0u8; 16];
        self.rng.fill_bytes(&mut token);
        (session, Token(token))
    }

    /// `Resume`: the session is challenged to sign a nonce with its token.
    pub(super) fn on_resume_request(&mut self, now: u64, peer: PeerId, session: SessionId) {
        let Some(&(mid, player)) = self.sessions.get(&session) else {
            self.send(peer, ServerMsg::Rejected(Reject::UnknownSession));
            return;
        };
        let fresh = self.rng.next_u64();
        let Some(seat) = self.seat_mut(mid, player) else { return };
        if seat.gone {
            self.send(peer, ServerMsg::Rejected(Reject::UnknownSession));
            return;
        }
        // One outstanding nonce per session, reused until it expires, so that requests from
        // others cannot push the real player's challenge out.
        let nonce = match seat.challenge {
            Some((n, expires)) if now < expires => n,
            _ => {
                seat.challenge = Some((fresh, now + CHALLENGE_TTL));
                fresh
            }
        };
        let next_seq = seat.replay.next();
        self.send(peer, ServerMsg::Challenge { session, nonce, next_seq });
    }

    /// Checks a signed frame: a live session, a valid signature, a sequence number not seen
    /// before (or a valid proof of a challenge). Returns the seat it speaks for, now bound
    /// to `peer`, or `None` if it was refused.
    pub(super) fn authenticate(
        &mut self,
        now: u64,
        peer: PeerId,
        f: &SignedFrame<'_>,
    ) -> Option<(MatchId, PlayerId)> {
        let session = f.header.session;
        let Some(&(mid, player)) = self.sessions.get(&session) else {
            self.stats.unknown_session += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::UnknownSession(session) });
            self.send(peer, ServerMsg::Rejected(Reject::UnknownSession));
            return None;
        };
        let seat = self.seat_mut(mid, player)?;
        if !f.verify(&seat.token) {
            self.stats.forged += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::Forged(session) });
            self.strike(peer, CloseReason::Malformed);
            return None;
        }
        let seq = f.header.seq;
        match f.msg {
            SessionMsg::Prove { nonce } => {
                if !seat.challenge.is_some_and(|(n, exp)| n == nonce && now < exp) {
                    self.send(peer, ServerMsg::Rejected(Reject::BadProof));
                    return None;
                }
                seat.challenge = None;
                // A session restored from the journal has no window to continue: its first
                // proof opens one. Otherwise a proof is numbered like any frame, so a resume
                // never makes the numbers spent before it good again.
                if seat.replay.is_closed() {
                    seat.replay.reset(seq);
                } else if !seat.replay.accept(seq) {
                    self.stats.replayed += 1;
                    self.event(ServerEvent::Refused { peer, why: Refusal::Replayed(session) });
                    return None;
                }
            }
            // Only a proof moves a session to another link.
            _ if seat.peer != Some(peer) => {
                self.stats.wrong_link += 1;
                self.event(ServerEvent::Refused { peer, why: Refusal::WrongLink(session) });
                return None;
            }
            _ => {
                if !seat.replay.accept(seq) {
                    self.stats.replayed += 1;
                    self.event(ServerEvent::Refused { peer, why: Refusal::Replayed(session) });
                    return None;
                }
            }
        }
        if seat.gone {
            return None;
        }
        seat.last_heard = now;
        let old_peer = seat.peer;
        if old_peer != Some(peer) {
            seat.peer = Some(peer);
            self.rebind(now, mid, session, old_peer, peer);
        }
        Some((mid, player))
    }

    /// A session now speaks from another link: move its group membership, and close the
    /// old link if it is still open (one link per session).
    fn rebind(
        &mut self,
        now: u64,
        mid: MatchId,
        session: SessionId,
        old: Option<PeerId>,
        new: PeerId,
    ) {
        if let Some(old) = old {
            if let Some(info) = self.peers.get_mut(&old) {
                info.session = None;
            }
            self.out.push_back(Output::Leave(old, mid));
            self.send(old, ServerMsg::Closed(CloseReason::Replaced));
            self.out.push_back(Output::Disconnect(old));
        }
        self.bind_link(now, new, session);
        self.out.push_back(Output::Join(new, mid));
    }

    /// `peer` now carries `session`. A link carries one session: one it carried before lets
    /// go of it and is lost as if its link had gone (a lobby seat is freed, a started match
    /// pauses for it), so that one link cannot keep many seats alive.
    pub(super) fn bind_link(&mut self, now: u64, peer: PeerId, session: SessionId) {
        let Some(info) = self.peers.get_mut(&peer) else { return };
        let Some(previous) = info.session.replace(session) else { return };
        if previous == session {
            return;
        }
        let Some(&(mid, player)) = self.sessions.get(&previous) else { return };
        let Some(seat) = self.seat_mut(mid, player) else { return };
        if seat.peer != Some(peer) {
            return;
        }
        seat.peer = None;
        self.out.push_back(Output::Leave(peer, mid));
        self.lose(now, mid, player);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_accepts_reordered_once() {
        let mut w = ReplayWindow::new();
        assert!(w.accept(1));
        assert!(w.accept(3));
        assert!(w.accept(2));
        assert!(!w.accept(2));
        assert!(!w.accept(3));
        assert!(!w.accept(0));
        assert!(w.accept(100));
        assert!(!w.accept(36));
        assert!(w.accept(37));
    }
}
