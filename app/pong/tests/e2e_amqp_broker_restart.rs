//! A match through RabbitMQ survives a broker restart (issue 5, feature `rabbitmq`): in the
//! middle of a match between a `pong server --transport amqp` process and four `pong bot`
//! processes, the broker's app is stopped (`rabbitmqctl stop_app`) and started again
//! (`rabbitmqctl start_app`). The match pauses at once (the server's transport reports its
//! peers gone when it loses the broker); every bot loses its link and reconnects, the
//! server's transport reconnects, the match resumes and finishes, and all four bots still
//! agree with each other and with the server, each having seen at least one pause and got
//! its seat back at least once. The server's `/healthz` (on `--metrics-listen`) answers 503
//! while its broker is gone and 200 again once it has reconnected (issue 16).
//!
//! This stops the whole broker, so it lives alone in its test binary (cargo runs test
//! binaries one after another) and holds the broker exclusively (`common::amqp::BrokerLock`)
//! against the e2e tests of another `cargo test` run on the same machine. Anything else using
//! the broker at that moment loses its connections too. It needs `rabbitmqctl` on this
//! machine; without it or a broker it fails under `CI=true` and is skipped loudly elsewhere.
//! A guard starts the broker's app again if the test fails half-way.
#![cfg(feature = "rabbitmq")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::amqp::{BrokerLock, RestartGuard, broker, rabbitmqctl, rabbitmqctl_or_skip, reachable};
use common::{MATCH_LIMIT, assert_agree, four_bots, free_port, num, reports, server, unique};

/// Polls `GET /healthz` on `addr` until it answers `status`; returns the body.
fn wait_for_health(addr: &str, status: u16, limit: Duration) -> String {
    use std::io::{Read, Write};
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        if let Ok(mut tcp) = std::net::TcpStream::connect(addr) {
            let _ = write!(tcp, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            last.clear();
            let _ = tcp.read_to_string(&mut last);
            if last.starts_with(&format!("HTTP/1.1 {status} ")) {
                return last.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("/healthz did not answer {status} within {limit:?}; last answer: {last:?}");
}

/// Generous: a broker app takes a second or two to start, more on a busy machine.
const RESTART_WAIT: Duration = Duration::from_secs(90);

#[test]
fn a_match_pauses_through_a_broker_restart_then_resumes_and_finishes_in_agreement() {
    const TEST: &str = "a_match_pauses_through_a_broker_restart";
    let _hold = BrokerLock::exclusive(TEST);
    let Some(url) = broker(TEST) else { return };
    if !rabbitmqctl_or_skip(TEST) {
        return;
    }
    let started = Instant::now();
    let name = unique("e2e-amqp-restart");
    let transport = ["--transport", "amqp", "--amqp-url", url.as_str()];
    // The match must still be running when the broker goes down, which takes `stop_app`
    // 0.5 to 2.5 s here. Three lives and good players: every sampled match lasted over
    // 6,000 ticks (6 s at 1000 Hz).
    let ops = format!("127.0.0.1:{}", free_port());
    let mut server =
        server(&transport, &["--listen", &name, "--lives", "3", "--metrics-listen", &ops]);
    let mut bots = four_bots(&[&transport[..], &["--server", &name]].concat(), 0.8);
    let match_started = server.wait_for_log("match started", MATCH_LIMIT).at;
    std::thread::sleep(Duration::from_millis(100));

    let mut guard = RestartGuard { armed: true };
    let stopping = Instant::now();
    rabbitmqctl(&["stop_app"]).unwrap_or_else(|e| panic!("{e}"));
    let stopped = Instant::now();
    assert!(reachable(&url).is_err(), "the broker still accepts connections after stop_app");
    assert!(server.find_log("match over").is_none(), "the match ended before the broker stopped");
    // Down for a moment, as in a real restart: long enough for the health check to see it.
    let unhealthy = wait_for_health(&ops, 503, Duration::from_secs(10));
    assert!(unhealthy.contains("broker"), "{unhealthy}");
    rabbitmqctl(&["start_app"]).unwrap_or_else(|e| panic!("{e}"));
    rabbitmqctl(&["await_startup"]).unwrap_or_else(|e| panic!("{e}"));
    guard.armed = false;
    let wait_start = Instant::now();
    while reachable(&url).is_err() {
        assert!(wait_start.elapsed() < RESTART_WAIT, "the broker did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    let back = Instant::now();

    let reconnected =
        server.wait_for_log_after("reconnected to the broker", stopping, RESTART_WAIT).at;
    let paused = server.wait_for_log_after("match paused", stopping, RESTART_WAIT).at;
    // At once: the server's transport reports every peer gone when it loses the broker, so
    // the match does not play on without anyone's input until the lost timeout (1.5 s).
    assert!(
        paused < stopped + Duration::from_secs(1),
        "the match paused only {:?} after the broker stopped",
        paused - stopped
    );
    wait_for_health(&ops, 200, Duration::from_secs(10));
    let resuming = server.wait_for_log_after("match resuming", paused, MATCH_LIMIT).at;
    let reports = reports(&mut bots);
    let summary = assert_agree(&reports, &server);
    for r in &reports {
        assert!(num(r, "pauses") >= 1, "a bot saw no pause through a broker restart: {r:#}");
        assert!(num(r, "resumes") >= 1, "a bot never got its seat back: {r:#}");
    }
    eprintln!(
        "amqp broker restart: {summary}; from the match start: stop_app {:.1?}..{:.1?}, broker \
         back {:.1?}, server reconnected {:.1?}, paused {:.1?}, resuming {:.1?}; {:.1?} in all",
        stopping - match_started,
        stopped - match_started,
        back - match_started,
        reconnected - match_started,
        paused - match_started,
        resuming - match_started,
        started.elapsed()
    );
}
