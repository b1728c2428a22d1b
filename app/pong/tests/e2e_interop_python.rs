//! A client in another language, from the spec alone (issue 18): `tests/interop/pong_player.py`
//! is a Python player written from docs/protocol.md and nothing else. Here it checks every
//! example frame of the document, then plays real matches over WebSockets on a real
//! `pong server` against `pong bot` processes, and every player must report the same match.
//!
//! The rules are slowed to 120 ticks a second (not the 1000 of [`common::FAST_RULES`]) so
//! that the Python player plays as a real client would; one or two lives keep each match to
//! seconds. It needs the `websockets` package: installed with pip if missing; if that fails
//! the matches are skipped with a message, except under `CI=true`, where they fail.
#![cfg(feature = "websocket")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, bot, free_port, num, report_of, server, text};
use pong_tests::python::{have_module, python};
use serde_json::Value;

/// The slower rules of these matches (the server's `--players` and `--lives` come per test).
const RULES: &[&str] = &["--tick-hz", "120", "--countdown-ms", "500"];

/// How long one match may take, processes' start to exit. Matches here take 3–16 s on an
/// idle machine; the Python player gives up a little earlier ([`PY_TIMEOUT`]) with a message.
const LIMIT: Duration = Duration::from_secs(60);
const PY_TIMEOUT: &str = "50";

fn script() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/pong_player.py");
    path.canonicalize().unwrap().to_string_lossy().into_owned()
}

/// The `websockets` package (its sync client), installed if missing.
fn have_websockets() -> bool {
    have_module("websockets.sync.client", "websockets")
}

/// A Python player: `--name NAME --seed SEED` and `extra`, against `url`.
fn python_player(name: &str, seed: u32, url: &str, extra: &[&str]) -> Proc {
    let (script, seed) = (script(), seed.to_string());
    let mut args =
        vec![script.as_str(), "--server", url, "--name", name, "--seed", &seed, "--skill", "0.6"];
    args.extend_from_slice(&["--timeout", PY_TIMEOUT]);
    args.extend_from_slice(extra);
    Proc::spawn_program(name, &python(), &args)
}

/// A `pong server` on a free port for `players` with `lives`, and its `ws://` URL.
fn start_server(players: &str, lives: &str) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut extra = vec!["--players", players, "--lives", lives];
    extra.extend_from_slice(RULES);
    (server(&["--listen", &addr], &extra), format!("ws://{addr}"))
}

fn field<'a>(report: &'a Value, key: &str) -> &'a Value {
    report.get(key).unwrap_or_else(|| panic!("no {key:?} in {report}"))
}

/// Every report describes one match the same way, and the same as the server: one match
/// id, different seats, each name at its seat, the same standings, winner, last tick and
/// hashes; every player's own hash of the final state is the server's; nobody saw a
/// desync. Returns a one-line summary.
fn assert_agree(reports: &[Value], server: &Proc, players: usize) -> String {
    assert_eq!(reports.len(), players, "expected {players} reports: {reports:#?}");
    let first = &reports[0];
    for r in reports {
        for key in ["match_id", "standings", "winner", "ticks", "server_hash", "final_hash"] {
            assert_eq!(field(r, key), field(first, key), "{key} differs:\n{reports:#?}");
        }
        assert_eq!(text(r, "final_hash"), text(r, "server_hash"), "final state differs: {r:#}");
        assert_eq!(num(r, "desyncs"), 0, "a player saw a desync: {r:#}");
    }
    let seats: BTreeSet<u64> = reports.iter().map(|r| num(r, "player_id")).collect();
    assert_eq!(seats.len(), players, "the players do not hold different seats: {reports:#?}");
    let standings = field(first, "standings").as_array().unwrap();
    assert_eq!(standings.len(), players, "one standing per player expected: {first:#}");
    for r in reports {
        let seat = usize::try_from(num(r, "player_id")).unwrap();
        assert_eq!(text(&standings[seat], "name"), text(r, "name"), "name and seat: {r:#}");
    }
    let ticks = num(first, "ticks");
    let winner =
        field(first, "winner").as_u64().map_or("none".to_owned(), |w| format!("P{}", w + 1));
    let over =
        format!("match over match_id=m{} tick={ticks} winner={winner}", num(first, "match_id"));
    assert!(server.find_log(&over).is_some(), "the server did not log {over:?}");
    format!("match over at tick {ticks}, winner {winner}, hash {}", text(first, "final_hash"))
}

/// The Python player computed the final state's hash itself (from a keyframe, by the
/// document's rule) and checked some keyframes against their ticks' hashes.
fn assert_checked_hashes(py: &Proc) {
    assert!(
        py.find_log("no keyframe of the final state").is_none(),
        "[{}] reported its last tick's hash, not one of its own\n{}",
        py.name,
        py.tail(20)
    );
    let line = py.find_log("keyframes against their ticks' hashes").unwrap().text;
    let checked: u64 = line
        .split("checked ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(checked > 0, "[{}] checked no keyframe: {line}", py.name);
}

#[test]
fn the_python_player_agrees_with_every_example_frame_of_the_document() {
    // Only the standard library: any Python 3 will do (have_module finds or refuses one).
    if !have_module("json", "json") {
        return;
    }
    let out = Command::new(python()).args([&script(), "--self-test"]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the self-test failed:\n{log}");
    assert!(log.contains("all agree"), "{log}");
    eprintln!("{}", log.trim());
}

#[test]
fn a_python_player_finishes_a_match_against_a_bot() {
    if !have_websockets() {
        return;
    }
    let started = Instant::now();
    let (server, url) = start_server("2", "2");
    let mut py = python_player("py-1", 1, &url, &["--players", "2"]);
    let mut bot = bot(0, &["--server", &url], 0.3, &["--players", "2"]);
    let deadline = started + LIMIT;
    let reports = vec![report_of(&mut py, deadline), report_of(&mut bot, deadline)];
    let summary = assert_agree(&reports, &server, 2);
    for r in &reports {
        assert_eq!((num(r, "pauses"), num(r, "resumes")), (0, 0), "undisturbed: {r:#}");
    }
    assert_checked_hashes(&py);
    eprintln!("python vs bot: {summary}; {:.1?} in all", started.elapsed());
}

#[test]
fn two_python_players_and_two_bots_finish_a_four_player_match() {
    if !have_websockets() {
        return;
    }
    let started = Instant::now();
    let (server, url) = start_server("4", "1");
    let mut players = [
        python_player("py-1", 1, &url, &["--players", "4"]),
        python_player("py-2", 2, &url, &["--players", "4"]),
        bot(0, &["--server", &url], 0.3, &["--players", "4"]),
        bot(1, &["--server", &url], 0.3, &["--players", "4"]),
    ];
    let deadline = started + LIMIT;
    let reports: Vec<Value> = players.iter_mut().map(|p| report_of(p, deadline)).collect();
    let summary = assert_agree(&reports, &server, 4);
    for r in &reports {
        assert_eq!((num(r, "pauses"), num(r, "resumes")), (0, 0), "undisturbed: {r:#}");
    }
    assert_checked_hashes(&players[0]);
    assert_checked_hashes(&players[1]);
    eprintln!("2 python + 2 bots: {summary}; {:.1?} in all", started.elapsed());
}

/// Resume by the document: the Python player closes its link at tick 120 (1 s in; no
/// 2-life match ends before tick ~220) and takes its seat back (`Resume` → `Challenge` →
/// `Prove` numbered from `next_seq`, `Resync`, `Ready` in the pause); the match pauses for
/// both players, resumes and ends in agreement.
#[test]
fn a_python_player_that_drops_its_link_takes_its_seat_back() {
    if !have_websockets() {
        return;
    }
    let started = Instant::now();
    let (server, url) = start_server("2", "2");
    let mut py = python_player("py-1", 3, &url, &["--players", "2", "--drop-link-at-tick", "120"]);
    let mut bot = bot(0, &["--server", &url], 0.3, &["--players", "2"]);
    let deadline = started + LIMIT;
    let reports = vec![report_of(&mut py, deadline), report_of(&mut bot, deadline)];
    let summary = assert_agree(&reports, &server, 2);
    assert_eq!(num(&reports[0], "resumes"), 1, "the Python player was not resumed once");
    for r in &reports {
        assert!(num(r, "pauses") >= 1, "the drop paused nobody: {r:#}");
    }
    assert!(server.find_log("player back").is_some(), "the server saw nobody come back");
    assert_checked_hashes(&py);
    eprintln!("python resumed: {summary}; {:.1?} in all", started.elapsed());
}
