//! Reconciliation: each confirmed tick is checked against what was predicted for it; on a
//! disagreement (or a keyframe, or a revised own input) the prediction is rebuilt from the
//! confirmed state by replaying the own inputs, and the jump in the ball is handed to the
//! view to smooth out.

use super::ClientCore;
use super::prediction::{MAX_STEPS_PER_CALL, RING};
use crate::sim::MatchState;

/// Most steps one rewind replays: a prediction further ahead of the confirmed state than
/// this is rebuilt only this far (the next advance resets it from the confirmed state).
pub(super) const REWIND_MAX: u32 = MAX_STEPS_PER_CALL * 4;

impl ClientCore {
    /// Did the prediction get confirmed tick `tick` right? If not, rebuild it after the
    /// frame.
    pub(super) fn check_prediction(&mut self, tick: u32, conf: &MatchState) {
        match self.prediction.ring[tick as usize % RING] {
            Some((pt, ps)) if pt == tick && ps == *conf => {}
            _ => {
                self.prediction.needs_rewind = true;
                self.traffic.corrections += 1;
            }
        }
    }

    /// Rebuilds the prediction from the confirmed state.
    pub(super) fn rewind(&mut self) {
        self.prediction.needs_rewind = false;
        let (Some(conf), Some(pred)) = (self.confirmed.state, self.prediction.state) else {
            return;
        };
        let shown = self.ball_f(&pred);
        let target = pred.tick.max(conf.tick);
        let mut s = conf;
        self.store_prediction(s);
        let mut steps = 0;
        while s.tick < target && steps < REWIND_MAX {
            let input = self.predicted_input(s.tick + 1);
            if let Some(rules) = self.rules.as_ref() {
                s.step(rules, &input);
            }
            self.store_prediction(s);
            steps += 1;
        }
        self.prediction.state = Some(s);
        // Show the correction gradually unless it is a jump (a serve, a resync).
        let now_shown = self.ball_f(&s);
        let (dx, dy) = (shown.0 - now_shown.0, shown.1 - now_shown.1);
        let limit = self.rules.as_ref().map_or(0.0, |r| (r.ball_size * 4) as f32);
        let error = &mut self.prediction.ball_error;
        *error =
            if dx.abs() + dy.abs() < limit { (error.0 + dx, error.1 + dy) } else { (0.0, 0.0) };
    }
}
