//! The result over the final arena: the winner in their colour, every player's rank, lives
//! and how they went out, and the choice of a rematch or quitting.

use bevy::prelude::*;
use pong_presentation::words;

use super::{overlay, panel};
use crate::game::{palette, text};
use crate::net::{NetPhase, PongClient, Roster};

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(NetPhase::Over), spawn);
}

/// The result panel.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct ResultPanel;

fn spawn(mut commands: Commands, client: Res<PongClient>, roster: Res<Roster>) {
    let me = client.player();
    let (headline, colour) = words::headline(roster.result.as_ref(), me, &roster);
    let colour = palette::color(colour);
    let root = commands.spawn((Name::new("Result"), ResultPanel, overlay(NetPhase::Over))).id();
    let body = commands.spawn(panel()).id();
    commands.entity(root).add_child(body);
    let title = commands.spawn(text("MATCH OVER", palette::BODY, palette::MUTED)).id();
    let head = commands.spawn(text(headline, palette::TITLE, colour)).id();
    commands.entity(body).add_children(&[title, head]);
    for s in words::standings(roster.result.as_ref()) {
        let c = palette::player(s.player);
        let how = words::how_out(&s);
        let you = if Some(s.player) == me { "  (you)" } else { "" };
        let row = commands
            .spawn((
                Node {
                    width: Val::Px(420.0),
                    column_gap: Val::Px(14.0),
                    align_items: AlignItems::Center,
                    ..default()
                },
                children![
                    (
                        Node { width: Val::Px(44.0), ..default() },
                        children![text(words::ordinal(s.rank), palette::BODY, palette::TEXT)]
                    ),
                    (
                        Node {
                            width: Val::Px(12.0),
                            height: Val::Px(12.0),
                            border_radius: BorderRadius::all(Val::Px(6.0)),
                            ..default()
                        },
                        BackgroundColor(c)
                    ),
                    (
                        Node { flex_grow: 1.0, ..default() },
                        children![text(format!("{}{you}", s.name.as_str()), palette::BODY, c)]
                    ),
                    text(how, palette::SMALL, palette::MUTED),
                ],
            ))
            .id();
        commands.entity(body).add_child(row);
    }
    let hint = commands
        .spawn(text("R or Enter: rematch    Esc: quit", palette::BODY, palette::MUTED))
        .id();
    commands.entity(body).add_child(hint);
}
