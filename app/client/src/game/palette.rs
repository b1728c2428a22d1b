//! Colours and type sizes: one place for the look of every screen.

use bevy::prelude::*;
use pong_domain::rules::PlayerId;

/// Window background.
pub const BACKGROUND: Color = Color::srgb(0.035, 0.043, 0.078);
/// The arena's floor.
pub const FLOOR: Color = Color::srgb(0.071, 0.086, 0.141);
/// Walls, corner blocks and the sides of players who are out.
pub const WALL: Color = Color::srgb(0.22, 0.25, 0.34);
/// Faint markings on the floor.
pub const MARKING: Color = Color::srgba(1.0, 1.0, 1.0, 0.07);
/// The ball.
pub const BALL: Color = Color::srgb(0.97, 0.97, 1.0);
/// Panels and cards.
pub const PANEL: Color = Color::srgba(0.10, 0.12, 0.19, 0.92);
/// A panel over the arena (pause, result).
pub const OVERLAY: Color = Color::srgba(0.03, 0.04, 0.07, 0.82);
/// Main text.
pub const TEXT: Color = Color::srgb(0.93, 0.94, 0.97);
/// Secondary text.
pub const MUTED: Color = Color::srgb(0.55, 0.59, 0.70);
/// Errors.
pub const ERROR: Color = Color::srgb(1.0, 0.42, 0.42);
/// A warning (a slow network in the overlay).
pub const WARN: Color = Color::srgb(0.99, 0.77, 0.10);
/// Good news (ready, connected).
pub const GOOD: Color = Color::srgb(0.40, 0.85, 0.55);

/// Title size.
pub const TITLE: f32 = 44.0;
/// Heading size.
pub const HEADING: f32 = 26.0;
/// Body text size.
pub const BODY: f32 = 18.0;
/// Small print.
pub const SMALL: f32 = 14.0;

/// Each seat's colour: coral (left), sky blue (right), green (top), amber (bottom).
pub fn player(p: PlayerId) -> Color {
    match p.index() {
        0 => Color::srgb(1.0, 0.42, 0.42),
        1 => Color::srgb(0.30, 0.67, 0.97),
        2 => Color::srgb(0.32, 0.81, 0.40),
        _ => Color::srgb(0.99, 0.77, 0.10),
    }
}

/// A seat's colour, dimmed (goal lines, empty pips).
pub fn player_dim(p: PlayerId, alpha: f32) -> Color {
    player(p).with_alpha(alpha)
}
