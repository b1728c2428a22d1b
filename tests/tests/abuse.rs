//! Issue 19: each attack of the hostile-client review, run against the real server driver
//! over the in-memory transport on virtual time, while real players (the runtime's bot
//! clients) play. Each attack fails, and the players' match plays to its end with no
//! pause it did not cause itself and no desync. The same attacks against the real binary,
//! all at once: `app/pong/tests/e2e_abuse.rs`; the bounds one by one:
//! `domain/tests/server_bounds.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pong_domain::client::{ClientCore, ClientPhase};
use pong_domain::codec::{decode_server, encode_open, encode_signed};
use pong_domain::journal::Record;
use pong_domain::proto::{
    CloseReason, MatchId, MatchOver, OpenMsg, Reject, ServerMsg, SessionMsg, Signed, Welcome,
};
use pong_domain::route::Origin;
use pong_domain::server::{ServerConfig, ServerCore, ServerEvent, ServerStats};
use pong_domain::testing::{join_frame, room_join_frame, short_matches};
use pong_ports::{ClientTransport, Connector, Frame, MatchId as Group, TransportError};
use pong_runtime::local::LocalServer;

/// Where the attacker's links come from; the players come from elsewhere.
const ATTACKER: Origin = Origin::Ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 66)));

struct Server {
    local: LocalServer,
    results: Arc<Mutex<BTreeMap<MatchId, MatchOver>>>,
    forfeits: Arc<Mutex<Vec<MatchId>>>,
}

fn start(config: ServerConfig, seed: u8) -> Server {
    common::logs();
    let results = Arc::new(Mutex::new(BTreeMap::new()));
    let forfeits = Arc::new(Mutex::new(Vec::new()));
    let (r, f) = (Arc::clone(&results), Arc::clone(&forfeits));
    let local = LocalServer::start(ServerCore::new(config, [seed; 32]), move |e| {
        if let ServerEvent::Match { match_id, record } = e {
            match record {
                Record::Over { result } => {
                    r.lock().unwrap().insert(*match_id, result.clone());
                }
                Record::Forfeit { .. } => f.lock().unwrap().push(*match_id),
                _ => {}
            }
        }
    })
    .unwrap();
    Server { local, results, forfeits }
}

impl Server {
    fn attacker(&self) -> pong_transport_memory::MemoryConnector {
        self.local.hub().connector().from_origin(ATTACKER)
    }

    async fn stop(self) -> ServerStats {
        self.local.stop().await.unwrap().stats().clone()
    }
}

/// The match each player saw end is the one the server recorded, hash for hash, and none
/// of them saw a desync or (unless `pauses` says so) a pause.
fn assert_played(server: &Server, players: &[ClientCore], pauses: u32) {
    let results = server.results.lock().unwrap();
    for core in players {
        let ClientPhase::Over { result, final_hash } = core.phase() else {
            panic!("a player's match did not end: {:?}", core.phase());
        };
        let truth = &results[&core.match_id().unwrap()];
        assert_eq!(result, truth);
        assert_eq!(*final_hash, truth.final_hash.0);
        assert_eq!(core.desyncs(), 0, "a player desynchronized");
        assert_eq!(core.pauses(), pauses, "the players' match paused");
    }
}

/// A link of the attacker's, speaking raw frames.
struct Raw(Box<dyn ClientTransport>);

impl Raw {
    async fn open(connector: &dyn Connector) -> Raw {
        Raw(connector.connect().await.unwrap())
    }

    fn send(&self, frame: &[u8]) {
        // A link the server closed refuses sends: the attacker does not care.
        let _ = self.0.send(Bytes::copy_from_slice(frame));
    }

    /// The messages that arrive within `wait`, and whether the link was closed (true).
    async fn drain(&mut self, wait: Duration) -> (Vec<ServerMsg>, bool) {
        let mut got = Vec::new();
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.0.recv()).await {
                Err(_) => return (got, false),
                Ok(Err(_)) => return (got, true),
                Ok(Ok(frame)) => got.extend(decode_server(&frame).ok()),
            }
        }
    }
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

/// Finding 1: one address opens room after room and keeps the links. It gets at most its
/// allowance of new matches and of links; the rest are refused with a reason, and a real
/// pair still gets a match and plays it through.
#[tokio::test(start_paused = true)]
async fn opening_rooms_from_one_address_fills_nothing() {
    let server = start(short_matches(2), 1);
    let attacker = server.attacker();
    let mut links = Vec::new();
    let (mut seated, mut too_many_links, mut too_many_matches) = (0, 0, 0);
    for i in 0..100 {
        let mut link = Raw::open(&attacker).await;
        link.send(&room_join_frame("Mal", &format!("mal-{i}")));
        let (msgs, _) = link.drain(Duration::from_millis(5)).await;
        for m in &msgs {
            match m {
                ServerMsg::Welcome(_) => seated += 1,
                ServerMsg::Rejected(Reject::TooManyLinks) => too_many_links += 1,
                ServerMsg::Rejected(Reject::TooManyMatches) => too_many_matches += 1,
                _ => {}
            }
        }
        links.push(link);
    }
    assert_eq!(seated, 30, "the allowance of new matches is 30 a minute");
    assert_eq!(too_many_matches, 2, "links 31 and 32 may connect but open nothing");
    assert_eq!(too_many_links, 68, "no more than 32 links from one address");
    // Meanwhile, players from elsewhere get a match and play it.
    let pair = [
        common::spawn_player("Ada", 2, server.local.connector(), 1),
        common::spawn_player("Bob", 2, server.local.connector(), 2),
    ];
    let mut players = Vec::new();
    for p in pair {
        players.push(p.await.unwrap());
    }
    assert_played(&server, &players, 0);
    drop(links);
    let stats = server.stop().await;
    assert_eq!((stats.links_refused, stats.matches_refused), (68, 2));
}

/// Finding 4: links that never join are closed after the join deadline, so the slots they
/// took come free; while they are open, the address's cap holds them to 32.
#[tokio::test(start_paused = true)]
async fn idle_links_are_closed_and_their_slots_come_back() {
    let server = start(short_matches(2), 2);
    let attacker = server.attacker();
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(Raw::open(&attacker).await);
    }
    let pair = [
        common::spawn_player("Ada", 2, server.local.connector(), 3),
        common::spawn_player("Bob", 2, server.local.connector(), 4),
    ];
    // Every idle link is closed: 8 at once for the cap, the others at the deadline.
    let mut reasons = BTreeMap::new();
    for link in &mut idle {
        let (msgs, closed) = link.drain(Duration::from_secs(15)).await;
        assert!(closed, "an idle link is still open after 15 s");
        for m in msgs {
            *reasons.entry(format!("{m:?}")).or_insert(0) += 1;
        }
    }
    assert_eq!(
        reasons,
        BTreeMap::from([
            (format!("{:?}", ServerMsg::Rejected(Reject::TooManyLinks)), 8),
            (format!("{:?}", ServerMsg::Closed(CloseReason::Idle)), 32),
        ])
    );
    // The address may connect and play again.
    let mut again = Raw::open(&attacker).await;
    again.send(&join_frame("Mal", Some(4)));
    let (msgs, _) = again.drain(Duration::from_millis(100)).await;
    assert!(welcome_in(&msgs).is_some(), "{msgs:?}");
    let mut players = Vec::new();
    for p in pair {
        players.push(p.await.unwrap());
    }
    assert_played(&server, &players, 0);
    let stats = server.stop().await;
    assert_eq!(stats.links_refused, 8);
    assert!(stats.links_idle >= 32, "{stats:?}");
}

/// Every frame a player sends, as a wire tap would see it.
#[derive(Clone)]
struct Tap {
    inner: Arc<dyn Connector>,
    frames: Arc<Mutex<Vec<Frame>>>,
}

struct TappedLink {
    inner: Box<dyn ClientTransport>,
    frames: Arc<Mutex<Vec<Frame>>>,
}

#[async_trait]
impl Connector for Tap {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        let inner = self.inner.connect().await?;
        Ok(Box::new(TappedLink { inner, frames: Arc::clone(&self.frames) }))
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[async_trait]
impl ClientTransport for TappedLink {
    async fn recv(&mut self) -> Result<Frame, TransportError> {
        self.inner.recv().await
    }

    fn send(&self, frame: Frame) -> Result<(), TransportError> {
        self.frames.lock().unwrap().push(frame.clone());
        self.inner.send(frame)
    }

    async fn subscribe(&mut self, group: Group) -> Result<(), TransportError> {
        self.inner.subscribe(group).await
    }

    fn max_frame_len(&self) -> usize {
        self.inner.max_frame_len()
    }

    async fn close(&mut self) {
        self.inner.close().await;
    }
}

/// Finding 2: an attacker who captures a player's frames replays them, each on links of
/// its own, then repeats a `Join` there (which once returned the victim's `Welcome` and
/// token). The seat does not move: the victim is never replaced or paused, and the
/// attacker never sees the victim's token.
#[tokio::test(start_paused = true)]
async fn replaying_a_players_frames_takes_no_seat() {
    let server = start(short_matches(2), 3);
    let tap = Tap { inner: server.local.connector(), frames: Arc::default() };
    let captured = Arc::clone(&tap.frames);
    let victim = common::spawn_player("Ada", 2, Arc::new(tap), 5);
    let other = common::spawn_player("Bob", 2, server.local.connector(), 6);
    let attacker = server.attacker();
    let mut seen = Vec::new();
    // Every two seconds of the match, replay everything captured so far.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let frames: Vec<Frame> = captured.lock().unwrap().clone();
        let mut link = Raw::open(&attacker).await;
        for f in frames.iter().skip(1) {
            link.send(f);
        }
        link.send(&join_frame("Mal", Some(2)));
        seen.extend(link.drain(Duration::from_millis(200)).await.0);
    }
    let victim = victim.await.unwrap();
    let other = other.await.unwrap();
    assert_played(&server, &[victim.clone(), other], 0);
    let (session, token) = victim.session().unwrap();
    for m in &seen {
        if let ServerMsg::Welcome(w) = m {
            assert!(w.session != session && w.token != token, "the attacker got the seat");
        }
        assert!(!matches!(m, ServerMsg::Challenge { .. }), "{m:?}");
    }
    let stats = server.stop().await;
    assert!(stats.wrong_link > 0, "{stats:?}");
}

/// Finding 3: a member that drops out of a running match, comes back (Resume, Prove) and
/// then only pings, never Ready, cannot hold the match paused: after the grace period it
/// forfeits and the others play on to the end.
#[tokio::test(start_paused = true)]
async fn a_member_back_but_never_ready_cannot_freeze_the_match() {
    let config = ServerConfig { grace: 5_000_000, ..short_matches(3) };
    let server = start(config, 4);
    let attacker = server.attacker();
    let mut link = Raw::open(&attacker).await;
    link.send(&join_frame("Mal", Some(3)));
    let (msgs, _) = link.drain(Duration::from_millis(100)).await;
    let w = welcome_in(&msgs).unwrap();
    link.send(&signed(&w, 1, &SessionMsg::Ready));
    let players = [
        common::spawn_player("Ada", 3, server.local.connector(), 7),
        common::spawn_player("Bob", 3, server.local.connector(), 8),
    ];
    // Play a little (inputs are optional: the server plays a missing input as idle).
    let mut seq = 1;
    for _ in 0..20 {
        seq += 1;
        link.send(&signed(&w, seq, &SessionMsg::Ping { id: seq, client_time: 0 }));
        let _ = link.drain(Duration::from_millis(250)).await;
    }
    drop(link);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Back, proving the session…
    let mut link = Raw::open(&attacker).await;
    let mut buf = Vec::new();
    encode_open(&OpenMsg::Resume { session: w.session }, &mut buf).unwrap();
    link.send(&buf);
    let (msgs, _) = link.drain(Duration::from_millis(300)).await;
    let (nonce, mut seq) = msgs
        .iter()
        .find_map(|m| match m {
            ServerMsg::Challenge { nonce, next_seq, .. } => Some((*nonce, *next_seq)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no challenge: {msgs:?}"));
    link.send(&signed(&w, seq, &SessionMsg::Prove { nonce }));
    // …then only pinging, for longer than the grace period.
    for _ in 0..40 {
        seq += 1;
        link.send(&signed(&w, seq, &SessionMsg::Ping { id: seq, client_time: 0 }));
        let _ = link.drain(Duration::from_millis(250)).await;
    }
    let mut cores = Vec::new();
    for p in players {
        cores.push(p.await.unwrap());
    }
    // The players saw the one pause the attacker's drop caused, and an end.
    assert_played(&server, &cores, 1);
    assert_eq!(server.forfeits.lock().unwrap().as_slice(), &[w.match_id]);
    server.stop().await;
}

/// Finding 6: a member asking for the last 64 ticks 150 times a second (within its rate
/// limit) once made the server send ~60 bytes for each byte it received. Now what it is
/// resent is held to its budget (64 ticks a second, and a keyframe at most every 200 ms),
/// and the other player's match plays on.
#[tokio::test(start_paused = true)]
async fn resync_floods_are_held_to_a_budget() {
    let server = start(short_matches(2), 5);
    let attacker = server.attacker();
    let mut link = Raw::open(&attacker).await;
    link.send(&join_frame("Mal", Some(2)));
    let w = welcome_in(&link.drain(Duration::from_millis(100)).await.0).unwrap();
    link.send(&signed(&w, 1, &SessionMsg::Ready));
    let bob = common::spawn_player("Bob", 2, server.local.connector(), 9);
    // Into the match: the countdown, and a second of ticks.
    let mut newest = 0;
    let mut seq = 1;
    for _ in 0..20 {
        seq += 1;
        link.send(&signed(&w, seq, &SessionMsg::Ping { id: seq, client_time: 0 }));
        for m in link.drain(Duration::from_millis(250)).await.0 {
            if let ServerMsg::Tick(t) = m {
                newest = newest.max(t.tick);
            }
        }
    }
    assert!(newest > 64, "the match did not start");
    // Two seconds of Resync{newest - 63} every 6.7 ms, counting the bytes that come back.
    let (mut asked, mut resent_ticks, mut keyframes) = (0u32, 0u32, 0u32);
    for _ in 0..300 {
        seq += 1;
        let from_tick = newest.saturating_sub(63);
        link.send(&signed(&w, seq, &SessionMsg::Resync { from_tick }));
        asked += 64;
        for m in link.drain(Duration::from_micros(6_667)).await.0 {
            match m {
                ServerMsg::Tick(t) if t.tick < newest => resent_ticks += 1,
                ServerMsg::Tick(t) => newest = t.tick,
                ServerMsg::Keyframe(_) => keyframes += 1,
                _ => {}
            }
        }
    }
    // Within the budget: 128 at once and 64 a second over the two seconds; ticks resent
    // and ticks of the group may overlap, so allow one more second's worth.
    assert!(resent_ticks <= 128 + 3 * 64, "{resent_ticks} ticks resent of {asked} asked");
    assert!(keyframes <= 11, "{keyframes} keyframes in two seconds");
    drop(link);
    let bob = bob.await.unwrap();
    assert!(matches!(bob.phase(), ClientPhase::Over { .. }), "{:?}", bob.phase());
    let stats = server.stop().await;
    assert!(stats.resends_limited > 250, "{stats:?}");
}
