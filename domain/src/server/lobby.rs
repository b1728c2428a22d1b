//! Filling a match: joining (by size or by room), taking a seat, leaving before the start,
//! saying Ready, and the countdown that starts a match — or resumes it after a pause.

use std::collections::VecDeque;

use rand_core::Rng;

use crate::journal::Record;
use crate::proto::{Epoch, Join, MatchId, Reject, RoomName, ServerMsg, Welcome};
use crate::route::{Dest, PeerId};
use crate::rules::{MAX_PLAYERS, MIN_PLAYERS, MatchConfig, PlayerId, Rules};
use crate::sim::{MatchState, TickInput};

use super::game::{Match, Phase, RECENT_TICKS, Seat};
use super::{Output, ServerCore};

impl ServerCore {
    /// `Join`: a seat in the named room, or in an open lobby of the size asked for, or in a
    /// new match.
    pub(super) fn on_join(&mut self, now: u64, peer: PeerId, join: Join) {
        // A repeated Join on a link that already holds a seat in a lobby gets the same
        // Welcome again (the first answer may have been lost).
        if let Some(session) = self.peers.get(&peer).and_then(|i| i.session)
            && let Some(&(mid, player)) = self.sessions.get(&session)
            && let Some(m) = self.matches.get(&mid)
            && !matches!(m.phase, Phase::Over { .. })
        {
            if let Some(w) = self.welcome(mid, player, false) {
                self.send(peer, ServerMsg::Welcome(w));
                let lobby = self.matches.get(&mid).map(|m| m.phase_msg(self.config.grace));
                if let Some(msg) = lobby {
                    self.send(peer, msg);
                }
            }
            return;
        }
        if self.draining {
            self.refuse_join(peer, Reject::ShuttingDown);
            return;
        }
        let players = join.players.unwrap_or(self.config.default_players);
        if !(MIN_PLAYERS..=MAX_PLAYERS).contains(&players) {
            self.refuse_join(peer, Reject::BadPlayerCount);
            return;
        }
        let target = match &join.room {
            Some(room) => match self.rooms.get(room).and_then(|id| self.matches.get(id)) {
                Some(m) if m.phase == Phase::Lobby && !m.is_full() => Some(m.id),
                Some(_) => {
                    self.refuse_join(peer, Reject::RoomFull);
                    return;
                }
                None => None,
            },
            None => self
                .open
                .range((players, MatchId(0))..=(players, MatchId(u32::MAX)))
                .next()
                .map(|&(_, id)| id),
        };
        let mid = match target {
            Some(id) => id,
            None => {
                if self.matches.len() >= self.config.max_matches {
                    self.refuse_join(peer, Reject::ServerFull);
                    return;
                }
                if !self.may_open_match(now, peer) {
                    return;
                }
                self.create_match(now, players, join.room.clone())
            }
        };
        let (session, token) = self.new_session();
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(free) =
            m.seats.iter().take(usize::from(m.rules.players())).position(Option::is_none)
        else {
            return;
        };
        let player = PlayerId::ALL[free];
        m.seats[free] = Some(Seat::joined(session, token, join.name.clone(), peer, now));
        self.sessions.insert(session, (mid, player));
        self.reindex(mid);
        self.bind_link(now, peer, session);
        self.out.push_back(Output::Join(peer, mid));
        if let Some(w) = self.welcome(mid, player, false) {
            self.send(peer, ServerMsg::Welcome(w));
        }
        self.record(mid, Record::Joined { player, name: join.name, session, token });
        self.broadcast_lobby(mid);
    }

    /// A `Join` that gets no seat: told why, and counted.
    fn refuse_join(&mut self, peer: PeerId, why: Reject) {
        let count = match why {
            Reject::RoomFull => &mut self.stats.joins_room_full,
            Reject::ServerFull => &mut self.stats.joins_server_full,
            Reject::ShuttingDown => &mut self.stats.joins_draining,
            _ => &mut self.stats.joins_bad_request,
        };
        *count += 1;
        self.send(peer, ServerMsg::Rejected(why));
    }

    fn create_match(&mut self, now: u64, players: u8, room: Option<RoomName>) -> MatchId {
        let id = MatchId(self.next_match);
        self.next_match = self.next_match.wrapping_add(1).max(1);
        let config = MatchConfig {
            players,
            lives: self.config.lives,
            tick_hz: self.config.tick_hz,
            seed: self.rng.next_u64(),
        };
        let rules = Rules::new(config);
        let state = MatchState::new(&rules);
        if let Some(r) = &room {
            self.rooms.insert(r.clone(), id);
        }
        self.matches.insert(
            id,
            Match {
                id,
                room: room.clone(),
                created: now,
                rules,
                state,
                phase: Phase::Lobby,
                seats: [None, None, None, None],
                placings: [None, None, None, None],
                last_input: TickInput::IDLE,
                pending_forfeit: 0,
                next_repeat: now + self.config.repeat_every,
                started: false,
                epoch: Epoch::FIRST,
                recent: VecDeque::with_capacity(RECENT_TICKS),
            },
        );
        self.reindex(id);
        self.stats.matches_created += 1;
        self.record(id, Record::Created { config, room });
        id
    }

    /// What a member is told of its seat (again after a resume).
    pub(super) fn welcome(&self, mid: MatchId, player: PlayerId, resumed: bool) -> Option<Welcome> {
        let m = self.matches.get(&mid)?;
        let s = m.seats[player.index()].as_ref()?;
        Some(Welcome {
            session: s.session,
            token: s.token,
            match_id: mid,
            player,
            side: player.side(),
            paddle: m.rules.paddle_start(player.side()),
            config: m.rules.config,
            resumed,
        })
    }

    /// `Ready`: in a lobby or a pause, the countdown may begin.
    pub(super) fn on_ready(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        let was = seat.ready;
        seat.ready = true;
        seat.back_since = None;
        if m.phase == Phase::Lobby && !was {
            self.broadcast_lobby(mid);
        }
        self.count_down(now, mid);
    }

    /// Starts the countdown once everyone who plays is there and ready: in a full lobby to
    /// the first tick, in a pause to the next one. A paused match that forfeits have
    /// settled plays the one tick that records them instead.
    pub(super) fn count_down(&mut self, now: u64, mid: MatchId) {
        let at = self.grid_at_or_after(now + self.config.countdown);
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let resume = match m.phase {
            Phase::Lobby if m.is_full() && m.seated().all(|(_, s)| s.ready && s.connected) => false,
            Phase::Paused if m.playing().count() <= 1 => {
                self.finish_by_forfeit(now, mid);
                return;
            }
            Phase::Paused if m.playing().all(|(_, s)| s.connected && s.ready) => true,
            _ => return,
        };
        m.phase = Phase::Starting { at, resume };
        m.epoch = m.epoch.next();
        m.next_repeat = now + self.config.repeat_every;
        let tick = m.state.tick + 1;
        let epoch = m.epoch;
        self.reindex(mid);
        self.out.push_back(Output::Msg(
            Dest::Group(mid),
            ServerMsg::StartAt { epoch, tick, server_time: at },
        ));
        self.record(mid, if resume { Record::Resuming } else { Record::CountdownStarted });
    }

    /// `Leave`: before the start the seat is free again; during the match it forfeits.
    pub(super) fn on_leave(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        match m.phase {
            Phase::Lobby | Phase::Starting { resume: false, .. } => self.free_seat(mid, player),
            Phase::Over { .. } => {
                let Some(seat) = m.seats[player.index()].as_mut() else { return };
                seat.gone = true;
                if let Some(p) = seat.peer.take() {
                    self.out.push_back(Output::Leave(p, mid));
                }
            }
            _ => self.forfeit(now, mid, player),
        }
    }

    /// Takes a player out of a match that has not started; the seat is free again.
    pub(super) fn free_seat(&mut self, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].take() else { return };
        self.sessions.remove(&seat.session);
        if let Some(p) = seat.peer {
            if let Some(info) = self.peers.get_mut(&p) {
                info.session = None;
            }
            self.out.push_back(Output::Leave(p, mid));
        }
        let cancelled = matches!(m.phase, Phase::Starting { .. });
        if cancelled {
            m.phase = Phase::Lobby;
            m.epoch = m.epoch.next();
        }
        // Everyone says Ready again for the next countdown.
        for s in m.seats.iter_mut().flatten() {
            s.ready = false;
        }
        let empty = m.seated().next().is_none();
        self.reindex(mid);
        if cancelled {
            self.record(mid, Record::CountdownCancelled);
        }
        self.record(mid, Record::Left { player });
        if empty {
            self.close_match(mid);
        } else {
            self.broadcast_lobby(mid);
        }
    }
}
