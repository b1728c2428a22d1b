//! Issue 8's replay tests on real matches: bots play 100 seeded matches against the real
//! `ServerCore` over the domain's simulated network (`pong_domain::testing`), every server
//! event is journaled into an SQLite store in batches of every size, and each
//! match read back re-runs bit for bit ([`journal::verify`]) to the result the server
//! announced. Then the file is damaged every way we can think of — bytes flipped, pages
//! zeroed, cut short — and reading it gives a clear error, never a panic, and never a
//! verification of anything but the original journal.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use pong_domain::PlayerId;
use pong_domain::bot::Bot;
use pong_domain::journal::{self, Record};
use pong_domain::proto::{MatchId, MatchOver};
use pong_domain::server::ServerConfig;
use pong_domain::testing::{Latency, MS, SECOND, SimNet, player};
use pong_ports::{Entry, EventStore, StoreError};
use pong_store_sqlite::SqliteStore;

/// Plays match `n` (id `n`) to its end; returns its journal and the server's result.
fn play(n: u32) -> (Vec<Record>, MatchOver) {
    let players = 2 + (n % 3) as u8;
    let config = ServerConfig {
        default_players: players,
        lives: 1 + (n % 2) as u8,
        tick_hz: [60, 120, 240][(n % 3) as usize],
        record_ticks: true,
        countdown: SECOND / 2,
        grace: 2 * SECOND,
        ..ServerConfig::default()
    };
    let mut net = SimNet::new(config, (n % 251) as u8);
    net.server.reserve_match_ids(MatchId(n - 1));
    for i in 0..players {
        let bot =
            Bot::new(PlayerId::ALL[0], 500 + 100 * u16::from(i), u64::from(n) * 10 + u64::from(i));
        let latency = Latency::wan(5 + u64::from(n % 40), u64::from(n % 7));
        net.add_client(
            player(&format!("p{n}-{i}"), players),
            Some(bot),
            latency,
            u64::from(i) * 20 * MS,
        );
    }
    // Some matches lose a player for a while (a pause), some for good (a forfeit).
    if n % 5 == 1 {
        net.run_until(net.now + 4 * SECOND, |_| false);
        net.clients[0].cut = true;
        net.run_until(net.now + SECOND, |_| false);
        net.clients[0].cut = false;
    } else if n % 5 == 3 {
        net.run_until(net.now + 4 * SECOND, |_| false);
        net.clients[1].dead = true;
    }
    net.run_until(net.now + 3600 * SECOND, |n| n.all_finished());
    let mut result = None;
    let journal = net
        .server_events
        .iter()
        .filter_map(|(_, e)| {
            let (m, r) = e.record()?;
            if let Record::Over { result: r } = r {
                result = Some(r.clone());
            }
            Some((m, r.clone()))
        })
        .map(|(m, r)| {
            assert_eq!(m, MatchId(n));
            r
        })
        .collect();
    (journal, result.unwrap())
}

/// Interleaves journals into batches of every size, as a busy server's writer would.
fn batches(journals: &BTreeMap<u32, Vec<Record>>) -> Vec<Vec<Entry>> {
    let mut cursors: BTreeMap<u32, usize> = journals.keys().map(|&k| (k, 0)).collect();
    let mut out = Vec::new();
    let mut size = 1usize;
    while !cursors.is_empty() {
        let mut batch = Vec::new();
        for _ in 0..size {
            let Some((&id, _)) = cursors.iter().nth(batch.len() % cursors.len().max(1)) else {
                break;
            };
            let at = cursors[&id];
            batch.push(Entry { match_id: MatchId(id), record: journals[&id][at].clone() });
            if at + 1 == journals[&id].len() {
                cursors.remove(&id);
            } else {
                cursors.insert(id, at + 1);
            }
            if cursors.is_empty() {
                break;
            }
        }
        out.push(batch);
        size = size * 7 % 997 + 1;
    }
    out
}

fn build_store(
    path: &std::path::Path,
    count: u32,
) -> (BTreeMap<u32, Vec<Record>>, BTreeMap<u32, MatchOver>) {
    let mut journals = BTreeMap::new();
    let mut results = BTreeMap::new();
    for n in 1..=count {
        let (j, r) = play(n);
        journals.insert(n, j);
        results.insert(n, r);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = SqliteStore::open(path).unwrap();
    rt.block_on(async {
        for b in batches(&journals) {
            store.append(b).await.unwrap();
        }
        store.close().await.unwrap();
    });
    (journals, results)
}

#[test]
fn a_hundred_seeded_matches_replay_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("matches.db");
    let (journals, results) = build_store(&path, 100);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = SqliteStore::open_read_only(&path).unwrap();
    rt.block_on(async {
        store.check().await.unwrap();
        let listed = store.matches().await.unwrap();
        assert_eq!(listed.len(), 100);
        let mut ticks = 0;
        let mut forfeits = 0;
        let mut pauses = 0;
        for m in listed {
            let id = m.match_id.0;
            let log = store.load(m.match_id).await.unwrap();
            assert_eq!(log.records, journals[&id], "{id}: the journal read back differs");
            let v = journal::verify(m.match_id, &log.records).unwrap();
            assert_eq!(
                v.result, results[&id],
                "{id}: the replay's result differs from the server's"
            );
            assert_eq!(
                (m.winner, m.final_hash, m.last_tick),
                (v.result.winner, Some(v.result.final_hash.0), v.result.tick)
            );
            ticks += v.ticks;
            forfeits += log.records.iter().filter(|r| matches!(r, Record::Forfeit { .. })).count();
            pauses += log.records.iter().filter(|r| matches!(r, Record::Paused { .. })).count();
        }
        assert!(forfeits >= 10 && pauses >= 10, "forfeits {forfeits}, pauses {pauses}");
        eprintln!("100 matches, {ticks} ticks re-run, {pauses} pauses, {forfeits} forfeits");
    });
}

/// What reading every match of a (perhaps damaged) store gives: for each match, its
/// verified journal or the error.
async fn read_all(
    path: &std::path::Path,
) -> Result<Vec<(u32, Result<Vec<Record>, String>)>, StoreError> {
    let store = SqliteStore::open_read_only(path)?;
    store.check().await?;
    let mut out = Vec::new();
    for m in store.matches().await? {
        let got = match store.load(m.match_id).await {
            Ok(log) => journal::verify(m.match_id, &log.records)
                .map(|_| log.records)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push((m.match_id.0, got));
    }
    Ok(out)
}

#[test]
fn a_damaged_or_truncated_store_gives_a_clear_error_never_a_wrong_verification() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.db");
    let (journals, _) = build_store(&path, 6);
    let good = std::fs::read(&path).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut refused_whole = 0;
    let mut refused_matches = 0;
    let mut verified = 0;
    for case in 0..300 {
        let mut bytes = good.clone();
        let what = match case % 6 {
            // Cut short anywhere, on or off a page boundary.
            0 => {
                let len = (next() % bytes.len() as u64) as usize;
                bytes.truncate(len);
                format!("cut to {len} bytes")
            }
            1 => {
                let pages = bytes.len() / 4096;
                let len = 4096 * (next() as usize % pages.max(1));
                bytes.truncate(len);
                format!("cut to {len} bytes (whole pages)")
            }
            // A few bytes flipped anywhere.
            2 | 3 => {
                let n = 1 + next() % 8;
                for _ in 0..n {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] ^= 1 << (next() % 8);
                }
                format!("{n} bits flipped")
            }
            // A page zeroed, or filled with garbage.
            4 => {
                let page = next() as usize % (bytes.len() / 4096);
                bytes[page * 4096..(page + 1) * 4096].fill(0);
                format!("page {page} zeroed")
            }
            _ => {
                let page = next() as usize % (bytes.len() / 4096);
                for b in &mut bytes[page * 4096..(page + 1) * 4096] {
                    *b = next() as u8;
                }
                format!("page {page} garbage")
            }
        };
        let damaged = dir.path().join(format!("damaged{case}.db"));
        std::fs::write(&damaged, &bytes).unwrap();
        match rt.block_on(read_all(&damaged)) {
            Err(e) => {
                // A clear error naming the problem.
                let text = e.to_string();
                assert!(
                    text.contains("damaged")
                        || text.contains("cannot open")
                        || text.contains("schema"),
                    "{what}: unclear error {text:?}"
                );
                refused_whole += 1;
            }
            Ok(matches) => {
                for (id, got) in matches {
                    match got {
                        // Whatever verifies is exactly what was written.
                        Ok(records) => {
                            assert_eq!(
                                journals.get(&id),
                                Some(&records),
                                "{what}: m{id} verified wrongly"
                            );
                            verified += 1;
                        }
                        Err(_) => refused_matches += 1,
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&damaged);
    }
    eprintln!(
        "300 damaged copies: {refused_whole} refused whole, {refused_matches} matches refused, {verified} intact matches verified"
    );
    assert!(refused_whole > 50 && refused_matches > 0, "the damage should be seen");
}
