//! Runs a [`ServerCore`] over any [`ServerTransport`]: frames and link events in, frames,
//! group changes and disconnects out, ticks on time. One task, no locks.

use bytes::Bytes;
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
        ServerEvent::MatchCreated { match_id, config, room } => {
            info!(%match_id, players = config.players, lives = config.lives, room = ?room.as_ref().map(|r| r.as_str()), "match created")
        }
        ServerEvent::PlayerJoined { match_id, player, name, .. } => {
            info!(%match_id, %player, %name, "player joined")
        }
        ServerEvent::PlayerLeft { match_id, player } => {
            info!(%match_id, %player, "player left the lobby")
        }
        ServerEvent::CountdownStarted { match_id, .. } => {
            info!(%match_id, "everyone ready: countdown")
        }
        ServerEvent::CountdownCancelled { match_id } => info!(%match_id, "countdown cancelled"),
        ServerEvent::MatchStarted { match_id } => info!(%match_id, "match started"),
        ServerEvent::Tick { .. } => {}
        ServerEvent::PlayerLost { match_id, player } => warn!(%match_id, %player, "player lost"),
        ServerEvent::PlayerBack { match_id, player } => info!(%match_id, %player, "player back"),
        ServerEvent::Paused { match_id, tick } => warn!(%match_id, tick, "match paused"),
        ServerEvent::Resuming { match_id, .. } => info!(%match_id, "match resuming"),
        ServerEvent::Forfeit { match_id, player } => info!(%match_id, %player, "player forfeits"),
        ServerEvent::MatchOver { match_id, result } => {
            let winner = result.winner.map_or_else(|| "none (draw)".to_owned(), |w| w.to_string());
            info!(%match_id, tick = result.tick, %winner, "match over")
        }
        ServerEvent::MatchClosed { match_id } => debug!(%match_id, "match closed"),
        ServerEvent::Restored { match_id, tick, .. } => {
            info!(%match_id, tick, "match restored from its journal; waiting for its players")
        }
        ServerEvent::Refused { peer, why } => debug!(%peer, ?why, "frame refused"),
        ServerEvent::PeerDropped { peer, reason } => warn!(%peer, %reason, "link dropped"),
        ServerEvent::Overrun { skipped } => warn!(skipped, "server fell behind the tick grid"),
    }
}
