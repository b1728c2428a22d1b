//! Hostile and broken frames: random bytes, truncations, wrong versions, oversized frames.
//! Decoding must return a typed error (or, for random bytes that happen to form a message, a
//! valid message) and must never panic.

#![allow(clippy::unwrap_used)]

use pong_domain::codec::{
    self, ClientFrame, DecodeError, MAX_FRAME_LEN, decode_client, decode_server,
};
use pong_domain::proto::*;
use pong_domain::{Intent, MatchConfig, PlayerId, TickInput};
use proptest::prelude::*;

fn sample_server_frames() -> Vec<Vec<u8>> {
    let config = MatchConfig::new(4, 3, 60, 9).unwrap();
    let name = |s: &str| Name::new(s).unwrap();
    let msgs = [
        ServerMsg::Welcome(Welcome {
            session: SessionId(77),
            token: Token([1; 16]),
            match_id: MatchId(5),
            player: PlayerId::ALL[2],
            side: PlayerId::ALL[2].side(),
            paddle: 4000,
            config,
            resumed: false,
        }),
        ServerMsg::Lobby(Lobby {
            match_id: MatchId(5),
            epoch: Epoch(2),
            room: Some(RoomName::new("friends").unwrap()),
            seats: 4,
            members: vec![Member {
                player: PlayerId::ALL[0],
                name: name("Ada"),
                ready: true,
                connected: true,
            }],
        }),
        ServerMsg::Tick(TickMsg {
            tick: 123_456,
            input: TickInput {
                intents: [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Plus],
                forfeit: 0,
            },
            acks: Acks([2, 3, -1, Acks::NONE]),
            hash: StateHash(0xdead_beef_0123_4567),
        }),
        ServerMsg::Paused(Paused {
            epoch: Epoch(3),
            tick: 9,
            lost: vec![Lost { player: PlayerId::ALL[1], deadline: 1 << 40 }],
        }),
        ServerMsg::MatchOver(MatchOver {
            tick: 9000,
            winner: Some(PlayerId::ALL[3]),
            standings: vec![Standing {
                player: PlayerId::ALL[3],
                name: name("Bob"),
                lives: 2,
                rank: 1,
                out_tick: None,
                reason: None,
            }],
            final_hash: StateHash(42),
        }),
        ServerMsg::Pong { id: 3, client_time: 1 << 50, server_time: 1 << 51 },
    ];
    msgs.iter()
        .map(|m| {
            let mut buf = Vec::new();
            codec::encode_server(m, &mut buf).unwrap();
            buf
        })
        .collect()
}

fn sample_client_frames() -> Vec<Vec<u8>> {
    let token = Token([9; 16]);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let join = OpenMsg::Join(Join {
        name: Name::new("Carol").unwrap(),
        players: Some(3),
        room: Some(RoomName::new("r1").unwrap()),
    });
    codec::encode_open(&join, &mut buf).unwrap();
    out.push(buf.clone());
    for msg in [
        SessionMsg::Ready,
        SessionMsg::Input(InputRun::new(5000, [Intent::Plus; 7])),
        SessionMsg::Ping { id: 1, client_time: 123_456_789 },
        SessionMsg::Leave,
    ] {
        codec::encode_signed(Signed { session: SessionId(4), seq: 300 }, &msg, &token, &mut buf)
            .unwrap();
        out.push(buf.clone());
    }
    out
}

#[test]
fn every_strict_prefix_of_a_server_frame_is_truncated() {
    for frame in sample_server_frames() {
        assert_eq!(decode_server(&frame[..0]), Err(DecodeError::Empty));
        for len in 1..frame.len() {
            assert_eq!(
                decode_server(&frame[..len]),
                Err(DecodeError::Truncated),
                "{len} of {frame:?}"
            );
        }
        assert!(decode_server(&frame).is_ok());
    }
}

#[test]
fn truncated_client_frames_never_pass() {
    let token = Token([9; 16]);
    for frame in sample_client_frames() {
        for len in 0..frame.len() {
            match decode_client(&frame[..len]) {
                Err(_) => {}
                Ok(ClientFrame::Signed(f)) => {
                    assert!(!f.verify(&token), "a truncated frame verified")
                }
                Ok(ClientFrame::Open(m)) => panic!("truncated open frame decoded as {m:?}"),
            }
        }
    }
}

#[test]
fn other_versions_are_refused_by_name() {
    for mut frame in sample_server_frames().into_iter().chain(sample_client_frames()) {
        for v in [0u8, 1, 2, 4, 200, 255] {
            frame[0] = v;
            assert_eq!(decode_server(&frame), Err(DecodeError::UnknownVersion(v)));
            assert_eq!(decode_client(&frame), Err(DecodeError::UnknownVersion(v)));
        }
    }
}

#[test]
fn oversized_frames_are_refused_before_decoding() {
    let mut frame = sample_server_frames().remove(0);
    frame.resize(MAX_FRAME_LEN + 1, 0);
    let err = DecodeError::TooLarge { len: MAX_FRAME_LEN + 1, max: MAX_FRAME_LEN };
    assert_eq!(decode_server(&frame), Err(err.clone()));
    assert_eq!(decode_client(&frame), Err(err));
    let huge = vec![0xffu8; 10 << 20];
    assert!(matches!(decode_client(&huge), Err(DecodeError::TooLarge { .. })));
}

#[test]
fn a_length_prefix_cannot_make_the_decoder_allocate_wildly() {
    // A lobby claiming 2^32 members in a small frame.
    let frame = [PROTOCOL_VERSION, 4, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(decode_server(&frame).is_err());
}

#[test]
fn trailing_bytes_are_refused() {
    for mut frame in sample_server_frames() {
        frame.push(0);
        assert_eq!(decode_server(&frame), Err(DecodeError::TrailingBytes(1)));
    }
    let mut join = sample_client_frames().remove(0);
    join.extend_from_slice(&[1, 2]);
    assert_eq!(decode_client(&join), Err(DecodeError::TrailingBytes(2)));
}

#[test]
fn invalid_fields_are_refused() {
    // A seat number of 7 in a Welcome.
    let mut frame = sample_server_frames().remove(0);
    let seat_at = frame.iter().skip(2).position(|&b| b == 2).unwrap() + 2;
    frame[seat_at] = 7;
    assert!(matches!(
        decode_server(&frame),
        Err(DecodeError::Invalid(_)) | Err(DecodeError::Truncated)
    ));
    // An intent of 3 (unused) in a Tick.
    let tick = &sample_server_frames()[2];
    let mut bad = tick.clone();
    let packed_at = 2 + 3; // version, variant, 3-byte tick varint
    bad[packed_at] = 0b1111_1111;
    assert!(matches!(decode_server(&bad), Err(DecodeError::Invalid(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        let _ = decode_server(&bytes);
        if let Ok(ClientFrame::Signed(f)) = decode_client(&bytes) {
            // Forging a tag by chance is a 1 in 2^64 event.
            prop_assert!(!f.verify(&Token([0; 16])));
        }
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(kind in 0u8..3, bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut frame = vec![PROTOCOL_VERSION, kind];
        frame.extend(bytes);
        let _ = decode_server(&frame);
        let _ = decode_client(&frame);
    }

    #[test]
    fn mutated_valid_frames_never_panic(which in 0usize..6, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let frames = sample_server_frames();
        let mut frame = frames[which % frames.len()].clone();
        let i = at.index(frame.len());
        frame[i] = byte;
        let _ = decode_server(&frame);
        let clients = sample_client_frames();
        let mut c = clients[which % clients.len()].clone();
        let j = at.index(c.len());
        c[j] = byte;
        let _ = decode_client(&c);
    }
}
