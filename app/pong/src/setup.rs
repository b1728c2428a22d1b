//! What the commands share before they run: the server configuration the rule options
//! describe, randomness from the OS, the options every player-side command checks the same
//! way, and the shutdown signal a server stops on.

use anyhow::{Result, bail};
use pong_domain::proto::RoomName;
use pong_domain::server::ServerConfig;

use crate::cli::RulesArgs;

/// The server configuration the rule options describe.
pub(crate) fn server_config(players: u8, rules: &RulesArgs, max_matches: usize) -> ServerConfig {
    ServerConfig {
        default_players: players,
        lives: rules.lives,
        tick_hz: rules.tick_hz,
        countdown: rules.countdown_ms * 1_000,
        lost_timeout: rules.lost_timeout_ms * 1_000,
        grace: rules.grace_secs * 1_000_000,
        max_matches,
        ..ServerConfig::default()
    }
}

/// 32 bytes from the operating system for tokens and match seeds.
pub(crate) fn os_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(seed)
}

/// `--room`, validated.
pub(crate) fn room(arg: Option<&str>) -> Result<Option<RoomName>> {
    arg.map(RoomName::new).transpose().map_err(|e| anyhow::anyhow!("invalid --room: {e}"))
}

/// Refuses a `--skill` outside 0 to 1.
pub(crate) fn check_skill(skill: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&skill) {
        bail!("--skill must be between 0 and 1, not {skill}");
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
