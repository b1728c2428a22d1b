//! Runs `N` simulation steps (default 100 000) of a 4-player match in mid-rally, the same
//! workload as the criterion bench `step/4_players` in `domain/benches/domain.rs`, and the
//! state hash after each, so that callgrind can count the instructions of one step, a
//! number that does not move with the machine's load:
//!
//! ```text
//! cargo build --release -p pong-bench --bin step_cost
//! target/release/step_cost [N]    # N steps, default 100000
//! scripts/step-cost.sh            # valgrind --tool=callgrind + callgrind_annotate
//! ```
//!
//! Each iteration copies a recorded mid-rally state (ball in flight, from a match four
//! skilled bots play), steps it with the recorded input, and hashes the result.

#![allow(clippy::print_stdout)] // The summary on stdout is this tool's purpose.

// The criterion bench's own workload, so that both count the same steps.
#[path = "../../../../domain/benches/rally/mod.rs"]
mod rally;

use std::hint::black_box;

use anyhow::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "step_cost",
    about = "Runs N simulation steps of a 4-player match in mid-rally, and the state hash after \
             each, for callgrind to count the instructions of one step (see \
             scripts/step-cost.sh)",
    after_help = "Output: one line on stdout with the number of steps and a checksum of the \
                  hashes."
)]
struct Args {
    /// Simulation steps to run (each one also hashes the state).
    #[arg(value_name = "N", default_value_t = 100_000)]
    steps: u64,
}

fn main() -> Result<()> {
    let Args { steps } = Args::parse();
    let (rules, pairs) = rally::rally_steps(4)?;
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
