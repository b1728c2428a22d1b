//! The deterministic fixed-step simulation: [`MatchState::step`] takes a state and one tick's
//! inputs and returns the next state and what happened.
//!
//! Only integers are used. The ball is an axis-aligned square and every obstacle (paddle,
//! corner block, wall, goal line) is axis-aligned, so collisions are found with an exact swept
//! test over rational times: whatever the speed, the ball cannot pass through anything.
//! Ties are settled by fixed orders, never by floating-point accident, so the same inputs give
//! bit-identical states on every machine ([`MatchState::hash`] checks that).

use serde::{Deserialize, Serialize};

use crate::hash::Fnv64;
use crate::rules::{MAX_RALLY_HITS, PlayerId, Rect, Rules, Side};

/// What a player wants its paddle to do during one tick.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Intent {
    /// Hold still.
    #[default]
    Stop,
    /// Move toward lower coordinates: up for a left or right paddle, left for a top or bottom one.
    Minus,
    /// Move toward higher coordinates: down for a left or right paddle, right for a top or bottom one.
    Plus,
}

impl Intent {
    /// The two-bit wire form.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// Reads the two-bit wire form; 3 is not an intent.
    pub const fn from_bits(bits: u8) -> Option<Intent> {
        match bits {
            0 => Some(Intent::Stop),
            1 => Some(Intent::Minus),
            2 => Some(Intent::Plus),
            _ => None,
        }
    }

    const fn dir(self) -> i32 {
        match self {
            Intent::Stop => 0,
            Intent::Minus => -1,
            Intent::Plus => 1,
        }
    }
}

/// Everything that drives one tick: each seat's intent and who forfeits at this tick.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TickInput {
    /// Intent per seat (ignored for seats that are out or empty).
    pub intents: [Intent; 4],
    /// Bit `n` set: player `n` forfeits (left, or did not come back in time) at this tick.
    pub forfeit: u8,
}

impl TickInput {
    /// All paddles still, nobody forfeits.
    pub const IDLE: TickInput = TickInput { intents: [Intent::Stop; 4], forfeit: 0 };

    /// The intents packed two bits a seat (seat 0 in the low bits).
    pub fn packed_intents(&self) -> u8 {
        self.intents.iter().enumerate().fold(0, |acc, (i, it)| acc | (it.bits() << (2 * i)))
    }

    /// Unpacks [`packed_intents`](Self::packed_intents); `None` if a field holds the unused value 3.
    pub fn unpack_intents(packed: u8) -> Option<[Intent; 4]> {
        let mut out = [Intent::Stop; 4];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = Intent::from_bits((packed >> (2 * i)) & 0b11)?;
        }
        Some(out)
    }
}

/// The ball: resting in the centre before a serve, or in flight.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ball {
    /// Resting in the centre; served toward `toward` when `timer` reaches zero.
    Resting {
        /// Ticks left before the serve.
        timer: u16,
        /// Who receives the serve (the next player still in if this one is out by then).
        toward: PlayerId,
    },
    /// In flight. `(x, y)` is the top-left corner; `(vx, vy)` the motion per tick.
    Moving {
        /// Left edge.
        x: i32,
        /// Top edge.
        y: i32,
        /// Horizontal motion per tick.
        vx: i32,
        /// Vertical motion per tick.
        vy: i32,
        /// Paddle hits in this rally (sets the speed).
        hits: u8,
    },
}

/// Why a player left the match.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutReason {
    /// Lost the last life.
    NoLives,
    /// Left, or did not come back within the grace period.
    Forfeit,
}

/// Something that happened during a tick.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The ball left the centre toward `toward`.
    Served {
        /// The receiving player.
        toward: PlayerId,
    },
    /// The ball bounced off `player`'s paddle.
    PaddleHit {
        /// Whose paddle.
        player: PlayerId,
    },
    /// The ball bounced off a wall (`side`), or off a corner block (`None`).
    WallHit {
        /// Which wall, or `None` for a corner block.
        side: Option<Side>,
    },
    /// The ball crossed `player`'s goal line.
    LifeLost {
        /// Who lost the life.
        player: PlayerId,
        /// Lives left after this one.
        lives_left: u8,
    },
    /// `player` is out; its side is a wall from now on.
    PlayerOut {
        /// Who is out.
        player: PlayerId,
        /// Final place: 1 + the number of players still in. Players out in the same tick share it.
        rank: u8,
        /// Why.
        reason: OutReason,
    },
    /// The match is over: `winner` is the last one standing, or `None` if the last players
    /// went out together (a draw between them).
    MatchOver {
        /// The winner, if there is one.
        winner: Option<PlayerId>,
    },
}

/// Why a [`MatchState`] from outside was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// A player has more lives than the match started with, or an empty seat has lives.
    #[error("lives of {0} are out of range")]
    Lives(PlayerId),
    /// A paddle is outside its lane.
    #[error("paddle of {0} is outside its lane")]
    Paddle(PlayerId),
    /// The ball is outside the arena, inside something, or too fast.
    #[error("the ball is outside the arena, inside an obstacle or too fast")]
    Ball,
}

/// Most events one tick can produce: bounces, a serve, a life, four outs and the end.
pub const MAX_EVENTS_PER_TICK: usize = 12;

/// The events of one tick, held inline so that stepping never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepEvents {
    items: [Option<Event>; MAX_EVENTS_PER_TICK],
    len: usize,
}

impl Default for StepEvents {
    fn default() -> Self {
        StepEvents { items: [None; MAX_EVENTS_PER_TICK], len: 0 }
    }
}

impl StepEvents {
    fn push(&mut self, e: Event) {
        // The bound is MAX_CONTACTS + 8 by construction; a full list keeps the earliest events.
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(e);
            self.len += 1;
        }
    }

    /// The events in the order they happened.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.items[..self.len].iter().flatten().copied()
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing happened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Most contacts resolved in one tick; any motion left after that is dropped (the ball stays
/// put, touching), which only a ball wedged in a corner ever needs.
const MAX_CONTACTS: usize = 4;

/// The complete state of a match: with the [`Rules`] it is everything the next tick needs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchState {
    /// Ticks simulated so far (0 before the first).
    pub tick: u32,
    /// The ball.
    pub ball: Ball,
    /// Low-edge coordinate of each seat's paddle along its side.
    pub paddles: [i32; 4],
    /// Lives per seat; 0 for a player who is out or a seat nobody plays.
    pub lives: [u8; 4],
}

impl MatchState {
    /// The state before the first tick: paddles centred, full lives, the ball resting.
    pub fn new(rules: &Rules) -> MatchState {
        let mut lives = [0; 4];
        let mut paddles = [0; 4];
        for p in rules.config.seats() {
            lives[p.index()] = rules.config.lives;
        }
        for side in Side::ALL {
            paddles[side.player().index()] = rules.paddle_start(side);
        }
        let seats = u64::from(rules.players().max(1));
        let first = (mix(rules.config.seed, 0) % seats) as u8;
        let toward = PlayerId::new(first).unwrap_or(PlayerId::ALL[0]);
        MatchState {
            tick: 0,
            ball: Ball::Resting { timer: rules.first_serve_delay, toward },
            paddles,
            lives,
        }
    }

    /// True while `player` is in the match.
    pub fn is_alive(&self, player: PlayerId) -> bool {
        self.lives[player.index()] > 0
    }

    /// Bit `n` set for each player still in.
    pub fn alive_mask(&self) -> u8 {
        self.lives.iter().enumerate().fold(0, |m, (i, &l)| if l > 0 { m | 1 << i } else { m })
    }

    /// Number of players still in.
    pub fn alive_count(&self) -> u32 {
        self.alive_mask().count_ones()
    }

    /// The match is over once at most one player is left.
    pub fn is_over(&self) -> bool {
        self.alive_count() <= 1
    }

    /// The last player standing, once the match is over with a winner.
    pub fn winner(&self) -> Option<PlayerId> {
        let mask = self.alive_mask();
        if mask.count_ones() == 1 { PlayerId::new(mask.trailing_zeros() as u8) } else { None }
    }

    /// Checks a state that came from outside (a keyframe, a stored match) against `rules`,
    /// so that stepping it can never overflow or leave the arena.
    ///
    /// # Errors
    /// [`StateError`] naming the first field out of range.
    pub fn validate(&self, rules: &Rules) -> Result<(), StateError> {
        for p in PlayerId::ALL {
            let lives = self.lives[p.index()];
            if lives > rules.config.lives || (p.get() >= rules.players() && lives > 0) {
                return Err(StateError::Lives(p));
            }
            let (lo, hi) = rules.paddle_range(p.side());
            if !(lo..=hi).contains(&self.paddles[p.index()]) {
                return Err(StateError::Paddle(p));
            }
        }
        match self.ball {
            Ball::Resting { timer, .. } => {
                if timer > rules.serve_delay.max(rules.first_serve_delay) {
                    return Err(StateError::Ball);
                }
            }
            Ball::Moving { x, y, vx, vy, hits } => {
                let b = rules.ball_size;
                let max = rules.ball_speed_max;
                let inside =
                    (0..=rules.width - b).contains(&x) && (0..=rules.height - b).contains(&y);
                if !inside || vx.abs() > max || vy.abs() > max || hits > MAX_RALLY_HITS {
                    return Err(StateError::Ball);
                }
                let ball = Rect::at(x, y, b, b);
                let solid = rules.corner_blocks().chain(
                    PlayerId::ALL
                        .into_iter()
                        .filter(|&p| self.is_alive(p))
                        .map(|p| self.paddle_rect(rules, p)),
                );
                if solid.into_iter().any(|r| r.overlaps(&ball)) {
                    return Err(StateError::Ball);
                }
            }
        }
        Ok(())
    }

    /// Top-left corner of the ball.
    pub fn ball_pos(&self, rules: &Rules) -> (i32, i32) {
        match self.ball {
            Ball::Resting { .. } => rules.ball_centre(),
            Ball::Moving { x, y, .. } => (x, y),
        }
    }

    /// The rectangle of `player`'s paddle.
    pub fn paddle_rect(&self, rules: &Rules, player: PlayerId) -> Rect {
        rules.paddle_rect(player.side(), self.paddles[player.index()])
    }

    /// A 64-bit digest of the whole state, the same on every machine and every run
    /// (FNV-1a over a fixed little-endian layout).
    pub fn hash(&self) -> u64 {
        let mut h = Fnv64::new();
        h.u32(self.tick);
        match self.ball {
            Ball::Resting { timer, toward } => {
                h.u8(0);
                h.u16(timer);
                h.u8(toward.get());
            }
            Ball::Moving { x, y, vx, vy, hits } => {
                h.u8(1);
                for v in [x, y, vx, vy] {
                    h.i32(v);
                }
                h.u8(hits);
            }
        }
        for p in self.paddles {
            h.i32(p);
        }
        for l in self.lives {
            h.u8(l);
        }
        h.finish()
    }

    /// Advances one tick. Nothing happens once the match is over.
    pub fn step(&mut self, rules: &Rules, input: &TickInput) -> StepEvents {
        let mut events = StepEvents::default();
        if self.is_over() {
            return events;
        }
        self.tick = self.tick.wrapping_add(1);

        let forfeits = input.forfeit & self.alive_mask();
        if forfeits != 0 {
            self.eliminate(forfeits, OutReason::Forfeit, &mut events);
            if self.is_over() {
                return events;
            }
        }

        self.move_paddles(rules, &input.intents);

        match self.ball {
            Ball::Resting { timer, toward } if timer > 0 => {
                self.ball = Ball::Resting { timer: timer - 1, toward };
            }
            Ball::Resting { toward, .. } => self.serve(rules, toward, &mut events),
            Ball::Moving { .. } => self.move_ball(rules, &mut events),
        }
        events
    }

    /// Takes every player in `mask` out at once; they share the rank.
    fn eliminate(&mut self, mask: u8, reason: OutReason, events: &mut StepEvents) {
        let rank = (self.alive_mask() & !mask).count_ones() as u8 + 1;
        for p in PlayerId::ALL {
            if mask & (1 << p.index()) != 0 && self.is_alive(p) {
                self.lives[p.index()] = 0;
                events.push(Event::PlayerOut { player: p, rank, reason });
            }
        }
        if self.is_over() {
            events.push(Event::MatchOver { winner: self.winner() });
        }
    }

    fn move_paddles(&mut self, rules: &Rules, intents: &[Intent; 4]) {
        let ball = match self.ball {
            Ball::Moving { x, y, .. } => Some(Rect::at(x, y, rules.ball_size, rules.ball_size)),
            Ball::Resting { .. } => None,
        };
        for p in PlayerId::ALL {
            if !self.is_alive(p) {
                continue;
            }
            let side = p.side();
            let (lo, hi) = rules.paddle_range(side);
            let old = self.paddles[p.index()];
            let mut new = (old + intents[p.index()].dir() * rules.paddle_speed).clamp(lo, hi);
            // A paddle stops against the ball rather than swallowing it, so the ball never
            // starts a tick inside anything.
            if let Some(b) = ball
                && rules.paddle_rect(side, new).overlaps(&b)
            {
                let (b_lo, b_hi) = if side.is_vertical() { (b.y0, b.y1) } else { (b.x0, b.x1) };
                new = if new > old { (b_lo - rules.paddle_length).max(old) } else { b_hi.min(old) };
            }
            self.paddles[p.index()] = new;
        }
    }

    fn serve(&mut self, rules: &Rules, toward: PlayerId, events: &mut StepEvents) {
        let Some(toward) = self.next_alive_from(toward) else { return };
        let s = rules.ball_speed(0);
        let r = mix(rules.config.seed, u64::from(self.tick));
        // The along component is a quarter to a half of the speed, either sign: never a
        // straight shot, never so steep that the receiver cannot reach it.
        let quarter = s / 4;
        let mut along = quarter + (r % (quarter as u64 + 1)) as i32;
        if r & (1 << 40) != 0 {
            along = -along;
        }
        let normal = isqrt(s * s - along * along);
        let (vx, vy) = match toward.side() {
            Side::Left => (-normal, along),
            Side::Right => (normal, along),
            Side::Top => (along, -normal),
            Side::Bottom => (along, normal),
        };
        let (x, y) = rules.ball_centre();
        self.ball = Ball::Moving { x, y, vx, vy, hits: 0 };
        events.push(Event::Served { toward });
    }

    /// `from` if still in, else the next player in seat order who is.
    fn next_alive_from(&self, from: PlayerId) -> Option<PlayerId> {
        (0..4).map(|k| PlayerId::ALL[(from.index() + k) % 4]).find(|&p| self.is_alive(p))
    }

    fn move_ball(&mut self, rules: &Rules, events: &mut StepEvents) {
        let Ball::Moving { mut x, mut y, mut vx, mut vy, mut hits } = self.ball else { return };
        let (mut dx, mut dy) = (vx, vy);
        // Reflections per axis this tick. A second one on the same axis means the ball is
        // squeezed into a gap narrower than its speed (say between a paddle's end and a
        // corner block): it then stops moving on that axis for the rest of the tick but still
        // moves on the other, so it can never be wedged in place.
        let (mut flips_x, mut flips_y) = (0u8, 0u8);
        for _ in 0..MAX_CONTACTS {
            if flips_x > 1 {
                dx = 0;
            }
            if flips_y > 1 {
                dy = 0;
            }
            if dx == 0 && dy == 0 {
                break;
            }
            let Some(c) = self.earliest_contact(rules, x, y, dx, dy) else {
                x += dx;
                y += dy;
                dx = 0;
                dy = 0;
                break;
            };
            // Move to the contact point. On the contact axis the product divides exactly, so
            // the ball lands precisely on the surface; on the other axis it is truncated toward
            // zero, which keeps it on the near side of the exact path.
            let (mx, my) = (c.t.scale(dx), c.t.scale(dy));
            x += mx;
            y += my;
            dx -= mx;
            dy -= my;
            match c.what {
                Obstacle::Goal(side) => {
                    self.lose_life(rules, side.player(), events);
                    return;
                }
                Obstacle::Paddle(player) if c.is_front_of(player.side(), vx, vy) => {
                    let pos = self.paddles[player.index()];
                    let along = if player.side().is_vertical() { y } else { x };
                    let prev_along = if player.side().is_vertical() { vy } else { vx };
                    hits = hits.saturating_add(1).min(MAX_RALLY_HITS);
                    (vx, vy) = paddle_bounce(rules, player.side(), pos, along, prev_along, hits);
                    let rest = Frac { num: c.t.den - c.t.num, den: c.t.den };
                    (dx, dy) = (rest.scale(vx), rest.scale(vy));
                    if player.side().is_vertical() {
                        flips_x += 1;
                    } else {
                        flips_y += 1;
                    }
                    events.push(Event::PaddleHit { player });
                }
                what => {
                    if c.normal_x {
                        vx = -vx;
                        dx = -dx;
                        flips_x += 1;
                    }
                    if c.normal_y {
                        vy = -vy;
                        dy = -dy;
                        flips_y += 1;
                    }
                    events.push(match what {
                        Obstacle::Paddle(player) => Event::PaddleHit { player },
                        Obstacle::Wall(side) => Event::WallHit { side: Some(side) },
                        _ => Event::WallHit { side: None },
                    });
                }
            }
        }
        let _ = (dx, dy); // motion left after MAX_CONTACTS is dropped on purpose
        self.ball = Ball::Moving { x, y, vx, vy, hits };
    }

    fn lose_life(&mut self, rules: &Rules, player: PlayerId, events: &mut StepEvents) {
        let left = self.lives[player.index()].saturating_sub(1);
        events.push(Event::LifeLost { player, lives_left: left });
        if left == 0 {
            self.eliminate(1 << player.index(), OutReason::NoLives, events);
        } else {
            self.lives[player.index()] = left;
        }
        // The serve goes to whoever just lost the point, or to the next player still in.
        self.ball = Ball::Resting { timer: rules.serve_delay, toward: player };
    }

    /// The first thing the ball touches while moving by `(dx, dy)` from `(x, y)`.
    fn earliest_contact(&self, rules: &Rules, x: i32, y: i32, dx: i32, dy: i32) -> Option<Contact> {
        let b = rules.ball_size;
        let mut best: Option<Contact> = None;
        let mut consider = |c: Option<Contact>| {
            if let Some(c) = c
                && best.as_ref().is_none_or(|b| c.t.lt(&b.t))
            {
                best = Some(c);
            }
        };
        for p in PlayerId::ALL {
            if self.is_alive(p) {
                let r = self.paddle_rect(rules, p);
                consider(sweep_rect(x, y, dx, dy, b, &r, Obstacle::Paddle(p)));
            }
        }
        for r in rules.corner_blocks() {
            consider(sweep_rect(x, y, dx, dy, b, &r, Obstacle::Block));
        }
        // Boundaries last: at equal times a paddle or block wins, and of two boundaries at
        // the same time (an exact corner of a 2-player arena) the goal counts.
        let boundary = |side: Side| {
            if self.is_alive(side.player()) { Obstacle::Goal(side) } else { Obstacle::Wall(side) }
        };
        let planes = [
            (dx < 0, x, -dx, Side::Left),
            (dx > 0, rules.width - b - x, dx, Side::Right),
            (dy < 0, y, -dy, Side::Top),
            (dy > 0, rules.height - b - y, dy, Side::Bottom),
        ];
        let mut plane_best: Option<Contact> = None;
        for (moving_toward, num, den, side) in planes {
            let num = i64::from(num);
            let den = i64::from(den);
            if !moving_toward || num > den {
                continue;
            }
            let c = Contact {
                t: Frac { num, den },
                what: boundary(side),
                normal_x: side.is_vertical(),
                normal_y: !side.is_vertical(),
            };
            plane_best = match plane_best {
                None => Some(c),
                Some(p) if c.t.lt(&p.t) => Some(c),
                Some(p) if p.t.lt(&c.t) => Some(p),
                // Two boundaries at once: an exact corner. Both axes reflect; a goal counts.
                Some(p) => {
                    let what = if matches!(c.what, Obstacle::Goal(_)) { c.what } else { p.what };
                    Some(Contact { t: p.t, what, normal_x: true, normal_y: true })
                }
            };
        }
        consider(plane_best);
        best
    }
}

/// Velocity after the ball meets the front of a paddle: the further from the paddle's centre,
/// the steeper the return (up to about 49°), never flatter than 1/8 of the speed along the
/// side so that the ball keeps visiting every side.
fn paddle_bounce(
    rules: &Rules,
    side: Side,
    paddle_pos: i32,
    ball_along: i32,
    prev_along: i32,
    hits: u8,
) -> (i32, i32) {
    let b = rules.ball_size;
    let half = (rules.paddle_length + b) / 2;
    let offset = ((ball_along + b / 2) - (paddle_pos + rules.paddle_length / 2)).clamp(-half, half);
    let s = rules.ball_speed(hits);
    let mut along = s * offset * 3 / (4 * half);
    let min = s / 8;
    if along.abs() < min {
        let up = offset < 0 || (offset == 0 && prev_along < 0);
        along = if up { -min } else { min };
    }
    let normal = isqrt(s * s - along * along);
    match side {
        Side::Left => (normal, along),
        Side::Right => (-normal, along),
        Side::Top => (along, normal),
        Side::Bottom => (along, -normal),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obstacle {
    Paddle(PlayerId),
    Block,
    Wall(Side),
    Goal(Side),
}

/// A time of contact as a fraction of the motion being tested; `den == 0` stands for ±∞ by
/// the sign of `num`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frac {
    num: i64,
    den: i64,
}

impl Frac {
    const NEG_INF: Frac = Frac { num: -1, den: 0 };
    const INF: Frac = Frac { num: 1, den: 0 };

    /// Exact comparison by cross-multiplication (denominators are never negative).
    fn lt(&self, o: &Frac) -> bool {
        self.num * o.den < o.num * self.den
    }

    /// `v × self`, truncated toward zero; only used with `0 ≤ self ≤ 1`, so it fits.
    fn scale(&self, v: i32) -> i32 {
        if self.den == 0 {
            return v;
        }
        i32::try_from(i64::from(v) * self.num / self.den).unwrap_or(v)
    }

    fn max(self, o: Frac) -> Frac {
        if self.lt(&o) { o } else { self }
    }

    fn min(self, o: Frac) -> Frac {
        if o.lt(&self) { o } else { self }
    }
}

#[derive(Clone, Copy, Debug)]
struct Contact {
    t: Frac,
    what: Obstacle,
    normal_x: bool,
    normal_y: bool,
}

impl Contact {
    /// True if the contact is on the paddle's playing face, the ball (moving by `(vx, vy)`)
    /// arriving from the field.
    fn is_front_of(&self, side: Side, vx: i32, vy: i32) -> bool {
        match side {
            Side::Left => self.normal_x && vx < 0,
            Side::Right => self.normal_x && vx > 0,
            Side::Top => self.normal_y && vy < 0,
            Side::Bottom => self.normal_y && vy > 0,
        }
    }
}

/// Entry and exit times of the ball's top-left corner along one axis into the slab
/// `(lo, hi)` (open), moving by `d` from `p`.
fn slab(p: i32, d: i32, lo: i32, hi: i32) -> Option<(Frac, Frac)> {
    let (p, d, lo, hi) = (i64::from(p), i64::from(d), i64::from(lo), i64::from(hi));
    if d > 0 {
        Some((Frac { num: lo - p, den: d }, Frac { num: hi - p, den: d }))
    } else if d < 0 {
        Some((Frac { num: p - hi, den: -d }, Frac { num: p - lo, den: -d }))
    } else if lo < p && p < hi {
        Some((Frac::NEG_INF, Frac::INF))
    } else {
        None
    }
}

/// Swept test of a `b`×`b` ball at `(x, y)` moving `(dx, dy)` against rectangle `r`.
fn sweep_rect(
    x: i32,
    y: i32,
    dx: i32,
    dy: i32,
    b: i32,
    r: &Rect,
    what: Obstacle,
) -> Option<Contact> {
    let (ex0, ex1) = slab(x, dx, r.x0 - b, r.x1)?;
    let (ey0, ey1) = slab(y, dy, r.y0 - b, r.y1)?;
    let entry = ex0.max(ey0);
    let exit = ex1.min(ey1);
    let zero = Frac { num: 0, den: 1 };
    let one = Frac { num: 1, den: 1 };
    // Hit when the entry is within this motion and the slabs overlap for a positive time
    // (grazing an edge or a corner point is not a hit).
    if !entry.lt(&exit) || entry.lt(&zero) || one.lt(&entry) || entry.den == 0 {
        return None;
    }
    let normal_x = !ex0.lt(&ey0); // x entered last (or together)
    let normal_y = !ey0.lt(&ex0);
    Some(Contact { t: entry, what, normal_x, normal_y })
}

fn isqrt(v: i32) -> i32 {
    // v is at most ball_speed_max², far inside i32.
    i32::try_from(i64::from(v.max(0)).isqrt()).unwrap_or(i32::MAX)
}

/// SplitMix64 of `seed` and `n`: the serve directions' only source of variety.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::MatchConfig;

    fn rules(players: u8) -> Rules {
        Rules::new(MatchConfig::new(players, 3, 60, 7).unwrap())
    }

    fn moving(state: &mut MatchState, x: i32, y: i32, vx: i32, vy: i32) {
        state.ball = Ball::Moving { x, y, vx, vy, hits: 0 };
    }

    #[test]
    fn intents_pack_and_unpack() {
        let input = TickInput {
            intents: [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Plus],
            forfeit: 0,
        };
        assert_eq!(TickInput::unpack_intents(input.packed_intents()), Some(input.intents));
        assert_eq!(TickInput::unpack_intents(0b11), None);
    }

    #[test]
    fn a_very_fast_ball_cannot_tunnel_through_a_paddle() {
        let r = rules(2);
        let mut s = MatchState::new(&r);
        let py = s.paddles[0];
        // Aim straight at the left paddle's face from far away at an absurd speed.
        moving(&mut s, r.width / 2, py + 10, -r.width, 0);
        let events = s.step(&r, &TickInput::IDLE);
        assert!(events.iter().any(|e| e == Event::PaddleHit { player: PlayerId::ALL[0] }));
        let Ball::Moving { x, vx, .. } = s.ball else { panic!("ball should be moving") };
        assert!(vx > 0, "bounced back");
        assert!(x >= r.paddle_inset + r.paddle_thickness, "ball in front of the paddle");
    }

    #[test]
    fn missing_the_paddle_costs_a_life_and_rests_the_ball() {
        let r = rules(2);
        let mut s = MatchState::new(&r);
        moving(&mut s, 10 * 16, 16, -200, 0);
        let events: Vec<_> = s.step(&r, &TickInput::IDLE).iter().collect();
        assert_eq!(events, vec![Event::LifeLost { player: PlayerId::ALL[0], lives_left: 2 }]);
        assert!(matches!(s.ball, Ball::Resting { toward, .. } if toward == PlayerId::ALL[0]));
    }

    #[test]
    fn corner_blocks_reflect_the_ball() {
        let r = rules(4);
        let mut s = MatchState::new(&r);
        // Heading diagonally into the top-left block from inside the arena.
        let start = r.corner + 200;
        moving(&mut s, start, start, -150, -150);
        let mut saw_block = false;
        for _ in 0..4 {
            saw_block |=
                s.step(&r, &TickInput::IDLE).iter().any(|e| e == Event::WallHit { side: None });
        }
        assert!(saw_block);
        let Ball::Moving { vx, vy, .. } = s.ball else { panic!() };
        assert!(vx > 0 && vy > 0, "came back out of the corner: {vx} {vy}");
    }

    #[test]
    fn last_life_ends_a_two_player_match() {
        let r = rules(2);
        let mut s = MatchState::new(&r);
        s.lives = [1, 3, 0, 0];
        moving(&mut s, 16, 16, -100, 0);
        let events: Vec<_> = s.step(&r, &TickInput::IDLE).iter().collect();
        assert!(events.contains(&Event::PlayerOut {
            player: PlayerId::ALL[0],
            rank: 2,
            reason: OutReason::NoLives
        }));
        assert!(events.contains(&Event::MatchOver { winner: Some(PlayerId::ALL[1]) }));
        assert!(s.is_over());
        let frozen = s;
        assert!(s.step(&r, &TickInput::IDLE).is_empty());
        assert_eq!(s, frozen);
    }

    #[test]
    fn simultaneous_forfeit_of_the_last_two_is_a_draw() {
        let r = rules(3);
        let mut s = MatchState::new(&r);
        s.lives = [0, 2, 2, 0];
        let events: Vec<_> =
            s.step(&r, &TickInput { forfeit: 0b0110, ..TickInput::IDLE }).iter().collect();
        assert_eq!(
            events,
            vec![
                Event::PlayerOut { player: PlayerId::ALL[1], rank: 1, reason: OutReason::Forfeit },
                Event::PlayerOut { player: PlayerId::ALL[2], rank: 1, reason: OutReason::Forfeit },
                Event::MatchOver { winner: None },
            ]
        );
    }

    #[test]
    fn paddles_stop_against_the_ball() {
        let r = rules(2);
        let mut s = MatchState::new(&r);
        let pr = s.paddle_rect(&r, PlayerId::ALL[0]);
        // Ball just below the left paddle, inside its lane.
        moving(&mut s, pr.x0, pr.y1 + 20, 0, 0);
        s.step(
            &r,
            &TickInput {
                intents: [Intent::Plus, Intent::Stop, Intent::Stop, Intent::Stop],
                forfeit: 0,
            },
        );
        let pr = s.paddle_rect(&r, PlayerId::ALL[0]);
        let (bx, by) = s.ball_pos(&r);
        assert!(!pr.overlaps(&Rect::at(bx, by, r.ball_size, r.ball_size)));
    }

    #[test]
    fn hash_is_pinned() {
        // The hash is part of the protocol: changing it breaks old replays and mixed versions.
        let s = MatchState::new(&rules(4));
        assert_eq!(s.hash(), 0xf000_2cef_ef47_196a, "{:#x}", s.hash());
    }
}
