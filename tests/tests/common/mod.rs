//! What the cross-crate tests of this folder share: logs, and real players (the runtime's
//! bot clients) to put on any connector.
// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::sync::Arc;

use pong_domain::client::ClientCore;
use pong_domain::testing::player;
use pong_ports::Connector;
use pong_runtime::bot::BotController;
use pong_runtime::client::{ReconnectPolicy, play};

/// Logs go to the test's captured output (shown when a test fails); `RUST_LOG` filters.
pub(crate) fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A real player, the runtime's bot (skill 0.8), joining a match of `players` on
/// `connector`; returns its core once its match is over.
///
/// # Panics
/// If the client fails (refused, closed).
pub(crate) fn spawn_player(
    name: &str,
    players: u8,
    connector: Arc<dyn Connector>,
    seed: u64,
) -> tokio::task::JoinHandle<ClientCore> {
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut bot = BotController::new(0.8, seed);
        let (_, core) = play(
            ClientCore::new(player(&name, players)),
            connector,
            &mut bot,
            ReconnectPolicy::default(),
            std::future::pending(),
        )
        .await
        .expect("a real player plays its match");
        core
    })
}
