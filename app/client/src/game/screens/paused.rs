//! The pause overlay: who lost the connection and how long the match waits for them
//! ("Bob lost connection - back in 27 s or out").

use bevy::prelude::*;
use pong_presentation::words;

use super::{overlay, panel};
use crate::game::{GameSystems, palette, text};
use crate::net::{NetPhase, PongClient, Roster};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(NetPhase::Paused), spawn)
        .add_systems(Update, update.in_set(GameSystems::Render).run_if(in_state(NetPhase::Paused)));
}

/// The pause overlay.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct PauseOverlay;

/// Its lines: one per lost player.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct PauseText;

/// The text for the pause: one line per lost player, with the seconds left to come back.
pub fn pause_lines(client: &PongClient, roster: &Roster) -> String {
    words::pause_lines(client.core(), roster, client.now()).join("\n")
}

fn spawn(mut commands: Commands, client: Res<PongClient>, roster: Res<Roster>) {
    commands.spawn((
        Name::new("Pause overlay"),
        PauseOverlay,
        overlay(NetPhase::Paused),
        children![(
            panel(),
            children![
                text("PAUSED", palette::TITLE, palette::TEXT),
                (PauseText, text(pause_lines(&client, &roster), palette::BODY, palette::ERROR)),
                text(words::PAUSE_FOOTER, palette::SMALL, palette::MUTED),
            ],
        )],
    ));
}

fn update(client: Res<PongClient>, roster: Res<Roster>, mut q: Query<&mut Text, With<PauseText>>) {
    let want = pause_lines(&client, &roster);
    for mut t in &mut q {
        if t.0 != want {
            t.0.clone_from(&want);
        }
    }
}
