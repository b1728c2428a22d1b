//! `pong server`: hosts matches until interrupted (Ctrl-C or SIGTERM).

use std::process::ExitCode;

use anyhow::{Context, Result};
use pong_domain::server::{ServerConfig, ServerCore};

use crate::cli::{RulesArgs, ServerArgs};
use crate::{journal, transports};

/// The server configuration the rule options describe.
pub(crate) fn config(players: u8, rules: &RulesArgs, max_matches: usize) -> ServerConfig {
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

pub(crate) async fn run(args: ServerArgs) -> Result<ExitCode> {
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| transports::default_listen(args.transport.transport).to_owned());
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(transports::ServerTls { cert: cert.clone(), key: key.clone() })
        }
        _ => None,
    };
    let mut config = config(args.players, &args.rules, args.max_matches);
    config.record_ticks = args.db.is_some();
    let mut core = ServerCore::new(config, os_seed()?);
    // The journal first: matches that were running when a server on it died come back
    // before anyone can connect.
    let store = match &args.db {
        Some(path) => Some(journal::open_and_restore(path, args.db_sync, &mut core).await?),
        None => None,
    };
    let transport = transports::server(&args.transport, &listen, tls)
        .await
        .with_context(|| format!("cannot start the server on {listen}"))?;
    match store {
        Some(store) => {
            let flush = std::time::Duration::from_millis(args.db_flush_ms);
            journal::serve_journaled(core, transport, store, flush).await?;
        }
        None => {
            pong_runtime::server::serve(core, transport, shutdown_signal(), |_| {}).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
