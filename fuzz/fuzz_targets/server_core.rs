//! The server under attack: two honest players play a match, sending a signed input every
//! tick, while attackers on links of their own send anything the fuzzer makes — raw bytes,
//! `Resume` for the players' (public) session ids, frames signed with a wrong token,
//! replays of the players' captured frames, link events — between the clock's steps.
//!
//! Invariants: nothing panics; the honest match never pauses, loses a member or is told
//! anything but the game (no `Rejected`, no `Closed`); it keeps ticking (one tick per grid
//! tick until it is over); every match's state stays valid. That is "no unauthenticated
//! frame changes any match", checked on the match an attacker would want to change.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pong_domain::codec::{decode_server, encode_open, encode_signed};
use pong_domain::proto::{InputRun, OpenMsg, ServerMsg, SessionMsg, Signed, Token, Welcome};
use pong_domain::route::{Dest, Origin, PeerId};
use pong_domain::server::{ServerConfig, ServerCore, Transmit};
use pong_domain::sim::Intent;
use pong_domain::testing::join_frame;

const TICK: u64 = 1_000_000 / 60;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Any bytes from an attacker's link.
    Raw { link: u8, bytes: Vec<u8> },
    /// `Resume` for a player's session id (ids are not secret).
    Resume { link: u8, player: bool },
    /// A message for a player's session, signed with a token the attacker guessed.
    Forged { link: u8, player: bool, seq: u32, token: [u8; 16], msg: Msg },
    /// One of the players' frames captured earlier, replayed from an attacker's link.
    Replay { link: u8, index: u16 },
    /// An attacker's link opens, from one of a few addresses.
    Opened { link: u8, address: u8 },
    /// An attacker's link goes.
    Gone { link: u8 },
    /// Time passes: this many ticks' worth, the players sending their inputs.
    Ticks { n: u8 },
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Ready,
    Input { first_tick: u32, intents: Vec<bool> },
    Ping { id: u32 },
    Resync { from_tick: u32 },
    Prove { nonce: u64 },
    Leave,
}

impl Msg {
    fn session_msg(&self) -> SessionMsg {
        match self {
            Msg::Ready => SessionMsg::Ready,
            Msg::Input { first_tick, intents } => SessionMsg::Input(InputRun::new(
                *first_tick,
                intents.iter().map(|&up| if up { Intent::Plus } else { Intent::Minus }),
            )),
            Msg::Ping { id } => SessionMsg::Ping { id: *id, client_time: 0 },
            Msg::Resync { from_tick } => SessionMsg::Resync { from_tick: *from_tick },
            Msg::Prove { nonce } => SessionMsg::Prove { nonce: *nonce },
            Msg::Leave => SessionMsg::Leave,
        }
    }
}

struct Player {
    peer: PeerId,
    welcome: Welcome,
    seq: u32,
}

struct Run {
    core: ServerCore,
    now: u64,
    players: Vec<Player>,
    /// Every frame the players sent, as a tap on their links would see it.
    captured: Vec<Vec<u8>>,
    buf: Vec<u8>,
    /// The honest match is over: what follows (its close, idle links closed) is its end,
    /// not an attack.
    over: bool,
}

impl Run {
    /// Carries out what the core asks, checking what reaches the players.
    fn flush(&mut self) {
        while let Some(t) = self.core.poll_transmit(&mut self.buf) {
            let to_player = |peer: PeerId| self.players.iter().any(|p| p.peer == peer);
            if let Transmit::Send(Dest::Group(_)) = t
                && let Ok(ServerMsg::MatchOver(_)) = decode_server(&self.buf)
            {
                self.over = true;
            }
            if self.over {
                continue;
            }
            match t {
                Transmit::Send(Dest::Peer(p)) if to_player(p) => {
                    let msg = decode_server(&self.buf).expect("the server's frames decode");
                    assert!(
                        !matches!(
                            msg,
                            ServerMsg::Rejected(_) | ServerMsg::Closed(_) | ServerMsg::Paused(_)
                        ),
                        "an honest player was told {msg:?}"
                    );
                }
                Transmit::Disconnect(p) | Transmit::LeaveGroup(p, _) => {
                    assert!(!to_player(p), "an honest player's link was closed or moved: {t:?}");
                }
                _ => {}
            }
        }
        while self.core.poll_event().is_some() {}
    }

    fn player_sends(&mut self, i: usize, msg: &SessionMsg) {
        let p = &mut self.players[i];
        p.seq += 1;
        let mut frame = Vec::new();
        let signed = Signed { session: p.welcome.session, seq: p.seq };
        encode_signed(signed, msg, &p.welcome.token, &mut frame).expect("encodes");
        let peer = p.peer;
        self.core.handle_frame(self.now, peer, &frame);
        self.captured.push(frame);
        self.flush();
    }

    fn attacker(link: u8) -> PeerId {
        PeerId(100 + u64::from(link))
    }
}

fn start() -> Option<Run> {
    let mut run = Run {
        core: ServerCore::new(ServerConfig::default(), [7; 32]),
        now: 0,
        players: Vec::new(),
        captured: Vec::new(),
        buf: Vec::new(),
        over: false,
    };
    for (peer, name) in [(PeerId(1), "Ada"), (PeerId(2), "Bob")] {
        run.core.handle_peer_opened(0, peer, Origin::Link);
        run.core.handle_frame(0, peer, &join_frame(name, Some(2)));
        let mut welcome = None;
        while let Some(t) = run.core.poll_transmit(&mut run.buf) {
            if let (Transmit::Send(_), Ok(ServerMsg::Welcome(w))) = (t, decode_server(&run.buf)) {
                welcome = Some(w);
            }
        }
        run.players.push(Player { peer, welcome: welcome?, seq: 0 });
    }
    run.player_sends(0, &SessionMsg::Ready);
    run.player_sends(1, &SessionMsg::Ready);
    Some(run)
}

fuzz_target!(|ops: Vec<Op>| {
    let Some(mut run) = start() else { panic!("two joins seat two players") };
    let mid = run.players[0].welcome.match_id;
    // The countdown: the match starts on the first grid tick after it.
    let mut started_at = None;
    for op in ops.iter().take(512) {
        match op {
            Op::Raw { link, bytes } => {
                run.core.handle_frame(run.now, Run::attacker(*link), bytes);
            }
            Op::Resume { link, player } => {
                let session = run.players[usize::from(*player)].welcome.session;
                let mut frame = Vec::new();
                encode_open(&OpenMsg::Resume { session }, &mut frame).expect("encodes");
                run.core.handle_frame(run.now, Run::attacker(*link), &frame);
            }
            Op::Forged { link, player, seq, token, msg } => {
                let real = &run.players[usize::from(*player)].welcome;
                if *token == real.token.0 {
                    continue;
                }
                let mut frame = Vec::new();
                let signed = Signed { session: real.session, seq: *seq };
                if encode_signed(signed, &msg.session_msg(), &Token(*token), &mut frame).is_ok() {
                    run.core.handle_frame(run.now, Run::attacker(*link), &frame);
                }
            }
            Op::Replay { link, index } => {
                if !run.captured.is_empty() {
                    let frame = run.captured[usize::from(*index) % run.captured.len()].clone();
                    run.core.handle_frame(run.now, Run::attacker(*link), &frame);
                }
            }
            Op::Opened { link, address } => {
                let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, address % 4));
                run.core.handle_peer_opened(run.now, Run::attacker(*link), Origin::Ip(ip));
            }
            Op::Gone { link } => run.core.handle_peer_gone(run.now, Run::attacker(*link)),
            Op::Ticks { n } => {
                for _ in 0..(n % 32) {
                    run.now += TICK;
                    if let Some(state) = run.core.match_state(mid).filter(|_| !run.over) {
                        let next = state.tick + 1;
                        for i in 0..2 {
                            let intent = if next % 40 < 20 { Intent::Plus } else { Intent::Minus };
                            run.player_sends(i, &SessionMsg::Input(InputRun::new(next, [intent])));
                        }
                    }
                    run.core.handle_timeout(run.now);
                    if started_at.is_none() && run.core.match_state(mid).is_some_and(|s| s.tick > 0)
                    {
                        started_at = Some(run.now);
                    }
                }
            }
        }
        run.flush();
    }
    assert_eq!(run.core.stats().pauses, 0, "the honest match paused");
    assert_eq!(run.core.stats().forfeits, 0, "an honest player forfeited");
    for id in run.core.match_ids().collect::<Vec<_>>() {
        let state = run.core.match_state(id).expect("listed");
        if let Some(rules) = run.core.match_rules(id) {
            state.validate(rules).expect("every match's state stays valid");
        }
    }
    // It keeps ticking: once started, one tick per grid tick until it is over.
    if let (Some(at), Some(state)) = (started_at, run.core.match_state(mid)) {
        let grid_ticks = (run.now - at) / TICK;
        let over = run
            .core
            .overview()
            .iter()
            .any(|m| m.id == mid && m.phase == pong_domain::server::MatchPhase::Over);
        assert!(
            over || u64::from(state.tick) + 2 >= grid_ticks,
            "the match fell behind: tick {} after {grid_ticks} grid ticks",
            state.tick
        );
    }
});
