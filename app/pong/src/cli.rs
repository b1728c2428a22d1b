//! The command line: the contract users and scripts rely on (see docs/architecture.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Distributed Pong for 2, 3 or 4 players, kept consistent by an authoritative server.
#[derive(Debug, Parser)]
#[command(name = "pong", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// How log lines are written to stderr: `text` for people (coloured only on a
    /// terminal), `json` for log shippers (one object per line, with the span fields).
    /// `RUST_LOG` chooses what is logged.
    #[arg(long, global = true, value_enum, default_value = "text", env = "PONG_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a headless server hosting any number of matches.
    Server(ServerArgs),
    /// Run computer players against a server (or an in-process one with --local).
    Bot(BotArgs),
    /// Open the game window (`--local --bots 3`: an in-process server, three bots and you).
    Play(PlayArgs),
    /// List, verify or watch the matches a server journaled with --db.
    Replay(ReplayArgs),
}

/// How clients and server talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransportKind {
    /// WebSockets: the default; needs nothing else installed.
    Ws,
    /// RabbitMQ (AMQP 0-9-1) through a broker anywhere on the network.
    Amqp,
    /// ZeroMQ (ZMTP over TCP), brokerless.
    Zmq,
}

/// Options every transport-using command shares.
#[derive(Debug, Clone, Args)]
pub(crate) struct TransportArgs {
    /// Which transport to use.
    #[arg(long, value_enum, default_value = "ws", env = "PONG_TRANSPORT")]
    pub(crate) transport: TransportKind,
    /// The RabbitMQ broker (with --transport amqp).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f", env = "PONG_AMQP_URL")]
    pub(crate) amqp_url: String,
    /// A CA certificate (PEM) to trust for `wss://` servers, such as a self-signed one.
    #[arg(long)]
    pub(crate) tls_ca: Option<PathBuf>,
}

/// Rules a server applies to the matches it hosts.
#[derive(Debug, Clone, Args)]
pub(crate) struct RulesArgs {
    /// Lives per player (in a 2-player match: points to win).
    #[arg(long, default_value_t = pong_domain::rules::DEFAULT_LIVES, value_parser = clap::value_parser!(u8).range(1..=15))]
    pub(crate) lives: u8,
    /// Simulation ticks per second (physics is per tick: a higher rate plays faster).
    #[arg(long, default_value_t = pong_domain::rules::DEFAULT_TICK_HZ, value_parser = clap::value_parser!(u16).range(10..=2000))]
    pub(crate) tick_hz: u16,
    /// Countdown before a match starts or resumes, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub(crate) countdown_ms: u64,
    /// Silence after which a player is declared lost, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub(crate) lost_timeout_ms: u64,
    /// Time a lost player has to come back before it is out, in seconds.
    #[arg(long, default_value_t = 30)]
    pub(crate) grace_secs: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
    /// Where to listen: `0.0.0.0:7878` for ws, `tcp://0.0.0.0:7879` for zmq; for amqp, the
    /// server's name on the broker (several servers can share one broker).
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// Players per match when a client does not ask (2 to 4).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=4))]
    pub(crate) players: u8,
    #[command(flatten)]
    pub(crate) rules: RulesArgs,
    /// Serve `wss://` with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Most matches hosted at once.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_matches: usize,
    /// Journal every match in this SQLite file (created if needed), and on start take back
    /// the matches that were running when a server on it died (see docs/durability.md).
    #[arg(long, value_name = "PATH", env = "PONG_DB")]
    pub(crate) db: Option<PathBuf>,
    /// With --db: least time between two commits of the journal, in milliseconds (a crash
    /// loses about this much play).
    #[arg(long, default_value_t = 20, requires = "db", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) db_flush_ms: u64,
    /// With --db: `normal` survives the server being killed; `full` also syncs every commit
    /// to disk, to survive a power loss, at the cost of slower commits.
    #[arg(long, value_enum, default_value = "normal", requires = "db")]
    pub(crate) db_sync: DbSync,
    /// Also serve the HTTP endpoints (/metrics, /healthz, /status and the status page) on
    /// this address, e.g. `127.0.0.1:9100`. The WebSocket transport serves them on its own
    /// port as well; RabbitMQ and ZeroMQ servers have only this.
    #[arg(long, value_name = "ADDR", env = "PONG_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<String>,
    /// On Ctrl-C or SIGTERM, let the matches in play finish for up to this many seconds
    /// before stopping: /healthz answers 503 and joins are refused meanwhile. A second
    /// signal stops at once. 0 stops at once.
    #[arg(long, value_name = "SECS", default_value_t = 0, env = "PONG_DRAIN_SECS")]
    pub(crate) drain_secs: u64,
    /// A lobby that has not filled and started after this many seconds closes; its members
    /// are told so.
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) lobby_timeout_secs: u64,
    /// Most connections open at once from one IP address (ws, zmq); more are refused. Players
    /// behind one NAT address share it.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_links_per_address: u32,
    /// Most new matches (lobbies or rooms) one address may open per minute; joining an open
    /// one is always allowed. Over amqp, where no address is known, per connection.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) matches_per_minute_per_address: u32,
    /// A connection that holds no seat for this many seconds (it never joined, or its
    /// match is over) is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) join_timeout_secs: u64,
}

/// How hard the journal's commits work to survive a crash (`--db-sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DbSync {
    /// Survives a killed process.
    Normal,
    /// Survives a power loss too.
    Full,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The event store: an SQLite file written by `pong server --db` (it may be running).
    pub(crate) db: PathBuf,
    /// The match to show, verify or watch (the list gives the ids).
    #[arg(long = "match", value_name = "ID")]
    pub(crate) match_id: Option<u32>,
    /// Re-run the match (every finished match without --match) from its journal, checking
    /// every tick's hash and the final standings; exits non-zero on any difference.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Show the match in the game window (the `gui` feature).
    #[arg(long, requires = "match_id", conflicts_with = "verify")]
    pub(crate) watch: bool,
    /// Playback speed of --watch (1 is real time).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) speed: f64,
    /// Print one JSON object per match on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write a consistent copy of the store to this new file (safe while a server writes).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["match_id", "verify", "watch"])]
    pub(crate) backup: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BotArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
    /// The server: `ws://HOST:7878`, `tcp://HOST:7879` (zmq), or the server's name on the
    /// broker (amqp).
    #[arg(long)]
    pub(crate) server: Option<String>,
    /// Run an in-process server too, over the memory transport (ignores --transport).
    #[arg(long)]
    pub(crate) local: bool,
    /// How many bots this process runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub(crate) count: u16,
    /// Bot skill from 0 (hopeless) to 1 (very good; still misses sometimes).
    #[arg(long, default_value_t = 0.7)]
    pub(crate) skill: f64,
    /// Match size to ask for (2 to 4); the server's default if not given. With --local,
    /// also the in-process server's default.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=4))]
    pub(crate) players: Option<u8>,
    /// Play in a named room.
    #[arg(long)]
    pub(crate) room: Option<String>,
    /// Bot names are this followed by a number.
    #[arg(long, default_value = "bot")]
    pub(crate) name: String,
    /// Varies the bots' mistakes.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print one JSON line per bot on stdout when its match ends.
    #[arg(long)]
    pub(crate) json: bool,
    /// Keep the first bot's session in this file: a bot started again with the same file
    /// takes its seat back (within the server's grace period).
    #[arg(long)]
    pub(crate) session_file: Option<PathBuf>,
    /// How long to keep trying to reach the server, in seconds.
    #[arg(long, default_value_t = 30)]
    pub(crate) connect_timeout_secs: u64,
    /// Rules of the in-process server (with --local).
    #[command(flatten)]
    pub(crate) rules: RulesArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PlayArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
    /// The server: `ws://HOST:7878`, `tcp://HOST:7879` (zmq), or the server's name on the
    /// broker (amqp).
    #[arg(long)]
    pub(crate) server: Option<String>,
    /// Your name, as the other players see it.
    #[arg(long, default_value = "Player")]
    pub(crate) name: String,
    /// Match size to ask for (2 to 4); the server's default if not given. With --local,
    /// the in-process match's size (default: you and the bots).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=4))]
    pub(crate) players: Option<u8>,
    /// Play in a named room.
    #[arg(long)]
    pub(crate) room: Option<String>,
    /// Play on an in-process server against bots (ignores --transport and --server).
    #[arg(long)]
    pub(crate) local: bool,
    /// With --local: how many bots (1 to 3; default: enough to fill the match).
    #[arg(long, requires = "local", value_parser = clap::value_parser!(u8).range(1..=3))]
    pub(crate) bots: Option<u8>,
    /// With --local: the bots' skill from 0 (hopeless) to 1 (very good).
    #[arg(long, default_value_t = 0.6)]
    pub(crate) skill: f64,
    /// How long to keep trying to reach the server, in seconds.
    #[arg(long, default_value_t = 10)]
    pub(crate) connect_timeout_secs: u64,
    /// Save a PNG of the window to this file when --exit-after has passed, then quit.
    #[arg(long, requires = "exit_after")]
    pub(crate) screenshot: Option<PathBuf>,
    /// Quit after this many seconds (for scripts and demos).
    #[arg(long)]
    pub(crate) exit_after: Option<f64>,
    /// Open with the network overlay shown (round trip, jitter, lead, corrections, resent
    /// ticks, traffic); F3 shows or hides it.
    #[arg(long)]
    pub(crate) net_overlay: bool,
    /// Rules of the in-process server (with --local).
    #[command(flatten)]
    pub(crate) rules: RulesArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
