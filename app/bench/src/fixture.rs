//! A [`ServerCore`] hosting many running matches, driven sans-IO on a virtual clock, with
//! every seat sending its input every tick (and a ping a second), as in steady-state play.
//! The server benchmark and the per-tick allocation test share it.
//!
//! One grid tick of the server is split in the phases a driver goes through, so each can be
//! timed or counted on its own:
//! 1. [`Fixture::prepare`] (not part of the server's work): the clients' side. Bots decide
//!    on the server's own state, their inputs are encoded and signed; a match that ended is
//!    replaced by a new one (its seats join again).
//! 2. [`Fixture::deliver_inputs`]: `handle_frame` for every seat's frame.
//! 3. [`Fixture::wake`]: `handle_timeout` at the core's next deadline (a grid tick, a
//!    housekeeping round, or both), then
//! 4. [`Fixture::drain_transmits`] and [`Fixture::drain_events`]: what a driver does after
//!    every call.

use std::collections::BTreeSet;

use pong_domain::Rules;
use pong_domain::bot::Bot;
use pong_domain::codec;
use pong_domain::proto::{
    InputRun, Join, MatchId, Name, OpenMsg, ServerMsg, SessionId, SessionMsg, Signed, Token,
};
use pong_domain::route::{Dest, PeerId};
use pong_domain::server::{ServerConfig, ServerCore, Transmit};

/// Inputs are for this many ticks after the last one simulated (they arrive early, as
/// from a real client).
const LEAD: u32 = 2;

struct Seat {
    peer: PeerId,
    session: SessionId,
    token: Token,
    seq: u32,
    match_id: MatchId,
    rules: Rules,
    bot: Bot,
    frame: Vec<u8>,
}

/// A server with `matches` running matches of `players` each. See the module docs.
pub struct Fixture {
    /// The server under test.
    pub core: ServerCore,
    seats: Vec<Seat>,
    now: u64,
    next_peer: u64,
    players: u8,
    buf: Vec<u8>,
    ticks_prepared: u64,
    /// Matches that ended and were replaced by new ones.
    pub replaced: u64,
}

fn open_frame(msg: &OpenMsg) -> Vec<u8> {
    let mut buf = Vec::new();
    // A join of a valid name always encodes.
    let _ = codec::encode_open(msg, &mut buf);
    buf
}

impl Fixture {
    /// The server's configuration: `players` per match, 15 lives (long matches), no
    /// countdown, limits high enough for any count of matches.
    pub fn config(players: u8) -> ServerConfig {
        ServerConfig {
            default_players: players,
            lives: pong_domain::rules::MAX_LIVES,
            countdown: 0,
            max_matches: 1_000_000,
            max_links_per_address: u32::MAX,
            matches_per_minute_per_address: u32::MAX,
            ..ServerConfig::default()
        }
    }

    /// Seats `matches × players` clients and runs the clock until every match has played
    /// its first tick.
    ///
    /// # Panics
    /// If the server does not seat or start them (a broken core).
    pub fn new(matches: usize, players: u8) -> Fixture {
        let mut f = Fixture {
            core: ServerCore::new(Fixture::config(players), [7; 32]),
            seats: Vec::with_capacity(matches * usize::from(players)),
            now: 1_000_000,
            next_peer: 1,
            players,
            buf: Vec::with_capacity(1024),
            ticks_prepared: 0,
            replaced: 0,
        };
        for _ in 0..matches {
            let peers: Vec<PeerId> = (0..players).map(|_| f.new_peer()).collect();
            f.seat_match(&peers);
        }
        f.run_until_started();
        f
    }

    fn new_peer(&mut self) -> PeerId {
        self.next_peer += 1;
        PeerId(self.next_peer)
    }

    /// `peers` join (a new match forms of them, or they take the oldest open one) and
    /// say Ready.
    fn seat_match(&mut self, peers: &[PeerId]) {
        for (i, &peer) in peers.iter().enumerate() {
            let join = Join {
                name: Name::new(&format!("s{}", peer.0)).unwrap_or_else(|_| unreachable!()),
                players: Some(self.players),
                room: None,
            };
            self.core.handle_frame(self.now, peer, &open_frame(&OpenMsg::Join(join)));
            let mut welcome = None;
            while let Some(t) = self.core.poll_transmit(&mut self.buf) {
                if t == Transmit::Send(Dest::Peer(peer))
                    && let Ok(ServerMsg::Welcome(w)) = codec::decode_server(&self.buf)
                {
                    welcome = Some(w);
                }
            }
            while self.core.poll_event().is_some() {}
            let w = welcome.unwrap_or_else(|| panic!("no Welcome for {peer}"));
            self.seats.push(Seat {
                peer,
                session: w.session,
                token: w.token,
                seq: 0,
                match_id: w.match_id,
                rules: Rules::new(w.config),
                bot: Bot::new(w.player, pong_domain::bot::MAX_SKILL, peer.0 ^ i as u64),
                frame: Vec::with_capacity(64),
            });
        }
        let first = self.seats.len() - peers.len();
        for i in first..self.seats.len() {
            self.sign(i, &SessionMsg::Ready);
            let (peer, frame) = (self.seats[i].peer, std::mem::take(&mut self.seats[i].frame));
            self.core.handle_frame(self.now, peer, &frame);
            self.seats[i].frame = frame;
            self.drain_transmits();
            self.drain_events();
        }
    }

    fn sign(&mut self, i: usize, msg: &SessionMsg) {
        let s = &mut self.seats[i];
        s.seq += 1;
        let header = Signed { session: s.session, seq: s.seq };
        // Session messages always fit a frame.
        let _ = codec::encode_signed(header, msg, &s.token, &mut s.frame);
    }

    fn run_until_started(&mut self) {
        for _ in 0..10_000 {
            let all = self
                .seats
                .iter()
                .all(|s| self.core.match_state(s.match_id).is_some_and(|st| st.tick > 0));
            if all {
                return;
            }
            self.wake();
            self.drain_transmits();
            self.drain_events();
        }
        panic!("the matches did not start");
    }

    /// Seats in play.
    pub fn seats(&self) -> usize {
        self.seats.len()
    }

    /// Matches hosted (running, or ended and not yet closed).
    pub fn matches(&self) -> usize {
        self.core.match_count()
    }

    /// The clients' side of the next tick (see the module docs): replaces ended matches,
    /// then has every seat decide and sign its input (and a ping once a second).
    pub fn prepare(&mut self) {
        self.replace_ended();
        self.ticks_prepared += 1;
        for i in 0..self.seats.len() {
            let s = &mut self.seats[i];
            let Some(state) = self.core.match_state(s.match_id) else { continue };
            let intent = s.bot.decide(&s.rules, state);
            let at = state.tick + LEAD;
            // One ping a second per seat, spread over the seats.
            let msg = if (self.ticks_prepared + i as u64).is_multiple_of(60) {
                SessionMsg::Ping { id: s.seq, client_time: self.now }
            } else {
                SessionMsg::Input(InputRun::new(at, [intent]))
            };
            self.sign(i, &msg);
        }
    }

    /// Seats of matches that ended join new ones.
    fn replace_ended(&mut self) {
        let ended: BTreeSet<MatchId> = self
            .seats
            .iter()
            .filter(|s| self.core.match_state(s.match_id).is_none_or(|st| st.is_over()))
            .map(|s| s.match_id)
            .collect();
        if ended.is_empty() {
            return;
        }
        for mid in ended {
            let peers: Vec<PeerId> =
                self.seats.iter().filter(|s| s.match_id == mid).map(|s| s.peer).collect();
            self.seats.retain(|s| s.match_id != mid);
            self.seat_match(&peers);
            self.replaced += 1;
        }
        self.run_until_started();
    }

    /// Phase 2: the server takes every seat's frame.
    pub fn deliver_inputs(&mut self) {
        for s in &self.seats {
            self.core.handle_frame(self.now, s.peer, &s.frame);
        }
    }

    /// Phase 3: the clock moves to the core's next deadline and the core handles it.
    /// Returns true if a grid tick ran (false: housekeeping only).
    pub fn wake(&mut self) -> bool {
        let before = self.core.stats().ticks;
        if let Some(t) = self.core.poll_timeout() {
            self.now = self.now.max(t);
        }
        self.core.handle_timeout(self.now);
        self.core.stats().ticks != before
    }

    /// Phase 4a: what the driver sends (encoded into one reused buffer); returns how many.
    pub fn drain_transmits(&mut self) -> usize {
        let mut n = 0;
        while self.core.poll_transmit(&mut self.buf).is_some() {
            n += 1;
        }
        n
    }

    /// Phase 4b: what the driver logs; returns how many.
    pub fn drain_events(&mut self) -> usize {
        let mut n = 0;
        while self.core.poll_event().is_some() {
            n += 1;
        }
        n
    }

    /// One whole grid tick as a driver does it: inputs, then wakes until the grid ticks,
    /// draining after each. Returns the frames sent.
    pub fn server_tick(&mut self) -> usize {
        self.deliver_inputs();
        let mut sent = self.drain_transmits();
        self.drain_events();
        loop {
            let ticked = self.wake();
            sent += self.drain_transmits();
            self.drain_events();
            if ticked {
                return sent;
            }
        }
    }
}
