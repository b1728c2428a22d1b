//! What a player reports when its match ends: `pong bot --json` prints one of these per bot,
//! as one JSON line, and the browser page puts the same object on `window.pongResult`, so
//! scripts and tests can compare what every host saw, whichever frontend it ran.

use crate::client::ClientPhase;
use crate::sim::OutReason;
use serde::Serialize;

/// One player's result as a bot saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StandingReport {
    /// The seat.
    pub player_id: u8,
    /// The name.
    pub name: String,
    /// Lives left.
    pub lives: u8,
    /// Final rank (1 = winner).
    pub rank: u8,
    /// Tick the player went out, if it did.
    pub out_tick: Option<u32>,
    /// `"no_lives"`, `"forfeit"`, or `null` for the winner.
    pub reason: Option<&'static str>,
}

/// A bot's account of its match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BotReport {
    /// The match.
    pub match_id: u32,
    /// The bot's seat.
    pub player_id: u8,
    /// The bot's name.
    pub name: String,
    /// Every player's result, in seat order.
    pub standings: Vec<StandingReport>,
    /// The winner's seat, or `null` for a draw.
    pub winner: Option<u8>,
    /// The bot's own hash of the final state, hex.
    pub final_hash: String,
    /// The hash the server announced, hex.
    pub server_hash: String,
    /// The last tick.
    pub ticks: u32,
    /// Pauses the bot saw.
    pub pauses: u32,
    /// Hash mismatches the bot saw.
    pub desyncs: u32,
    /// Times the server gave the bot its seat back: after each reconnect, and at the start
    /// of a bot resuming a session from a file (`--session-file`). 0 in an undisturbed match.
    pub resumes: u32,
}

impl BotReport {
    /// The report of a finished client, or `None` if its match did not end. `resumes` is 0;
    /// the caller sets it if it counted them.
    pub fn from_phase(
        phase: &ClientPhase,
        match_id: u32,
        player_id: u8,
        name: &str,
        pauses: u32,
        desyncs: u32,
    ) -> Option<Self> {
        let ClientPhase::Over { result, final_hash } = phase else { return None };
        Some(BotReport {
            match_id,
            player_id,
            name: name.to_owned(),
            standings: result
                .standings
                .iter()
                .map(|s| StandingReport {
                    player_id: s.player.get(),
                    name: s.name.to_string(),
                    lives: s.lives,
                    rank: s.rank,
                    out_tick: s.out_tick,
                    reason: s.reason.map(|r| match r {
                        OutReason::NoLives => "no_lives",
                        OutReason::Forfeit => "forfeit",
                    }),
                })
                .collect(),
            winner: result.winner.map(|w| w.get()),
            final_hash: format!("{final_hash:016x}"),
            server_hash: format!("{:016x}", result.final_hash.0),
            ticks: result.tick,
            pauses,
            desyncs,
            resumes: 0,
        })
    }
}
