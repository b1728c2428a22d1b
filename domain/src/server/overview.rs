//! What an operator sees of a server: how many matches are in each phase, and each match
//! with its members — for metrics, health and status pages. Read-only, and computed only
//! when asked for, so it costs the tick path nothing.

use crate::proto::MatchId;
use crate::rules::PlayerId;

use super::ServerCore;
use super::game::{Match, Phase};

/// Where a match stands, as operators name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchPhase {
    /// Waiting for its players to join and say ready.
    Lobby,
    /// Everyone is ready: counting down to the first tick, or back to play after a pause.
    Countdown,
    /// Ticking.
    Running,
    /// Waiting for a lost member (or one back, to say ready).
    Paused,
    /// Finished; kept a few seconds to repeat the result.
    Over,
}

impl MatchPhase {
    /// Every phase, in the order a match goes through them.
    pub const ALL: [MatchPhase; 5] = [
        MatchPhase::Lobby,
        MatchPhase::Countdown,
        MatchPhase::Running,
        MatchPhase::Paused,
        MatchPhase::Over,
    ];

    /// The lower-case name (`lobby`, `countdown`, `running`, `paused`, `over`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MatchPhase::Lobby => "lobby",
            MatchPhase::Countdown => "countdown",
            MatchPhase::Running => "running",
            MatchPhase::Paused => "paused",
            MatchPhase::Over => "over",
        }
    }

    fn of(phase: &Phase) -> MatchPhase {
        match phase {
            Phase::Lobby => MatchPhase::Lobby,
            Phase::Starting { .. } => MatchPhase::Countdown,
            Phase::Running { .. } => MatchPhase::Running,
            Phase::Paused => MatchPhase::Paused,
            Phase::Over { .. } => MatchPhase::Over,
        }
    }
}

impl std::fmt::Display for MatchPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Matches hosted, by phase (indexed like [`MatchPhase::ALL`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseCounts(pub [usize; 5]);

impl PhaseCounts {
    /// Matches in `phase`.
    #[must_use]
    pub fn of(&self, phase: MatchPhase) -> usize {
        self.0[phase as usize]
    }

    /// Matches in play: counting down, running or paused (a drain waits for these).
    #[must_use]
    pub fn in_play(&self) -> usize {
        self.of(MatchPhase::Countdown) + self.of(MatchPhase::Running) + self.of(MatchPhase::Paused)
    }

    /// Every phase with its count.
    pub fn iter(&self) -> impl Iterator<Item = (MatchPhase, usize)> + '_ {
        MatchPhase::ALL.into_iter().zip(self.0)
    }
}

/// One hosted match, as listed on a status page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchOverview {
    /// The match.
    pub id: MatchId,
    /// Its room, if named.
    pub room: Option<String>,
    /// Where it stands.
    pub phase: MatchPhase,
    /// Players it is for (2 to 4).
    pub size: u8,
    /// The last tick simulated.
    pub tick: u32,
    /// Its members, by seat.
    pub members: Vec<MemberOverview>,
}

/// One seated member of a match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberOverview {
    /// The seat.
    pub player: PlayerId,
    /// The name chosen.
    pub name: String,
    /// Lives left.
    pub lives: u8,
    /// Said ready (in a lobby or a pause).
    pub ready: bool,
    /// Heard from lately (false while lost).
    pub connected: bool,
    /// Out for good: left, or lost past the grace period.
    pub gone: bool,
}

impl ServerCore {
    /// How many matches are in each phase. Walks the matches without allocating.
    #[must_use]
    pub fn phase_counts(&self) -> PhaseCounts {
        let mut counts = PhaseCounts::default();
        for m in self.matches.values() {
            counts.0[MatchPhase::of(&m.phase) as usize] += 1;
        }
        counts
    }

    /// Every hosted match with its members, in id order.
    #[must_use]
    pub fn overview(&self) -> Vec<MatchOverview> {
        self.matches.values().map(overview_of).collect()
    }

    /// Links the server has heard a frame from and not yet seen go.
    #[must_use]
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }
}

fn overview_of(m: &Match) -> MatchOverview {
    MatchOverview {
        id: m.id,
        room: m.room.as_ref().map(|r| r.as_str().to_owned()),
        phase: MatchPhase::of(&m.phase),
        size: m.rules.players(),
        tick: m.state.tick,
        members: m
            .seated()
            .map(|(player, seat)| MemberOverview {
                player,
                name: seat.name.as_str().to_owned(),
                lives: m.state.lives[player.index()],
                ready: seat.ready,
                connected: seat.connected,
                gone: seat.gone,
            })
            .collect(),
    }
}
