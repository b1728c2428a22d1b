//! `pong server --db PATH`: the event store wired into the server.
//!
//! On start: open (or create, or migrate) the store, number new matches after the ones it
//! holds, and rebuild every match it lists as open (running when a server on it died) into
//! the core, paused until its players come back. While serving: every match event goes to
//! a [`Recorder`] (bounded queue, batched commits, never on the tick path). On shutdown:
//! the rest of the queue is written, and the matches still running are marked abandoned
//! (their players were told the server is going away), so only a crash leaves matches to
//! take back. See docs/durability.md.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use pong_domain::journal::RecoveredMatch;
use pong_domain::server::{RestoreError, ServerCore};
use pong_ports::{EventStore, ServerTransport};
use pong_runtime::recorder::{Recorder, RecorderOptions};
use pong_runtime::server::ServeOptions;
use pong_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use tracing::{info, warn};

use crate::cli::DbSync;

/// Opens the store at `path` and restores its open matches into `core`.
pub(crate) async fn open_and_restore(
    path: &Path,
    sync: DbSync,
    core: &mut ServerCore,
) -> Result<Arc<SqliteStore>> {
    let durability = match sync {
        DbSync::Normal => Durability::Normal,
        DbSync::Full => Durability::Full,
    };
    let options = SqliteOptions { durability, ..SqliteOptions::default() };
    let store = SqliteStore::open_with(path, options)
        .with_context(|| format!("cannot use {} as the event store", path.display()))?;
    if let Some(last) = store.last_match_id().await? {
        core.reserve_match_ids(last);
    }
    for id in store.unfinished().await? {
        let log = match store.load(id).await {
            Ok(log) => log,
            Err(e) => {
                warn!(match_id = %id, error = %e, "cannot read the journal of a running match; abandoning it");
                store.abandon(id, &format!("its journal cannot be read: {e}")).await?;
                continue;
            }
        };
        let rebuilt = match RecoveredMatch::rebuild(id, &log.records) {
            Ok(m) => m,
            Err(e) => {
                warn!(match_id = %id, error = %e, "cannot rebuild a running match from its journal; abandoning it");
                store.abandon(id, &format!("its journal cannot be replayed: {e}")).await?;
                continue;
            }
        };
        let tick = rebuilt.tick();
        // The driver's clock starts at 0 when `serve` starts, right after this.
        match core.restore(0, rebuilt) {
            Ok(()) => {
                info!(match_id = %id, tick, "took back a match that was running when the server stopped")
            }
            Err(e @ RestoreError::TickRate { .. }) => {
                // Left open: a server started with the match's tick rate takes it back.
                warn!(match_id = %id, error = %e, "cannot take back a running match; start the server with its --tick-hz");
            }
            Err(e) => {
                warn!(match_id = %id, error = %e, "cannot take back a running match; abandoning it");
                store.abandon(id, &format!("it could not be restored: {e}")).await?;
            }
        }
    }
    Ok(Arc::new(store))
}

/// Serves with every match event journaled until `shutdown` completes (or the transport
/// closes); returns once the server has stopped and the journal is written.
pub(crate) async fn serve_journaled(
    core: ServerCore,
    transport: Box<dyn ServerTransport>,
    store: Arc<SqliteStore>,
    flush_every: Duration,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> Result<()> {
    let mut recorder = Recorder::spawn_with(
        store.clone(),
        RecorderOptions { flush_every, ..RecorderOptions::default() },
        options.telemetry.clone(),
    );
    let served = pong_runtime::server::serve_with(
        core,
        transport,
        shutdown,
        |e| recorder.record(e),
        options,
    )
    .await;
    let stats = recorder.finish().await;
    if stats.dropped > 0 {
        warn!(
            dropped = stats.dropped,
            abandoned = stats.abandoned,
            "some matches were not fully journaled"
        );
    }
    let core = served?;
    for id in core.match_ids() {
        // Only open matches change; finished ones keep their result.
        store.abandon(id, "the server shut down while it ran").await?;
    }
    match Arc::try_unwrap(store) {
        Ok(store) => store.close().await?,
        Err(_) => warn!("the event store is still in use; not checkpointed"),
    }
    Ok(())
}
