//! The lobby: a card per seat (side, colour, name, ready or not, "you"), who the match still
//! waits for, and the player's own controls.

use bevy::prelude::*;
use pong_domain::client::ClientPhase;
use pong_domain::proto::Lobby;
use pong_domain::rules::{MAX_PLAYERS, PlayerId};

use super::full_screen;
use crate::game::hud::keys_for;
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

fn lobby(client: &PongClient) -> Option<&Lobby> {
    match client.core().phase() {
        ClientPhase::Lobby(l) => Some(l),
        _ => None,
    }
}

fn spawn(mut commands: Commands, client: Res<PongClient>) {
    let seats = client.rules().map_or(2, |r| r.players()).min(MAX_PLAYERS);
    let me = client.player();
    let heading = match lobby(&client).and_then(|l| l.room.as_ref()) {
        Some(room) => format!("Room {} - {seats} players", room.as_str()),
        None => format!("Match {} - {seats} players", client.core().match_id().map_or(0, |m| m.0)),
    };
    let you = me.map_or(String::new(), |p| {
        format!("You play {} ({}): {}", p.side().name().to_uppercase(), p, keys_for(p.side()))
    });
    let root = commands
        .spawn((
            Name::new("Lobby screen"),
            full_screen(NetPhase::Lobby),
            children![
                text("DISTRIBUTED PONG", palette::TITLE, palette::TEXT),
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
    let Some(l) = lobby(&client) else { return };
    let member = |p: PlayerId| l.members.iter().find(|m| m.player == p);
    for (seat, mut t, mut c) in &mut names {
        let (want, colour) = match member(seat.0) {
            Some(m) => (m.name.as_str().to_owned(), palette::TEXT),
            None => ("open seat".to_owned(), palette::MUTED),
        };
        if t.0 != want {
            t.0 = want;
        }
        c.set_if_neq(TextColor(colour));
    }
    for (seat, mut t, mut c) in &mut ready {
        let (want, colour) = match member(seat.0) {
            Some(m) if !m.connected => ("reconnecting...", palette::ERROR),
            Some(m) if m.ready => ("READY", palette::GOOD),
            Some(_) => ("getting ready...", palette::MUTED),
            None => ("waiting...", palette::MUTED),
        };
        if t.0 != want {
            t.0 = want.to_owned();
        }
        c.set_if_neq(TextColor(colour));
    }
    let missing = l.missing();
    let want = match missing {
        0 if l.members.iter().all(|m| m.ready) => "Everyone is ready - starting".to_owned(),
        0 => "Everyone is here - waiting for all to be ready".to_owned(),
        1 => "Waiting for 1 more player".to_owned(),
        n => format!("Waiting for {n} more players"),
    };
    for mut t in &mut status {
        if t.0 != want {
            t.0.clone_from(&want);
        }
    }
}
