//! The EventStore port: an append-only journal of every match a server hosts, kept so that
//! a finished match can be replayed and verified bit for bit and a match that was running
//! when the server died can be rebuilt ([`pong_domain::journal`]).
//!
//! What is stored is a sequence of [`Record`]s per match, in the order the server produced
//! them. The server never waits for the store: a writer hands it batches off the tick path
//! (`pong_runtime::recorder`), so a crash can lose the batch being written and what was
//! queued behind it, never anything already appended.
//!
//! # What every adapter MUST do
//! The conformance tests of each adapter have one test per rule.
//! 1. **Atomic, durable batches**: [`EventStore::append`] stores the whole batch or none of
//!    it; once it returns `Ok` the batch survives the process being killed.
//! 2. **Order**: [`EventStore::load`] returns a match's records in the order appended,
//!    across batches and across reopening the store.
//! 3. **Prefix after a crash**: whatever happens to the process, each match's stored journal
//!    is a prefix of what was appended for it (batches are never reordered or half applied).
//! 4. **One match per id**: a batch whose `Created` record names a match the store already
//!    holds, or that has records for a match it does not hold and does not create, is
//!    refused whole with [`StoreError::Duplicate`] or [`StoreError::UnknownMatch`].
//! 5. **Status**: a match is [`MatchStatus::Open`] from its `Created` record, becomes
//!    [`MatchStatus::Over`] with its `Over` record, [`MatchStatus::Closed`] with a `Closed`
//!    record that has no `Over` before it, and [`MatchStatus::Abandoned`] with
//!    [`EventStore::abandon`] (which leaves an `Over` match as it is).
//!    [`EventStore::unfinished`] lists exactly the `Open` ones.
//! 6. **Damage is reported, never hidden**: a record that does not decode or fails its
//!    checksum, a record missing from a journal, or a journal that disagrees with its
//!    summary makes [`EventStore::load`] fail with [`StoreError::Corrupt`]; no call panics
//!    or returns records other than those appended. [`EventStore::check`] fails with
//!    [`StoreError::Corrupt`] if the store's own structure is damaged.
//! 7. **Readers beside the writer**: another process may read ([`EventStore::matches`],
//!    [`EventStore::load`]) while a server appends; it sees whole batches only.
//! 8. **Versioned schema**: a store written by an older build is migrated when opened for
//!    writing; one written by a newer build is refused with [`StoreError::Schema`].

use async_trait::async_trait;
use pong_domain::journal::Record;
use pong_domain::proto::MatchId;
use pong_domain::rules::{MatchConfig, PlayerId};

/// One record of one match, as appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The match.
    pub match_id: MatchId,
    /// The record.
    pub record: Record,
}

/// Where a stored match stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchStatus {
    /// Created, not over: running, or running when its server died.
    Open,
    /// Its result is stored.
    Over,
    /// Closed without a result (everyone left its lobby).
    Closed,
    /// Given up: its server shut down while it ran, or it could not be rebuilt.
    Abandoned,
}

impl MatchStatus {
    /// The lower-case name (`open`, `over`, `closed`, `abandoned`).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchStatus::Open => "open",
            MatchStatus::Over => "over",
            MatchStatus::Closed => "closed",
            MatchStatus::Abandoned => "abandoned",
        }
    }
}

impl std::fmt::Display for MatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a store knows of a match without reading its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchSummary {
    /// The match.
    pub match_id: MatchId,
    /// How it is played.
    pub config: MatchConfig,
    /// Its room, if named.
    pub room: Option<String>,
    /// When its first record was stored (Unix time, milliseconds).
    pub created_unix_ms: i64,
    /// Where it stands.
    pub status: MatchStatus,
    /// Records stored.
    pub records: u64,
    /// The last tick stored.
    pub last_tick: u32,
    /// The winner, once over (`None` also for a draw).
    pub winner: Option<PlayerId>,
    /// The final state hash, once over.
    pub final_hash: Option<u64>,
    /// Why it was abandoned, if it was.
    pub note: Option<String>,
}

/// A match's journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchLog {
    /// The summary.
    pub summary: MatchSummary,
    /// Every record, in order.
    pub records: Vec<Record>,
}

/// What a store can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened.
    #[error("cannot open the event store {path}: {reason}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// The store was written with a schema this build does not know.
    #[error(
        "the event store has schema version {found}; this build reads up to version {supported}"
    )]
    Schema {
        /// The store's version.
        found: u32,
        /// The newest this build knows.
        supported: u32,
    },
    /// Stored data is damaged: it does not decode, fails its checksum, or is missing.
    #[error("the event store is damaged: {0}")]
    Corrupt(String),
    /// No match with that id is stored.
    #[error("no match {0} in the event store")]
    UnknownMatch(MatchId),
    /// A match with that id is already stored.
    #[error("match {0} is already in the event store")]
    Duplicate(MatchId),
    /// The store was opened for reading only.
    #[error("the event store is open for reading only")]
    ReadOnly,
    /// The backend failed (disk full, locked, I/O error).
    #[error("event store failure: {0}")]
    Backend(String),
}

/// An append-only journal of matches. See the module docs for what every adapter MUST do.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends a batch (records of any number of matches, each match's in order) atomically
    /// and durably.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`], [`StoreError::UnknownMatch`] (nothing is stored then),
    /// [`StoreError::ReadOnly`], or a backend failure.
    async fn append(&self, batch: Vec<Entry>) -> Result<(), StoreError>;

    /// Marks an open match as given up, with why; it will not be rebuilt.
    ///
    /// # Errors
    /// [`StoreError::UnknownMatch`], [`StoreError::ReadOnly`], or a backend failure.
    async fn abandon(&self, match_id: MatchId, reason: &str) -> Result<(), StoreError>;

    /// Every stored match, by id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] or a backend failure.
    async fn matches(&self) -> Result<Vec<MatchSummary>, StoreError>;

    /// One match's journal.
    ///
    /// # Errors
    /// [`StoreError::UnknownMatch`], [`StoreError::Corrupt`], or a backend failure.
    async fn load(&self, match_id: MatchId) -> Result<MatchLog, StoreError>;

    /// The ids of the [`MatchStatus::Open`] matches, to rebuild after a restart.
    ///
    /// # Errors
    /// A backend failure.
    async fn unfinished(&self) -> Result<Vec<MatchId>, StoreError>;

    /// The highest match id stored (new matches must be numbered after it).
    ///
    /// # Errors
    /// A backend failure.
    async fn last_match_id(&self) -> Result<Option<MatchId>, StoreError>;

    /// Checks the store's own structure.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the damage, or a backend failure.
    async fn check(&self) -> Result<(), StoreError>;
}
