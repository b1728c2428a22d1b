//! Ended: the server refused or closed the link, or the player left; why, and what next.

use bevy::prelude::*;
use pong_domain::client::ClientPhase;

use super::full_screen;
use crate::game::{palette, text};
use crate::net::{NetPhase, PongClient};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(NetPhase::Ended), spawn);
}

fn spawn(mut commands: Commands, client: Res<PongClient>) {
    let (title, why) = match client.core().phase() {
        ClientPhase::Rejected(r) => ("The server refused".to_owned(), r.to_string()),
        ClientPhase::Closed(c) => ("The server closed the link".to_owned(), c.to_string()),
        _ => ("You left the match".to_owned(), String::new()),
    };
    commands.spawn((
        Name::new("Ended screen"),
        full_screen(NetPhase::Ended),
        children![
            text("DISTRIBUTED PONG", palette::TITLE, palette::TEXT),
            text(title, palette::HEADING, palette::ERROR),
            text(why, palette::BODY, palette::MUTED),
            text("R: join again    Esc: quit", palette::BODY, palette::MUTED),
        ],
    ));
}
