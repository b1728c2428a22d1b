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
//! `now` is microseconds on the driver's monotonic clock.
//!
//! # Layout
//! This file keeps [`ServerCore`], its public `handle_*`/`poll_*` calls and the dispatch of
//! each message to the rules that handle it; each set of rules is a child module that adds
//! to `impl ServerCore`:
//! - `config`, `stats`, `event`: [`ServerConfig`], [`ServerStats`], [`ServerEvent`];
//! - `trust`: signatures, the replay window, resume challenges, session tokens (who may
//!   speak for a session);
//! - `links`: what each link and each address may do: the rate limit, bad-frame strikes,
//!   links and new matches per address, the deadline to take a seat;
//! - `game`: one hosted match, its seats and phase;
//! - `lobby`: join, seat, leave, ready, and the countdown that starts or resumes a match;
//! - `grid`: the tick loop (one server-wide grid), inputs, stepping and ending a match;
//! - `input_queue`: a member's inputs by tick, late and early;
//! - `liveness`: lost members, pauses, coming back, forfeits, housekeeping;
//! - `resend`: ticks or a keyframe for a member that missed some;
//! - `restore`: matches taken over from a stopped server's journal;
//! - `overview`: what operators see: matches by phase, each match with its members.
//!
//! Trust: frames that do not decode, do not verify, replay an old sequence number, name no
//! known session, carry inputs far outside the tick window or come too fast are refused and
//! counted in [`ServerStats`]; a link that keeps doing it is dropped. None of that touches
//! any match. The cost of an event does not grow with the matches hosted: the matches the
//! grid steps and the open lobbies are kept in indices of their own.

mod config;
mod event;
mod game;
mod grid;
mod input_queue;
mod links;
mod liveness;
mod lobby;
mod overview;
mod resend;
mod restore;
mod stats;
mod trust;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::codec::{self, ClientFrame, SignedFrame};
use crate::journal::Record;
use crate::proto::{CloseReason, MatchId, OpenMsg, RoomName, ServerMsg, SessionId, SessionMsg};
use crate::route::{Dest, PeerId};
use crate::rules::PlayerId;
use crate::sim::MatchState;

pub use config::ServerConfig;
pub use event::{Refusal, ServerEvent};
pub use overview::{MatchOverview, MatchPhase, MemberOverview, PhaseCounts};
pub(crate) use resend::RESEND_MAX;
pub use restore::{RESTORE_EPOCH_STEP, RestoreError};
pub use stats::ServerStats;

use game::{Match, Phase, Seat};
use links::{AddressInfo, PeerInfo};

const SECOND: u64 = 1_000_000;
/// How often liveness and repeats are checked.
const HOUSEKEEPING_EVERY: u64 = 50_000;

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

/// What waits in the core's out-queue; messages are encoded only when polled.
enum Output {
    Msg(Dest, ServerMsg),
    Join(PeerId, MatchId),
    Leave(PeerId, MatchId),
    Disconnect(PeerId),
}

/// The authoritative server. See the module docs for how to drive it.
pub struct ServerCore {
    config: ServerConfig,
    /// Tokens, nonces and match seeds.
    rng: ChaCha20Rng,
    /// Server time of grid tick 0: set by the first thing the core hears of.
    origin: Option<u64>,
    next_grid: u64,
    next_housekeeping: u64,
    matches: BTreeMap<MatchId, Match>,
    sessions: HashMap<SessionId, (MatchId, PlayerId)>,
    peers: HashMap<PeerId, PeerInfo>,
    /// The IP addresses links come from, with what each may still do.
    addresses: HashMap<IpAddr, AddressInfo>,
    next_sweep: u64,
    /// Matches the tick grid steps or starts (running or counting down), so that neither
    /// the next timeout nor a grid tick walks the lobbies.
    active: BTreeSet<MatchId>,
    /// Lobbies without a room that have a free seat, by size: where a `Join` without a
    /// room goes, found without walking every match.
    open: BTreeSet<(u8, MatchId)>,
    rooms: BTreeMap<RoomName, MatchId>,
    next_match: u32,
    /// Session ids: random, from a stream of their own so that they do not shift the tokens
    /// and match seeds drawn from `rng`.
    session_ids: ChaCha20Rng,
    out: VecDeque<Output>,
    events: VecDeque<ServerEvent>,
    stats: ServerStats,
    /// The ids of the matches one grid tick steps, kept between ticks so that a steady
    /// tick allocates nothing.
    due: Vec<MatchId>,
    /// Shutting down gracefully: no new player is seated; matches in play go on.
    draining: bool,
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
            addresses: HashMap::new(),
            next_sweep: 0,
            active: BTreeSet::new(),
            open: BTreeSet::new(),
            rooms: BTreeMap::new(),
            next_match: 1,
            session_ids: {
                let mut ids = ChaCha20Rng::from_seed(seed);
                ids.set_stream(1);
                ids
            },
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: ServerStats::default(),
            due: Vec::new(),
            draining: false,
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

    /// The rules of a match, if it exists.
    pub fn match_rules(&self, id: MatchId) -> Option<&crate::rules::Rules> {
        self.matches.get(&id).map(|m| &m.rules)
    }

    /// The ids of the hosted matches.
    pub fn match_ids(&self) -> impl Iterator<Item = MatchId> + '_ {
        self.matches.keys().copied()
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

    /// When to call [`ServerCore::handle_timeout`] next. Constant time, whatever the number
    /// of matches: the driver asks after every event.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.origin?;
        let grid = (!self.active.is_empty()).then(|| self.grid_time(self.next_grid));
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

    /// Reports what happened to a match, as its journal keeps it.
    fn record(&mut self, match_id: MatchId, record: Record) {
        match record {
            Record::Paused { .. } => self.stats.pauses += 1,
            Record::Forfeit { .. } => self.stats.forfeits += 1,
            _ => {}
        }
        self.events.push_back(ServerEvent::Match { match_id, record });
    }

    // ---- inputs ----

    /// A transport reports that a link is gone.
    pub fn handle_peer_gone(&mut self, now: u64, peer: PeerId) {
        self.set_origin(now);
        if let Some(info) = self.forget_link(peer)
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
        if !self.admit(now, peer) {
            return;
        }
        match codec::decode_client(frame) {
            Err(e) => {
                self.stats.malformed += 1;
                self.event(ServerEvent::Refused { peer, why: Refusal::Malformed(e) });
                self.strike(now, peer, CloseReason::Malformed);
            }
            Ok(ClientFrame::Open(OpenMsg::Join(join))) => self.on_join(now, peer, join),
            Ok(ClientFrame::Open(OpenMsg::Resume { session })) => {
                self.on_resume_request(now, peer, session)
            }
            Ok(ClientFrame::Signed(f)) => self.on_signed(now, peer, f),
        }
    }

    /// A signed frame: once `authenticate` (in `trust`) has checked it, the message goes to
    /// the rules that handle it.
    fn on_signed(&mut self, now: u64, peer: PeerId, f: SignedFrame<'_>) {
        let Some((mid, player)) = self.authenticate(now, peer, &f) else { return };
        if self.seat(mid, player).is_some_and(|s| !s.connected) {
            // A Prove is answered below with a Welcome and the match's phase.
            let tell = !matches!(f.msg, SessionMsg::Prove { .. });
            self.come_back(now, mid, player, tell);
        }
        match f.msg {
            SessionMsg::Ready => self.on_ready(now, mid, player),
            SessionMsg::Input(run) => {
                self.on_input(mid, player, peer, f.header.session, &run);
            }
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

    /// The server is about to go away, gracefully: from now on a `Join` is refused with
    /// [`crate::proto::Reject::ShuttingDown`], while the matches in play (and their members'
    /// resumes) go on until they end. The driver calls [`ServerCore::handle_shutdown`] when
    /// [`ServerCore::phase_counts`] shows none left in play, or its drain time is up.
    pub fn begin_drain(&mut self) {
        self.draining = true;
    }

    /// True once [`ServerCore::begin_drain`] was called.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining
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
        self.run_due_ticks(now);
        if now >= self.next_housekeeping {
            self.housekeeping(now);
            self.next_housekeeping = now + HOUSEKEEPING_EVERY;
        }
        if now >= self.next_sweep {
            self.sweep_links(now);
            self.next_sweep = now + links::SWEEP_EVERY;
        }
    }

    // ---- shared by the rules ----

    fn seat(&self, mid: MatchId, p: PlayerId) -> Option<&Seat> {
        self.matches.get(&mid)?.seats[p.index()].as_ref()
    }

    fn seat_mut(&mut self, mid: MatchId, p: PlayerId) -> Option<&mut Seat> {
        self.matches.get_mut(&mid)?.seats[p.index()].as_mut()
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

    /// Tells every member where the match stands now.
    fn broadcast_phase(&mut self, mid: MatchId) {
        let Some(m) = self.matches.get(&mid) else { return };
        if m.phase == Phase::Lobby {
            self.broadcast_lobby(mid);
        } else {
            let msg = m.phase_msg(self.config.grace);
            self.out.push_back(Output::Msg(Dest::Group(mid), msg));
        }
    }

    /// Keeps the indices of matches by phase up to date: call after a match's phase or
    /// seats change, or it comes or goes.
    fn reindex(&mut self, mid: MatchId) {
        let Some(m) = self.matches.get(&mid) else {
            self.active.remove(&mid);
            for players in 2..=4 {
                self.open.remove(&(players, mid));
            }
            return;
        };
        if matches!(m.phase, Phase::Running { .. } | Phase::Starting { .. }) {
            self.active.insert(mid);
        } else {
            self.active.remove(&mid);
        }
        let key = (m.rules.players(), mid);
        if m.phase == Phase::Lobby && m.room.is_none() && !m.is_full() {
            self.open.insert(key);
        } else {
            self.open.remove(&key);
        }
    }

    /// Removes a match: its room, its sessions and its members' group memberships go.
    fn close_match(&mut self, mid: MatchId) {
        let Some(m) = self.matches.remove(&mid) else { return };
        self.reindex(mid);
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
        self.record(mid, Record::Closed);
    }
}
