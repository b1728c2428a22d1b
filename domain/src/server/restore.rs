//! Taking over matches a stopped server left in its journal: each comes back as it was at
//! its last journaled tick, every member lost as of now, and plays on once they return.

use std::collections::VecDeque;

use crate::journal::{Record, RecoveredMatch};
use crate::proto::{Epoch, MatchId, RoomName, SessionId};
use crate::rules::PlayerId;

use super::ServerCore;
use super::game::{Match, Phase, RECENT_TICKS, Seat};
use super::input_queue::InputQueue;
use super::links::RateLimiter;
use super::resend::RESEND_BUDGET;
use super::trust::ReplayWindow;

/// A restored match's phase count jumps this far past the journaled one, so that its phase
/// messages are newer than any its clients saw, even from phase changes whose records were
/// lost in the crash (a few milliseconds' worth: far fewer than this).
pub const RESTORE_EPOCH_STEP: u32 = 1 << 10;

/// Why [`ServerCore::restore`] refused a match.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// A match with this id is already hosted.
    #[error("{0} is already hosted")]
    AlreadyHosted(MatchId),
    /// The server hosts as many matches as it may.
    #[error("the server is full")]
    ServerFull,
    /// The match was played at another tick rate than this server's grid runs at.
    #[error("the match runs at {match_hz} Hz, this server at {server_hz} Hz")]
    TickRate {
        /// The match's rate.
        match_hz: u16,
        /// The server's rate.
        server_hz: u16,
    },
    /// One of the match's sessions is live in another match.
    #[error("session {} is already in use", .0.0)]
    SessionInUse(SessionId),
    /// The match's room names another hosted match.
    #[error("room {} is already in use", .0.as_str())]
    RoomInUse(RoomName),
}

impl ServerCore {
    /// Numbers new matches after `last`: the ids up to it name matches an event store
    /// already holds (from earlier runs of the server), and an id must name one match there.
    pub fn reserve_match_ids(&mut self, last: MatchId) {
        let next = last.0.saturating_add(1);
        if next > self.next_match {
            self.next_match = next;
        }
    }

    /// Takes over a match rebuilt from its journal after the server stopped (see
    /// [`crate::journal`]). Call it before anything else, with `now` on the driver's clock.
    ///
    /// The match comes back as it was at its last journaled tick, with its seats, tokens,
    /// forfeits and standings so far, and with every member lost as of `now`: a started
    /// match is paused, one that had not started is back in its lobby (everyone says Ready
    /// again). Members come back the usual way (`Resume`, a challenge, a signed `Prove`;
    /// until that proof a session accepts no other frame), say Ready, and the match
    /// resumes after a countdown; a member not back within the grace period forfeits (its
    /// seat is freed, in a lobby). A match that forfeits had already settled ends at once.
    /// Reports [`Record::Restored`], then [`Record::Lost`] for each member.
    ///
    /// # Errors
    /// [`RestoreError`] if the match cannot be hosted here; the server is unchanged.
    pub fn restore(&mut self, now: u64, rm: RecoveredMatch) -> Result<(), RestoreError> {
        self.set_origin(now);
        let id = rm.id();
        if self.matches.contains_key(&id) {
            return Err(RestoreError::AlreadyHosted(id));
        }
        if self.matches.len() >= self.config.max_matches {
            return Err(RestoreError::ServerFull);
        }
        if rm.config().tick_hz != self.config.tick_hz {
            return Err(RestoreError::TickRate {
                match_hz: rm.config().tick_hz,
                server_hz: self.config.tick_hz,
            });
        }
        if let Some(s) =
            rm.seats().iter().flatten().find(|s| self.sessions.contains_key(&s.session))
        {
            return Err(RestoreError::SessionInUse(s.session));
        }
        if let Some(room) = rm.room()
            && self.rooms.contains_key(room)
        {
            return Err(RestoreError::RoomInUse(room.clone()));
        }
        let started = rm.started();
        let seats = rm.seats().clone().map(|seat| {
            seat.map(|s| Seat {
                session: s.session,
                token: s.token,
                name: s.name,
                peer: None,
                ready: false,
                connected: false,
                last_heard: now,
                replay: ReplayWindow::closed(),
                challenge: None,
                inputs: InputQueue::new(),
                lost_since: (!s.gone).then_some(now),
                gone: s.gone,
                keyframe_at: None,
                back_since: None,
                resend: RateLimiter::full(RESEND_BUDGET, now),
            })
        });
        let epoch = Epoch(rm.epoch().0.saturating_add(RESTORE_EPOCH_STEP));
        let tick = rm.tick();
        let m = Match {
            id,
            room: rm.room().cloned(),
            created: now,
            rules: rm.rules().clone(),
            state: *rm.state(),
            phase: if started { Phase::Paused } else { Phase::Lobby },
            seats,
            placings: *rm.placings(),
            last_input: rm.last_input(),
            pending_forfeit: rm.pending_forfeit(),
            next_repeat: now + self.config.repeat_every,
            started,
            epoch,
            recent: VecDeque::with_capacity(RECENT_TICKS),
        };
        let members: Vec<(PlayerId, SessionId, bool)> =
            m.seated().map(|(p, s)| (p, s.session, s.gone)).collect();
        if let Some(r) = &m.room {
            self.rooms.insert(r.clone(), id);
        }
        self.matches.insert(id, m);
        self.reindex(id);
        self.reserve_match_ids(id);
        for &(p, session, _) in &members {
            self.sessions.insert(session, (id, p));
        }
        self.record(id, Record::Restored { tick, epoch: epoch.0 });
        for &(player, _, gone) in &members {
            if !gone {
                self.record(id, Record::Lost { player });
            }
        }
        let settled = self.matches.get(&id).is_some_and(|m| started && m.playing().count() <= 1);
        if settled {
            self.finish_by_forfeit(now, id);
        }
        Ok(())
    }
}
