//! [`PongGamePlugin`]: the game window's screens on top of [`PongNetPlugin`](crate::PongNetPlugin):
//! the arena and its sprites, the HUD, the keyboard, and one screen per [`NetPhase`].
//!
//! Screens are the plugin's states: [`NetPhase`] (which mirrors the core) and the computed
//! state [`InMatch`] (an arena exists: countdown, play, pause, result). Every screen's
//! entities carry `DespawnOnExit` of the state they belong to, so leaving a state cleans up.
//! Each part is a plugin function in its own file (bevy_new_2d style).

pub mod arena;
pub mod hud;
pub mod input;
pub mod overlay;
pub mod palette;
pub mod screens;

use bevy::prelude::*;
use bevy::ui::UiScale;
use bevy::window::PrimaryWindow;

use crate::net::{NetPhase, NetSystems};

/// The game window's screens, HUD, arena and controls. Add after [`crate::PongNetPlugin`].
/// Works headless too (with `MinimalPlugins` and `StatesPlugin`): the entities exist, nothing
/// is drawn, and `ButtonInput<KeyCode>` is read if an input plugin provides it.
#[derive(Default)]
pub struct PongGamePlugin;

/// The design canvas, in world units and logical pixels: the camera shows at least this much
/// of the world, and the UI scales with the window the same way.
pub const CANVAS: Vec2 = Vec2::new(1280.0, 800.0);

/// The order of the game's systems within a frame.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GameSystems {
    /// `PreUpdate`, after input is read and the network received: keys to intents and actions.
    Input,
    /// `Update`: sprites and texts follow the client.
    Render,
}

/// Present while there is an arena on screen: countdown, play, pause and the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InMatch;

impl ComputedStates for InMatch {
    type SourceStates = NetPhase;

    fn compute(phase: NetPhase) -> Option<Self> {
        phase.has_arena().then_some(InMatch)
    }
}

impl Plugin for PongGamePlugin {
    fn build(&self, app: &mut App) {
        app.add_computed_state::<InMatch>()
            .insert_resource(ClearColor(palette::BACKGROUND))
            .configure_sets(
                PreUpdate,
                GameSystems::Input.after(NetSystems::Receive).after(bevy::input::InputSystems),
            )
            .configure_sets(Update, GameSystems::Render)
            .add_systems(Startup, spawn_camera)
            .add_systems(Update, scale_ui);
        app.add_plugins((
            arena::plugin,
            hud::plugin,
            input::plugin,
            overlay::plugin,
            screens::plugin,
        ));
    }
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((
        Name::new("Camera"),
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scaling_mode: bevy::camera::ScalingMode::AutoMin {
                min_width: CANVAS.x,
                min_height: CANVAS.y,
            },
            ..OrthographicProjection::default_2d()
        }),
    ));
}

/// The UI grows and shrinks with the window like the world does.
fn scale_ui(windows: Query<&Window, With<PrimaryWindow>>, scale: Option<ResMut<UiScale>>) {
    let (Ok(window), Some(mut scale)) = (windows.single(), scale) else { return };
    let s = (window.width() / CANVAS.x).min(window.height() / CANVAS.y).max(0.25);
    if (scale.0 - s).abs() > 1e-3 {
        scale.0 = s;
    }
}

/// A text bundle in the default font.
pub(crate) fn text(s: impl Into<String>, size: f32, color: Color) -> impl Bundle {
    (Text::new(s), TextFont::from_font_size(size), TextColor(color))
}
