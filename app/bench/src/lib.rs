//! Benchmarks and load tools of Distributed Pong (issue 9). The binaries are the tools; this
//! library is what they share. Results and how to read them: `docs/benchmarks.md`.
//!
//! # Binaries
//! - `rtt`: the round trip of one small frame through each transport compiled in, three ways
//!   in one run: the bare library, the adapter echoing, and the adapter carrying a signed
//!   `Ping` to a real `ServerCore` run by `pong_runtime::server::serve` and its `Pong` back.
//! - `input_latency`: from a bot setting a new intent to another member's `ClientCore`
//!   showing that paddle moving, per transport, at 60 Hz.
//! - `loadtest`: many matches at once against one in-process server (over any transport):
//!   ticks per second achieved, tick duration, snapshot delay, CPU per match, memory per
//!   connection; `--sweep` runs one process per match count and prints the table.
//! - `alloc_profile`: where the whole server thread allocates per tick in steady state, by
//!   layer (transport, driver, core), over the memory transport.
//! - `step_cost`: a fixed number of 4-player simulation steps, to be counted under
//!   callgrind.
//! - `soak`: a real `pong server` process under long churn, then agreement, journal and
//!   stability checks.
//!
//! # Modules
//! - [`stats`]: exact samples and a lock-free histogram, percentiles.
//! - [`transports`]: opening each transport on loopback.
//! - [`raw`]: the bare-library echoes.
//! - [`session`]: a bare protocol session (join, sign) for probes and load clients.
//! - [`timed`]: a transport decorator that times the server loop from outside.
//! - [`load`]: the load clients (lightweight and full) and the snapshot-delay observer.
//! - [`fixture`]: a sans-IO server with many running matches, for the server benchmark and
//!   the allocation test.
//! - [`procstat`]: CPU time and memory from `/proc`.
//! - [`soak`]: the soak's server process, players and checks.

pub mod fixture;
pub mod load;
pub mod procstat;
pub mod raw;
pub mod session;
pub mod soak;
pub mod stats;
pub mod timed;
pub mod transports;

/// The parser of a count option that must be at least 1 (`--frames`, `--seconds`, …), so a
/// zero is refused by clap with the usual message.
#[must_use]
pub fn at_least_one<T>() -> clap::builder::RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    clap::builder::RangedU64ValueParser::from(1..)
}

/// Installs a `tracing` subscriber writing to stderr (`RUST_LOG`, default `warn`), so that
/// the tools' reports on stdout stay clean.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
