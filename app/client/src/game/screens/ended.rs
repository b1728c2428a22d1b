//! Ended: the server refused or closed the link, or the player left; why, and what next.

use bevy::prelude::*;
use pong_presentation::words;

use super::full_screen;
use crate::game::{palette, text};
use crate::net::{NetPhase, PongClient};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(NetPhase::Ended), spawn);
}

fn spawn(mut commands: Commands, client: Res<PongClient>) {
    let (title, why) = words::ended(client.core());
    commands.spawn((
        Name::new("Ended screen"),
        full_screen(NetPhase::Ended),
        children![
            text(words::TITLE, palette::TITLE, palette::TEXT),
            text(title, palette::HEADING, palette::ERROR),
            text(why, palette::BODY, palette::MUTED),
            text("R: join again    Esc: quit", palette::BODY, palette::MUTED),
        ],
    ));
}
