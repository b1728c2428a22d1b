//! The workload of the step benchmarks: consecutive (state, input) pairs of matches that
//! skilled bots play, kept only where the ball is in flight (a resting ball between rallies
//! makes a step nearly free, and would flatter the average). Shared by the criterion bench
//! `step/*` (`domain/benches/domain.rs`) and, by path, the callgrind tool `step_cost`
//! (`app/bench/src/bin/step_cost.rs`), so that both measure the same steps.

use pong_domain::bot::Bot;
use pong_domain::rules::ConfigError;
use pong_domain::{Ball, MatchConfig, MatchState, Rules, TickInput};

/// How many mid-rally steps are recorded.
const STEPS: usize = 4096;

/// The rules of a `players`-player match (15 lives, 60 Hz) and [`STEPS`] mid-rally steps of
/// it.
///
/// # Errors
/// A player count the rules do not allow.
pub(crate) fn rally_steps(
    players: u8,
) -> Result<(Rules, Vec<(MatchState, TickInput)>), ConfigError> {
    let rules = Rules::new(MatchConfig::new(players, 15, 60, 5)?);
    let mut pairs = Vec::with_capacity(STEPS);
    // Another match (the bots' mistakes vary with their seed) until there are enough.
    for seed in 3.. {
        let mut bots: Vec<Bot> = rules.config.seats().map(|p| Bot::new(p, 950, seed)).collect();
        let mut state = MatchState::new(&rules);
        while !state.is_over() && pairs.len() < STEPS {
            let mut input = TickInput::IDLE;
            for b in &mut bots {
                input.intents[b.player().index()] = b.decide(&rules, &state);
            }
            if matches!(state.ball, Ball::Moving { .. }) {
                pairs.push((state, input));
            }
            state.step(&rules, &input);
        }
        if pairs.len() == STEPS {
            break;
        }
    }
    Ok((rules, pairs))
}
