//! The EventStore port's contract (`pong_ports::store`), one test per MUST, on the SQLite
//! adapter.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use pong_domain::journal::Record;
use pong_domain::proto::{MatchId, MatchOver, StateHash};
use pong_domain::rules::{MatchConfig, PlayerId};
use pong_domain::sim::{Intent, TickInput};
use pong_ports::{Entry, EventStore, MatchStatus, StoreError};
use pong_store_sqlite::{SCHEMA_VERSION, SqliteStore};

fn created(id: u32) -> Entry {
    let config = MatchConfig::new(2, 3, 60, 0xfeed_0000 + u64::from(id)).unwrap();
    Entry { match_id: MatchId(id), record: Record::Created { config, room: None } }
}

fn tick(id: u32, tick: u32) -> Entry {
    let input = TickInput {
        intents: [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Stop],
        forfeit: 0,
    };
    Entry {
        match_id: MatchId(id),
        record: Record::Tick { tick, input, hash: u64::from(tick) * 0x9e37_79b9 },
    }
}

fn rec(id: u32, record: Record) -> Entry {
    Entry { match_id: MatchId(id), record }
}

fn over(id: u32, at: u32) -> Entry {
    rec(
        id,
        Record::Over {
            result: MatchOver {
                tick: at,
                winner: PlayerId::new(1),
                standings: Vec::new(),
                final_hash: StateHash(7),
            },
        },
    )
}

fn records(entries: &[Entry], id: u32) -> Vec<Record> {
    entries.iter().filter(|e| e.match_id.0 == id).map(|e| e.record.clone()).collect()
}

fn db(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("store.db")
}

#[tokio::test]
async fn must_1_a_batch_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).unwrap();
    store.append(vec![created(1), tick(1, 1)]).await.unwrap();
    // A batch that goes wrong half-way (match 1 again) leaves no trace, not even match 2.
    let bad = vec![created(2), tick(2, 1), tick(1, 2), created(1)];
    assert_eq!(store.append(bad).await, Err(StoreError::Duplicate(MatchId(1))));
    assert_eq!(store.matches().await.unwrap().len(), 1);
    assert_eq!(store.load(MatchId(1)).await.unwrap().records.len(), 2);
    assert_eq!(store.load(MatchId(2)).await, Err(StoreError::UnknownMatch(MatchId(2))));
    // And durable: what returned Ok is there after reopening.
    drop(store);
    let store = SqliteStore::open_read_only(db(&dir)).unwrap();
    assert_eq!(
        store.load(MatchId(1)).await.unwrap().records,
        records(&[created(1), tick(1, 1)], 1)
    );
}

#[tokio::test]
async fn must_2_records_come_back_in_order_across_batches_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![created(1), created(2)];
    let store = SqliteStore::open(db(&dir)).unwrap();
    store.append(all.clone()).await.unwrap();
    // Interleaved matches, tick runs broken by other records and split across batches.
    let mut t = [0u32; 3];
    for batch in 0..20u32 {
        let mut entries = Vec::new();
        for k in 0..(batch % 7 + 1) {
            let id = 1 + (batch + k) % 2;
            t[id as usize] += 1;
            entries.push(tick(id, t[id as usize]));
            if (batch + k) % 5 == 0 {
                entries.push(rec(id, Record::Lost { player: PlayerId::ALL[1] }));
                entries.push(rec(id, Record::Paused { tick: t[id as usize] }));
            }
        }
        store.append(entries.clone()).await.unwrap();
        all.extend(entries);
    }
    store.close().await.unwrap();
    let store = SqliteStore::open(db(&dir)).unwrap();
    for id in [1, 2] {
        let log = store.load(MatchId(id)).await.unwrap();
        assert_eq!(log.records, records(&all, id));
        assert_eq!(log.summary.records, log.records.len() as u64);
        assert_eq!(log.summary.last_tick, t[id as usize]);
    }
}

#[test]
fn must_3_after_a_crash_each_journal_is_a_prefix() {
    // A "crash" at every possible point: the write-ahead log cut at many lengths. SQLite
    // checks each WAL frame and each commit, so a cut drops whole batches from the end.
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut all = vec![created(1), created(2)];
    let store = SqliteStore::open(&live).unwrap();
    rt.block_on(async {
        store.append(all.clone()).await.unwrap();
        for n in 1..=60 {
            let batch =
                vec![tick(1, n), tick(2, n), rec(1, Record::Back { player: PlayerId::ALL[0] })];
            store.append(batch.clone()).await.unwrap();
            all.extend(batch);
        }
    });
    // Copy the main file and its WAL while the store is open (nothing checkpointed yet).
    let wal = std::fs::read(dir.path().join("live.db-wal")).unwrap();
    let main = std::fs::read(&live).unwrap();
    assert!(wal.len() > 10_000, "the WAL holds the batches ({} bytes)", wal.len());
    let mut seen = std::collections::BTreeSet::new();
    for cut in (0..=wal.len()).step_by(wal.len() / 97).chain([wal.len()]) {
        let copy = dir.path().join(format!("cut{cut}.db"));
        std::fs::write(&copy, &main).unwrap();
        std::fs::write(dir.path().join(format!("cut{cut}.db-wal")), &wal[..cut]).unwrap();
        let reopened = SqliteStore::open(&copy).unwrap();
        rt.block_on(async {
            for id in [1, 2] {
                let got = match reopened.load(MatchId(id)).await {
                    Ok(log) => log.records,
                    Err(StoreError::UnknownMatch(_)) => Vec::new(),
                    Err(e) => panic!("cut at {cut}: {e}"),
                };
                let want = records(&all, id);
                assert_eq!(got[..], want[..got.len()], "cut at {cut}: not a prefix");
                seen.insert(got.len());
            }
        });
    }
    assert!(seen.len() > 20, "the cuts should give many prefix lengths: {seen:?}");
    drop(store);
}

#[tokio::test]
async fn must_4_one_match_per_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).unwrap();
    store.append(vec![created(5)]).await.unwrap();
    assert_eq!(store.append(vec![created(5)]).await, Err(StoreError::Duplicate(MatchId(5))));
    assert_eq!(store.append(vec![tick(6, 1)]).await, Err(StoreError::UnknownMatch(MatchId(6))));
    assert_eq!(store.abandon(MatchId(6), "x").await, Err(StoreError::UnknownMatch(MatchId(6))));
    assert_eq!(store.last_match_id().await.unwrap(), Some(MatchId(5)));
}

#[tokio::test]
async fn must_5_status_follows_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(db(&dir)).unwrap();
    let batch = vec![created(1), created(2), created(3), created(4), tick(1, 1), tick(2, 1)];
    store.append(batch).await.unwrap();
    store.append(vec![over(1, 1), rec(1, Record::Closed), rec(3, Record::Closed)]).await.unwrap();
    store.abandon(MatchId(2), "server shut down").await.unwrap();
    store.abandon(MatchId(1), "too late").await.unwrap();
    let status: Vec<(u32, MatchStatus)> =
        store.matches().await.unwrap().iter().map(|m| (m.match_id.0, m.status)).collect();
    assert_eq!(
        status,
        vec![
            (1, MatchStatus::Over),
            (2, MatchStatus::Abandoned),
            (3, MatchStatus::Closed),
            (4, MatchStatus::Open)
        ]
    );
    assert_eq!(store.unfinished().await.unwrap(), vec![MatchId(4)]);
    let m1 = store.load(MatchId(1)).await.unwrap().summary;
    assert_eq!((m1.winner, m1.final_hash, m1.note), (PlayerId::new(1), Some(7), None));
    let m2 = store.load(MatchId(2)).await.unwrap().summary;
    assert_eq!(m2.note.as_deref(), Some("server shut down"));
}

/// Runs SQL on the file behind the store's back, as damage would.
fn damage(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[tokio::test]
async fn must_6_damage_is_reported_never_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let store = SqliteStore::open(&path).unwrap();
    let mut batch = vec![created(1), created(2), created(3), created(4)];
    for t in 1..=30 {
        batch.extend([tick(1, t), tick(2, t), tick(3, t), tick(4, t)]);
    }
    batch.extend([rec(1, Record::Paused { tick: 30 }), rec(2, Record::Resuming), tick(3, 31)]);
    store.append(batch).await.unwrap();
    store.close().await.unwrap();
    // A flipped byte inside a run of ticks; a record changed; a row gone; the summary
    // promising more than is there.
    damage(
        &path,
        "UPDATE events SET body = CAST(zeroblob(length(body)) AS BLOB) WHERE match_id = 1 AND kind = 100",
    );
    damage(
        &path,
        "UPDATE events SET kind = 9 WHERE match_id = 2 AND seq = (SELECT max(seq) FROM events WHERE match_id = 2)",
    );
    damage(&path, "DELETE FROM events WHERE match_id = 3 AND seq = 1");
    damage(&path, "UPDATE matches SET records = records + 1 WHERE id = 4");
    let store = SqliteStore::open_read_only(&path).unwrap();
    for id in 1..=4 {
        match store.load(MatchId(id)).await {
            Err(StoreError::Corrupt(why)) => {
                assert!(why.contains(&MatchId(id).to_string()), "{why}")
            }
            other => panic!("match {id}: {other:?}"),
        }
    }
    store.check().await.unwrap();
}

/// A new store in a temporary folder with match 1 created, a task writing `batches` batches
/// of ten ticks to it (as a server does meanwhile), and a read-only handle on it.
fn write_batches(
    batches: u32,
) -> (tempfile::TempDir, tokio::runtime::Runtime, tokio::task::JoinHandle<()>, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let writer = SqliteStore::open(&path).unwrap();
    rt.block_on(writer.append(vec![created(1)])).unwrap();
    let writing = rt.spawn(async move {
        for b in 0..batches {
            let batch = (1..=10).map(|k| tick(1, b * 10 + k)).collect();
            writer.append(batch).await.unwrap();
        }
    });
    let reader = SqliteStore::open_read_only(&path).unwrap();
    (dir, rt, writing, reader)
}

#[test]
fn must_7_readers_see_whole_batches_while_a_server_writes() {
    let (dir, rt, writing, reader) = write_batches(200);
    let mut sizes = Vec::new();
    rt.block_on(async {
        while !writing.is_finished() {
            let log = reader.load(MatchId(1)).await.unwrap();
            assert_eq!((log.records.len() - 1) % 10, 0, "a reader saw part of a batch");
            sizes.push(log.records.len());
        }
    });
    assert!(sizes.len() > 2);
    // And a consistent copy can be taken meanwhile.
    let copy = dir.path().join("copy.db");
    rt.block_on(reader.backup_to(&copy)).unwrap();
    let copied = SqliteStore::open_read_only(&copy).unwrap();
    assert_eq!(rt.block_on(copied.load(MatchId(1))).unwrap().records.len(), 2001);
}

#[test]
fn must_7_a_copy_taken_during_writes_is_whole() {
    let (dir, rt, writing, reader) = write_batches(300);
    let mut copies = 0;
    while !writing.is_finished() {
        let copy = dir.path().join(format!("copy{copies}.db"));
        rt.block_on(reader.backup_to(&copy)).unwrap();
        let copied = SqliteStore::open_read_only(&copy).unwrap();
        let log = rt.block_on(copied.load(MatchId(1))).unwrap();
        assert_eq!((log.records.len() - 1) % 10, 0);
        rt.block_on(copied.check()).unwrap();
        copies += 1;
    }
    assert!(copies > 0);
}

#[tokio::test]
async fn must_8_the_schema_is_versioned() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(SqliteStore::open(&path).unwrap());
    let version: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    // Reopening migrates nothing and keeps the data.
    let store = SqliteStore::open(&path).unwrap();
    store.append(vec![created(1)]).await.unwrap();
    drop(store);
    drop(SqliteStore::open(&path).unwrap());
    // A newer build's store is refused, for writing and for reading.
    damage(&path, "PRAGMA user_version = 99");
    assert_eq!(
        SqliteStore::open(&path).err(),
        Some(StoreError::Schema { found: 99, supported: SCHEMA_VERSION })
    );
    assert_eq!(
        SqliteStore::open_read_only(&path).err(),
        Some(StoreError::Schema { found: 99, supported: SCHEMA_VERSION })
    );
    // Some other SQLite database is not taken over.
    let other = dir.path().join("other.db");
    damage(&other, "CREATE TABLE t (x)");
    assert!(
        matches!(SqliteStore::open(&other), Err(StoreError::Open { reason, .. }) if reason.contains("not a Distributed Pong"))
    );
    assert!(matches!(
        SqliteStore::open_read_only(dir.path().join("missing.db")),
        Err(StoreError::Open { .. })
    ));
}
