//! The RabbitMQ broker the tests share: where it is, what to do when it is not there, a
//! lock that keeps a test that stops the broker from doing so under another test, and
//! `rabbitmqctl`. Used by the adapter's tests (`adapters/rabbitmq/tests`) and by the
//! end-to-end tests of the `pong` binary (`app/pong/tests`), so both follow one set of rules:
//!
//! - the URL comes from [`URL_VAR`] (default [`DEFAULT_URL`]);
//! - an unreachable broker fails the test under `CI=true` (naming the variable) and
//!   otherwise skips it with a loud message written past the test harness's capture, so a
//!   skip is never mistaken for a pass.
//!
//! Only the standard library: a test crate that does not link lapin can use it too.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::{Duration, Instant};

/// The variable naming the broker.
pub const URL_VAR: &str = "PONG_AMQP_URL";
/// The broker when [`URL_VAR`] is not set: the adapter's and the binary's default (the
/// adapter's tests check that they agree).
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// How long a test waits for another test's hold on the broker.
const LOCK_WAIT: Duration = Duration::from_secs(300);

/// The broker URL the tests use.
pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// Says loudly that a test is skipped, past the harness's output capture.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {why} ***\n");
}

/// The broker URL if the broker answers; `None` (after a loud skip message) if it does not
/// and this is not CI.
///
/// # Panics
/// Under `CI=true`, if the broker cannot be reached.
pub fn broker(test: &str) -> Option<String> {
    let url = url();
    match reachable(&url) {
        Ok(()) => Some(url),
        Err(reason) if under_ci() => panic!(
            "{test}: the RabbitMQ broker named by {URL_VAR} ({}) cannot be reached: {reason}. \
             CI=true, so this fails instead of skipping; start a broker with .ci/rabbitmq.sh \
             or point {URL_VAR} at one",
            shown(&url)
        ),
        Err(reason) => {
            skip(
                test,
                &format!(
                    "no RabbitMQ broker at {} ({reason}); set {URL_VAR} or run .ci/rabbitmq.sh",
                    shown(&url)
                ),
            );
            None
        }
    }
}

/// Whether `rabbitmqctl` works here (a test needs it to kill connections or restart the
/// broker); if not, skips loudly.
///
/// # Panics
/// Under `CI=true`, if it does not work.
pub fn rabbitmqctl_or_skip(test: &str) -> bool {
    match rabbitmqctl(&["status"]) {
        Ok(_) => true,
        Err(reason) if under_ci() => panic!("{test}: rabbitmqctl does not work: {reason}"),
        Err(reason) => {
            skip(test, &format!("rabbitmqctl does not work here: {reason}"));
            false
        }
    }
}

/// Runs `rabbitmqctl -q ARGS…`, returning its standard output.
///
/// # Errors
/// It cannot be run, or fails (the message holds its standard error).
pub fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let output = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "rabbitmqctl {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Starts the broker's app again when dropped while armed: a test that stops it
/// (`rabbitmqctl stop_app`) arms one first, so a failure half-way leaves the broker running.
#[derive(Debug)]
pub struct RestartGuard {
    /// Whether the app is (or may be) stopped.
    pub armed: bool,
}

impl Drop for RestartGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = rabbitmqctl(&["start_app"]);
        }
    }
}

/// `host` and `port` of `amqp[s]://[user[:password]@]host[:port][/vhost][?query]`.
///
/// # Errors
/// Not an `amqp://` or `amqps://` URL, or a bad port.
pub fn host_port(url: &str) -> Result<(String, u16), String> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| format!("{URL_VAR} is not a URL: {}", shown(url)))?;
    let default = match scheme {
        "amqp" => 5672,
        "amqps" => 5671,
        _ => return Err(format!("{URL_VAR} is not amqp:// or amqps://: {}", shown(url))),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            (host, port.parse().map_err(|_| format!("bad port in {URL_VAR}: {port}"))?)
        }
        _ => (host_port, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((if host.is_empty() { "localhost".to_owned() } else { host.to_owned() }, port))
}

/// Whether a TCP connection to the URL's host and port succeeds within 2 s.
///
/// # Errors
/// Why not: a bad URL, an unknown host, or the last address's connection error.
pub fn reachable(url: &str) -> Result<(), String> {
    let (host, port) = host_port(url)?;
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = "no address".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// The URL without its password, for messages.
pub fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}{}", &url[..start + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// A hold on the shared broker: many tests may hold it shared at once; a test that stops the
/// broker holds it exclusively. Tests inside one test binary run in parallel and test
/// binaries of one `cargo test` run one after another, but two `cargo test` runs on one
/// machine (two engineers, a CI run beside a developer) would otherwise overlap. Released
/// on drop (or when the process dies).
#[derive(Debug)]
pub struct BrokerLock(#[allow(dead_code)] File);

impl BrokerLock {
    /// A shared hold, for a test that only uses the broker.
    ///
    /// # Panics
    /// If the lock file cannot be opened or locked, or another test holds it exclusively
    /// for over 5 minutes.
    pub fn shared(test: &str) -> BrokerLock {
        Self::take(test, false)
    }

    /// An exclusive hold, for a test that stops the broker.
    ///
    /// # Panics
    /// As [`BrokerLock::shared`], when any other test holds it for over 5 minutes.
    pub fn exclusive(test: &str) -> BrokerLock {
        Self::take(test, true)
    }

    fn take(test: &str, exclusive: bool) -> BrokerLock {
        let path = std::env::temp_dir().join("pong-amqp-broker.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{test}: cannot open {}: {e}", path.display()));
        let start = Instant::now();
        let mut said = false;
        loop {
            let tried = if exclusive { file.try_lock() } else { file.try_lock_shared() };
            match tried {
                Ok(()) => return BrokerLock(file),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    panic!("{test}: cannot lock {}: {e}", path.display())
                }
            }
            if !said {
                // Past the capture, as a skip is: a test that waits minutes should say why.
                let _ = writeln!(
                    std::io::stderr(),
                    "{test}: waiting for another test's hold on the broker ({})",
                    path.display()
                );
                said = true;
            }
            assert!(
                start.elapsed() < LOCK_WAIT,
                "{test}: another test held {} for over {LOCK_WAIT:?}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_are_split_into_host_and_port() {
        assert_eq!(host_port(DEFAULT_URL), Ok(("127.0.0.1".to_owned(), 5672)));
        assert_eq!(host_port("amqp://u:p@broker.example:5673/v").map(|h| h.1), Ok(5673));
        assert_eq!(host_port("amqps://broker.example/v?heartbeat=5").map(|h| h.1), Ok(5671));
        assert_eq!(host_port("amqp://[::1]:5000/%2f"), Ok(("::1".to_owned(), 5000)));
        assert_eq!(host_port("amqp://[::1]/%2f"), Ok(("::1".to_owned(), 5672)));
        assert!(host_port("http://x").is_err());
    }
}
