//! What every broker test of this crate shares: the broker rules of all the workspace's
//! tests (`pong_tests::broker`: where the broker is, what to do when it is not there,
//! `rabbitmqctl`, the lock), plus unique names so tests can share one broker in parallel,
//! closing connections as an operator would, and logs.
// Each test binary includes this module and uses a different part of it.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

pub(crate) use pong_tests::broker::{
    BrokerLock, RestartGuard, rabbitmqctl, rabbitmqctl_or_skip, reachable,
};
use pong_transport_amqp::AmqpOptions;

/// The broker URL if the broker answers (see `pong_tests::broker::broker`), with logs on.
pub(crate) fn broker(test: &str) -> Option<String> {
    init_logs();
    pong_tests::broker::broker(test)
}

/// The broker URL if the broker answers and `rabbitmqctl` can reach it (for tests that
/// close connections or restart the broker); `None`, after saying so, if either is missing.
pub(crate) fn broker_with_rabbitmqctl(test: &str) -> Option<String> {
    let url = broker(test)?;
    rabbitmqctl_or_skip(test).then_some(url)
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

/// Options for a fresh, uniquely named server; its queues expire soon after a test ends.
pub(crate) fn options(tag: &str) -> AmqpOptions {
    AmqpOptions {
        server_queue_expires: Duration::from_secs(20),
        ..AmqpOptions::named(pong_tests::unique(&format!("test-{tag}")))
    }
}

/// Logs to the test output, `RUST_LOG` (default `warn`) choosing what.
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}
