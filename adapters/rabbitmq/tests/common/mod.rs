//! What every broker test of this crate shares: where the broker is and what to do when it
//! is not there, unique names so tests can share one broker in parallel, `rabbitmqctl`, logs.
//!
//! The broker URL comes from `PONG_AMQP_URL` (default [`DEFAULT_URL`]). When the broker
//! cannot be reached, a test fails under `CI=true` (naming the variable) and otherwise is
//! skipped with a message written straight to stderr, past the test harness's capture, so a
//! skip is never mistaken for a pass.
#![allow(dead_code, clippy::print_stderr)]

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::Duration;

use pong_transport_amqp::{AmqpOptions, DEFAULT_URL};

/// The variable naming the broker.
pub(crate) const URL_VAR: &str = "PONG_AMQP_URL";

/// The broker URL the tests use.
pub(crate) fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// Says loudly that a test is skipped, past the harness's output capture.
pub(crate) fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {why} ***\n");
}

/// The broker URL if the broker answers; `None` (after a loud skip message) if it does not
/// and this is not CI. Under `CI=true` an unreachable broker fails the test.
pub(crate) fn broker(test: &str) -> Option<String> {
    init_logs();
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

/// `rabbitmqctl` is needed (to kill connections or restart the broker): fails under CI if it
/// is missing, else skips loudly.
pub(crate) fn rabbitmqctl_or_skip(test: &str) -> bool {
    match rabbitmqctl(&["status"]) {
        Ok(_) => true,
        Err(reason) if under_ci() => panic!("{test}: rabbitmqctl does not work: {reason}"),
        Err(reason) => {
            skip(test, &format!("rabbitmqctl does not work here: {reason}"));
            false
        }
    }
}

/// Runs `rabbitmqctl` with `args` (quietly), returning its standard output.
pub(crate) fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
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

/// Closes the broker connection whose `connection_name` is `name`, as an operator would.
pub(crate) fn kill_connection(name: &str) -> Result<(), String> {
    // `user_provided_name` is not a column before RabbitMQ 3.11; the client properties hold
    // the name on every version, as `{"connection_name",longstr,"<name>"}`.
    let listing = rabbitmqctl(&["list_connections", "pid", "client_properties"])?;
    let quoted = format!("\"{name}\"");
    let pid = listing
        .lines()
        .find(|line| line.contains(&quoted))
        .and_then(|line| line.split('\t').next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no connection named {name} among:\n{listing}"))?;
    rabbitmqctl(&["close_connection", &pid, "killed by a test"]).map(drop)
}

/// Closes the broker connections whose `connection_name` starts with `prefix` (at least one).
pub(crate) fn kill_connection_named_like(prefix: &str) -> Result<(), String> {
    let listing = rabbitmqctl(&["list_connections", "pid", "client_properties"])?;
    let quoted = format!("\"{prefix}");
    let pids: Vec<&str> = listing
        .lines()
        .filter(|line| line.contains(&quoted))
        .filter_map(|line| line.split('\t').next())
        .collect();
    if pids.is_empty() {
        return Err(format!("no connection named {prefix}… among:\n{listing}"));
    }
    for pid in pids {
        rabbitmqctl(&["close_connection", pid, "killed by a test"])?;
    }
    Ok(())
}

/// A hold on the shared broker, the same lock file as `app/pong/tests`: tests that stop the
/// broker hold it exclusively, so they wait for (and hold off) the end-to-end tests of another
/// `cargo test` run on this machine. Released on drop.
pub(crate) struct BrokerLock(#[allow(dead_code)] std::fs::File);

impl BrokerLock {
    /// An exclusive hold, for a test that stops the broker; waits up to 5 minutes.
    pub(crate) fn exclusive(test: &str) -> BrokerLock {
        let path = std::env::temp_dir().join("pong-amqp-broker.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{test}: cannot open {}: {e}", path.display()));
        let start = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return BrokerLock(file),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    panic!("{test}: cannot lock {}: {e}", path.display())
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "{test}: another test held {} for over 5 minutes",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// True if a TCP connection to the URL's host and port succeeds within 2 s.
pub(crate) fn reachable(url: &str) -> Result<(), String> {
    let uri: lapin::uri::AMQPUri = url.parse().map_err(|e| format!("{URL_VAR} is invalid: {e}"))?;
    let addrs = (uri.authority.host.as_str(), uri.authority.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", uri.authority.host))?;
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
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}{}", &url[..start + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// A server name no other test (in this run or any other) uses, so tests can share a broker.
pub(crate) fn server_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("test-{tag}-{}-{}-{nanos:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Options for a fresh, uniquely named server; its queues expire soon after a test ends.
pub(crate) fn options(tag: &str) -> AmqpOptions {
    AmqpOptions {
        server_queue_expires: Duration::from_secs(20),
        ..AmqpOptions::named(server_name(tag))
    }
}

/// Logs to the test output, `RUST_LOG` (default `warn`) choosing what.
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}
