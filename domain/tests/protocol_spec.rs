//! The example frames of docs/protocol.md ("Example frames") are what the codec makes, byte
//! for byte, and decode back to their message: the document cannot drift from the code. A
//! failure prints the rows the document should have.

#![allow(clippy::unwrap_used)]

use pong_domain::codec::{
    ClientFrame, decode_client, decode_server, encode_open, encode_server, encode_signed,
};
use pong_domain::proto::{
    Acks, CloseReason, Epoch, InputRun, Join, Keyframe, Lobby, Lost, MatchId, MatchOver, Member,
    Name, OpenMsg, Paused, Reject, RoomName, ServerMsg, SessionId, SessionMsg, Signed, Standing,
    StateHash, TickMsg, Token, Welcome,
};
use pong_domain::rules::{MatchConfig, PlayerId, Rules, Side};
use pong_domain::sim::{Intent, MatchState, OutReason, TickInput};

const TOKEN: Token = Token([
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
]);
const SESSION: SessionId = SessionId(0x0102_0304);

fn p(n: u8) -> PlayerId {
    PlayerId::new(n).unwrap()
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn open(msg: &OpenMsg) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_open(msg, &mut buf).unwrap();
    assert_eq!(decode_client(&buf), Ok(ClientFrame::Open(msg.clone())));
    buf
}

fn signed(seq: u32, msg: &SessionMsg) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_signed(Signed { session: SESSION, seq }, msg, &TOKEN, &mut buf).unwrap();
    let Ok(ClientFrame::Signed(f)) = decode_client(&buf) else { panic!("{msg:?}") };
    assert!(f.verify(&TOKEN));
    assert_eq!((f.header, &f.msg), (Signed { session: SESSION, seq }, msg));
    buf
}

fn server(msg: &ServerMsg) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_server(msg, &mut buf).unwrap();
    assert_eq!(decode_server(&buf).as_ref(), Ok(msg));
    buf
}

fn config() -> MatchConfig {
    MatchConfig { players: 2, lives: 5, tick_hz: 60, seed: 42 }
}

/// Every message kind, as the document shows it.
fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let rules = Rules::new(config());
    let join = |room: Option<&str>| {
        OpenMsg::Join(Join {
            name: name("Ada"),
            players: Some(2),
            room: room.map(|r| RoomName::new(r).unwrap()),
        })
    };
    let run = InputRun::new(
        1000,
        [Intent::Plus, Intent::Plus, Intent::Minus, Intent::Stop, Intent::Plus],
    );
    let standings = vec![
        Standing {
            player: p(0),
            name: name("Ada"),
            lives: 2,
            rank: 1,
            out_tick: None,
            reason: None,
        },
        Standing {
            player: p(1),
            name: name("Bob"),
            lives: 0,
            rank: 2,
            out_tick: Some(4321),
            reason: Some(OutReason::NoLives),
        },
    ];
    vec![
        ("Join Ada, 2 players", open(&join(None))),
        ("Join Ada, 2 players, room friday", open(&join(Some("friday")))),
        ("Resume session 0x01020304", open(&OpenMsg::Resume { session: SESSION })),
        ("seq 7: Ready", signed(7, &SessionMsg::Ready)),
        ("seq 8: Input from tick 1000: + + - 0 +", signed(8, &SessionMsg::Input(run))),
        (
            "seq 9: Ping id 1 at 1000000",
            signed(9, &SessionMsg::Ping { id: 1, client_time: 1_000_000 }),
        ),
        ("seq 10: Resync from tick 1000", signed(10, &SessionMsg::Resync { from_tick: 1000 })),
        (
            "seq 11: Prove 0x0123456789abcdef",
            signed(11, &SessionMsg::Prove { nonce: 0x0123_4567_89ab_cdef }),
        ),
        ("seq 12: Leave", signed(12, &SessionMsg::Leave)),
        (
            "Welcome P1, left, match 1",
            server(&ServerMsg::Welcome(Welcome {
                session: SESSION,
                token: TOKEN,
                match_id: MatchId(1),
                player: p(0),
                side: Side::Left,
                paddle: rules.paddle_start(Side::Left),
                config: config(),
                resumed: false,
            })),
        ),
        (
            "Challenge, next seq 13",
            server(&ServerMsg::Challenge {
                session: SESSION,
                nonce: 0x0123_4567_89ab_cdef,
                next_seq: 13,
            }),
        ),
        ("Rejected RoomFull", server(&ServerMsg::Rejected(Reject::RoomFull))),
        (
            "Pong id 1",
            server(&ServerMsg::Pong { id: 1, client_time: 1_000_000, server_time: 5_000_000 }),
        ),
        (
            "Lobby of match 1: Ada, not ready",
            server(&ServerMsg::Lobby(Lobby {
                match_id: MatchId(1),
                epoch: Epoch(0),
                room: None,
                seats: 2,
                members: vec![Member {
                    player: p(0),
                    name: name("Ada"),
                    ready: false,
                    connected: true,
                }],
            })),
        ),
        (
            "StartAt epoch 1, tick 1",
            server(&ServerMsg::StartAt { epoch: Epoch(1), tick: 1, server_time: 8_000_000 }),
        ),
        (
            "Tick 1000: P1 +, P2 -",
            server(&ServerMsg::Tick(TickMsg {
                tick: 1000,
                input: TickInput {
                    intents: [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Stop],
                    forfeit: 0,
                },
                acks: Acks([0, -1, Acks::NONE, Acks::NONE]),
                hash: StateHash(0x0011_2233_4455_6677),
            })),
        ),
        (
            "Keyframe of a new 2-player match",
            server(&ServerMsg::Keyframe(Keyframe {
                state: MatchState::new(&rules),
                input: TickInput::IDLE,
                acks: Acks([Acks::NONE; 4]),
            })),
        ),
        (
            "Paused at tick 1000, waiting for P2",
            server(&ServerMsg::Paused(Paused {
                epoch: Epoch(3),
                tick: 1000,
                lost: vec![Lost { player: p(1), deadline: 30_000_000 }],
            })),
        ),
        (
            "MatchOver at tick 4321, P1 wins",
            server(&ServerMsg::MatchOver(MatchOver {
                tick: 4321,
                winner: Some(p(0)),
                standings,
                final_hash: StateHash(0x0011_2233_4455_6677),
            })),
        ),
        ("Closed Idle", server(&ServerMsg::Closed(CloseReason::Idle))),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn every_example_frame_in_the_protocol_doc_is_what_the_codec_makes() {
    let doc = include_str!("../../docs/protocol.md");
    let rows: Vec<String> =
        examples().iter().map(|(label, bytes)| format!("| {label} | `{}` |", hex(bytes))).collect();
    let missing: Vec<&String> = rows.iter().filter(|r| !doc.contains(r.as_str())).collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md (Example frames) lacks or differs from these rows:\n{}",
        missing.iter().map(|r| r.as_str()).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_state_hash_example_in_the_protocol_doc_is_what_the_simulation_computes() {
    let doc = include_str!("../../docs/protocol.md");
    let state = MatchState::new(&Rules::new(config()));
    let row = format!("| Keyframe of a new 2-player match | `{:016x}` |", state.hash());
    assert!(doc.contains(&row), "docs/protocol.md (The state hash) lacks or differs from:\n{row}");
}
