//! The game window as one call: [`run`] builds a Bevy app with a window, the networking
//! plugin and the screens, and returns when the window closes. Optionally takes a screenshot
//! and quits after a while ([`WindowOptions::exit_after`]), for `scripts/screenshot.sh`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::window::{PresentMode, WindowResolution};
use pong_domain::client::ClientConfig;
use pong_ports::Connector;
use tracing::{error, info};

use crate::bridge::WINDOW_RECONNECT;
use crate::game::{CANVAS, PongGamePlugin};
use crate::net::PongNetPlugin;
use pong_transport_support::ReconnectPolicy;

/// What [`run`] opens.
pub struct WindowOptions {
    /// How to reach the server.
    pub connector: Arc<dyn Connector>,
    /// Who joins, and for what match.
    pub config: ClientConfig,
    /// How persistently to dial.
    pub policy: ReconnectPolicy,
    /// The window's title.
    pub title: String,
    /// Save a PNG of the window here when `exit_after` has passed, then quit.
    pub screenshot: Option<PathBuf>,
    /// Quit after this long (after taking the screenshot, if one is asked for).
    pub exit_after: Option<Duration>,
    /// Open with the network overlay shown (F3 toggles it).
    pub net_overlay: bool,
}

impl WindowOptions {
    /// A window playing as `config` through `connector`.
    pub fn new(connector: Arc<dyn Connector>, config: ClientConfig) -> Self {
        WindowOptions {
            connector,
            config,
            policy: WINDOW_RECONNECT,
            title: "Distributed Pong".into(),
            screenshot: None,
            exit_after: None,
            net_overlay: false,
        }
    }
}

/// Opens the window and plays until it is closed, Esc is pressed, or `exit_after` passes.
/// Must be called on the main thread.
pub fn run(options: WindowOptions) -> AppExit {
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: options.title.clone(),
            resolution: WindowResolution::new(CANVAS.x as u32, CANVAS.y as u32),
            present_mode: PresentMode::AutoVsync,
            ..default()
        }),
        ..default()
    }))
    .add_plugins(
        PongNetPlugin::new(options.connector.clone(), options.config.clone())
            .with_policy(options.policy),
    )
    .add_plugins(PongGamePlugin);
    app.world_mut().resource_mut::<crate::game::overlay::NetOverlay>().shown = options.net_overlay;
    if let Some(after) = options.exit_after {
        app.insert_resource(Capture { after, path: options.screenshot.clone(), requested: None })
            .add_systems(Update, capture_then_exit);
    }
    app.run()
}

/// When to take the screenshot and quit.
#[derive(Resource)]
struct Capture {
    after: Duration,
    path: Option<PathBuf>,
    /// When the screenshot was asked for (real time since start-up).
    requested: Option<Duration>,
}

/// How long a screenshot may take before the app quits without it.
const SCREENSHOT_TIMEOUT: Duration = Duration::from_secs(10);

fn capture_then_exit(
    mut commands: Commands,
    time: Res<Time<Real>>,
    mut capture: ResMut<Capture>,
    mut exit: MessageWriter<AppExit>,
) {
    let now = time.elapsed();
    if now < capture.after {
        return;
    }
    match (&capture.path, capture.requested) {
        (None, _) => {
            info!("exit-after reached; quitting");
            exit.write(AppExit::Success);
        }
        (Some(path), None) => {
            info!(path = %path.display(), "taking a screenshot");
            let path = path.clone();
            commands.spawn(Screenshot::primary_window()).observe(
                move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
                    let saved = captured.image.clone().try_into_dynamic().map_err(|e| e.to_string()).and_then(|img| {
                        img.to_rgb8().save(&path).map_err(|e| e.to_string())
                    });
                    match saved {
                        Ok(()) => {
                            info!(path = %path.display(), "screenshot saved");
                            exit.write(AppExit::Success);
                        }
                        Err(e) => {
                            error!(path = %path.display(), error = %e, "cannot save the screenshot");
                            exit.write(AppExit::error());
                        }
                    }
                },
            );
            capture.requested = Some(now);
        }
        (Some(_), Some(asked)) => {
            if now > asked + SCREENSHOT_TIMEOUT {
                error!("the screenshot never came; quitting");
                exit.write(AppExit::error());
            }
        }
    }
}
