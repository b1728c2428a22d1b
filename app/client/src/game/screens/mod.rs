//! One screen per [`NetPhase`](crate::NetPhase), each a plugin function in its own file:
//! full-window screens before and after a match (connecting, lobby, ended) and overlays on
//! the arena during one (countdown, pause, result).

pub mod connecting;
pub mod countdown;
pub mod ended;
pub mod lobby;
pub mod over;
pub mod paused;

use bevy::prelude::*;

use super::palette;

pub(super) fn plugin(app: &mut App) {
    app.add_plugins((
        connecting::plugin,
        lobby::plugin,
        countdown::plugin,
        paused::plugin,
        over::plugin,
        ended::plugin,
    ));
}

/// A full-window column, centred, that goes away with `state`.
fn full_screen<S: States>(state: S) -> impl Bundle {
    (
        DespawnOnExit(state),
        Node {
            position_type: PositionType::Absolute,
            width: Val::Percent(100.0),
            height: Val::Percent(100.0),
            flex_direction: FlexDirection::Column,
            align_items: AlignItems::Center,
            justify_content: JustifyContent::Center,
            row_gap: Val::Px(18.0),
            ..default()
        },
    )
}

/// A panel centred over the arena that goes away with `state`.
fn overlay<S: States>(state: S) -> impl Bundle {
    (
        DespawnOnExit(state),
        Node {
            position_type: PositionType::Absolute,
            width: Val::Percent(100.0),
            height: Val::Percent(100.0),
            align_items: AlignItems::Center,
            justify_content: JustifyContent::Center,
            ..default()
        },
        GlobalZIndex(10),
    )
}

/// The panel inside an overlay.
fn panel() -> impl Bundle {
    (
        Node {
            flex_direction: FlexDirection::Column,
            align_items: AlignItems::Center,
            row_gap: Val::Px(12.0),
            padding: UiRect::axes(Val::Px(36.0), Val::Px(24.0)),
            border_radius: BorderRadius::all(Val::Px(12.0)),
            ..default()
        },
        BackgroundColor(palette::OVERLAY),
    )
}
