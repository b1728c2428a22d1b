//! `pong server`: hosts matches until interrupted (Ctrl-C or SIGTERM; with `--drain-secs`
//! the matches in play finish first), with its HTTP endpoints (metrics, health, status) on
//! the WebSocket port and on `--metrics-listen`, and the browser frontend on the WebSocket
//! port.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use pong_domain::server::ServerCore;
use pong_http::{HttpListener, HttpOptions, HttpService};
use pong_runtime::server::ServeOptions;
use pong_runtime::telemetry::{ServerInfo, Telemetry};

use crate::cli::ServerArgs;
use crate::web::WebFrontend;
use crate::{journal, setup, transports};

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
    let telemetry = Telemetry::new(ServerInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        transport: transports::name(args.transport.transport).to_owned(),
    });
    // The operators' endpoints alone on --metrics-listen; the game's port also serves the
    // browser frontend.
    let http = HttpService::new(telemetry.clone());
    let game_http = HttpService::new(WebFrontend::new(telemetry.clone()));
    let mut config = setup::server_config(args.players, &args.rules, args.max_matches);
    config.record_ticks = args.db.is_some();
    config.lobby_timeout = args.lobby_timeout_secs.saturating_mul(1_000_000);
    config.max_links_per_address = args.max_links_per_address;
    config.matches_per_minute_per_address = args.matches_per_minute_per_address;
    config.join_timeout = args.join_timeout_secs.saturating_mul(1_000_000);
    let mut core = ServerCore::new(config, setup::os_seed()?);
    // The journal first: matches that were running when a server on it died come back
    // before anyone can connect.
    let store = match &args.db {
        Some(path) => Some(journal::open_and_restore(path, args.db_sync, &mut core).await?),
        None => None,
    };
    let _metrics_listener = match &args.metrics_listen {
        Some(addr) => Some(
            HttpListener::bind(addr, http.clone(), HttpOptions::default())
                .await
                .with_context(|| format!("cannot serve the HTTP endpoints on {addr}"))?,
        ),
        None => None,
    };
    let transport = transports::server(
        &args.transport,
        &listen,
        tls,
        Some(game_http),
        args.max_links_per_address,
    )
    .await
    .with_context(|| format!("cannot start the server on {listen}"))?;
    let options = ServeOptions {
        telemetry: Some(telemetry),
        drain: Duration::from_secs(args.drain_secs),
        // Polled only once the drain has begun, so it waits for the next signal.
        stop_now: Some(Box::pin(setup::shutdown_signal())),
    };
    match store {
        Some(store) => {
            let flush = Duration::from_millis(args.db_flush_ms);
            journal::serve_journaled(
                core,
                transport,
                store,
                flush,
                setup::shutdown_signal(),
                options,
            )
            .await?;
        }
        None => {
            pong_runtime::server::serve_with(
                core,
                transport,
                setup::shutdown_signal(),
                |_| {},
                options,
            )
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
