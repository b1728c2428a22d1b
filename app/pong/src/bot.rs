//! `pong bot`: computer players against a server, or against an in-process one (`--local`).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use pong_domain::server::ServerCore;
use pong_runtime::bot::{BotOptions, run_bots};
use pong_runtime::client::ReconnectPolicy;
use pong_runtime::local::LocalServer;

use crate::cli::BotArgs;
use crate::{setup, transports};

pub(crate) async fn run(args: BotArgs) -> Result<ExitCode> {
    setup::check_skill(args.skill)?;
    let room = setup::room(args.room.as_deref())?;
    let opts = BotOptions {
        count: usize::from(args.count),
        skill: args.skill,
        players: args.players,
        room,
        name_prefix: args.name.clone(),
        seed: args.seed,
        policy: ReconnectPolicy {
            first_connect: Duration::from_secs(args.connect_timeout_secs),
            ..ReconnectPolicy::default()
        },
        session_file: args.session_file.clone(),
    };
    let (reports, local) = if args.local {
        // One match of everyone unless a size is asked for.
        let players = args.players.unwrap_or_else(|| args.count.clamp(2, 4) as u8);
        let config = setup::server_config(players, &args.rules, 10_000);
        let core = ServerCore::new(config, setup::os_seed()?);
        let local =
            LocalServer::start(core, |_| {}).context("cannot start the in-process server")?;
        let opts = BotOptions { players: Some(players), ..opts };
        (run_bots(local.connector(), &opts).await, Some(local))
    } else {
        let addr = args
            .server
            .clone()
            .unwrap_or_else(|| transports::default_server(args.transport.transport).to_owned());
        let connector = transports::connector(&args.transport, &addr)?;
        (run_bots(connector, &opts).await, None)
    };
    if let Some(local) = local {
        let _ = local.stop().await;
    }
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for r in reports {
        match r {
            Ok(report) => {
                if args.json {
                    writeln!(out, "{}", serde_json::to_string(&report)?)?;
                } else {
                    let winner = report
                        .winner
                        .map_or_else(|| "nobody (draw)".to_owned(), |w| format!("P{}", w + 1));
                    writeln!(
                        out,
                        "{} (P{}): match {} over at tick {}, winner {winner}, hash {} ({})",
                        report.name,
                        report.player_id + 1,
                        report.match_id,
                        report.ticks,
                        report.final_hash,
                        if report.final_hash == report.server_hash {
                            "agrees with the server"
                        } else {
                            "DIFFERS from the server"
                        },
                    )?;
                }
            }
            Err(e) => {
                failed += 1;
                tracing::error!("bot failed: {e}");
            }
        }
    }
    out.flush()?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
