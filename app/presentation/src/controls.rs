//! The controls every frontend offers: W/S or Up/Down move a left or right paddle, A/D or
//! Left/Right a top or bottom one (opposite keys cancel out); on a touch screen the paddle
//! follows the finger along its side.

use pong_domain::rules::{Rules, Side};
use pong_domain::sim::Intent;

/// A key that steers, whatever the frontend calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// W.
    W,
    /// S.
    S,
    /// A.
    A,
    /// D.
    D,
    /// The up arrow.
    Up,
    /// The down arrow.
    Down,
    /// The left arrow.
    Left,
    /// The right arrow.
    Right,
}

impl Key {
    /// The key of a DOM `KeyboardEvent.code` ("KeyW", "ArrowUp"…), if it steers.
    #[must_use]
    pub fn from_dom_code(code: &str) -> Option<Key> {
        Some(match code {
            "KeyW" => Key::W,
            "KeyS" => Key::S,
            "KeyA" => Key::A,
            "KeyD" => Key::D,
            "ArrowUp" => Key::Up,
            "ArrowDown" => Key::Down,
            "ArrowLeft" => Key::Left,
            "ArrowRight" => Key::Right,
            _ => return None,
        })
    }
}

/// The intent the held keys give a paddle on `side`: toward the low coordinate (up, left)
/// is [`Intent::Minus`].
#[must_use]
pub fn intent(side: Side, held: impl Fn(Key) -> bool) -> Intent {
    let (minus, plus) = if side.is_vertical() {
        ([Key::W, Key::Up], [Key::S, Key::Down])
    } else {
        ([Key::A, Key::Left], [Key::D, Key::Right])
    };
    match (minus.into_iter().any(&held), plus.into_iter().any(&held)) {
        (true, false) => Intent::Minus,
        (false, true) => Intent::Plus,
        _ => Intent::Stop,
    }
}

/// The intent that brings a paddle whose low edge is at `paddle` (arena units) toward a
/// finger at `target` along its side (arena units): it stops within half a step of the
/// target, so the paddle settles under the finger instead of shaking.
#[must_use]
pub fn follow(rules: &Rules, paddle: f32, target: f32) -> Intent {
    let centre = paddle + rules.paddle_length as f32 / 2.0;
    let dead = rules.paddle_speed as f32 / 2.0;
    if target > centre + dead {
        Intent::Plus
    } else if target < centre - dead {
        Intent::Minus
    } else {
        Intent::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pong_domain::rules::MatchConfig;

    #[test]
    fn keys_steer_by_side_and_cancel_out() {
        let only = |k: Key| move |h: Key| h == k;
        assert_eq!(intent(Side::Left, only(Key::W)), Intent::Minus);
        assert_eq!(intent(Side::Right, only(Key::Down)), Intent::Plus);
        assert_eq!(intent(Side::Top, only(Key::W)), Intent::Stop);
        assert_eq!(intent(Side::Bottom, only(Key::Left)), Intent::Minus);
        assert_eq!(intent(Side::Left, |k| k == Key::W || k == Key::S), Intent::Stop);
        assert_eq!(Key::from_dom_code("ArrowRight"), Some(Key::Right));
        assert_eq!(Key::from_dom_code("Space"), None);
    }

    #[test]
    fn a_finger_pulls_the_paddle_and_it_settles_under_it() {
        let rules = Rules::new(MatchConfig { players: 2, lives: 3, tick_hz: 60, seed: 1 });
        let len = rules.paddle_length as f32;
        assert_eq!(follow(&rules, 0.0, 5_000.0), Intent::Plus);
        assert_eq!(follow(&rules, 5_000.0, 100.0), Intent::Minus);
        assert_eq!(follow(&rules, 1_000.0, 1_000.0 + len / 2.0), Intent::Stop);
    }
}
