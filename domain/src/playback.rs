//! A journaled match played back to a viewer, as a sans-IO state machine: the server's side
//! of the protocol spoken from a match's journal (`pong replay --watch`).
//!
//! The viewer is an ordinary [`crate::client::ClientCore`]. [`PlaybackCore`] seats it,
//! answers its pings, and once it is ready sends the recorded ticks on time (again, or a
//! keyframe, when it asks for missed ones), then the recorded result. The viewer checks
//! every tick's hash on the way, as it does against a live server.
//!
//! [`PlaybackCore`] never reads a clock or touches a socket. Drive it like
//! [`crate::server::ServerCore`], in this order:
//! 1. `handle_frame(now, peer, bytes)`, `handle_peer_gone(now, peer)` as transport events
//!    arrive, and `handle_timeout(now)` when the time from [`PlaybackCore::poll_timeout`]
//!    comes;
//! 2. then drain [`PlaybackCore::poll_transmit`] (frames to send, the viewer's group) and
//!    [`PlaybackCore::poll_event`] (what happened, for logs);
//! 3. then sleep until [`PlaybackCore::poll_timeout`] or the next transport event.
//!
//! `now` is microseconds on the driver's monotonic clock.
//!
//! Physics is per tick, so a speed X is the match announced at `tick_hz × X` (within the
//! allowed tick rates). In a 2- or 3-player match the viewer takes an empty seat and only
//! watches; in a 4-player match every seat is taken and the viewer watches from P1's (its
//! inputs move nothing: the recorded ones rule). Pauses are not replayed: the ticks follow
//! one another. Resends and phase counts follow the server's rules (its resend limit,
//! [`Epoch::next`]), so the viewer sees nothing a live server would not send.

use std::collections::VecDeque;

use crate::codec::{self, ClientFrame, DecodeError};
use crate::journal::{self, JournalError, Record};
use crate::proto::{
    Acks, Epoch, Keyframe, Lobby, MatchId, MatchOver, Member, OpenMsg, Paused, ServerMsg,
    SessionId, SessionMsg, StateHash, TickMsg, Token, Welcome,
};
use crate::route::{Dest, PeerId};
use crate::rules::{MAX_TICK_HZ, MIN_TICK_HZ, MatchConfig, PlayerId, Rules};
use crate::server::{RESEND_MAX, Transmit};
use crate::sim::{MatchState, TickInput};

/// Time from the viewer's Ready to the first tick (µs).
const LEAD_IN: u64 = 1_000_000;
/// The playback's phases, counted as the server counts a match's: the lobby, then the
/// countdown, then (for a match without a result) the pause it ends in.
const LOBBY: Epoch = Epoch::FIRST;
const COUNTDOWN: Epoch = LOBBY.next();
const END: Epoch = COUNTDOWN.next();
/// The viewer's session. Its token is all zeros and its signatures are not checked: the
/// playback holds nothing to protect, and a viewer that comes back takes the usual way
/// (`Resume`, a challenge, `Prove`) without the host having to tell it apart.
const SESSION: SessionId = SessionId(1);
const CHALLENGE_NONCE: u64 = 1;

/// Why a journal cannot be played back.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlaybackError {
    /// The speed is not a positive number.
    #[error("the speed must be a positive number, not {0}")]
    Speed(f64),
    /// The journal does not replay cleanly.
    #[error("the journal cannot be replayed: {0}")]
    Journal(#[from] JournalError),
}

/// Something that happened, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaybackEvent {
    /// The viewer is ready: the recorded ticks play from server time `at`.
    Started {
        /// Server time of the first tick (µs).
        at: u64,
        /// Ticks to play.
        ticks: u32,
    },
    /// A frame that did not decode.
    Malformed {
        /// Who sent it.
        peer: PeerId,
        /// What was wrong with it.
        error: DecodeError,
    },
}

/// What the driver must do next, before encoding.
#[derive(Debug)]
enum Output {
    Msg(PeerId, ServerMsg),
    Join(PeerId, MatchId),
}

/// The host of one playback. See the module docs for how to drive it.
#[derive(Debug)]
pub struct PlaybackCore {
    match_id: MatchId,
    /// The config announced to the viewer (the recorded tick rate scaled by the speed).
    config: MatchConfig,
    rules: Rules,
    /// Every recorded tick's input and hash, tick 1 first.
    ticks: Vec<(TickInput, StateHash)>,
    result: Option<MatchOver>,
    members: Vec<Member>,
    /// The seat the viewer is given.
    seat: PlayerId,
    speed: f64,
    /// Where the viewer is, while it is connected.
    viewer: Option<PeerId>,
    /// Server time of tick 1, once the viewer is ready.
    start: Option<u64>,
    /// Ticks played so far.
    sent: u32,
    /// The state after them.
    state: MatchState,
    last_input: TickInput,
    out: VecDeque<Output>,
    events: VecDeque<PlaybackEvent>,
}

impl PlaybackCore {
    /// Reads a match's journal (it must replay cleanly) for playback at `speed` (1 is real
    /// time).
    ///
    /// # Errors
    /// [`PlaybackError::Speed`] if `speed` is not a positive number;
    /// [`PlaybackError::Journal`] if the journal does not replay.
    pub fn new(
        match_id: MatchId,
        records: &[Record],
        speed: f64,
    ) -> Result<PlaybackCore, PlaybackError> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(PlaybackError::Speed(speed));
        }
        let replay = journal::replay(match_id, records)?;
        let ticks = records
            .iter()
            .filter_map(|r| match r {
                Record::Tick { input, hash, .. } => Some((*input, StateHash(*hash))),
                _ => None,
            })
            .collect();
        let recorded = replay.rules().config;
        let hz = (f64::from(recorded.tick_hz) * speed)
            .round()
            .clamp(f64::from(MIN_TICK_HZ), f64::from(MAX_TICK_HZ)) as u16;
        let config = MatchConfig { tick_hz: hz, ..recorded };
        let members = replay
            .seats()
            .iter()
            .zip(PlayerId::ALL)
            .filter_map(|(s, player)| {
                Some(Member {
                    player,
                    name: s.as_ref()?.name.clone(),
                    ready: true,
                    connected: true,
                })
            })
            .collect();
        let rules = Rules::new(config);
        Ok(PlaybackCore {
            match_id,
            config,
            state: MatchState::new(&rules),
            rules,
            ticks,
            result: replay.result().cloned(),
            members,
            seat: PlayerId::new(recorded.players).unwrap_or(PlayerId::ALL[0]),
            speed: f64::from(hz) / f64::from(recorded.tick_hz),
            viewer: None,
            start: None,
            sent: 0,
            last_input: TickInput::IDLE,
            out: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    // ---- getters ----

    /// The match played back.
    pub fn match_id(&self) -> MatchId {
        self.match_id
    }

    /// The configuration announced to the viewer: the recorded one at the playback's tick
    /// rate.
    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// The speed actually played at (the tick rate is bounded).
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Ticks in the recording.
    pub fn ticks(&self) -> u32 {
        u32::try_from(self.ticks.len()).unwrap_or(u32::MAX)
    }

    /// Ticks played so far.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// True once every recorded tick has been played.
    pub fn is_finished(&self) -> bool {
        self.sent() >= self.ticks()
    }

    // ---- outputs ----

    /// The next thing to do. A frame to send is encoded into `buf` (cleared first).
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        loop {
            match self.out.pop_front()? {
                Output::Msg(to, msg) => {
                    // Every message built here fits a frame; one that does not is dropped
                    // rather than sent broken.
                    if codec::encode_server(&msg, buf).is_ok() {
                        return Some(Transmit::Send(Dest::Peer(to)));
                    }
                }
                Output::Join(p, m) => return Some(Transmit::JoinGroup(p, m)),
            }
        }
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<PlaybackEvent> {
        self.events.pop_front()
    }

    /// When to call [`PlaybackCore::handle_timeout`] next: when the next tick is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        let start = self.start?;
        (!self.is_finished()).then(|| start + self.config.ticks_to_micros(u64::from(self.sent())))
    }

    fn send(&mut self, to: PeerId, msg: ServerMsg) {
        self.out.push_back(Output::Msg(to, msg));
    }

    // ---- inputs ----

    /// A transport reports that a link is gone.
    pub fn handle_peer_gone(&mut self, _now: u64, peer: PeerId) {
        if self.viewer == Some(peer) {
            self.viewer = None;
        }
    }

    /// A frame arrived from `peer`.
    pub fn handle_frame(&mut self, now: u64, peer: PeerId, frame: &[u8]) {
        match codec::decode_client(frame) {
            Ok(ClientFrame::Open(OpenMsg::Join(_))) => self.seat_viewer(peer, false),
            Ok(ClientFrame::Open(OpenMsg::Resume { session })) => {
                self.send(
                    peer,
                    ServerMsg::Challenge { session, nonce: CHALLENGE_NONCE, next_seq: 1 },
                );
            }
            Ok(ClientFrame::Signed(f)) => match f.msg {
                SessionMsg::Prove { .. } => self.seat_viewer(peer, true),
                SessionMsg::Ping { id, client_time } => {
                    self.send(peer, ServerMsg::Pong { id, client_time, server_time: now });
                }
                SessionMsg::Ready if self.start.is_none() => {
                    let at = now + LEAD_IN;
                    self.start = Some(at);
                    self.events.push_back(PlaybackEvent::Started { at, ticks: self.ticks() });
                    self.send(peer, self.start_msg(at));
                }
                SessionMsg::Resync { from_tick } => self.resync(peer, from_tick),
                _ => {}
            },
            Err(error) => self.events.push_back(PlaybackEvent::Malformed { peer, error }),
        }
    }

    /// Plays the ticks that are due by `now`.
    pub fn handle_timeout(&mut self, now: u64) {
        while self.poll_timeout().is_some_and(|t| t <= now) && self.play_tick() {}
    }

    // ---- the rules ----

    /// Seats the viewer at `peer` and tells it where the playback stands.
    fn seat_viewer(&mut self, peer: PeerId, resumed: bool) {
        self.viewer = Some(peer);
        self.out.push_back(Output::Join(peer, self.match_id));
        self.send(peer, self.welcome(resumed));
        self.send(peer, self.phase_msg());
    }

    /// Sends the ticks the viewer missed while the server's limit allows, or else a keyframe
    /// of the last tick played.
    fn resync(&mut self, to: PeerId, from: u32) {
        let newest = self.sent();
        if from >= 1 && from <= newest && newest - from < RESEND_MAX {
            for tick in from..=newest {
                if let Some(t) = self.recorded(tick) {
                    self.send(to, ServerMsg::Tick(t));
                }
            }
        } else if newest > 0 {
            let k = Keyframe {
                state: self.state,
                input: self.last_input,
                acks: Acks::relative_to(self.state.tick, [None; 4]),
            };
            self.send(to, ServerMsg::Keyframe(k));
        }
    }

    /// Steps to the next recorded tick and sends it (and, after the last, the end); false
    /// if there is none.
    fn play_tick(&mut self) -> bool {
        let Some(t) = self.recorded(self.sent + 1) else { return false };
        self.state.step(&self.rules, &t.input);
        self.last_input = t.input;
        self.sent += 1;
        if let Some(v) = self.viewer {
            self.send(v, ServerMsg::Tick(t));
            if self.is_finished() {
                self.send(v, self.end_msg());
            }
        }
        true
    }

    fn welcome(&self, resumed: bool) -> ServerMsg {
        ServerMsg::Welcome(Welcome {
            session: SESSION,
            token: Token([0; 16]),
            match_id: self.match_id,
            player: self.seat,
            side: self.seat.side(),
            paddle: self.rules.paddle_start(self.seat.side()),
            config: self.config,
            resumed,
        })
    }

    /// Where the playback stands, for a viewer that (re)joins.
    fn phase_msg(&self) -> ServerMsg {
        match self.start {
            None => self.lobby(),
            Some(at) if !self.is_finished() => self.start_msg(at),
            Some(_) => self.end_msg(),
        }
    }

    fn lobby(&self) -> ServerMsg {
        ServerMsg::Lobby(Lobby {
            match_id: self.match_id,
            epoch: LOBBY,
            room: None,
            seats: self.config.players,
            // The viewer's own seat (P1's in a 4-player match) is shown not ready: a client
            // says Ready only while the lobby says it has not.
            members: self
                .members
                .iter()
                .map(|m| Member { ready: m.player != self.seat, ..m.clone() })
                .collect(),
        })
    }

    fn start_msg(&self, at: u64) -> ServerMsg {
        ServerMsg::StartAt { epoch: COUNTDOWN, tick: 1, server_time: at }
    }

    fn end_msg(&self) -> ServerMsg {
        match &self.result {
            Some(r) => ServerMsg::MatchOver(r.clone()),
            None => {
                ServerMsg::Paused(Paused { epoch: END, tick: self.state.tick, lost: Vec::new() })
            }
        }
    }

    /// Recorded tick `tick` (1 is the first) as the server sent it.
    fn recorded(&self, tick: u32) -> Option<TickMsg> {
        let &(input, hash) = self.ticks.get(usize::try_from(tick.checked_sub(1)?).ok()?)?;
        Some(TickMsg { tick, input, acks: Acks::relative_to(tick, [None; 4]), hash })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use super::*;
    use crate::bot::Bot;
    use crate::client::{ClientConfig, ClientCore, ClientPhase, TransportRequest};
    use crate::proto::Name;
    use crate::standings::{note_placings, result_of};

    const MS: u64 = 1_000;
    const SECOND: u64 = 1_000_000;

    /// A finished match's journal, as a server records it: bots in every seat play it out.
    fn recorded_match(players: u8, seed: u64) -> Vec<Record> {
        let config = MatchConfig::new(players, 1, 60, seed).unwrap();
        let rules = Rules::new(config);
        let names: Vec<Name> =
            PlayerId::ALL.iter().map(|p| Name::new(&format!("bot{}", p.get())).unwrap()).collect();
        let mut records = vec![Record::Created { config, room: None }];
        for p in config.seats() {
            records.push(Record::Joined {
                player: p,
                name: names[p.index()].clone(),
                session: SessionId(u32::from(p.get()) + 1),
                token: Token([p.get(); 16]),
            });
        }
        records.push(Record::CountdownStarted);
        records.push(Record::Started);
        let mut bots: Vec<Bot> =
            config.seats().map(|p| Bot::new(p, 900, seed ^ u64::from(p.get()))).collect();
        let mut state = MatchState::new(&rules);
        let mut placings = [None; 4];
        while !state.is_over() {
            assert!(state.tick < 100_000, "the match does not end");
            let mut input = TickInput::IDLE;
            for b in &mut bots {
                input.intents[b.player().index()] = b.decide(&rules, &state);
            }
            let lives = state.lives;
            let events = state.step(&rules, &input);
            note_placings(&mut placings, lives, &events, state.tick);
            records.push(Record::Tick { tick: state.tick, input, hash: state.hash() });
        }
        let seats = config.seats().map(|p| (p, &names[p.index()]));
        records.push(Record::Over { result: result_of(&state, &placings, seats) });
        journal::verify(MatchId(1), &records).unwrap();
        records
    }

    fn recorded_result(records: &[Record]) -> MatchOver {
        journal::verify(MatchId(1), records).unwrap().result
    }

    /// A viewer (a [`ClientCore`]) and a [`PlaybackCore`] over a link of fixed latency on a
    /// virtual clock: the session tests' `SimNet` (tests/support) for a playback host. `step`
    /// jumps to the next wake-up of either core or the next frame's arrival.
    struct Pair {
        now: u64,
        host: PlaybackCore,
        viewer: ClientCore,
        peer: PeerId,
        latency: u64,
        to_host: VecDeque<(u64, Vec<u8>)>,
        to_viewer: VecDeque<(u64, Vec<u8>)>,
        /// Frames to the viewer that the link loses.
        lose: Box<dyn FnMut(&ServerMsg) -> bool>,
        /// What reached the viewer, in order.
        delivered: Vec<ServerMsg>,
        /// The resyncs that reached the host (their first tick).
        resyncs: Vec<u32>,
        host_events: Vec<PlaybackEvent>,
    }

    impl Pair {
        fn new(host: PlaybackCore) -> Pair {
            let mut config = ClientConfig::new(Name::new("viewer").unwrap());
            config.players = Some(host.config().players);
            let mut pair = Pair {
                now: 1_000 * SECOND,
                host,
                viewer: ClientCore::new(config),
                peer: PeerId(1),
                latency: 5 * MS,
                to_host: VecDeque::new(),
                to_viewer: VecDeque::new(),
                lose: Box::new(|_| false),
                delivered: Vec::new(),
                resyncs: Vec::new(),
                host_events: Vec::new(),
            };
            pair.viewer.handle_connected(pair.now);
            pair.flush();
            pair
        }

        /// Moves the clock to the next thing that happens and lets it happen; false if
        /// nothing ever will.
        fn step(&mut self) -> bool {
            let next = [
                self.to_host.front().map(|f| f.0),
                self.to_viewer.front().map(|f| f.0),
                self.host.poll_timeout(),
                self.viewer.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return false };
            self.now = self.now.max(next);
            let now = self.now;
            while let Some((_, frame)) = self.to_host.pop_front_if(|f| f.0 <= now) {
                if let Ok(ClientFrame::Signed(f)) = codec::decode_client(&frame)
                    && let SessionMsg::Resync { from_tick } = f.msg
                {
                    self.resyncs.push(from_tick);
                }
                self.host.handle_frame(now, self.peer, &frame);
            }
            while let Some((_, frame)) = self.to_viewer.pop_front_if(|f| f.0 <= now) {
                self.delivered.push(codec::decode_server(&frame).unwrap());
                self.viewer.handle_frame(now, &frame);
            }
            if self.host.poll_timeout().is_some_and(|t| t <= now) {
                self.host.handle_timeout(now);
            }
            if self.viewer.poll_timeout().is_some_and(|t| t <= now) {
                self.viewer.handle_timeout(now);
            }
            self.flush();
            true
        }

        /// Drains both cores into the link until both are quiet.
        fn flush(&mut self) {
            let mut buf = Vec::new();
            loop {
                let mut moved = false;
                while let Some(t) = self.host.poll_transmit(&mut buf) {
                    moved = true;
                    match t {
                        Transmit::Send(Dest::Peer(p)) if p == self.peer => {
                            let msg = codec::decode_server(&buf).unwrap();
                            if !(self.lose)(&msg) {
                                self.to_viewer.push_back((self.now + self.latency, buf.clone()));
                            }
                        }
                        Transmit::JoinGroup(p, m) => {
                            assert_eq!((p, m), (self.peer, self.host.match_id()));
                        }
                        other => panic!("a playback host does not {other:?}"),
                    }
                }
                while let Some(frame) = self.viewer.poll_transmit() {
                    moved = true;
                    self.to_host.push_back((self.now + self.latency, frame));
                }
                while let Some(cmd) = self.viewer.poll_transport_request() {
                    moved = true;
                    match cmd {
                        TransportRequest::Subscribe(g) => {
                            self.viewer.handle_subscribed(self.now, g)
                        }
                        TransportRequest::Reconnect => self.reconnect(),
                    }
                }
                self.host_events.extend(std::iter::from_fn(|| self.host.poll_event()));
                while self.viewer.poll_event().is_some() {}
                if !moved {
                    break;
                }
            }
        }

        /// The viewer's link drops: frames in flight are lost, both ends learn it as a
        /// transport would tell them, and the viewer asks for a new link.
        fn drop_link(&mut self) {
            self.to_host.clear();
            self.to_viewer.clear();
            self.host.handle_peer_gone(self.now, self.peer);
            self.viewer.handle_disconnected(self.now);
            self.flush();
        }

        /// A new link comes up at once, as a new peer.
        fn reconnect(&mut self) {
            self.peer = PeerId(self.peer.0 + 1);
            self.viewer.handle_connected(self.now);
        }

        /// Runs until the viewer is done or `until` (virtual time) passes.
        fn drive(&mut self, until: u64) {
            while self.now < until && !self.viewer.is_finished() && self.step() {}
        }

        /// Runs until the host has played `tick`.
        fn drive_to_tick(&mut self, tick: u32) {
            while self.host.sent() < tick {
                assert!(self.step(), "the playback stalled at tick {}", self.host.sent());
            }
        }

        /// The viewer saw the recorded match to its result, with no desync.
        fn assert_over(&self, records: &[Record]) {
            let recorded = recorded_result(records);
            let ClientPhase::Over { result, final_hash } = self.viewer.phase() else {
                panic!("the viewer is in {:?}", self.viewer.phase())
            };
            assert_eq!(*result, recorded);
            assert_eq!(*final_hash, recorded.final_hash.0);
            assert_eq!(self.viewer.desyncs(), 0);
            assert!(self.host.is_finished());
        }
    }

    /// Loses the first copy of each tick in `ticks`.
    fn lose_once(ticks: std::ops::RangeInclusive<u32>) -> Box<dyn FnMut(&ServerMsg) -> bool> {
        let mut lost = BTreeSet::new();
        Box::new(move |m| match m {
            ServerMsg::Tick(t) if ticks.contains(&t.tick) => lost.insert(t.tick),
            _ => false,
        })
    }

    fn ticks_of(records: &[Record]) -> u32 {
        records.iter().filter(|r| matches!(r, Record::Tick { .. })).count() as u32
    }

    #[test]
    fn a_viewer_sees_the_recording_to_its_result() {
        for (players, speed) in [(2, 1.0), (3, 2.0), (4, 0.5)] {
            let records = recorded_match(players, 7);
            let host = PlaybackCore::new(MatchId(1), &records, speed).unwrap();
            assert_eq!(host.speed(), speed);
            let mut pair = Pair::new(host);
            pair.drive(pair.now + 600 * SECOND);
            pair.assert_over(&records);
            assert!(pair.resyncs.is_empty(), "{:?}", pair.resyncs);
            let started = pair.host_events.iter().any(
                |e| matches!(e, PlaybackEvent::Started { ticks, .. } if *ticks == ticks_of(&records)),
            );
            assert!(started, "{:?}", pair.host_events);
        }
    }

    #[test]
    fn ticks_a_viewer_missed_are_sent_again() {
        let records = recorded_match(2, 11);
        assert!(ticks_of(&records) > 100);
        let mut pair = Pair::new(PlaybackCore::new(MatchId(1), &records, 1.0).unwrap());
        pair.lose = lose_once(40..=45);
        pair.drive(pair.now + 600 * SECOND);
        pair.assert_over(&records);
        assert_eq!(pair.resyncs.first(), Some(&40));
        let again =
            pair.delivered.iter().filter(|m| matches!(m, ServerMsg::Tick(t) if t.tick == 40));
        assert_eq!(again.count(), 1);
        assert!(!pair.delivered.iter().any(|m| matches!(m, ServerMsg::Keyframe(_))));
    }

    #[test]
    fn a_viewer_further_behind_than_the_resend_limit_gets_a_keyframe() {
        let records = recorded_match(2, 11);
        let lost = 40..=40 + RESEND_MAX + 10;
        assert!(ticks_of(&records) > *lost.end() + 60);
        let mut pair = Pair::new(PlaybackCore::new(MatchId(1), &records, 1.0).unwrap());
        pair.lose = lose_once(lost.clone());
        pair.drive(pair.now + 600 * SECOND);
        pair.assert_over(&records);
        assert_eq!(pair.resyncs.first(), Some(&40));
        let keyframe = pair.delivered.iter().find_map(|m| match m {
            ServerMsg::Keyframe(k) => Some(k.state.tick),
            _ => None,
        });
        assert!(keyframe.is_some_and(|t| t > *lost.end()), "{keyframe:?}");
        // Nothing lost was sent again: the keyframe stood for all of it.
        assert!(
            !pair
                .delivered
                .iter()
                .any(|m| matches!(m, ServerMsg::Tick(t) if lost.contains(&t.tick)))
        );
    }

    #[test]
    fn a_viewer_that_comes_back_resumes_where_the_playback_stands() {
        let records = recorded_match(2, 11);
        let mut pair = Pair::new(PlaybackCore::new(MatchId(1), &records, 1.0).unwrap());
        pair.drive_to_tick(50);
        pair.drop_link();
        pair.drive(pair.now + 600 * SECOND);
        pair.assert_over(&records);
        let resumed =
            pair.delivered.iter().any(|m| matches!(m, ServerMsg::Welcome(w) if w.resumed));
        assert!(resumed);
    }

    #[test]
    fn phases_are_counted_as_the_server_counts_them() {
        let records = recorded_match(2, 11);
        let mut pair = Pair::new(PlaybackCore::new(MatchId(1), &records, 1.0).unwrap());
        pair.drive(pair.now + 600 * SECOND);
        let lobby = pair.delivered.iter().find_map(|m| match m {
            ServerMsg::Lobby(l) => Some(l.epoch),
            _ => None,
        });
        let start = pair.delivered.iter().find_map(|m| match m {
            ServerMsg::StartAt { epoch, tick, .. } => Some((*epoch, *tick)),
            _ => None,
        });
        assert_eq!(lobby, Some(Epoch::FIRST));
        assert_eq!(start, Some((Epoch::FIRST.next(), 1)));
    }

    #[test]
    fn the_speed_scales_the_tick_rate_within_bounds() {
        let config = MatchConfig::new(2, 1, 60, 1).unwrap();
        let records = [Record::Created { config, room: None }];
        let at = |speed| PlaybackCore::new(MatchId(1), &records, speed);
        assert_eq!(at(0.5).unwrap().config().tick_hz, 30);
        assert_eq!(at(100.0).unwrap().config().tick_hz, MAX_TICK_HZ);
        assert_eq!(at(100.0).unwrap().speed(), f64::from(MAX_TICK_HZ) / 60.0);
        assert_eq!(at(0.0).unwrap_err(), PlaybackError::Speed(0.0));
        assert!(matches!(at(f64::NAN), Err(PlaybackError::Speed(_))));
        assert_eq!(
            PlaybackCore::new(MatchId(1), &[], 1.0).unwrap_err(),
            PlaybackError::Journal(JournalError::Empty)
        );
    }
}
