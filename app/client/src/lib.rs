//! The Bevy side of Distributed Pong: a networking plugin that plays over any transport,
//! and the game window's screens on top of it.
//!
//! The protocol, prediction, reconciliation, clock sync and smoothing all live in
//! [`pong_domain::client::ClientCore`]; this crate only carries frames between it and a
//! transport, and draws what it says. ECS components mirror the core; they are never its
//! source of truth.
//!
//! # Layout
//! - [`bridge`]: a tokio runtime on its own thread owns the transport link; channels connect
//!   it to Bevy (drained in `PreUpdate`, fed in `PostUpdate`), so no system blocks.
//! - [`net`]: [`PongNetPlugin`], the reusable part: the core in the [`PongClient`] resource,
//!   stepped in `FixedUpdate`; [`NetPhase`] states; [`PongEvent`] messages; [`NetSystems`].
//! - [`game`]: [`PongGamePlugin`], the window's content: arena, HUD, keyboard, and one
//!   screen per phase (connecting, lobby, countdown, pause, result).
//! - [`window`]: [`window::run`] opens the window with both plugins (used by `pong play`),
//!   with an optional screenshot-and-quit for scripts.
//!
//! # Reusing the networking in another game
//! ```no_run
//! # use std::sync::Arc;
//! use bevy::prelude::*;
//! use pong_client::{NetPhase, PongClient, PongNetPlugin};
//! # fn connector() -> Arc<dyn pong_ports::Connector> { unimplemented!() }
//! let name = pong_domain::proto::Name::new("Ada").unwrap();
//! let config = pong_domain::client::ClientConfig::new(name);
//! App::new()
//!     .add_plugins(DefaultPlugins)
//!     .add_plugins(PongNetPlugin::new(connector(), config))
//!     .add_systems(Update, draw.run_if(in_state(NetPhase::Playing)))
//!     .run();
//!
//! fn draw(client: Res<PongClient>) {
//!     if let Some(view) = client.view() {
//!         // view.ball, view.paddles, view.lives: in arena units (see pong_domain::rules).
//!     }
//! }
//! ```

// Bevy queries with filters are long types by nature.
#![allow(clippy::type_complexity)]

pub mod bridge;
pub mod game;
pub mod net;
pub mod window;

pub use bridge::WINDOW_RECONNECT;
pub use game::{GameSystems, InMatch, PongGamePlugin};
pub use net::{LinkStatus, NetPhase, NetSystems, PongClient, PongEvent, PongNetPlugin, Roster};
pub use pong_transport_support::ReconnectPolicy;
pub use window::{WindowOptions, run};
