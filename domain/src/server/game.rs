//! One hosted match as the server keeps it: its seats, its phase and the messages that tell
//! a member where it stands.

use std::collections::VecDeque;

use crate::proto::{
    Acks, Epoch, Lobby, Lost, MatchId, MatchOver, Member, Name, Paused, RoomName, ServerMsg,
    SessionId, TickMsg, Token,
};
use crate::route::PeerId;
use crate::rules::{PlayerId, Rules};
use crate::sim::{MatchState, TickInput};
use crate::standings::{Placing, result_of};

use super::input_queue::InputQueue;
use super::links::RateLimiter;
use super::resend::RESEND_BUDGET;
use super::trust::ReplayWindow;

/// Recent ticks kept per match for members that missed some.
pub(super) const RECENT_TICKS: usize = 256;

/// A seat and the session that holds it.
#[derive(Clone, Debug)]
pub(super) struct Seat {
    pub(super) session: SessionId,
    pub(super) token: Token,
    pub(super) name: Name,
    /// The link the session last proved itself on: where its messages go.
    pub(super) peer: Option<PeerId>,
    pub(super) ready: bool,
    /// False from the moment the member is lost until it is heard again.
    pub(super) connected: bool,
    pub(super) last_heard: u64,
    pub(super) replay: ReplayWindow,
    /// The nonce a resuming client must sign, and when it expires.
    pub(super) challenge: Option<(u64, u64)>,
    pub(super) inputs: InputQueue,
    /// When the member was lost: its grace period runs from here.
    pub(super) lost_since: Option<u64>,
    /// When the member came back into a paused match: until it says Ready the match waits
    /// for it, for no longer than a lost member's grace period (then it forfeits), so that
    /// a member back but silent cannot hold the match paused for ever.
    pub(super) back_since: Option<u64>,
    /// Gone for good: left, or out of grace. The seat stays for the standings.
    pub(super) gone: bool,
    /// When the member was last sent a keyframe, to rate-limit them.
    pub(super) keyframe_at: Option<u64>,
    /// Ticks the member may still be resent ([`RESEND_BUDGET`]).
    pub(super) resend: RateLimiter,
}

impl Seat {
    /// A seat just taken by a player who joined on `peer`.
    pub(super) fn joined(
        session: SessionId,
        token: Token,
        name: Name,
        peer: PeerId,
        now: u64,
    ) -> Seat {
        Seat {
            session,
            token,
            name,
            peer: Some(peer),
            ready: false,
            connected: true,
            last_heard: now,
            replay: ReplayWindow::new(),
            challenge: None,
            inputs: InputQueue::new(),
            lost_since: None,
            gone: false,
            keyframe_at: None,
            back_since: None,
            resend: RateLimiter::full(RESEND_BUDGET, now),
        }
    }
}

/// Where a match stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Lobby,
    /// Everyone is ready; the next tick is simulated at `at`. `resume`: after a pause, not
    /// before the first tick.
    Starting {
        at: u64,
        resume: bool,
    },
    /// Ticking on the grid; tick `anchor_tick` was due at `anchor_time`.
    Running {
        anchor_tick: u32,
        anchor_time: u64,
    },
    Paused,
    /// Finished at `at`; kept a while to repeat the result.
    Over {
        at: u64,
        result: MatchOver,
    },
}

/// A hosted match.
#[derive(Clone, Debug)]
pub(super) struct Match {
    pub(super) id: MatchId,
    pub(super) room: Option<RoomName>,
    pub(super) rules: Rules,
    /// When it was created (or restored): a lobby closes [`super::ServerConfig::lobby_timeout`]
    /// after it.
    pub(super) created: u64,
    pub(super) state: MatchState,
    pub(super) phase: Phase,
    pub(super) seats: [Option<Seat>; 4],
    pub(super) placings: [Option<Placing>; 4],
    /// The input of the last tick, sent with a keyframe so a client can predict from it.
    pub(super) last_input: TickInput,
    /// Seats (a bit each) that forfeit at the next tick.
    pub(super) pending_forfeit: u8,
    pub(super) next_repeat: u64,
    /// The first tick was simulated: from then on a member's loss pauses the match.
    pub(super) started: bool,
    /// Bumped on every phase change; carried by the phase messages.
    pub(super) epoch: Epoch,
    /// The last [`RECENT_TICKS`] ticks, to resend to members that missed some.
    pub(super) recent: VecDeque<TickMsg>,
}

impl Match {
    pub(super) fn seated(&self) -> impl Iterator<Item = (PlayerId, &Seat)> {
        self.seats.iter().enumerate().filter_map(|(i, s)| Some((PlayerId::ALL[i], s.as_ref()?)))
    }

    pub(super) fn is_full(&self) -> bool {
        self.seated().count() == usize::from(self.rules.players())
    }

    /// Members who still play: seated, not gone, not out in the simulation.
    pub(super) fn playing(&self) -> impl Iterator<Item = (PlayerId, &Seat)> {
        let started = self.started;
        let state = self.state;
        self.seated().filter(move |(p, s)| !s.gone && (!started || state.is_alive(*p)))
    }

    pub(super) fn lobby(&self) -> Lobby {
        Lobby {
            match_id: self.id,
            epoch: self.epoch,
            room: self.room.clone(),
            seats: self.rules.players(),
            members: self
                .seated()
                .map(|(p, s)| Member {
                    player: p,
                    name: s.name.clone(),
                    ready: s.ready,
                    connected: s.connected,
                })
                .collect(),
        }
    }

    fn paused_msg(&self, grace: u64) -> Paused {
        Paused {
            epoch: self.epoch,
            tick: self.state.tick,
            lost: self
                .playing()
                .filter_map(|(p, s)| {
                    Some(Lost { player: p, deadline: s.lost_since?.saturating_add(grace) })
                })
                .collect(),
        }
    }

    pub(super) fn acks(&self, tick: u32) -> Acks {
        let mut last = [None; 4];
        for (p, s) in self.seated() {
            last[p.index()] = s.inputs.acked;
        }
        Acks::relative_to(tick, last)
    }

    pub(super) fn result(&self) -> MatchOver {
        result_of(&self.state, &self.placings, self.seated().map(|(p, s)| (p, &s.name)))
    }

    /// The message that tells a member where the match stands now.
    pub(super) fn phase_msg(&self, grace: u64) -> ServerMsg {
        match &self.phase {
            Phase::Lobby => ServerMsg::Lobby(self.lobby()),
            Phase::Starting { at, .. } => ServerMsg::StartAt {
                epoch: self.epoch,
                tick: self.state.tick.wrapping_add(1),
                server_time: *at,
            },
            Phase::Running { anchor_tick, anchor_time } => ServerMsg::StartAt {
                epoch: self.epoch,
                tick: *anchor_tick,
                server_time: *anchor_time,
            },
            Phase::Paused => ServerMsg::Paused(self.paused_msg(grace)),
            Phase::Over { result, .. } => ServerMsg::MatchOver(result.clone()),
        }
    }
}
