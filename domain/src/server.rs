//! The authoritative server as a sans-IO state machine: many matches at once, their lobbies,
//! the synchronized start, the tick loop, liveness, pauses and trust.
//!
//! [`ServerCore`] never reads a clock or touches a socket. Its driver feeds it what happens
//! and carries out what it asks for, in this order:
//! 1. `handle_frame(now, peer, bytes)`, `handle_peer_gone(now, peer)` as transport events
//!    arrive, and `handle_timeout(now)` when the time from [`ServerCore::poll_timeout`] comes;
//! 2. then drain [`ServerCore::poll_transmit`] (frames to send, group changes, disconnects)
//!    and [`ServerCore::poll_event`] (what happened, for logs and the event store);
//! 3. then sleep until [`ServerCore::poll_timeout`] or the next transport event.
//!
//! `now` is microseconds on the driver's monotonic clock. Every running match ticks on one
//! server-wide grid (tick `g` of the grid is due at `origin + g / tick_hz`), so a server with
//! thousands of matches wakes once per tick, not once per match.
//!
//! Trust: a client proves every message after the first with a signature made with its
//! session token; the transport's idea of the sender is used only as the address to answer.
//! Frames that do not decode, do not verify, replay an old sequence number, name no known
//! session, carry inputs far outside the tick window or come too fast are refused and
//! counted in [`ServerStats`]; a link that keeps doing it is dropped. None of that touches
//! any match.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::codec::{self, ClientFrame, DecodeError, SignedFrame};
use crate::journal::{Outcome, RecoveredMatch, note_outcomes, result_of};
use crate::proto::{
    Acks, CloseReason, Epoch, InputRun, Join, Keyframe, Lobby, Lost, MatchId, MatchOver, Member,
    Name, OpenMsg, Paused, Reject, RoomName, ServerMsg, SessionId, SessionMsg, StateHash, TickMsg,
    Token, Welcome,
};
use crate::route::{Dest, PeerId};
use crate::rules::{
    DEFAULT_LIVES, DEFAULT_TICK_HZ, MAX_PLAYERS, MIN_PLAYERS, MatchConfig, PlayerId, Rules,
};
use crate::sim::{Intent, MatchState, TickInput};

const SECOND: u64 = 1_000_000;

/// How a server runs its matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Match size for a join that does not ask for one.
    pub default_players: u8,
    /// Lives each player starts with.
    pub lives: u8,
    /// Simulation rate of every match.
    pub tick_hz: u16,
    /// Time from the last Ready (or a return) to the first tick.
    pub countdown: u64,
    /// Silence after which a member is declared lost (µs).
    pub lost_timeout: u64,
    /// How long a lost member may take to come back before it is out (µs).
    pub grace: u64,
    /// How often the current lobby, countdown, pause or result is repeated to members (µs),
    /// so that a member that missed one catches up.
    pub repeat_every: u64,
    /// How long a finished match is kept to repeat its result (µs).
    pub linger: u64,
    /// Most matches hosted at once.
    pub max_matches: usize,
    /// Frames per second one link may send on average, and in a burst.
    pub rate_per_second: u32,
    /// Burst allowance of the rate limit.
    pub rate_burst: u32,
    /// Malformed or forged frames after which a link is dropped.
    pub max_bad_frames: u32,
    /// Emit a [`ServerEvent::Tick`] for every tick (for an event store).
    pub record_ticks: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            default_players: 2,
            lives: DEFAULT_LIVES,
            tick_hz: DEFAULT_TICK_HZ,
            countdown: 3 * SECOND,
            lost_timeout: 1_500_000,
            grace: 30 * SECOND,
            repeat_every: SECOND,
            linger: 10 * SECOND,
            max_matches: 10_000,
            rate_per_second: 0,
            rate_burst: 0,
            max_bad_frames: 16,
            record_ticks: false,
        }
    }
}

impl ServerConfig {
    /// Frames per second a well-behaved client can send: an input every tick, pings,
    /// and retries. Used when `rate_per_second` is 0.
    fn rate(&self) -> (u64, u64) {
        let hz = u64::from(self.tick_hz);
        let rate =
            if self.rate_per_second == 0 { 2 * hz + 50 } else { self.rate_per_second.into() };
        let burst = if self.rate_burst == 0 { hz + 100 } else { self.rate_burst.into() };
        (rate, burst)
    }
}

/// Counters of what the server did and refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Frames received.
    pub frames: u64,
    /// Frames that did not decode.
    pub malformed: u64,
    /// Signed frames whose signature did not verify.
    pub forged: u64,
    /// Signed frames with an already used sequence number.
    pub replayed: u64,
    /// Signed frames naming no live session.
    pub unknown_session: u64,
    /// Inputs for ticks too far ahead.
    pub out_of_window: u64,
    /// Frames over a link's rate limit.
    pub rate_limited: u64,
    /// Links dropped for misbehaving.
    pub peers_dropped: u64,
    /// Matches created.
    pub matches_created: u64,
    /// Matches finished.
    pub matches_finished: u64,
    /// Ticks simulated, over all matches.
    pub ticks: u64,
    /// Grid ticks skipped because the server fell behind.
    pub overruns: u64,
}

/// What the driver must do next (the frame, if any, is in the buffer passed to
/// [`ServerCore::poll_transmit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Send the frame in the buffer to a peer or a group.
    Send(Dest),
    /// Add a peer to a match group.
    JoinGroup(PeerId, MatchId),
    /// Remove a peer from a match group.
    LeaveGroup(PeerId, MatchId),
    /// Close a peer's link (after what is queued for it).
    Disconnect(PeerId),
}

/// Why a frame was refused (for logs; also counted in [`ServerStats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It did not decode.
    Malformed(DecodeError),
    /// Its signature did not verify.
    Forged(SessionId),
    /// Its sequence number was used before.
    Replayed(SessionId),
    /// It named no live session.
    UnknownSession(SessionId),
    /// Its inputs were for ticks far ahead of the match.
    OutOfWindow(SessionId),
    /// Its link is over the rate limit.
    RateLimited,
}

/// Something that happened, for logs, metrics and the event store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A new match opened.
    MatchCreated {
        /// The match.
        match_id: MatchId,
        /// How it is played (with its seed).
        config: MatchConfig,
        /// Its room, if named.
        room: Option<RoomName>,
    },
    /// A player took a seat.
    PlayerJoined {
        /// The match.
        match_id: MatchId,
        /// The seat.
        player: PlayerId,
        /// The player's name.
        name: Name,
        /// The session.
        session: SessionId,
        /// The session's secret, for an event store: a restarted server needs it to check
        /// the player's signatures. Never printed ([`Token`]'s `Debug` hides it).
        token: Token,
    },
    /// A player left a match that had not started; the seat is free again.
    PlayerLeft {
        /// The match.
        match_id: MatchId,
        /// The seat.
        player: PlayerId,
    },
    /// Everyone is ready: the match starts at `at`.
    CountdownStarted {
        /// The match.
        match_id: MatchId,
        /// Server time of the first tick.
        at: u64,
    },
    /// A countdown was cancelled because a member left or was lost.
    CountdownCancelled {
        /// The match.
        match_id: MatchId,
    },
    /// The first tick was simulated.
    MatchStarted {
        /// The match.
        match_id: MatchId,
    },
    /// A tick was simulated (only with [`ServerConfig::record_ticks`]).
    Tick {
        /// The match.
        match_id: MatchId,
        /// The tick.
        tick: u32,
        /// The inputs applied.
        input: TickInput,
        /// The state hash after it.
        hash: u64,
    },
    /// A member went silent or its link dropped.
    PlayerLost {
        /// The match.
        match_id: MatchId,
        /// The seat.
        player: PlayerId,
    },
    /// A lost member is back.
    PlayerBack {
        /// The match.
        match_id: MatchId,
        /// The seat.
        player: PlayerId,
    },
    /// The match paused.
    Paused {
        /// The match.
        match_id: MatchId,
        /// The last tick before the pause.
        tick: u32,
    },
    /// The match resumes at `at`.
    Resuming {
        /// The match.
        match_id: MatchId,
        /// Server time of the next tick.
        at: u64,
    },
    /// A member will forfeit at the next tick (left, or out of grace).
    Forfeit {
        /// The match.
        match_id: MatchId,
        /// The seat.
        player: PlayerId,
    },
    /// The match ended.
    MatchOver {
        /// The match.
        match_id: MatchId,
        /// The result.
        result: MatchOver,
    },
    /// The match was removed.
    MatchClosed {
        /// The match.
        match_id: MatchId,
    },
    /// A match was rebuilt from its journal by [`ServerCore::restore`]; it waits for its
    /// players to come back (paused, or in its lobby if it had not started).
    Restored {
        /// The match.
        match_id: MatchId,
        /// The tick it goes on from.
        tick: u32,
        /// Its phase count from now on (above any its clients saw before the restart).
        epoch: u32,
    },
    /// A frame was refused.
    Refused {
        /// The link it came on.
        peer: PeerId,
        /// Why.
        why: Refusal,
    },
    /// A link was dropped for misbehaving.
    PeerDropped {
        /// The link.
        peer: PeerId,
        /// Why.
        reason: CloseReason,
    },
    /// The server fell behind the tick grid and skipped ahead.
    Overrun {
        /// Grid ticks skipped.
        skipped: u64,
    },
}

/// Inputs arriving further ahead than this many ticks are refused.
const MAX_AHEAD: u32 = 120;
const RING: usize = 128;
/// How long an unanswered resume challenge stays valid.
const CHALLENGE_TTL: u64 = 10 * SECOND;
/// How often liveness and repeats are checked.
const HOUSEKEEPING_EVERY: u64 = 50_000;
/// A link with no session that stays silent this long is forgotten.
const IDLE_PEER: u64 = 60 * SECOND;
/// Least time between two keyframes for one member.
const KEYFRAME_EVERY: u64 = 200_000;
/// Recent ticks kept per match for members that missed some.
const RECENT_TICKS: usize = 256;
/// Most ticks resent in answer to one resync; further behind gets a keyframe.
pub(crate) const RESEND_MAX: u32 = 64;
/// The server skips ahead instead of catching up when this many grid ticks behind.
const MAX_CATCH_UP: u64 = 8;
/// A restored match's phase count jumps this far past the journaled one, so that its phase
/// messages are newer than any its clients saw, even from phase changes whose records were
/// lost in the crash (a few milliseconds' worth: far fewer than this).
pub const RESTORE_EPOCH_STEP: u32 = 1 << 10;

/// Why [`ServerCore::restore`] refused a match.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// A match with this id is already hosted.
    #[error("{0} is already hosted")]
    AlreadyHosted(MatchId),
    /// The server hosts as many matches as it may.
    #[error("the server is full")]
    ServerFull,
    /// The match was played at another tick rate than this server's grid runs at.
    #[error("the match runs at {match_hz} Hz, this server at {server_hz} Hz")]
    TickRate {
        /// The match's rate.
        match_hz: u16,
        /// The server's rate.
        server_hz: u16,
    },
    /// One of the match's sessions is live in another match.
    #[error("session {} is already in use", .0.0)]
    SessionInUse(SessionId),
    /// The match's room names another hosted match.
    #[error("room {} is already in use", .0.as_str())]
    RoomInUse(RoomName),
}

/// A session's inputs, by tick.
#[derive(Clone, Debug)]
struct InputQueue {
    ring: [(u32, Intent); RING],
    acked: Option<u32>,
    late: Option<(u32, Intent)>,
    late_applied: u32,
    last: Intent,
}

impl InputQueue {
    fn new() -> Self {
        InputQueue {
            ring: [(u32::MAX, Intent::Stop); RING],
            acked: None,
            late: None,
            late_applied: 0,
            last: Intent::Stop,
        }
    }

    /// Files the intents of a run; returns false if any was for a tick too far ahead.
    fn add(&mut self, run: &InputRun, next_tick: u32) -> bool {
        let mut in_window = true;
        for (t, intent) in run.iter() {
            if t < next_tick {
                // Already simulated: the newest such intent is applied at the next tick that
                // has no input of its own ("late inputs apply at the current tick").
                if t > self.late_applied && self.late.is_none_or(|(lt, _)| t > lt) {
                    self.late = Some((t, intent));
                }
            } else if t - next_tick >= MAX_AHEAD {
                in_window = false;
            } else {
                self.ring[t as usize % RING] = (t, intent);
                self.acked = Some(self.acked.map_or(t, |a| a.max(t)));
            }
        }
        if let Some(last) = run.iter().last().map(|(t, _)| t)
            && last < next_tick
        {
            self.acked = Some(self.acked.map_or(last, |a| a.max(last)));
        }
        in_window
    }

    /// The intent to apply at tick `n`.
    fn take(&mut self, n: u32) -> Intent {
        let slot = self.ring[n as usize % RING];
        let intent = if slot.0 == n {
            if self.late.is_some_and(|(lt, _)| lt < n) {
                self.late = None;
            }
            slot.1
        } else if let Some((lt, li)) = self.late.take() {
            self.late_applied = lt;
            li
        } else {
            self.last
        };
        self.last = intent;
        intent
    }
}

/// Sequence numbers seen recently (a 64-wide sliding window), so a replayed frame is
/// refused while frames reordered by the network are still accepted once.
#[derive(Clone, Copy, Debug)]
struct ReplayWindow {
    top: u32,
    bits: u64,
}

impl ReplayWindow {
    fn new() -> Self {
        ReplayWindow { top: 0, bits: 1 }
    }

    /// Accepts nothing until [`ReplayWindow::reset`]: a restored session must first answer
    /// a fresh challenge, so frames captured before the restart cannot be replayed.
    fn closed() -> Self {
        ReplayWindow { top: u32::MAX, bits: u64::MAX }
    }

    fn accept(&mut self, seq: u32) -> bool {
        if seq > self.top {
            let shift = seq - self.top;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = seq;
            true
        } else {
            let d = self.top - seq;
            if d >= 64 || self.bits & (1 << d) != 0 {
                return false;
            }
            self.bits |= 1 << d;
            true
        }
    }

    fn reset(&mut self, seq: u32) {
        *self = ReplayWindow { top: seq, bits: 1 };
    }
}

/// A token bucket in millionths of a frame.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    level: u64,
    last: u64,
}

impl Bucket {
    fn full(burst: u64, now: u64) -> Self {
        Bucket { level: burst * SECOND, last: now }
    }

    fn take(&mut self, now: u64, rate: u64, burst: u64) -> bool {
        let refill = now.saturating_sub(self.last).saturating_mul(rate);
        self.level = self.level.saturating_add(refill).min(burst * SECOND);
        self.last = now;
        if self.level >= SECOND {
            self.level -= SECOND;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Debug)]
struct PeerInfo {
    session: Option<SessionId>,
    bad: u32,
    over_rate: u64,
    bucket: Bucket,
    last_seen: u64,
}

#[derive(Clone, Debug)]
struct Seat {
    session: SessionId,
    token: Token,
    name: Name,
    peer: Option<PeerId>,
    ready: bool,
    connected: bool,
    last_heard: u64,
    replay: ReplayWindow,
    challenge: Option<(u64, u64)>,
    inputs: InputQueue,
    lost_since: Option<u64>,
    /// Gone for good: left, or out of grace. The seat stays for the standings.
    gone: bool,
    keyframe_at: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Lobby,
    /// Everyone is ready; the next tick is simulated at `at`.
    Starting {
        at: u64,
        resume: bool,
    },
    /// Ticking on the grid; tick `anchor_tick` was due at `anchor_time`.
    Running {
        anchor_tick: u32,
        anchor_time: u64,
    },
    Paused,
    Over {
        at: u64,
        result: MatchOver,
    },
}

#[derive(Clone, Debug)]
struct Match {
    id: MatchId,
    room: Option<RoomName>,
    rules: Rules,
    state: MatchState,
    phase: Phase,
    seats: [Option<Seat>; 4],
    outcomes: [Option<Outcome>; 4],
    last_input: TickInput,
    pending_forfeit: u8,
    next_repeat: u64,
    started: bool,
    /// Bumped on every phase change; carried by the phase messages.
    epoch: Epoch,
    /// The last [`RECENT_TICKS`] ticks, to resend to members that missed some.
    recent: VecDeque<TickMsg>,
}

impl Match {
    fn seated(&self) -> impl Iterator<Item = (PlayerId, &Seat)> {
        self.seats.iter().enumerate().filter_map(|(i, s)| Some((PlayerId::ALL[i], s.as_ref()?)))
    }

    fn is_full(&self) -> bool {
        self.seated().count() == usize::from(self.rules.players())
    }

    /// Members who still play: seated, not gone, not out in the simulation.
    fn playing(&self) -> impl Iterator<Item = (PlayerId, &Seat)> {
        let started = self.started;
        let state = self.state;
        self.seated().filter(move |(p, s)| !s.gone && (!started || state.is_alive(*p)))
    }

    fn lobby(&self) -> Lobby {
        Lobby {
            match_id: self.id,
            epoch: self.epoch,
            room: self.room.clone(),
            seats: self.rules.players(),
            members: self
                .seated()
                .map(|(p, s)| Member {
                    player: p,
                    name: s.name.clone(),
                    ready: s.ready,
                    connected: s.connected,
                })
                .collect(),
        }
    }

    fn paused_msg(&self, grace: u64) -> Paused {
        Paused {
            epoch: self.epoch,
            tick: self.state.tick,
            lost: self
                .playing()
                .filter_map(|(p, s)| {
                    Some(Lost { player: p, deadline: s.lost_since?.saturating_add(grace) })
                })
                .collect(),
        }
    }

    fn acks(&self, tick: u32) -> Acks {
        let mut last = [None; 4];
        for (p, s) in self.seated() {
            last[p.index()] = s.inputs.acked;
        }
        Acks::relative_to(tick, last)
    }

    fn result(&self) -> MatchOver {
        result_of(&self.state, &self.outcomes, self.seated().map(|(p, s)| (p, &s.name)))
    }

    /// The message that tells a member where the match stands now.
    fn phase_msg(&self, grace: u64) -> ServerMsg {
        match &self.phase {
            Phase::Lobby => ServerMsg::Lobby(self.lobby()),
            Phase::Starting { at, .. } => ServerMsg::StartAt {
                epoch: self.epoch,
                tick: self.state.tick.wrapping_add(1),
                server_time: *at,
            },
            Phase::Running { anchor_tick, anchor_time } => ServerMsg::StartAt {
                epoch: self.epoch,
                tick: *anchor_tick,
                server_time: *anchor_time,
            },
            Phase::Paused => ServerMsg::Paused(self.paused_msg(grace)),
            Phase::Over { result, .. } => ServerMsg::MatchOver(result.clone()),
        }
    }
}

enum Output {
    Msg(Dest, ServerMsg),
    Join(PeerId, MatchId),
    Leave(PeerId, MatchId),
    Disconnect(PeerId),
}

/// The authoritative server. See the module docs for how to drive it.
pub struct ServerCore {
    config: ServerConfig,
    rng: ChaCha20Rng,
    origin: Option<u64>,
    next_grid: u64,
    next_housekeeping: u64,
    matches: BTreeMap<MatchId, Match>,
    sessions: HashMap<SessionId, (MatchId, PlayerId)>,
    peers: HashMap<PeerId, PeerInfo>,
    rooms: BTreeMap<RoomName, MatchId>,
    next_match: u32,
    next_session: u32,
    out: VecDeque<Output>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
    /// The ids of the matches one grid tick steps, kept between ticks so that a steady
    /// tick allocates nothing.
    due: Vec<MatchId>,
}

impl ServerCore {
    /// A server with no matches. `seed` feeds the generator of tokens, nonces and match
    /// seeds: give it 32 bytes from the operating system's generator in production, and a
    /// fixed value in tests for reproducible runs.
    pub fn new(config: ServerConfig, seed: [u8; 32]) -> ServerCore {
        ServerCore {
            config,
            rng: ChaCha20Rng::from_seed(seed),
            origin: None,
            next_grid: 0,
            next_housekeeping: 0,
            matches: BTreeMap::new(),
            sessions: HashMap::new(),
            peers: HashMap::new(),
            rooms: BTreeMap::new(),
            next_match: 1,
            next_session: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
            due: Vec::new(),
        }
    }

    // ---- getters ----

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// Matches currently hosted.
    pub fn match_count(&self) -> usize {
        self.matches.len()
    }

    /// The simulation state of a match, if it exists.
    pub fn match_state(&self, id: MatchId) -> Option<&MatchState> {
        self.matches.get(&id).map(|m| &m.state)
    }

    /// The ids of the hosted matches.
    pub fn match_ids(&self) -> impl Iterator<Item = MatchId> + '_ {
        self.matches.keys().copied()
    }

    // ---- recovery ----

    /// Numbers new matches after `last`: the ids up to it name matches an event store
    /// already holds (from earlier runs of the server), and an id must name one match there.
    pub fn reserve_match_ids(&mut self, last: MatchId) {
        let next = last.0.saturating_add(1);
        if next > self.next_match {
            self.next_match = next;
        }
    }

    /// Takes over a match rebuilt from its journal after the server stopped (see
    /// [`crate::journal`]). Call it before anything else, with `now` on the driver's clock.
    ///
    /// The match comes back as it was at its last journaled tick, with its seats, tokens,
    /// forfeits and standings so far, and with every member lost as of `now`: a started
    /// match is paused, one that had not started is back in its lobby (everyone says Ready
    /// again). Members come back the usual way (`Resume`, a challenge, a signed `Prove`;
    /// until that proof a session accepts no other frame), say Ready, and the match
    /// resumes after a countdown; a member not back within the grace period forfeits (its
    /// seat is freed, in a lobby). A match that forfeits had already settled ends at once.
    /// Emits [`ServerEvent::Restored`], then [`ServerEvent::PlayerLost`] for each member.
    ///
    /// # Errors
    /// [`RestoreError`] if the match cannot be hosted here; the server is unchanged.
    pub fn restore(&mut self, now: u64, rm: RecoveredMatch) -> Result<(), RestoreError> {
        self.set_origin(now);
        let id = rm.id();
        if self.matches.contains_key(&id) {
            return Err(RestoreError::AlreadyHosted(id));
        }
        if self.matches.len() >= self.config.max_matches {
            return Err(RestoreError::ServerFull);
        }
        if rm.config().tick_hz != self.config.tick_hz {
            return Err(RestoreError::TickRate {
                match_hz: rm.config().tick_hz,
                server_hz: self.config.tick_hz,
            });
        }
        if let Some(s) =
            rm.seats().iter().flatten().find(|s| self.sessions.contains_key(&s.session))
        {
            return Err(RestoreError::SessionInUse(s.session));
        }
        if let Some(room) = rm.room()
            && self.rooms.contains_key(room)
        {
            return Err(RestoreError::RoomInUse(room.clone()));
        }
        let started = rm.started();
        let seats = rm.seats().clone().map(|seat| {
            seat.map(|s| Seat {
                session: s.session,
                token: s.token,
                name: s.name,
                peer: None,
                ready: false,
                connected: false,
                last_heard: now,
                replay: ReplayWindow::closed(),
                challenge: None,
                inputs: InputQueue::new(),
                lost_since: (!s.gone).then_some(now),
                gone: s.gone,
                keyframe_at: None,
            })
        });
        let epoch = Epoch(rm.epoch().saturating_add(RESTORE_EPOCH_STEP));
        let tick = rm.tick();
        let m = Match {
            id,
            room: rm.room().cloned(),
            rules: rm.rules().clone(),
            state: *rm.state(),
            phase: if started { Phase::Paused } else { Phase::Lobby },
            seats,
            outcomes: *rm.outcomes(),
            last_input: rm.last_input(),
            pending_forfeit: rm.pending_forfeit(),
            next_repeat: now + self.config.repeat_every,
            started,
            epoch,
            recent: VecDeque::with_capacity(RECENT_TICKS),
        };
        let members: Vec<(PlayerId, SessionId, bool)> =
            m.seated().map(|(p, s)| (p, s.session, s.gone)).collect();
        if let Some(r) = &m.room {
            self.rooms.insert(r.clone(), id);
        }
        self.matches.insert(id, m);
        self.reserve_match_ids(id);
        for &(p, session, _) in &members {
            self.sessions.insert(session, (id, p));
            if session.0 >= self.next_session {
                self.next_session = session.0.saturating_add(1);
            }
        }
        self.event(ServerEvent::Restored { match_id: id, tick, epoch: epoch.0 });
        for &(p, _, gone) in &members {
            if !gone {
                self.event(ServerEvent::PlayerLost { match_id: id, player: p });
            }
        }
        let settled = self.matches.get(&id).is_some_and(|m| started && m.playing().count() <= 1);
        if settled {
            self.finish_by_forfeit(now, id);
        }
        Ok(())
    }

    fn match_config(&mut self, players: u8) -> MatchConfig {
        MatchConfig {
            players,
            lives: self.config.lives,
            tick_hz: self.config.tick_hz,
            seed: self.rng.next_u64(),
        }
    }

    fn grid_time(&self, g: u64) -> u64 {
        let hz = u128::from(self.config.tick_hz.max(1));
        let offset = (u128::from(g) * u128::from(SECOND)).div_ceil(hz);
        self.origin.unwrap_or(0).saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// The first grid time at or after `t`.
    fn grid_at_or_after(&self, t: u64) -> u64 {
        let origin = self.origin.unwrap_or(0);
        let hz = u128::from(self.config.tick_hz.max(1));
        let since = u128::from(t.saturating_sub(origin));
        let g = (since * hz).div_ceil(u128::from(SECOND));
        self.grid_time(u64::try_from(g).unwrap_or(u64::MAX))
    }

    fn set_origin(&mut self, now: u64) {
        if self.origin.is_none() {
            self.origin = Some(now);
            self.next_grid = 0;
            self.next_housekeeping = now;
        }
    }

    // ---- outputs ----

    /// The next thing to do. A frame to send is encoded into `buf` (cleared first).
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        loop {
            match self.out.pop_front()? {
                Output::Msg(dest, msg) => {
                    // Every message this core builds fits a frame; one that does not is
                    // dropped rather than sent broken.
                    if codec::encode_server(&msg, buf).is_ok() {
                        return Some(Transmit::Send(dest));
                    }
                }
                Output::Join(p, m) => return Some(Transmit::JoinGroup(p, m)),
                Output::Leave(p, m) => return Some(Transmit::LeaveGroup(p, m)),
                Output::Disconnect(p) => return Some(Transmit::Disconnect(p)),
            }
        }
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When to call [`ServerCore::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.origin?;
        let ticking = self
            .matches
            .values()
            .any(|m| matches!(m.phase, Phase::Running { .. } | Phase::Starting { .. }));
        let grid = ticking.then(|| self.grid_time(self.next_grid));
        let house =
            (!self.matches.is_empty() || !self.peers.is_empty()).then_some(self.next_housekeeping);
        match (grid, house) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn send(&mut self, to: PeerId, msg: ServerMsg) {
        self.out.push_back(Output::Msg(Dest::Peer(to), msg));
    }

    fn event(&mut self, e: ServerEvent) {
        self.events.push_back(e);
    }

    // ---- inputs ----

    /// A transport reports that a link is gone.
    pub fn handle_peer_gone(&mut self, now: u64, peer: PeerId) {
        self.set_origin(now);
        if let Some(info) = self.peers.remove(&peer)
            && let Some(session) = info.session
            && let Some(&(mid, player)) = self.sessions.get(&session)
            && self.seat(mid, player).is_some_and(|s| s.peer == Some(peer))
        {
            if let Some(seat) = self.seat_mut(mid, player) {
                seat.peer = None;
            }
            self.lose(now, mid, player);
        }
    }

    /// A frame arrived from `peer`.
    pub fn handle_frame(&mut self, now: u64, peer: PeerId, frame: &[u8]) {
        self.set_origin(now);
        self.stats.frames += 1;
        let (rate, burst) = self.config.rate();
        let info = self.peers.entry(peer).or_insert_with(|| PeerInfo {
            session: None,
            bad: 0,
            over_rate: 0,
            bucket: Bucket::full(burst, now),
            last_seen: now,
        });
        info.last_seen = now;
        if !info.bucket.take(now, rate, burst) {
            info.over_rate += 1;
            let drop = info.over_rate > burst;
            self.stats.rate_limited += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::RateLimited });
            if drop {
                self.drop_peer(peer, CloseReason::Flooding);
            }
            return;
        }
        match codec::decode_client(frame) {
            Err(e) => {
                self.stats.malformed += 1;
                self.event(ServerEvent::Refused { peer, why: Refusal::Malformed(e) });
                self.strike(peer, CloseReason::Malformed);
            }
            Ok(ClientFrame::Open(OpenMsg::Join(join))) => self.on_join(now, peer, join),
            Ok(ClientFrame::Open(OpenMsg::Resume { session })) => {
                self.on_resume_request(now, peer, session)
            }
            Ok(ClientFrame::Signed(f)) => self.on_signed(now, peer, f),
        }
    }

    /// Counts a bad frame against a link and drops the link past the limit.
    fn strike(&mut self, peer: PeerId, reason: CloseReason) {
        let limit = self.config.max_bad_frames;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.bad += 1;
            if info.bad > limit {
                self.drop_peer(peer, reason);
            }
        }
    }

    fn drop_peer(&mut self, peer: PeerId, reason: CloseReason) {
        self.stats.peers_dropped += 1;
        self.send(peer, ServerMsg::Closed(reason));
        self.out.push_back(Output::Disconnect(peer));
        self.event(ServerEvent::PeerDropped { peer, reason });
        if let Some(info) = self.peers.remove(&peer)
            && let Some(session) = info.session
            && let Some(&(mid, player)) = self.sessions.get(&session)
        {
            if let Some(seat) = self.seat_mut(mid, player)
                && seat.peer == Some(peer)
            {
                seat.peer = None;
            }
            self.out.push_back(Output::Leave(peer, mid));
        }
    }

    fn seat(&self, mid: MatchId, p: PlayerId) -> Option<&Seat> {
        self.matches.get(&mid)?.seats[p.index()].as_ref()
    }

    fn seat_mut(&mut self, mid: MatchId, p: PlayerId) -> Option<&mut Seat> {
        self.matches.get_mut(&mid)?.seats[p.index()].as_mut()
    }

    fn on_join(&mut self, now: u64, peer: PeerId, join: Join) {
        // A repeated Join on a link that already holds a seat in a lobby gets the same
        // Welcome again (the first answer may have been lost).
        if let Some(session) = self.peers.get(&peer).and_then(|i| i.session)
            && let Some(&(mid, player)) = self.sessions.get(&session)
            && let Some(m) = self.matches.get(&mid)
            && !matches!(m.phase, Phase::Over { .. })
        {
            if let Some(w) = self.welcome(mid, player, false) {
                self.send(peer, ServerMsg::Welcome(w));
                let lobby = self.matches.get(&mid).map(|m| m.phase_msg(self.config.grace));
                if let Some(msg) = lobby {
                    self.send(peer, msg);
                }
            }
            return;
        }
        let players = join.players.unwrap_or(self.config.default_players);
        if !(MIN_PLAYERS..=MAX_PLAYERS).contains(&players) {
            self.send(peer, ServerMsg::Rejected(Reject::BadPlayerCount));
            return;
        }
        let target = match &join.room {
            Some(room) => match self.rooms.get(room).and_then(|id| self.matches.get(id)) {
                Some(m) if m.phase == Phase::Lobby && !m.is_full() => Some(m.id),
                Some(_) => {
                    self.send(peer, ServerMsg::Rejected(Reject::RoomFull));
                    return;
                }
                None => None,
            },
            None => self
                .matches
                .values()
                .find(|m| {
                    m.room.is_none()
                        && m.phase == Phase::Lobby
                        && m.rules.players() == players
                        && !m.is_full()
                })
                .map(|m| m.id),
        };
        let mid = match target {
            Some(id) => id,
            None => {
                if self.matches.len() >= self.config.max_matches {
                    self.send(peer, ServerMsg::Rejected(Reject::ServerFull));
                    return;
                }
                self.create_match(now, players, join.room.clone())
            }
        };
        let session = SessionId(self.next_session);
        self.next_session = self.next_session.wrapping_add(1).max(1);
        let mut token = [0u8; 16];
        self.rng.fill_bytes(&mut token);
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(free) =
            m.seats.iter().take(usize::from(m.rules.players())).position(Option::is_none)
        else {
            return;
        };
        let player = PlayerId::ALL[free];
        m.seats[free] = Some(Seat {
            session,
            token: Token(token),
            name: join.name.clone(),
            peer: Some(peer),
            ready: false,
            connected: true,
            last_heard: now,
            replay: ReplayWindow::new(),
            challenge: None,
            inputs: InputQueue::new(),
            lost_since: None,
            gone: false,
            keyframe_at: None,
        });
        self.sessions.insert(session, (mid, player));
        if let Some(info) = self.peers.get_mut(&peer) {
            info.session = Some(session);
        }
        self.out.push_back(Output::Join(peer, mid));
        if let Some(w) = self.welcome(mid, player, false) {
            self.send(peer, ServerMsg::Welcome(w));
        }
        let token = Token(token);
        self.event(ServerEvent::PlayerJoined {
            match_id: mid,
            player,
            name: join.name,
            session,
            token,
        });
        self.broadcast_lobby(mid);
    }

    fn create_match(&mut self, now: u64, players: u8, room: Option<RoomName>) -> MatchId {
        let id = MatchId(self.next_match);
        self.next_match = self.next_match.wrapping_add(1).max(1);
        let config = self.match_config(players);
        let rules = Rules::new(config);
        let state = MatchState::new(&rules);
        if let Some(r) = &room {
            self.rooms.insert(r.clone(), id);
        }
        self.matches.insert(
            id,
            Match {
                id,
                room: room.clone(),
                rules,
                state,
                phase: Phase::Lobby,
                seats: [None, None, None, None],
                outcomes: [None, None, None, None],
                last_input: TickInput::IDLE,
                pending_forfeit: 0,
                next_repeat: now + self.config.repeat_every,
                started: false,
                epoch: Epoch(0),
                recent: VecDeque::with_capacity(RECENT_TICKS),
            },
        );
        self.stats.matches_created += 1;
        self.event(ServerEvent::MatchCreated { match_id: id, config, room });
        id
    }

    fn welcome(&self, mid: MatchId, player: PlayerId, resumed: bool) -> Option<Welcome> {
        let m = self.matches.get(&mid)?;
        let s = m.seats[player.index()].as_ref()?;
        Some(Welcome {
            session: s.session,
            token: s.token,
            match_id: mid,
            player,
            side: player.side(),
            paddle: m.rules.paddle_start(player.side()),
            config: m.rules.config,
            resumed,
        })
    }

    /// Sends the lobby to every seated member, each on its own link: before Ready a
    /// member's group subscription is not yet confirmed.
    fn broadcast_lobby(&mut self, mid: MatchId) {
        let Some(m) = self.matches.get(&mid) else { return };
        let lobby = m.lobby();
        let peers: Vec<PeerId> = m.seated().filter_map(|(_, s)| s.peer).collect();
        for p in peers {
            self.send(p, ServerMsg::Lobby(lobby.clone()));
        }
    }

    fn on_resume_request(&mut self, now: u64, peer: PeerId, session: SessionId) {
        let Some(&(mid, player)) = self.sessions.get(&session) else {
            self.send(peer, ServerMsg::Rejected(Reject::UnknownSession));
            return;
        };
        let fresh = self.rng.next_u64();
        let Some(seat) = self.seat_mut(mid, player) else { return };
        if seat.gone {
            self.send(peer, ServerMsg::Rejected(Reject::UnknownSession));
            return;
        }
        // One outstanding nonce per session, reused until it expires, so that requests from
        // others cannot push the real player's challenge out.
        let nonce = match seat.challenge {
            Some((n, expires)) if now < expires => n,
            _ => {
                seat.challenge = Some((fresh, now + CHALLENGE_TTL));
                fresh
            }
        };
        self.send(peer, ServerMsg::Challenge { session, nonce });
    }

    fn on_signed(&mut self, now: u64, peer: PeerId, f: SignedFrame<'_>) {
        let session = f.header.session;
        let Some(&(mid, player)) = self.sessions.get(&session) else {
            self.stats.unknown_session += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::UnknownSession(session) });
            self.send(peer, ServerMsg::Rejected(Reject::UnknownSession));
            return;
        };
        let Some(seat) = self.seat_mut(mid, player) else { return };
        if !f.verify(&seat.token) {
            self.stats.forged += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::Forged(session) });
            self.strike(peer, CloseReason::Malformed);
            return;
        }
        let proved = match f.msg {
            SessionMsg::Prove { nonce } => {
                if seat.challenge.is_some_and(|(n, exp)| n == nonce && now < exp) {
                    seat.challenge = None;
                    seat.replay.reset(f.header.seq);
                    true
                } else {
                    self.send(peer, ServerMsg::Rejected(Reject::BadProof));
                    return;
                }
            }
            _ => false,
        };
        if !proved && !seat.replay.accept(f.header.seq) {
            self.stats.replayed += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::Replayed(session) });
            return;
        }
        if seat.gone {
            return;
        }
        seat.last_heard = now;
        let old_peer = seat.peer;
        if old_peer != Some(peer) {
            seat.peer = Some(peer);
            self.rebind(mid, session, old_peer, peer);
        }
        let back = self.seat(mid, player).is_some_and(|s| !s.connected);
        if back {
            // A Prove is answered below with a Welcome and the match's phase.
            let tell = !matches!(f.msg, SessionMsg::Prove { .. });
            self.come_back(mid, player, tell);
        }
        match f.msg {
            SessionMsg::Ready => self.on_ready(now, mid, player),
            SessionMsg::Input(run) => self.on_input(mid, player, peer, session, &run),
            SessionMsg::Ping { id, client_time } => {
                self.send(peer, ServerMsg::Pong { id, client_time, server_time: now });
            }
            SessionMsg::Resync { from_tick } => self.resync(now, mid, player, peer, from_tick),
            SessionMsg::Prove { .. } => {
                // The client asks for what it missed with a Resync once it knows where it is.
                if let Some(w) = self.welcome(mid, player, true) {
                    self.send(peer, ServerMsg::Welcome(w));
                }
                if let Some(m) = self.matches.get(&mid) {
                    let msg = m.phase_msg(self.config.grace);
                    self.send(peer, msg);
                }
            }
            SessionMsg::Leave => self.on_leave(now, mid, player),
        }
    }

    /// A session now speaks from another link: move its group membership, and close the
    /// old link if it is still open (one link per session).
    fn rebind(&mut self, mid: MatchId, session: SessionId, old: Option<PeerId>, new: PeerId) {
        if let Some(old) = old {
            if let Some(info) = self.peers.get_mut(&old) {
                info.session = None;
            }
            self.out.push_back(Output::Leave(old, mid));
            self.send(old, ServerMsg::Closed(CloseReason::Replaced));
            self.out.push_back(Output::Disconnect(old));
        }
        if let Some(info) = self.peers.get_mut(&new) {
            info.session = Some(session);
        }
        self.out.push_back(Output::Join(new, mid));
    }

    fn come_back(&mut self, mid: MatchId, player: PlayerId, tell: bool) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        seat.connected = true;
        seat.lost_since = None;
        // Back, but the match waits for its Ready: its subscriptions may be new.
        seat.ready = matches!(m.phase, Phase::Running { .. });
        let peer = seat.peer;
        self.event(ServerEvent::PlayerBack { match_id: mid, player });
        let Some(m) = self.matches.get(&mid) else { return };
        if m.phase == Phase::Lobby {
            self.broadcast_lobby(mid);
        } else if let Some(peer) = peer
            && tell
        {
            // Tell the returning member where the match stands (it may have missed a pause).
            let msg = m.phase_msg(self.config.grace);
            self.send(peer, msg);
        }
    }

    /// Sends the ticks a member missed from the recent ones kept, or a keyframe if they are
    /// older than that.
    fn resync(&mut self, now: u64, mid: MatchId, player: PlayerId, peer: PeerId, from: u32) {
        let Some(m) = self.matches.get(&mid) else { return };
        let oldest = m.recent.front().map(|t| t.tick);
        let newest = m.state.tick;
        if from > newest {
            return;
        }
        match oldest {
            Some(oldest) if from >= oldest && newest - from < RESEND_MAX => {
                let ticks: Vec<TickMsg> =
                    m.recent.iter().filter(|t| t.tick >= from).copied().collect();
                for t in ticks {
                    self.send(peer, ServerMsg::Tick(t));
                }
            }
            _ => self.send_keyframe(now, mid, player, peer),
        }
    }

    fn send_keyframe(&mut self, now: u64, mid: MatchId, player: PlayerId, peer: PeerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        if !m.started {
            return;
        }
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if seat.keyframe_at.is_some_and(|t| now < t + KEYFRAME_EVERY) {
            return;
        }
        seat.keyframe_at = Some(now);
        let k = Keyframe { state: m.state, input: m.last_input, acks: m.acks(m.state.tick) };
        self.send(peer, ServerMsg::Keyframe(k));
    }

    fn on_ready(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        let was = seat.ready;
        seat.ready = true;
        match m.phase {
            Phase::Lobby => {
                if !was {
                    self.broadcast_lobby(mid);
                }
                self.maybe_start(now, mid);
            }
            Phase::Paused => self.maybe_resume(now, mid),
            _ => {}
        }
    }

    fn maybe_start(&mut self, now: u64, mid: MatchId) {
        let at = self.grid_at_or_after(now + self.config.countdown);
        let Some(m) = self.matches.get_mut(&mid) else { return };
        if m.phase != Phase::Lobby
            || !m.is_full()
            || !m.seated().all(|(_, s)| s.ready && s.connected)
        {
            return;
        }
        m.phase = Phase::Starting { at, resume: false };
        m.epoch.0 += 1;
        m.next_repeat = now + self.config.repeat_every;
        let tick = m.state.tick + 1;
        self.out.push_back(Output::Msg(
            Dest::Group(mid),
            ServerMsg::StartAt { epoch: m.epoch, tick, server_time: at },
        ));
        self.event(ServerEvent::CountdownStarted { match_id: mid, at });
    }

    fn maybe_resume(&mut self, now: u64, mid: MatchId) {
        let at = self.grid_at_or_after(now + self.config.countdown);
        let Some(m) = self.matches.get_mut(&mid) else { return };
        if m.phase != Phase::Paused {
            return;
        }
        if m.playing().count() <= 1 {
            // Forfeits have settled the match: play the one tick that records them.
            self.finish_by_forfeit(now, mid);
            return;
        }
        if !m.playing().all(|(_, s)| s.connected && s.ready) {
            return;
        }
        m.phase = Phase::Starting { at, resume: true };
        m.epoch.0 += 1;
        m.next_repeat = now + self.config.repeat_every;
        let tick = m.state.tick + 1;
        self.out.push_back(Output::Msg(
            Dest::Group(mid),
            ServerMsg::StartAt { epoch: m.epoch, tick, server_time: at },
        ));
        self.event(ServerEvent::Resuming { match_id: mid, at });
    }

    fn finish_by_forfeit(&mut self, now: u64, mid: MatchId) {
        self.step_match(now, mid);
    }

    fn on_input(
        &mut self,
        mid: MatchId,
        player: PlayerId,
        peer: PeerId,
        session: SessionId,
        run: &InputRun,
    ) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        if !m.started && !matches!(m.phase, Phase::Starting { .. }) {
            return;
        }
        let next = m.state.tick.wrapping_add(1);
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if !seat.inputs.add(run, next) {
            self.stats.out_of_window += 1;
            self.event(ServerEvent::Refused { peer, why: Refusal::OutOfWindow(session) });
        }
    }

    fn on_leave(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        match m.phase {
            Phase::Lobby | Phase::Starting { resume: false, .. } => {
                self.free_seat(now, mid, player)
            }
            Phase::Over { .. } => {
                let Some(seat) = m.seats[player.index()].as_mut() else { return };
                seat.gone = true;
                if let Some(p) = seat.peer.take() {
                    self.out.push_back(Output::Leave(p, mid));
                }
            }
            _ => self.forfeit(now, mid, player),
        }
    }

    /// Takes a player out of a match that has not started; the seat is free again.
    fn free_seat(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].take() else { return };
        self.sessions.remove(&seat.session);
        if let Some(p) = seat.peer {
            if let Some(info) = self.peers.get_mut(&p) {
                info.session = None;
            }
            self.out.push_back(Output::Leave(p, mid));
        }
        if matches!(m.phase, Phase::Starting { .. }) {
            m.phase = Phase::Lobby;
            m.epoch.0 += 1;
            self.event(ServerEvent::CountdownCancelled { match_id: mid });
        }
        // Everyone says Ready again for the next countdown.
        if let Some(m) = self.matches.get_mut(&mid) {
            for s in m.seats.iter_mut().flatten() {
                s.ready = false;
            }
        }
        self.event(ServerEvent::PlayerLeft { match_id: mid, player });
        let empty = self.matches.get(&mid).is_some_and(|m| m.seated().next().is_none());
        if empty {
            self.close_match(mid);
        } else {
            self.broadcast_lobby(mid);
        }
        let _ = now;
    }

    /// The player is out for good from the next tick on.
    fn forfeit(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if seat.gone {
            return;
        }
        seat.gone = true;
        seat.lost_since = None;
        if m.state.is_alive(player) {
            m.pending_forfeit |= 1 << player.index();
        }
        let phase = m.phase.clone();
        let settled = m.playing().count() <= 1;
        self.event(ServerEvent::Forfeit { match_id: mid, player });
        match phase {
            Phase::Paused => {
                self.broadcast_phase(mid);
                self.maybe_resume(now, mid);
            }
            Phase::Starting { resume: true, .. } if settled => self.finish_by_forfeit(now, mid),
            _ => {}
        }
    }

    /// A member went silent or its link dropped.
    fn lose(&mut self, now: u64, mid: MatchId, player: PlayerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if seat.gone || !seat.connected {
            return;
        }
        match m.phase {
            Phase::Lobby | Phase::Starting { resume: false, .. } => {
                self.event(ServerEvent::PlayerLost { match_id: mid, player });
                self.free_seat(now, mid, player);
            }
            Phase::Over { .. } => {
                seat.connected = false;
            }
            Phase::Running { .. } | Phase::Starting { resume: true, .. } | Phase::Paused => {
                seat.connected = false;
                seat.ready = false;
                seat.lost_since = Some(now);
                let alive = m.state.is_alive(player);
                self.event(ServerEvent::PlayerLost { match_id: mid, player });
                if !alive {
                    return;
                }
                let Some(m) = self.matches.get_mut(&mid) else { return };
                if m.phase != Phase::Paused {
                    m.phase = Phase::Paused;
                    m.epoch.0 += 1;
                    let tick = m.state.tick;
                    self.event(ServerEvent::Paused { match_id: mid, tick });
                }
                self.broadcast_phase(mid);
            }
        }
    }

    fn broadcast_phase(&mut self, mid: MatchId) {
        let Some(m) = self.matches.get(&mid) else { return };
        if m.phase == Phase::Lobby {
            self.broadcast_lobby(mid);
        } else {
            let msg = m.phase_msg(self.config.grace);
            self.out.push_back(Output::Msg(Dest::Group(mid), msg));
        }
    }

    fn close_match(&mut self, mid: MatchId) {
        let Some(m) = self.matches.remove(&mid) else { return };
        if let Some(r) = &m.room
            && self.rooms.get(r) == Some(&mid)
        {
            self.rooms.remove(r);
        }
        for (_, s) in m.seated() {
            self.sessions.remove(&s.session);
            if let Some(p) = s.peer {
                if let Some(info) = self.peers.get_mut(&p)
                    && info.session == Some(s.session)
                {
                    info.session = None;
                }
                self.out.push_back(Output::Leave(p, mid));
            }
        }
        self.event(ServerEvent::MatchClosed { match_id: mid });
    }

    /// The server is going away: every connected member is told and its link closed.
    pub fn handle_shutdown(&mut self) {
        let peers: Vec<PeerId> =
            self.matches.values().flat_map(|m| m.seated().filter_map(|(_, s)| s.peer)).collect();
        for p in peers {
            self.send(p, ServerMsg::Closed(CloseReason::Shutdown));
            self.out.push_back(Output::Disconnect(p));
        }
    }

    /// Time has passed: run due ticks, then liveness, grace periods and repeats.
    pub fn handle_timeout(&mut self, now: u64) {
        self.set_origin(now);
        let due = |core: &Self| core.grid_time(core.next_grid) <= now;
        if due(self) {
            let behind = self.next_grid_index_at(now).saturating_sub(self.next_grid);
            if behind > MAX_CATCH_UP {
                self.next_grid += behind;
                // Grid ticks with no match to step are no loss: only count and announce
                // the skip when some match's ticks were late.
                if self.matches.values().any(|m| matches!(m.phase, Phase::Running { .. })) {
                    self.stats.overruns += behind;
                    self.event(ServerEvent::Overrun { skipped: behind });
                    self.reanchor();
                }
            }
            while due(self) {
                let t = self.grid_time(self.next_grid);
                self.grid_tick(t);
                self.next_grid += 1;
            }
        }
        if now >= self.next_housekeeping {
            self.housekeeping(now);
            self.next_housekeeping = now + HOUSEKEEPING_EVERY;
        }
    }

    fn next_grid_index_at(&self, now: u64) -> u64 {
        let since = u128::from(now.saturating_sub(self.origin.unwrap_or(0)));
        u64::try_from(since * u128::from(self.config.tick_hz) / u128::from(SECOND))
            .unwrap_or(u64::MAX)
    }

    /// After skipping grid ticks, tell every running match's members the new mapping of
    /// ticks to server time.
    fn reanchor(&mut self) {
        let t = self.grid_time(self.next_grid);
        let mut msgs = Vec::new();
        for m in self.matches.values_mut() {
            if let Phase::Running { .. } = m.phase {
                let tick = m.state.tick + 1;
                m.phase = Phase::Running { anchor_tick: tick, anchor_time: t };
                msgs.push((m.id, ServerMsg::StartAt { epoch: m.epoch, tick, server_time: t }));
            }
        }
        for (mid, msg) in msgs {
            self.out.push_back(Output::Msg(Dest::Group(mid), msg));
        }
    }

    /// One tick of the grid: every running match steps once; countdowns that end now start.
    fn grid_tick(&mut self, t: u64) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        due.extend(
            self.matches
                .values()
                .filter(|m| match m.phase {
                    Phase::Running { .. } => true,
                    Phase::Starting { at, .. } => at <= t,
                    _ => false,
                })
                .map(|m| m.id),
        );
        for &mid in &due {
            if let Some(m) = self.matches.get_mut(&mid)
                && let Phase::Starting { at, resume } = m.phase
            {
                m.phase = Phase::Running { anchor_tick: m.state.tick + 1, anchor_time: at };
                if !resume {
                    m.started = true;
                    self.event(ServerEvent::MatchStarted { match_id: mid });
                }
            }
            self.step_match(t, mid);
        }
        self.due = due;
    }

    fn step_match(&mut self, now: u64, mid: MatchId) {
        let record = self.config.record_ticks;
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let n = m.state.tick.wrapping_add(1);
        let mut input = TickInput { intents: [Intent::Stop; 4], forfeit: m.pending_forfeit };
        m.pending_forfeit = 0;
        for (i, seat) in m.seats.iter_mut().enumerate() {
            if let Some(seat) = seat {
                input.intents[i] = seat.inputs.take(n);
            }
        }
        let lives_before = m.state.lives;
        let events = m.state.step(&m.rules, &input);
        m.started = true;
        let hash = m.state.hash();
        m.last_input = input;
        let over = note_outcomes(&mut m.outcomes, lives_before, &events, n);
        let tick = TickMsg { tick: n, input, acks: m.acks(n), hash: StateHash(hash) };
        if m.recent.len() == RECENT_TICKS {
            m.recent.pop_front();
        }
        m.recent.push_back(tick);
        self.stats.ticks += 1;
        self.out.push_back(Output::Msg(Dest::Group(mid), ServerMsg::Tick(tick)));
        if record {
            self.events.push_back(ServerEvent::Tick { match_id: mid, tick: n, input, hash });
        }
        if over {
            self.end_match(now, mid);
        }
    }

    fn end_match(&mut self, now: u64, mid: MatchId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        let result = m.result();
        m.phase = Phase::Over { at: now, result: result.clone() };
        m.next_repeat = now + self.config.repeat_every;
        self.stats.matches_finished += 1;
        self.out.push_back(Output::Msg(Dest::Group(mid), ServerMsg::MatchOver(result.clone())));
        self.event(ServerEvent::MatchOver { match_id: mid, result });
    }

    fn housekeeping(&mut self, now: u64) {
        let lost_timeout = self.config.lost_timeout;
        let grace = self.config.grace;
        let mut lost = Vec::new();
        let mut expired = Vec::new();
        let mut repeat = Vec::new();
        let mut closing = Vec::new();
        for m in self.matches.values_mut() {
            for (i, seat) in m.seats.iter().enumerate() {
                let Some(s) = seat else { continue };
                if s.gone {
                    continue;
                }
                if s.connected && now.saturating_sub(s.last_heard) > lost_timeout {
                    lost.push((m.id, PlayerId::ALL[i]));
                }
                // (In a lobby only a restored seat is ever lost: it is freed, below.)
                if let Some(since) = s.lost_since
                    && now >= since.saturating_add(grace)
                    && !s.connected
                {
                    expired.push((m.id, PlayerId::ALL[i]));
                }
            }
            if let Phase::Over { at, .. } = m.phase
                && now >= at.saturating_add(self.config.linger)
            {
                closing.push(m.id);
            } else if now >= m.next_repeat {
                m.next_repeat = now + self.config.repeat_every;
                if !matches!(m.phase, Phase::Running { .. }) {
                    repeat.push(m.id);
                }
            }
        }
        for (mid, p) in lost {
            self.lose(now, mid, p);
        }
        for (mid, p) in expired {
            if self.matches.get(&mid).is_some_and(|m| m.phase == Phase::Lobby) {
                self.free_seat(now, mid, p);
            } else {
                self.forfeit(now, mid, p);
            }
        }
        for mid in repeat {
            self.broadcast_phase(mid);
        }
        for mid in closing {
            self.close_match(mid);
        }
        self.peers.retain(|_, info| {
            info.session.is_some() || now.saturating_sub(info.last_seen) < IDLE_PEER
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_server, encode_open, encode_signed};
    use crate::proto::Signed;

    fn join_frame(name: &str, players: Option<u8>) -> Vec<u8> {
        let mut buf = Vec::new();
        let join = Join { name: Name::new(name).unwrap(), players, room: None };
        encode_open(&OpenMsg::Join(join), &mut buf).unwrap();
        buf
    }

    fn drain(core: &mut ServerCore) -> Vec<(Transmit, Option<ServerMsg>)> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(t) = core.poll_transmit(&mut buf) {
            let msg = matches!(t, Transmit::Send(_)).then(|| decode_server(&buf).unwrap());
            out.push((t, msg));
        }
        out
    }

    fn welcome_of(out: &[(Transmit, Option<ServerMsg>)]) -> Welcome {
        out.iter()
            .find_map(|(_, m)| match m {
                Some(ServerMsg::Welcome(w)) => Some(w.clone()),
                _ => None,
            })
            .unwrap()
    }

    fn signed(w: &Welcome, seq: u32, msg: SessionMsg) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_signed(Signed { session: w.session, seq }, &msg, &w.token, &mut buf).unwrap();
        buf
    }

    #[test]
    fn replay_window_accepts_reordered_once() {
        let mut w = ReplayWindow::new();
        assert!(w.accept(1));
        assert!(w.accept(3));
        assert!(w.accept(2));
        assert!(!w.accept(2));
        assert!(!w.accept(3));
        assert!(!w.accept(0));
        assert!(w.accept(100));
        assert!(!w.accept(36));
        assert!(w.accept(37));
    }

    #[test]
    fn late_inputs_apply_once_at_the_current_tick() {
        let mut q = InputQueue::new();
        q.add(&InputRun::new(10, [Intent::Plus; 3]), 10);
        assert_eq!(q.take(10), Intent::Plus);
        assert_eq!(q.take(11), Intent::Plus);
        assert_eq!(q.take(12), Intent::Plus);
        // Tick 13 had no input: the last one repeats.
        assert_eq!(q.take(13), Intent::Plus);
        // An input for 13 arrives late: applied at 14, then not again.
        q.add(&InputRun::new(13, [Intent::Minus]), 14);
        assert_eq!(q.take(14), Intent::Minus);
        q.add(&InputRun::new(13, [Intent::Stop]), 15);
        assert_eq!(q.take(15), Intent::Minus);
        assert_eq!(q.acked, Some(13));
        // Far ahead is refused.
        assert!(!q.add(&InputRun::new(15 + MAX_AHEAD, [Intent::Plus]), 15));
    }

    #[test]
    fn two_joins_fill_a_match_and_ready_starts_the_countdown() {
        let mut core = ServerCore::new(ServerConfig::default(), [1; 32]);
        core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
        let w1 = welcome_of(&drain(&mut core));
        core.handle_frame(10, PeerId(2), &join_frame("Bob", None));
        let w2 = welcome_of(&drain(&mut core));
        assert_eq!(w1.match_id, w2.match_id);
        assert_ne!(w1.player, w2.player);
        assert_ne!(w1.token, w2.token);
        core.handle_frame(20, PeerId(1), &signed(&w1, 1, SessionMsg::Ready));
        assert!(
            !drain(&mut core).iter().any(|(_, m)| matches!(m, Some(ServerMsg::StartAt { .. })))
        );
        core.handle_frame(30, PeerId(2), &signed(&w2, 1, SessionMsg::Ready));
        let out = drain(&mut core);
        let start = out.iter().find_map(|(t, m)| match m {
            Some(ServerMsg::StartAt { tick, server_time, .. }) => Some((*t, *tick, *server_time)),
            _ => None,
        });
        let (t, tick, at) = start.unwrap();
        assert_eq!(t, Transmit::Send(Dest::Group(w1.match_id)));
        assert_eq!(tick, 1);
        assert!(at >= 30 + 3 * SECOND);
    }

    /// Every event the core reported, as journal records of match `mid`.
    fn journal(core: &mut ServerCore, into: &mut Vec<crate::journal::Record>, mid: MatchId) {
        while let Some(e) = core.poll_event() {
            if let Some((m, r)) = crate::journal::Record::from_event(&e)
                && m == mid
            {
                into.push(r);
            }
        }
    }

    /// A two-player match run for `ticks` ticks with players' inputs; returns both welcomes
    /// and the journal.
    fn played(
        core: &mut ServerCore,
        ticks: u32,
    ) -> (Welcome, Welcome, Vec<crate::journal::Record>) {
        let mut records = Vec::new();
        core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
        let w1 = welcome_of(&drain(core));
        core.handle_frame(10, PeerId(2), &join_frame("Bob", None));
        let w2 = welcome_of(&drain(core));
        core.handle_frame(20, PeerId(1), &signed(&w1, 1, SessionMsg::Ready));
        core.handle_frame(30, PeerId(2), &signed(&w2, 1, SessionMsg::Ready));
        drain(core);
        let period = SECOND / u64::from(core.config().tick_hz);
        let mut now = 30 + 3 * SECOND;
        let mut seq = 1;
        for i in 0..ticks {
            seq += 1;
            let intent = if i % 40 < 20 { Intent::Plus } else { Intent::Minus };
            let run = InputRun::new(i + 1, [intent]);
            core.handle_frame(now, PeerId(1), &signed(&w1, seq, SessionMsg::Input(run)));
            core.handle_frame(now, PeerId(2), &signed(&w2, seq, SessionMsg::Input(run)));
            now += period;
            core.handle_timeout(now);
            drain(core);
            journal(core, &mut records, w1.match_id);
        }
        (w1, w2, records)
    }

    fn resume(
        core: &mut ServerCore,
        now: u64,
        peer: PeerId,
        w: &Welcome,
        seq: u32,
    ) -> Vec<(Transmit, Option<ServerMsg>)> {
        let mut buf = Vec::new();
        encode_open(&OpenMsg::Resume { session: w.session }, &mut buf).unwrap();
        core.handle_frame(now, peer, &buf);
        let nonce = drain(core)
            .iter()
            .find_map(|(_, m)| match m {
                Some(ServerMsg::Challenge { nonce, .. }) => Some(*nonce),
                _ => None,
            })
            .unwrap();
        core.handle_frame(now, peer, &signed(w, seq, SessionMsg::Prove { nonce }));
        drain(core)
    }

    #[test]
    fn a_restored_match_resumes_through_pause_ready_and_countdown() {
        let config = ServerConfig { tick_hz: 120, record_ticks: true, ..ServerConfig::default() };
        let mut core = ServerCore::new(config.clone(), [3; 32]);
        let (w1, w2, records) = played(&mut core, 300);
        let before = core.match_state(w1.match_id).unwrap().tick;
        assert!(before > 290, "{before}");

        // The server dies; the last few ticks never reached the store.
        let kept = &records[..records.len() - 5];
        let rm = RecoveredMatch::rebuild(w1.match_id, kept).unwrap();
        let l = before - 5;
        assert_eq!(rm.tick(), l);
        let mut core = ServerCore::new(config, [4; 32]);
        core.restore(0, rm).unwrap();
        assert_eq!(core.match_state(w1.match_id).unwrap().tick, l);
        let mut events = Vec::new();
        while let Some(e) = core.poll_event() {
            events.push(e);
        }
        assert!(
            matches!(events[0], ServerEvent::Restored { tick, epoch, .. } if tick == l && epoch > RESTORE_EPOCH_STEP)
        );
        assert_eq!(
            events.iter().filter(|e| matches!(e, ServerEvent::PlayerLost { .. })).count(),
            2
        );

        // An old signed frame replayed before the proof is refused.
        core.handle_frame(100, PeerId(7), &signed(&w1, 9_999, SessionMsg::Ready));
        assert_eq!(core.stats().replayed, 1);

        // Both come back with their tokens: a paused match, newer than anything seen before.
        let out = resume(&mut core, 1_000, PeerId(11), &w1, 50_000);
        let w = welcome_of(&out);
        assert!(w.resumed);
        assert_eq!((w.player, w.match_id, w.token), (w1.player, w1.match_id, w1.token));
        let paused = out.iter().find_map(|(_, m)| match m {
            Some(ServerMsg::Paused(p)) => Some(p.clone()),
            _ => None,
        });
        let paused = paused.unwrap();
        assert_eq!(paused.tick, l);
        assert!(paused.epoch.0 > RESTORE_EPOCH_STEP);
        resume(&mut core, 2_000, PeerId(12), &w2, 50_000);
        core.handle_frame(3_000, PeerId(11), &signed(&w1, 50_001, SessionMsg::Ready));
        core.handle_frame(3_000, PeerId(12), &signed(&w2, 50_001, SessionMsg::Ready));
        let start = drain(&mut core).into_iter().find_map(|(_, m)| match m {
            Some(ServerMsg::StartAt { tick, server_time, epoch }) => {
                Some((tick, server_time, epoch))
            }
            _ => None,
        });
        let (tick, at, epoch) = start.unwrap();
        assert_eq!(tick, l + 1);
        assert!(epoch > paused.epoch);
        core.handle_timeout(at);
        assert_eq!(core.match_state(w1.match_id).unwrap().tick, l + 1);
        // New matches are numbered after the restored one, new sessions after its sessions.
        core.handle_frame(4_000, PeerId(20), &join_frame("Cy", None));
        let w3 = welcome_of(&drain(&mut core));
        assert!(w3.match_id.0 > w1.match_id.0);
        assert!(w3.session.0 > w2.session.0.max(w1.session.0));
    }

    #[test]
    fn restore_refuses_what_it_cannot_host() {
        let config = ServerConfig { tick_hz: 120, record_ticks: true, ..ServerConfig::default() };
        let mut core = ServerCore::new(config.clone(), [5; 32]);
        let (w1, _, records) = played(&mut core, 20);
        let rm = RecoveredMatch::rebuild(w1.match_id, &records).unwrap();
        let mut other = ServerCore::new(ServerConfig { tick_hz: 60, ..config.clone() }, [6; 32]);
        assert_eq!(
            other.restore(0, rm.clone()),
            Err(RestoreError::TickRate { match_hz: 120, server_hz: 60 })
        );
        assert_eq!(other.match_count(), 0);
        assert_eq!(core.restore(0, rm.clone()), Err(RestoreError::AlreadyHosted(w1.match_id)));
        let mut fresh = ServerCore::new(config, [7; 32]);
        fresh.restore(0, rm.clone()).unwrap();
        assert_eq!(fresh.restore(0, rm), Err(RestoreError::AlreadyHosted(w1.match_id)));
    }

    #[test]
    fn a_restored_match_whose_players_do_not_come_back_ends_by_forfeit() {
        let config = ServerConfig {
            tick_hz: 120,
            grace: 2 * SECOND,
            record_ticks: true,
            ..ServerConfig::default()
        };
        let mut core = ServerCore::new(config.clone(), [8; 32]);
        let (w1, _, records) = played(&mut core, 50);
        let rm = RecoveredMatch::rebuild(w1.match_id, &records).unwrap();
        let l = rm.tick();
        assert!(l > 40, "{l}");
        let mut core = ServerCore::new(config, [9; 32]);
        core.restore(0, rm).unwrap();
        resume(&mut core, 1_000, PeerId(11), &w1, 7);
        let mut now = 0;
        while now < 3 * SECOND {
            now += HOUSEKEEPING_EVERY;
            core.handle_timeout(now);
            drain(&mut core);
        }
        let mut over = None;
        while let Some(e) = core.poll_event() {
            if let ServerEvent::MatchOver { result, .. } = e {
                over = Some(result);
            }
        }
        let over = over.unwrap();
        assert_eq!(over.tick, l + 1);
        assert_eq!(over.winner, Some(w1.player));
    }

    #[test]
    fn a_match_restored_before_its_start_is_back_in_its_lobby() {
        let config = ServerConfig { grace: 2 * SECOND, ..ServerConfig::default() };
        let mut core = ServerCore::new(config.clone(), [10; 32]);
        core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
        let w1 = welcome_of(&drain(&mut core));
        core.handle_frame(10, PeerId(2), &join_frame("Bob", None));
        let w2 = welcome_of(&drain(&mut core));
        core.handle_frame(20, PeerId(1), &signed(&w1, 1, SessionMsg::Ready));
        core.handle_frame(30, PeerId(2), &signed(&w2, 1, SessionMsg::Ready));
        let mut records = Vec::new();
        journal(&mut core, &mut records, w1.match_id);
        assert!(records.contains(&crate::journal::Record::CountdownStarted));
        let mut core = ServerCore::new(config, [11; 32]);
        core.restore(0, RecoveredMatch::rebuild(w1.match_id, &records).unwrap()).unwrap();
        let out = resume(&mut core, 1_000, PeerId(11), &w1, 9);
        let lobby = out.iter().find_map(|(_, m)| match m {
            Some(ServerMsg::Lobby(l)) => Some(l.clone()),
            _ => None,
        });
        let lobby = lobby.unwrap();
        assert!(lobby.members.iter().all(|m| !m.ready));
        assert!(lobby.epoch.0 > RESTORE_EPOCH_STEP);
        // Bob never comes back: his seat is freed after the grace period, Ada keeps hers.
        let mut now = 1_000;
        while now < 3 * SECOND {
            now += HOUSEKEEPING_EVERY;
            core.handle_frame(
                now,
                PeerId(11),
                &signed(
                    &w1,
                    10 + (now / HOUSEKEEPING_EVERY) as u32,
                    SessionMsg::Ping { id: 1, client_time: 0 },
                ),
            );
            core.handle_timeout(now);
            drain(&mut core);
        }
        let left: Vec<_> = std::iter::from_fn(|| core.poll_event())
            .filter_map(|e| match e {
                ServerEvent::PlayerLeft { player, .. } => Some(player),
                _ => None,
            })
            .collect();
        assert_eq!(left, vec![w2.player]);
        assert_eq!(core.match_count(), 1);
    }

    #[test]
    fn forged_and_replayed_frames_are_refused() {
        let mut core = ServerCore::new(ServerConfig::default(), [2; 32]);
        core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
        let w = welcome_of(&drain(&mut core));
        let mut forged = w.clone();
        forged.token = Token([0; 16]);
        core.handle_frame(1, PeerId(9), &signed(&forged, 1, SessionMsg::Ready));
        assert_eq!(core.stats().forged, 1);
        core.handle_frame(2, PeerId(1), &signed(&w, 5, SessionMsg::Ping { id: 1, client_time: 0 }));
        core.handle_frame(3, PeerId(1), &signed(&w, 5, SessionMsg::Ping { id: 1, client_time: 0 }));
        assert_eq!(core.stats().replayed, 1);
    }
}
