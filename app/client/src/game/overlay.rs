//! The network overlay for a player who asks "is it my network?": F3 shows or hides a panel
//! with the round trip and its jitter, the prediction's lead, corrections and resent ticks
//! per second, bytes per second each way, and a graph of the round trip over the last ten
//! seconds. The figures are the core's ([`ClientCore::net_stats`] through a [`NetMeter`]),
//! the same any other frontend shows.
//!
//! [`ClientCore::net_stats`]: pong_domain::client::ClientCore::net_stats

use bevy::prelude::*;
use pong_domain::client::{NetMeter, NetRates};

use super::{GameSystems, palette, text};
use crate::net::PongClient;

/// Samples per second of the graph and the rates.
const SAMPLES_PER_SECOND: u64 = 4;
/// Bars in the graph: ten seconds.
const BARS: usize = 40;
/// The graph's height (logical px); a bar this tall is `graph_scale_ms`.
const GRAPH_HEIGHT: f32 = 48.0;

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<NetOverlay>()
        .add_systems(Startup, spawn_overlay)
        .add_systems(PreUpdate, toggle.in_set(GameSystems::Input))
        .add_systems(Update, (measure, show).chain().in_set(GameSystems::Render));
}

/// Whether the overlay is shown, and the rates it shows.
#[derive(Resource, Debug, Clone)]
pub struct NetOverlay {
    /// Shown (F3 toggles it).
    pub shown: bool,
    /// The rates, sampled whether shown or not, so the graph is full when it opens.
    pub meter: NetMeter,
}

impl Default for NetOverlay {
    fn default() -> Self {
        NetOverlay { shown: false, meter: NetMeter::new(1_000_000 / SAMPLES_PER_SECOND, BARS) }
    }
}

/// The overlay's panel.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct OverlayPanel;

/// The overlay's figures.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct OverlayText;

/// One bar of the round-trip graph, oldest first.
#[derive(Component, Clone, Copy, Debug)]
pub struct OverlayBar(pub usize);

fn spawn_overlay(mut commands: Commands) {
    let graph = commands
        .spawn(Node {
            height: Val::Px(GRAPH_HEIGHT),
            align_items: AlignItems::End,
            column_gap: Val::Px(1.0),
            ..default()
        })
        .id();
    for i in 0..BARS {
        let bar = commands
            .spawn((
                OverlayBar(i),
                Node { width: Val::Px(4.0), height: Val::Px(0.0), ..default() },
                BackgroundColor(palette::GOOD),
            ))
            .id();
        commands.entity(graph).add_child(bar);
    }
    let body = commands.spawn((OverlayText, text("", palette::SMALL, palette::TEXT))).id();
    let title = commands.spawn(text("NETWORK (F3)", palette::SMALL, palette::MUTED)).id();
    commands
        .spawn((
            Name::new("Network overlay"),
            OverlayPanel,
            Visibility::Hidden,
            // Above the HUD and every screen.
            GlobalZIndex(10),
            Node {
                position_type: PositionType::Absolute,
                left: Val::Px(24.0),
                bottom: Val::Px(96.0),
                flex_direction: FlexDirection::Column,
                row_gap: Val::Px(6.0),
                padding: UiRect::all(Val::Px(12.0)),
                border_radius: BorderRadius::all(Val::Px(8.0)),
                ..default()
            },
            BackgroundColor(palette::PANEL),
        ))
        .add_children(&[title, body, graph]);
}

fn toggle(keys: Option<Res<ButtonInput<KeyCode>>>, mut overlay: ResMut<NetOverlay>) {
    if keys.is_some_and(|k| k.just_pressed(KeyCode::F3)) {
        overlay.shown = !overlay.shown;
    }
}

fn measure(client: Res<PongClient>, mut overlay: ResMut<NetOverlay>) {
    let now = client.now();
    let stats = client.core().net_stats();
    overlay.meter.update(now, stats);
}

/// The panel's text for the latest rates.
pub fn overlay_text(r: Option<&NetRates>) -> String {
    let Some(r) = r else { return "measuring...".to_owned() };
    let rtt = r.rtt_ms.map_or("-".to_owned(), |ms| format!("{ms:.1} ms"));
    let lines = [
        ("round trip", rtt),
        ("jitter", format!("{:.1} ms", r.jitter_ms)),
        ("lead", format!("{:.1} ms", r.lead_ms)),
        ("corrections", format!("{:.1}/s", r.corrections_per_s)),
        ("ticks resent", format!("{:.1}/s", r.ticks_resent_per_s)),
        (
            "down",
            format!("{:.2} KB/s  {:.0} frames/s", r.bytes_in_per_s / 1000.0, r.frames_in_per_s),
        ),
        (
            "up",
            format!("{:.2} KB/s  {:.0} frames/s", r.bytes_out_per_s / 1000.0, r.frames_out_per_s),
        ),
    ];
    lines.map(|(label, value)| format!("{label:<13}{value}")).join("\n")
}

fn show(
    overlay: Res<NetOverlay>,
    mut panel: Query<&mut Visibility, With<OverlayPanel>>,
    mut body: Query<&mut Text, With<OverlayText>>,
    mut bars: Query<(&OverlayBar, &mut Node, &mut BackgroundColor)>,
) {
    let want = if overlay.shown { Visibility::Inherited } else { Visibility::Hidden };
    for mut v in &mut panel {
        v.set_if_neq(want);
    }
    if !overlay.shown {
        return;
    }
    let latest = overlay.meter.latest();
    let s = overlay_text(latest);
    for mut t in &mut body {
        if t.0 != s {
            t.0.clone_from(&s);
        }
    }
    // The graph's scale follows the worst round trip shown, in steps of 50 ms, so that a
    // calm line stays calm and a spike stands out.
    let history: Vec<&NetRates> = overlay.meter.history().collect();
    let worst = history.iter().filter_map(|r| r.rtt_ms).fold(0.0f32, f32::max);
    let scale = (worst / 50.0).ceil().max(1.0) * 50.0;
    let offset = BARS.saturating_sub(history.len());
    for (bar, mut node, mut colour) in &mut bars {
        let rtt = bar.0.checked_sub(offset).and_then(|i| history.get(i)).and_then(|r| r.rtt_ms);
        let h = rtt.map_or(0.0, |ms| (ms / scale * GRAPH_HEIGHT).max(1.0));
        if node.height != Val::Px(h) {
            node.height = Val::Px(h);
        }
        // Amber when the round trip alone costs more than two 60 Hz ticks.
        let c = if rtt.is_some_and(|ms| ms > 33.0) { palette::WARN } else { palette::GOOD };
        colour.set_if_neq(BackgroundColor(c));
    }
}
