//! `pong replay DB`: the matches a server journaled with `--db`.
//!
//! - no options: one line per match (id, status, size, ticks, winner, when);
//! - `--match ID`: one match's seats, phases and result, from its journal;
//! - `--verify` (with `--match ID`, or alone for every finished match): re-runs the match
//!   with the domain's step function from its configuration and recorded inputs, checks
//!   every recorded hash, every forfeit, every pause and the final standings, and exits
//!   non-zero on any difference or any damage to the store;
//! - `--watch --match ID [--speed X]`: shows the match in the game window;
//! - `--backup FILE`: a consistent copy of the store, safe while a server writes it.
//!
//! The store is opened read-only, so all of this works beside a running server.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use pong_domain::journal::{self, Record};
use pong_domain::proto::{MatchId, MatchOver};
use pong_ports::{EventStore, MatchLog, MatchStatus, MatchSummary};
use pong_store_sqlite::SqliteStore;
use serde_json::json;

use crate::cli::ReplayArgs;

pub(crate) fn run(args: ReplayArgs, runtime: &tokio::runtime::Runtime) -> Result<ExitCode> {
    if args.watch {
        return watch(&args, runtime);
    }
    runtime.block_on(run_async(args))
}

async fn run_async(args: ReplayArgs) -> Result<ExitCode> {
    let store = SqliteStore::open_read_only(&args.db)
        .with_context(|| format!("cannot read the event store {}", args.db.display()))?;
    if let Some(dest) = &args.backup {
        store
            .backup_to(dest)
            .await
            .with_context(|| format!("cannot copy the store to {}", dest.display()))?;
        tracing::info!(to = %dest.display(), "store copied");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let code = match (args.match_id.map(MatchId), args.verify) {
        (None, false) => {
            list(&store.matches().await?, args.json, &mut out)?;
            ExitCode::SUCCESS
        }
        (Some(id), false) => {
            let log = store.load(id).await?;
            show(&log, args.json, &mut out)?;
            ExitCode::SUCCESS
        }
        (Some(id), true) => {
            store.check().await?;
            let ok = verify_one(&store, id, args.json, &mut out).await?;
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        (None, true) => {
            store.check().await?;
            let mut failed = 0;
            let mut verified = 0;
            for m in store.matches().await? {
                if m.status != MatchStatus::Over {
                    continue;
                }
                if verify_one(&store, m.match_id, args.json, &mut out).await? {
                    verified += 1;
                } else {
                    failed += 1;
                }
            }
            tracing::info!(verified, failed, "matches verified");
            if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    };
    out.flush()?;
    Ok(code)
}

/// Verifies one match and reports it; false if it does not verify (or cannot be read).
async fn verify_one(
    store: &SqliteStore,
    id: MatchId,
    json: bool,
    out: &mut impl Write,
) -> Result<bool> {
    let outcome = match store.load(id).await {
        Ok(log) => check_log(&log),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(v) => {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({
                        "match_id": id.0,
                        "verified": true,
                        "ticks": v.ticks,
                        "players": v.config.players,
                        "restarts": v.restarts,
                        "winner": v.result.winner.map(|w| w.get()),
                        "final_hash": format!("{:016x}", v.result.final_hash.0),
                        "standings": standings_json(&v.result),
                    })
                )?;
            } else {
                writeln!(
                    out,
                    "{id}: verified: {} ticks re-run bit for bit, standings match ({} players, {} lives, {} Hz, seed {:016x}{})",
                    v.ticks,
                    v.config.players,
                    v.config.lives,
                    v.config.tick_hz,
                    v.config.seed,
                    match v.restarts {
                        0 => String::new(),
                        n => format!(
                            ", taken back after {n} server crash{}",
                            if n == 1 { "" } else { "es" }
                        ),
                    }
                )?;
                write_result(&v.result, out)?;
            }
            Ok(true)
        }
        Err(why) => {
            if json {
                writeln!(out, "{}", json!({ "match_id": id.0, "verified": false, "error": why }))?;
            } else {
                writeln!(out, "{id}: VERIFICATION FAILED: {why}")?;
            }
            Ok(false)
        }
    }
}

/// The journal re-run, and its summary held against it.
fn check_log(log: &MatchLog) -> Result<journal::Verified, String> {
    let s = &log.summary;
    if s.status != MatchStatus::Over {
        return Err(format!(
            "the match is {}{}: it has no result to verify",
            s.status,
            s.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
        ));
    }
    let v = journal::verify(s.match_id, &log.records).map_err(|e| e.to_string())?;
    if s.winner != v.result.winner
        || s.final_hash != Some(v.result.final_hash.0)
        || s.last_tick != v.result.tick
    {
        return Err("the store's summary of the match disagrees with its journal".into());
    }
    Ok(v)
}

fn standings_json(r: &MatchOver) -> serde_json::Value {
    r.standings
        .iter()
        .map(|s| {
            json!({
                "player_id": s.player.get(),
                "name": s.name.as_str(),
                "lives": s.lives,
                "rank": s.rank,
                "out_tick": s.out_tick,
            })
        })
        .collect()
}

fn write_result(r: &MatchOver, out: &mut impl Write) -> Result<()> {
    for s in &r.standings {
        let out_at = match (s.out_tick, s.reason) {
            (Some(t), Some(pong_domain::OutReason::Forfeit)) => format!("forfeited at tick {t}"),
            (Some(t), _) => format!("out at tick {t}"),
            (None, _) => "still in".to_owned(),
        };
        writeln!(
            out,
            "  {} {:<16} rank {}  {} lives  {out_at}",
            s.player,
            s.name.as_str(),
            s.rank,
            s.lives
        )?;
    }
    let winner = r.winner.map_or_else(|| "nobody (draw)".to_owned(), |w| w.to_string());
    writeln!(out, "  winner {winner} at tick {}, final hash {:016x}", r.tick, r.final_hash.0)?;
    Ok(())
}

fn list(matches: &[MatchSummary], json: bool, out: &mut impl Write) -> Result<()> {
    if !json {
        writeln!(
            out,
            "{:>6}  {:<9}  {:>7}  {:>5}  {:>4}  {:>7}  {:<6}  {:<19}  NOTE",
            "MATCH", "STATUS", "PLAYERS", "LIVES", "HZ", "TICKS", "WINNER", "CREATED (UTC)"
        )?;
    }
    for m in matches {
        if json {
            writeln!(
                out,
                "{}",
                json!({
                    "match_id": m.match_id.0,
                    "status": m.status.as_str(),
                    "players": m.config.players,
                    "lives": m.config.lives,
                    "tick_hz": m.config.tick_hz,
                    "seed": m.config.seed,
                    "room": m.room,
                    "ticks": m.last_tick,
                    "records": m.records,
                    "winner": m.winner.map(|w| w.get()),
                    "final_hash": m.final_hash.map(|h| format!("{h:016x}")),
                    "created_unix_ms": m.created_unix_ms,
                    "note": m.note,
                })
            )?;
        } else {
            let winner = match (m.status, m.winner) {
                (MatchStatus::Over, Some(w)) => w.to_string(),
                (MatchStatus::Over, None) => "draw".to_owned(),
                _ => "-".to_owned(),
            };
            writeln!(
                out,
                "{:>6}  {:<9}  {:>7}  {:>5}  {:>4}  {:>7}  {:<6}  {:<19}  {}",
                m.match_id.0,
                m.status.as_str(),
                m.config.players,
                m.config.lives,
                m.config.tick_hz,
                m.last_tick,
                winner,
                utc(m.created_unix_ms),
                m.note.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

/// One match's journal, summarised.
fn show(log: &MatchLog, json: bool, out: &mut impl Write) -> Result<()> {
    let s = &log.summary;
    let ticks = log.records.iter().filter(|r| matches!(r, Record::Tick { .. })).count();
    if json {
        let records: Vec<String> = log
            .records
            .iter()
            .filter(|r| !matches!(r, Record::Tick { .. }))
            .map(|r| format!("{r:?}"))
            .collect();
        writeln!(
            out,
            "{}",
            json!({ "match_id": s.match_id.0, "status": s.status.as_str(), "ticks": ticks, "records": records })
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{}: {} ({} players, {} lives, {} Hz, seed {:016x}), {} records, {ticks} ticks{}",
        s.match_id,
        s.status,
        s.config.players,
        s.config.lives,
        s.config.tick_hz,
        s.config.seed,
        log.records.len(),
        s.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()
    )?;
    let mut last_tick = 0;
    for r in &log.records {
        let line = match r {
            Record::Tick { tick, .. } => {
                last_tick = *tick;
                continue;
            }
            Record::Created { room, .. } => format!(
                "created{}",
                room.as_ref().map(|r| format!(" in room {}", r.as_str())).unwrap_or_default()
            ),
            Record::Joined { player, name, session, .. } => {
                format!("{name} takes seat {player} (session {})", session.0)
            }
            Record::Left { player } => format!("{player} leaves the lobby"),
            Record::CountdownStarted => "everyone ready: countdown".into(),
            Record::CountdownCancelled => "countdown cancelled".into(),
            Record::Started => "first tick".into(),
            Record::Lost { player } => format!("{player} lost"),
            Record::Back { player } => format!("{player} back"),
            Record::Paused { tick } => format!("paused after tick {tick}"),
            Record::Resuming => "resuming after a countdown".into(),
            Record::Forfeit { player } => format!("{player} forfeits"),
            Record::Over { result } => {
                writeln!(out, "  tick {:>7}  over", result.tick)?;
                write_result(result, out)?;
                continue;
            }
            Record::Closed => "closed".into(),
            Record::Restored { tick, .. } => {
                format!("server restarted: match taken back at tick {tick}")
            }
        };
        writeln!(out, "  tick {last_tick:>7}  {line}")?;
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time in milliseconds; `?` for one out of range
/// (a corrupted row must not stop the listing).
fn utc(unix_ms: i64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "?".to_owned())
}

/// `--watch`: the match in the game window, played back by [`crate::watch`].
#[cfg(feature = "gui")]
fn watch(args: &ReplayArgs, runtime: &tokio::runtime::Runtime) -> Result<ExitCode> {
    use std::sync::Arc;

    use pong_client::WindowOptions;
    use pong_domain::client::ClientConfig;
    use pong_domain::proto::Name;
    use pong_transport_memory::{MemoryHub, MemoryOptions};

    let Some(id) = args.match_id.map(MatchId) else { bail!("--watch needs --match ID") };
    let log = runtime.block_on(async {
        let store = SqliteStore::open_read_only(&args.db)
            .with_context(|| format!("cannot read the event store {}", args.db.display()))?;
        anyhow::Ok(store.load(id).await?)
    })?;
    let playback = crate::watch::playback(&log, args.speed)?;
    let speed = playback.speed();
    let hub = MemoryHub::new(MemoryOptions::default());
    let transport = Box::new(hub.server()?);
    let host = runtime.spawn(crate::watch::host(playback, transport));
    let mut config = ClientConfig::new(Name::new("viewer").map_err(|e| anyhow::anyhow!("{e}"))?);
    config.players = Some(log.summary.config.players);
    let mut options = WindowOptions::new(Arc::new(hub.connector()), config);
    options.title = format!("Distributed Pong: replay of {id} (speed {speed})");
    let exit = pong_client::run(options);
    host.abort();
    Ok(if exit.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `--watch` needs the game window, which this build does not have.
#[cfg(not(feature = "gui"))]
fn watch(_args: &ReplayArgs, _runtime: &tokio::runtime::Runtime) -> Result<ExitCode> {
    bail!("--watch needs the game window: this pong was built without the `gui` feature")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_utc() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03");
        assert_eq!(super::utc(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(super::utc(i64::MAX), "?");
    }
}
