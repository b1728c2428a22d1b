//! `pong replay DB --match ID --watch`: a journaled match played back in the game window.
//!
//! The window is the ordinary game client (`pong_client`) over the memory transport. At the
//! other end, instead of a server, a small host speaks the server's side of the protocol
//! from the journal: it seats the viewer, answers its pings, and once the viewer is ready
//! sends the recorded ticks on time, then the recorded result. The viewer's `ClientCore`
//! checks every tick's hash on the way, as it does against a live server.
//!
//! Physics is per tick, so `--speed X` is the match announced at `tick_hz × X` (within the
//! allowed tick rates). In a 2- or 3-player match the viewer takes an empty seat and only
//! watches; in a 4-player match every seat is taken and the viewer watches from P1's (its
//! keys move nothing: the recorded inputs rule, and the paddle follows them a tick late).
//! Pauses are not replayed: the ticks follow one another.

use std::time::Duration;

use anyhow::{Result, bail};
use pong_domain::codec::{self, ClientFrame};
use pong_domain::journal::{self, Record};
use pong_domain::proto::{
    Acks, Epoch, Keyframe, Lobby, MatchId, MatchOver, Member, OpenMsg, Paused, ServerMsg,
    SessionId, SessionMsg, StateHash, TickMsg, Token, Welcome,
};
use pong_domain::route::PeerId;
use pong_domain::rules::{MAX_TICK_HZ, MIN_TICK_HZ, MatchConfig, PlayerId, Rules};
use pong_domain::sim::{MatchState, TickInput};
use pong_ports::{Frame, Incoming, MatchLog, ServerTransport, TransportError};
use tokio::time::Instant;
use tracing::{debug, info};

/// Time from the viewer's Ready to the first tick (µs).
const LEAD_IN: u64 = 1_000_000;
/// Most ticks resent for one resync; further back gets a keyframe.
const RESEND_MAX: usize = 64;

/// A journaled match ready to be played back.
#[derive(Debug)]
pub(crate) struct Playback {
    match_id: MatchId,
    /// The config announced to the viewer (the tick rate scaled by the speed).
    config: MatchConfig,
    rules: Rules,
    ticks: Vec<(TickInput, u64)>,
    result: Option<MatchOver>,
    members: Vec<Member>,
    viewer: PlayerId,
    speed: f64,
}

impl Playback {
    /// Reads a match's journal (it must replay cleanly) for playback at `speed`.
    pub(crate) fn new(log: &MatchLog, speed: f64) -> Result<Playback> {
        if !(speed.is_finite() && speed > 0.0) {
            bail!("--speed must be a positive number, not {speed}");
        }
        let id = log.summary.match_id;
        let replay = journal::replay(id, &log.records)
            .map_err(|e| anyhow::anyhow!("{id} cannot be replayed: {e}"))?;
        let ticks = log
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Tick { input, hash, .. } => Some((*input, *hash)),
                _ => None,
            })
            .collect();
        let recorded = replay.rules().config;
        let hz = (f64::from(recorded.tick_hz) * speed)
            .round()
            .clamp(f64::from(MIN_TICK_HZ), f64::from(MAX_TICK_HZ)) as u16;
        let config = MatchConfig { tick_hz: hz, ..recorded };
        let members: Vec<Member> = replay
            .seats()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                Some(Member {
                    player: PlayerId::ALL[i],
                    name: s.name.clone(),
                    ready: true,
                    connected: true,
                })
            })
            .collect();
        let viewer = PlayerId::new(recorded.players).unwrap_or(PlayerId::ALL[0]);
        Ok(Playback {
            match_id: id,
            config,
            rules: Rules::new(config),
            ticks,
            result: replay.result().cloned(),
            members,
            viewer,
            speed: f64::from(hz) / f64::from(recorded.tick_hz),
        })
    }

    /// The speed actually played at (the tick rate is bounded).
    pub(crate) fn speed(&self) -> f64 {
        self.speed
    }

    fn welcome(&self, resumed: bool) -> ServerMsg {
        ServerMsg::Welcome(Welcome {
            session: SessionId(1),
            token: Token([0; 16]),
            match_id: self.match_id,
            player: self.viewer,
            side: self.viewer.side(),
            paddle: self.rules.paddle_start(self.viewer.side()),
            config: self.config,
            resumed,
        })
    }

    fn lobby(&self) -> ServerMsg {
        ServerMsg::Lobby(Lobby {
            match_id: self.match_id,
            epoch: Epoch(0),
            room: None,
            seats: self.config.players,
            // The viewer's own seat (P1's in a 4-player match) is shown not ready: a client
            // says Ready only while the lobby says it has not.
            members: self
                .members
                .iter()
                .map(|m| Member { ready: m.player != self.viewer, ..m.clone() })
                .collect(),
        })
    }

    fn tick_msg(&self, i: usize) -> Option<ServerMsg> {
        let (input, hash) = *self.ticks.get(i)?;
        let tick = u32::try_from(i + 1).ok()?;
        Some(ServerMsg::Tick(TickMsg {
            tick,
            input,
            acks: Acks::relative_to(tick, [None; 4]),
            hash: StateHash(hash),
        }))
    }
}

/// The host's side of one playback.
struct Host {
    playback: Playback,
    transport: Box<dyn ServerTransport>,
    clock: Instant,
    viewer: Option<PeerId>,
    /// Server time of tick 1, once the viewer is ready.
    start: Option<u64>,
    /// Ticks sent so far; `state` is after the last of them.
    sent: usize,
    state: MatchState,
    last_input: TickInput,
    buf: Vec<u8>,
}

impl Host {
    fn now(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn send(&mut self, to: PeerId, msg: &ServerMsg) {
        if codec::encode_server(msg, &mut self.buf).is_ok()
            && let Err(e) = self.transport.send(to, Frame::copy_from_slice(&self.buf))
        {
            debug!(error = %e, "the viewer's link is gone");
        }
    }

    /// Where the playback stands, for a viewer that (re)joins.
    fn phase_msg(&self) -> ServerMsg {
        match self.start {
            None => self.playback.lobby(),
            Some(at) if self.sent < self.playback.ticks.len() => {
                ServerMsg::StartAt { epoch: Epoch(1), tick: 1, server_time: at }
            }
            Some(_) => self.end_msg(),
        }
    }

    fn end_msg(&self) -> ServerMsg {
        match &self.playback.result {
            Some(r) => ServerMsg::MatchOver(r.clone()),
            None => ServerMsg::Paused(Paused {
                epoch: Epoch(2),
                tick: self.state.tick,
                lost: Vec::new(),
            }),
        }
    }

    fn on_frame(&mut self, from: PeerId, frame: &[u8]) {
        let now = self.now();
        match codec::decode_client(frame) {
            Ok(ClientFrame::Open(OpenMsg::Join(_))) => {
                self.viewer = Some(from);
                let _ = self.transport.join_group(from, self.playback.match_id);
                self.send(from, &self.playback.welcome(false));
                let phase = self.phase_msg();
                self.send(from, &phase);
            }
            Ok(ClientFrame::Open(OpenMsg::Resume { session })) => {
                self.send(from, &ServerMsg::Challenge { session, nonce: 1 });
            }
            Ok(ClientFrame::Signed(f)) => match f.msg {
                SessionMsg::Prove { .. } => {
                    self.viewer = Some(from);
                    let _ = self.transport.join_group(from, self.playback.match_id);
                    self.send(from, &self.playback.welcome(true));
                    let phase = self.phase_msg();
                    self.send(from, &phase);
                }
                SessionMsg::Ping { id, client_time } => {
                    self.send(from, &ServerMsg::Pong { id, client_time, server_time: now });
                }
                SessionMsg::Ready if self.start.is_none() => {
                    let at = now + LEAD_IN;
                    self.start = Some(at);
                    info!(
                        ticks = self.playback.ticks.len(),
                        speed = self.playback.speed,
                        "playing back"
                    );
                    self.send(
                        from,
                        &ServerMsg::StartAt { epoch: Epoch(1), tick: 1, server_time: at },
                    );
                }
                SessionMsg::Resync { from_tick } => self.resync(from, from_tick),
                _ => {}
            },
            Err(e) => debug!(error = %e, "a frame the host cannot read"),
        }
    }

    fn resync(&mut self, to: PeerId, from_tick: u32) {
        let from = from_tick as usize;
        if from >= 1 && from <= self.sent && self.sent - from < RESEND_MAX {
            for i in from - 1..self.sent {
                if let Some(msg) = self.playback.tick_msg(i) {
                    self.send(to, &msg);
                }
            }
        } else if self.sent > 0 {
            let k = Keyframe {
                state: self.state,
                input: self.last_input,
                acks: Acks::relative_to(self.state.tick, [None; 4]),
            };
            self.send(to, &ServerMsg::Keyframe(k));
        }
    }

    /// Server time at which the next tick is due.
    fn next_due(&self) -> Option<u64> {
        let start = self.start?;
        (self.sent < self.playback.ticks.len())
            .then(|| start + self.playback.config.ticks_to_micros(self.sent as u64))
    }

    fn send_tick(&mut self) {
        let Some(msg) = self.playback.tick_msg(self.sent) else { return };
        let (input, _) = self.playback.ticks[self.sent];
        self.state.step(&self.playback.rules, &input);
        self.last_input = input;
        self.sent += 1;
        if let Some(v) = self.viewer {
            self.send(v, &msg);
            if self.sent == self.playback.ticks.len() {
                let end = self.end_msg();
                self.send(v, &end);
            }
        }
    }
}

/// Plays `playback` to the viewer that connects through `transport`, until the transport
/// closes (the window is gone).
pub(crate) async fn host(playback: Playback, transport: Box<dyn ServerTransport>) {
    let state = MatchState::new(&playback.rules);
    let mut host = Host {
        playback,
        transport,
        clock: Instant::now(),
        viewer: None,
        start: None,
        sent: 0,
        state,
        last_input: TickInput::IDLE,
        buf: Vec::new(),
    };
    loop {
        let due = host.next_due().map(|t| host.clock + Duration::from_micros(t));
        tokio::select! {
            () = sleep_until(due) => host.send_tick(),
            incoming = host.transport.recv() => match incoming {
                Ok(Incoming::Frame { from, frame }) => host.on_frame(from, &frame),
                Ok(Incoming::Gone { peer, .. }) if host.viewer == Some(peer) => host.viewer = None,
                Ok(_) => {}
                Err(TransportError::Closed) => break,
                Err(e) => {
                    debug!(error = %e, "playback transport failed");
                    break;
                }
            },
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use pong_domain::client::{ClientConfig, ClientPhase};
    use pong_domain::proto::Name;
    use pong_domain::server::{ServerConfig, ServerCore};
    use pong_ports::{MatchStatus, MatchSummary};
    use pong_runtime::bot::{BotOptions, run_bots};
    use pong_runtime::client::{Controller, ReconnectPolicy, play};
    use pong_runtime::local::LocalServer;
    use pong_transport_memory::{MemoryHub, MemoryOptions};

    use super::*;

    /// Does nothing: a viewer.
    struct Watch;

    impl Controller for Watch {
        fn steer(
            &mut self,
            _: &pong_domain::client::ClientCore,
        ) -> Option<pong_domain::sim::Intent> {
            None
        }
    }

    /// A real match, journaled from the server's events.
    async fn journaled(players: u8) -> MatchLog {
        let config = ServerConfig {
            default_players: players,
            lives: 1,
            tick_hz: 1000,
            countdown: 200_000,
            record_ticks: true,
            ..ServerConfig::default()
        };
        let records = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = records.clone();
        let server = LocalServer::start(ServerCore::new(config, [3; 32]), move |e| {
            if let Some((_, r)) = e.record() {
                sink.lock().unwrap().push(r.clone());
            }
        })
        .unwrap();
        let opts = BotOptions {
            count: usize::from(players),
            players: Some(players),
            ..BotOptions::default()
        };
        for r in run_bots(server.connector(), &opts).await {
            r.unwrap();
        }
        server.stop().await.unwrap();
        let records = records.lock().unwrap().clone();
        let Record::Created { config, .. } = records[0].clone() else { panic!() };
        let summary = MatchSummary {
            match_id: MatchId(1),
            config,
            room: None,
            created_unix_ms: 0,
            status: MatchStatus::Over,
            records: records.len() as u64,
            last_tick: 0,
            winner: None,
            final_hash: None,
            note: None,
        };
        MatchLog { summary, records }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_viewer_sees_the_recorded_match_to_its_result() {
        for players in [2, 4] {
            let log = journaled(players).await;
            let recorded = journal::verify(MatchId(1), &log.records).unwrap().result;
            let playback = Playback::new(&log, 2.0).unwrap();
            assert_eq!(playback.speed(), 2.0);
            let hub = MemoryHub::new(MemoryOptions::default());
            let host_task = tokio::spawn(host(playback, Box::new(hub.server().unwrap())));
            let mut config = ClientConfig::new(Name::new("viewer").unwrap());
            config.players = Some(players);
            let core = pong_domain::client::ClientCore::new(config);
            let (outcome, core) = play(
                core,
                Arc::new(hub.connector()),
                &mut Watch,
                ReconnectPolicy::default(),
                std::future::pending(),
            )
            .await
            .unwrap();
            let ClientPhase::Over { result, final_hash } = outcome.phase else {
                panic!("{:?}", outcome.phase)
            };
            assert_eq!(result, recorded);
            assert_eq!(final_hash, recorded.final_hash.0);
            assert_eq!(outcome.desyncs, 0);
            assert_eq!(core.confirmed().unwrap().tick, recorded.tick);
            drop(hub);
            host_task.abort();
        }
    }

    #[test]
    fn the_speed_scales_the_tick_rate_within_bounds() {
        let config = MatchConfig::new(2, 1, 60, 1).unwrap();
        let log = MatchLog {
            summary: MatchSummary {
                match_id: MatchId(1),
                config,
                room: None,
                created_unix_ms: 0,
                status: MatchStatus::Open,
                records: 1,
                last_tick: 0,
                winner: None,
                final_hash: None,
                note: None,
            },
            records: vec![Record::Created { config, room: None }],
        };
        assert_eq!(Playback::new(&log, 0.5).unwrap().config.tick_hz, 30);
        assert_eq!(Playback::new(&log, 100.0).unwrap().config.tick_hz, MAX_TICK_HZ);
        assert!(Playback::new(&log, 0.0).is_err());
        assert!(Playback::new(&log, f64::NAN).is_err());
    }
}
