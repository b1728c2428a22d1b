//! The predicted copy of the match: it runs ahead of the server by the lead (half the round
//! trip plus a cushion the acks adapt), applying the player's own intents at once and
//! assuming the others keep their last confirmed ones. Each predicted step records the own
//! input and sends every unacknowledged one. Late binding revises the last predicted
//! input when the intent changes while that input can still reach the server in time.
//! Rebuilding the prediction when the server disagrees is in `reconcile.rs`.

use super::reconcile::REWIND_MAX;
use super::{ClientCore, ClientEvent, ClientPhase, SECOND};
use crate::proto::{InputRun, MAX_INPUT_RUN, SessionMsg};
use crate::sim::{Event, Intent, MatchState, TickInput};

/// Ticks of history kept for prediction checks and own inputs.
pub(super) const RING: usize = 256;
/// Most predicted ticks simulated in one call; further behind, the prediction restarts
/// from the confirmed state.
pub(super) const MAX_STEPS_PER_CALL: u32 = 60;
/// The least margin kept between an own input's arrival and the server's tick for it (µs),
/// on top of half the round trip: timers on both ends wake up to a millisecond late.
const MIN_CUSHION: u64 = 1_500;
/// The margin a new match starts with (µs), before the acks have said anything.
const START_CUSHION: u64 = 4_000;
/// The most the prediction runs ahead of the server (µs).
const MAX_LEAD: u64 = 2 * SECOND;
/// Predicted steps per lead adaptation: the acks of this many make one verdict.
const LEAD_WINDOW: u32 = 30;

/// The prediction and the own inputs it was made with.
#[derive(Clone)]
pub(super) struct Prediction {
    /// What the player sees, a little ahead of the server.
    pub(super) state: Option<MatchState>,
    /// Predicted states by tick (tick % [`RING`]), to check each against the confirmed one.
    pub(super) ring: Vec<Option<(u32, MatchState)>>,
    /// Own intent per tick (tick % [`RING`]), tagged with its tick: what was sent for it.
    pub(super) own_inputs: Vec<(u32, Intent)>,
    /// The player's current intent.
    pub(super) intent: Intent,
    /// The newest tick the server holds an own input for: sending resumes after it.
    pub(super) acked: Option<u32>,
    /// The first tick an own input was recorded for: where sending starts before any ack.
    pub(super) first_input: Option<u32>,
    /// How far ahead of the server to run.
    lead: Lead,
    /// The last predicted tick a revision was tried for: at most one try per tick, so that
    /// a controller that decides from the revised prediction cannot flip it back and forth,
    /// nor keep the driver waking at once.
    pub(super) revised_tick: u32,
    /// A confirmed tick disagreed with what was predicted for it: rebuild after this frame.
    pub(super) needs_rewind: bool,
    /// The part of the last correction of the ball not shown yet: it fades over the next
    /// steps instead of jumping.
    pub(super) ball_error: (f32, f32),
    /// The ball before the last predicted step, to interpolate from.
    pub(super) prev_ball: (f32, f32),
    /// Own inputs changed (a step, a revision) since they were last sent.
    input_dirty: bool,
    /// Own inputs revised after they were sent (late binding).
    pub(super) revisions: u64,
}

impl Prediction {
    pub(super) fn new() -> Prediction {
        Prediction {
            state: None,
            ring: vec![None; RING],
            own_inputs: vec![(u32::MAX, Intent::Stop); RING],
            intent: Intent::Stop,
            acked: None,
            first_input: None,
            lead: Lead::new(),
            revised_tick: 0,
            needs_rewind: false,
            ball_error: (0.0, 0.0),
            prev_ball: (0.0, 0.0),
            input_dirty: false,
            revisions: 0,
        }
    }
}

/// The margin by which own inputs should reach the server before their tick, on top of
/// half the round trip, adapted from the acks.
#[derive(Clone, Debug)]
struct Lead {
    /// The margin (µs).
    cushion: u64,
    /// The least (acked tick − tick) seen in this window; below 0, an input came late.
    window_min: i64,
    /// Predicted steps counted in this window.
    window_len: u32,
}

impl Lead {
    fn new() -> Lead {
        Lead { cushion: START_CUSHION, window_min: i64::MAX, window_len: 0 }
    }

    /// The lead for a round trip of `rtt` (µs).
    fn lead(&self, rtt: u64) -> u64 {
        (rtt / 2).saturating_add(self.cushion).min(MAX_LEAD)
    }

    /// An ack: at a tick, the server held own inputs up to `margin` ticks past it.
    fn note_ack(&mut self, margin: i64) {
        self.window_min = self.window_min.min(margin);
    }

    /// Keeps own inputs arriving just before the server needs them. The acks say which of
    /// them the server held at each tick: one missing (it arrived late and was applied a
    /// tick late) doubles the cushion at once; a whole window on time shrinks it slowly,
    /// and a window with a tick or more to spare faster.
    fn adapt(&mut self) {
        self.window_len += 1;
        if self.window_len < LEAD_WINDOW {
            return;
        }
        let min = self.window_min;
        self.window_len = 0;
        self.window_min = i64::MAX;
        if min == i64::MAX {
            return;
        }
        if min < 0 {
            self.cushion = self.cushion.saturating_mul(2).clamp(MIN_CUSHION, MAX_LEAD);
        } else {
            let shrink = if min > 1 { self.cushion / 4 } else { self.cushion / 8 };
            self.cushion = self.cushion.saturating_sub(shrink).max(MIN_CUSHION);
        }
    }
}

impl ClientCore {
    /// How far ahead of the server the prediction runs (µs): tick `n` is predicted, and its
    /// own input sent, this long before the server simulates it. Half the round trip plus a
    /// cushion that the acks adapt, so that inputs arrive just in time: any more is latency
    /// every other player sees.
    pub fn lead(&self) -> u64 {
        self.prediction.lead.lead(self.clock.rtt())
    }

    /// A tick's ack: the server held own inputs up to tick `acked` when it simulated `tick`.
    pub(super) fn note_ack(&mut self, acked: u32, tick: u32) {
        let p = &mut self.prediction;
        p.acked = Some(p.acked.map_or(acked, |x| x.max(acked)));
        p.lead.note_ack(i64::from(acked) - i64::from(tick));
    }

    /// Local time at which the prediction should take its next step.
    pub(super) fn next_step_time(&self) -> Option<u64> {
        if !matches!(self.phase, ClientPhase::Playing | ClientPhase::Countdown { .. }) {
            return None;
        }
        let (anchor_tick, anchor_time) = self.clock.anchor?;
        let predicted = self.prediction.state;
        if predicted.is_some_and(|p| p.is_over()) {
            return None;
        }
        // The countdown ends at the anchor itself, whatever the prediction already holds.
        if matches!(self.phase, ClientPhase::Countdown { .. }) {
            return Some(self.clock.to_local(anchor_time));
        }
        let next = predicted.map_or(anchor_tick, |p| p.tick + 1);
        // Tick `next` is predicted `lead` before the server simulates it.
        let at = self.tick_server_time(next)?.saturating_sub(self.lead());
        Some(self.clock.to_local(at.max(anchor_time)))
    }

    /// Steps the prediction up to the tick the server will have simulated `lead` from now,
    /// and sends the own inputs not acknowledged yet. Runs at every wake, whichever timer
    /// it was for.
    pub(super) fn advance_prediction(&mut self, now: u64) {
        let active = matches!(self.phase, ClientPhase::Playing)
            || matches!(self.phase, ClientPhase::Countdown { .. })
                && self.clock.anchor.is_some_and(|(_, at)| self.clock.to_server(now) >= at);
        if !active {
            return;
        }
        let (Some(conf), Some(mut pred)) = (self.confirmed.state, self.prediction.state) else {
            return;
        };
        self.go();
        self.prediction.lead.adapt();
        // Every tick the server will have simulated `lead` from now.
        let ahead = self.clock.to_server(now).saturating_add(self.lead());
        let Some(target) = self.server_tick_at_server_time(ahead) else { return };
        if pred.tick < conf.tick || target.saturating_sub(pred.tick) > MAX_STEPS_PER_CALL {
            pred = conf;
        }
        let Some(rules) = self.rules.clone() else { return };
        let mut advanced = false;
        while pred.tick < target && !pred.is_over() {
            let n = pred.tick + 1;
            let p = &mut self.prediction;
            p.own_inputs[n as usize % RING] = (n, p.intent);
            p.first_input.get_or_insert(n);
            let input = self.predicted_input(n);
            self.prediction.prev_ball = self.ball_f(&pred);
            let events = pred.step(&rules, &input);
            for e in events.iter() {
                if matches!(
                    e,
                    Event::PaddleHit { .. } | Event::WallHit { .. } | Event::Served { .. }
                ) {
                    self.events.push_back(ClientEvent::Predicted(e));
                }
            }
            self.store_prediction(pred);
            let p = &mut self.prediction;
            p.ball_error = (p.ball_error.0 * 0.85, p.ball_error.1 * 0.85);
            advanced = true;
        }
        self.prediction.state = Some(pred);
        if advanced {
            self.prediction.input_dirty = true;
        }
        if self.prediction.input_dirty && !self.session.awaiting_welcome {
            self.send_inputs(pred.tick);
        }
    }

    /// Inputs assumed for predicted tick `n`: own intent as recorded, others' last confirmed.
    pub(super) fn predicted_input(&self, n: u32) -> TickInput {
        let mut input = TickInput { intents: self.confirmed.input.intents, forfeit: 0 };
        if let Some(p) = self.session.player {
            let (t, i) = self.prediction.own_inputs[n as usize % RING];
            input.intents[p.index()] = if t == n { i } else { self.prediction.intent };
        }
        input
    }

    pub(super) fn store_prediction(&mut self, s: MatchState) {
        self.prediction.ring[s.tick as usize % RING] = Some((s.tick, s));
    }

    /// The ball's position in `s`, for drawing and smoothing.
    pub(super) fn ball_f(&self, s: &MatchState) -> (f32, f32) {
        let Some(rules) = self.rules.as_ref() else { return (0.0, 0.0) };
        let (x, y) = s.ball_pos(rules);
        (x as f32, y as f32)
    }

    /// Late binding: the intent changed after the last predicted tick took the old one. While
    /// the server has not simulated that tick and a resent input can still reach it in time
    /// (half the round trip plus half the least cushion before the tick's server time), the
    /// tick's own input is changed, the prediction rebuilt with it, and the input resent.
    /// Without this a change waits for the next tick: a whole tick more before the other
    /// players see it.
    pub(super) fn revise_last_input(&mut self, now: u64) {
        let Some(pred) = self.prediction.state else { return };
        let n = pred.tick;
        // One try per predicted tick, whatever its outcome: `set_intent` asks for an
        // immediate wake only for a tick not yet tried, so a controller that keeps changing
        // its mind cannot keep the driver waking at once (and starve its reads).
        if n == self.prediction.revised_tick {
            return;
        }
        self.prediction.revised_tick = n;
        let (Some(conf), Some((anchor_tick, _)), Some(due)) =
            (self.confirmed.state, self.clock.anchor, self.tick_server_time(n))
        else {
            return;
        };
        let slot = n as usize % RING;
        let p = &self.prediction;
        // Only while playing, and only an input the server has not acknowledged (the resend
        // starts after the ack) for a tick not confirmed yet.
        // A rewind that cannot replay up to `n` would leave the prediction at another tick,
        // open to another revision at the same instant: the controller, seeing another
        // prediction, can change its mind back and forth without time passing.
        if !matches!(self.phase, ClientPhase::Playing)
            || n <= conf.tick
            || n - conf.tick > REWIND_MAX
            || n < anchor_tick
            || p.acked.is_some_and(|a| a >= n)
            || p.own_inputs[slot].0 != n
            || p.own_inputs[slot].1 == p.intent
        {
            return;
        }
        let arrives = self.clock.to_server(now) + self.clock.rtt() / 2 + MIN_CUSHION / 2;
        if arrives >= due {
            return;
        }
        self.prediction.own_inputs[slot].1 = self.prediction.intent;
        self.rewind();
        self.prediction.revisions += 1;
        self.prediction.input_dirty = true;
    }

    /// Sends every own input the server has not acknowledged, up to `upto`.
    fn send_inputs(&mut self, upto: u32) {
        self.prediction.input_dirty = false;
        let Some(player) = self.session.player else { return };
        if self.confirmed.state.is_some_and(|c| !c.is_alive(player)) {
            return;
        }
        let p = &self.prediction;
        let unacked = match p.acked {
            Some(a) => a.saturating_add(1),
            None => p.first_input.unwrap_or(upto),
        };
        let from = unacked.max(upto.saturating_sub(MAX_INPUT_RUN as u32 - 1));
        if from > upto {
            return;
        }
        let intents = (from..=upto).map(|n| {
            let (t, i) = p.own_inputs[n as usize % RING];
            if t == n { i } else { p.intent }
        });
        let run = InputRun::new(from, intents);
        self.push_signed(&SessionMsg::Input(run));
    }
}
