//! Colours and type sizes, as Bevy colours: the shared palette of every frontend
//! ([`pong_presentation::palette`]), so the window and the browser look like one game.

use bevy::prelude::*;
use pong_domain::rules::PlayerId;
use pong_presentation::Rgba;
use pong_presentation::palette as shared;

pub use shared::{BODY, HEADING, SMALL, TITLE};

const fn bevy(c: Rgba) -> Color {
    Color::srgba(c.r, c.g, c.b, c.a)
}

/// Window background.
pub const BACKGROUND: Color = bevy(shared::BACKGROUND);
/// The arena's floor.
pub const FLOOR: Color = bevy(shared::FLOOR);
/// Walls, corner blocks and the sides of players who are out.
pub const WALL: Color = bevy(shared::WALL);
/// Faint markings on the floor.
pub const MARKING: Color = bevy(shared::MARKING);
/// The ball.
pub const BALL: Color = bevy(shared::BALL);
/// Panels and cards.
pub const PANEL: Color = bevy(shared::PANEL);
/// A panel over the arena (pause, result).
pub const OVERLAY: Color = bevy(shared::OVERLAY);
/// Main text.
pub const TEXT: Color = bevy(shared::TEXT);
/// Secondary text.
pub const MUTED: Color = bevy(shared::MUTED);
/// Errors.
pub const ERROR: Color = bevy(shared::ERROR);
/// A warning (a slow network in the overlay).
pub const WARN: Color = bevy(shared::WARN);
/// Good news (ready, connected).
pub const GOOD: Color = bevy(shared::GOOD);

/// A colour of the shared palette as a Bevy colour (for the colours words come with).
pub const fn color(c: Rgba) -> Color {
    bevy(c)
}

/// Each seat's colour: coral (left), sky blue (right), green (top), amber (bottom).
pub fn player(p: PlayerId) -> Color {
    bevy(shared::player(p))
}

/// A seat's colour, dimmed (goal lines, empty pips).
pub fn player_dim(p: PlayerId, alpha: f32) -> Color {
    bevy(shared::player_dim(p, alpha))
}
