//! The match journal: whole matches played by bots over the simulated network (see
//! `pong_domain::testing`) are journaled from the server's events and re-run with [`verify`]; a journal
//! altered in any way that matters is refused with the error that names the change.

#![allow(clippy::unwrap_used)]

use pong_domain::PlayerId;
use pong_domain::bot::Bot;
use pong_domain::journal::{JournalError, Record, RecoveredMatch, verify};
use pong_domain::proto::MatchId;
use pong_domain::server::ServerConfig;
use pong_domain::sim::Intent;
use pong_domain::testing::{Latency, MS, SECOND, SimNet, player};

/// A finished match's journal.
fn played(players: u8, seed: u8, kill_one: bool) -> Vec<Record> {
    let config = ServerConfig {
        default_players: players,
        lives: 2,
        record_ticks: true,
        grace: 3 * SECOND,
        countdown: SECOND,
        ..ServerConfig::default()
    };
    let mut net = SimNet::new(config, seed);
    for i in 0..players {
        let bot = Bot::new(PlayerId::ALL[0], 600, u64::from(i) * 7 + u64::from(seed));
        net.add_client(
            player(&format!("p{i}"), players),
            Some(bot),
            Latency::wan(15, 5),
            u64::from(i) * 30 * MS,
        );
    }
    if kill_one {
        net.run_until(net.now + 6 * SECOND, |_| false);
        net.clients[0].dead = true;
    }
    net.run_until(net.now + 3600 * SECOND, |n| n.all_finished());
    net.server.handle_timeout(net.server_now() + 60 * SECOND);
    net.flush();
    net.take_journal(MatchId(1))
}

fn tick_indices(j: &[Record]) -> Vec<usize> {
    j.iter().enumerate().filter(|(_, r)| matches!(r, Record::Tick { .. })).map(|(i, _)| i).collect()
}

#[test]
fn finished_matches_verify() {
    for (players, seed, kill) in
        [(2u8, 1u8, false), (3, 2, false), (4, 3, false), (3, 4, true), (2, 5, true)]
    {
        let j = played(players, seed, kill);
        assert!(matches!(j.last(), Some(Record::Closed)));
        let v = verify(MatchId(1), &j).unwrap();
        assert_eq!(v.config.players, players);
        assert_eq!(v.restarts, 0);
        assert!(v.ticks > 100);
        if kill {
            assert!(j.iter().any(|r| matches!(r, Record::Forfeit { .. })));
            assert!(
                v.result
                    .standings
                    .iter()
                    .any(|s| s.reason == Some(pong_domain::OutReason::Forfeit))
            );
        }
        // Nothing to recover from a finished match.
        assert_eq!(RecoveredMatch::rebuild(MatchId(1), &j).err(), Some(JournalError::AlreadyOver));
    }
}

#[test]
fn an_altered_journal_is_refused() {
    let j = played(3, 7, true);
    verify(MatchId(1), &j).unwrap();
    let ticks = tick_indices(&j);

    // A recorded hash changed.
    let mut bad = j.clone();
    let i = ticks[ticks.len() / 2];
    if let Record::Tick { hash, .. } = &mut bad[i] {
        *hash ^= 1;
    }
    assert!(matches!(verify(MatchId(1), &bad), Err(JournalError::HashMismatch { .. })));

    // Inputs changed: every intent of one player reversed from some tick on.
    let mut bad = j.clone();
    for &i in &ticks[ticks.len() / 3..] {
        if let Record::Tick { input, .. } = &mut bad[i] {
            input.intents[1] = match input.intents[1] {
                Intent::Plus => Intent::Minus,
                Intent::Minus => Intent::Plus,
                Intent::Stop => Intent::Plus,
            };
        }
    }
    assert!(matches!(verify(MatchId(1), &bad), Err(JournalError::HashMismatch { .. })));

    // A tick missing.
    let mut bad = j.clone();
    bad.remove(ticks[10]);
    assert!(matches!(verify(MatchId(1), &bad), Err(JournalError::TickGap { .. })));

    // A forfeit the journal never announced, or one it announced and the tick lacks.
    let mut bad = j.clone();
    if let Record::Tick { input, .. } = &mut bad[ticks[20]] {
        input.forfeit = 0b10;
    }
    assert!(matches!(verify(MatchId(1), &bad), Err(JournalError::ForfeitMismatch { .. })));
    let mut bad = j.clone();
    bad.retain(|r| !matches!(r, Record::Forfeit { .. }));
    assert!(matches!(verify(MatchId(1), &bad), Err(JournalError::ForfeitMismatch { .. })));

    // The result changed: the standings, the winner, the final hash.
    let over = j.iter().position(|r| matches!(r, Record::Over { .. })).unwrap();
    for change in 0..3 {
        let mut bad = j.clone();
        if let Record::Over { result } = &mut bad[over] {
            match change {
                0 => result.standings[0].lives ^= 1,
                1 => result.winner = None,
                _ => result.final_hash.0 ^= 1 << 40,
            }
        }
        assert!(
            matches!(verify(MatchId(1), &bad), Err(JournalError::ResultMismatch(_))),
            "change {change}"
        );
    }

    // Cut short: no result.
    let mut bad = j.clone();
    bad.truncate(over);
    assert_eq!(verify(MatchId(1), &bad).err(), Some(JournalError::NoResult));

    // Not a journal at all.
    assert_eq!(verify(MatchId(1), &[]).err(), Some(JournalError::Empty));
    assert!(matches!(verify(MatchId(1), &j[1..]), Err(JournalError::NotCreatedFirst { index: 0 })));
    let mut bad = j.clone();
    bad.insert(5, j[0].clone());
    assert!(matches!(verify(MatchId(1), &bad), Err(JournalError::NotCreatedFirst { index: 5 })));

    // A pause at another tick than the replay's.
    let mut bad = j.clone();
    let pause = bad.iter().position(|r| matches!(r, Record::Paused { .. })).unwrap();
    if let Record::Paused { tick } = &mut bad[pause] {
        *tick += 1;
    }
    assert!(matches!(verify(MatchId(1), &bad), Err(JournalError::PauseMismatch { .. })));
}
