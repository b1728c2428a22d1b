//! The confirmed copy of the match: it advances only by the server's ticks, applied in
//! order with the step function the server runs, each checked against the server's hash.
//! Ticks that overtake a missing one wait in a buffer; a gap that does not fill is asked
//! for again (Resync); a hash mismatch (a desync) or a server that went back to an earlier
//! tick waits for a keyframe. The match ends when this copy reaches the server's final tick.

use std::collections::{BTreeMap, VecDeque};

use super::{ClientCore, ClientEvent, ClientPhase};
use crate::proto::{Keyframe, MatchOver, SessionMsg, TickMsg};
use crate::sim::{Event, Intent, MatchState, TickInput};

/// Confirmed states kept for interpolating the other paddles.
const HISTORY: usize = 8;
/// Ticks buffered while waiting for a missing one.
const MAX_PENDING: usize = 1024;

/// The server's match, as far as its ticks have arrived in order.
#[derive(Clone)]
pub(super) struct Confirmed {
    /// The state after the last tick applied.
    pub(super) state: Option<MatchState>,
    /// The inputs of that tick: the prediction assumes the others keep their intents.
    pub(super) input: TickInput,
    /// The last [`HISTORY`] states with their local arrival times, to interpolate the
    /// other paddles between.
    pub(super) history: VecDeque<(u64, MatchState)>,
    /// Ticks that arrived ahead of a missing one, applied once it comes.
    pending: BTreeMap<u32, TickMsg>,
    /// Since when a tick has been missing (or the final ticks are): a Resync asks for it
    /// after half a retry period.
    pub(super) gap_since: Option<u64>,
    /// When the last Resync went out: not repeated within a retry period.
    pub(super) resync_at: Option<u64>,
    /// A desync or a server restart: ticks wait for the keyframe asked for.
    awaiting_keyframe: bool,
    /// The server went back to an earlier tick (a restart from its journal): the keyframe
    /// awaited replaces the prediction too.
    rewound: bool,
    /// The server's result, held until this copy reaches its final tick.
    result: Option<MatchOver>,
    /// Every event of the confirmed match so far, with its tick.
    pub(super) log: Vec<(u32, Event)>,
    /// Ticks whose hash disagreed with the server's.
    pub(super) desyncs: u32,
}

impl Confirmed {
    pub(super) fn new() -> Confirmed {
        Confirmed {
            state: None,
            input: TickInput::IDLE,
            history: VecDeque::new(),
            pending: BTreeMap::new(),
            gap_since: None,
            resync_at: None,
            awaiting_keyframe: false,
            rewound: false,
            result: None,
            log: Vec::new(),
            desyncs: 0,
        }
    }

    /// Starts over from `state` (a new match, or a keyframe), received at `now`.
    pub(super) fn reset_to(&mut self, now: u64, state: MatchState) {
        self.state = Some(state);
        self.history.clear();
        self.history.push_back((now, state));
    }
}

impl ClientCore {
    pub(super) fn on_tick(&mut self, now: u64, t: TickMsg) {
        let Some(conf) = self.confirmed.state else { return };
        if t.tick <= conf.tick {
            self.traffic.duplicate_ticks += 1;
            return;
        }
        if self.confirmed.pending.contains_key(&t.tick) {
            self.traffic.duplicate_ticks += 1;
        } else if self.confirmed.pending.range(t.tick + 1..).next().is_some() {
            self.traffic.late_ticks += 1;
        }
        if let Some(p) = self.session.player
            && let Some(a) = t.acks.get(t.tick, p)
        {
            self.note_ack(a, t.tick);
        }
        let pending = &mut self.confirmed.pending;
        if pending.len() >= MAX_PENDING {
            pending.pop_first();
        }
        pending.insert(t.tick, t);
        self.drain_pending(now);
    }

    /// Applies buffered ticks while they follow on; notes a gap otherwise.
    fn drain_pending(&mut self, now: u64) {
        while !self.confirmed.awaiting_keyframe {
            let Some(conf) = self.confirmed.state else { return };
            let next = conf.tick + 1;
            let Some(t) = self.confirmed.pending.remove(&next) else { break };
            if !self.apply_confirmed(now, t) {
                break;
            }
        }
        let missing = self.confirmed.pending.keys().next().is_some();
        let gap_since = &mut self.confirmed.gap_since;
        *gap_since = if missing { gap_since.or(Some(now)) } else { None };
        self.try_finish(now);
    }

    /// Steps the confirmed state by one server tick; false on a hash mismatch.
    fn apply_confirmed(&mut self, now: u64, t: TickMsg) -> bool {
        let (Some(rules), Some(mut conf)) = (self.rules.as_ref(), self.confirmed.state) else {
            return false;
        };
        let events = conf.step(rules, &t.input);
        if conf.hash() != t.hash.0 {
            self.confirmed.desyncs += 1;
            self.events.push_back(ClientEvent::Desync { tick: t.tick });
            self.confirmed.awaiting_keyframe = true;
            // Tick 0 is never held for resending, so this asks for a keyframe.
            self.push_signed(&SessionMsg::Resync { from_tick: 0 });
            self.confirmed.resync_at = Some(now);
            return false;
        }
        self.confirmed.state = Some(conf);
        self.confirmed.input = t.input;
        for e in events.iter() {
            if matches!(
                e,
                Event::LifeLost { .. } | Event::PlayerOut { .. } | Event::MatchOver { .. }
            ) {
                self.confirmed.log.push((t.tick, e));
                self.events.push_back(ClientEvent::Game { tick: t.tick, event: e });
            }
        }
        let history = &mut self.confirmed.history;
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back((now, conf));
        self.go();
        self.check_prediction(t.tick, &conf);
        true
    }

    /// At a retry: asks again for missing ticks once the gap has lasted half a retry
    /// period, and no more often than once a period.
    pub(super) fn resync_gap(&mut self, now: u64) {
        let every = self.config.retry_every;
        let c = &self.confirmed;
        if c.gap_since.is_some_and(|t| now >= t + every / 2)
            && c.resync_at.is_none_or(|t| now >= t + every)
        {
            let from = c.state.map_or(0, |c| c.tick + 1);
            self.push_signed(&SessionMsg::Resync { from_tick: from });
            self.confirmed.resync_at = Some(now);
        }
    }

    /// A current pause names a tick before the confirmed one: the server restarted and
    /// rebuilt the match from its journal, which had not kept the last few ticks. For the
    /// match those ticks never happened: drop them (and the own inputs sent for them) and
    /// take the server's state from a keyframe.
    pub(super) fn server_went_back(&mut self, now: u64) {
        let c = &mut self.confirmed;
        c.awaiting_keyframe = true;
        c.rewound = true;
        c.pending.clear();
        c.gap_since = None;
        let p = &mut self.prediction;
        p.acked = None;
        p.first_input = None;
        p.own_inputs.fill((u32::MAX, Intent::Stop));
        self.push_signed(&SessionMsg::Resync { from_tick: 0 });
        self.confirmed.resync_at = Some(now);
    }

    pub(super) fn on_keyframe(&mut self, now: u64, k: Keyframe) {
        let Some(rules) = self.rules.as_ref() else { return };
        if k.state.validate(rules).is_err() {
            self.bad_frames += 1;
            return;
        }
        let c = &mut self.confirmed;
        let behind = c.state.is_none_or(|s| k.state.tick >= s.tick);
        if !(behind || c.awaiting_keyframe) {
            return;
        }
        c.awaiting_keyframe = false;
        if c.rewound {
            c.rewound = false;
            self.prediction.state = Some(k.state);
            c.log.retain(|(t, _)| *t <= k.state.tick);
        }
        c.reset_to(now, k.state);
        c.input = k.input;
        self.session.started |= k.state.tick > 0;
        c.pending.retain(|&t, _| t > k.state.tick);
        if let Some(p) = self.session.player
            && let Some(a) = k.acks.get(k.state.tick, p)
        {
            self.prediction.acked = Some(a);
        }
        self.prediction.needs_rewind = true;
        self.drain_pending(now);
    }

    pub(super) fn on_match_over(&mut self, now: u64, result: MatchOver) {
        if self.confirmed.result.is_none() {
            self.confirmed.result = Some(result);
        }
        self.try_finish(now);
    }

    /// Ends the match once the confirmed state has reached the server's final tick.
    fn try_finish(&mut self, now: u64) {
        let (Some(result), Some(conf)) = (&self.confirmed.result, self.confirmed.state) else {
            return;
        };
        if self.is_finished() {
            return;
        }
        if conf.tick < result.tick {
            // The last ticks are on their way or were missed: ask again after a while.
            if self.confirmed.gap_since.is_none() {
                self.confirmed.gap_since = Some(now);
            }
            return;
        }
        let final_hash = conf.hash();
        let result = result.clone();
        self.phase = ClientPhase::Over { result: result.clone(), final_hash };
        self.events.push_back(ClientEvent::MatchOver { result, final_hash });
    }
}
