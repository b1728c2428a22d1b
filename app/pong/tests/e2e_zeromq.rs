//! End to end over ZeroMQ (issue 6, feature `zeromq`): a `pong server --transport zmq`
//! process and four `pong bot --transport zmq --json` processes finish a match in agreement;
//! and a bot process killed mid-match (SIGKILL, nothing said to the server) is reported to
//! the other players within the protocol's lost timeout (their match pauses), and, started
//! again with its session file (`--session-file`: its token), takes its seat back; the match
//! then finishes with all four in agreement.
#![cfg(feature = "zeromq")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    MATCH_LIMIT, Proc, Scratch, assert_agree, assert_undisturbed, bot, four_bots, free_port, num,
    report_of, reports, server, wait_for_file,
};

#[test]
fn four_bot_processes_finish_a_match_over_zeromq() {
    let started = Instant::now();
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let server = server(&["--transport", "zmq", "--listen", &endpoint], &[]);
    let mut bots = four_bots(&["--transport", "zmq", "--server", &endpoint], 0.5);
    let reports = reports(&mut bots);
    let summary = assert_agree(&reports, &server);
    assert_undisturbed(&reports);
    eprintln!("zmq: {summary}; {:.1?} in all", started.elapsed());
}

/// The server's `--lost-timeout-ms` (its default, given explicitly): how long a silent
/// member may stay silent before the match pauses for it.
const LOST_TIMEOUT: Duration = Duration::from_millis(1500);
/// Scheduling slack on a loaded machine, on top of [`LOST_TIMEOUT`].
const SLACK: Duration = Duration::from_millis(1000);

/// The seat (`P1`…`P4`) a bot logged it was given.
fn seat_logged(bot: &Proc) -> String {
    let line = bot.find_log("seated").unwrap_or_else(|| panic!("{}", bot.tail(20)));
    let seat = line.text.split_whitespace().find_map(|w| w.strip_prefix("player="));
    seat.unwrap_or_else(|| panic!("no seat in {:?}", line.text)).to_owned()
}

#[test]
fn a_killed_bot_is_reported_to_the_others_and_takes_its_seat_back_when_restarted() {
    let started = Instant::now();
    let scratch = Scratch::new("zmq-kill");
    let session = scratch.path("victim.session");
    let session_arg = session.to_str().unwrap();
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let lost_ms = LOST_TIMEOUT.as_millis().to_string();
    let mut server =
        server(&["--transport", "zmq", "--listen", &endpoint], &["--lost-timeout-ms", &lost_ms]);
    let transport = ["--transport", "zmq", "--server", &endpoint];
    // Good players: nobody is out (two misses) in the first 0.4 s of play in any run seen.
    let victim_args = ["--session-file", session_arg];
    let mut victim = bot(0, &transport, 0.8, &victim_args);
    let mut others: Vec<Proc> = (1..4).map(|i| bot(i, &transport, 0.8, &[])).collect();
    let match_started = server.wait_for_log("match started", MATCH_LIMIT).at;
    wait_for_file(&session, Duration::from_secs(5));
    let seat = seat_logged(&victim);
    std::thread::sleep(Duration::from_millis(200));

    let killed = Instant::now();
    victim.kill();
    assert!(server.find_log("match over").is_none(), "the match ended before the kill");
    let lost = server.wait_for_log_after("player lost", killed, LOST_TIMEOUT + SLACK);
    assert!(lost.text.contains(&format!("player={seat}")), "someone else was lost: {}", lost.text);
    let mut noticed = Vec::new();
    for other in &mut others {
        let paused = other.wait_for_log_after("match paused", killed, LOST_TIMEOUT + SLACK);
        noticed.push(paused.at - killed);
    }

    // The same bot again (name, seed, skill), with the session file the first one wrote.
    let restarted = Instant::now();
    let mut again = bot(0, &transport, 0.8, &victim_args);
    let seated = again.wait_for_log("seated", MATCH_LIMIT);
    assert!(seated.text.contains("resumed=true"), "not resumed: {}", seated.text);
    let resuming = server.wait_for_log_after("match resuming", restarted, MATCH_LIMIT).at;

    let deadline = Instant::now() + MATCH_LIMIT;
    let back = report_of(&mut again, deadline);
    let mut all = vec![back];
    all.extend(reports(&mut others));
    let summary = assert_agree(&all, &server);
    assert_eq!(
        format!("P{}", num(&all[0], "player_id") + 1),
        seat,
        "a different seat: {:#}",
        all[0]
    );
    assert!(num(&all[0], "resumes") >= 1, "the restarted bot did not resume: {:#}", all[0]);
    for r in &all[1..] {
        assert!(num(r, "pauses") >= 1, "a bot saw no pause for the killed one: {r:#}");
    }
    eprintln!(
        "zmq kill -9 and restart: {summary}; from the match start: killed {:.1?}, server \
         declared {seat} lost {:.1?} later, the others paused {noticed:.1?} later, restarted \
         {:.1?}, seated {:.1?}, resuming {:.1?}; {:.1?} in all",
        killed - match_started,
        lost.at - killed,
        restarted - match_started,
        seated.at - match_started,
        resuming - match_started,
        started.elapsed()
    );
}
