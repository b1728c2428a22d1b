//! Runs a [`ClientCore`] over any [`Connector`]: connects (retrying until the server is
//! there, so start order never matters), pumps frames both ways, carries out the core's
//! commands (subscribe, reconnect), and lets a [`Controller`] steer the paddle.

use std::sync::Arc;

use bytes::Bytes;
use pong_domain::client::{ClientCore, ClientEvent, ClientPhase, TransportRequest};
use pong_domain::proto::{CloseReason, Reject};
use pong_domain::sim::Intent;
use pong_ports::{ClientTransport, Connector, TransportError};
pub use pong_transport_support::ReconnectPolicy;
use tracing::{debug, info, warn};

use crate::clock::Clock;

/// Steers a client: a bot, a keyboard, a test script.
pub trait Controller: Send {
    /// Called after the core has moved on; the intent to play from now on, if any.
    fn steer(&mut self, core: &ClientCore) -> Option<Intent>;

    /// Every event the core reports.
    fn on_event(&mut self, _core: &ClientCore, _event: &ClientEvent) {}
}

/// Why a client stopped before its match ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No link could be made in the allowed time.
    #[error("cannot reach the server ({addr}) after {attempts} attempts: {last}")]
    Unreachable {
        /// What was dialled.
        addr: String,
        /// How many times.
        attempts: u32,
        /// The last failure.
        last: TransportError,
    },
    /// The server refused to seat the player.
    #[error("the server refused: {0}")]
    Rejected(Reject),
    /// The server closed the link for good.
    #[error("the server closed the link: {0}")]
    Closed(CloseReason),
}

/// How the client's session ended.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    /// The final phase (`Over` with the result for a finished match, or `Left`).
    pub phase: ClientPhase,
    /// Pauses seen.
    pub pauses: u32,
    /// Hash mismatches seen (0 unless something is badly wrong).
    pub desyncs: u32,
}

/// Plays one match to its end (or until `cancel` completes, when the player leaves).
///
/// # Errors
/// [`ClientError`] if the server cannot be reached, refuses the player or closes the link.
pub async fn play(
    mut core: ClientCore,
    connector: Arc<dyn Connector>,
    controller: &mut dyn Controller,
    policy: ReconnectPolicy,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<(SessionEnd, ClientCore), ClientError> {
    let clock = Clock::new();
    tokio::pin!(cancel);
    let mut link: Option<Box<dyn ClientTransport>> = None;
    let mut ever_connected = false;
    loop {
        let l = match link.as_mut() {
            Some(l) => l,
            None => {
                let l = connect(connector.as_ref(), &policy, ever_connected).await?;
                ever_connected = true;
                core.handle_connected(clock.now());
                link.insert(l)
            }
        };
        // Carry out what the core asked for.
        while let Some(frame) = core.poll_transmit() {
            if let Err(e) = l.send(Bytes::from(frame)) {
                debug!(error = %e, "send failed");
                core.handle_disconnected(clock.now());
            }
        }
        let mut reconnect = false;
        while let Some(cmd) = core.poll_transport_request() {
            match cmd {
                TransportRequest::Subscribe(group) => match l.subscribe(group).await {
                    Ok(()) => core.handle_subscribed(clock.now(), group),
                    Err(e) => {
                        warn!(error = %e, "subscription failed; reconnecting");
                        core.handle_disconnected(clock.now());
                    }
                },
                TransportRequest::Reconnect => reconnect = true,
            }
        }
        while let Some(e) = core.poll_event() {
            log_event(&e);
            controller.on_event(&core, &e);
        }
        if let Some(intent) = controller.steer(&core) {
            core.set_intent(intent);
        }
        if core.is_finished() {
            // Let what is queued (a Leave) go out before the link closes.
            while let Some(frame) = core.poll_transmit() {
                let _ = l.send(Bytes::from(frame));
            }
            l.close().await;
            break;
        }
        if reconnect {
            info!("reconnecting");
            l.close().await;
            link = None;
            continue;
        }
        let deadline = core.poll_timeout().map(|t| clock.instant_at(t));
        // Frames before the timer: a timeout that is already due runs just below anyway,
        // and a core that keeps a timeout due must not keep the link from being read.
        tokio::select! {
            biased;
            () = &mut cancel => core.leave(),
            frame = l.recv() => match frame {
                Ok(frame) => {
                    let before = core.confirmed().map(|s| s.tick);
                    core.handle_frame(clock.now(), &frame);
                    let after = core.confirmed().map(|s| s.tick);
                    if let (Some(from_tick), Some(to_tick)) = (before, after)
                        && to_tick < from_tick
                    {
                        // Ticks the server simulated but lost in a crash (see docs/durability.md).
                        warn!(from_tick, to_tick, "the server went back: it restarted from its journal");
                    }
                }
                Err(e) => {
                    debug!(error = %e, "link closed");
                    core.handle_disconnected(clock.now());
                }
            },
            () = sleep_until(deadline) => core.handle_timeout(clock.now()),
        }
        if core.poll_timeout().is_some_and(|t| t <= clock.now()) {
            core.handle_timeout(clock.now());
        }
    }
    let outcome =
        SessionEnd { phase: core.phase().clone(), pauses: core.pauses(), desyncs: core.desyncs() };
    match core.phase() {
        ClientPhase::Rejected(r) => Err(ClientError::Rejected(*r)),
        ClientPhase::Closed(c) => Err(ClientError::Closed(*c)),
        _ => Ok((outcome, core)),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Connects, retrying with exponential backoff for as long as `policy` gives the first
/// connection (or, `ever_connected`, a reconnection).
///
/// # Errors
/// [`ClientError::Unreachable`] with the last failure once that time has passed.
pub async fn connect(
    connector: &dyn Connector,
    policy: &ReconnectPolicy,
    ever_connected: bool,
) -> Result<Box<dyn ClientTransport>, ClientError> {
    let mut retry = policy.retry(ever_connected);
    loop {
        let attempts = retry.attempt();
        match connector.connect().await {
            Ok(l) => {
                info!(server = %connector.describe(), attempts, "connected");
                return Ok(l);
            }
            Err(e) => {
                let Some(pause) = retry.pause() else {
                    return Err(ClientError::Unreachable {
                        addr: connector.describe(),
                        attempts,
                        last: e,
                    });
                };
                if attempts == 1 {
                    info!(server = %connector.describe(), error = %e, "server not reachable yet; retrying");
                } else {
                    debug!(error = %e, attempts, "connect failed; retrying");
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}

fn log_event(e: &ClientEvent) {
    match e {
        ClientEvent::Welcomed { match_id, player, resumed, .. } => {
            info!(%match_id, %player, resumed, "seated")
        }
        ClientEvent::LobbyChanged(l) => {
            debug!(members = l.members.len(), seats = l.seats, "lobby")
        }
        ClientEvent::Countdown { tick, .. } => debug!(tick, "countdown"),
        ClientEvent::Started => info!("playing"),
        ClientEvent::Paused { lost } => {
            let who: Vec<String> = lost.iter().map(|(p, _)| p.to_string()).collect();
            warn!(waiting_for = ?who, "match paused")
        }
        ClientEvent::Game { .. } | ClientEvent::Predicted(_) => {}
        ClientEvent::MatchOver { result, final_hash } => {
            let agreed = *final_hash == result.final_hash.0;
            info!(tick = result.tick, winner = ?result.winner.map(|w| w.to_string()), agreed, "match over")
        }
        ClientEvent::Desync { tick } => warn!(tick, "state disagreed with the server; resyncing"),
        ClientEvent::ServerLost => warn!("server lost"),
        ClientEvent::Rejected(r) => warn!(reason = %r, "refused"),
        ClientEvent::Closed(r) => warn!(reason = %r, "closed by the server"),
    }
}
