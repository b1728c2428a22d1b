//! Match configuration and the arena geometry and physics derived from it.
//!
//! Everything here is integer arithmetic in *units*: one pixel of the reference arena is
//! [`UNITS_PER_PX`] units, so sub-pixel motion is exact and the same on every machine. The
//! y axis grows downwards (screen convention); frontends flip it if their world is y-up.

use serde::{Deserialize, Serialize};

/// Sub-pixel resolution: units per pixel of the reference arena.
pub const UNITS_PER_PX: i32 = 16;
/// Fewest players a match can have.
pub const MIN_PLAYERS: u8 = 2;
/// Most players a match can have (one per side of the arena).
pub const MAX_PLAYERS: u8 = 4;
/// Most lives a player can start with.
pub const MAX_LIVES: u8 = 15;
/// Lives each player starts with unless configured otherwise.
pub const DEFAULT_LIVES: u8 = 5;
/// The simulation rate unless configured otherwise.
pub const DEFAULT_TICK_HZ: u16 = 60;
/// Lowest accepted simulation rate.
pub const MIN_TICK_HZ: u16 = 10;
/// Highest accepted simulation rate (fast rates make test matches short).
pub const MAX_TICK_HZ: u16 = 2000;

const fn px(p: i32) -> i32 {
    p * UNITS_PER_PX
}

/// A side of the arena. Player `n` always plays side `Side::ALL[n]`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// x = 0; the paddle moves along y.
    Left,
    /// x = width; the paddle moves along y.
    Right,
    /// y = 0; the paddle moves along x.
    Top,
    /// y = height; the paddle moves along x.
    Bottom,
}

impl Side {
    /// The sides in seat order: player 0 is left, 1 right, 2 top, 3 bottom.
    pub const ALL: [Side; 4] = [Side::Left, Side::Right, Side::Top, Side::Bottom];

    /// The player who plays this side.
    pub const fn player(self) -> PlayerId {
        PlayerId(self as u8)
    }

    /// True for the sides whose paddle moves along the y axis.
    pub const fn is_vertical(self) -> bool {
        matches!(self, Side::Left | Side::Right)
    }

    /// Lower-case name, for logs and UIs.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
            Side::Top => "top",
            Side::Bottom => "bottom",
        }
    }
}

/// A player's id within a match: its seat, 0 to 3. Seat `n` plays side [`Side::ALL`]`[n]`.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(transparent)]
pub struct PlayerId(u8);

/// A seat number decoded from a frame is checked to be a real seat.
impl<'de> Deserialize<'de> for PlayerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        PlayerId::new(n).ok_or_else(|| serde::de::Error::custom("seat out of range"))
    }
}

impl PlayerId {
    /// All four seats in order.
    pub const ALL: [PlayerId; 4] = [PlayerId(0), PlayerId(1), PlayerId(2), PlayerId(3)];

    /// The seat `n`, if `n` is a seat number (0 to 3).
    pub const fn new(n: u8) -> Option<Self> {
        if n < MAX_PLAYERS { Some(PlayerId(n)) } else { None }
    }

    /// The seat as an array index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The seat number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The side this player defends.
    pub const fn side(self) -> Side {
        Side::ALL[self.0 as usize % 4]
    }
}

impl std::fmt::Display for PlayerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P{}", self.0 + 1)
    }
}

/// Why a [`MatchConfig`] is not playable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Matches have 2, 3 or 4 players.
    #[error("a match has 2 to 4 players, not {0}")]
    Players(u8),
    /// Lives must be between 1 and [`MAX_LIVES`].
    #[error("lives must be 1 to {MAX_LIVES}, not {0}")]
    Lives(u8),
    /// The tick rate must be between [`MIN_TICK_HZ`] and [`MAX_TICK_HZ`].
    #[error("tick rate must be {MIN_TICK_HZ} to {MAX_TICK_HZ} Hz, not {0}")]
    TickHz(u16),
}

/// What a match is played with: agreed by every host (sent in `Welcome`).
///
/// The physics constants are not configurable; they follow from the player count
/// ([`Rules::new`]), so two hosts with the same `MatchConfig` simulate identically.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatchConfig {
    /// 2, 3 or 4.
    pub players: u8,
    /// Lives each player starts with. In a 2-player match this is "first to N points".
    pub lives: u8,
    /// Simulation ticks per second. Physics is defined per tick, so a faster rate plays a
    /// faster game (used by tests and bots to finish matches quickly).
    pub tick_hz: u16,
    /// Seeds the serve directions.
    pub seed: u64,
}

impl MatchConfig {
    /// A validated configuration.
    ///
    /// # Errors
    /// Returns a [`ConfigError`] naming the first field out of range.
    pub fn new(players: u8, lives: u8, tick_hz: u16, seed: u64) -> Result<Self, ConfigError> {
        let config = MatchConfig { players, lives, tick_hz, seed };
        config.validate()?;
        Ok(config)
    }

    /// Checks every field (for configurations that came from the network).
    ///
    /// # Errors
    /// Returns a [`ConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_PLAYERS..=MAX_PLAYERS).contains(&self.players) {
            return Err(ConfigError::Players(self.players));
        }
        if !(1..=MAX_LIVES).contains(&self.lives) {
            return Err(ConfigError::Lives(self.lives));
        }
        if !(MIN_TICK_HZ..=MAX_TICK_HZ).contains(&self.tick_hz) {
            return Err(ConfigError::TickHz(self.tick_hz));
        }
        Ok(())
    }

    /// The seats taken in a match of this size, in order.
    pub fn seats(&self) -> impl Iterator<Item = PlayerId> + use<> {
        PlayerId::ALL.into_iter().take(usize::from(self.players.min(MAX_PLAYERS)))
    }

    /// Microseconds from a tick to `ticks` ticks later, rounded up so that
    /// `micros_to_ticks(ticks_to_micros(n)) == n`; computed from the tick count each time,
    /// so deadlines never drift however long a match runs.
    pub fn ticks_to_micros(&self, ticks: u64) -> u64 {
        let hz = u128::from(self.tick_hz.max(1));
        u64::try_from((u128::from(ticks) * 1_000_000).div_ceil(hz)).unwrap_or(u64::MAX)
    }

    /// Whole ticks that fit in `micros` microseconds.
    pub fn micros_to_ticks(&self, micros: u64) -> u64 {
        u64::try_from(u128::from(micros) * u128::from(self.tick_hz) / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// An axis-aligned rectangle in units: `[x0, x1) × [y0, y1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x0: i32,
    /// Top edge.
    pub y0: i32,
    /// Right edge.
    pub x1: i32,
    /// Bottom edge.
    pub y1: i32,
}

impl Rect {
    /// The rectangle with top-left corner `(x, y)` and the given size.
    pub const fn at(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x0: x, y0: y, x1: x + w, y1: y + h }
    }

    /// True if the two rectangles share area (touching edges do not count).
    pub const fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// The geometry and physics of one match, derived from its [`MatchConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The configuration these rules were made from.
    pub config: MatchConfig,
    /// Arena width in units.
    pub width: i32,
    /// Arena height in units.
    pub height: i32,
    /// Side of the solid square blocks in each corner (3 and 4 players), 0 for 2 players.
    pub corner: i32,
    /// The ball is a square of this side.
    pub ball_size: i32,
    /// Paddle length along its side.
    pub paddle_length: i32,
    /// Paddle thickness.
    pub paddle_thickness: i32,
    /// Gap between the goal line and the back of the paddle.
    pub paddle_inset: i32,
    /// Paddle travel per tick.
    pub paddle_speed: i32,
    /// Ball speed (per tick) at a serve.
    pub ball_speed_start: i32,
    /// Ball speed gained with every paddle hit.
    pub ball_speed_step: i32,
    /// Ball speed never exceeds this.
    pub ball_speed_max: i32,
    /// Ticks the ball rests in the centre after a life is lost.
    pub serve_delay: u16,
    /// Ticks the ball rests before the first serve.
    pub first_serve_delay: u16,
}

/// Most paddle hits counted for speed (keeps the counter in a byte).
pub const MAX_RALLY_HITS: u8 = 200;

impl Rules {
    /// The rules for `config`. The arena is 800×600 px for two players (classic, left and
    /// right paddles, top and bottom walls) and 720×720 px with corner blocks for three and
    /// four players.
    pub fn new(config: MatchConfig) -> Rules {
        let two = config.players <= 2;
        Rules {
            config,
            width: if two { px(800) } else { px(720) },
            height: if two { px(600) } else { px(720) },
            corner: if two { 0 } else { px(56) },
            ball_size: px(12),
            paddle_length: px(96),
            paddle_thickness: px(12),
            paddle_inset: px(28),
            paddle_speed: px(7),
            ball_speed_start: px(6),
            ball_speed_step: px(1) / 2,
            ball_speed_max: px(15),
            serve_delay: 60,
            first_serve_delay: 30,
        }
    }

    /// Number of seats in the match.
    pub fn players(&self) -> u8 {
        self.config.players
    }

    /// Length of the side a paddle moves along.
    pub fn side_length(&self, side: Side) -> i32 {
        if side.is_vertical() { self.height } else { self.width }
    }

    /// The lowest and highest coordinate a paddle on `side` may take (its low edge).
    pub fn paddle_range(&self, side: Side) -> (i32, i32) {
        (self.corner, self.side_length(side) - self.corner - self.paddle_length)
    }

    /// The centred starting coordinate of a paddle on `side`.
    pub fn paddle_start(&self, side: Side) -> i32 {
        (self.side_length(side) - self.paddle_length) / 2
    }

    /// The rectangle a paddle on `side` occupies when its low edge is at `pos`.
    pub fn paddle_rect(&self, side: Side, pos: i32) -> Rect {
        let (len, th, inset) = (self.paddle_length, self.paddle_thickness, self.paddle_inset);
        match side {
            Side::Left => Rect::at(inset, pos, th, len),
            Side::Right => Rect::at(self.width - inset - th, pos, th, len),
            Side::Top => Rect::at(pos, inset, len, th),
            Side::Bottom => Rect::at(pos, self.height - inset - th, len, th),
        }
    }

    /// The solid corner blocks (none in a 2-player arena).
    pub fn corner_blocks(&self) -> impl Iterator<Item = Rect> + '_ {
        let (c, w, h) = (self.corner, self.width, self.height);
        let blocks = [
            Rect::at(0, 0, c, c),
            Rect::at(w - c, 0, c, c),
            Rect::at(0, h - c, c, c),
            Rect::at(w - c, h - c, c, c),
        ];
        blocks.into_iter().filter(move |_| c > 0)
    }

    /// The top-left corner of the ball when it rests in the centre.
    pub fn ball_centre(&self) -> (i32, i32) {
        ((self.width - self.ball_size) / 2, (self.height - self.ball_size) / 2)
    }

    /// Ball speed after `hits` paddle hits in the current rally.
    pub fn ball_speed(&self, hits: u8) -> i32 {
        (self.ball_speed_start + i32::from(hits) * self.ball_speed_step).min(self.ball_speed_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds_are_checked() {
        assert_eq!(MatchConfig::new(1, 3, 60, 0), Err(ConfigError::Players(1)));
        assert_eq!(MatchConfig::new(5, 3, 60, 0), Err(ConfigError::Players(5)));
        assert_eq!(MatchConfig::new(2, 0, 60, 0), Err(ConfigError::Lives(0)));
        assert_eq!(MatchConfig::new(2, 16, 60, 0), Err(ConfigError::Lives(16)));
        assert_eq!(MatchConfig::new(2, 3, 9, 0), Err(ConfigError::TickHz(9)));
        assert!(MatchConfig::new(4, 15, 2000, u64::MAX).is_ok());
    }

    #[test]
    fn tick_time_does_not_drift() {
        let c = MatchConfig::new(2, 3, 60, 0).unwrap();
        assert_eq!(c.ticks_to_micros(60), 1_000_000);
        assert_eq!(c.ticks_to_micros(60 * 3600), 3_600_000_000);
        assert_eq!(c.micros_to_ticks(1_000_000), 60);
        for n in 0..1000 {
            assert_eq!(c.micros_to_ticks(c.ticks_to_micros(n)), n);
        }
    }

    #[test]
    fn paddles_never_reach_corner_blocks() {
        for players in 2..=4 {
            let rules = Rules::new(MatchConfig::new(players, 3, 60, 0).unwrap());
            for side in Side::ALL {
                let (lo, hi) = rules.paddle_range(side);
                for pos in [lo, hi] {
                    let r = rules.paddle_rect(side, pos);
                    assert!(rules.corner_blocks().all(|b| !b.overlaps(&r)), "{side:?} {pos}");
                }
            }
        }
    }
}
