//! `pong`: the Distributed Pong binary — a headless server, bots, and (with the `gui`
//! feature) the game window. See `pong --help` and the README.
//!
//! # Layout
//! - `cli`: the command line.
//! - `transports`: command-line choices → concrete transports (cargo features).
//! - `server`, `bot`, `play`: the commands (`play` opens the window with the `gui` feature).
//! - `setup`: what the commands share: the server configuration from the rule options, OS
//!   randomness, `--room`/`--skill` checks, the shutdown signal.
//! - `logging`: the log format (`--log-format`, colours only on a terminal).
//! - `journal`: `pong server --db`: the event store, restoring matches, recording.
//! - `replay`: lists, verifies and watches journaled matches (`pong replay DB`); `watch`
//!   plays a journaled match back to the game window.
//! - `web`: the browser frontend's files (built from `app/web`, embedded), served on the
//!   game's port.

mod bot;
mod cli;
mod journal;
mod logging;
mod play;
mod replay;
mod server;
mod setup;
mod transports;
mod web;
// Drives the playback host of `pong replay --watch`, which needs the game window.
#[cfg(feature = "gui")]
mod watch;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        // The window needs the main thread; the runtime serves its in-process server and bots.
        cli::Command::Play(args) => play::run(args, &runtime),
        cli::Command::Server(args) => runtime.block_on(server::run(args)),
        cli::Command::Bot(args) => runtime.block_on(bot::run(args)),
        // `--watch` opens the window, which needs the main thread.
        cli::Command::Replay(args) => replay::run(args, &runtime),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
