//! The keyboard: W/S or Up/Down move a left or right paddle, A/D or Left/Right a top or
//! bottom one; Esc leaves (the server is told) and closes the window; R or Enter asks for a
//! rematch after a match, or tries again after a failed connection.
//!
//! Keys are read in `PreUpdate` right after Bevy's input systems and before the core's fixed
//! step, so a press is predicted and drawn in the frame that reads it.

use bevy::prelude::*;
use pong_domain::rules::Side;
use pong_domain::sim::Intent;
use pong_presentation::controls::{self, Key};
use tracing::info;

use super::GameSystems;
use crate::net::{LinkStatus, NetPhase, PongClient};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(PreUpdate, (steer, actions).chain().in_set(GameSystems::Input));
}

/// The intent the held keys give a paddle on `side` (the shared controls of every frontend,
/// [`pong_presentation::controls`]).
pub fn intent_for(keys: &ButtonInput<KeyCode>, side: Side) -> Intent {
    controls::intent(side, |key| {
        keys.pressed(match key {
            Key::W => KeyCode::KeyW,
            Key::S => KeyCode::KeyS,
            Key::A => KeyCode::KeyA,
            Key::D => KeyCode::KeyD,
            Key::Up => KeyCode::ArrowUp,
            Key::Down => KeyCode::ArrowDown,
            Key::Left => KeyCode::ArrowLeft,
            Key::Right => KeyCode::ArrowRight,
        })
    })
}

/// Sets the intent when what the keys say changes (so another controller, such as a test,
/// may steer while no key changes).
fn steer(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    phase: Res<State<NetPhase>>,
    mut client: ResMut<PongClient>,
    mut last: Local<Option<Intent>>,
) {
    let Some(keys) = keys else { return };
    let Some(player) = client.player() else { return };
    let intent = match phase.get() {
        NetPhase::Countdown | NetPhase::Playing | NetPhase::Paused => {
            intent_for(&keys, player.side())
        }
        _ => Intent::Stop,
    };
    if *last != Some(intent) {
        *last = Some(intent);
        client.set_intent(intent);
    }
}

fn actions(
    keys: Option<Res<ButtonInput<KeyCode>>>,
    phase: Res<State<NetPhase>>,
    mut client: ResMut<PongClient>,
    mut status: ResMut<LinkStatus>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(keys) = keys else { return };
    if keys.just_pressed(KeyCode::Escape) {
        if !client.core().is_finished() {
            info!("leaving the match");
            client.leave();
        }
        exit.write(AppExit::Success);
        return;
    }
    if keys.any_just_pressed([KeyCode::KeyR, KeyCode::Enter]) {
        let retry = status.gave_up.is_some();
        if retry || matches!(phase.get(), NetPhase::Over | NetPhase::Ended) {
            info!(retry, "starting over");
            status.gave_up = None;
            status.attempts = 0;
            status.last_error = None;
            client.rematch();
        }
    }
}
