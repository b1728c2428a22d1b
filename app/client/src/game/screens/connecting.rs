//! Connecting: dialling the server (with each failed attempt shown), then asking for a seat;
//! if the server is not there, a clear error and the choice to try again or quit.

use bevy::prelude::*;
use pong_domain::client::ClientPhase;
use pong_presentation::words;

use super::full_screen;
use crate::game::{GameSystems, palette, text};
use crate::net::{LinkStatus, NetPhase, PongClient};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(NetPhase::Connecting), spawn).add_systems(
        Update,
        update.in_set(GameSystems::Render).run_if(in_state(NetPhase::Connecting)),
    );
}

/// The main line of the Connecting screen.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct ConnectLine;

/// The detail line of the Connecting screen (attempts, errors, what to do).
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct ConnectDetail;

fn spawn(mut commands: Commands) {
    commands.spawn((
        Name::new("Connecting screen"),
        full_screen(NetPhase::Connecting),
        children![
            text(words::TITLE, palette::TITLE, palette::TEXT),
            text(words::TAGLINE, palette::BODY, palette::MUTED),
            (Node { height: Val::Px(24.0), ..default() }),
            (ConnectLine, text("Connecting...", palette::HEADING, palette::TEXT)),
            (ConnectDetail, text("", palette::BODY, palette::MUTED)),
        ],
    ));
}

fn update(
    client: Res<PongClient>,
    status: Res<LinkStatus>,
    mut line: Query<(&mut Text, &mut TextColor), (With<ConnectLine>, Without<ConnectDetail>)>,
    mut detail: Query<&mut Text, (With<ConnectDetail>, Without<ConnectLine>)>,
) {
    let (main, colour, more) = if let Some(err) = &status.gave_up {
        (
            "Cannot reach the server".to_owned(),
            palette::ERROR,
            format!(
                "{err}\nIs the server running? Start one with `pong server`, or play offline with `pong play --local`.\n\nR: try again    Esc: quit"
            ),
        )
    } else if status.connected && matches!(client.core().phase(), ClientPhase::Joining) {
        (
            format!("Connected to {}", status.server),
            palette::GOOD,
            "Asking for a seat...".to_owned(),
        )
    } else {
        let more = match (&status.last_error, status.attempts) {
            (Some(e), n) if n > 0 => format!("attempt {n} failed ({e}); retrying..."),
            _ => String::new(),
        };
        (format!("Connecting to {}...", status.server), palette::TEXT, more)
    };
    for (mut t, mut c) in &mut line {
        if t.0 != main {
            t.0.clone_from(&main);
        }
        c.set_if_neq(TextColor(colour));
    }
    for mut t in &mut detail {
        if t.0 != more {
            t.0.clone_from(&more);
        }
    }
}
