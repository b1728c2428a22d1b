//! The browser frontend end to end (issue 13): a real `pong server` serves the page, and
//! Debian's Chromium, driven by playwright-core (`tests/browser/driver.mjs`), plays it
//! beside `pong bot` processes. Every player, page or bot, must report the same match as
//! the server.
//!
//! Needs Node.js, `chromium` (`/usr/bin/chromium`, or `CHROMIUM`) and playwright-core
//! (`npm ci` in `tests/browser`, run here when missing). Without them the tests are skipped
//! with a message, except under `CI=true`, where they fail; `.ci/run` installs them.
#![cfg(feature = "websocket")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Proc, assert_agree, bot, free_port, num, report_of, server};
use serde_json::{Value, json};

/// Slower than [`common::FAST_RULES`], so the pages play as people's browsers would; a
/// life or two keeps a match to seconds.
const RULES: &[&str] = &["--tick-hz", "120", "--countdown-ms", "500"];
const LIMIT: Duration = Duration::from_secs(120);

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser").canonicalize().unwrap()
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Node, Chromium and playwright-core are there (playwright-core installed if missing).
fn have_browser() -> bool {
    let dir = browser_dir();
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if node && !dir.join("node_modules/playwright-core").exists() {
        let _ = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status();
    }
    let missing: Vec<&str> = [
        (!node).then_some("node"),
        (!PathBuf::from(chromium()).exists()).then_some("chromium (apt-get install chromium)"),
        (!dir.join("node_modules/playwright-core").exists())
            .then_some("playwright-core (npm ci in tests/browser)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("the browser tests need {}", missing.join(", "));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}; required under CI=true");
    eprintln!("SKIPPED: {why}");
    false
}

/// The driver doing `plan`.
fn driver(plan: &Value) -> Proc {
    let script = browser_dir().join("driver.mjs");
    let plan = plan.to_string();
    Proc::spawn_program("chromium", "node", &[script.to_str().unwrap(), &plan])
}

/// The driver's JSON lines, once it exits successfully.
fn lines_of(driver: &mut Proc, deadline: Instant) -> Vec<Value> {
    let (status, out) = driver.finish(deadline);
    assert!(status.success(), "the driver failed ({status}): {out}\n{}", driver.tail(60));
    out.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A server for `players` with `lives` on a free port; its address.
fn start_server(players: &str, lives: &str) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut extra = vec!["--players", players, "--lives", lives];
    extra.extend_from_slice(RULES);
    (server(&["--listen", &addr], &extra), addr)
}

/// The pages' results: what `window.pongResult` held, checked against the `<pre>`.
fn page_results(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let result = l["result"].clone();
            let pre: Value = serde_json::from_str(l["pre"].as_str().unwrap()).unwrap();
            assert_eq!(pre, result, "the <pre> and window.pongResult differ");
            result
        })
        .collect()
}

/// Two pages report the same match as each other and as the server, without a desync.
fn assert_pages_agree(reports: &[Value]) {
    assert_eq!(reports.len(), 2, "{reports:#?}");
    for key in ["match_id", "standings", "winner", "ticks", "server_hash"] {
        assert_eq!(reports[0][key], reports[1][key], "{key} differs: {reports:#?}");
    }
    for r in reports {
        assert_eq!(r["final_hash"], r["server_hash"], "{r:#}");
        assert_eq!(num(r, "desyncs"), 0, "{r:#}");
    }
}

#[test]
fn two_pages_and_two_bots_play_one_match_and_agree_with_the_server() {
    if !have_browser() {
        return;
    }
    let (mut srv, addr) = start_server("4", "1");
    srv.wait_for_log("server listening", Duration::from_secs(20));
    let room = format!("web-{}", std::process::id());
    let query =
        |name: &str, seed: u32| format!("?name={name}&bot=0.8&players=4&room={room}&seed={seed}");
    let mut pages = driver(&json!({
        "mode": "results",
        "base": format!("http://{addr}"),
        "queries": [query("web1", 11), query("web2", 12)],
        "timeout_ms": LIMIT.as_millis() as u64,
    }));
    let url = format!("ws://{addr}");
    let mut bots: Vec<Proc> = (0..2)
        .map(|i| bot(i, &["--server", &url], 0.8, &["--players", "4", "--room", &room]))
        .collect();
    let deadline = Instant::now() + LIMIT;
    let mut reports = page_results(&lines_of(&mut pages, deadline));
    assert_eq!(reports.len(), 2);
    reports.extend(bots.iter_mut().map(|b| report_of(b, deadline)));
    eprintln!("{}", assert_agree(&reports, &srv));
    for r in &reports {
        assert_eq!(num(r, "desyncs"), 0, "{r:#}");
    }
    srv.terminate();
}

#[test]
fn a_key_press_moves_the_own_paddle_in_the_frame_that_follows_it() {
    if !have_browser() {
        return;
    }
    let (mut srv, addr) = start_server("2", "3");
    srv.wait_for_log("server listening", Duration::from_secs(20));
    let mut page = driver(&json!({
        "mode": "keys",
        "base": format!("http://{addr}"),
        "query": "?name=keys&players=2",
        "timeout_ms": LIMIT.as_millis() as u64,
    }));
    let url = format!("ws://{addr}");
    let mut other = bot(0, &["--server", &url], 0.5, &["--players", "2"]);
    let lines = lines_of(&mut page, Instant::now() + LIMIT);
    let (before, after) =
        (lines[0]["before"].as_f64().unwrap(), lines[0]["after"].as_f64().unwrap());
    assert!(after > before, "the paddle did not move in the next frame: {}", lines[0]);
    other.kill();
    srv.terminate();
}

/// A TCP relay whose connections can all be cut at once, as a dropped Wi-Fi cuts a
/// browser's: new connections go on being relayed.
struct Relay {
    addr: String,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let kept = streams.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                kept.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in
                    [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, streams }
    }

    /// Cuts every connection relayed so far.
    fn cut(&self) -> usize {
        let mut streams = self.streams.lock().unwrap();
        for s in streams.iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let n = streams.len() / 2;
        streams.clear();
        n
    }
}

#[test]
fn pages_whose_connections_are_cut_mid_match_take_their_seats_back() {
    if !have_browser() {
        return;
    }
    let (mut srv, addr) = start_server("2", "3");
    srv.wait_for_log("server listening", Duration::from_secs(20));
    let relay = Relay::to(addr.clone());
    let room = format!("cut-{}", std::process::id());
    let query =
        |name: &str, seed: u32| format!("?name={name}&bot=0.9&players=2&room={room}&seed={seed}");
    let mut pages = driver(&json!({
        "mode": "results",
        "base": format!("http://{}", relay.addr),
        "queries": [query("web1", 21), query("web2", 22)],
        "timeout_ms": LIMIT.as_millis() as u64,
    }));
    srv.wait_for_log("match started", LIMIT);
    std::thread::sleep(Duration::from_secs(2));
    let cut = relay.cut();
    assert!(cut >= 2, "only {cut} connections were relayed");
    let reports = page_results(&lines_of(&mut pages, Instant::now() + LIMIT));
    assert_pages_agree(&reports);
    for r in &reports {
        assert!(num(r, "resumes") >= 1, "the page did not take its seat back: {r:#}");
    }
    assert!(srv.find_log("player back").is_some(), "{}", srv.tail(40));
    srv.terminate();
}

#[test]
fn a_tab_frozen_in_the_background_mid_match_catches_up_without_a_desync() {
    if !have_browser() {
        return;
    }
    let (mut srv, addr) = start_server("2", "3");
    srv.wait_for_log("server listening", Duration::from_secs(20));
    let room = format!("frozen-{}", std::process::id());
    let query =
        |name: &str, seed: u32| format!("?name={name}&bot=0.9&players=2&room={room}&seed={seed}");
    let mut pages = driver(&json!({
        "mode": "results",
        "base": format!("http://{addr}"),
        "queries": [query("asleep", 31), query("awake", 32)],
        "freeze": {"page": 0, "after_ms": 1500, "for_ms": 5000},
        "timeout_ms": LIMIT.as_millis() as u64,
    }));
    let reports = page_results(&lines_of(&mut pages, Instant::now() + LIMIT));
    assert!(pages.find_log("page 0 woken").is_some(), "{}", pages.tail(20));
    // Five silent seconds are far past the server's patience: the match paused for the
    // frozen player and went on when it woke.
    assert!(srv.find_log("player lost").is_some(), "{}", srv.tail(40));
    assert!(srv.find_log("player back").is_some(), "{}", srv.tail(40));
    assert!(num(&reports[0], "pauses") >= 1, "{reports:#?}");
    assert_pages_agree(&reports);
    srv.terminate();
}

#[cfg(feature = "tls")]
#[test]
fn over_https_the_page_plays_over_wss() {
    if !have_browser() {
        return;
    }
    let scratch = common::Scratch::new("browser-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = scratch.write("cert.pem", &cert.cert.pem());
    let key_path = scratch.write("key.pem", &cert.signing_key.serialize_pem());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut extra = vec!["--players", "2", "--lives", "1"];
    extra.extend_from_slice(RULES);
    let tls = [
        "--listen",
        &listen,
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ];
    let mut srv = server(&tls, &extra);
    srv.wait_for_log("server listening", Duration::from_secs(20));
    let room = format!("tls-{}", std::process::id());
    let query = |name: &str| format!("?name={name}&bot=0.8&players=2&room={room}");
    let mut pages = driver(&json!({
        "mode": "results",
        "base": format!("https://localhost:{port}"),
        "queries": [query("tls1"), query("tls2")],
        "insecure": true,
        "timeout_ms": LIMIT.as_millis() as u64,
    }));
    let reports = page_results(&lines_of(&mut pages, Instant::now() + LIMIT));
    assert_pages_agree(&reports);
    srv.terminate();
}
