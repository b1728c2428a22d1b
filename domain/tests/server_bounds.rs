//! The bounds that keep one client from filling or slowing the server (issue 19): links
//! and new matches per address, the deadline to take a seat, strikes for frames nobody
//! could answer, links whose name proves nothing, and the resend budget. Driven frame by
//! frame on a hand-set clock.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use pong_domain::codec::encode_open;
use pong_domain::proto::{CloseReason, OpenMsg, Reject, ServerMsg, SessionId, SessionMsg};
use pong_domain::route::{Dest, Origin, PeerId};
use pong_domain::server::{ServerConfig, ServerCore, Transmit};
use pong_domain::testing::{MS, SECOND, drain, join_frame, room_join_frame, signed, welcome_of};

type Out = Vec<(Transmit, Option<ServerMsg>)>;

fn ip(last: u8) -> Origin {
    Origin::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

fn told(out: &Out, peer: u64, msg: &ServerMsg) -> bool {
    out.iter()
        .any(|(t, m)| *t == Transmit::Send(Dest::Peer(PeerId(peer))) && m.as_ref() == Some(msg))
}

fn closed(out: &Out, peer: u64) -> bool {
    out.iter().any(|(t, _)| *t == Transmit::Disconnect(PeerId(peer)))
}

#[test]
fn an_address_may_hold_only_so_many_links() {
    let config = ServerConfig { max_links_per_address: 3, ..ServerConfig::default() };
    let mut core = ServerCore::new(config, [1; 32]);
    for p in 1..=3 {
        core.handle_peer_opened(0, PeerId(p), ip(1));
    }
    assert!(drain(&mut core).is_empty(), "three links are fine");
    core.handle_peer_opened(1, PeerId(4), ip(1));
    let out = drain(&mut core);
    assert!(told(&out, 4, &ServerMsg::Rejected(Reject::TooManyLinks)), "{out:?}");
    assert!(closed(&out, 4));
    assert_eq!(core.stats().links_refused, 1);
    // What the refused link sends meanwhile reaches nothing.
    core.handle_frame(2, PeerId(4), &join_frame("Mal", None));
    assert!(drain(&mut core).is_empty());
    // Another address is not affected.
    core.handle_peer_opened(3, PeerId(5), ip(2));
    assert!(drain(&mut core).is_empty());
    // Once links close, the address may open new ones.
    core.handle_peer_gone(4, PeerId(4));
    core.handle_peer_gone(4, PeerId(1));
    assert_eq!(core.links_from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))), 2);
    core.handle_peer_opened(5, PeerId(6), ip(1));
    core.handle_frame(6, PeerId(6), &join_frame("Ada", None));
    welcome_of(&drain(&mut core));
}

#[test]
fn an_address_may_open_only_so_many_matches_a_minute_but_may_always_join_one() {
    let config = ServerConfig { matches_per_minute_per_address: 3, ..ServerConfig::default() };
    let mut core = ServerCore::new(config, [2; 32]);
    for p in 1..=3 {
        core.handle_peer_opened(0, PeerId(p), ip(1));
        core.handle_frame(0, PeerId(p), &room_join_frame("Mal", &format!("room-{p}")));
        welcome_of(&drain(&mut core));
    }
    assert_eq!(core.match_count(), 3);
    core.handle_peer_opened(0, PeerId(4), ip(1));
    core.handle_frame(0, PeerId(4), &room_join_frame("Mal", "room-4"));
    let out = drain(&mut core);
    assert!(told(&out, 4, &ServerMsg::Rejected(Reject::TooManyMatches)), "{out:?}");
    assert_eq!((core.match_count(), core.stats().matches_refused), (3, 1));
    // Joining a room that is open still works…
    core.handle_peer_opened(0, PeerId(5), ip(1));
    core.handle_frame(0, PeerId(5), &room_join_frame("Bob", "room-1"));
    welcome_of(&drain(&mut core));
    // …and the allowance comes back over the minute: one match per 20 s here.
    core.handle_frame(20 * SECOND, PeerId(4), &room_join_frame("Mal", "room-4"));
    welcome_of(&drain(&mut core));
    assert_eq!(core.match_count(), 4);
    // Other addresses are not affected.
    core.handle_peer_opened(20 * SECOND, PeerId(6), ip(2));
    core.handle_frame(20 * SECOND, PeerId(6), &room_join_frame("Cy", "room-6"));
    welcome_of(&drain(&mut core));
}

#[test]
fn where_the_transport_knows_no_address_the_link_is_the_address() {
    let config = ServerConfig { matches_per_minute_per_address: 2, ..ServerConfig::default() };
    let mut core = ServerCore::new(config, [3; 32]);
    // One link opens a room, leaves it, opens another…: its own allowance runs out.
    let mut opened = 0;
    for i in 0..4u32 {
        core.handle_frame(u64::from(i) * MS, PeerId(1), &room_join_frame("Mal", &format!("r{i}")));
        let out = drain(&mut core);
        if let Some(w) = out.iter().find_map(|(_, m)| match m {
            Some(ServerMsg::Welcome(w)) => Some(w.clone()),
            _ => None,
        }) {
            opened += 1;
            core.handle_frame(u64::from(i) * MS + 1, PeerId(1), &signed(&w, 1, SessionMsg::Leave));
            drain(&mut core);
        } else {
            assert!(told(&out, 1, &ServerMsg::Rejected(Reject::TooManyMatches)), "{out:?}");
        }
    }
    assert_eq!(opened, 2);
    // A second link has its own.
    core.handle_frame(10 * MS, PeerId(2), &room_join_frame("Bob", "r9"));
    welcome_of(&drain(&mut core));
}

#[test]
fn a_link_that_takes_no_seat_in_time_is_closed() {
    let config = ServerConfig { join_timeout: 5 * SECOND, ..ServerConfig::default() };
    let mut core = ServerCore::new(config, [4; 32]);
    core.handle_peer_opened(0, PeerId(1), ip(1));
    core.handle_peer_opened(0, PeerId(2), ip(1));
    core.handle_frame(1, PeerId(2), &join_frame("Ada", Some(3)));
    let ada = welcome_of(&drain(&mut core));
    let mut out = Vec::new();
    let mut now = 0;
    let mut seq = 0;
    while now < 7 * SECOND {
        now += 50 * MS;
        seq += 1;
        // Ada keeps her seat alive; link 1 only pings at the WebSocket level (nothing the
        // core sees).
        core.handle_frame(
            now,
            PeerId(2),
            &signed(&ada, seq, SessionMsg::Ping { id: seq, client_time: 0 }),
        );
        core.handle_timeout(now);
        out.extend(drain(&mut core));
    }
    assert!(told(&out, 1, &ServerMsg::Closed(CloseReason::Idle)), "{out:?}");
    assert!(closed(&out, 1));
    assert!(!closed(&out, 2), "a link with a seat stays");
    assert_eq!(core.stats().links_idle, 1);
}

#[test]
fn a_link_closed_with_its_lobby_is_not_closed_again_for_idleness() {
    let config = ServerConfig {
        join_timeout: 5 * SECOND,
        lobby_timeout: 2 * SECOND,
        ..ServerConfig::default()
    };
    let mut core = ServerCore::new(config, [5; 32]);
    core.handle_peer_opened(0, PeerId(1), ip(1));
    core.handle_frame(0, PeerId(1), &join_frame("Ada", Some(3)));
    let ada = welcome_of(&drain(&mut core));
    let mut out = Vec::new();
    let mut now = 0;
    let mut seq = 0;
    while now < 10 * SECOND {
        now += 50 * MS;
        seq += 1;
        core.handle_frame(
            now,
            PeerId(1),
            &signed(&ada, seq, SessionMsg::Ping { id: seq, client_time: 0 }),
        );
        core.handle_timeout(now);
        out.extend(drain(&mut core));
    }
    // The lobby expired (and closed the link itself): no second close for idleness.
    assert!(told(&out, 1, &ServerMsg::Closed(CloseReason::LobbyExpired)));
    assert_eq!(out.iter().filter(|(t, _)| *t == Transmit::Disconnect(PeerId(1))).count(), 1);
}

#[test]
fn frames_for_sessions_nobody_has_are_strikes() {
    let config = ServerConfig { max_bad_frames: 4, ..ServerConfig::default() };
    let mut core = ServerCore::new(config, [6; 32]);
    core.handle_peer_opened(0, PeerId(1), ip(1));
    let mut out = Vec::new();
    for s in 1..=6u32 {
        let mut buf = Vec::new();
        encode_open(&OpenMsg::Resume { session: SessionId(s) }, &mut buf).unwrap();
        core.handle_frame(u64::from(s), PeerId(1), &buf);
        out.extend(drain(&mut core));
    }
    assert!(told(&out, 1, &ServerMsg::Rejected(Reject::UnknownSession)));
    assert!(closed(&out, 1), "a link that keeps guessing sessions is dropped");
    assert_eq!(core.stats().unknown_session, 5, "frames after the drop are not even read");
}

#[test]
fn bad_frames_under_a_name_anyone_can_use_never_close_its_link() {
    let mut core = ServerCore::new(ServerConfig::default(), [7; 32]);
    core.handle_peer_opened(0, PeerId(1), Origin::Named);
    core.handle_frame(0, PeerId(1), &join_frame("Ada", Some(3)));
    let ada = welcome_of(&drain(&mut core));
    // A stranger who knows the queue's name sends garbage and floods under it.
    let mut out = Vec::new();
    for i in 0..400u64 {
        core.handle_frame(1 + i, PeerId(1), b"\x03garbage");
        out.extend(drain(&mut core));
    }
    assert!(!closed(&out, 1), "the victim's link was closed");
    assert!(core.stats().malformed + core.stats().rate_limited >= 400);
    // Ada is still seated and heard once the flood passes.
    core.handle_frame(
        5 * SECOND,
        PeerId(1),
        &signed(&ada, 1, SessionMsg::Ping { id: 1, client_time: 0 }),
    );
    assert!(drain(&mut core).iter().any(|(_, m)| matches!(m, Some(ServerMsg::Pong { .. }))));
}

#[test]
fn resyncs_beyond_the_budget_get_no_more_ticks() {
    let mut core = ServerCore::new(ServerConfig::default(), [8; 32]);
    core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
    let ada = welcome_of(&drain(&mut core));
    core.handle_frame(1, PeerId(2), &join_frame("Bob", None));
    let bob = welcome_of(&drain(&mut core));
    core.handle_frame(2, PeerId(1), &signed(&ada, 1, SessionMsg::Ready));
    core.handle_frame(3, PeerId(2), &signed(&bob, 1, SessionMsg::Ready));
    drain(&mut core);
    let mut now = 3 * SECOND;
    // A second of play (the players send nothing: their paddles stay).
    for seq in 2..72 {
        now += SECOND / 60;
        let ping = SessionMsg::Ping { id: seq, client_time: 0 };
        core.handle_frame(now, PeerId(1), &signed(&ada, seq, ping.clone()));
        core.handle_frame(now, PeerId(2), &signed(&bob, seq, ping));
        core.handle_timeout(now);
        drain(&mut core);
    }
    // Ada asks for the last 60 ticks 100 times in one second.
    let newest = core.match_state(ada.match_id).unwrap().tick;
    let mut resent = 0;
    for i in 0..100u32 {
        core.handle_frame(
            now + u64::from(i) * 10 * MS,
            PeerId(1),
            &signed(&ada, 10_000 + i, SessionMsg::Resync { from_tick: newest - 59 }),
        );
        resent += drain(&mut core)
            .iter()
            .filter(|(t, m)| {
                *t == Transmit::Send(Dest::Peer(PeerId(1))) && matches!(m, Some(ServerMsg::Tick(_)))
            })
            .count();
    }
    // Two full resends at once and 64 ticks a second: at most 128 + 64 in that second.
    assert!(resent <= 192, "{resent} ticks resent");
    assert!(resent >= 120, "the budget allows two resends: {resent}");
    assert!(core.stats().resends_limited > 90);
}

#[test]
fn a_closed_link_its_transport_never_reports_gone_stops_counting_against_its_address() {
    let config = ServerConfig { max_links_per_address: 1, ..ServerConfig::default() };
    let mut core = ServerCore::new(config, [9; 32]);
    core.handle_peer_opened(0, PeerId(1), ip(1));
    core.handle_peer_opened(0, PeerId(2), ip(1));
    assert!(closed(&drain(&mut core), 2));
    // Link 1 takes no seat and is closed; its transport never says it is gone.
    let mut now = 0;
    while now < 80 * SECOND {
        now += SECOND;
        core.handle_timeout(now);
        drain(&mut core);
    }
    assert_eq!(core.links_from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))), 0);
    core.handle_peer_opened(now, PeerId(3), ip(1));
    assert!(drain(&mut core).is_empty(), "the address may open a link again");
}
