//! End to end through RabbitMQ (issue 5, feature `rabbitmq`): a `pong server --transport
//! amqp` process and four `pong bot --transport amqp --json` processes, all talking only to
//! the broker named by `PONG_AMQP_URL`, finish a match and agree on standings and final
//! hash with each other and with the server.
//!
//! Without a broker this test fails under `CI=true` and is skipped loudly elsewhere. It
//! takes a shared hold on the broker (see `common::amqp::BrokerLock`), so the broker-restart
//! test of another `cargo test` run waits for it; and it asserts nothing a broker restart
//! would break (a pause and a resume are allowed), so it also survives a restart it was not
//! protected from.
#![cfg(feature = "rabbitmq")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::amqp::{BrokerLock, broker};
use common::{assert_agree, four_bots, reports, server, unique};

#[test]
fn four_bot_processes_finish_a_match_through_rabbitmq() {
    const TEST: &str = "four_bot_processes_finish_a_match_through_rabbitmq";
    let _hold = BrokerLock::shared(TEST);
    let Some(url) = broker(TEST) else { return };
    let started = Instant::now();
    // A server name of its own, so tests and games can share the broker.
    let name = unique("e2e-amqp");
    let transport = ["--transport", "amqp", "--amqp-url", url.as_str()];
    let server = server(&transport, &["--listen", &name]);
    let mut bots = four_bots(&[&transport[..], &["--server", &name]].concat(), 0.5);
    let reports = reports(&mut bots);
    let summary = assert_agree(&reports, &server);
    eprintln!("amqp: {summary}; {:.1?} in all", started.elapsed());
}
