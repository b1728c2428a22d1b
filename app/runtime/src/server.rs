//! Runs a [`ServerCore`] over any [`ServerTransport`]: frames and link events in, frames,
//! group changes and disconnects out, ticks on time. One task, no locks; what operators see
//! of it goes through [`crate::telemetry`].

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pong_domain::journal::Record;
use pong_domain::proto::MatchId;
use pong_domain::route::Dest;
use pong_domain::server::{MatchPhase, ServerCore, ServerEvent, Transmit};
use pong_ports::{Incoming, ServerTransport, TransportError};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::telemetry::{Figures, PUBLISH_EVERY, StatusRequest, Telemetry};

/// Runs the server until `shutdown` completes or the transport closes, then tells every
/// member the server is going away. `on_event` sees everything the core reports (for
/// logs, metrics and the event store). Returns the core, for its final statistics.
///
/// # Errors
/// A transport failure the transport could not recover from.
pub async fn serve(
    core: ServerCore,
    transport: Box<dyn ServerTransport>,
    shutdown: impl std::future::Future<Output = ()>,
    on_event: impl FnMut(&ServerEvent),
) -> Result<ServerCore, TransportError> {
    serve_with(core, transport, shutdown, on_event, ServeOptions::default()).await
}

/// How [`serve_with`] serves, beyond the core and the transport.
#[derive(Default)]
pub struct ServeOptions {
    /// Where to publish metrics, health and status: once a second the core's counters, the
    /// matches by phase, the links and what was sent; the busy time of every timer wake; and
    /// the matches whenever a status page asks.
    pub telemetry: Option<Telemetry>,
    /// How long the matches in play may go on after `shutdown` (a drain: health turns 503,
    /// joins are refused as shutting down, the server stops when none is left in play and
    /// the finished ones have repeated their result for the core's linger). Zero stops at
    /// once.
    pub drain: Duration,
    /// Ends a drain at once (the operator's second Ctrl-C).
    pub stop_now: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("telemetry", &self.telemetry)
            .field("drain", &self.drain)
            .finish_non_exhaustive()
    }
}

/// [`serve`] with [`ServeOptions`]: telemetry, and a drain before stopping.
///
/// # Errors
/// A transport failure the transport could not recover from.
pub async fn serve_with(
    mut core: ServerCore,
    mut transport: Box<dyn ServerTransport>,
    shutdown: impl std::future::Future<Output = ()>,
    mut on_event: impl FnMut(&ServerEvent),
    options: ServeOptions,
) -> Result<ServerCore, TransportError> {
    let ServeOptions { telemetry, drain, stop_now } = options;
    let mut stop_now = stop_now.unwrap_or_else(|| Box::pin(std::future::pending()));
    let mut draining_until: Option<u64> = None;
    let clock = Clock::new();
    let mut buf = Vec::with_capacity(256);
    let mut out = Sent::default();
    let mut links: u64 = 0;
    let mut status_requests = telemetry.as_ref().and_then(Telemetry::take_status_requests);
    // One timer for the whole run, reset when it fires: a fresh `Sleep` per loop turn would
    // register with tokio's timer on every frame.
    let publish = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(publish);
    let mut woken_at: Option<Instant> = None;
    if let Some(t) = &telemetry {
        t.set_serving(true, transport.local_addr());
    }
    tokio::pin!(shutdown);
    info!(addr = %transport.local_addr(), "server listening");
    let result = loop {
        flush(&mut core, transport.as_ref(), &mut buf, &mut on_event, &mut out);
        if let Some(at) = woken_at.take()
            && let Some(t) = &telemetry
        {
            t.observe_tick(at.elapsed());
        }
        let wake = match (core.poll_timeout(), draining_until) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        };
        let deadline = wake.map(|t| clock.instant_at(t));
        tokio::select! {
            biased;
            () = &mut shutdown, if draining_until.is_none() => {
                let in_play = unsettled(&core);
                if drain.is_zero() || in_play == 0 {
                    break Ok(());
                }
                core.begin_drain();
                if let Some(t) = &telemetry {
                    t.set_draining();
                }
                let micros = u64::try_from(drain.as_micros()).unwrap_or(u64::MAX);
                draining_until = Some(clock.now().saturating_add(micros));
                info!(
                    matches = in_play,
                    drain_secs = drain.as_secs(),
                    "draining: the matches in play may finish; no new player is seated (signal again to stop now)"
                );
            }
            () = &mut stop_now, if draining_until.is_some() => break Ok(()),
            () = sleep_until(deadline) => {
                woken_at = Some(Instant::now());
                core.handle_timeout(clock.now());
            }
            incoming = transport.recv() => match incoming {
                Ok(Incoming::Frame { from, frame }) => core.handle_frame(clock.now(), from, &frame),
                Ok(Incoming::Gone { peer, reason }) => {
                    debug!(%peer, %reason, "link gone");
                    links = links.saturating_sub(1);
                    core.handle_peer_gone(clock.now(), peer);
                }
                Ok(Incoming::Connected { peer, origin }) => {
                    links += 1;
                    debug!(%peer, ?origin, "link up");
                    core.handle_peer_opened(clock.now(), peer, origin);
                }
                Err(TransportError::Closed) => break Ok(()),
                Err(e) => break Err(e),
            },
            () = &mut publish, if telemetry.is_some() => {
                if let Some(t) = &telemetry {
                    t.publish(Figures {
                        stats: core.stats().clone(),
                        phases: core.phase_counts(),
                        links,
                        frames_sent: out.frames,
                        bytes_sent: out.bytes,
                        transport_connected: transport.is_connected(),
                    });
                }
                let next = publish.deadline() + PUBLISH_EVERY;
                publish.as_mut().reset(next);
            }
            Some(reply) = next_request(&mut status_requests) => {
                let _ = reply.send(core.overview());
            }
        }
        // Frames may arrive faster than ticks fall due; never let them starve the tick.
        if core.poll_timeout().is_some_and(|t| t <= clock.now()) {
            core.handle_timeout(clock.now());
        }
        // On timer wakes only: counting walks every match, too much to do per frame.
        if let Some(until) = draining_until
            && woken_at.is_some()
        {
            let in_play = unsettled(&core);
            if in_play == 0 || clock.now() >= until {
                info!(left_in_play = in_play, "drain over");
                flush(&mut core, transport.as_ref(), &mut buf, &mut on_event, &mut out);
                break Ok(());
            }
        }
    };
    if let Some(t) = &telemetry {
        t.set_serving(false, String::new());
    }
    core.handle_shutdown();
    flush(&mut core, transport.as_ref(), &mut buf, &mut on_event, &mut out);
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

/// Matches a drain waits for: in play, or over and still repeating their result to their
/// members (for the core's linger), so every player gets the standings before the end.
fn unsettled(core: &ServerCore) -> usize {
    let counts = core.phase_counts();
    counts.in_play() + counts.of(MatchPhase::Over)
}

/// What the driver handed to the transport.
#[derive(Debug, Default)]
struct Sent {
    frames: u64,
    bytes: u64,
}

/// The next status request, or never when nobody can ask.
async fn next_request(
    requests: &mut Option<mpsc::Receiver<StatusRequest>>,
) -> Option<StatusRequest> {
    match requests {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
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
    sent: &mut Sent,
) {
    while let Some(t) = core.poll_transmit(buf) {
        if let Transmit::Send(_) = t {
            sent.frames += 1;
            sent.bytes += buf.len() as u64;
        }
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
