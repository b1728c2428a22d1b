//! The tables and the migrations that build them.
//!
//! The schema version is SQLite's `PRAGMA user_version`: migration `n` (counting from 1)
//! takes a store from version `n - 1` to `n`, in one transaction with the version bump, so
//! a store is always at exactly one version. A store at a newer version than this build
//! knows is refused. `PRAGMA application_id` marks the file as ours, so that pointing
//! `--db` at some other SQLite file gives a clear error rather than new tables in it.
//!
//! ```text
//! matches  one row per match: its config, status and a summary kept in step with events
//!   id          INTEGER PRIMARY KEY  the server's match id
//!   players, lives, tick_hz, seed    the MatchConfig (seed: the u64's bits as i64)
//!   room        TEXT NULL            its room
//!   created_ms  INTEGER              Unix ms when its first batch was written
//!   status      TEXT                 open | over | closed | abandoned
//!   rows        INTEGER              rows in `events` (the next seq)
//!   records     INTEGER              journal records in them (a tick run holds many)
//!   last_tick   INTEGER              the last tick journaled
//!   winner, final_hash INTEGER NULL  once over
//!   note        TEXT NULL            why it was abandoned
//! events   the journal: (match_id, seq) in append order, seq = 0, 1, 2, …
//!   kind        INTEGER              the record's kind; 100 = a run of consecutive ticks
//!   tick        INTEGER              first tick of a run; otherwise the last tick before it
//!   count       INTEGER              ticks in a run; 1 otherwise
//!   body        BLOB                 a run: 10 bytes a tick (packed intents, forfeits,
//!                                    hash LE); otherwise the record, postcard-encoded
//!   checksum    INTEGER              FNV-1a 64 of match_id, seq, kind, tick, count, body
//! ```

use pong_ports::StoreError;
use rusqlite::Connection;

use crate::sql_err;

/// `PRAGMA application_id` of a Distributed Pong event store ("PONG").
pub(crate) const APPLICATION_ID: i32 = 0x504F_4E47;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE matches (
        id          INTEGER PRIMARY KEY,
        players     INTEGER NOT NULL,
        lives       INTEGER NOT NULL,
        tick_hz     INTEGER NOT NULL,
        seed        INTEGER NOT NULL,
        room        TEXT,
        created_ms  INTEGER NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('open', 'over', 'closed', 'abandoned')),
        rows        INTEGER NOT NULL,
        records     INTEGER NOT NULL,
        last_tick   INTEGER NOT NULL,
        winner      INTEGER,
        final_hash  INTEGER,
        note        TEXT
    ) STRICT;
    CREATE INDEX matches_open ON matches (status) WHERE status = 'open';
    CREATE TABLE events (
        match_id  INTEGER NOT NULL REFERENCES matches (id),
        seq       INTEGER NOT NULL,
        kind      INTEGER NOT NULL,
        tick      INTEGER NOT NULL,
        count     INTEGER NOT NULL,
        body      BLOB NOT NULL,
        checksum  INTEGER NOT NULL,
        PRIMARY KEY (match_id, seq)
    ) STRICT, WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

fn version_and_app(conn: &Connection) -> Result<(u32, i32, i64), StoreError> {
    let version: i64 =
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err)?;
    let app: i32 =
        conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(sql_err)?;
    let tables: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)).map_err(sql_err)?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("schema version {version}")))?;
    Ok((version, app, tables))
}

fn not_ours(path: &str) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        reason: "it is an SQLite database, but not a Distributed Pong event store".into(),
    }
}

/// Brings a store opened for writing to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let (version, app, tables) = version_and_app(conn)?;
    if app != APPLICATION_ID && !(app == 0 && version == 0 && tables == 0) {
        return Err(not_ours(path));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Schema { found: version, supported: SCHEMA_VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(sql_err)?;
        tx.execute_batch(sql).map_err(sql_err)?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(sql_err)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        tracing::info!(path, version = i + 1, "event store schema migrated");
    }
    Ok(())
}

/// Checks that a store opened for reading is at [`SCHEMA_VERSION`].
pub(crate) fn check(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let (version, app, _) = version_and_app(conn)?;
    if app != APPLICATION_ID {
        return Err(not_ours(path));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Schema { found: version, supported: SCHEMA_VERSION });
    }
    if version < SCHEMA_VERSION {
        return Err(StoreError::Open {
            path: path.to_owned(),
            reason: format!(
                "its schema (version {version}) predates this build's (version {SCHEMA_VERSION}); \
                 open it once for writing (`pong server --db`) to migrate it"
            ),
        });
    }
    Ok(())
}
