//! The session and its phases: joining (or resuming) and the Welcome, the match group
//! subscription, the lobby and saying Ready, the countdown to the start, pauses, and
//! refusals. Which [`ClientPhase`] the client is in changes here (and at the end, in
//! `confirmed.rs`).

use super::timer::Timer;
use super::{ClientCore, ClientEvent, ClientPhase, TransportRequest};
use crate::proto::{
    Epoch, Join, Lobby, MatchId, OpenMsg, Paused, Reject, SessionId, SessionMsg, Token, Welcome,
};
use crate::rules::{PlayerId, Rules};
use crate::sim::MatchState;

/// The link, the seat and where the conversation with the server stands.
#[derive(Clone)]
pub(super) struct Session {
    /// The link to the server is up.
    pub(super) connected: bool,
    /// The session and its token, once welcomed (or given to resume).
    pub(super) credentials: Option<(SessionId, Token)>,
    pub(super) match_id: Option<MatchId>,
    pub(super) player: Option<PlayerId>,
    /// Sequence number of the last signed frame sent.
    pub(super) seq: u32,
    /// The match group the transport has confirmed a subscription to on this link.
    pub(super) subscribed: Option<MatchId>,
    /// A subscription was requested and not confirmed yet: not requested twice.
    pub(super) subscribing: bool,
    /// A Join or Resume is out and its Welcome has not come: repeat it, and send nothing
    /// else on the new link until the server has taken the session back.
    pub(super) awaiting_welcome: bool,
    /// The newest phase count seen; older phase messages are stale.
    epoch: Epoch,
    /// Play has begun (the countdown ran out or a tick came): a late lobby message no
    /// longer moves the phase back.
    pub(super) started: bool,
    /// The next deadline of the retry period. It runs on while nothing awaits an answer
    /// (so a retry that becomes needed keeps its place in it); the [`Timer::Retry`] wake
    /// is armed only while something does.
    ///
    /// [`Timer::Retry`]: super::timer::Timer::Retry
    pub(super) retry_at: u64,
    /// Pauses seen.
    pub(super) pauses: u32,
}

impl Session {
    pub(super) fn new(resume: Option<(SessionId, Token)>) -> Session {
        Session {
            connected: false,
            credentials: resume,
            match_id: None,
            player: None,
            seq: 0,
            subscribed: None,
            subscribing: false,
            awaiting_welcome: false,
            epoch: Epoch::FIRST,
            started: false,
            retry_at: 0,
            pauses: 0,
        }
    }

    /// The link is gone (dropped, or the server went silent): so is its subscription.
    pub(super) fn link_lost(&mut self) {
        self.connected = false;
        self.subscribed = None;
        self.subscribing = false;
    }
}

impl ClientCore {
    /// Asks for a seat, or for the session back.
    pub(super) fn send_join(&mut self) {
        match self.session.credentials {
            Some((session, _)) => self.push_open(&OpenMsg::Resume { session }),
            None => {
                let join = Join {
                    name: self.config.name.clone(),
                    players: self.config.players,
                    room: self.config.room.clone(),
                };
                self.push_open(&OpenMsg::Join(join));
            }
        }
    }

    pub(super) fn on_welcome(&mut self, now: u64, w: Welcome) {
        if w.config.validate().is_err() {
            self.bad_frames += 1;
            return;
        }
        self.session.awaiting_welcome = false;
        if !self.clock.is_synced() {
            // Pings wait for the session; the clock must be (re)checked before Ready.
            self.timers.set(Timer::Ping, now);
        }
        let s = &mut self.session;
        let same = s.match_id == Some(w.match_id) && self.rules.is_some();
        s.credentials = Some((w.session, w.token));
        s.match_id = Some(w.match_id);
        s.player = Some(w.player);
        if !same {
            let rules = Rules::new(w.config);
            let state = MatchState::new(&rules);
            self.confirmed.reset_to(now, state);
            self.prediction.state = Some(state);
            self.rules = Some(rules);
        }
        if matches!(self.phase, ClientPhase::Joining | ClientPhase::Connecting) && !w.resumed {
            self.phase = ClientPhase::Lobby(Lobby {
                match_id: w.match_id,
                epoch: self.session.epoch,
                room: self.config.room.clone(),
                seats: w.config.players,
                members: Vec::new(),
            });
        }
        if w.resumed {
            // Ask for whatever was missed while away.
            let from = self.confirmed.state.map_or(0, |c| c.tick + 1);
            let from = if same { from } else { 0 };
            self.push_signed(&SessionMsg::Resync { from_tick: from });
            self.confirmed.resync_at = Some(now);
        }
        let s = &mut self.session;
        if s.subscribed != Some(w.match_id) && !s.subscribing {
            s.subscribing = true;
            self.requests.push_back(TransportRequest::Subscribe(w.match_id));
        }
        self.events.push_back(ClientEvent::Welcomed {
            match_id: w.match_id,
            player: w.player,
            config: w.config,
            resumed: w.resumed,
        });
    }

    pub(super) fn on_rejected(&mut self, r: Reject) {
        // A refused join or resume ends this client, and so does a session the server no
        // longer knows; anything else (a rate limit) is passing.
        let fatal = matches!(self.phase, ClientPhase::Joining) || r == Reject::UnknownSession;
        if fatal && !self.is_finished() {
            self.phase = ClientPhase::Rejected(r);
        }
        self.events.push_back(ClientEvent::Rejected(r));
    }

    /// True unless `epoch` is older than a phase already seen (the network reordered).
    pub(super) fn fresh_epoch(&mut self, epoch: Epoch) -> bool {
        if epoch < self.session.epoch {
            return false;
        }
        self.session.epoch = epoch;
        true
    }

    pub(super) fn on_lobby(&mut self, now: u64, l: Lobby) {
        if Some(l.match_id) != self.session.match_id || !self.fresh_epoch(l.epoch) {
            return;
        }
        if matches!(
            self.phase,
            ClientPhase::Joining | ClientPhase::Lobby(_) | ClientPhase::Countdown { .. }
        ) && !self.session.started
        {
            // The server repeats the lobby as a heartbeat; only a change is news.
            let changed = !matches!(&self.phase, ClientPhase::Lobby(old) if *old == l);
            self.phase = ClientPhase::Lobby(l.clone());
            if changed {
                self.events.push_back(ClientEvent::LobbyChanged(l));
            }
            self.maybe_ready(now, false);
        }
    }

    fn me_ready_in_lobby(&self) -> bool {
        match (&self.phase, self.session.player) {
            (ClientPhase::Lobby(l), Some(p)) => l.members.iter().any(|m| m.player == p && m.ready),
            _ => false,
        }
    }

    /// Says Ready when it is true: subscribed, clock synced, in a lobby or a pause. `fresh`:
    /// just became true (subscribed), so it is said at once rather than at the next retry.
    pub(super) fn maybe_ready(&mut self, now: u64, fresh: bool) {
        let waiting = matches!(self.phase, ClientPhase::Lobby(_) | ClientPhase::Paused(_));
        let s = &self.session;
        if waiting && self.clock.is_synced() && s.subscribed.is_some() && s.subscribed == s.match_id
        {
            let already = self.me_ready_in_lobby();
            if !already && (fresh || now >= self.session.retry_at) {
                self.push_signed(&SessionMsg::Ready);
                self.session.retry_at = now + self.config.retry_every;
            }
        }
    }

    pub(super) fn on_start_at(&mut self, tick: u32, server_time: u64) {
        self.clock.anchor = Some((tick, server_time));
        match self.phase {
            ClientPhase::Playing
            | ClientPhase::Over { .. }
            | ClientPhase::Rejected(_)
            | ClientPhase::Closed(_) => {}
            _ => {
                let at = self.clock.to_local(server_time);
                let changed =
                    !matches!(self.phase, ClientPhase::Countdown { tick: t, .. } if t == tick);
                self.phase = ClientPhase::Countdown { tick, at };
                if changed {
                    self.events.push_back(ClientEvent::Countdown { tick, at });
                }
            }
        }
    }

    pub(super) fn on_paused(&mut self, now: u64, p: Paused) {
        if !self.fresh_epoch(p.epoch) {
            return;
        }
        if matches!(
            self.phase,
            ClientPhase::Over { .. } | ClientPhase::Rejected(_) | ClientPhase::Closed(_)
        ) {
            return;
        }
        if self.confirmed.state.is_some_and(|c| c.tick > p.tick) {
            self.server_went_back(now);
        }
        let lost = p.lost.iter().map(|l| (l.player, self.clock.to_local(l.deadline))).collect();
        let changed = match &self.phase {
            ClientPhase::Paused(old) => {
                old.lost.iter().map(|l| l.player).ne(p.lost.iter().map(|l| l.player))
            }
            _ => {
                self.session.pauses += 1;
                true
            }
        };
        self.phase = ClientPhase::Paused(p);
        if changed {
            self.events.push_back(ClientEvent::Paused { lost });
        }
    }

    /// The countdown is over (by the clock, or because a tick arrived first).
    pub(super) fn go(&mut self) {
        self.session.started = true;
        if matches!(self.phase, ClientPhase::Countdown { .. }) {
            self.phase = ClientPhase::Playing;
            self.events.push_back(ClientEvent::Started);
        }
    }
}
