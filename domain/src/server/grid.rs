//! The tick loop. Every running match ticks on one server-wide grid (grid tick `g` is due
//! at `origin + g / tick_hz`), so a server with thousands of matches wakes once per tick,
//! not once per match. A grid tick steps every running match once with the inputs its
//! members sent, sends the tick to the match's group, and ends the match when the
//! simulation says so; a server that falls far behind skips ahead and re-anchors.

use crate::journal::Record;
use crate::proto::{InputRun, MatchId, ServerMsg, SessionId, StateHash, TickMsg};
use crate::route::{Dest, PeerId};
use crate::rules::PlayerId;
use crate::sim::{Intent, TickInput};
use crate::standings::note_placings;

use super::game::{Match, Phase, RECENT_TICKS};
use super::{Output, Refusal, SECOND, ServerCore, ServerEvent};

/// The server skips ahead instead of catching up when this many grid ticks behind.
const MAX_CATCH_UP: u64 = 8;

impl ServerCore {
    /// Server time of grid tick `g`.
    pub(super) fn grid_time(&self, g: u64) -> u64 {
        let hz = u128::from(self.config.tick_hz.max(1));
        let offset = (u128::from(g) * u128::from(SECOND)).div_ceil(hz);
        self.origin.unwrap_or(0).saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// The first grid time at or after `t`.
    pub(super) fn grid_at_or_after(&self, t: u64) -> u64 {
        let origin = self.origin.unwrap_or(0);
        let hz = u128::from(self.config.tick_hz.max(1));
        let since = u128::from(t.saturating_sub(origin));
        let g = (since * hz).div_ceil(u128::from(SECOND));
        self.grid_time(u64::try_from(g).unwrap_or(u64::MAX))
    }

    /// The grid starts at the first thing the server hears of.
    pub(super) fn set_origin(&mut self, now: u64) {
        if self.origin.is_none() {
            self.origin = Some(now);
            self.next_grid = 0;
            self.next_housekeeping = now;
        }
    }

    fn next_grid_index_at(&self, now: u64) -> u64 {
        let since = u128::from(now.saturating_sub(self.origin.unwrap_or(0)));
        u64::try_from(since * u128::from(self.config.tick_hz) / u128::from(SECOND))
            .unwrap_or(u64::MAX)
    }

    /// Runs every grid tick due by `now`.
    pub(super) fn run_due_ticks(&mut self, now: u64) {
        let due = |core: &Self| core.grid_time(core.next_grid) <= now;
        if !due(self) {
            return;
        }
        let behind = self.next_grid_index_at(now).saturating_sub(self.next_grid);
        if behind > MAX_CATCH_UP {
            self.next_grid += behind;
            // Grid ticks with no match to step are no loss: only count and announce the skip
            // when some match's ticks were late.
            let running = |m: &Match| matches!(m.phase, Phase::Running { .. });
            if self.active.iter().any(|id| self.matches.get(id).is_some_and(running)) {
                self.stats.overruns += behind;
                self.event(ServerEvent::Overrun { skipped: behind });
                self.reanchor();
            }
        }
        while due(self) {
            let t = self.grid_time(self.next_grid);
            self.grid_tick(t);
            self.next_grid += 1;
        }
    }

    /// After skipping grid ticks, tell every running match's members the new mapping of
    /// ticks to server time.
    fn reanchor(&mut self) {
        let t = self.grid_time(self.next_grid);
        let mut msgs = Vec::new();
        for id in &self.active {
            let Some(m) = self.matches.get_mut(id) else { continue };
            if let Phase::Running { .. } = m.phase {
                let tick = m.state.tick + 1;
                m.phase = Phase::Running { anchor_tick: tick, anchor_time: t };
                msgs.push((m.id, ServerMsg::StartAt { epoch: m.epoch, tick, server_time: t }));
            }
        }
        for (mid, msg) in msgs {
            self.out.push_back(Output::Msg(Dest::Group(mid), msg));
        }
    }

    /// One tick of the grid: every running match steps once; countdowns that end now start.
    fn grid_tick(&mut self, t: u64) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        due.extend(
            self.active
                .iter()
                .filter_map(|id| self.matches.get(id))
                .filter(|m| match m.phase {
                    Phase::Running { .. } => true,
                    Phase::Starting { at, .. } => at <= t,
                    _ => false,
                })
                .map(|m| m.id),
        );
        for &mid in &due {
            if let Some(m) = self.matches.get_mut(&mid)
                && let Phase::Starting { at, resume } = m.phase
            {
                m.phase = Phase::Running { anchor_tick: m.state.tick + 1, anchor_time: at };
                if !resume {
                    m.started = true;
                    self.record(mid, Record::Started);
                }
            }
            self.step_match(t, mid);
        }
        self.due = due;
    }

    /// `Input`: files a member's intents for the ticks they are for.
    pub(super) fn on_input(
        &mut self,
        mid: MatchId,
        player: PlayerId,
        peer: PeerId,
        session: SessionId,
        run: &InputRun,
    ) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        if !m.started && !matches!(m.phase, Phase::Starting { .. }) {
            return;
        }
        let next = m.state.tick.wrapping_add(1);
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if !seat.inputs.add(run, next) {
            self.stats.out_of_window += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::OutOfWindow(session) });
        }
    }

    /// Simulates a match's next tick and sends it to the match's group.
    pub(super) fn step_match(&mut self, now: u64, mid: MatchId) {
        let record = self.config.record_ticks;
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let n = m.state.tick.wrapping_add(1);
        let mut input = TickInput { intents: [Intent::Stop; 4], forfeit: m.pending_forfeit };
        m.pending_forfeit = 0;
        for (i, seat) in m.seats.iter_mut().enumerate() {
            if let Some(seat) = seat {
                input.intents[i] = seat.inputs.take(n);
            }
        }
        let lives_before = m.state.lives;
        let events = m.state.step(&m.rules, &input);
        m.started = true;
        let hash = m.state.hash();
        m.last_input = input;
        let over = note_placings(&mut m.placings, lives_before, &events, n);
        let tick = TickMsg { tick: n, input, acks: m.acks(n), hash: StateHash(hash) };
        if m.recent.len() == RECENT_TICKS {
            m.recent.pop_front();
        }
        m.recent.push_back(tick);
        self.stats.ticks += 1;
        self.out.push_back(Output::Msg(Dest::Group(mid), ServerMsg::Tick(tick)));
        if record {
            self.record(mid, Record::Tick { tick: n, input, hash });
        }
        if over {
            self.end_match(now, mid);
        }
    }

    fn end_match(&mut self, now: u64, mid: MatchId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let result = m.result();
        m.phase = Phase::Over { at: now, result: result.clone() };
        m.next_repeat = now + self.config.repeat_every;
        self.reindex(mid);
        self.stats.matches_finished += 1;
        self.out.push_back(Output::Msg(Dest::Group(mid), ServerMsg::MatchOver(result.clone())));
        self.record(mid, Record::Over { result });
    }
}
