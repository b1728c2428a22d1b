//! The standings of a match: who went out when, in which place, and the result they add up
//! to. The server and the journal's replay both keep them with these functions, so their
//! standings agree by construction and can differ only if their states do.

use crate::proto::{MatchOver, Name, Standing, StateHash};
use crate::rules::PlayerId;
use crate::sim::{Event, MatchState, OutReason, StepEvents};

/// How one seat went out of a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placing {
    pub(crate) rank: u8,
    pub(crate) tick: u32,
    pub(crate) reason: OutReason,
    /// Lives left when it went out: 0, except for a forfeit, which keeps the lives it had.
    pub(crate) lives: u8,
}

/// Notes who went out during tick `tick` (`lives_before`: lives at its start); true if the
/// match ended.
pub(crate) fn note_placings(
    placings: &mut [Option<Placing>; 4],
    lives_before: [u8; 4],
    events: &StepEvents,
    tick: u32,
) -> bool {
    let mut over = false;
    for e in events.iter() {
        match e {
            Event::PlayerOut { player, rank, reason } => {
                placings[player.index()] = Some(Placing {
                    rank,
                    tick,
                    reason,
                    lives: if reason == OutReason::Forfeit {
                        lives_before[player.index()]
                    } else {
                        0
                    },
                });
            }
            Event::MatchOver { .. } => over = true,
            _ => {}
        }
    }
    over
}

/// The result of a match in `state`, for the seats given (in seat order).
pub(crate) fn result_of<'a>(
    state: &MatchState,
    placings: &[Option<Placing>; 4],
    seats: impl Iterator<Item = (PlayerId, &'a Name)>,
) -> MatchOver {
    let standings = seats
        .map(|(p, name)| {
            let o = placings[p.index()].as_ref();
            Standing {
                player: p,
                name: name.clone(),
                lives: o.map_or(state.lives[p.index()], |o| o.lives),
                rank: o.map_or(1, |o| o.rank),
                out_tick: o.map(|o| o.tick),
                reason: o.map(|o| o.reason),
            }
        })
        .collect();
    MatchOver {
        tick: state.tick,
        winner: state.winner(),
        standings,
        final_hash: StateHash(state.hash()),
    }
}
