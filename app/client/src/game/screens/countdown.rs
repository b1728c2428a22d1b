//! The countdown over the arena: 3, 2, 1 to the tick every host starts at (the core turns the
//! server's start time into local time with its clock-offset estimate, so every window shows
//! the same number at the same moment), with the player's side and keys.

use bevy::prelude::*;
use pong_domain::client::ClientPhase;
use pong_presentation::words;

use super::{overlay, panel};
use crate::game::{GameSystems, palette, text};
use crate::net::{NetPhase, PongClient};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(NetPhase::Countdown), spawn).add_systems(
        Update,
        update.in_set(GameSystems::Render).run_if(in_state(NetPhase::Countdown)),
    );
}

/// The big number.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct CountdownText;

fn spawn(mut commands: Commands, client: Res<PongClient>) {
    let me = client.player();
    let line = me.map_or(String::new(), words::you_are);
    commands.spawn((
        Name::new("Countdown"),
        overlay(NetPhase::Countdown),
        children![(
            panel(),
            children![
                text(words::countdown_caption(client.core()), palette::BODY, palette::MUTED),
                (CountdownText, text("3", 96.0, palette::TEXT)),
                text(line, palette::BODY, me.map_or(palette::MUTED, palette::player)),
            ],
        )],
    ));
}

fn update(client: Res<PongClient>, mut q: Query<&mut Text, With<CountdownText>>) {
    let ClientPhase::Countdown { at, .. } = client.core().phase() else { return };
    let want = words::seconds_left(*at, client.now()).to_string();
    for mut t in &mut q {
        if t.0 != want {
            t.0.clone_from(&want);
        }
    }
}
