//! Where and how the binary logs: to stderr (stdout stays for machine-readable output such
//! as `bot --json`), as text for people or as JSON lines for log shippers, with what is
//! logged chosen by `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber.
pub(crate) fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(colour()).init(),
        // The span list carries the fields of every span the event happened in (the match,
        // the peer), which a log shipper indexes like the event's own.
        LogFormat::Json => logs.json().with_current_span(false).with_span_list(true).init(),
    }
}

/// Colours are for a person at a terminal: a file or a pipe gets plain text, and so does
/// anyone who sets `NO_COLOR` (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
