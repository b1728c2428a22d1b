//! A player's end of the protocol as a sans-IO state machine: joining, clock sync, the
//! synchronized start, input sequencing, prediction and reconciliation, and an event stream
//! any frontend (the Bevy window, a bot, a test) can render.
//!
//! Drive it like [`crate::server::ServerCore`]: call `handle_*` as things happen (with `now`
//! in microseconds on the caller's monotonic clock), then drain [`ClientCore::poll_transmit`]
//! (frames for the server), [`ClientCore::poll_transport_request`] (what the transport must
//! do: subscribe, reconnect) and [`ClientCore::poll_event`] (what to show), then sleep until
//! [`ClientCore::poll_timeout`]. Set the player's control with [`ClientCore::set_intent`].
//!
//! # How the match stays consistent
//! The client keeps two copies of the match:
//! - the **confirmed** state advances only by the server's
//!   [`TickMsg`](crate::proto::TickMsg)s, with the same step function the server runs, and
//!   is checked against the server's hash on every tick; every member's confirmed state is
//!   therefore the server's, bit for bit.
//! - the **predicted** state runs ahead of it by a little more than half a round trip,
//!   applying the player's own intents at once and assuming the others keep their last
//!   confirmed intents. When a confirmed tick disagrees with what was predicted for it, the
//!   prediction is rebuilt from the confirmed state (rewind, replay the unacknowledged own
//!   inputs); the jump is smoothed out in [`ClientCore::view`].
//!
//! # Layout
//! This module keeps [`ClientCore`], its public types and its public API (getters,
//! `handle_*`, `poll_*`) and routes each server message to the module whose rules it
//! concerns. Each child module owns one part of the state (a field of `ClientCore`) and the
//! rules for it:
//! - `session.rs`: joining or resuming, the subscription, the lobby and Ready, the
//!   countdown, pauses, refusals: the phase machine.
//! - `clock.rs`: clock sync (pings, offset, round trip) and the server's tick schedule.
//! - `confirmed.rs`: the confirmed copy: server ticks in order, the buffer for a gap,
//!   Resync, keyframes, hash checks and desyncs, the end of the match.
//! - `prediction.rs`: the prediction, its lead and how the acks adapt it, late binding
//!   (revising the last input), sending own inputs.
//! - `reconcile.rs`: checking the prediction against each confirmed tick; rewind and replay.
//! - `view.rs`: [`View`]: what to draw, interpolated and smoothed.
//! - `netstats.rs`: [`NetStats`] and [`NetMeter`]: the network figures a frontend's
//!   overlay shows (round trip, jitter, lead, corrections, resent ticks, traffic).
//! - `timer.rs`: every deadline in one table, read by both `poll_timeout` and
//!   `handle_timeout`.

mod clock;
mod confirmed;
mod netstats;
mod prediction;
mod reconcile;
mod session;
mod timer;
mod view;

use std::collections::VecDeque;

use crate::codec;
use crate::proto::{
    Lobby, MatchId, MatchOver, Name, OpenMsg, Paused, Reject, RoomName, ServerMsg, SessionId,
    SessionMsg, Signed, Token,
};
use crate::rules::{MatchConfig, PlayerId, Rules};
use crate::sim::{Event, Intent, MatchState};
use clock::Clock;
use confirmed::Confirmed;
pub use netstats::{NetMeter, NetRates, NetStats};
use prediction::Prediction;
use session::Session;
use timer::{Timer, TimerTable};
pub use view::View;

/// A second in µs.
const SECOND: u64 = 1_000_000;

/// How a client joins and behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The player's name.
    pub name: Name,
    /// Match size wanted; `None` takes the server's default.
    pub players: Option<u8>,
    /// A named room to join.
    pub room: Option<RoomName>,
    /// A session to take back (a restarted client with its token).
    pub resume: Option<(SessionId, Token)>,
    /// Silence from the server after which it is declared lost (µs).
    pub server_timeout: u64,
    /// Ping period while not playing (µs); pings are also the heartbeat.
    pub ping_every: u64,
    /// Ping period while playing (µs); inputs are the heartbeat then.
    pub ping_every_playing: u64,
    /// How long an unanswered request (join, ready, resync) waits before it is repeated (µs).
    pub retry_every: u64,
}

impl ClientConfig {
    /// Defaults for a player called `name`.
    pub fn new(name: Name) -> Self {
        ClientConfig {
            name,
            players: None,
            room: None,
            resume: None,
            server_timeout: 1_500_000,
            ping_every: 200_000,
            ping_every_playing: SECOND,
            retry_every: 500_000,
        }
    }
}

/// Where the client is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientPhase {
    /// Waiting for a link to the server.
    Connecting,
    /// Asked for a seat (or for its session back); waiting for the answer.
    Joining,
    /// Seated; waiting for the match to fill and everyone to be ready.
    Lobby(Lobby),
    /// The start (or restart) is committed: tick `tick` is simulated at local time `at`.
    Countdown {
        /// The first tick.
        tick: u32,
        /// Local time of the first tick (µs).
        at: u64,
    },
    /// The match is running.
    Playing,
    /// The match waits for lost members.
    Paused(Paused),
    /// The match is over; `final_hash` is this client's own hash of the final state.
    Over {
        /// The server's result.
        result: MatchOver,
        /// [`MatchState::hash`] of this client's confirmed final state.
        final_hash: u64,
    },
    /// The server refused the client.
    Rejected(Reject),
    /// The server closed the link for good.
    Closed(crate::proto::CloseReason),
    /// The player left.
    Left,
}

/// What a frontend may want to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server gave (or gave back) a seat.
    Welcomed {
        /// The match.
        match_id: MatchId,
        /// The seat.
        player: PlayerId,
        /// How it is played.
        config: MatchConfig,
        /// True after a reconnection.
        resumed: bool,
    },
    /// Who is in the lobby changed.
    LobbyChanged(Lobby),
    /// A countdown runs: tick `tick` comes at local time `at` (µs).
    Countdown {
        /// The first tick.
        tick: u32,
        /// Local time of it.
        at: u64,
    },
    /// The countdown is over; play.
    Started,
    /// The match paused; deadlines are local times (µs).
    Paused {
        /// Who the match waits for, and until when (local time).
        lost: Vec<(PlayerId, u64)>,
    },
    /// Something happened in the confirmed match (the same on every host).
    Game {
        /// The tick.
        tick: u32,
        /// What.
        event: Event,
    },
    /// Something the prediction expects (for sounds and effects; may be corrected).
    Predicted(Event),
    /// The match is over.
    MatchOver {
        /// The server's result.
        result: MatchOver,
        /// This client's hash of its final state.
        final_hash: u64,
    },
    /// The confirmed state disagreed with the server's hash; a resync is under way.
    Desync {
        /// The tick.
        tick: u32,
    },
    /// The server has been silent too long, or the link dropped; reconnecting.
    ServerLost,
    /// The server refused a request.
    Rejected(Reject),
    /// The server closed the link for good.
    Closed(crate::proto::CloseReason),
}

/// What the driver must ask of its transport (the link to the server), apart from sending
/// frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportRequest {
    /// Subscribe to the match group, then call [`ClientCore::handle_subscribed`].
    Subscribe(MatchId),
    /// Drop the link, open a new one (with backoff), then call [`ClientCore::handle_connected`].
    Reconnect,
}

/// A player's end of the protocol. See the module docs. Cloning gives an independent
/// copy (for benchmarks and what-if checks).
#[derive(Clone)]
pub struct ClientCore {
    config: ClientConfig,
    phase: ClientPhase,
    /// The match's rules, from the Welcome.
    rules: Option<Rules>,
    session: Session,
    clock: Clock,
    confirmed: Confirmed,
    prediction: Prediction,
    timers: TimerTable,
    /// Frames for the server.
    out: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    requests: VecDeque<TransportRequest>,
    /// Frames from the server that did not decode.
    bad_frames: u64,
    /// What went over the network, for [`ClientCore::net_stats`].
    traffic: netstats::Traffic,
}

impl ClientCore {
    /// A client that will join (or resume) once connected.
    pub fn new(config: ClientConfig) -> ClientCore {
        let session = Session::new(config.resume);
        ClientCore {
            config,
            phase: ClientPhase::Connecting,
            rules: None,
            session,
            clock: Clock::default(),
            confirmed: Confirmed::new(),
            prediction: Prediction::new(),
            timers: TimerTable::default(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            requests: VecDeque::new(),
            bad_frames: 0,
            traffic: netstats::Traffic::default(),
        }
    }

    // ---- getters ----

    /// Where the client is.
    pub fn phase(&self) -> &ClientPhase {
        &self.phase
    }

    /// True once the match is over (or the server refused or closed for good).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.phase,
            ClientPhase::Over { .. }
                | ClientPhase::Rejected(_)
                | ClientPhase::Closed(_)
                | ClientPhase::Left
        )
    }

    /// The match joined.
    pub fn match_id(&self) -> Option<MatchId> {
        self.session.match_id
    }

    /// This player's seat.
    pub fn player(&self) -> Option<PlayerId> {
        self.session.player
    }

    /// The session and its token (to resume from another process).
    pub fn session(&self) -> Option<(SessionId, Token)> {
        self.session.credentials
    }

    /// The rules of the match, once welcomed.
    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }

    /// The server-confirmed state.
    pub fn confirmed(&self) -> Option<&MatchState> {
        self.confirmed.state.as_ref()
    }

    /// The predicted state (what the player sees).
    pub fn predicted(&self) -> Option<&MatchState> {
        self.prediction.state.as_ref()
    }

    /// Every event of the confirmed match so far, with its tick: the same on every host.
    pub fn game_log(&self) -> &[(u32, Event)] {
        &self.confirmed.log
    }

    /// Pauses seen.
    pub fn pauses(&self) -> u32 {
        self.session.pauses
    }

    /// Confirmed ticks whose hash disagreed with the server's.
    pub fn desyncs(&self) -> u32 {
        self.confirmed.desyncs
    }

    /// Own inputs revised after they were sent because the intent changed in time (late
    /// binding, see [`ClientCore::set_intent`]).
    pub fn revisions(&self) -> u64 {
        self.prediction.revisions
    }

    /// Frames from the server that did not decode.
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// The estimated round trip to the server (µs).
    pub fn rtt(&self) -> u64 {
        self.clock.rtt()
    }

    /// Converts a server time to local time.
    pub fn to_local(&self, server_time: u64) -> u64 {
        self.clock.to_local(server_time)
    }

    /// The player's current intent.
    pub fn intent(&self) -> Intent {
        self.prediction.intent
    }

    // ---- outputs ----

    /// The next frame to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let frame = self.out.pop_front()?;
        self.traffic.frames_out += 1;
        self.traffic.bytes_out += frame.len() as u64;
        Some(frame)
    }

    /// The next thing the transport must do.
    pub fn poll_transport_request(&mut self) -> Option<TransportRequest> {
        self.requests.pop_front()
    }

    /// The next thing to show.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`ClientCore::handle_timeout`] next: the earliest armed timer.
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.is_running() {
            return None;
        }
        self.timers.next_timeout()
    }

    /// True while the timers run: connected, and not finished.
    fn is_running(&self) -> bool {
        self.session.connected && !self.is_finished()
    }

    /// Re-arms the timers that follow from the state rather than being set where they are
    /// scheduled (Retry: whether an answer is awaited; Step: when the prediction's next
    /// step is due). Every `&mut self` entry point ends with it, so
    /// [`ClientCore::poll_timeout`] is always up to date.
    fn update_timers(&mut self) {
        let awaiting = self.session.awaiting_welcome
            || matches!(self.phase, ClientPhase::Lobby(_) | ClientPhase::Paused(_))
            || self.confirmed.gap_since.is_some();
        self.timers.set_or_stop(Timer::Retry, awaiting.then_some(self.session.retry_at));
        self.timers.set_or_stop(Timer::Step, self.next_step_time());
    }

    // ---- sending ----

    fn push_open(&mut self, msg: &OpenMsg) {
        let mut buf = Vec::new();
        if codec::encode_open(msg, &mut buf).is_ok() {
            self.out.push_back(buf);
        }
    }

    /// Queues `msg` signed with the session's token; nothing without a session.
    fn push_signed(&mut self, msg: &SessionMsg) {
        let Some((session, token)) = self.session.credentials else { return };
        if matches!(msg, SessionMsg::Resync { .. }) {
            self.traffic.resyncs += 1;
        }
        self.session.seq = self.session.seq.wrapping_add(1);
        let mut buf = Vec::new();
        let signed = Signed { session, seq: self.session.seq };
        if codec::encode_signed(signed, msg, &token, &mut buf).is_ok() {
            self.out.push_back(buf);
        }
    }

    // ---- inputs ----

    /// The link to the server is up (first time or after a reconnect).
    pub fn handle_connected(&mut self, now: u64) {
        self.session.connected = true;
        self.clock.new_link();
        // A new link has no subscription yet.
        self.session.subscribed = None;
        self.session.subscribing = false;
        self.timers.set(Timer::Idle, now.saturating_add(self.config.server_timeout));
        if matches!(self.phase, ClientPhase::Connecting) {
            self.phase = ClientPhase::Joining;
        }
        self.session.awaiting_welcome = true;
        self.send_join();
        self.session.retry_at = now + self.config.retry_every;
        self.timers.set(Timer::Ping, now);
        self.update_timers();
    }

    /// The link to the server dropped.
    pub fn handle_disconnected(&mut self, _now: u64) {
        if self.session.connected {
            self.session.link_lost();
            if !self.is_finished() {
                self.events.push_back(ClientEvent::ServerLost);
                self.requests.push_back(TransportRequest::Reconnect);
            }
        }
        self.update_timers();
    }

    /// The transport confirmed the subscription to `group`.
    pub fn handle_subscribed(&mut self, now: u64, group: MatchId) {
        self.session.subscribing = false;
        if Some(group) == self.session.match_id {
            self.session.subscribed = Some(group);
            self.maybe_ready(now, true);
        }
        self.update_timers();
    }

    /// The player leaves for good: before the start the seat is freed, during the match the
    /// player forfeits. The Leave frame is queued; send it before dropping the link.
    pub fn leave(&mut self) {
        if !self.is_finished() {
            if self.session.credentials.is_some() {
                self.push_signed(&SessionMsg::Leave);
            }
            self.phase = ClientPhase::Left;
        }
        self.update_timers();
    }

    /// The player's control changed. The new intent applies from the next predicted tick;
    /// if the last predicted one can still reach the server before the server simulates it,
    /// its input is revised too (late binding), at the next [`handle_timeout`], which
    /// [`poll_timeout`] then asks for at once.
    ///
    /// [`handle_timeout`]: ClientCore::handle_timeout
    /// [`poll_timeout`]: ClientCore::poll_timeout
    pub fn set_intent(&mut self, intent: Intent) {
        let p = &self.prediction;
        if intent != p.intent
            && matches!(self.phase, ClientPhase::Playing)
            && p.state.is_some_and(|s| s.tick != p.revised_tick)
        {
            // Due at once: the revision is worth something only while it can still arrive.
            self.timers.set(Timer::Revise, 0);
        }
        self.prediction.intent = intent;
        self.update_timers();
    }

    /// A frame arrived from the server.
    pub fn handle_frame(&mut self, now: u64, frame: &[u8]) {
        self.traffic.frames_in += 1;
        self.traffic.bytes_in += frame.len() as u64;
        self.on_frame(now, frame);
        self.update_timers();
    }

    /// Routes a server message to the rules it concerns.
    fn on_frame(&mut self, now: u64, frame: &[u8]) {
        let msg = match codec::decode_server(frame) {
            Ok(m) => m,
            Err(_) => {
                self.bad_frames += 1;
                return;
            }
        };
        self.timers.set(Timer::Idle, now.saturating_add(self.config.server_timeout));
        match msg {
            ServerMsg::Welcome(w) => self.on_welcome(now, w),
            ServerMsg::Challenge { session, nonce, next_seq } => {
                if self.session.credentials.is_some_and(|(s, _)| s == session) {
                    // Numbers below `next_seq` are spent at the server (perhaps by a run of
                    // this client before a restart from its session file).
                    self.session.seq = self.session.seq.max(next_seq.saturating_sub(1));
                    self.push_signed(&SessionMsg::Prove { nonce });
                }
            }
            ServerMsg::Rejected(r) => self.on_rejected(r),
            ServerMsg::Pong { id, client_time, server_time } => {
                self.on_pong(now, id, client_time, server_time);
            }
            ServerMsg::Lobby(l) => self.on_lobby(now, l),
            ServerMsg::StartAt { epoch, tick, server_time } => {
                if self.fresh_epoch(epoch) {
                    self.on_start_at(tick, server_time);
                }
            }
            ServerMsg::Tick(t) => self.on_tick(now, t),
            ServerMsg::Keyframe(k) => self.on_keyframe(now, k),
            ServerMsg::Paused(p) => self.on_paused(now, p),
            ServerMsg::MatchOver(r) => self.on_match_over(now, r),
            ServerMsg::Closed(reason) => {
                if reason != crate::proto::CloseReason::Replaced && !self.is_finished() {
                    self.phase = ClientPhase::Closed(reason);
                    self.events.push_back(ClientEvent::Closed(reason));
                }
            }
        }
        if self.prediction.needs_rewind {
            self.rewind();
        }
    }

    /// Time has passed: acts on every expired timer, then lets the
    /// prediction catch up with the clock.
    pub fn handle_timeout(&mut self, now: u64) {
        if !self.is_running() {
            return;
        }
        self.on_timeout(now);
        self.update_timers();
    }

    fn on_timeout(&mut self, now: u64) {
        if self.timers.is_expired(Timer::Revise, now) {
            self.timers.stop(Timer::Revise);
            self.revise_last_input(now);
        }
        if self.timers.is_expired(Timer::Idle, now) {
            self.session.link_lost();
            self.events.push_back(ClientEvent::ServerLost);
            self.requests.push_back(TransportRequest::Reconnect);
            return;
        }
        if self.timers.is_expired(Timer::Ping, now) {
            if self.session.credentials.is_some() && !self.session.awaiting_welcome {
                self.send_ping(now);
            }
            let playing = matches!(self.phase, ClientPhase::Playing);
            let every = if playing && self.clock.is_synced() {
                self.config.ping_every_playing
            } else {
                self.config.ping_every
            };
            self.timers.set(Timer::Ping, now + every);
        }
        if self.timers.is_expired(Timer::Retry, now) {
            if self.session.awaiting_welcome {
                self.send_join();
                self.session.retry_at = now + self.config.retry_every;
            }
            if matches!(self.phase, ClientPhase::Lobby(_) | ClientPhase::Paused(_)) {
                self.maybe_ready(now, false);
            }
            self.resync_gap(now);
        }
        // The retry period runs on while no answer is awaited (the timer is not armed
        // then): an expiry nobody woke for just moves it on.
        if self.session.retry_at <= now {
            self.session.retry_at = now + self.config.retry_every;
        }
        // The prediction follows the clock rather than its timer: it catches up at every
        // wake.
        self.advance_prediction(now);
    }
}
