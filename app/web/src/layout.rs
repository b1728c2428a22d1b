//! Where things go on the page, in CSS pixels, for any window from a phone held upright to a
//! wide monitor: the arena as large as fits, the players' cards beside it (or above it on a
//! narrow screen), and the conversions between arena units and pixels both ways (drawing,
//! and a finger on a touch screen).

use pong_domain::rules::{PlayerId, Rules, Side};

/// A rectangle in CSS pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Area {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Area {
    /// The centre.
    #[must_use]
    pub fn centre(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
}

/// The page's layout for one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// The arena on the page.
    pub arena: Area,
    /// CSS pixels per arena unit.
    pub scale: f64,
    /// Each seated player's card.
    pub cards: Vec<(PlayerId, Area)>,
    /// Where the game's name and the match line go (bottom left; on a narrow screen, the
    /// one line of information under the arena).
    pub info: Area,
    /// Where the ping and the keys go (bottom right; unused on a narrow screen).
    pub info_right: Area,
    /// Cards above the arena (a narrow screen) rather than beside it.
    pub stacked: bool,
}

const GAP: f64 = 16.0;

impl Layout {
    /// The layout of a `w` × `h` page for `rules`.
    #[must_use]
    pub fn new(rules: &Rules, w: f64, h: f64) -> Layout {
        let (aw, ah) = (f64::from(rules.width), f64::from(rules.height));
        let seats: Vec<PlayerId> = rules.config.seats().collect();
        let stacked = w < h * 1.15;
        if stacked {
            // A row of cards on top, a line of info at the bottom, the arena between.
            let card_h = 64.0;
            let info_h = 28.0;
            let room_w = w - 2.0 * GAP;
            let room_h = (h - card_h - info_h - 4.0 * GAP).max(1.0);
            let scale = (room_w / aw).min(room_h / ah).max(1e-6);
            let arena = Area {
                x: (w - aw * scale) / 2.0,
                y: GAP * 2.0 + card_h,
                w: aw * scale,
                h: ah * scale,
            };
            let n = seats.len() as f64;
            let card_w = (room_w - GAP * (n - 1.0)) / n;
            let cards = seats
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (*p, Area { x: GAP + i as f64 * (card_w + GAP), y: GAP, w: card_w, h: card_h })
                })
                .collect();
            let info = Area { x: GAP, y: arena.y + arena.h + GAP, w: room_w, h: info_h };
            return Layout { arena, scale, cards, info, info_right: info, stacked };
        }
        // Columns of cards left and right: left and top players on the left, right and
        // bottom on the right, as they sit around the table.
        let col = (w * 0.18).clamp(150.0, 260.0);
        let room_w = (w - 2.0 * col - 4.0 * GAP).max(1.0);
        let room_h = h - 2.0 * GAP;
        let scale = (room_w / aw).min(room_h / ah).max(1e-6);
        let arena = Area {
            x: (w - aw * scale) / 2.0,
            y: (h - ah * scale) / 2.0,
            w: aw * scale,
            h: ah * scale,
        };
        let card_h = 132.0;
        let mut rows = [0.0f64; 2];
        let cards = seats
            .iter()
            .map(|p| {
                let column = usize::from(matches!(p.side(), Side::Right | Side::Bottom));
                let x = if column == 0 { arena.x - GAP - col } else { arena.x + arena.w + GAP };
                let y = arena.y + rows[column];
                rows[column] += card_h + GAP;
                (*p, Area { x, y, w: col, h: card_h })
            })
            .collect();
        let info = Area { x: arena.x - GAP - col, y: arena.y + arena.h - 72.0, w: col, h: 72.0 };
        let info_right = Area { x: arena.x + arena.w + GAP, ..info };
        Layout { arena, scale, cards, info, info_right, stacked }
    }

    /// The page position of a point in arena units.
    #[must_use]
    pub fn to_page(&self, x: f64, y: f64) -> (f64, f64) {
        (self.arena.x + x * self.scale, self.arena.y + y * self.scale)
    }

    /// Where a finger at page position `(x, y)` points along `side`, in arena units.
    #[must_use]
    pub fn along(&self, side: Side, x: f64, y: f64) -> f32 {
        let units = if side.is_vertical() {
            (y - self.arena.y) / self.scale
        } else {
            (x - self.arena.x) / self.scale
        };
        units as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pong_domain::rules::MatchConfig;

    fn rules(players: u8) -> Rules {
        Rules::new(MatchConfig { players, lives: 3, tick_hz: 60, seed: 1 })
    }

    #[test]
    fn a_wide_window_puts_the_cards_beside_an_arena_that_fits() {
        let r = rules(4);
        let l = Layout::new(&r, 1280.0, 720.0);
        assert!(!l.stacked);
        assert!(l.arena.h <= 720.0 - 2.0 * GAP + 1e-9 && l.arena.y >= 0.0);
        for (_, c) in &l.cards {
            let beside = c.x + c.w <= l.arena.x || c.x >= l.arena.x + l.arena.w;
            assert!(beside && c.x >= 0.0 && c.x + c.w <= 1280.0, "{c:?} {:?}", l.arena);
        }
        assert_eq!(l.cards.len(), 4);
    }

    #[test]
    fn a_phone_held_upright_stacks_them() {
        let l = Layout::new(&rules(2), 390.0, 844.0);
        assert!(l.stacked);
        assert!(l.arena.w <= 390.0 && l.arena.x >= 0.0);
        assert!(l.cards.iter().all(|(_, c)| c.y + c.h <= l.arena.y));
    }

    #[test]
    fn a_finger_maps_back_to_arena_units() {
        let r = rules(4);
        let l = Layout::new(&r, 1280.0, 720.0);
        let (x, y) = l.to_page(1000.0, 5000.0);
        assert!((l.along(Side::Left, x, y) - 5000.0).abs() < 0.01);
        assert!((l.along(Side::Top, x, y) - 1000.0).abs() < 0.01);
    }
}
