//! Crash recovery end to end (issue 8): a `pong server --db` process and four `pong bot`
//! processes over WebSockets; once points have been scored the server is killed with
//! SIGKILL, and started again on the same database. It takes the match back from its
//! journal, the bots (which kept trying to reconnect) prove their sessions with their
//! tokens, the match resumes after a pause and a countdown, and ends: every bot agrees with
//! the new server, the standings keep the lives lost before the crash, and
//! `pong replay --verify` re-runs the whole match, across the crash, bit for bit.
//!
//! It also measures what the crash lost: each bot logs how far the server went back (the
//! ticks it had seen that the journal had not kept), which the test prints and bounds.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    MATCH_LIMIT, PONG, Proc, Scratch, assert_agree, four_bots, free_port, num, reports, server,
};
use pong_domain::journal;
use pong_domain::proto::MatchId;
use pong_ports::EventStore;
use pong_store_sqlite::SqliteStore;

const LIVES: u8 = 3;

/// The lives of match 1 at the last tick the journal holds, read beside the running server.
fn journaled_lives(db: &Path) -> Option<(u32, [u8; 4])> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open_read_only(db).ok()?;
        let log = store.load(MatchId(1)).await.ok()?;
        let replay = journal::replay(MatchId(1), &log.records).unwrap();
        Some((replay.state().tick, replay.state().lives))
    })
}

#[test]
fn a_server_killed_mid_match_takes_it_back_and_the_bots_finish_it() {
    let started = Instant::now();
    let scratch = Scratch::new("crash");
    let db = scratch.path("matches.db");
    let db_arg = db.to_str().unwrap().to_owned();
    let listen = format!("127.0.0.1:{}", free_port());
    let url = format!("ws://{listen}");
    let lives = LIVES.to_string();
    // 500 ticks a second: fast, with room to kill the server mid-rally.
    let server_args = [
        "--listen",
        listen.as_str(),
        "--db",
        db_arg.as_str(),
        "--lives",
        lives.as_str(),
        "--tick-hz",
        "500",
    ];
    let mut first = server(&[], &server_args);
    let mut bots = four_bots(&["--server", url.as_str()], 0.6);
    first.wait_for_log("match started", MATCH_LIMIT);

    // Wait, reading the journal beside the server, until points have been scored.
    let full = 4 * LIVES;
    let deadline = Instant::now() + MATCH_LIMIT;
    let seen = loop {
        if let Some((tick, lives)) = journaled_lives(&db)
            && lives.iter().sum::<u8>() <= full - 2
        {
            break (tick, lives);
        }
        assert!(first.find_log("match over").is_none(), "the match ended before the crash");
        assert!(Instant::now() < deadline, "no points scored in time\n{}", first.tail(20));
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(150));
    assert!(first.find_log("match over").is_none(), "the match ended before the crash");
    first.kill();
    let killed = Instant::now();
    let (crash_tick, crash_lives) = journaled_lives(&db).unwrap();
    assert!(crash_tick >= seen.0, "the journal lost committed ticks");
    assert!(crash_lives.iter().sum::<u8>() <= full - 2);
    eprintln!("killed at journaled tick {crash_tick} with lives {crash_lives:?}");

    // Started again on the same database: the match comes back, the bots with it.
    let mut second = server(&[], &server_args);
    second.wait_for_log("took back a match", MATCH_LIMIT);
    let restarted = Instant::now();
    let reports = reports(&mut bots);
    let summary = assert_agree(&reports, &second);
    assert!(second.find_log("match started").is_none(), "the new server started the match over");
    assert_eq!(num(&reports[0], "match_id"), 1);
    for r in &reports {
        assert!(num(r, "pauses") >= 1, "a bot saw no pause: {r}");
        assert_eq!(num(r, "desyncs"), 0, "a bot disagreed with the server: {r}");
        // The lives lost before the crash are still lost.
        for s in r["standings"].as_array().unwrap() {
            let seat = usize::try_from(num(s, "player_id")).unwrap();
            assert!(num(s, "lives") <= u64::from(crash_lives[seat]), "{s} vs {crash_lives:?}");
        }
    }

    // What the crash lost: how far each bot saw the server go back.
    let mut lost = Vec::new();
    for b in &bots {
        if let Some(line) = b.find_log("the server went back") {
            let field = |k: &str| -> u64 {
                let at = line.text.find(&format!("{k}=")).unwrap() + k.len() + 1;
                line.text[at..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            assert_eq!(field("to_tick"), u64::from(crash_tick), "{}", line.text);
            lost.push(field("from_tick") - field("to_tick"));
        }
    }
    eprintln!("ticks lost in the crash, as each bot saw it (500 ticks/s): {lost:?}");
    // The writer commits every 20 ms: 10 ticks at 500 Hz. Generous for a loaded machine.
    assert!(lost.iter().all(|&n| n <= 250), "the crash lost too much: {lost:?} ticks");

    second.terminate();
    let mut replay =
        Proc::spawn("replay", &["replay", db_arg.as_str(), "--match", "1", "--verify"]);
    let (status, out) = replay.finish(Instant::now() + MATCH_LIMIT);
    assert!(status.success(), "replay --verify failed: {out}\n{}", replay.tail(20));
    assert!(out.contains("verified") && out.contains("1 server crash"), "{out}");
    eprintln!(
        "{summary}; down {:.1?}, match over {:.1?} after the restart, {:.1?} in all ({PONG})",
        restarted - killed,
        Instant::now() - restarted,
        started.elapsed()
    );
}
