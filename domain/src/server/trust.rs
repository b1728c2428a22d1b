//! Who may speak for a session.
//!
//! The transport's idea of the sender is only the address to answer: a client proves every
//! message after its first with a signature made with its session token, and each session
//! accepts a sequence number once ([`ReplayWindow`]), also across resumes. A session moves
//! to another link only by signing a fresh challenge (`Resume`, `Challenge`, `Prove`): a
//! signed frame from any other link is refused, so a captured frame replayed elsewhere
//! moves nothing. Session ids are random. A link carries one session at a time. A frame
//! refused here is counted, may be a strike against its link (`links`), and reaches no
//! match.

use rand_core::Rng;

use crate::codec::SignedFrame;
use crate::proto::{CloseReason, MatchId, Reject, ServerMsg, SessionId, SessionMsg, Token};
use crate::route::PeerId;
use crate::rules::PlayerId;

use super::{Output, Refusal, SECOND, ServerCore, ServerEvent};

/// How long an unanswered resume challenge stays valid.
const CHALLENGE_TTL: u64 = 10 * SECOND;

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

impl ServerCore {
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

    /// A frame for no live session is answered (a client whose match ended learns so), but
    /// it is also a strike: a link that keeps naming sessions it has not got is guessing.
    fn refuse_unknown(&mut self, now: u64, peer: PeerId, session: SessionId) {
        self.stats.unknown_session += 1;
        self.event(ServerEvent::Refused { peer, why: Refusal::UnknownSession(session) });
        self.send(peer, ServerMsg::Rejected(Reject::UnknownSession));
        self.strike(now, peer, CloseReason::Malformed);
    }

    /// `Resume`: the session is challenged to sign a nonce with its token.
    pub(super) fn on_resume_request(&mut self, now: u64, peer: PeerId, session: SessionId) {
        let Some(&(mid, player)) = self.sessions.get(&session) else {
            self.refuse_unknown(now, peer, session);
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
            self.refuse_unknown(now, peer, session);
            return None;
        };
        let seat = self.seat_mut(mid, player)?;
        if !f.verify(&seat.token) {
            self.stats.forged += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::Forged(session) });
            self.strike(now, peer, CloseReason::Malformed);
            return None;
        }
        let seq = f.header.seq;
        match f.msg {
            SessionMsg::Prove { nonce } => {
                if !seat.challenge.is_some_and(|(n, exp)| n == nonce && now < exp) {
                    self.stats.bad_proof += 1;
                    self.event(ServerEvent::Refused { peer, why: Refusal::BadProof(session) });
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
            self.close_link(now, old);
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
        if previous != session {
            self.release_seat_link(now, peer, previous);
        }
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
