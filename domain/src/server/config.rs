//! How a server runs its matches: sizes, times and the limits it holds links to.

use crate::rules::{DEFAULT_LIVES, DEFAULT_TICK_HZ};

use super::SECOND;
use super::links::Rate;

/// How a server runs its matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Match size for a join that does not ask for one.
    pub default_players: u8,
    /// Lives each player starts with.
    pub lives: u8,
    /// Simulation rate of every match.
    pub tick_hz: u16,
    /// Time from the last Ready (or a return) to the first tick.
    pub countdown: u64,
    /// Silence after which a member is declared lost (µs).
    pub lost_timeout: u64,
    /// How long a lost member may take to come back before it is out (µs).
    pub grace: u64,
    /// How often the current lobby, countdown, pause or result is repeated to members (µs),
    /// so that a member that missed one catches up.
    pub repeat_every: u64,
    /// How long a finished match is kept to repeat its result (µs).
    pub linger: u64,
    /// How long a lobby may wait to fill and start (µs): past it, it closes and its members
    /// are told `Closed(LobbyExpired)`, so lobbies nobody plays in do not pile up.
    pub lobby_timeout: u64,
    /// Most matches hosted at once.
    pub max_matches: usize,
    /// Frames per second one link may send on average; 0 for the default (see
    /// [`ServerConfig::rate`]).
    pub rate_per_second: u32,
    /// Burst allowance of the rate limit; 0 for the default.
    pub rate_burst: u32,
    /// Malformed or forged frames after which a link is dropped.
    pub max_bad_frames: u32,
    /// Most links open at once from one IP address (see [`crate::route::Origin`]); a link
    /// beyond is refused with `TooManyLinks` and closed. A household or a campus behind one
    /// NAT address shares it.
    pub max_links_per_address: u32,
    /// Most matches one address may open per minute (a `Join` that creates a lobby or a
    /// room); beyond, such a `Join` is refused with `TooManyMatches` (joining an open lobby
    /// still works). Where the transport knows no address, the link is the address.
    pub matches_per_minute_per_address: u32,
    /// How long a link may hold no seat (µs): from when it opens, or its seat ends, until
    /// it is closed with `Closed(Idle)`, so idle links cannot take the connection slots.
    pub join_timeout: u64,
    /// Emit a [`super::ServerEvent`] for every tick (for an event store).
    pub record_ticks: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            default_players: 2,
            lives: DEFAULT_LIVES,
            tick_hz: DEFAULT_TICK_HZ,
            countdown: 3 * SECOND,
            lost_timeout: 1_500_000,
            grace: 30 * SECOND,
            repeat_every: SECOND,
            linger: 10 * SECOND,
            lobby_timeout: 600 * SECOND,
            max_matches: 10_000,
            rate_per_second: 0,
            rate_burst: 0,
            max_bad_frames: 16,
            max_links_per_address: 32,
            matches_per_minute_per_address: 30,
            join_timeout: 10 * SECOND,
            record_ticks: false,
        }
    }
}

impl ServerConfig {
    /// A link's rate limit, in frames. Where left at 0, what a well-behaved client can
    /// send: an input every tick, pings, and retries.
    pub(super) fn rate(&self) -> Rate {
        let hz = u64::from(self.tick_hz);
        let units =
            if self.rate_per_second == 0 { 2 * hz + 50 } else { self.rate_per_second.into() };
        let burst = if self.rate_burst == 0 { hz + 100 } else { self.rate_burst.into() };
        Rate { units, per: SECOND, burst }
    }
}
