//! A computer player: reads a match state, picks an intent.
//!
//! It plays like a person who reads the ball well but not perfectly: when the ball turns
//! toward its side it works out where the ball will cross its paddle's line (folding the
//! path at the walls), aims at that point plus an error that shrinks with skill, and reacts
//! after a delay that also shrinks with skill. Skilled bots still miss fast, steep balls, so
//! matches end. Integer-only and seeded, so a bot replays the same way every time.

use crate::client::ClientCore;
use crate::rules::{PlayerId, Rules, Side};
use crate::sim::{Ball, Intent, MatchState};

/// Skill is given in thousandths: 0 (hopeless) to 1000 (very good).
pub const MAX_SKILL: u16 = 1000;

/// A computer player for one seat.
#[derive(Clone, Debug)]
pub struct Bot {
    player: PlayerId,
    skill: u16,
    rng: u64,
    /// Direction of the ball the bot last planned for (`true` = toward it).
    approaching: bool,
    /// Aim error for the current approach, in units.
    error: i32,
    /// Ticks left before it reacts to the current approach.
    delay: u32,
}

impl Bot {
    /// A bot for `player` with `skill` in thousandths (clamped to [`MAX_SKILL`]); `seed`
    /// varies its mistakes.
    pub fn new(player: PlayerId, skill: u16, seed: u64) -> Bot {
        Bot {
            player,
            skill: skill.min(MAX_SKILL),
            rng: seed ^ 0x5DEE_CE66_D1CE_4E5B ^ u64::from(player.get()) << 56,
            approaching: false,
            error: 0,
            delay: 0,
        }
    }

    /// The seat it plays.
    pub fn player(&self) -> PlayerId {
        self.player
    }

    /// Moves the bot to another seat (a networked bot learns its seat from the server).
    pub fn set_player(&mut self, player: PlayerId) {
        self.player = player;
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: plenty for choosing mistakes.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self, max_abs: i32) -> i32 {
        if max_abs <= 0 {
            return 0;
        }
        let span = 2 * max_abs as u64 + 1;
        (self.next() % span) as i32 - max_abs
    }

    /// Picks the mistake for a new approach of the ball: usually a small aim error, sometimes
    /// (more often the lower the skill, never less than 1 in 100) a misjudgement by more than
    /// the paddle can reach.
    fn plan_approach(&mut self, rules: &Rules) {
        let lack = i32::from(MAX_SKILL - self.skill);
        let scale = i32::from(MAX_SKILL);
        let misjudge = (self.next() % 1000) < (10 + lack as u64 * 3 / 5);
        self.error = if misjudge {
            let reach = (rules.paddle_length + rules.ball_size) / 2;
            let off =
                reach + rules.ball_size + (self.next() % (rules.paddle_length as u64 / 2)) as i32;
            if self.next() & 1 == 0 { off } else { -off }
        } else {
            self.uniform(rules.paddle_length / 4 * lack / scale)
        };
        self.delay = (lack as u32 * 20 / u32::from(MAX_SKILL)).saturating_add(1);
    }

    /// The intent for the coming tick, given the latest state the bot knows.
    pub fn decide(&mut self, rules: &Rules, state: &MatchState) -> Intent {
        if !state.is_alive(self.player) {
            return Intent::Stop;
        }
        let side = self.player.side();
        let paddle_mid = state.paddles[self.player.index()] + rules.paddle_length / 2;
        let target = match state.ball {
            Ball::Moving { x, y, vx, vy, .. } => {
                let (toward, along) = intercept(rules, side, x, y, vx, vy);
                if toward && !self.approaching {
                    self.plan_approach(rules);
                }
                self.approaching = toward;
                if toward && self.delay > 0 {
                    self.delay -= 1;
                    None
                } else if toward {
                    Some(along + self.error)
                } else {
                    Some(rules.side_length(side) / 2)
                }
            }
            Ball::Resting { .. } => {
                self.approaching = false;
                Some(rules.side_length(side) / 2)
            }
        };
        let Some(target) = target else { return Intent::Stop };
        let dead = rules.paddle_speed / 2;
        if target > paddle_mid + dead {
            Intent::Plus
        } else if target < paddle_mid - dead {
            Intent::Minus
        } else {
            Intent::Stop
        }
    }
}

/// A bot at the controls of a [`ClientCore`]: it learns its seat from the server and decides
/// once per predicted tick on the predicted state, as a person reacts to what they see. Every
/// frontend's bot mode (`pong bot`, the browser's `?bot=`) steers with this.
#[derive(Clone, Debug)]
pub struct Pilot {
    skill: u16,
    seed: u64,
    bot: Option<Bot>,
    last_tick: Option<u32>,
}

impl Pilot {
    /// A pilot of `skill` from 0.0 to 1.0 (clamped; not a number counts as 0) whose mistakes
    /// vary with `seed`.
    #[must_use]
    pub fn new(skill: f64, seed: u64) -> Pilot {
        let skill = if skill.is_nan() { 0.0 } else { skill.clamp(0.0, 1.0) };
        // In [0, 1000] after the clamp, so the cast is exact.
        let skill = (skill * f64::from(MAX_SKILL)).round() as u16;
        Pilot { skill, seed, bot: None, last_tick: None }
    }

    /// The intent to play from now on, or `None` when nothing new was predicted since the
    /// last call (or the player has no seat or match yet).
    pub fn steer(&mut self, core: &ClientCore) -> Option<Intent> {
        let player = core.player()?;
        let rules = core.rules()?;
        let state = core.predicted()?;
        if self.last_tick == Some(state.tick) {
            return None;
        }
        self.last_tick = Some(state.tick);
        let bot = self.bot.get_or_insert_with(|| Bot::new(player, self.skill, self.seed));
        bot.set_player(player);
        Some(bot.decide(rules, state))
    }
}

/// Whether the ball is heading for `side`, and the centre coordinate along that side where it
/// will cross the paddle's line (folding the path at the two walls along the side).
fn intercept(rules: &Rules, side: Side, x: i32, y: i32, vx: i32, vy: i32) -> (bool, i32) {
    let b = rules.ball_size;
    let (pos_n, v_n, pos_a, v_a) = if side.is_vertical() { (x, vx, y, vy) } else { (y, vy, x, vx) };
    let extent = if side.is_vertical() { rules.width } else { rules.height };
    let line = rules.paddle_inset + rules.paddle_thickness;
    let (toward, dist) = match side {
        Side::Left | Side::Top => (v_n < 0, pos_n - line),
        Side::Right | Side::Bottom => (v_n > 0, extent - line - b - pos_n),
    };
    if !toward || v_n == 0 {
        return (false, 0);
    }
    let ticks = i64::from(dist.max(0)) / i64::from(v_n.abs()).max(1);
    let span = i64::from(rules.side_length(side) - b).max(1);
    let raw = i64::from(pos_a) + i64::from(v_a) * ticks;
    let folded = raw.rem_euclid(2 * span);
    let along = if folded > span { 2 * span - folded } else { folded };
    (true, along as i32 + b / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::MatchConfig;
    use crate::sim::TickInput;

    fn play(players: u8, skill: u16, seed: u64, max_ticks: u32) -> MatchState {
        let rules = Rules::new(MatchConfig::new(players, 3, 60, seed).unwrap());
        let mut bots: Vec<Bot> = rules.config.seats().map(|p| Bot::new(p, skill, seed)).collect();
        let mut s = MatchState::new(&rules);
        while !s.is_over() && s.tick < max_ticks {
            let mut input = TickInput::IDLE;
            for bot in &mut bots {
                input.intents[bot.player().index()] = bot.decide(&rules, &s);
            }
            s.step(&rules, &input);
        }
        s
    }

    #[test]
    fn bots_finish_matches() {
        for players in 2..=4 {
            for seed in 0..5 {
                let s = play(players, 700, seed, 60 * 60 * 20);
                assert!(s.is_over(), "{players} players, seed {seed}: still going at {}", s.tick);
            }
        }
    }

    #[test]
    fn skill_matters() {
        // A good bot outlasts a poor one: count rallies survived in 2-player matches.
        let rules = Rules::new(MatchConfig::new(2, 5, 60, 1).unwrap());
        let mut wins = 0;
        for seed in 0..10 {
            let mut good = Bot::new(PlayerId::ALL[0], 950, seed);
            let mut poor = Bot::new(PlayerId::ALL[1], 100, seed);
            let mut s = MatchState::new(&rules);
            while !s.is_over() {
                let mut input = TickInput::IDLE;
                input.intents[0] = good.decide(&rules, &s);
                input.intents[1] = poor.decide(&rules, &s);
                s.step(&rules, &input);
            }
            wins += usize::from(s.winner() == Some(PlayerId::ALL[0]));
        }
        assert!(wins >= 8, "the good bot won only {wins} of 10");
    }
}
