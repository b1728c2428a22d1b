//! Crash recovery at the domain level: bots play over the simulated network (see `pong_domain::testing`),
//! the server dies mid-match with the tail of its journal lost, a new server rebuilds the
//! match from what was kept ([`RecoveredMatch::rebuild`], [`ServerCore::restore`]), the
//! clients come back with their tokens and the match ends with the points scored before the
//! crash. The whole journal, across the restart, then verifies.

#![allow(clippy::unwrap_used)]

use pong_domain::PlayerId;
use pong_domain::bot::Bot;
use pong_domain::client::ClientPhase;
use pong_domain::journal::{Record, RecoveredMatch, verify};
use pong_domain::proto::{MatchId, MatchOver};
use pong_domain::server::{ServerConfig, ServerCore};
use pong_domain::testing::{Latency, MS, SECOND, SimNet, player};

fn config(players: u8) -> ServerConfig {
    ServerConfig {
        default_players: players,
        lives: 3,
        record_ticks: true,
        countdown: SECOND,
        ..ServerConfig::default()
    }
}

/// Kills the server once points were scored, keeps all but the last `lost` records of the
/// journal, and restarts on the rest.
fn crash_and_restore(
    net: &mut SimNet,
    config: &ServerConfig,
    journal: &mut Vec<Record>,
    lost: usize,
    seed: u8,
) -> u32 {
    let mid = MatchId(1);
    journal.extend(net.take_journal(mid));
    journal.truncate(journal.len().saturating_sub(lost));
    let rm = RecoveredMatch::rebuild(mid, journal).unwrap();
    let tick = rm.tick();
    let mut core = ServerCore::new(config.clone(), [seed; 32]);
    // A new process: its clock starts at zero.
    core.restore(0, rm).unwrap();
    net.restart_server(core);
    tick
}

fn run(players: u8, seed: u8, lost: &[usize]) -> (MatchOver, Vec<Record>, Vec<[u8; 4]>) {
    let config = config(players);
    let mut net = SimNet::new(config.clone(), seed);
    for i in 0..players {
        let bot = Bot::new(PlayerId::ALL[0], 700, u64::from(i) + u64::from(seed));
        net.add_client(
            player(&format!("bot{i}"), players),
            Some(bot),
            Latency::wan(20, 5),
            u64::from(i) * 50 * MS,
        );
    }
    let full = 3 * players;
    let mut journal = Vec::new();
    let mut lives_at_crash = Vec::new();
    for (k, &lost) in lost.iter().enumerate() {
        // Run until one more point has been scored since the last crash.
        let target = full - 1 - k as u8;
        net.run_until(net.now + 600 * SECOND, |n| {
            n.server.match_state(MatchId(1)).is_some_and(|s| s.lives.iter().sum::<u8>() <= target)
        });
        // A little more, so the crash is mid-rally.
        net.run_until(net.now + 700 * MS, |_| false);
        assert!(!net.all_finished(), "the match ended before the crash");
        let tick = crash_and_restore(
            &mut net,
            &config,
            &mut journal,
            lost,
            seed.wrapping_add(100 + k as u8),
        );
        let state = *net.server.match_state(MatchId(1)).unwrap();
        assert_eq!(state.tick, tick);
        lives_at_crash.push(state.lives);
    }
    net.run_until(net.now + 3600 * SECOND, |n| n.all_finished());
    journal.extend(net.take_journal(MatchId(1)));
    let mut result = None;
    for c in &net.clients {
        match c.core.phase() {
            ClientPhase::Over { result: r, final_hash } => {
                assert_eq!(
                    *final_hash, r.final_hash.0,
                    "a client's final state differs from the server's"
                );
                result.get_or_insert_with(|| r.clone());
                assert_eq!(result.as_ref(), Some(r));
            }
            other => panic!("a client did not finish: {other:?}"),
        }
        assert_eq!(c.core.desyncs(), 0, "a client disagreed with the server");
        assert!(c.core.pauses() as usize >= lost.len());
    }
    (result.unwrap(), journal, lives_at_crash)
}

#[test]
fn a_match_survives_a_server_crash_with_its_points() {
    for (players, seed, lost) in [(2u8, 1u8, 0usize), (2, 2, 7), (3, 3, 25), (4, 4, 3), (4, 5, 30)]
    {
        let (result, journal, at_crash) = run(players, seed, &[lost]);
        // Points scored before the crash count: nobody ends with more lives than it had then.
        let crash = at_crash[0];
        assert!(crash.iter().sum::<u8>() < 3 * players);
        for s in &result.standings {
            assert!(
                s.lives <= crash[s.player.index()],
                "{players}p seed {seed}: {s:?} vs {crash:?}"
            );
        }
        let v = verify(MatchId(1), &journal).unwrap();
        assert_eq!(v.result, result);
        assert_eq!(v.restarts, 1);
    }
}

#[test]
fn a_match_survives_two_crashes() {
    let (result, journal, at_crash) = run(3, 9, &[4, 11]);
    let v = verify(MatchId(1), &journal).unwrap();
    assert_eq!(v.result, result);
    assert_eq!(v.restarts, 2);
    for s in &result.standings {
        assert!(s.lives <= at_crash[1][s.player.index()]);
    }
}
