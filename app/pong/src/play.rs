//! `pong play`: the game window (the `gui` feature), against a server or, with `--local`,
//! against bots on an in-process server over the memory transport.
//!
//! Bevy runs on the main thread (windowing needs it); the in-process server and the bots run
//! on the binary's tokio runtime; the window's own link runs on the client plugin's thread.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::PlayArgs;

/// Opens the window; returns when it closes.
#[cfg(feature = "gui")]
pub(crate) fn run(args: PlayArgs, runtime: &tokio::runtime::Runtime) -> Result<ExitCode> {
    use std::time::Duration;

    use anyhow::{Context, bail};
    use pong_client::WindowOptions;
    use pong_domain::client::ClientConfig;
    use pong_domain::proto::Name;
    use pong_domain::server::ServerCore;
    use pong_runtime::bot::BotOptions;
    use pong_runtime::local::LocalServer;

    use crate::{setup, transports};

    setup::check_skill(args.skill)?;
    let name = Name::new(&args.name).map_err(|e| anyhow::anyhow!("invalid --name: {e}"))?;
    let room = setup::room(args.room.as_deref())?;
    let mut local = None;
    let (connector, players) = if args.local {
        let bots = args.bots.unwrap_or_else(|| args.players.map_or(1, |p| p - 1));
        let players = args.players.unwrap_or(bots + 1);
        if bots + 1 != players {
            bail!(
                "an in-process match of {players} players needs {} bots, not {bots} (--local has no other way in)",
                players - 1
            );
        }
        let _guard = runtime.enter();
        let core =
            ServerCore::new(setup::server_config(players, &args.rules, 16), setup::os_seed()?);
        let server =
            LocalServer::start(core, |_| {}).context("cannot start the in-process server")?;
        let connector = server.connector();
        let opts = BotOptions {
            count: usize::from(bots),
            skill: args.skill,
            players: Some(players),
            room: room.clone(),
            name_prefix: "bot".into(),
            seed: setup::os_seed()?.iter().fold(0u64, |a, b| a.rotate_left(8) ^ u64::from(*b)),
            ..BotOptions::default()
        };
        let bots = runtime.spawn(bots_forever(connector.clone(), opts));
        tracing::info!(players, "in-process server started; bots are joining");
        local = Some((server, bots));
        (connector, Some(players))
    } else {
        let addr = args
            .server
            .clone()
            .unwrap_or_else(|| transports::default_server(args.transport.transport).to_owned());
        (transports::connector(&args.transport, &addr)?, args.players)
    };
    let mut config = ClientConfig::new(name);
    config.players = players;
    config.room = room;
    let mut options = WindowOptions::new(connector, config);
    options.policy.first_connect = Duration::from_secs(args.connect_timeout_secs);
    options.screenshot = args.screenshot.clone();
    options.exit_after = args.exit_after.map(Duration::from_secs_f64);
    options.net_overlay = args.net_overlay;
    let exit = pong_client::run(options);
    if let Some((server, bots)) = local {
        bots.abort();
        let _ = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), server.stop()).await });
    }
    Ok(if exit.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Bots that play match after match, so a rematch finds them waiting in the lobby.
#[cfg(feature = "gui")]
async fn bots_forever(
    connector: std::sync::Arc<dyn pong_ports::Connector>,
    opts: pong_runtime::bot::BotOptions,
) {
    loop {
        let reports = pong_runtime::bot::run_bots(connector.clone(), &opts).await;
        let failed = reports.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            tracing::debug!(failed, "local bots stopped; starting again");
        }
        let pause = if failed == reports.len() { 1000 } else { 100 };
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
}

/// Without the `gui` feature there is no window to open.
#[cfg(not(feature = "gui"))]
pub(crate) fn run(_args: PlayArgs, _runtime: &tokio::runtime::Runtime) -> Result<ExitCode> {
    anyhow::bail!("the game window is not compiled into this binary: rebuild with `--features gui`")
}
