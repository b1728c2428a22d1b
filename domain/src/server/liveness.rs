//! Members that go quiet: a lost member pauses a running match (or frees its seat in a
//! lobby), may come back within the grace period, and forfeits after it; a member back in a
//! paused match has the same time to say Ready. Also the periodic housekeeping that finds
//! them, repeats each match's phase and closes finished matches.

use crate::journal::Record;
use crate::proto::{CloseReason, MatchId, ServerMsg};
use crate::route::PeerId;
use crate::rules::PlayerId;

use super::ServerCore;
use super::game::Phase;

impl ServerCore {
    /// A member went silent or its link dropped.
    pub(super) fn lose(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if seat.gone || !seat.connected {
            return;
        }
        match m.phase {
            Phase::Lobby | Phase::Starting { resume: false, .. } => {
                self.record(mid, Record::Lost { player });
                self.free_seat(mid, player);
            }
            Phase::Over { .. } => {
                seat.connected = false;
            }
            Phase::Running { .. } | Phase::Starting { resume: true, .. } | Phase::Paused => {
                seat.connected = false;
                seat.ready = false;
                seat.lost_since = Some(now);
                seat.back_since = None;
                let alive = m.state.is_alive(player);
                self.record(mid, Record::Lost { player });
                if !alive {
                    return;
                }
                let Some(m) = self.matches.get_mut(&mid) else { return };
                if m.phase != Phase::Paused {
                    m.phase = Phase::Paused;
                    m.epoch = m.epoch.next();
                    let tick = m.state.tick;
                    self.reindex(mid);
                    self.record(mid, Record::Paused { tick });
                }
                self.broadcast_phase(mid);
            }
        }
    }

    /// A lost member was heard again. `tell`: send it the match's phase (a `Prove` is
    /// answered with its own Welcome and phase instead).
    pub(super) fn come_back(&mut self, now: u64, mid: MatchId, player: PlayerId, tell: bool) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        seat.connected = true;
        seat.lost_since = None;
        // Back, but the match waits for its Ready: its subscriptions may be new.
        seat.ready = matches!(m.phase, Phase::Running { .. });
        seat.back_since = (m.phase == Phase::Paused).then_some(now);
        let peer = seat.peer;
        self.record(mid, Record::Back { player });
        let Some(m) = self.matches.get(&mid) else { return };
        if m.phase == Phase::Lobby {
            self.broadcast_lobby(mid);
        } else if let Some(peer) = peer
            && tell
        {
            // Tell the returning member where the match stands (it may have missed a pause).
            let msg = m.phase_msg(self.config.grace);
            self.send(peer, msg);
        }
    }

    /// The player is out for good from the next tick on.
    pub(super) fn forfeit(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if seat.gone {
            return;
        }
        seat.gone = true;
        seat.lost_since = None;
        if m.state.is_alive(player) {
            m.pending_forfeit |= 1 << player.index();
        }
        let phase = m.phase.clone();
        let settled = m.playing().count() <= 1;
        self.record(mid, Record::Forfeit { player });
        match phase {
            Phase::Paused => {
                self.broadcast_phase(mid);
                self.count_down(now, mid);
            }
            Phase::Starting { resume: true, .. } if settled => self.finish_by_forfeit(now, mid),
            _ => {}
        }
    }

    /// Forfeits have settled the match: play the one tick that records them.
    pub(super) fn finish_by_forfeit(&mut self, now: u64, mid: MatchId) {
        self.step_match(now, mid);
    }

    /// A lobby that did not fill in time: its members are told and their links closed, and
    /// the match is gone.
    fn expire_lobby(&mut self, now: u64, mid: MatchId) {
        let Some(m) = self.matches.get(&mid) else { return };
        let peers: Vec<PeerId> = m.seated().filter_map(|(_, s)| s.peer).collect();
        self.stats.lobbies_expired += 1;
        self.close_match(mid);
        for p in peers {
            self.send(p, ServerMsg::Closed(CloseReason::LobbyExpired));
            self.close_link(now, p);
        }
    }

    /// Finds lost members and expired grace periods, repeats each waiting match's phase,
    /// and closes finished matches after their linger.
    pub(super) fn housekeeping(&mut self, now: u64) {
        let lost_timeout = self.config.lost_timeout;
        let grace = self.config.grace;
        let mut lost = Vec::new();
        let mut expired = Vec::new();
        let mut repeat = Vec::new();
        let mut closing = Vec::new();
        let mut stale_lobbies = Vec::new();
        let lobby_timeout = self.config.lobby_timeout;
        for m in self.matches.values_mut() {
            if m.phase == Phase::Lobby && now >= m.created.saturating_add(lobby_timeout) {
                stale_lobbies.push(m.id);
                continue;
            }
            for (i, seat) in m.seats.iter().enumerate() {
                let Some(s) = seat else { continue };
                if s.gone {
                    continue;
                }
                if s.connected && now.saturating_sub(s.last_heard) > lost_timeout {
                    lost.push((m.id, PlayerId::ALL[i]));
                }
                // (In a lobby only a restored seat is ever lost: it is freed, below.)
                if let Some(since) = s.lost_since
                    && now >= since.saturating_add(grace)
                    && !s.connected
                {
                    expired.push((m.id, PlayerId::ALL[i]));
                }
                // Back in a pause, heard from, but never Ready.
                if let Some(since) = s.back_since
                    && now >= since.saturating_add(grace)
                    && s.connected
                    && !s.ready
                    && m.phase == Phase::Paused
                {
                    expired.push((m.id, PlayerId::ALL[i]));
                }
            }
            if let Phase::Over { at, .. } = m.phase
                && now >= at.saturating_add(self.config.linger)
            {
                closing.push(m.id);
            } else if now >= m.next_repeat {
                m.next_repeat = now + self.config.repeat_every;
                if !matches!(m.phase, Phase::Running { .. }) {
                    repeat.push(m.id);
                }
            }
        }
        for (mid, p) in lost {
            self.lose(now, mid, p);
        }
        for (mid, p) in expired {
            if self.matches.get(&mid).is_some_and(|m| m.phase == Phase::Lobby) {
                self.free_seat(mid, p);
            } else {
                self.forfeit(now, mid, p);
            }
        }
        for mid in repeat {
            self.broadcast_phase(mid);
        }
        for mid in closing {
            self.close_match(mid);
        }
        for mid in stale_lobbies {
            self.expire_lobby(now, mid);
        }
    }
}
