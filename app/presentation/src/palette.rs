//! Colours and type sizes: one place for the look of every screen of every frontend.

use pong_domain::rules::PlayerId;

/// A colour in sRGB, each channel 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rgba {
    /// Red.
    pub r: f32,
    /// Green.
    pub g: f32,
    /// Blue.
    pub b: f32,
    /// Opacity.
    pub a: f32,
}

impl Rgba {
    /// An opaque colour.
    #[must_use]
    pub const fn srgb(r: f32, g: f32, b: f32) -> Rgba {
        Rgba { r, g, b, a: 1.0 }
    }

    /// A colour with its opacity.
    #[must_use]
    pub const fn srgba(r: f32, g: f32, b: f32, a: f32) -> Rgba {
        Rgba { r, g, b, a }
    }

    /// The same colour at opacity `a`.
    #[must_use]
    pub const fn with_alpha(self, a: f32) -> Rgba {
        Rgba { a, ..self }
    }

    /// This colour laid over the opaque `background` as the window shows it: mixed in linear
    /// light, as Bevy blends. A canvas mixes in sRGB, which makes a faint white marking
    /// fainter still; drawing the result of this instead makes the page look like the
    /// window.
    #[must_use]
    pub fn over(self, background: Rgba) -> Rgba {
        let linear = |c: f32| {
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        let srgb = |c: f32| {
            if c <= 0.003_130_8 { c * 12.92 } else { 1.055 * c.powf(1.0 / 2.4) - 0.055 }
        };
        let mix = |f: f32, b: f32| srgb(linear(f) * self.a + linear(b) * (1.0 - self.a));
        Rgba::srgb(mix(self.r, background.r), mix(self.g, background.g), mix(self.b, background.b))
    }

    /// As CSS: `rgba(255, 107, 107, 0.55)`.
    #[must_use]
    pub fn css(self) -> String {
        // Clamped to [0, 255] first, so the cast is exact.
        let byte = |c: f32| (c.clamp(0.0, 1.0) * 255.0).round() as u8;
        format!("rgba({}, {}, {}, {})", byte(self.r), byte(self.g), byte(self.b), self.a)
    }
}

/// The page or window background.
pub const BACKGROUND: Rgba = Rgba::srgb(0.035, 0.043, 0.078);
/// The arena's floor.
pub const FLOOR: Rgba = Rgba::srgb(0.071, 0.086, 0.141);
/// Walls, corner blocks and the sides of players who are out.
pub const WALL: Rgba = Rgba::srgb(0.22, 0.25, 0.34);
/// Faint markings on the floor.
pub const MARKING: Rgba = Rgba::srgba(1.0, 1.0, 1.0, 0.07);
/// The ball.
pub const BALL: Rgba = Rgba::srgb(0.97, 0.97, 1.0);
/// Panels and cards.
pub const PANEL: Rgba = Rgba::srgba(0.10, 0.12, 0.19, 0.92);
/// A panel over the arena (pause, result).
pub const OVERLAY: Rgba = Rgba::srgba(0.03, 0.04, 0.07, 0.82);
/// Main text.
pub const TEXT: Rgba = Rgba::srgb(0.93, 0.94, 0.97);
/// Secondary text.
pub const MUTED: Rgba = Rgba::srgb(0.55, 0.59, 0.70);
/// Errors.
pub const ERROR: Rgba = Rgba::srgb(1.0, 0.42, 0.42);
/// A warning (a slow network in the overlay).
pub const WARN: Rgba = Rgba::srgb(0.99, 0.77, 0.10);
/// Good news (ready, connected).
pub const GOOD: Rgba = Rgba::srgb(0.40, 0.85, 0.55);

/// Title size, in logical pixels.
pub const TITLE: f32 = 44.0;
/// Heading size.
pub const HEADING: f32 = 26.0;
/// Body text size.
pub const BODY: f32 = 18.0;
/// Small print.
pub const SMALL: f32 = 14.0;

/// Each seat's colour: coral (left), sky blue (right), green (top), amber (bottom).
#[must_use]
pub const fn player(p: PlayerId) -> Rgba {
    match p.index() {
        0 => Rgba::srgb(1.0, 0.42, 0.42),
        1 => Rgba::srgb(0.30, 0.67, 0.97),
        2 => Rgba::srgb(0.32, 0.81, 0.40),
        _ => Rgba::srgb(0.99, 0.77, 0.10),
    }
}

/// A seat's colour, dimmed (goal lines, empty pips).
#[must_use]
pub const fn player_dim(p: PlayerId, alpha: f32) -> Rgba {
    player(p).with_alpha(alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn css_rounds_each_channel_to_a_byte() {
        assert_eq!(ERROR.css(), "rgba(255, 107, 107, 1)");
        assert_eq!(player_dim(PlayerId::new(1).unwrap(), 0.55).css(), "rgba(77, 171, 247, 0.55)");
    }

    #[test]
    fn over_mixes_in_linear_light() {
        // A 7 % white marking on the floor comes out far brighter than 7 % of the way.
        let m = MARKING.over(FLOOR);
        assert_eq!(m.a, 1.0);
        assert!(m.r > 0.25 && m.r < 0.35, "{m:?}");
        // An opaque colour covers the floor (to within rounding: compared as CSS bytes).
        assert_eq!(TEXT.over(FLOOR).css(), TEXT.css());
        assert_eq!(MARKING.with_alpha(0.0).over(FLOOR).css(), FLOOR.css());
    }
}
