//! Frames a test sends a [`ServerCore`] by hand, and what it answers, decoded: for tests
//! that drive the server directly, without clients.

use crate::codec::{decode_server, encode_open, encode_signed};
use crate::journal::Record;
use crate::proto::{
    Join, MatchId, Name, OpenMsg, RoomName, ServerMsg, SessionMsg, Signed, Welcome,
};
use crate::route::PeerId;
use crate::server::{ServerCore, ServerEvent, Transmit};

/// A `Join` of player `name`, for a match of `players` (the server's default if `None`).
///
/// # Panics
/// If `name` is not a valid player name.
pub fn join_frame(name: &str, players: Option<u8>) -> Vec<u8> {
    let join = Join { name: Name::new(name).expect("a valid player name"), players, room: None };
    let mut buf = Vec::new();
    encode_open(&OpenMsg::Join(join), &mut buf).expect("a Join encodes");
    buf
}

/// A `Join` of player `name` for room `room` (a match of 2 if it opens the room).
///
/// # Panics
/// If `name` or `room` is not valid.
pub fn room_join_frame(name: &str, room: &str) -> Vec<u8> {
    let join = Join {
        name: Name::new(name).expect("a valid player name"),
        players: Some(2),
        room: Some(RoomName::new(room).expect("a valid room name")),
    };
    let mut buf = Vec::new();
    encode_open(&OpenMsg::Join(join), &mut buf).expect("a Join encodes");
    buf
}

/// Everything the core has to transmit, each frame it sends decoded.
///
/// # Panics
/// If the core sends a frame that does not decode.
pub fn drain(core: &mut ServerCore) -> Vec<(Transmit, Option<ServerMsg>)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(t) = core.poll_transmit(&mut buf) {
        let msg = matches!(t, Transmit::Send(_))
            .then(|| decode_server(&buf).expect("the server's frames decode"));
        out.push((t, msg));
    }
    out
}

/// The `Welcome` among `out` (as [`drain`] returns it).
///
/// # Panics
/// If there is none.
pub fn welcome_of(out: &[(Transmit, Option<ServerMsg>)]) -> Welcome {
    out.iter()
        .find_map(|(_, m)| match m {
            Some(ServerMsg::Welcome(w)) => Some(w.clone()),
            _ => None,
        })
        .expect("a Welcome")
}

/// `msg` signed for the session of `w`, with sequence number `seq`.
///
/// # Panics
/// If the message does not encode.
pub fn signed(w: &Welcome, seq: u32, msg: SessionMsg) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_signed(Signed { session: w.session, seq }, &msg, &w.token, &mut buf)
        .expect("a session message encodes");
    buf
}

/// Takes the session of `w` back on link `peer`: sends `Resume`, answers the challenge with
/// a `Prove` numbered `seq`, and returns what the core sent after that.
///
/// # Panics
/// If the core does not answer the `Resume` with a challenge.
pub fn resume(
    core: &mut ServerCore,
    now: u64,
    peer: PeerId,
    w: &Welcome,
    seq: u32,
) -> Vec<(Transmit, Option<ServerMsg>)> {
    let mut buf = Vec::new();
    encode_open(&OpenMsg::Resume { session: w.session }, &mut buf).expect("a Resume encodes");
    core.handle_frame(now, peer, &buf);
    let nonce = drain(core)
        .iter()
        .find_map(|(_, m)| match m {
            Some(ServerMsg::Challenge { nonce, .. }) => Some(*nonce),
            _ => None,
        })
        .expect("a Challenge");
    core.handle_frame(now, peer, &signed(w, seq, SessionMsg::Prove { nonce }));
    drain(core)
}

/// The journal records of match `mid` among the events the core has to report (all of
/// which it takes).
pub fn take_records(core: &mut ServerCore, mid: MatchId) -> Vec<Record> {
    let mut records = Vec::new();
    while let Some(e) = core.poll_event() {
        if let ServerEvent::Match { match_id, record } = e
            && match_id == mid
        {
            records.push(record);
        }
    }
    records
}
