//! The lobby: a card per seat (side, colour, name, ready or not, "you"), who the match still
//! waits for, and the player's own controls.

use bevy::prelude::*;
use pong_domain::rules::{MAX_PLAYERS, PlayerId};
use pong_presentation::words;

use super::full_screen;
use crate::game::{GameSystems, palette, text};
use crate::net::{NetPhase, PongClient};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(NetPhase::Lobby), spawn)
        .add_systems(Update, update.in_set(GameSystems::Render).run_if(in_state(NetPhase::Lobby)));
}

/// A seat's card in the lobby.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatCard(pub PlayerId);

/// The name (or "open seat") on a seat's card.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatName(pub PlayerId);

/// The ready badge of a seat's card.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatReady(pub PlayerId);

/// "Waiting for 2 more players".
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct LobbyStatus;

fn spawn(mut commands: Commands, client: Res<PongClient>) {
    let seats = client.rules().map_or(2, |r| r.players()).min(MAX_PLAYERS);
    let me = client.player();
    let heading = words::lobby_heading(client.core(), seats);
    let you = me.map_or(String::new(), words::you_play);
    let root = commands
        .spawn((
            Name::new("Lobby screen"),
            full_screen(NetPhase::Lobby),
            children![
                text(words::TITLE, palette::TITLE, palette::TEXT),
                text(heading, palette::BODY, palette::MUTED),
            ],
        ))
        .id();
    let row = commands
        .spawn(Node {
            column_gap: Val::Px(20.0),
            margin: UiRect::vertical(Val::Px(24.0)),
            ..default()
        })
        .id();
    commands.entity(root).add_child(row);
    for p in PlayerId::ALL.into_iter().take(usize::from(seats)) {
        let colour = palette::player(p);
        let card = commands
            .spawn((
                SeatCard(p),
                Node {
                    width: Val::Px(220.0),
                    height: Val::Px(190.0),
                    flex_direction: FlexDirection::Column,
                    align_items: AlignItems::Center,
                    justify_content: JustifyContent::SpaceBetween,
                    padding: UiRect::all(Val::Px(16.0)),
                    border: UiRect::top(Val::Px(8.0)),
                    border_radius: BorderRadius::all(Val::Px(10.0)),
                    ..default()
                },
                BackgroundColor(palette::PANEL),
                BorderColor::all(colour),
                children![
                    text(p.side().name().to_uppercase(), palette::SMALL, colour),
                    (SeatName(p), text("open seat", palette::HEADING, palette::MUTED)),
                    (SeatReady(p), text("waiting...", palette::BODY, palette::MUTED)),
                    text("YOU", palette::SMALL, if me == Some(p) { colour } else { Color::NONE }),
                ],
            ))
            .id();
        commands.entity(row).add_child(card);
    }
    let status = commands.spawn((LobbyStatus, text("", palette::HEADING, palette::TEXT))).id();
    let hint =
        commands.spawn(text(you, palette::BODY, me.map_or(palette::MUTED, palette::player))).id();
    let quit = commands.spawn(text("Esc: leave", palette::SMALL, palette::MUTED)).id();
    commands.entity(root).add_children(&[status, hint, quit]);
}

fn update(
    client: Res<PongClient>,
    mut names: Query<
        (&SeatName, &mut Text, &mut TextColor),
        (Without<SeatReady>, Without<LobbyStatus>),
    >,
    mut ready: Query<
        (&SeatReady, &mut Text, &mut TextColor),
        (Without<SeatName>, Without<LobbyStatus>),
    >,
    mut status: Query<&mut Text, (With<LobbyStatus>, Without<SeatName>, Without<SeatReady>)>,
) {
    let Some(l) = words::lobby(client.core()) else { return };
    for (seat, mut t, mut c) in &mut names {
        let (want, colour) = words::seat_name(l, seat.0);
        if t.0 != want {
            t.0 = want;
        }
        c.set_if_neq(TextColor(palette::color(colour)));
    }
    for (seat, mut t, mut c) in &mut ready {
        let (want, colour) = words::seat_ready(l, seat.0);
        if t.0 != want {
            t.0 = want.to_owned();
        }
        c.set_if_neq(TextColor(palette::color(colour)));
    }
    let want = words::lobby_status(l);
    for mut t in &mut status {
        if t.0 != want {
            t.0.clone_from(&want);
        }
    }
}
