//! A player's end of the protocol as a sans-IO state machine: joining, clock sync, the
//! synchronized start, input sequencing, prediction and reconciliation, and an event stream
//! any frontend (the Bevy window, a bot, a test) can render.
//!
//! Drive it like [`crate::server::ServerCore`]: call `handle_*` as things happen (with `now`
//! in microseconds on the caller's monotonic clock), then drain [`ClientCore::poll_transmit`]
//! (frames for the server), [`ClientCore::poll_command`] (what the transport must do:
//! subscribe, reconnect) and [`ClientCore::poll_event`] (what to show), then sleep until
//! [`ClientCore::poll_timeout`]. Set the player's control with [`ClientCore::set_intent`].
//!
//! # How the match stays consistent
//! The client keeps two copies of the match:
//! - the **confirmed** state advances only by the server's [`TickMsg`]s, with the same step
//!   function the server runs, and is checked against the server's hash on every tick;
//!   every member's confirmed state is therefore the server's, bit for bit.
//! - the **predicted** state runs ahead of it by a little more than half a round trip,
//!   applying the player's own intents at once and assuming the others keep their last
//!   confirmed intents. When a confirmed tick disagrees with what was predicted for it, the
//!   prediction is rebuilt from the confirmed state (rewind, replay the unacknowledged own
//!   inputs); the jump is smoothed out in [`ClientCore::view`].

use std::collections::{BTreeMap, VecDeque};

use crate::codec::{self, EncodeError};
use crate::proto::{
    Epoch, InputRun, Join, Keyframe, Lobby, MAX_INPUT_RUN, MatchId, MatchOver, Name, OpenMsg,
    Paused, Reject, RoomName, ServerMsg, SessionId, SessionMsg, Signed, TickMsg, Token, Welcome,
};
use crate::rules::{MatchConfig, PlayerId, Rules};
use crate::sim::{Ball, Event, Intent, MatchState, TickInput};

const SECOND: u64 = 1_000_000;
/// Ticks of history kept for prediction checks and own inputs.
const RING: usize = 256;
/// Most clock samples kept.
const CLOCK_SAMPLES: usize = 16;
/// Clock samples wanted before saying Ready (so the countdown is accurate).
const CLOCK_SAMPLES_FOR_READY: usize = 3;
/// Most predicted ticks simulated in one call; further behind, the prediction restarts
/// from the confirmed state.
const MAX_STEPS_PER_CALL: u32 = 60;
/// The least margin kept between an own input's arrival and the server's tick for it (µs),
/// on top of half the round trip: timers on both ends wake up to a millisecond late.
const MIN_CUSHION: u64 = 1_500;
/// The margin a new match starts with (µs), before the acks have said anything.
const START_CUSHION: u64 = 4_000;
/// The most the prediction runs ahead of the server (µs).
const MAX_LEAD: u64 = 2 * SECOND;
/// Confirmed states kept for interpolating the other paddles.
const HISTORY: usize = 8;
/// Ticks buffered while waiting for a missing one.
const MAX_PENDING: usize = 1024;

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

/// What the driver's transport must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Subscribe to the match group, then call [`ClientCore::handle_subscribed`].
    Subscribe(MatchId),
    /// Drop the link, open a new one (with backoff), then call [`ClientCore::handle_connected`].
    Reconnect,
}

/// What to draw, in arena units (see [`crate::rules`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// The tick shown (predicted).
    pub tick: u32,
    /// Top-left corner of the ball.
    pub ball: (f32, f32),
    /// True if the ball rests in the centre before a serve.
    pub ball_resting: bool,
    /// Low-edge coordinate of each paddle along its side.
    pub paddles: [f32; 4],
    /// Lives per seat (confirmed).
    pub lives: [u8; 4],
}

/// The clock offset to the server, NTP style: of recent ping exchanges, the one with the
/// shortest round trip gives the best estimate (its two legs are the most alike).
#[derive(Clone, Debug, Default)]
struct Clock {
    samples: VecDeque<(u64, i64)>,
    best: Option<(u64, i64)>,
}

impl Clock {
    fn sample(&mut self, sent: u64, received: u64, server_time: u64) {
        if received < sent {
            return;
        }
        let rtt = received - sent;
        let midpoint = sent + rtt / 2;
        let offset = i64::try_from(i128::from(server_time) - i128::from(midpoint)).unwrap_or(0);
        if self.samples.len() == CLOCK_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((rtt, offset));
        self.best = self.samples.iter().copied().min_by_key(|(rtt, _)| *rtt);
    }

    fn offset(&self) -> i64 {
        self.best.map_or(0, |(_, o)| o)
    }

    fn rtt(&self) -> u64 {
        self.best.map_or(0, |(r, _)| r)
    }

    fn to_server(&self, local: u64) -> u64 {
        local.saturating_add_signed(self.offset())
    }

    fn to_local(&self, server: u64) -> u64 {
        server.saturating_add_signed(-self.offset())
    }
}

/// A player's end of the protocol. See the module docs. Cloning gives an independent
/// copy (for benchmarks and what-if checks).
#[derive(Clone)]
pub struct ClientCore {
    config: ClientConfig,
    phase: ClientPhase,
    connected: bool,
    session: Option<(SessionId, Token)>,
    match_id: Option<MatchId>,
    player: Option<PlayerId>,
    rules: Option<Rules>,
    seq: u32,
    clock: Clock,
    ping_id: u32,
    pings: VecDeque<(u32, u64)>,
    next_ping: u64,
    next_retry: u64,
    last_heard: u64,
    subscribed: Option<MatchId>,
    subscribing: bool,
    /// A Join or Resume is out and its Welcome has not come: repeat it, and send nothing
    /// else on the new link until the server has taken the session back.
    awaiting_welcome: bool,
    /// The newest phase count seen; older phase messages are stale.
    epoch: Epoch,
    /// Server's mapping of ticks to time: tick `.0` is simulated at server time `.1`.
    anchor: Option<(u32, u64)>,
    started: bool,
    // Confirmed match.
    confirmed: Option<MatchState>,
    confirmed_input: TickInput,
    history: VecDeque<(u64, MatchState)>,
    pending: BTreeMap<u32, TickMsg>,
    gap_since: Option<u64>,
    resync_at: Option<u64>,
    awaiting_keyframe: bool,
    /// The server went back to an earlier tick (a restart from its journal): the keyframe
    /// awaited replaces the prediction too.
    rewound: bool,
    result: Option<MatchOver>,
    // Prediction.
    predicted: Option<MatchState>,
    predicted_ring: Vec<Option<(u32, MatchState)>>,
    own_inputs: Vec<(u32, Intent)>,
    intent: Intent,
    acked: Option<u32>,
    first_input: Option<u32>,
    /// Margin over half the round trip by which own inputs should reach the server before
    /// their tick (µs); see [`ClientCore::lead`].
    cushion: u64,
    /// The intent changed since the last predicted step: revise that step's input if it
    /// can still reach the server in time.
    revise: bool,
    /// The last predicted tick a revision was tried for: at most one try per tick, so that
    /// a controller that decides from the revised prediction cannot flip it back and forth,
    /// nor keep the driver waking at once.
    revised_tick: u32,
    ack_window_min: i64,
    ack_window_len: u32,
    needs_rewind: bool,
    ball_error: (f32, f32),
    prev_ball: (f32, f32),
    input_dirty: bool,
    // Outputs and counters.
    out: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    commands: VecDeque<Command>,
    log: Vec<(u32, Event)>,
    pauses: u32,
    desyncs: u32,
    revisions: u64,
    bad_frames: u64,
}

impl ClientCore {
    /// A client that will join (or resume) once connected.
    pub fn new(config: ClientConfig) -> ClientCore {
        let session = config.resume;
        ClientCore {
            config,
            phase: ClientPhase::Connecting,
            connected: false,
            session,
            match_id: None,
            player: None,
            rules: None,
            seq: 0,
            clock: Clock::default(),
            ping_id: 0,
            pings: VecDeque::new(),
            next_ping: 0,
            next_retry: 0,
            last_heard: 0,
            subscribed: None,
            subscribing: false,
            awaiting_welcome: false,
            epoch: Epoch(0),
            anchor: None,
            started: false,
            confirmed: None,
            confirmed_input: TickInput::IDLE,
            history: VecDeque::new(),
            pending: BTreeMap::new(),
            gap_since: None,
            resync_at: None,
            awaiting_keyframe: false,
            rewound: false,
            result: None,
            predicted: None,
            predicted_ring: vec![None; RING],
            own_inputs: vec![(u32::MAX, Intent::Stop); RING],
            intent: Intent::Stop,
            acked: None,
            first_input: None,
            cushion: START_CUSHION,
            revise: false,
            revised_tick: 0,
            ack_window_min: i64::MAX,
            ack_window_len: 0,
            needs_rewind: false,
            ball_error: (0.0, 0.0),
            prev_ball: (0.0, 0.0),
            input_dirty: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
            commands: VecDeque::new(),
            log: Vec::new(),
            pauses: 0,
            desyncs: 0,
            revisions: 0,
            bad_frames: 0,
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
        self.match_id
    }

    /// This player's seat.
    pub fn player(&self) -> Option<PlayerId> {
        self.player
    }

    /// The session and its token (to resume from another process).
    pub fn session(&self) -> Option<(SessionId, Token)> {
        self.session
    }

    /// The rules of the match, once welcomed.
    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }

    /// The server-confirmed state.
    pub fn confirmed(&self) -> Option<&MatchState> {
        self.confirmed.as_ref()
    }

    /// The predicted state (what the player sees).
    pub fn predicted(&self) -> Option<&MatchState> {
        self.predicted.as_ref()
    }

    /// Every event of the confirmed match so far, with its tick: the same on every host.
    pub fn game_log(&self) -> &[(u32, Event)] {
        &self.log
    }

    /// Pauses seen.
    pub fn pauses(&self) -> u32 {
        self.pauses
    }

    /// Confirmed ticks whose hash disagreed with the server's.
    pub fn desyncs(&self) -> u32 {
        self.desyncs
    }

    /// Own inputs revised after they were sent because the intent changed in time (late
    /// binding, see [`ClientCore::set_intent`]).
    pub fn revisions(&self) -> u64 {
        self.revisions
    }

    /// Frames from the server that did not decode.
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// The estimated round trip to the server (µs).
    pub fn rtt(&self) -> u64 {
        self.clock.rtt()
    }

    /// The estimated offset of the server's clock from the local one (µs).
    pub fn clock_offset(&self) -> i64 {
        self.clock.offset()
    }

    /// How far ahead of the server the prediction runs (µs): tick `n` is predicted, and its
    /// own input sent, this long before the server simulates it. Half the round trip plus a
    /// cushion that the acks adapt, so that inputs arrive just in time: any more is latency
    /// every other player sees.
    pub fn lead(&self) -> u64 {
        (self.clock.rtt() / 2).saturating_add(self.cushion).min(MAX_LEAD)
    }

    /// Converts a server time to local time.
    pub fn to_local(&self, server_time: u64) -> u64 {
        self.clock.to_local(server_time)
    }

    /// The player's current intent.
    pub fn intent(&self) -> Intent {
        self.intent
    }

    // ---- outputs ----

    /// The next frame to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// The next thing the transport must do.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next thing to show.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`ClientCore::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.is_finished() || !self.connected {
            return None;
        }
        let mut t = self.next_ping.min(self.last_heard.saturating_add(self.config.server_timeout));
        if matches!(self.phase, ClientPhase::Lobby(_) | ClientPhase::Paused(_))
            || self.awaiting_welcome
            || self.gap_since.is_some()
        {
            t = t.min(self.next_retry);
        }
        if let Some(next) = self.next_tick_time() {
            t = t.min(next);
        }
        if self.revise {
            // Due at once: the revision is worth something only while it can still arrive.
            t = 0;
        }
        Some(t)
    }

    /// Local time at which the prediction should take its next step.
    fn next_tick_time(&self) -> Option<u64> {
        if !matches!(self.phase, ClientPhase::Playing | ClientPhase::Countdown { .. }) {
            return None;
        }
        let (anchor_tick, anchor_time) = self.anchor?;
        if self.predicted.is_some_and(|p| p.is_over()) {
            return None;
        }
        // The countdown ends at the anchor itself, whatever the prediction already holds.
        if matches!(self.phase, ClientPhase::Countdown { .. }) {
            return Some(self.clock.to_local(anchor_time));
        }
        let next = self.predicted.map_or(anchor_tick, |p| p.tick + 1);
        // Tick `next` is predicted `lead` before the server simulates it.
        let at = self.tick_server_time(next)?.saturating_sub(self.lead());
        Some(self.clock.to_local(at.max(anchor_time)))
    }

    /// Server time at which the server simulates `tick`, by the anchor (the anchor's time
    /// for a tick before it).
    fn tick_server_time(&self, tick: u32) -> Option<u64> {
        let (anchor_tick, anchor_time) = self.anchor?;
        let rules = self.rules.as_ref()?;
        let ticks = u64::from(tick.saturating_sub(anchor_tick));
        Some(anchor_time.saturating_add(rules.config.ticks_to_micros(ticks)))
    }

    // ---- sending ----

    fn push_open(&mut self, msg: &OpenMsg) {
        let mut buf = Vec::new();
        if codec::encode_open(msg, &mut buf).is_ok() {
            self.out.push_back(buf);
        }
    }

    fn push_signed(&mut self, msg: &SessionMsg) {
        let Some((session, token)) = self.session else { return };
        self.seq = self.seq.wrapping_add(1);
        let mut buf = Vec::new();
        let r: Result<(), EncodeError> =
            codec::encode_signed(Signed { session, seq: self.seq }, msg, &token, &mut buf);
        if r.is_ok() {
            self.out.push_back(buf);
        }
    }

    fn send_join(&mut self) {
        match self.session {
            Some((session, _)) => self.push_open(&OpenMsg::Resume { session }),
            None => {
                let join = Join {
                    name: self.config.name.clone(),
                    players: self.config.players,
                    room: self.config.room.clone(),
                };
                self.push_open(&OpenMsg::Join(join));
            }
        }
    }

    fn send_ping(&mut self, now: u64) {
        self.ping_id = self.ping_id.wrapping_add(1);
        if self.pings.len() == 8 {
            self.pings.pop_front();
        }
        self.pings.push_back((self.ping_id, now));
        self.push_signed(&SessionMsg::Ping { id: self.ping_id, client_time: now });
    }

    // ---- inputs ----

    /// The link to the server is up (first time or after a reconnect).
    pub fn handle_connected(&mut self, now: u64) {
        self.connected = true;
        self.last_heard = now;
        self.subscribed = None;
        self.subscribing = false;
        if matches!(self.phase, ClientPhase::Connecting) {
            self.phase = ClientPhase::Joining;
        }
        self.awaiting_welcome = true;
        self.send_join();
        self.next_retry = now + self.config.retry_every;
        self.next_ping = now;
    }

    /// The link to the server dropped.
    pub fn handle_disconnected(&mut self, _now: u64) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.subscribed = None;
        self.subscribing = false;
        if !self.is_finished() {
            self.events.push_back(ClientEvent::ServerLost);
            self.commands.push_back(Command::Reconnect);
        }
    }

    /// The transport confirmed the subscription to `group`.
    pub fn handle_subscribed(&mut self, now: u64, group: MatchId) {
        self.subscribing = false;
        if Some(group) == self.match_id {
            self.subscribed = Some(group);
            self.maybe_ready(now, true);
        }
    }

    /// The player leaves for good: before the start the seat is freed, during the match the
    /// player forfeits. The Leave frame is queued; send it before dropping the link.
    pub fn leave(&mut self) {
        if self.is_finished() {
            return;
        }
        if self.session.is_some() {
            self.push_signed(&SessionMsg::Leave);
        }
        self.phase = ClientPhase::Left;
    }

    /// The player's control changed. The new intent applies from the next predicted tick;
    /// if the last predicted one can still reach the server before the server simulates it,
    /// its input is revised too (late binding), at the next [`handle_timeout`], which
    /// [`poll_timeout`] then asks for at once.
    ///
    /// [`handle_timeout`]: ClientCore::handle_timeout
    /// [`poll_timeout`]: ClientCore::poll_timeout
    pub fn set_intent(&mut self, intent: Intent) {
        if intent != self.intent
            && matches!(self.phase, ClientPhase::Playing)
            && self.predicted.is_some_and(|p| p.tick != self.revised_tick)
        {
            self.revise = true;
        }
        self.intent = intent;
    }

    /// A frame arrived from the server.
    pub fn handle_frame(&mut self, now: u64, frame: &[u8]) {
        let msg = match codec::decode_server(frame) {
            Ok(m) => m,
            Err(_) => {
                self.bad_frames += 1;
                return;
            }
        };
        self.last_heard = now;
        match msg {
            ServerMsg::Welcome(w) => self.on_welcome(now, w),
            ServerMsg::Challenge { session, nonce } => {
                if self.session.is_some_and(|(s, _)| s == session) {
                    self.push_signed(&SessionMsg::Prove { nonce });
                }
            }
            ServerMsg::Rejected(r) => self.on_rejected(r),
            ServerMsg::Pong { id, client_time, server_time } => {
                if let Some(i) =
                    self.pings.iter().position(|&(pid, t)| pid == id && t == client_time)
                {
                    self.pings.remove(i);
                    self.clock.sample(client_time, now, server_time);
                }
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
            ServerMsg::MatchOver(r) => {
                if self.result.is_none() {
                    self.result = Some(r);
                }
                self.try_finish(now);
            }
            ServerMsg::Closed(reason) => {
                if reason != crate::proto::CloseReason::Replaced && !self.is_finished() {
                    self.phase = ClientPhase::Closed(reason);
                    self.events.push_back(ClientEvent::Closed(reason));
                }
            }
        }
        if self.needs_rewind {
            self.rewind();
        }
    }

    fn on_welcome(&mut self, now: u64, w: Welcome) {
        if w.config.validate().is_err() {
            self.bad_frames += 1;
            return;
        }
        self.awaiting_welcome = false;
        let same = self.match_id == Some(w.match_id) && self.rules.is_some();
        self.session = Some((w.session, w.token));
        self.match_id = Some(w.match_id);
        self.player = Some(w.player);
        if !same {
            let rules = Rules::new(w.config);
            let state = MatchState::new(&rules);
            self.confirmed = Some(state);
            self.predicted = Some(state);
            self.history.clear();
            self.history.push_back((now, state));
            self.rules = Some(rules);
        }
        if matches!(self.phase, ClientPhase::Joining | ClientPhase::Connecting) && !w.resumed {
            self.phase = ClientPhase::Lobby(Lobby {
                match_id: w.match_id,
                epoch: self.epoch,
                room: self.config.room.clone(),
                seats: w.config.players,
                members: Vec::new(),
            });
        }
        if w.resumed {
            // Ask for whatever was missed while away.
            let from = self.confirmed.map_or(0, |c| c.tick + 1);
            let from = if same { from } else { 0 };
            self.push_signed(&SessionMsg::Resync { from_tick: from });
            self.resync_at = Some(now);
        }
        if self.subscribed != Some(w.match_id) && !self.subscribing {
            self.subscribing = true;
            self.commands.push_back(Command::Subscribe(w.match_id));
        }
        self.events.push_back(ClientEvent::Welcomed {
            match_id: w.match_id,
            player: w.player,
            config: w.config,
            resumed: w.resumed,
        });
    }

    fn on_rejected(&mut self, r: Reject) {
        // A refused join or resume ends this client, and so does a session the server no
        // longer knows; anything else (a rate limit) is passing.
        let fatal = matches!(self.phase, ClientPhase::Joining) || r == Reject::UnknownSession;
        if fatal && !self.is_finished() {
            self.phase = ClientPhase::Rejected(r);
        }
        self.events.push_back(ClientEvent::Rejected(r));
    }

    /// True unless `epoch` is older than a phase already seen (the network reordered).
    fn fresh_epoch(&mut self, epoch: Epoch) -> bool {
        if epoch < self.epoch {
            return false;
        }
        self.epoch = epoch;
        true
    }

    fn on_lobby(&mut self, now: u64, l: Lobby) {
        if Some(l.match_id) != self.match_id || !self.fresh_epoch(l.epoch) {
            return;
        }
        if matches!(
            self.phase,
            ClientPhase::Joining | ClientPhase::Lobby(_) | ClientPhase::Countdown { .. }
        ) && !self.started
        {
            // The server repeats the lobby as a heartbeat; only a change is news.
            let changed = !matches!(&self.phase, ClientPhase::Lobby(old) if *old == l);
            self.phase = ClientPhase::Lobby(l.clone());
            if changed {
                self.events.push_back(ClientEvent::LobbyChanged(l));
            }
            self.maybe_ready(now, false);
        }
    }

    fn me_ready_in_lobby(&self) -> bool {
        match (&self.phase, self.player) {
            (ClientPhase::Lobby(l), Some(p)) => l.members.iter().any(|m| m.player == p && m.ready),
            _ => false,
        }
    }

    /// Says Ready when it is true: subscribed, clock synced, in a lobby or a pause.
    fn maybe_ready(&mut self, now: u64, fresh: bool) {
        let waiting = matches!(self.phase, ClientPhase::Lobby(_) | ClientPhase::Paused(_));
        let synced = self.clock.samples.len() >= CLOCK_SAMPLES_FOR_READY;
        if waiting && synced && self.subscribed.is_some() && self.subscribed == self.match_id {
            let already = self.me_ready_in_lobby();
            if !already && (fresh || now >= self.next_retry) {
                self.push_signed(&SessionMsg::Ready);
                self.next_retry = now + self.config.retry_every;
            }
        }
    }

    fn on_start_at(&mut self, tick: u32, server_time: u64) {
        self.anchor = Some((tick, server_time));
        match self.phase {
            ClientPhase::Playing
            | ClientPhase::Over { .. }
            | ClientPhase::Rejected(_)
            | ClientPhase::Closed(_) => {}
            _ => {
                let at = self.clock.to_local(server_time);
                let changed =
                    !matches!(self.phase, ClientPhase::Countdown { tick: t, .. } if t == tick);
                self.phase = ClientPhase::Countdown { tick, at };
                if changed {
                    self.events.push_back(ClientEvent::Countdown { tick, at });
                }
            }
        }
    }

    fn on_paused(&mut self, now: u64, p: Paused) {
        if !self.fresh_epoch(p.epoch) {
            return;
        }
        if matches!(
            self.phase,
            ClientPhase::Over { .. } | ClientPhase::Rejected(_) | ClientPhase::Closed(_)
        ) {
            return;
        }
        if self.confirmed.is_some_and(|c| c.tick > p.tick) {
            self.server_went_back(now);
        }
        let lost = p.lost.iter().map(|l| (l.player, self.clock.to_local(l.deadline))).collect();
        let changed = match &self.phase {
            ClientPhase::Paused(old) => {
                old.lost.iter().map(|l| l.player).ne(p.lost.iter().map(|l| l.player))
            }
            _ => {
                self.pauses += 1;
                true
            }
        };
        self.phase = ClientPhase::Paused(p);
        if changed {
            self.events.push_back(ClientEvent::Paused { lost });
        }
    }

    fn on_tick(&mut self, now: u64, t: TickMsg) {
        let Some(conf) = self.confirmed else { return };
        if t.tick <= conf.tick {
            return;
        }
        if let Some(p) = self.player
            && let Some(a) = t.acks.get(t.tick, p)
        {
            self.acked = Some(self.acked.map_or(a, |x| x.max(a)));
            self.ack_window_min = self.ack_window_min.min(i64::from(a) - i64::from(t.tick));
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_first();
        }
        self.pending.insert(t.tick, t);
        self.drain_pending(now);
    }

    /// Applies buffered ticks while they follow on; notes a gap otherwise.
    fn drain_pending(&mut self, now: u64) {
        while !self.awaiting_keyframe {
            let Some(conf) = self.confirmed else { return };
            let next = conf.tick + 1;
            let Some(t) = self.pending.remove(&next) else { break };
            if !self.apply_confirmed(now, t) {
                break;
            }
        }
        let missing = self.pending.keys().next().is_some();
        self.gap_since = if missing { self.gap_since.or(Some(now)) } else { None };
        self.try_finish(now);
    }

    /// Steps the confirmed state by one server tick; false on a hash mismatch.
    fn apply_confirmed(&mut self, now: u64, t: TickMsg) -> bool {
        let (Some(rules), Some(mut conf)) = (self.rules.as_ref(), self.confirmed) else {
            return false;
        };
        let events = conf.step(rules, &t.input);
        if conf.hash() != t.hash.0 {
            self.desyncs += 1;
            self.events.push_back(ClientEvent::Desync { tick: t.tick });
            self.awaiting_keyframe = true;
            // Tick 0 is never held for resending, so this asks for a keyframe.
            self.push_signed(&SessionMsg::Resync { from_tick: 0 });
            self.resync_at = Some(now);
            return false;
        }
        self.confirmed = Some(conf);
        self.confirmed_input = t.input;
        for e in events.iter() {
            if matches!(
                e,
                Event::LifeLost { .. } | Event::PlayerOut { .. } | Event::MatchOver { .. }
            ) {
                self.log.push((t.tick, e));
                self.events.push_back(ClientEvent::Game { tick: t.tick, event: e });
            }
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((now, conf));
        self.go();
        // Did the prediction get this tick right?
        match self.predicted_ring[t.tick as usize % RING] {
            Some((pt, ps)) if pt == t.tick && ps == conf => {}
            _ => self.needs_rewind = true,
        }
        true
    }

    /// A current pause names a tick before the confirmed one: the server restarted and
    /// rebuilt the match from its journal, which had not kept the last few ticks. For the
    /// match those ticks never happened: drop them (and the own inputs sent for them) and
    /// take the server's state from a keyframe.
    fn server_went_back(&mut self, now: u64) {
        self.awaiting_keyframe = true;
        self.rewound = true;
        self.pending.clear();
        self.gap_since = None;
        self.acked = None;
        self.first_input = None;
        self.own_inputs.fill((u32::MAX, Intent::Stop));
        self.push_signed(&SessionMsg::Resync { from_tick: 0 });
        self.resync_at = Some(now);
    }

    fn on_keyframe(&mut self, now: u64, k: Keyframe) {
        let Some(rules) = self.rules.as_ref() else { return };
        if k.state.validate(rules).is_err() {
            self.bad_frames += 1;
            return;
        }
        let behind = self.confirmed.is_none_or(|c| k.state.tick >= c.tick);
        if !(behind || self.awaiting_keyframe) {
            return;
        }
        self.awaiting_keyframe = false;
        if self.rewound {
            self.rewound = false;
            self.predicted = Some(k.state);
            self.log.retain(|(t, _)| *t <= k.state.tick);
        }
        self.confirmed = Some(k.state);
        self.confirmed_input = k.input;
        self.history.clear();
        self.history.push_back((now, k.state));
        self.started |= k.state.tick > 0;
        self.pending.retain(|&t, _| t > k.state.tick);
        if let Some(p) = self.player
            && let Some(a) = k.acks.get(k.state.tick, p)
        {
            self.acked = Some(a);
        }
        self.needs_rewind = true;
        self.drain_pending(now);
    }

    /// Ends the match once the confirmed state has reached the server's final tick.
    fn try_finish(&mut self, now: u64) {
        let (Some(result), Some(conf)) = (&self.result, self.confirmed) else { return };
        if self.is_finished() {
            return;
        }
        if conf.tick < result.tick {
            // The last ticks are on their way or were missed: ask again after a while.
            if self.gap_since.is_none() {
                self.gap_since = Some(now);
            }
            return;
        }
        let final_hash = conf.hash();
        let result = result.clone();
        self.phase = ClientPhase::Over { result: result.clone(), final_hash };
        self.events.push_back(ClientEvent::MatchOver { result, final_hash });
    }

    /// The countdown is over (by the clock, or because a tick arrived first).
    fn go(&mut self) {
        self.started = true;
        if matches!(self.phase, ClientPhase::Countdown { .. }) {
            self.phase = ClientPhase::Playing;
            self.events.push_back(ClientEvent::Started);
        }
    }

    /// Rebuilds the prediction from the confirmed state.
    fn rewind(&mut self) {
        self.needs_rewind = false;
        let (Some(conf), Some(pred)) = (self.confirmed, self.predicted) else { return };
        let shown = self.ball_f(&pred);
        let target = pred.tick.max(conf.tick);
        let mut s = conf;
        self.store_prediction(s);
        let mut steps = 0;
        while s.tick < target && steps < MAX_STEPS_PER_CALL * 4 {
            let input = self.predicted_input(s.tick + 1);
            if let Some(rules) = self.rules.as_ref() {
                s.step(rules, &input);
            }
            self.store_prediction(s);
            steps += 1;
        }
        self.predicted = Some(s);
        // Show the correction gradually unless it is a jump (a serve, a resync).
        let now_shown = self.ball_f(&s);
        let (dx, dy) = (shown.0 - now_shown.0, shown.1 - now_shown.1);
        let limit = self.rules.as_ref().map_or(0.0, |r| (r.ball_size * 4) as f32);
        if dx.abs() + dy.abs() < limit {
            self.ball_error = (self.ball_error.0 + dx, self.ball_error.1 + dy);
        } else {
            self.ball_error = (0.0, 0.0);
        }
    }

    fn ball_f(&self, s: &MatchState) -> (f32, f32) {
        let Some(rules) = self.rules.as_ref() else { return (0.0, 0.0) };
        let (x, y) = s.ball_pos(rules);
        (x as f32, y as f32)
    }

    fn store_prediction(&mut self, s: MatchState) {
        self.predicted_ring[s.tick as usize % RING] = Some((s.tick, s));
    }

    /// Inputs assumed for predicted tick `n`: own intent as recorded, others' last confirmed.
    fn predicted_input(&self, n: u32) -> TickInput {
        let mut input = TickInput { intents: self.confirmed_input.intents, forfeit: 0 };
        if let Some(p) = self.player {
            let (t, i) = self.own_inputs[n as usize % RING];
            input.intents[p.index()] = if t == n { i } else { self.intent };
        }
        input
    }

    /// Time has passed: clock pings, retries, liveness, and the prediction's steps.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.is_finished() || !self.connected {
            return;
        }
        self.revise_last_input(now);
        if now.saturating_sub(self.last_heard) >= self.config.server_timeout {
            self.connected = false;
            self.subscribed = None;
            self.subscribing = false;
            self.events.push_back(ClientEvent::ServerLost);
            self.commands.push_back(Command::Reconnect);
            return;
        }
        if now >= self.next_ping {
            if self.session.is_some() && !self.awaiting_welcome {
                self.send_ping(now);
            }
            let playing = matches!(self.phase, ClientPhase::Playing);
            let synced = self.clock.samples.len() >= CLOCK_SAMPLES_FOR_READY;
            let every = if playing && synced {
                self.config.ping_every_playing
            } else {
                self.config.ping_every
            };
            self.next_ping = now + every;
        }
        if now >= self.next_retry {
            if self.awaiting_welcome {
                self.send_join();
                self.next_retry = now + self.config.retry_every;
            }
            match self.phase {
                ClientPhase::Lobby(_) | ClientPhase::Paused(_) => self.maybe_ready(now, false),
                _ => {}
            }
            if self.gap_since.is_some_and(|t| now >= t + self.config.retry_every / 2)
                && self.resync_at.is_none_or(|t| now >= t + self.config.retry_every)
            {
                let from = self.confirmed.map_or(0, |c| c.tick + 1);
                self.push_signed(&SessionMsg::Resync { from_tick: from });
                self.resync_at = Some(now);
            }
            if self.next_retry <= now {
                self.next_retry = now + self.config.retry_every;
            }
        }
        self.advance_prediction(now);
    }

    /// The last tick the server has simulated by server time `server_now`, by the anchor.
    fn server_tick_at_server_time(&self, server_now: u64) -> Option<u32> {
        let (anchor_tick, anchor_time) = self.anchor?;
        let rules = self.rules.as_ref()?;
        if server_now < anchor_time {
            return Some(anchor_tick.saturating_sub(1));
        }
        let k = rules.config.micros_to_ticks(server_now - anchor_time);
        Some(anchor_tick.saturating_add(u32::try_from(k).unwrap_or(u32::MAX)))
    }

    /// Late binding: the intent changed after the last predicted tick took the old one. While
    /// the server has not simulated that tick and a resent input can still reach it in time
    /// (half the round trip plus half the least cushion before the tick's server time), the
    /// tick's own input is changed, the prediction rebuilt with it, and the input resent.
    /// Without this a change waits for the next tick: a whole tick more before the other
    /// players see it.
    fn revise_last_input(&mut self, now: u64) {
        if !std::mem::take(&mut self.revise) {
            return;
        }
        let Some(pred) = self.predicted else { return };
        let n = pred.tick;
        // One try per predicted tick, whatever its outcome: `set_intent` asks for an
        // immediate wake only for a tick not yet tried, so a controller that keeps changing
        // its mind cannot keep the driver waking at once (and starve its reads).
        if n == self.revised_tick {
            return;
        }
        self.revised_tick = n;
        let (Some(conf), Some((anchor_tick, _)), Some(due)) =
            (self.confirmed, self.anchor, self.tick_server_time(n))
        else {
            return;
        };
        let slot = n as usize % RING;
        // Only while playing, and only an input the server has not acknowledged (the resend
        // starts after the ack) for a tick not confirmed yet.
        if !matches!(self.phase, ClientPhase::Playing)
            || n <= conf.tick
            || n < anchor_tick
            || self.acked.is_some_and(|a| a >= n)
            || self.own_inputs[slot].0 != n
            || self.own_inputs[slot].1 == self.intent
        {
            return;
        }
        let arrives = self.clock.to_server(now) + self.clock.rtt() / 2 + MIN_CUSHION / 2;
        if arrives >= due {
            return;
        }
        self.own_inputs[slot].1 = self.intent;
        self.rewind();
        self.revisions += 1;
        self.input_dirty = true;
    }

    fn advance_prediction(&mut self, now: u64) {
        let active = matches!(self.phase, ClientPhase::Playing)
            || matches!(self.phase, ClientPhase::Countdown { .. })
                && self.anchor.is_some_and(|(_, at)| self.clock.to_server(now) >= at);
        if !active {
            return;
        }
        let (Some(conf), Some(mut pred)) = (self.confirmed, self.predicted) else { return };
        self.go();
        self.adapt_lead();
        // Every tick the server will have simulated `lead` from now.
        let ahead = self.clock.to_server(now).saturating_add(self.lead());
        let Some(target) = self.server_tick_at_server_time(ahead) else { return };
        if pred.tick < conf.tick || target.saturating_sub(pred.tick) > MAX_STEPS_PER_CALL {
            pred = conf;
        }
        let Some(rules) = self.rules.clone() else { return };
        let mut advanced = false;
        while pred.tick < target && !pred.is_over() {
            let n = pred.tick + 1;
            self.own_inputs[n as usize % RING] = (n, self.intent);
            self.first_input.get_or_insert(n);
            let input = self.predicted_input(n);
            self.prev_ball = self.ball_f(&pred);
            let events = pred.step(&rules, &input);
            for e in events.iter() {
                if matches!(
                    e,
                    Event::PaddleHit { .. } | Event::WallHit { .. } | Event::Served { .. }
                ) {
                    self.events.push_back(ClientEvent::Predicted(e));
                }
            }
            self.store_prediction(pred);
            self.ball_error = (self.ball_error.0 * 0.85, self.ball_error.1 * 0.85);
            advanced = true;
        }
        self.predicted = Some(pred);
        if advanced {
            self.input_dirty = true;
        }
        if self.input_dirty && !self.awaiting_welcome {
            self.send_inputs(pred.tick);
        }
    }

    /// Keeps own inputs arriving just before the server needs them. The acks say which of
    /// them the server held at each tick: one missing (it arrived late and was applied a
    /// tick late) doubles the cushion at once; a whole window on time shrinks it slowly,
    /// and a window with a tick or more to spare faster.
    fn adapt_lead(&mut self) {
        self.ack_window_len += 1;
        if self.ack_window_len < 30 {
            return;
        }
        let min = self.ack_window_min;
        self.ack_window_len = 0;
        self.ack_window_min = i64::MAX;
        if min == i64::MAX {
            return;
        }
        if min < 0 {
            self.cushion = self.cushion.saturating_mul(2).clamp(MIN_CUSHION, MAX_LEAD);
        } else {
            let shrink = if min > 1 { self.cushion / 4 } else { self.cushion / 8 };
            self.cushion = self.cushion.saturating_sub(shrink).max(MIN_CUSHION);
        }
    }

    /// Sends every own input the server has not acknowledged, up to `upto`.
    fn send_inputs(&mut self, upto: u32) {
        self.input_dirty = false;
        let Some(p) = self.player else { return };
        if self.confirmed.is_some_and(|c| !c.is_alive(p)) {
            return;
        }
        let unacked = match self.acked {
            Some(a) => a.saturating_add(1),
            None => self.first_input.unwrap_or(upto),
        };
        let from = unacked.max(upto.saturating_sub(MAX_INPUT_RUN as u32 - 1));
        if from > upto {
            return;
        }
        let intents = (from..=upto).map(|n| {
            let (t, i) = self.own_inputs[n as usize % RING];
            if t == n { i } else { self.intent }
        });
        let run = InputRun::new(from, intents);
        self.push_signed(&SessionMsg::Input(run));
    }

    /// What to draw at local time `now`: the predicted ball and own paddle, interpolated
    /// between ticks and with corrections smoothed; the other paddles from the confirmed
    /// states, interpolated.
    pub fn view(&self, now: u64) -> Option<View> {
        let rules = self.rules.as_ref()?;
        let pred = self.predicted?;
        let conf = self.confirmed?;
        let alpha = self.tick_fraction(now);
        let (bx, by) = self.ball_f(&pred);
        let (px, py) = self.prev_ball;
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let moving = matches!(pred.ball, Ball::Moving { .. });
        let jump = (bx - px).abs() + (by - py).abs() > (rules.ball_speed_max * 3) as f32;
        let ball = if moving && !jump {
            (lerp(px, bx, alpha) + self.ball_error.0, lerp(py, by, alpha) + self.ball_error.1)
        } else {
            (bx, by)
        };
        let mut paddles = [0.0f32; 4];
        let n = self.history.len();
        for p in PlayerId::ALL {
            let i = p.index();
            paddles[i] = if Some(p) == self.player {
                let prev = self.predicted_ring[(pred.tick.wrapping_sub(1)) as usize % RING]
                    .filter(|(t, _)| *t + 1 == pred.tick)
                    .map_or(pred.paddles[i], |(_, s)| s.paddles[i]);
                lerp(prev as f32, pred.paddles[i] as f32, alpha)
            } else if n >= 2 {
                let (t0, a) = self.history[n - 2];
                let (t1, b) = self.history[n - 1];
                let span = t1.saturating_sub(t0).max(1) as f32;
                let f = (now.saturating_sub(t1) as f32 / span).clamp(0.0, 1.0);
                lerp(a.paddles[i] as f32, b.paddles[i] as f32, f)
            } else {
                conf.paddles[i] as f32
            };
        }
        Some(View { tick: pred.tick, ball, ball_resting: !moving, paddles, lives: conf.lives })
    }

    /// [`ClientCore::view`] for an interactive frontend: the own paddle is drawn one step
    /// further, from the predicted tick toward the next one at the *current* intent, so a key
    /// press shows in the very frame it is read instead of a tick later. When the next tick is
    /// predicted it starts where this left off (unless the ball blocks the paddle, which the
    /// next frame corrects), so motion stays continuous at any frame rate.
    ///
    /// Added for the Bevy window (frontends that draw faster than the tick rate); `view`
    /// itself is unchanged.
    pub fn view_with_intent(&self, now: u64) -> Option<View> {
        let mut view = self.view(now)?;
        let (Some(p), Some(rules), Some(pred)) = (self.player, self.rules.as_ref(), self.predicted)
        else {
            return Some(view);
        };
        if !matches!(self.phase, ClientPhase::Playing) || pred.is_over() || !pred.is_alive(p) {
            return Some(view);
        }
        let dir = match self.intent {
            Intent::Stop => 0,
            Intent::Minus => -1,
            Intent::Plus => 1,
        };
        let (lo, hi) = rules.paddle_range(p.side());
        let from = pred.paddles[p.index()];
        let to = (from + dir * rules.paddle_speed).clamp(lo, hi);
        let alpha = self.tick_fraction(now);
        view.paddles[p.index()] = from as f32 + (to - from) as f32 * alpha;
        Some(view)
    }

    /// How far `now` is between the predicted tick and the next (0 to 1).
    fn tick_fraction(&self, now: u64) -> f32 {
        let (Some(next), Some(rules)) = (self.next_tick_time(), self.rules.as_ref()) else {
            return 1.0;
        };
        let period = rules.config.ticks_to_micros(1).max(1);
        let start = next.saturating_sub(period);
        (now.saturating_sub(start) as f32 / period as f32).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_prefers_the_shortest_round_trip() {
        let mut c = Clock::default();
        // Server is 1000 µs ahead. A slow, asymmetric sample first, then a quick one.
        c.sample(0, 400, 1000 + 50);
        c.sample(1000, 1020, 1000 + 1010);
        assert_eq!(c.rtt(), 20);
        assert_eq!(c.offset(), 1000);
        assert_eq!(c.to_local(c.to_server(5555)), 5555);
    }
}
