//! The server's rules, driven frame by frame on a hand-set clock: the start, trust, and
//! matches restored from their journal.

#![allow(clippy::unwrap_used)]

use pong_domain::journal::{Record, RecoveredMatch};
use pong_domain::proto::{InputRun, OpenMsg, ServerMsg, SessionMsg, Token, Welcome};
use pong_domain::route::{Dest, PeerId};
use pong_domain::server::{
    RESTORE_EPOCH_STEP, RestoreError, ServerConfig, ServerCore, ServerEvent, Transmit,
};
use pong_domain::sim::Intent;
use pong_domain::testing::{
    MS, SECOND, drain, join_frame, resume, room_join_frame, signed, take_records, welcome_of,
};

/// Time between two wakes of the server in the tests that wait out a grace period: its
/// housekeeping period.
const STEP: u64 = 50 * MS;

#[test]
fn two_joins_fill_a_match_and_ready_starts_the_countdown() {
    let mut core = ServerCore::new(ServerConfig::default(), [1; 32]);
    core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
    let w1 = welcome_of(&drain(&mut core));
    core.handle_frame(10, PeerId(2), &join_frame("Bob", None));
    let w2 = welcome_of(&drain(&mut core));
    assert_eq!(w1.match_id, w2.match_id);
    assert_ne!(w1.player, w2.player);
    assert_ne!(w1.token, w2.token);
    core.handle_frame(20, PeerId(1), &signed(&w1, 1, SessionMsg::Ready));
    assert!(!drain(&mut core).iter().any(|(_, m)| matches!(m, Some(ServerMsg::StartAt { .. }))));
    core.handle_frame(30, PeerId(2), &signed(&w2, 1, SessionMsg::Ready));
    let out = drain(&mut core);
    let start = out.iter().find_map(|(t, m)| match m {
        Some(ServerMsg::StartAt { tick, server_time, .. }) => Some((*t, *tick, *server_time)),
        _ => None,
    });
    let (t, tick, at) = start.unwrap();
    assert_eq!(t, Transmit::Send(Dest::Group(w1.match_id)));
    assert_eq!(tick, 1);
    assert!(at >= 30 + 3 * SECOND);
}

/// A two-player match run for `ticks` ticks with players' inputs; returns both welcomes
/// and the journal.
fn played(core: &mut ServerCore, ticks: u32) -> (Welcome, Welcome, Vec<Record>) {
    let mut records = Vec::new();
    core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
    let w1 = welcome_of(&drain(core));
    core.handle_frame(10, PeerId(2), &join_frame("Bob", None));
    let w2 = welcome_of(&drain(core));
    core.handle_frame(20, PeerId(1), &signed(&w1, 1, SessionMsg::Ready));
    core.handle_frame(30, PeerId(2), &signed(&w2, 1, SessionMsg::Ready));
    drain(core);
    let period = SECOND / u64::from(core.config().tick_hz);
    let mut now = 30 + 3 * SECOND;
    let mut seq = 1;
    for i in 0..ticks {
        seq += 1;
        let intent = if i % 40 < 20 { Intent::Plus } else { Intent::Minus };
        let run = InputRun::new(i + 1, [intent]);
        core.handle_frame(now, PeerId(1), &signed(&w1, seq, SessionMsg::Input(run)));
        core.handle_frame(now, PeerId(2), &signed(&w2, seq, SessionMsg::Input(run)));
        now += period;
        core.handle_timeout(now);
        drain(core);
        records.extend(take_records(core, w1.match_id));
    }
    (w1, w2, records)
}

#[test]
fn a_restored_match_resumes_through_pause_ready_and_countdown() {
    let config = ServerConfig { tick_hz: 120, record_ticks: true, ..ServerConfig::default() };
    let mut core = ServerCore::new(config.clone(), [3; 32]);
    let (w1, w2, records) = played(&mut core, 300);
    let before = core.match_state(w1.match_id).unwrap().tick;
    assert!(before > 290, "{before}");

    // The server dies; the last few ticks never reached the store.
    let kept = &records[..records.len() - 5];
    let rm = RecoveredMatch::rebuild(w1.match_id, kept).unwrap();
    let l = before - 5;
    assert_eq!(rm.tick(), l);
    let mut core = ServerCore::new(config, [4; 32]);
    core.restore(0, rm).unwrap();
    assert_eq!(core.match_state(w1.match_id).unwrap().tick, l);
    let mut events = Vec::new();
    while let Some(e) = core.poll_event() {
        events.push(e);
    }
    assert!(
        matches!(events[0].record(), Some((_, Record::Restored { tick, epoch })) if *tick == l && *epoch > RESTORE_EPOCH_STEP)
    );
    assert_eq!(
        events.iter().filter(|e| matches!(e.record(), Some((_, Record::Lost { .. })))).count(),
        2
    );

    // An old signed frame replayed before the proof is refused: only a proof binds the
    // session to a link.
    core.handle_frame(100, PeerId(7), &signed(&w1, 9_999, SessionMsg::Ready));
    assert_eq!(core.stats().wrong_link, 1);

    // Both come back with their tokens: a paused match, newer than anything seen before.
    let out = resume(&mut core, 1_000, PeerId(11), &w1, 50_000);
    let w = welcome_of(&out);
    assert!(w.resumed);
    assert_eq!((w.player, w.match_id, w.token), (w1.player, w1.match_id, w1.token));
    let paused = out.iter().find_map(|(_, m)| match m {
        Some(ServerMsg::Paused(p)) => Some(p.clone()),
        _ => None,
    });
    let paused = paused.unwrap();
    assert_eq!(paused.tick, l);
    assert!(paused.epoch.0 > RESTORE_EPOCH_STEP);
    resume(&mut core, 2_000, PeerId(12), &w2, 50_000);
    core.handle_frame(3_000, PeerId(11), &signed(&w1, 50_001, SessionMsg::Ready));
    core.handle_frame(3_000, PeerId(12), &signed(&w2, 50_001, SessionMsg::Ready));
    let start = drain(&mut core).into_iter().find_map(|(_, m)| match m {
        Some(ServerMsg::StartAt { tick, server_time, epoch }) => Some((tick, server_time, epoch)),
        _ => None,
    });
    let (tick, at, epoch) = start.unwrap();
    assert_eq!(tick, l + 1);
    assert!(epoch > paused.epoch);
    core.handle_timeout(at);
    assert_eq!(core.match_state(w1.match_id).unwrap().tick, l + 1);
    // New matches are numbered after the restored one; new sessions (random) never take a
    // restored one's id.
    core.handle_frame(4_000, PeerId(20), &join_frame("Cy", None));
    let w3 = welcome_of(&drain(&mut core));
    assert!(w3.match_id.0 > w1.match_id.0);
    assert!(w3.session != w1.session && w3.session != w2.session);
}

#[test]
fn restore_refuses_what_it_cannot_host() {
    let config = ServerConfig { tick_hz: 120, record_ticks: true, ..ServerConfig::default() };
    let mut core = ServerCore::new(config.clone(), [5; 32]);
    let (w1, _, records) = played(&mut core, 20);
    let rm = RecoveredMatch::rebuild(w1.match_id, &records).unwrap();
    let mut other = ServerCore::new(ServerConfig { tick_hz: 60, ..config.clone() }, [6; 32]);
    assert_eq!(
        other.restore(0, rm.clone()),
        Err(RestoreError::TickRate { match_hz: 120, server_hz: 60 })
    );
    assert_eq!(other.match_count(), 0);
    assert_eq!(core.restore(0, rm.clone()), Err(RestoreError::AlreadyHosted(w1.match_id)));
    let mut fresh = ServerCore::new(config, [7; 32]);
    fresh.restore(0, rm.clone()).unwrap();
    assert_eq!(fresh.restore(0, rm), Err(RestoreError::AlreadyHosted(w1.match_id)));
}

#[test]
fn a_restored_match_whose_players_do_not_come_back_ends_by_forfeit() {
    let config = ServerConfig {
        tick_hz: 120,
        grace: 2 * SECOND,
        record_ticks: true,
        ..ServerConfig::default()
    };
    let mut core = ServerCore::new(config.clone(), [8; 32]);
    let (w1, _, records) = played(&mut core, 50);
    let rm = RecoveredMatch::rebuild(w1.match_id, &records).unwrap();
    let l = rm.tick();
    assert!(l > 40, "{l}");
    let mut core = ServerCore::new(config, [9; 32]);
    core.restore(0, rm).unwrap();
    resume(&mut core, 1_000, PeerId(11), &w1, 7);
    let mut now = 0;
    while now < 3 * SECOND {
        now += STEP;
        core.handle_timeout(now);
        drain(&mut core);
    }
    let mut over = None;
    while let Some(e) = core.poll_event() {
        if let ServerEvent::Match { record: Record::Over { result }, .. } = e {
            over = Some(result);
        }
    }
    let over = over.unwrap();
    assert_eq!(over.tick, l + 1);
    assert_eq!(over.winner, Some(w1.player));
}

/// Issue 19, finding 3: a member that comes back into a paused match (Resume, Prove) and
/// then pings on but never says Ready used to keep the match paused for ever. It has the
/// grace period to say Ready, as a lost member has to come back; then it forfeits.
#[test]
fn a_member_back_in_a_pause_that_never_says_ready_forfeits_after_the_grace_period() {
    let config = ServerConfig {
        tick_hz: 120,
        grace: 2 * SECOND,
        record_ticks: true,
        ..ServerConfig::default()
    };
    let mut core = ServerCore::new(config.clone(), [12; 32]);
    let (w1, w2, records) = played(&mut core, 50);
    let rm = RecoveredMatch::rebuild(w1.match_id, &records).unwrap();
    let l = rm.tick();
    let mut core = ServerCore::new(config, [13; 32]);
    core.restore(0, rm).unwrap();
    resume(&mut core, 1_000, PeerId(11), &w1, 100);
    resume(&mut core, 1_000, PeerId(12), &w2, 100);
    core.handle_frame(2_000, PeerId(11), &signed(&w1, 101, SessionMsg::Ready));
    // (The restore reported both seats lost; they are back now.)
    while core.poll_event().is_some() {}
    // Both keep pinging (neither is ever lost); only Ada said Ready.
    let (mut now, mut seq) = (2_000, 101);
    let mut over = None;
    while now < 5 * SECOND && over.is_none() {
        now += STEP;
        seq += 1;
        for (peer, w) in [(PeerId(11), &w1), (PeerId(12), &w2)] {
            let ping = SessionMsg::Ping { id: seq, client_time: now };
            core.handle_frame(now, peer, &signed(w, seq, ping));
        }
        core.handle_timeout(now);
        drain(&mut core);
        while let Some(e) = core.poll_event() {
            match e {
                ServerEvent::Match { record: Record::Over { result }, .. } => {
                    over = Some((now, result));
                }
                ServerEvent::Match { record: Record::Lost { .. }, .. } => {
                    panic!("a member that pings is not lost")
                }
                _ => {}
            }
        }
    }
    let (at, over) = over.expect("the match ended");
    assert!((2 * SECOND..3 * SECOND).contains(&at), "not before the grace period: {at}");
    assert_eq!(over.tick, l + 1);
    assert_eq!(over.winner, Some(w1.player));
}

#[test]
fn a_match_restored_before_its_start_is_back_in_its_lobby() {
    let config = ServerConfig { grace: 2 * SECOND, ..ServerConfig::default() };
    let mut core = ServerCore::new(config.clone(), [10; 32]);
    core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
    let w1 = welcome_of(&drain(&mut core));
    core.handle_frame(10, PeerId(2), &join_frame("Bob", None));
    let w2 = welcome_of(&drain(&mut core));
    core.handle_frame(20, PeerId(1), &signed(&w1, 1, SessionMsg::Ready));
    core.handle_frame(30, PeerId(2), &signed(&w2, 1, SessionMsg::Ready));
    let mut records = Vec::new();
    records.extend(take_records(&mut core, w1.match_id));
    assert!(records.contains(&Record::CountdownStarted));
    let mut core = ServerCore::new(config, [11; 32]);
    core.restore(0, RecoveredMatch::rebuild(w1.match_id, &records).unwrap()).unwrap();
    let out = resume(&mut core, 1_000, PeerId(11), &w1, 9);
    let lobby = out.iter().find_map(|(_, m)| match m {
        Some(ServerMsg::Lobby(l)) => Some(l.clone()),
        _ => None,
    });
    let lobby = lobby.unwrap();
    assert!(lobby.members.iter().all(|m| !m.ready));
    assert!(lobby.epoch.0 > RESTORE_EPOCH_STEP);
    // Bob never comes back: his seat is freed after the grace period, Ada keeps hers.
    let mut now = 1_000;
    while now < 3 * SECOND {
        now += STEP;
        core.handle_frame(
            now,
            PeerId(11),
            &signed(&w1, 10 + (now / STEP) as u32, SessionMsg::Ping { id: 1, client_time: 0 }),
        );
        core.handle_timeout(now);
        drain(&mut core);
    }
    let left: Vec<_> = std::iter::from_fn(|| core.poll_event())
        .filter_map(|e| match e {
            ServerEvent::Match { record: Record::Left { player }, .. } => Some(player),
            _ => None,
        })
        .collect();
    assert_eq!(left, vec![w2.player]);
    assert_eq!(core.match_count(), 1);
}

#[test]
fn forged_and_replayed_frames_are_refused() {
    let mut core = ServerCore::new(ServerConfig::default(), [2; 32]);
    core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
    let w = welcome_of(&drain(&mut core));
    let mut forged = w.clone();
    forged.token = Token([0; 16]);
    core.handle_frame(1, PeerId(9), &signed(&forged, 1, SessionMsg::Ready));
    assert_eq!(core.stats().forged, 1);
    core.handle_frame(2, PeerId(1), &signed(&w, 5, SessionMsg::Ping { id: 1, client_time: 0 }));
    core.handle_frame(3, PeerId(1), &signed(&w, 5, SessionMsg::Ping { id: 1, client_time: 0 }));
    assert_eq!(core.stats().replayed, 1);
}

#[test]
fn a_draining_server_seats_nobody_new_and_lets_the_match_in_play_finish() {
    use pong_domain::proto::Reject;
    use pong_domain::server::MatchPhase;

    let mut core = ServerCore::new(ServerConfig::default(), [3; 32]);
    let (w1, w2, _) = played(&mut core, 10);
    assert_eq!(core.phase_counts().of(MatchPhase::Running), 1);
    // A lobby waiting for a second player when the drain begins.
    core.handle_frame(SECOND * 5, PeerId(3), &join_frame("Cy", None));
    let waiting = welcome_of(&drain(&mut core));
    core.begin_drain();
    assert!(core.is_draining());

    core.handle_frame(SECOND * 5, PeerId(4), &join_frame("Dee", None));
    let out = drain(&mut core);
    assert!(
        out.iter().any(|(_, m)| *m == Some(ServerMsg::Rejected(Reject::ShuttingDown))),
        "a join during a drain is refused as shutting down: {out:?}"
    );
    assert_eq!(core.stats().joins_draining, 1);
    assert_eq!(core.phase_counts().in_play(), 1, "the running match plays on");
    assert_eq!(core.overview().len(), 2);
    // The match in play still takes its members' inputs.
    let ticks = core.stats().ticks;
    let run = InputRun::new(11, [Intent::Plus]);
    core.handle_frame(SECOND * 5, PeerId(1), &signed(&w1, 50, SessionMsg::Input(run)));
    core.handle_frame(SECOND * 5, PeerId(2), &signed(&w2, 50, SessionMsg::Input(run)));
    core.handle_timeout(SECOND * 5 + 20 * MS);
    assert!(core.stats().ticks > ticks, "the running match stopped ticking in the drain");
    assert_ne!(waiting.match_id, w1.match_id);
}

#[test]
fn the_overview_counts_phases_and_lists_members_with_their_lives() {
    use pong_domain::server::MatchPhase;

    let mut core = ServerCore::new(ServerConfig::default(), [4; 32]);
    assert_eq!(core.phase_counts().in_play(), 0);
    let (w1, _, _) = played(&mut core, 5);
    core.handle_frame(SECOND * 4, PeerId(3), &join_frame("Cy", None));
    drain(&mut core);
    let counts = core.phase_counts();
    assert_eq!((counts.of(MatchPhase::Running), counts.of(MatchPhase::Lobby)), (1, 1));
    let overview = core.overview();
    let running = overview.iter().find(|m| m.id == w1.match_id).unwrap();
    assert_eq!(running.phase, MatchPhase::Running);
    assert_eq!(running.tick, 5);
    let names: Vec<&str> = running.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Ada", "Bob"]);
    assert!(running.members.iter().all(|m| m.lives == ServerConfig::default().lives));
    assert_eq!(core.peer_count(), 3);
}

/// Issue 19, finding 2: a frame captured from a player and replayed on another link moves
/// nothing — the seat stays on its link, the player is not told `Replaced`, and the link
/// of the replay never gets the player's Welcome (or token).
#[test]
fn a_signed_frame_replayed_from_another_link_moves_no_session() {
    let mut core = ServerCore::new(ServerConfig::default(), [5; 32]);
    core.handle_frame(0, PeerId(1), &join_frame("Ada", None));
    let ada = welcome_of(&drain(&mut core));
    let captured = signed(&ada, 1, SessionMsg::Ping { id: 1, client_time: 0 });
    core.handle_frame(10, PeerId(1), &captured);
    drain(&mut core);
    // The attacker replays it, and a fresh one it cannot have signed… it only has copies.
    core.handle_frame(20, PeerId(9), &captured);
    let out = drain(&mut core);
    assert!(out.is_empty(), "the replay was answered: {out:?}");
    assert_eq!(core.stats().wrong_link, 1);
    // Its Join on that link gets a seat of its own, never Ada's.
    core.handle_frame(30, PeerId(9), &join_frame("Mallory", None));
    let theirs = welcome_of(&drain(&mut core));
    assert_ne!((theirs.session, theirs.token), (ada.session, ada.token));
    // Ada still speaks from her link, and nobody was told Replaced.
    core.handle_frame(40, PeerId(1), &signed(&ada, 2, SessionMsg::Ping { id: 2, client_time: 0 }));
    let out = drain(&mut core);
    assert!(
        out.iter().any(|(t, m)| *t == Transmit::Send(Dest::Peer(PeerId(1)))
            && matches!(m, Some(ServerMsg::Pong { id: 2, .. }))),
        "{out:?}"
    );
    assert_eq!(core.stats().replayed, 0);
}

/// Issue 19, finding 2: a resume does not make spent sequence numbers good again. The
/// challenge says where the sequence continues; a proof numbered below it is refused, and
/// frames captured before the resume are refused on the new link too.
#[test]
fn a_resume_continues_the_sequence_and_reopens_no_spent_number() {
    let mut core = ServerCore::new(ServerConfig::default(), [6; 32]);
    // A running match: Ada has used 1 (Ready) and 2..=6 (inputs).
    let (ada, _, _) = played(&mut core, 5);
    let t = 4 * SECOND;
    let mut captured = Vec::new();
    for seq in 7..=11 {
        let frame = signed(&ada, seq, SessionMsg::Ping { id: seq, client_time: 0 });
        core.handle_frame(t, PeerId(1), &frame);
        captured.push(frame);
    }
    drain(&mut core);
    core.handle_peer_gone(t + 1, PeerId(1));
    drain(&mut core);

    let mut buf = Vec::new();
    pong_domain::codec::encode_open(&OpenMsg::Resume { session: ada.session }, &mut buf).unwrap();
    core.handle_frame(t + 2, PeerId(3), &buf);
    let (nonce, next_seq) = drain(&mut core)
        .iter()
        .find_map(|(_, m)| match m {
            Some(ServerMsg::Challenge { nonce, next_seq, .. }) => Some((*nonce, *next_seq)),
            _ => None,
        })
        .unwrap();
    assert_eq!(next_seq, 12);
    // A proof with a spent number is refused…
    core.handle_frame(t + 3, PeerId(3), &signed(&ada, 12, SessionMsg::Prove { nonce: !nonce }));
    assert_eq!(core.stats().bad_proof, 1, "a proof of the wrong nonce is counted");
    core.handle_frame(t + 3, PeerId(3), &signed(&ada, 8, SessionMsg::Prove { nonce }));
    assert!(drain(&mut core).iter().all(|(_, m)| !matches!(m, Some(ServerMsg::Welcome(_)))));
    assert_eq!(core.stats().replayed, 1);
    // …one that continues the sequence takes the seat back on the new link.
    let out = resume(&mut core, t + 4, PeerId(3), &ada, next_seq);
    assert!(out.iter().any(|(_, m)| matches!(m, Some(ServerMsg::Welcome(_)))), "{out:?}");
    // Frames from before the resume, replayed on the proved link, are refused.
    for frame in &captured {
        core.handle_frame(t + 5, PeerId(3), frame);
    }
    assert!(
        drain(&mut core).iter().all(|(_, m)| !matches!(m, Some(ServerMsg::Pong { .. }))),
        "an old frame was answered after the resume"
    );
    assert_eq!(core.stats().replayed, 6);
}

#[test]
fn session_ids_are_not_a_counter() {
    let mut core = ServerCore::new(ServerConfig::default(), [7; 32]);
    let ids: Vec<u32> = (0..8)
        .map(|i| {
            core.handle_frame(i, PeerId(100 + i), &join_frame("P", None));
            welcome_of(&drain(&mut core)).session.0
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[1] != w[0].wrapping_add(1)), "{ids:?}");
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
}

/// Issue 19, finding 1: one link carries one session. A "holder" link that proves itself
/// for a second session lets go of the first (its lobby seat is freed), so a few long-lived
/// links cannot keep thousands of lobbies alive.
#[test]
fn a_link_carries_one_session_so_it_cannot_hold_many_seats() {
    let mut core = ServerCore::new(ServerConfig::default(), [8; 32]);
    let room = |r: &str| room_join_frame("Mal", r);
    core.handle_frame(0, PeerId(1), &room("one"));
    let first = welcome_of(&drain(&mut core));
    core.handle_frame(1, PeerId(2), &room("two"));
    let second = welcome_of(&drain(&mut core));
    resume(&mut core, 10, PeerId(9), &first, 2);
    resume(&mut core, 20, PeerId(9), &second, 2);
    let held: Vec<usize> = core.overview().iter().map(|m| m.members.len()).collect();
    assert_eq!(held.iter().sum::<usize>(), 1, "one link holds {held:?} seats");
    // The first session's seat is gone: its frames are refused, whatever link they use.
    core.handle_frame(
        30,
        PeerId(9),
        &signed(&first, 3, SessionMsg::Ping { id: 1, client_time: 0 }),
    );
    assert!(drain(&mut core).iter().all(|(_, m)| !matches!(m, Some(ServerMsg::Pong { .. }))));
}

/// Issue 19, finding 1: a lobby that does not fill closes after the lobby timeout, telling
/// its members, so held lobbies do not pile up; a match that started is not touched.
#[test]
fn a_lobby_that_does_not_fill_in_time_closes_and_says_so() {
    use pong_domain::proto::CloseReason;

    let config = ServerConfig { lobby_timeout: 60 * SECOND, ..ServerConfig::default() };
    let mut core = ServerCore::new(config, [9; 32]);
    let (running, _, _) = played(&mut core, 5);
    core.handle_frame(4 * SECOND, PeerId(3), &join_frame("Cy", Some(3)));
    let lonely = welcome_of(&drain(&mut core));
    // Cy keeps pinging: being alive is not enough to keep a lobby for ever.
    let mut now = 4 * SECOND;
    let mut seq = 0;
    let mut out = Vec::new();
    while now < 70 * SECOND && core.match_state(lonely.match_id).is_some() {
        seq += 1;
        core.handle_frame(
            now,
            PeerId(3),
            &signed(&lonely, seq, SessionMsg::Ping { id: seq, client_time: 0 }),
        );
        now += STEP;
        core.handle_timeout(now);
        out.extend(drain(&mut core));
    }
    assert!(core.match_state(lonely.match_id).is_none(), "the lobby is still open");
    assert!(now >= 64 * SECOND, "closed too early, at {now}");
    assert!(out.iter().any(|(t, m)| *t == Transmit::Send(Dest::Peer(PeerId(3)))
        && *m == Some(ServerMsg::Closed(CloseReason::LobbyExpired))));
    assert!(out.iter().any(|(t, _)| *t == Transmit::Disconnect(PeerId(3))));
    assert_eq!(core.stats().lobbies_expired, 1);
    // The started match (whose players went quiet) ends by its own rules, not as a lobby.
    assert!(!out.iter().any(|(t, m)| *t != Transmit::Send(Dest::Peer(PeerId(3)))
        && *m == Some(ServerMsg::Closed(CloseReason::LobbyExpired))));
    assert_ne!(running.match_id, lonely.match_id);
}
