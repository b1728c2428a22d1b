//! Issue 19 end to end, with the real binary: while four `pong bot` processes play a
//! match, a hostile client on the same host runs four attacks at once against the same
//! `pong server`:
//! 1. it opens room after room, each on a link of its own (to fill the server with lobbies);
//! 2. it replays a session's captured frames on a fresh link and repeats a `Join` there (to
//!    take the seat and get its token);
//! 3. in a match of its own it drops out, comes back (Resume, Prove) and never says Ready
//!    (to hold the match paused for ever);
//! 4. it opens links that never send anything (to take every connection slot).
//!
//! Each attack fails in the way docs/protocol.md (Trust, Bounds) says, and the bots' match
//! plays to its end with no pause, no desync and no resume, in agreement with the server.
//! The replayed frames are the hostile client's own (it cannot read the bots' traffic over
//! loopback); the same attack on another player's captured frames runs in
//! `tests/tests/abuse.rs`.
#![cfg(feature = "websocket")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{assert_agree, assert_undisturbed, four_bots, free_port, num, reports, server};
use futures_util::{SinkExt, StreamExt};
use pong_domain::codec::{decode_server, encode_open, encode_signed};
use pong_domain::proto::{
    CloseReason, Join, Name, OpenMsg, Reject, RoomName, ServerMsg, SessionMsg, Signed, Welcome,
};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The server's bounds, made short so the test is: a link must take a seat within 3 s, a
/// lost member come back (or a member back say Ready) within 3 s.
const BOUNDS: &[&str] = &["--join-timeout-secs", "3", "--grace-secs", "3"];
/// Rules under which the bots' match lasts well beyond the attacks (about 10 s).
const SLOW_RULES: &[&str] = &["--tick-hz", "150", "--lives", "2", "--countdown-ms", "500"];

type Ws = WebSocketStream<TcpStream>;

async fn open(addr: &str) -> Ws {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp).await.unwrap();
    ws
}

async fn send(ws: &mut Ws, frame: &[u8]) {
    // A link the server closed refuses sends: the attacker does not care.
    let _ = ws.send(Message::binary(frame.to_vec())).await;
}

/// The messages that arrive within `wait`, and whether the link was closed (true).
async fn drain(ws: &mut Ws, wait: Duration) -> (Vec<ServerMsg>, bool) {
    let mut got = Vec::new();
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return (got, false),
            Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => return (got, true),
            Ok(Some(Ok(Message::Binary(b)))) => got.extend(decode_server(&b).ok()),
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn join(name: &str, room: Option<&str>, players: u8) -> Vec<u8> {
    let join = Join {
        name: Name::new(name).unwrap(),
        players: Some(players),
        room: room.map(|r| RoomName::new(r).unwrap()),
    };
    let mut buf = Vec::new();
    encode_open(&OpenMsg::Join(join), &mut buf).unwrap();
    buf
}

fn signed(w: &Welcome, seq: u32, msg: &SessionMsg) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_signed(Signed { session: w.session, seq }, msg, &w.token, &mut buf).unwrap();
    buf
}

fn welcome_in(msgs: &[ServerMsg]) -> Option<Welcome> {
    msgs.iter().find_map(|m| match m {
        ServerMsg::Welcome(w) => Some(w.clone()),
        _ => None,
    })
}

/// Attack 1: 50 links, each opening a room and held for 2 s. Returns (seated, refused).
async fn open_rooms(addr: &str) -> (usize, usize) {
    let mut links = Vec::new();
    let (mut seated, mut refused) = (0, 0);
    for i in 0..50 {
        let mut ws = open(addr).await;
        send(&mut ws, &join("Mal", Some(&format!("mal-{i}")), 2)).await;
        let (msgs, _) = drain(&mut ws, Duration::from_millis(100)).await;
        for m in &msgs {
            match m {
                ServerMsg::Welcome(_) => seated += 1,
                ServerMsg::Rejected(Reject::TooManyLinks | Reject::TooManyMatches) => refused += 1,
                _ => {}
            }
        }
        links.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(links);
    (seated, refused)
}

/// Attack 4: 20 links that never send anything. Returns how many the server closed within
/// 10 s (refused at once for the address's cap, or closed at the join deadline).
async fn idle_links(addr: &str) -> usize {
    let mut links = Vec::new();
    for _ in 0..20 {
        links.push(open(addr).await);
    }
    let mut closed = 0;
    let until = Instant::now() + Duration::from_secs(10);
    for ws in &mut links {
        let left = until.saturating_duration_since(Instant::now());
        let (msgs, gone) = drain(ws, left.max(Duration::from_millis(1))).await;
        let told = msgs.iter().any(|m| {
            matches!(
                m,
                ServerMsg::Closed(CloseReason::Idle) | ServerMsg::Rejected(Reject::TooManyLinks)
            )
        });
        if gone && told {
            closed += 1;
        }
    }
    closed
}

/// Attack 2: a session's frames replayed on a fresh link, then a `Join` there. Returns
/// whether the replaying link ever got the session's `Welcome`, and whether the session's
/// own link was told it was replaced.
async fn replay(addr: &str) -> (bool, bool) {
    let mut owner = open(addr).await;
    send(&mut owner, &join("Vic", Some("replay"), 3)).await;
    let (msgs, _) = drain(&mut owner, Duration::from_millis(300)).await;
    let w = welcome_in(&msgs).expect("the owner's Welcome");
    let mut captured = Vec::new();
    for seq in 1..=20 {
        let frame = signed(&w, seq, &SessionMsg::Ping { id: seq, client_time: 0 });
        send(&mut owner, &frame).await;
        captured.push(frame);
    }
    let mut thief = open(addr).await;
    for f in &captured {
        send(&mut thief, f).await;
    }
    send(&mut thief, &join("Mal", None, 4)).await;
    let (stolen, _) = drain(&mut thief, Duration::from_millis(500)).await;
    let took = stolen.iter().any(|m| matches!(m, ServerMsg::Welcome(x) if x.session == w.session));
    let (heard, _) = drain(&mut owner, Duration::from_millis(300)).await;
    let replaced = heard.iter().any(|m| matches!(m, ServerMsg::Closed(CloseReason::Replaced)));
    (took, replaced)
}

/// Attack 3: a match of two of the attacker's links; one drops out after the start, comes
/// back and never says Ready. Returns whether the other link saw the match end (the
/// silent member forfeiting) within 20 s.
async fn freeze(addr: &str) -> bool {
    let mut a = open(addr).await;
    send(&mut a, &join("Mal", Some("freeze"), 2)).await;
    let wa = welcome_in(&drain(&mut a, Duration::from_millis(300)).await.0).unwrap();
    let mut b = open(addr).await;
    send(&mut b, &join("Eve", Some("freeze"), 2)).await;
    let wb = welcome_in(&drain(&mut b, Duration::from_millis(300)).await.0).unwrap();
    send(&mut a, &signed(&wa, 1, &SessionMsg::Ready)).await;
    send(&mut b, &signed(&wb, 1, &SessionMsg::Ready)).await;
    // B keeps its seat alive throughout; A plays a little, then drops out.
    let mut seq_b = 1;
    let mut ping_b = async |b: &mut Ws| {
        seq_b += 1;
        send(b, &signed(&wb, seq_b, &SessionMsg::Ping { id: seq_b, client_time: 0 })).await;
        drain(b, Duration::from_millis(200)).await.0
    };
    for _ in 0..10 {
        ping_b(&mut b).await;
        let _ = drain(&mut a, Duration::from_millis(10)).await;
    }
    drop(a);
    // Lost after the server's lost timeout: the match pauses, and A has the grace period
    // (3 s here) to come back.
    let mut seen = Vec::new();
    for _ in 0..25 {
        seen.extend(ping_b(&mut b).await);
        if seen.iter().any(|m| matches!(m, ServerMsg::Paused(_))) {
            break;
        }
    }
    // Back: the address may be at its cap for a moment while the other attacks run.
    let mut back = None;
    for _ in 0..8 {
        let mut ws = open(addr).await;
        let mut buf = Vec::new();
        encode_open(&OpenMsg::Resume { session: wa.session }, &mut buf).unwrap();
        send(&mut ws, &buf).await;
        let (msgs, _) = drain(&mut ws, Duration::from_millis(300)).await;
        if let Some((nonce, next_seq)) = msgs.iter().find_map(|m| match m {
            ServerMsg::Challenge { nonce, next_seq, .. } => Some((*nonce, *next_seq)),
            _ => None,
        }) {
            send(&mut ws, &signed(&wa, next_seq, &SessionMsg::Prove { nonce })).await;
            back = Some((ws, next_seq));
            break;
        }
        seen.extend(ping_b(&mut b).await);
    }
    let (mut a, mut seq_a) = back.expect("the attacker got its seat back");
    // Only pings from now on, never Ready.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        seq_a += 1;
        send(&mut a, &signed(&wa, seq_a, &SessionMsg::Ping { id: seq_a, client_time: 0 })).await;
        let _ = drain(&mut a, Duration::from_millis(10)).await;
        seen.extend(ping_b(&mut b).await);
        if seen.iter().any(|m| matches!(m, ServerMsg::MatchOver(_))) {
            return true;
        }
    }
    false
}

#[test]
fn a_hostile_client_running_four_attacks_at_once_disturbs_no_match() {
    let started = Instant::now();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut extra = vec!["--listen", &addr];
    extra.extend_from_slice(BOUNDS);
    let mut server = server(&[], &[SLOW_RULES, extra.as_slice()].concat());
    let mut bots = four_bots(&["--server", &format!("ws://{addr}")], 0.8);
    server.wait_for_log("match started", common::MATCH_LIMIT);

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (froze, replayed, rooms, idle) = rt.block_on(async {
        // The attacks that need links of their own start first; the ones that fill the
        // address's links start a moment later, and all run at once.
        let (a1, a2, a3, a4) = (addr.clone(), addr.clone(), addr.clone(), addr.clone());
        let freeze = tokio::spawn(async move { freeze(&a1).await });
        let replay = tokio::spawn(async move { replay(&a2).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rooms = tokio::spawn(async move { open_rooms(&a3).await });
        let idle = tokio::spawn(async move { idle_links(&a4).await });
        (freeze.await.unwrap(), replay.await.unwrap(), rooms.await.unwrap(), idle.await.unwrap())
    });
    // A bot exits as soon as its match is over.
    let still_playing = bots.iter_mut().all(|b| b.poll_exit().is_none());
    let reports = reports(&mut bots);
    rt.shutdown_timeout(Duration::from_secs(1));

    let summary = assert_agree(&reports, &server);
    assert_undisturbed(&reports);
    for r in &reports {
        assert_eq!(num(r, "pauses"), 0, "the bots' match paused: {r:#}");
    }
    assert!(
        still_playing,
        "the bots' match was over before the attacks ended: the machine was too slow for \
         this test to prove anything"
    );
    assert!(froze, "a member back but never Ready held its match");
    assert_eq!(replayed, (false, false), "(seat taken, owner replaced) by a replay");
    let (seated, refused) = rooms;
    assert!(seated <= 30 && refused >= 20, "rooms: {seated} opened, {refused} refused");
    assert_eq!(idle, 20, "idle links left open");
    eprintln!(
        "abuse: {summary}; rooms {seated} opened / {refused} refused; {idle} idle links closed; \
         {:.1?} in all",
        started.elapsed()
    );
}
