//! What an operator sees of a real `pong server` (issue 16): its Prometheus metrics scraped
//! twice during a real match and read by the reference parser (Python's
//! `prometheus_client`), on the WebSocket port and on `--metrics-listen`; `/healthz`, the
//! `/status` document and the status page; and a drain: on SIGTERM with `--drain-secs`,
//! health turns 503, a new player is refused, the match in play finishes and the server
//! then stops by itself.
//!
//! `prometheus_client` is installed with pip if it is missing. If that fails the scrape
//! test is skipped with a message, except under `CI=true`, where it fails.
#![cfg(feature = "websocket")]
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{MATCH_LIMIT, assert_agree, bot, four_bots, free_port, reports, server};
use futures_util::SinkExt;
use pong_tests::python::{have_module, python};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A plain HTTP/1.1 GET; returns the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    get_accepting(addr, path, "*/*")
}

/// `GET path` with an `Accept` header (a browser sends `text/html,…`).
fn get_accepting(addr: &str, path: &str, accept: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{reply:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, body.to_owned())
}

fn have_parser() -> bool {
    have_module("prometheus_client.parser", "prometheus_client")
}

/// The exposition parsed by Python's `prometheus_client`: family name → {type, samples}.
fn parse(text: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ops/parse_metrics.py");
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the reference parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample `name` with `labels` (all of them, as `key=value`).
fn sample(families: &Value, family: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = families[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family}: {families}"));
    samples
        .iter()
        .find(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v))
        .and_then(|s| s[2].as_f64())
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {family}: {samples:?}"))
}

/// Opens a WebSocket link and sends it frames that do not decode.
fn send_garbage(port: u16, frames: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let addr = format!("127.0.0.1:{port}");
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut ws, _) =
            tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp).await.unwrap();
        for i in 0..frames {
            ws.send(Message::binary(vec![0xff, 0xfe, u8::try_from(i % 200).unwrap()]))
                .await
                .unwrap();
        }
        ws.close(None).await.ok();
    });
}

#[test]
fn metrics_scraped_twice_during_a_match_parse_with_the_reference_parser_and_move() {
    if !have_parser() {
        return;
    }
    let port = free_port();
    let ops = format!("127.0.0.1:{}", free_port());
    let ws = format!("127.0.0.1:{port}");
    // Good players and four lives: the match runs for seconds, long enough for two scrapes.
    let mut server = server(&["--listen", &ws], &["--lives", "4", "--metrics-listen", &ops]);
    let mut bots = four_bots(&["--server", &format!("ws://{ws}")], 0.9);
    server.wait_for_log("match started", MATCH_LIMIT);
    // The driver publishes once a second.
    std::thread::sleep(Duration::from_millis(1200));
    let (status, first) = get(&ws, "/metrics");
    assert_eq!(status, 200, "{first}");
    send_garbage(port, 5);
    std::thread::sleep(Duration::from_millis(1200));
    let (status, second) = get(&ops, "/metrics");
    assert_eq!(status, 200, "{second}");
    let (one, two) = (parse(&first), parse(&second));

    for (family, kind) in [
        ("pong_matches", "gauge"),
        ("pong_links", "gauge"),
        ("pong_ticks", "counter"),
        ("pong_tick_duration_seconds", "histogram"),
        ("pong_frames_received", "counter"),
        ("pong_frames_sent", "counter"),
        ("pong_bytes_sent", "counter"),
        ("pong_frames_refused", "counter"),
        ("pong_bounds_reached", "counter"),
        ("pong_joins_refused", "counter"),
        ("pong_pauses", "counter"),
        ("pong_forfeits", "counter"),
        ("pong_resyncs", "counter"),
        ("pong_overruns", "counter"),
        ("pong_journal_queue_depth", "gauge"),
        ("pong_journal_commit_seconds", "histogram"),
        // An info metric is a gauge of 1 in the Prometheus text format.
        ("pong_build_info", "gauge"),
    ] {
        assert_eq!(two[family]["type"], kind, "{family} in {two}");
    }
    let ticks = |f: &Value| sample(f, "pong_ticks", "pong_ticks_total", &[]);
    assert!(
        ticks(&two) > ticks(&one),
        "pong_ticks_total did not grow: {} then {}",
        ticks(&one),
        ticks(&two)
    );
    assert!(ticks(&one) > 0.0);
    let running = [("phase", "running")];
    assert_eq!(sample(&one, "pong_matches", "pong_matches", &running), 1.0);
    assert!(sample(&one, "pong_links", "pong_links", &[("transport", "websocket")]) >= 4.0);
    let malformed = [("cause", "malformed")];
    let refused =
        |f: &Value| sample(f, "pong_frames_refused", "pong_frames_refused_total", &malformed);
    assert_eq!(refused(&one), 0.0);
    assert!(refused(&two) >= 5.0, "garbage frames not counted: {}", refused(&two));
    let sent = |f: &Value| sample(f, "pong_bytes_sent", "pong_bytes_sent_total", &[]);
    assert!(sent(&two) > sent(&one));
    let busy = sample(&two, "pong_tick_duration_seconds", "pong_tick_duration_seconds_count", &[]);
    assert!(busy > 100.0, "tick durations not observed: {busy}");

    // Health and status while the match runs.
    assert_eq!(get(&ws, "/healthz"), (200, "ok\n".to_owned()));
    let (status, json) = get(&ops, "/status");
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["transport"], "websocket");
    assert_eq!(report["healthy"], true);
    let matches = report["matches"].as_array().unwrap();
    let playing =
        matches.iter().find(|m| m["phase"] == "running").unwrap_or_else(|| panic!("{json}"));
    let players = playing["players"].as_array().unwrap();
    assert_eq!(players.len(), 4);
    assert!(
        players
            .iter()
            .all(|p| p["name"].as_str().unwrap().starts_with("bot-")
                && p["lives"].as_u64().is_some())
    );
    // On the game's port `/` is the game; a browser asking for /status gets the status page,
    // which the operators' port also serves at `/`.
    let (status, game) = get(&ws, "/");
    assert_eq!(status, 200);
    assert!(game.contains("pong_web.js"), "{game}");
    for (addr, path) in [(&ws, "/status"), (&ops, "/")] {
        let (status, page) = get_accepting(addr, path, "text/html,application/xhtml+xml,*/*;q=0.8");
        assert_eq!(status, 200);
        assert!(page.contains("bot-a1") && page.contains("running"), "{page}");
    }
    assert_eq!(get(&ops, "/nope").0, 404);

    let reports = reports(&mut bots);
    assert_agree(&reports, &server);
}

#[test]
fn a_draining_server_is_unhealthy_refuses_newcomers_and_stops_when_its_match_is_over() {
    let port = free_port();
    let ws = format!("127.0.0.1:{port}");
    let mut server = server(&["--listen", &ws], &["--lives", "4", "--drain-secs", "60"]);
    let mut bots = four_bots(&["--server", &format!("ws://{ws}")], 0.9);
    server.wait_for_log("match started", MATCH_LIMIT);
    assert_eq!(get(&ws, "/healthz").0, 200);
    let signalled = Instant::now();
    server.sigterm();
    server.wait_for_log("draining", Duration::from_secs(10));
    let (status, why) = get(&ws, "/healthz");
    assert_eq!((status, why.as_str()), (503, "draining\n"));
    // A newcomer is told, not seated.
    let mut late = bot(4, &["--server", &format!("ws://{ws}")], 0.9, &[]);
    let (exit, _) = late.finish(Instant::now() + Duration::from_secs(30));
    assert!(!exit.success(), "a bot joined a draining server");
    assert!(late.find_log("shutting down").is_some(), "{}", late.tail(20));
    // The match in play finishes, in agreement, and then the server stops on its own.
    let reports = reports(&mut bots);
    assert_agree(&reports, &server);
    let (exit, _) = server.finish(Instant::now() + Duration::from_secs(30));
    assert!(exit.success(), "{}", server.tail(20));
    assert!(server.find_log("drain over").is_some());
    assert!(signalled.elapsed() < Duration::from_secs(60), "the server waited out its whole drain");
}
