//! The heads-up display around the arena: a card per player (colour, name, side, lives,
//! "you", out or lost), the round trip to the server, the controls, and a banner while the
//! link to the server is being restored.

use bevy::prelude::*;
use pong_domain::rules::PlayerId;
use pong_presentation::words;

use super::{GameSystems, InMatch, palette, text};
use crate::net::{LinkStatus, PongClient, Roster};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(InMatch), spawn_hud).add_systems(
        Update,
        (update_cards, update_pips, update_info)
            .in_set(GameSystems::Render)
            .run_if(in_state(InMatch)),
    );
}

/// A player's card.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerCard(pub PlayerId);

/// The name on a player's card.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardName(pub PlayerId);

/// The status line of a player's card ("out", "lost connection").
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardStatus(pub PlayerId);

/// One life of a player: lit while the player has more than `index` lives.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifePip {
    /// Whose.
    pub player: PlayerId,
    /// Which (0-based).
    pub index: u8,
}

/// The ping readout.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct PingText;

/// The "reconnecting" banner.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct ReconnectBanner;

fn spawn_hud(mut commands: Commands, client: Res<PongClient>, roster: Res<Roster>) {
    let Some(rules) = client.rules() else { return };
    let me = client.player();
    let lives = rules.config.lives;
    let seats: Vec<PlayerId> = rules.config.seats().collect();
    let column =
        |ids: [usize; 2]| ids.into_iter().filter_map(|i| seats.get(i).copied()).collect::<Vec<_>>();
    let left = column([0, 2]);
    let right = column([1, 3]);
    let root = commands
        .spawn((
            Name::new("HUD"),
            DespawnOnExit(InMatch),
            Node {
                position_type: PositionType::Absolute,
                width: Val::Percent(100.0),
                height: Val::Percent(100.0),
                justify_content: JustifyContent::SpaceBetween,
                padding: UiRect::all(Val::Px(24.0)),
                ..default()
            },
        ))
        .id();
    for (ids, right_side) in [(left, false), (right, true)] {
        let col = commands
            .spawn(Node {
                width: Val::Px(210.0),
                flex_direction: FlexDirection::Column,
                justify_content: JustifyContent::SpaceBetween,
                align_items: if right_side { AlignItems::End } else { AlignItems::Start },
                ..default()
            })
            .id();
        commands.entity(root).add_child(col);
        let cards = commands
            .spawn(Node {
                flex_direction: FlexDirection::Column,
                row_gap: Val::Px(16.0),
                width: Val::Percent(100.0),
                ..default()
            })
            .id();
        commands.entity(col).add_child(cards);
        for p in ids {
            let card = spawn_card(&mut commands, p, me == Some(p), lives, &roster);
            commands.entity(cards).add_child(card);
        }
        let footer = if right_side {
            commands
                .spawn((
                    Node {
                        flex_direction: FlexDirection::Column,
                        align_items: AlignItems::End,
                        row_gap: Val::Px(4.0),
                        ..default()
                    },
                    children![
                        (PingText, text("ping -", palette::SMALL, palette::MUTED)),
                        text(
                            me.map_or("", |p| words::keys_for(p.side())).to_owned() + ": move",
                            palette::SMALL,
                            palette::MUTED
                        ),
                        text("Esc: leave", palette::SMALL, palette::MUTED),
                    ],
                ))
                .id()
        } else {
            commands
                .spawn((
                    Node {
                        flex_direction: FlexDirection::Column,
                        row_gap: Val::Px(4.0),
                        ..default()
                    },
                    children![
                        text(words::TITLE, palette::BODY, palette::TEXT),
                        text(
                            words::match_line(client.core(), lives),
                            palette::SMALL,
                            palette::MUTED
                        ),
                    ],
                ))
                .id()
        };
        commands.entity(col).add_child(footer);
    }
    commands.spawn((
        ReconnectBanner,
        DespawnOnExit(InMatch),
        Visibility::Hidden,
        Node {
            position_type: PositionType::Absolute,
            top: Val::Px(16.0),
            width: Val::Percent(100.0),
            justify_content: JustifyContent::Center,
            ..default()
        },
        children![(
            Node {
                padding: UiRect::axes(Val::Px(16.0), Val::Px(8.0)),
                border_radius: BorderRadius::all(Val::Px(6.0)),
                ..default()
            },
            BackgroundColor(palette::ERROR.with_alpha(0.85)),
            children![text(words::RECONNECTING, palette::BODY, palette::TEXT)],
        )],
    ));
}

fn spawn_card(
    commands: &mut Commands,
    p: PlayerId,
    me: bool,
    lives: u8,
    roster: &Roster,
) -> Entity {
    let colour = palette::player(p);
    let side = p.side().name().to_uppercase();
    let card = commands
        .spawn((
            Name::new(format!("Card {p}")),
            PlayerCard(p),
            Node {
                flex_direction: FlexDirection::Column,
                padding: UiRect::new(Val::Px(14.0), Val::Px(12.0), Val::Px(10.0), Val::Px(12.0)),
                row_gap: Val::Px(6.0),
                border: UiRect::left(Val::Px(6.0)),
                border_radius: BorderRadius::all(Val::Px(8.0)),
                width: Val::Percent(100.0),
                ..default()
            },
            BackgroundColor(palette::PANEL),
            BorderColor::all(colour),
        ))
        .id();
    let header = commands
        .spawn((
            Node {
                justify_content: JustifyContent::SpaceBetween,
                align_items: AlignItems::Center,
                ..default()
            },
            children![
                (CardName(p), text(roster.name(p), palette::HEADING, colour)),
                (
                    Node {
                        padding: UiRect::axes(Val::Px(6.0), Val::Px(2.0)),
                        border_radius: BorderRadius::all(Val::Px(4.0)),
                        display: if me { Display::Flex } else { Display::None },
                        ..default()
                    },
                    BackgroundColor(colour),
                    children![text("YOU", palette::SMALL, palette::BACKGROUND)],
                ),
            ],
        ))
        .id();
    let side_line = commands.spawn(text(side, palette::SMALL, palette::MUTED)).id();
    let pips = commands
        .spawn(Node {
            flex_wrap: FlexWrap::Wrap,
            column_gap: Val::Px(5.0),
            row_gap: Val::Px(5.0),
            ..default()
        })
        .id();
    for index in 0..lives {
        let pip = commands
            .spawn((
                LifePip { player: p, index },
                Node {
                    width: Val::Px(14.0),
                    height: Val::Px(14.0),
                    border_radius: BorderRadius::all(Val::Px(7.0)),
                    ..default()
                },
                BackgroundColor(colour),
            ))
            .id();
        commands.entity(pips).add_child(pip);
    }
    let status = commands.spawn((CardStatus(p), text("", palette::SMALL, palette::MUTED))).id();
    commands.entity(card).add_children(&[header, side_line, pips, status]);
    card
}

fn update_cards(
    client: Res<PongClient>,
    roster: Res<Roster>,
    mut names: Query<(&CardName, &mut Text), Without<CardStatus>>,
    mut statuses: Query<(&CardStatus, &mut Text, &mut TextColor), Without<CardName>>,
) {
    for (name, mut t) in &mut names {
        let want = roster.name(name.0);
        if t.0 != want {
            t.0 = want;
        }
    }
    for (status, mut t, mut colour) in &mut statuses {
        let (want, c) = words::card_status(client.core(), status.0);
        if t.0 != want {
            t.0 = want.to_owned();
        }
        colour.set_if_neq(TextColor(palette::color(c)));
    }
}

fn update_pips(client: Res<PongClient>, mut pips: Query<(&LifePip, &mut BackgroundColor)>) {
    let Some(view) = client.view() else { return };
    for (pip, mut bg) in &mut pips {
        let lit = view.lives[pip.player.index()] > pip.index;
        let want =
            if lit { palette::player(pip.player) } else { palette::player_dim(pip.player, 0.16) };
        bg.set_if_neq(BackgroundColor(want));
    }
}

fn update_info(
    client: Res<PongClient>,
    status: Res<LinkStatus>,
    mut ping: Query<&mut Text, With<PingText>>,
    mut banner: Query<&mut Visibility, With<ReconnectBanner>>,
) {
    let rtt = client.core().rtt();
    for mut t in &mut ping {
        let want = words::ping(rtt);
        if t.0 != want {
            t.0 = want;
        }
    }
    let lost = !status.connected && !client.core().is_finished();
    for mut v in &mut banner {
        v.set_if_neq(if lost { Visibility::Inherited } else { Visibility::Hidden });
    }
}
