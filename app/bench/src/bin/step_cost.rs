//! Runs `N` simulation steps (default 100 000) of a 4-player match in mid-rally, the same
//! workload as the criterion bench `step/4_players` in `domain/benches/domain.rs`, and the
//! state hash after each, so that callgrind can count the instructions of one step, a
//! number that does not move with the machine's load:
//!
//! ```text
//! cargo build --release -p pong-bench --bin step_cost
//! scripts/step-cost.sh            # valgrind --tool=callgrind + callgrind_annotate
//! ```
//!
//! Each iteration copies a recorded mid-rally state (ball in flight, from a match four
//! skilled bots play), steps it with the recorded input, and hashes the result.

#![allow(clippy::print_stdout)] // The summary on stdout is this tool's purpose.

use std::hint::black_box;

use anyhow::{Context, Result};
use pong_domain::bot::Bot;
use pong_domain::{Ball, MatchConfig, MatchState, Rules, TickInput};

fn main() -> Result<()> {
    let steps: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().context("the number of steps")?,
        None => 100_000,
    };
    // The workload of the criterion bench: steps in mid-rally (ball in flight), each from
    // a recorded state of a match four skilled bots play.
    let rules = Rules::new(MatchConfig::new(4, 15, 60, 5)?);
    let mut pairs: Vec<(MatchState, TickInput)> = Vec::with_capacity(4096);
    for seed in 3.. {
        let mut bots: Vec<Bot> = rules.config.seats().map(|p| Bot::new(p, 950, seed)).collect();
        let mut state = MatchState::new(&rules);
        while !state.is_over() && pairs.len() < 4096 {
            let mut input = TickInput::IDLE;
            for b in &mut bots {
                input.intents[b.player().index()] = b.decide(&rules, &state);
            }
            if matches!(state.ball, Ball::Moving { .. }) {
                pairs.push((state, input));
            }
            state.step(&rules, &input);
        }
        if pairs.len() == 4096 {
            break;
        }
    }
    let mut hashes = 0u64;
    for i in 0..steps {
        let (state, input) = &pairs[i as usize % pairs.len()];
        let mut s = *black_box(state);
        black_box(s.step(&rules, input));
        hashes ^= black_box(&s).hash();
    }
    println!("{steps} steps of a 4-player match (checksum {hashes:016x})");
    Ok(())
}
