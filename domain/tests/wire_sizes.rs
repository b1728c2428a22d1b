//! The wire budget: what the hot messages cost on the wire, checked against the targets
//! (≤ 40 bytes per 4-player tick broadcast, ≤ 24 bytes per input message) for realistic
//! values: a tick number an hour into a match, sequence numbers in the millions.

#![allow(clippy::unwrap_used)]

use pong_domain::codec::{encode_server, encode_signed};
use pong_domain::proto::*;
use pong_domain::{Intent, MatchConfig, MatchState, Rules, TickInput};

fn tick_frame(tick: u32) -> Vec<u8> {
    let msg = ServerMsg::Tick(TickMsg {
        tick,
        input: TickInput {
            intents: [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Plus],
            forfeit: 0,
        },
        acks: Acks([3, 2, 4, 3]),
        hash: StateHash(0x0123_4567_89ab_cdef),
    });
    let mut buf = Vec::new();
    encode_server(&msg, &mut buf).unwrap();
    buf
}

fn input_frame(seq: u32, first_tick: u32, unacked: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let run = InputRun::new(first_tick, std::iter::repeat_n(Intent::Plus, unacked));
    encode_signed(
        Signed { session: SessionId(1234), seq },
        &SessionMsg::Input(run),
        &Token([7; 16]),
        &mut buf,
    )
    .unwrap();
    buf
}

#[test]
fn a_tick_broadcast_fits_in_20_bytes() {
    // An hour in at 60 Hz: tick 216,000 (a 3-byte varint).
    let len = tick_frame(216_000).len();
    eprintln!("tick frame: {len} bytes; early in a match: {}", tick_frame(100).len());
    assert!(len <= 20, "{len} bytes");
    assert!(len <= 40, "the budget is 40 bytes");
}

#[test]
fn an_input_message_fits_in_24_bytes() {
    // An hour in: seq and tick both in the millions range of 3-byte varints; 8 unacked
    // inputs (a 130 ms round trip at 60 Hz).
    let len = input_frame(250_000, 216_000, 8);
    eprintln!(
        "input frame: {} bytes; 2 unacked early on: {}",
        len.len(),
        input_frame(10, 100, 2).len()
    );
    assert!(len.len() <= 24, "{} bytes", len.len());
}

#[test]
fn a_client_receives_under_3_kb_per_second_at_60_hz() {
    // Downstream per client: one tick broadcast per tick, a pong per second.
    let per_second = tick_frame(216_000).len() * 60 + 30;
    assert!(per_second <= 3_000, "{per_second} B/s");
}

#[test]
fn a_keyframe_is_small() {
    let rules = Rules::new(MatchConfig::new(4, 5, 60, 1).unwrap());
    let k = ServerMsg::Keyframe(Keyframe {
        state: MatchState::new(&rules),
        input: TickInput::IDLE,
        acks: Acks::default(),
    });
    let mut buf = Vec::new();
    encode_server(&k, &mut buf).unwrap();
    eprintln!("keyframe: {} bytes", buf.len());
    assert!(buf.len() <= 64, "{} bytes", buf.len());
    // Mid-match: the ball in flight, paddles anywhere, an hour in.
    let mut state = MatchState::new(&rules);
    state.tick = 216_000;
    state.ball = pong_domain::Ball::Moving { x: 5_123, y: 6_456, vx: -150, vy: 97, hits: 7 };
    state.paddles = [5_000, 6_000, 7_000, 8_000];
    let k = ServerMsg::Keyframe(Keyframe { state, input: TickInput::IDLE, acks: Acks([3; 4]) });
    encode_server(&k, &mut buf).unwrap();
    eprintln!("keyframe mid-match: {} bytes", buf.len());
    assert!(buf.len() <= 64, "{} bytes", buf.len());
}

#[test]
fn the_largest_messages_stay_far_below_the_frame_limit() {
    // Four members with 20-character names of 4-byte characters, the longest room name.
    let name = Name::new(&"🏓".repeat(Name::MAX_CHARS)).unwrap();
    let room = RoomName::new(&"r".repeat(RoomName::MAX_CHARS)).unwrap();
    let seats = pong_domain::PlayerId::ALL;
    let lobby = ServerMsg::Lobby(Lobby {
        match_id: MatchId(u32::MAX),
        epoch: Epoch(u32::MAX),
        room: Some(room),
        seats: 4,
        members: seats
            .iter()
            .map(|&player| Member { player, name: name.clone(), ready: true, connected: true })
            .collect(),
    });
    let over = ServerMsg::MatchOver(MatchOver {
        tick: u32::MAX,
        winner: Some(seats[0]),
        standings: seats
            .iter()
            .map(|&player| Standing {
                player,
                name: name.clone(),
                lives: 15,
                rank: 4,
                out_tick: Some(u32::MAX),
                reason: Some(pong_domain::OutReason::Forfeit),
            })
            .collect(),
        final_hash: StateHash(u64::MAX),
    });
    for msg in [lobby, over] {
        let mut buf = Vec::new();
        encode_server(&msg, &mut buf).unwrap();
        eprintln!("largest: {} bytes", buf.len());
        assert!(buf.len() < 400, "{} bytes", buf.len());
    }
}
