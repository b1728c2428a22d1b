//! The SQLite adapter of the [`EventStore`] port: every match's journal in one file.
//!
//! SQLite is compiled in (rusqlite's `bundled` feature), so nothing needs installing. The
//! file runs in WAL mode: a batch is one transaction (appended to the `-wal` file, so a
//! killed process loses nothing committed), readers such as `pong replay` work beside the
//! writing server and see whole batches only, and [`SqliteStore::backup_to`] takes a
//! consistent copy while the server writes. Calls run on tokio's blocking pool, never on
//! the caller's task.
//!
//! # Layout
//! - [`schema`]: the tables, their migrations and the schema version.
//! - `rows`: records ⇄ rows, with a checksum on each row.
//! - this module: [`SqliteStore`]: opening, appending, reading.

mod rows;
pub mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pong_domain::journal::Record;
use pong_domain::proto::MatchId;
use pong_domain::rules::{MatchConfig, PlayerId};
use pong_ports::{Entry, EventStore, MatchLog, MatchStatus, MatchSummary, StoreError};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use crate::rows::Row;
pub use crate::schema::SCHEMA_VERSION;

/// How hard a commit works to survive the machine (not just the process) going down.
/// Either way a committed batch survives the process being killed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`: commits are not synced to disk (checkpoints are), so a power
    /// loss or OS crash may also lose the batches committed since the last checkpoint.
    /// Commits stay short and steady, which keeps what a process crash loses small.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is synced to disk, so a committed batch survives
    /// a power loss too; a slow disk makes commits, and so the loss window, longer.
    Full,
}

/// How a store is opened.
#[derive(Clone, Copy, Debug)]
pub struct SqliteOptions {
    /// Commit durability.
    pub durability: Durability,
    /// How long a call waits for a lock another connection holds.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { durability: Durability::Normal, busy_timeout: Duration::from_secs(5) }
    }
}

/// An event store in one SQLite file. Cheap to share (`Arc`); calls are serialized on one
/// connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    read_only: bool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// Maps an SQLite failure into the port's error: damage is [`StoreError::Corrupt`].
pub(crate) fn sql_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            StoreError::Corrupt(e.to_string())
        }
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ReadOnly => {
            StoreError::ReadOnly
        }
        // The schema's version matched, yet a table or column it names is not there: the
        // schema itself is damaged (a flipped bit in its text is enough).
        _ if is_schema_mismatch(&e.to_string()) => {
            StoreError::Corrupt(format!("its schema is not what its version says: {e}"))
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

fn is_schema_mismatch(text: &str) -> bool {
    ["no such column", "no such table", "malformed database schema"]
        .iter()
        .any(|p| text.starts_with(p))
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn bits_to_i64(v: u64) -> i64 {
    i64::from_le_bytes(v.to_le_bytes())
}

fn i64_to_bits(v: i64) -> u64 {
    u64::from_le_bytes(v.to_le_bytes())
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl SqliteStore {
    /// Opens (creating it if needed) a store for a server to write, migrating its schema
    /// to [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`StoreError::Open`] (not a file SQLite can open, or not an event store),
    /// [`StoreError::Schema`] (written by a newer build), [`StoreError::Corrupt`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with options.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_owned();
        let shown = path.display().to_string();
        let open_err = |e: rusqlite::Error| match sql_err(e) {
            StoreError::Backend(reason) => StoreError::Open { path: shown.clone(), reason },
            other => other,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(options.busy_timeout).map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: shown,
                reason: format!("cannot use WAL mode (got {mode})"),
            });
        }
        let sync = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        schema::migrate(&mut conn, &shown)?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path, read_only: false })
    }

    /// Opens an existing store for reading only (replays, listings), beside a server that
    /// may be writing it.
    ///
    /// # Errors
    /// [`StoreError::Open`] (missing, not an event store, or an older schema),
    /// [`StoreError::Schema`], [`StoreError::Corrupt`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_owned();
        let shown = path.display().to_string();
        let open_err = |e: rusqlite::Error| match sql_err(e) {
            StoreError::Backend(reason) => StoreError::Open { path: shown.clone(), reason },
            other => other,
        };
        if !path.is_file() {
            return Err(StoreError::Open { path: shown, reason: "no such file".into() });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(SqliteOptions::default().busy_timeout).map_err(open_err)?;
        schema::check(&conn, &shown)?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path, read_only: true })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the store to `dest` (which must not exist), while a server
    /// may be appending: the copy holds every batch committed when it started and nothing
    /// of later ones (SQLite's `VACUUM INTO`).
    ///
    /// # Errors
    /// A backend failure (such as `dest` existing).
    pub async fn backup_to(&self, dest: impl AsRef<Path>) -> Result<(), StoreError> {
        let dest = dest
            .as_ref()
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Backend("the backup path is not valid UTF-8".into()))?;
        self.run(move |conn| {
            conn.execute("VACUUM INTO ?1", params![dest]).map_err(sql_err)?;
            Ok(())
        })
        .await
    }

    /// Checkpoints the write-ahead log into the main file and closes the store.
    ///
    /// # Errors
    /// A backend failure.
    pub async fn close(self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        self.run(|conn| {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(sql_err)?;
            Ok(())
        })
        .await
    }

    /// Runs `f` on the connection on tokio's blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Backend("an earlier store call panicked".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("the store task failed: {e}")))?
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only { Err(StoreError::ReadOnly) } else { Ok(()) }
    }
}

/// A match touched by the batch being appended.
struct Touched {
    status: MatchStatus,
    rows: u64,
    records: u64,
    last_tick: u32,
    winner: Option<PlayerId>,
    final_hash: Option<u64>,
    run: Option<Row>,
}

fn touched(tx: &Transaction<'_>, id: MatchId) -> Result<Option<Touched>, StoreError> {
    tx.prepare_cached(
        "SELECT status, rows, records, last_tick, winner, final_hash FROM matches WHERE id = ?1",
    )
    .map_err(sql_err)?
    .query_row(params![id.0], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<i64>>(5)?,
        ))
    })
    .optional()
    .map_err(sql_err)?
    .map(|(status, rows, records, last_tick, winner, final_hash)| {
        Ok(Touched {
            status: parse_status(&status)?,
            rows: u64::try_from(rows).map_err(|_| corrupt(format!("{id}: {rows} rows")))?,
            records: u64::try_from(records)
                .map_err(|_| corrupt(format!("{id}: {records} records")))?,
            last_tick: u32::try_from(last_tick)
                .map_err(|_| corrupt(format!("{id}: tick {last_tick}")))?,
            winner: winner.map(|w| parse_player(id, w)).transpose()?,
            final_hash: final_hash.map(i64_to_bits),
            run: None,
        })
    })
    .transpose()
}

fn parse_status(s: &str) -> Result<MatchStatus, StoreError> {
    Ok(match s {
        "open" => MatchStatus::Open,
        "over" => MatchStatus::Over,
        "closed" => MatchStatus::Closed,
        "abandoned" => MatchStatus::Abandoned,
        other => return Err(corrupt(format!("unknown match status {other:?}"))),
    })
}

fn parse_player(id: MatchId, n: i64) -> Result<PlayerId, StoreError> {
    u8::try_from(n).ok().and_then(PlayerId::new).ok_or_else(|| corrupt(format!("{id}: seat {n}")))
}

fn write_row(
    tx: &Transaction<'_>,
    id: MatchId,
    m: &mut Touched,
    row: &Row,
) -> Result<(), StoreError> {
    let seq = m.rows;
    tx.prepare_cached(
        "INSERT INTO events (match_id, seq, kind, tick, count, body, checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(sql_err)?
    .execute(params![
        id.0,
        i64::try_from(seq).map_err(|_| StoreError::Backend("too many rows".into()))?,
        row.kind,
        row.tick,
        row.count,
        row.body,
        row.checksum(id.0, seq)
    ])
    .map_err(sql_err)?;
    m.rows += 1;
    Ok(())
}

fn flush_run(tx: &Transaction<'_>, id: MatchId, m: &mut Touched) -> Result<(), StoreError> {
    if let Some(run) = m.run.take() {
        write_row(tx, id, m, &run)?;
    }
    Ok(())
}

fn append_batch(conn: &mut Connection, batch: &[Entry]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
    let now = unix_ms();
    let mut matches: BTreeMap<MatchId, Touched> = BTreeMap::new();
    for e in batch {
        let id = e.match_id;
        if let Record::Created { config, room } = &e.record {
            if matches.contains_key(&id) || touched(&tx, id)?.is_some() {
                return Err(StoreError::Duplicate(id));
            }
            tx.prepare_cached(
                "INSERT INTO matches (id, players, lives, tick_hz, seed, room, created_ms, status, rows, records, last_tick)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', 0, 0, 0)",
            )
            .map_err(sql_err)?
            .execute(params![
                id.0,
                config.players,
                config.lives,
                config.tick_hz,
                bits_to_i64(config.seed),
                room.as_ref().map(|r| r.as_str()),
                now
            ])
            .map_err(sql_err)?;
            matches.insert(
                id,
                Touched {
                    status: MatchStatus::Open,
                    rows: 0,
                    records: 0,
                    last_tick: 0,
                    winner: None,
                    final_hash: None,
                    run: None,
                },
            );
        }
        let m = match matches.entry(id) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(touched(&tx, id)?.ok_or(StoreError::UnknownMatch(id))?)
            }
        };
        m.records += 1;
        match &e.record {
            Record::Tick { tick, input, hash } => {
                if m.run.as_ref().is_none_or(|run| run.next_tick() != *tick) {
                    flush_run(&tx, id, m)?;
                    m.run = Some(Row::ticks(*tick));
                }
                if let Some(run) = m.run.as_mut() {
                    run.push_tick(input, *hash);
                }
                m.last_tick = *tick;
            }
            other => {
                flush_run(&tx, id, m)?;
                let row = Row::record(other, m.last_tick).map_err(StoreError::Backend)?;
                write_row(&tx, id, m, &row)?;
                match other {
                    Record::Over { result } => {
                        m.status = MatchStatus::Over;
                        m.winner = result.winner;
                        m.final_hash = Some(result.final_hash.0);
                        m.last_tick = result.tick;
                    }
                    Record::Closed if m.status == MatchStatus::Open => {
                        m.status = MatchStatus::Closed
                    }
                    Record::Restored { tick, .. } => m.last_tick = *tick,
                    _ => {}
                }
            }
        }
    }
    for (id, m) in &mut matches {
        flush_run(&tx, *id, m)?;
        tx.prepare_cached(
            "UPDATE matches SET status = ?2, rows = ?3, records = ?4, last_tick = ?5, winner = ?6, final_hash = ?7
             WHERE id = ?1",
        )
        .map_err(sql_err)?
        .execute(params![
            id.0,
            m.status.as_str(),
            i64::try_from(m.rows).map_err(|_| StoreError::Backend("too many rows".into()))?,
            i64::try_from(m.records).map_err(|_| StoreError::Backend("too many records".into()))?,
            m.last_tick,
            m.winner.map(|w| w.get()),
            m.final_hash.map(bits_to_i64)
        ])
        .map_err(sql_err)?;
    }
    tx.commit().map_err(sql_err)
}

const SUMMARY: &str = "SELECT id, players, lives, tick_hz, seed, room, created_ms, status, rows, records, last_tick, winner, final_hash, note FROM matches";

/// A summary and the row and record counts it promises.
fn summary_row(
    r: &rusqlite::Row<'_>,
) -> Result<Result<(MatchSummary, u64), StoreError>, rusqlite::Error> {
    let id = MatchId(r.get(0)?);
    let players: u8 = r.get(1)?;
    let lives: u8 = r.get(2)?;
    let tick_hz: u16 = r.get(3)?;
    let seed = i64_to_bits(r.get(4)?);
    let room: Option<String> = r.get(5)?;
    let created_unix_ms: i64 = r.get(6)?;
    let status: String = r.get(7)?;
    let rows: i64 = r.get(8)?;
    let records: i64 = r.get(9)?;
    let last_tick: u32 = r.get(10)?;
    let winner: Option<i64> = r.get(11)?;
    let final_hash: Option<i64> = r.get(12)?;
    let note: Option<String> = r.get(13)?;
    Ok((|| {
        let config = MatchConfig { players, lives, tick_hz, seed };
        config.validate().map_err(|e| corrupt(format!("{id}: {e}")))?;
        let summary = MatchSummary {
            match_id: id,
            config,
            room,
            created_unix_ms,
            status: parse_status(&status)?,
            records: u64::try_from(records)
                .map_err(|_| corrupt(format!("{id}: {records} records")))?,
            last_tick,
            winner: winner.map(|w| parse_player(id, w)).transpose()?,
            final_hash: final_hash.map(i64_to_bits),
            note,
        };
        let rows = u64::try_from(rows).map_err(|_| corrupt(format!("{id}: {rows} rows")))?;
        Ok((summary, rows))
    })())
}

fn list(conn: &Connection) -> Result<Vec<MatchSummary>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SUMMARY} ORDER BY id")).map_err(sql_err)?;
    let rows = stmt.query_map([], summary_row).map_err(sql_err)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(sql_err)??.0);
    }
    Ok(out)
}

fn load(conn: &mut Connection, id: MatchId) -> Result<MatchLog, StoreError> {
    // One read transaction: the summary and the rows are of the same moment.
    let tx = conn.transaction().map_err(sql_err)?;
    let (summary, rows) = tx
        .query_row(&format!("{SUMMARY} WHERE id = ?1"), params![id.0], summary_row)
        .optional()
        .map_err(sql_err)?
        .ok_or(StoreError::UnknownMatch(id))??;
    let mut records = Vec::new();
    let mut seq = 0u64;
    {
        let mut stmt = tx
            .prepare("SELECT seq, kind, tick, count, body, checksum FROM events WHERE match_id = ?1 ORDER BY seq")
            .map_err(sql_err)?;
        let mut q = stmt.query(params![id.0]).map_err(sql_err)?;
        while let Some(r) = q.next().map_err(sql_err)? {
            let found: i64 = r.get(0).map_err(sql_err)?;
            if u64::try_from(found).ok() != Some(seq) {
                return Err(corrupt(format!("{id}: row {seq} is missing (found row {found})")));
            }
            let row = Row {
                kind: r.get(1).map_err(sql_err)?,
                tick: r.get(2).map_err(sql_err)?,
                count: r.get(3).map_err(sql_err)?,
                body: r.get(4).map_err(sql_err)?,
            };
            row.decode(id.0, seq, r.get(5).map_err(sql_err)?, &mut records)
                .map_err(StoreError::Corrupt)?;
            seq += 1;
        }
    }
    tx.finish().map_err(sql_err)?;
    if seq != rows || records.len() as u64 != summary.records {
        return Err(corrupt(format!(
            "{id}: {seq} rows and {} records stored, its summary says {rows} and {}",
            records.len(),
            summary.records
        )));
    }
    match records.first() {
        Some(Record::Created { config, .. }) if *config == summary.config => {}
        Some(_) => {
            return Err(corrupt(format!("{id}: the journal does not open with its configuration")));
        }
        None => return Err(corrupt(format!("{id}: the journal is empty"))),
    }
    Ok(MatchLog { summary, records })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: Vec<Entry>) -> Result<(), StoreError> {
        self.writable()?;
        if batch.is_empty() {
            return Ok(());
        }
        self.run(move |conn| append_batch(conn, &batch)).await
    }

    async fn abandon(&self, match_id: MatchId, reason: &str) -> Result<(), StoreError> {
        self.writable()?;
        let reason = reason.to_owned();
        self.run(move |conn| {
            let n = conn
                .execute(
                    "UPDATE matches SET status = CASE WHEN status = 'open' THEN 'abandoned' ELSE status END,
                     note = CASE WHEN status = 'open' THEN ?2 ELSE note END WHERE id = ?1",
                    params![match_id.0, reason],
                )
                .map_err(sql_err)?;
            if n == 0 { Err(StoreError::UnknownMatch(match_id)) } else { Ok(()) }
        })
        .await
    }

    async fn matches(&self) -> Result<Vec<MatchSummary>, StoreError> {
        self.run(|conn| list(conn)).await
    }

    async fn load(&self, match_id: MatchId) -> Result<MatchLog, StoreError> {
        self.run(move |conn| load(conn, match_id)).await
    }

    async fn unfinished(&self) -> Result<Vec<MatchId>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn
                .prepare("SELECT id FROM matches WHERE status = 'open' ORDER BY id")
                .map_err(sql_err)?;
            let ids = stmt.query_map([], |r| r.get(0)).map_err(sql_err)?;
            ids.map(|id| id.map(MatchId).map_err(sql_err)).collect()
        })
        .await
    }

    async fn last_match_id(&self) -> Result<Option<MatchId>, StoreError> {
        self.run(|conn| {
            let id: Option<u32> =
                conn.query_row("SELECT max(id) FROM matches", [], |r| r.get(0)).map_err(sql_err)?;
            Ok(id.map(MatchId))
        })
        .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            let mut stmt = conn.prepare("PRAGMA quick_check").map_err(sql_err)?;
            let lines: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .map_err(sql_err)?
                .collect::<Result<_, _>>()
                .map_err(sql_err)?;
            if lines.len() == 1 && lines[0] == "ok" {
                Ok(())
            } else {
                Err(corrupt(lines.join("; ")))
            }
        })
        .await
    }
}
