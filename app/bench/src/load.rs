//! Load-generating clients and what they observe.
//!
//! - [`run_light`]: a *lightweight* client. It joins, says Ready, and from then on answers
//!   every `Tick` with a signed `Input` for a tick a little ahead (and pings once a second,
//!   every 500 ms outside play, as the real client's heartbeat does). It decodes every
//!   frame, signs every input and counts ticks; it does **not** simulate, predict, check
//!   hashes, interpolate or resend unacknowledged inputs, so its CPU cost is a fraction of
//!   a real client's. What the *server* receives from it is what it receives from a real
//!   client at 60 Hz: one input frame per tick plus a ping a second. When its match ends it
//!   joins another.
//! - [`run_full`]: a full client: `pong_runtime::client::play` with the bot controller
//!   (prediction, reconciliation, hash checks), over a link that also observes the frames
//!   it receives. When its match ends it joins another.
//!
//! Both measure the **snapshot delay** of every `Tick` they receive: from the moment the
//! tick was due on the server's grid to the moment the client task has the frame. The due
//! time comes from the match's `StartAt{tick, server_time}` (the server's clock reads
//! microseconds since `serve` started, which the load tool notes as [`Observer::t0`]), so
//! it includes the server waking up late, the time spent on the matches stepped before this
//! one, the flush, the transport, and the client task being scheduled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use async_trait::async_trait;
use pong_domain::codec;
use pong_domain::proto::{InputRun, ServerMsg, SessionMsg};
use pong_domain::sim::Intent;
use pong_ports::{ClientTransport, Connector, Frame, MatchId, TransportError};
use tokio::sync::watch;

use crate::session::{Session, join_frame};
use crate::stats::Histogram;

/// Counters shared by every load client of a run.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Snapshot delay of every tick received.
    pub delay: Histogram,
    /// Ticks received.
    pub ticks: AtomicU64,
    /// Inputs sent.
    pub inputs: AtomicU64,
    /// `Paused` messages received.
    pub pauses: AtomicU64,
    /// Matches seen to their end.
    pub matches_over: AtomicU64,
    /// Clients welcomed (seated) at least once.
    pub welcomed: AtomicU64,
    /// Clients whose match is running now (up on the first tick, down at its end).
    pub playing: AtomicU64,
    /// Clients that stopped on an error.
    pub failed: AtomicU64,
}

impl ClientStats {
    /// Forgets the per-window counts (not `welcomed`/`playing`, which are states).
    pub fn reset(&self) {
        self.delay.reset();
        for c in [&self.ticks, &self.inputs, &self.pauses, &self.matches_over] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Turns `Tick` arrivals into snapshot delays.
#[derive(Clone, Debug)]
pub struct Observer {
    /// The instant the server's clock read zero (`serve` started).
    pub t0: Instant,
    /// Ticks per second of the server's grid.
    pub tick_hz: u16,
    /// Where the results go.
    pub stats: Arc<ClientStats>,
    anchor: Option<(u32, u64)>,
}

impl Observer {
    /// An observer for a server whose clock started at `t0`.
    pub fn new(t0: Instant, tick_hz: u16, stats: Arc<ClientStats>) -> Observer {
        Observer { t0, tick_hz, stats, anchor: None }
    }

    /// When tick `n` was due, if the match's anchor is known.
    fn due(&self, n: u32) -> Option<Instant> {
        let (tick, server_time) = self.anchor?;
        let k = u64::from(n.checked_sub(tick)?);
        let offset = (u128::from(k) * 1_000_000).div_ceil(u128::from(self.tick_hz.max(1)));
        let micros = server_time.saturating_add(u64::try_from(offset).ok()?);
        Some(self.t0 + Duration::from_micros(micros))
    }

    /// Notes a message received at `now`.
    pub fn observe(&mut self, msg: &ServerMsg, now: Instant) {
        match msg {
            ServerMsg::StartAt { tick, server_time, .. } => {
                self.anchor = Some((*tick, *server_time))
            }
            ServerMsg::Tick(t) => {
                self.stats.ticks.fetch_add(1, Ordering::Relaxed);
                if let Some(due) = self.due(t.tick) {
                    self.stats.delay.record(now.saturating_duration_since(due));
                }
            }
            ServerMsg::Paused(_) => {
                self.stats.pauses.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Forgets the match's anchor (a new match).
    pub fn forget_anchor(&mut self) {
        self.anchor = None;
    }
}

/// How light clients play.
#[derive(Clone, Copy, Debug)]
pub struct LightOptions {
    /// Match size asked for.
    pub players: u8,
    /// Inputs are for this many ticks after the tick just received.
    pub lead: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LightPhase {
    Lobby,
    Countdown,
    Playing,
}

/// Runs one lightweight client (see the module docs) until `stop` turns true.
///
/// # Errors
/// The link failed or the server refused the player.
pub async fn run_light(
    connector: Arc<dyn Connector>,
    name: String,
    opts: LightOptions,
    mut observer: Observer,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let stats = Arc::clone(&observer.stats);
    let mut s = Session::join(connector.as_ref(), &name, Some(opts.players)).await?;
    stats.welcomed.fetch_add(1, Ordering::Relaxed);
    s.link.subscribe(s.match_id).await?;
    s.send(&SessionMsg::Ready)?;
    let mut phase = LightPhase::Lobby;
    let mut ping = tokio::time::interval(Duration::from_millis(500));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pings = 0u32;
    let seat_phase = u32::from(s.player.get()) * 7;
    let result = loop {
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            _ = ping.tick() => {
                pings = pings.wrapping_add(1);
                // Every 500 ms outside play, every second in play.
                if phase != LightPhase::Playing || pings.is_multiple_of(2) {
                    s.send(&SessionMsg::Ping { id: pings, client_time: 0 })?;
                }
            }
            frame = s.link.recv() => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => break Err(e.into()),
                };
                let now = Instant::now();
                let Ok(msg) = codec::decode_server(&frame) else { continue };
                observer.observe(&msg, now);
                match msg {
                    ServerMsg::Tick(t) => {
                        if phase != LightPhase::Playing {
                            phase = LightPhase::Playing;
                            stats.playing.fetch_add(1, Ordering::Relaxed);
                        }
                        let at = t.tick.wrapping_add(opts.lead);
                        let intent = match (at.wrapping_add(seat_phase) / 20) % 3 {
                            0 => Intent::Plus,
                            1 => Intent::Minus,
                            _ => Intent::Stop,
                        };
                        s.send(&SessionMsg::Input(InputRun::new(at, [intent])))?;
                        stats.inputs.fetch_add(1, Ordering::Relaxed);
                    }
                    ServerMsg::StartAt { .. } if phase == LightPhase::Lobby => phase = LightPhase::Countdown,
                    // A cancelled countdown asks everyone to say Ready again.
                    ServerMsg::Lobby(l)
                        if phase == LightPhase::Lobby
                            && l.match_id == s.match_id
                            && l.members.iter().any(|m| m.player == s.player && !m.ready) =>
                    {
                        s.send(&SessionMsg::Ready)?;
                    }
                    ServerMsg::MatchOver(_) if phase == LightPhase::Playing => {
                        stats.matches_over.fetch_add(1, Ordering::Relaxed);
                        stats.playing.fetch_sub(1, Ordering::Relaxed);
                        phase = LightPhase::Lobby;
                        observer.forget_anchor();
                        s.link.send(join_frame(&name, Some(opts.players))?)?;
                    }
                    ServerMsg::Welcome(w) if w.match_id != s.match_id => {
                        s.reseat(&w);
                        s.link.subscribe(s.match_id).await?;
                        s.send(&SessionMsg::Ready)?;
                    }
                    ServerMsg::Closed(r) => break Err(anyhow::anyhow!("closed by the server: {r}")),
                    _ => {}
                }
            }
        }
    };
    if phase == LightPhase::Playing {
        stats.playing.fetch_sub(1, Ordering::Relaxed);
    }
    s.link.close().await;
    result
}

/// A connector whose links let an [`Observer`] see every frame received.
pub struct ObservingConnector {
    inner: Arc<dyn Connector>,
    observer: Observer,
}

impl ObservingConnector {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Connector>, observer: Observer) -> ObservingConnector {
        ObservingConnector { inner, observer }
    }
}

#[async_trait]
impl Connector for ObservingConnector {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        let inner = self.inner.connect().await?;
        Ok(Box::new(ObservedLink { inner, observer: self.observer.clone() }))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

struct ObservedLink {
    inner: Box<dyn ClientTransport>,
    observer: Observer,
}

#[async_trait]
impl ClientTransport for ObservedLink {
    async fn recv(&mut self) -> Result<Frame, TransportError> {
        let frame = self.inner.recv().await?;
        if let Ok(msg) = codec::decode_server(&frame) {
            self.observer.observe(&msg, Instant::now());
        }
        Ok(frame)
    }

    fn send(&self, frame: Frame) -> Result<(), TransportError> {
        self.inner.send(frame)
    }

    async fn subscribe(&mut self, group: MatchId) -> Result<(), TransportError> {
        self.inner.subscribe(group).await
    }

    async fn close(&mut self) {
        self.inner.close().await;
    }

    fn max_frame_len(&self) -> usize {
        self.inner.max_frame_len()
    }
}

/// Counts a full client's matches for the load tool.
struct FullBot {
    inner: pong_runtime::bot::BotController,
    stats: Arc<ClientStats>,
    playing: bool,
}

impl pong_runtime::client::Controller for FullBot {
    fn steer(&mut self, core: &pong_domain::client::ClientCore) -> Option<Intent> {
        let playing = matches!(core.phase(), pong_domain::client::ClientPhase::Playing);
        if playing != self.playing {
            self.playing = playing;
            if playing {
                self.stats.playing.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.playing.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.inner.steer(core)
    }

    fn on_event(
        &mut self,
        _core: &pong_domain::client::ClientCore,
        e: &pong_domain::client::ClientEvent,
    ) {
        match e {
            pong_domain::client::ClientEvent::Welcomed { .. } => {
                self.stats.welcomed.fetch_add(1, Ordering::Relaxed);
            }
            pong_domain::client::ClientEvent::MatchOver { .. } => {
                self.stats.matches_over.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Runs one full client (a bot through `pong_runtime::client::play`) until `stop` turns
/// true, joining a new match whenever one ends.
///
/// # Errors
/// The server refused the player or closed the link.
pub async fn run_full(
    connector: Arc<dyn Connector>,
    name: String,
    players: u8,
    seed: u64,
    observer: Observer,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    use pong_domain::client::{ClientConfig, ClientCore};
    use pong_domain::proto::Name;
    let stats = Arc::clone(&observer.stats);
    let observing: Arc<dyn Connector> = Arc::new(ObservingConnector::new(connector, observer));
    let mut round = 0u64;
    while !*stop.borrow() {
        let mut config = ClientConfig::new(Name::new(&name)?);
        config.players = Some(players);
        let mut bot = FullBot {
            inner: pong_runtime::bot::BotController::new(
                0.8,
                seed.wrapping_mul(31).wrapping_add(round),
            ),
            stats: Arc::clone(&stats),
            playing: false,
        };
        let mut stop_now = stop.clone();
        let cancel = async move {
            let _ = stop_now.changed().await;
        };
        let policy = pong_runtime::client::ReconnectPolicy::default();
        let result = pong_runtime::client::play(
            ClientCore::new(config),
            Arc::clone(&observing),
            &mut bot,
            policy,
            cancel,
        )
        .await;
        if bot.playing {
            stats.playing.fetch_sub(1, Ordering::Relaxed);
        }
        result?;
        round += 1;
        if stop.has_changed().unwrap_or(true) {
            break;
        }
    }
    Ok(())
}
