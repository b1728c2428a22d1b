//! What to draw: the predicted ball and own paddle interpolated between ticks (corrections
//! smoothed out), the other paddles interpolated between confirmed states.

use super::prediction::RING;
use super::{ClientCore, ClientPhase};
use crate::rules::PlayerId;
use crate::sim::{Ball, Intent};

/// What to draw, in arena units (see [`crate::rules`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// The tick shown (predicted).
    pub tick: u32,
    /// Top-left corner of the ball.
    pub ball: (f32, f32),
    /// True if the ball rests in the centre before a serve.
    pub ball_resting: bool,
    /// Low-edge coordinate of each paddle along its side.
    pub paddles: [f32; 4],
    /// Lives per seat (confirmed).
    pub lives: [u8; 4],
}

impl ClientCore {
    /// What to draw at local time `now`: the predicted ball and own paddle, interpolated
    /// between ticks and with corrections smoothed; the other paddles from the confirmed
    /// states, interpolated.
    pub fn view(&self, now: u64) -> Option<View> {
        let rules = self.rules.as_ref()?;
        let pred = self.prediction.state?;
        let conf = self.confirmed.state?;
        let alpha = self.tick_fraction(now);
        let (bx, by) = self.ball_f(&pred);
        let (px, py) = self.prediction.prev_ball;
        let error = self.prediction.ball_error;
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let moving = matches!(pred.ball, Ball::Moving { .. });
        let jump = (bx - px).abs() + (by - py).abs() > (rules.ball_speed_max * 3) as f32;
        let ball = if moving && !jump {
            (lerp(px, bx, alpha) + error.0, lerp(py, by, alpha) + error.1)
        } else {
            (bx, by)
        };
        let mut paddles = [0.0f32; 4];
        let history = &self.confirmed.history;
        let n = history.len();
        for p in PlayerId::ALL {
            let i = p.index();
            paddles[i] = if Some(p) == self.session.player {
                let prev = self.prediction.ring[(pred.tick.wrapping_sub(1)) as usize % RING]
                    .filter(|(t, _)| *t + 1 == pred.tick)
                    .map_or(pred.paddles[i], |(_, s)| s.paddles[i]);
                lerp(prev as f32, pred.paddles[i] as f32, alpha)
            } else if n >= 2 {
                let (t0, a) = history[n - 2];
                let (t1, b) = history[n - 1];
                let span = t1.saturating_sub(t0).max(1) as f32;
                let f = (now.saturating_sub(t1) as f32 / span).clamp(0.0, 1.0);
                lerp(a.paddles[i] as f32, b.paddles[i] as f32, f)
            } else {
                conf.paddles[i] as f32
            };
        }
        Some(View { tick: pred.tick, ball, ball_resting: !moving, paddles, lives: conf.lives })
    }

    /// [`ClientCore::view`] for an interactive frontend: the own paddle is drawn one step
    /// further, from the predicted tick toward the next one at the *current* intent, so a key
    /// press shows in the very frame it is read instead of a tick later. When the next tick is
    /// predicted it starts where this left off (unless the ball blocks the paddle, which the
    /// next frame corrects), so motion stays continuous at any frame rate.
    ///
    /// Added for the Bevy window (frontends that draw faster than the tick rate); `view`
    /// itself is unchanged.
    pub fn view_with_intent(&self, now: u64) -> Option<View> {
        let mut view = self.view(now)?;
        let (Some(p), Some(rules), Some(pred)) =
            (self.session.player, self.rules.as_ref(), self.prediction.state)
        else {
            return Some(view);
        };
        if !matches!(self.phase, ClientPhase::Playing) || pred.is_over() || !pred.is_alive(p) {
            return Some(view);
        }
        let dir = match self.prediction.intent {
            Intent::Stop => 0,
            Intent::Minus => -1,
            Intent::Plus => 1,
        };
        let (lo, hi) = rules.paddle_range(p.side());
        let from = pred.paddles[p.index()];
        let to = (from + dir * rules.paddle_speed).clamp(lo, hi);
        let alpha = self.tick_fraction(now);
        view.paddles[p.index()] = from as f32 + (to - from) as f32 * alpha;
        Some(view)
    }

    /// How far `now` is between the predicted tick and the next (0 to 1).
    fn tick_fraction(&self, now: u64) -> f32 {
        let (Some(next), Some(rules)) = (self.next_step_time(), self.rules.as_ref()) else {
            return 1.0;
        };
        let period = rules.config.ticks_to_micros(1).max(1);
        let start = next.saturating_sub(period);
        (now.saturating_sub(start) as f32 / period as f32).clamp(0.0, 1.0)
    }
}
