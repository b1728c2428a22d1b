//! Who sits where: the names the lobby and the result gave, by seat. The server sends names
//! only in lobbies and results, so a frontend keeps them from there for the HUD, the pause
//! and the result.

use pong_domain::client::ClientEvent;
use pong_domain::proto::{Lobby, MatchOver};
use pong_domain::rules::{MAX_PLAYERS, PlayerId};

/// Who sits where, kept up to date from the core's events ([`Roster::update`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    /// Seats in the match (0 before the first lobby).
    pub seats: u8,
    /// The name on each seat, if known.
    pub names: [Option<String>; MAX_PLAYERS as usize],
    /// The last lobby seen.
    pub lobby: Option<Lobby>,
    /// The result, once the match is over.
    pub result: Option<MatchOver>,
}

impl Roster {
    /// The name on `player`'s seat, or its seat label ("P3").
    #[must_use]
    pub fn name(&self, player: PlayerId) -> String {
        self.names[player.index()].clone().unwrap_or_else(|| player.to_string())
    }

    /// Takes in what one event says of the seats.
    pub fn update(&mut self, event: &ClientEvent) {
        match event {
            ClientEvent::Welcomed { config, resumed: false, .. } => {
                *self = Roster { seats: config.players, ..Roster::default() };
            }
            ClientEvent::Welcomed { config, .. } => self.seats = config.players,
            ClientEvent::LobbyChanged(l) => {
                self.seats = l.seats;
                self.names = Default::default();
                for m in &l.members {
                    self.names[m.player.index()] = Some(m.name.as_str().to_owned());
                }
                self.lobby = Some(l.clone());
            }
            ClientEvent::MatchOver { result, .. } => {
                for s in &result.standings {
                    self.names[s.player.index()] = Some(s.name.as_str().to_owned());
                }
                self.result = Some(result.clone());
            }
            _ => {}
        }
    }
}
