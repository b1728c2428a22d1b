//! Runs a [`ServerCore`] over any [`ServerTransport`]: frames and link events in, frames,
//! group changes and disconnects out, ticks on time. One task, no locks.

use bytes::Bytes;
use pong_domain::journal::Record;
use pong_domain::proto::MatchId;
use pong_domain::route::Dest;
use pong_domain::server::{ServerCore, ServerEvent, Transmit};
use pong_ports::{Incoming, ServerTransport, TransportError};
use tracing::{debug, info, warn};

use crate::clock::Clock;

/// Runs the server until `shutdown` completes or the transport closes, then tells every
/// member the server is going away. `on_event` sees everything the core reports (for
/// logs, metrics and the event store). Returns the core, for its final statistics.
///
/// # Errors
/// A transport failure the transport could not recover from.
pub async fn serve(
    mut core: ServerCore,
    mut transport: Box<dyn ServerTransport>,
    shutdown: impl std::future::Future<Output = ()>,
    mut on_event: impl FnMut(&ServerEvent),
) -> Result<ServerCore, TransportError> {
    let clock = Clock::new();
    let mut buf = Vec::with_capacity(256);
    tokio::pin!(shutdown);
    info!(addr = %transport.local_addr(), "server listening");
    let result = loop {
        flush(&mut core, transport.as_ref(), &mut buf, &mut on_event);
        let deadline = core.poll_timeout().map(|t| clock.instant_at(t));
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            () = sleep_until(deadline) => core.handle_timeout(clock.now()),
            incoming = transport.recv() => match incoming {
                Ok(Incoming::Frame { from, frame }) => core.handle_frame(clock.now(), from, &frame),
                Ok(Incoming::Gone { peer, reason }) => {
                    debug!(%peer, %reason, "link gone");
                    core.handle_peer_gone(clock.now(), peer);
                }
                Ok(Incoming::Connected(peer)) => debug!(%peer, "link up"),
                Err(TransportError::Closed) => break Ok(()),
                Err(e) => break Err(e),
            },
        }
        // Frames may arrive faster than ticks fall due; never let them starve the tick.
        if core.poll_timeout().is_some_and(|t| t <= clock.now()) {
            core.handle_timeout(clock.now());
        }
    };
    core.handle_shutdown();
    flush(&mut core, transport.as_ref(), &mut buf, &mut on_event);
    transport.shutdown().await;
    let stats = core.stats();
    info!(
        matches = stats.matches_created,
        finished = stats.matches_finished,
        ticks = stats.ticks,
        refused = stats.malformed + stats.forged + stats.replayed + stats.rate_limited,
        "server stopped"
    );
    result.map(|()| core)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Carries out everything the core asked for.
fn flush(
    core: &mut ServerCore,
    transport: &dyn ServerTransport,
    buf: &mut Vec<u8>,
    on_event: &mut impl FnMut(&ServerEvent),
) {
    while let Some(t) = core.poll_transmit(buf) {
        let result = match t {
            Transmit::Send(Dest::Peer(p)) => transport.send(p, Bytes::copy_from_slice(buf)),
            Transmit::Send(Dest::Group(g)) => transport.publish(g, Bytes::copy_from_slice(buf)),
            Transmit::JoinGroup(p, g) => transport.join_group(p, g),
            Transmit::LeaveGroup(p, g) => transport.leave_group(p, g),
            Transmit::Disconnect(p) => transport.disconnect(p),
        };
        if let Err(e) = result {
            // A link that vanished or overflowed is reported as gone by the transport.
            debug!(error = %e, "transmit failed");
        }
    }
    while let Some(e) = core.poll_event() {
        log_event(&e);
        on_event(&e);
    }
}

fn log_event(e: &ServerEvent) {
    match e {
        ServerEvent::Match { match_id, record } => log_record(*match_id, record),
        ServerEvent::Refused { peer, why } => debug!(%peer, ?why, "frame refused"),
        ServerEvent::PeerDropped { peer, reason } => warn!(%peer, %reason, "link dropped"),
        ServerEvent::Overrun { skipped } => warn!(skipped, "server fell behind the tick grid"),
    }
}

fn log_record(match_id: MatchId, record: &Record) {
    match record {
        Record::Created { config, room } => {
            info!(%match_id, players = config.players, lives = config.lives, room = ?room.as_ref().map(|r| r.as_str()), "match created")
        }
        Record::Joined { player, name, .. } => info!(%match_id, %player, %name, "player joined"),
        Record::Left { player } => info!(%match_id, %player, "player left the lobby"),
        Record::CountdownStarted => info!(%match_id, "everyone ready: countdown"),
        Record::CountdownCancelled => info!(%match_id, "countdown cancelled"),
        Record::Started => info!(%match_id, "match started"),
        Record::Tick { .. } => {}
        Record::Lost { player } => warn!(%match_id, %player, "player lost"),
        Record::Back { player } => info!(%match_id, %player, "player back"),
        Record::Paused { tick } => warn!(%match_id, tick, "match paused"),
        Record::Resuming => info!(%match_id, "match resuming"),
        Record::Forfeit { player } => info!(%match_id, %player, "player forfeits"),
        Record::Over { result } => {
            let winner = result.winner.map_or_else(|| "none (draw)".to_owned(), |w| w.to_string());
            info!(%match_id, tick = result.tick, %winner, "match over")
        }
        Record::Closed => debug!(%match_id, "match closed"),
        Record::Restored { tick, .. } => {
            info!(%match_id, tick, "match restored from its journal; waiting for its players")
        }
    }
}
