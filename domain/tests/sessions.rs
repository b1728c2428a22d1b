//! Whole sessions through ServerCore + ClientCores on a virtual clock (see `pong_domain::testing`):
//! bots play real matches over a simulated network; the transcripts of what the server and
//! each client reported are recorded as insta snapshots. A transcript changes only when the
//! protocol's behaviour does, and the commit that changes one says why.

#![allow(clippy::unwrap_used)]

use pong_domain::PlayerId;
use pong_domain::bot::Bot;
use pong_domain::client::{ClientEvent, ClientPhase};
use pong_domain::server::ServerConfig;
use pong_domain::testing::{Latency, MS, SECOND, SimNet, player, short_matches};

fn finals(net: &SimNet) -> Vec<(u64, String)> {
    net.clients
        .iter()
        .map(|c| match c.core.phase() {
            ClientPhase::Over { result, final_hash } => {
                (*final_hash, format!("{:?}", result.standings))
            }
            other => panic!("not over: {other:?}"),
        })
        .collect()
}

#[test]
fn bots_play_a_match_to_the_end() {
    for players in 2..=4u8 {
        let mut net = SimNet::new(short_matches(players), players);
        for i in 0..players {
            let bot = Bot::new(PlayerId::ALL[0], 800, u64::from(i));
            net.add_client(
                player(&format!("bot{i}"), players),
                Some(bot),
                Latency::wan(30, 10),
                u64::from(i) * 100 * MS,
            );
        }
        net.run_until(net.now + 600 * SECOND, |n| n.all_finished());
        for c in &net.clients {
            eprintln!("phase {:?} events {}", c.core.phase(), c.events.len());
        }
        eprintln!("server {:?} at {}", net.server.stats(), (net.now - 1000 * SECOND) / SECOND);
        let f = finals(&net);
        assert!(f.windows(2).all(|w| w[0] == w[1]), "{f:?}");
        let logs: Vec<_> = net.clients.iter().map(|c| c.core.game_log().to_vec()).collect();
        assert!(logs.windows(2).all(|w| w[0] == w[1]));
        for c in &net.clients {
            assert_eq!(c.core.desyncs(), 0);
            assert!(c.events.iter().any(|(_, e)| matches!(e, ClientEvent::Started)));
        }
        eprintln!(
            "{players} players: over at {} s, {} log entries",
            (net.now - 1000 * SECOND) / SECOND,
            logs[0].len()
        );
    }
}

/// What happened, in order: the server's events (ticks and refusals summarised) and each
/// client's events (predictions left out), with times in ms from the start.
fn transcript(net: &SimNet, t0: u64) -> String {
    use pong_domain::journal::Record as R;
    use pong_domain::server::ServerEvent as S;
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut ticks = 0;
    let mut refused = 0;
    for (t, e) in &net.server_events {
        let (match_id, record) = match e {
            S::Match { match_id, record } => (match_id, record),
            S::Refused { .. } => {
                refused += 1;
                continue;
            }
            other => {
                lines.push((*t, format!("server: {other:?}")));
                continue;
            }
        };
        let text = match record {
            R::Tick { .. } => {
                ticks += 1;
                continue;
            }
            R::Over { result } => {
                let winner = result.winner.map_or("draw".to_owned(), |w| w.to_string());
                format!(
                    "over at tick {}, {winner} wins, hash {:016x}",
                    result.tick, result.final_hash.0
                )
            }
            R::Created { config, .. } => {
                format!("created for {} players, {} lives", config.players, config.lives)
            }
            R::Joined { player, name, session, .. } => {
                format!("seats {name} as {player} (session {})", session.0)
            }
            R::Left { player } => format!("frees {player}'s seat"),
            R::CountdownStarted => "all ready, countdown to the first tick".to_owned(),
            R::Resuming => "all back, countdown to the next tick".to_owned(),
            R::Paused { tick } => format!("paused after tick {tick}"),
            other => format!("{other:?}"),
        };
        lines.push((*t, format!("server: {match_id} {text}")));
    }
    for (i, c) in net.clients.iter().enumerate() {
        for (t, e) in &c.events {
            let text = match e {
                ClientEvent::Predicted(_) => continue,
                ClientEvent::Welcomed { match_id, player, resumed, .. } => format!(
                    "welcomed into {match_id} as {player}{}",
                    if *resumed { " (resumed)" } else { "" }
                ),
                ClientEvent::LobbyChanged(l) => {
                    let who: Vec<String> = l
                        .members
                        .iter()
                        .map(|m| format!("{}{}", m.name, if m.ready { "*" } else { "" }))
                        .collect();
                    format!("lobby [{}] of {}", who.join(", "), l.seats)
                }
                ClientEvent::Countdown { tick, .. } => format!("countdown to tick {tick}"),
                ClientEvent::Game { tick, event } => format!("tick {tick}: {event:?}"),
                ClientEvent::Paused { lost } => {
                    let who: Vec<String> = lost.iter().map(|(p, _)| p.to_string()).collect();
                    format!("paused, waiting for [{}]", who.join(", "))
                }
                ClientEvent::MatchOver { result, final_hash } => {
                    format!(
                        "match over at tick {}, own hash {}",
                        result.tick,
                        if *final_hash == result.final_hash.0 { "agrees" } else { "DIFFERS" }
                    )
                }
                other => format!("{other:?}"),
            };
            lines.push((*t, format!("client {i}: {text}")));
        }
    }
    lines.sort_by_key(|(t, _)| *t);
    let mut out: Vec<String> =
        lines.into_iter().map(|(t, l)| format!("{:>6} {l}", (t - t0) / 1000)).collect();
    out.push(format!("ticks simulated: {ticks}, frames refused: {refused}"));
    out.join("\n")
}

fn bots(net: &mut SimNet, players: u8, latency: Latency, stagger: u64) {
    for i in 0..players {
        let bot = Bot::new(PlayerId::ALL[0], 800, u64::from(i));
        net.add_client(
            player(&format!("bot{i}"), players),
            Some(bot),
            latency,
            u64::from(i) * stagger,
        );
    }
}

#[test]
fn session_two_players_start_to_finish() {
    let mut net = SimNet::new(short_matches(2), 31);
    let t0 = net.now;
    bots(&mut net, 2, Latency::wan(20, 5), 150 * MS);
    net.run_until(t0 + 3600 * SECOND, |n| n.all_finished());
    insta::assert_snapshot!(transcript(&net, t0));
}

#[test]
fn session_a_cut_link_pauses_and_the_player_comes_back() {
    let mut net = SimNet::new(ServerConfig { lives: 3, ..short_matches(3) }, 21);
    let t0 = net.now;
    bots(&mut net, 3, Latency::wan(50, 20), 0);
    net.run_until(t0 + 5 * SECOND, |_| false);
    net.clients[2].cut = true;
    net.run_until(t0 + 8 * SECOND, |_| false);
    net.clients[2].cut = false;
    net.run_until(t0 + 3600 * SECOND, |n| n.all_finished());
    assert!(net.all_finished());
    assert!(net.clients.iter().all(|c| c.core.pauses() == 1));
    insta::assert_snapshot!(transcript(&net, t0));
}

#[test]
fn session_a_player_leaves_the_lobby_and_another_takes_the_seat() {
    let mut net = SimNet::new(short_matches(2), 41);
    let t0 = net.now;
    net.add_client(player("Ada", 2), Some(Bot::new(PlayerId::ALL[0], 800, 1)), Latency::LAN, 0);
    // Bob joins but leaves after 100 ms, before his clock is synced enough to be ready.
    net.add_client(player("Bob", 2), None, Latency::LAN, 20 * MS);
    net.run_until(t0 + 120 * MS, |_| false);
    net.clients[1].core.leave();
    net.flush();
    net.run_until(t0 + 2 * SECOND, |_| false);
    net.add_client(player("Cy", 2), Some(Bot::new(PlayerId::ALL[0], 800, 3)), Latency::LAN, 0);
    net.run_until(t0 + 3600 * SECOND, |n| {
        n.clients[0].core.is_finished() && n.clients[2].core.is_finished()
    });
    assert_eq!(net.clients[2].core.match_id(), net.clients[0].core.match_id());
    insta::assert_snapshot!(transcript(&net, t0));
}

#[test]
fn session_after_the_grace_period_the_silent_side_is_a_wall() {
    let mut net = SimNet::new(ServerConfig { lives: 3, grace: 4 * SECOND, ..short_matches(3) }, 51);
    let t0 = net.now;
    bots(&mut net, 3, Latency::wan(30, 10), 0);
    net.run_until(t0 + 5 * SECOND, |_| false);
    net.clients[1].dead = true;
    net.run_until(t0 + 3600 * SECOND, |n| n.all_finished());
    let over: Vec<_> =
        net.clients.iter().filter(|c| !c.dead).map(|c| c.core.phase().clone()).collect();
    assert!(over.iter().all(|p| matches!(p, ClientPhase::Over { .. })));
    insta::assert_snapshot!(transcript(&net, t0));
}

/// Issue 19, finding 2: a client restarted from its session file starts its sequence again
/// at 1; the server's challenge tells it where the session's sequence continues, so its
/// proof is accepted (no spent number is reopened) and it plays the match to the end.
#[test]
fn a_client_restarted_from_its_session_file_continues_the_sessions_sequence() {
    let mut net = SimNet::new(short_matches(2), 51);
    let t0 = net.now;
    bots(&mut net, 2, Latency::LAN, 0);
    net.run_until(t0 + 60 * SECOND, |n| n.server.stats().ticks > 100);
    assert!(net.server.stats().ticks > 100, "the match is not running yet");
    let credentials = net.clients[0].core.session().unwrap();
    net.drop_link(0);
    net.clients[0].dead = true;
    let mut config = player("bot0", 2);
    config.resume = Some(credentials);
    net.add_client(config, Some(Bot::new(PlayerId::ALL[0], 800, 0)), Latency::LAN, 100 * MS);
    net.run_until(t0 + 3600 * SECOND, |n| {
        n.clients[1].core.is_finished() && n.clients[2].core.is_finished()
    });
    assert_eq!(net.clients[2].core.session(), Some(credentials));
    let hashes: Vec<_> = [1, 2]
        .iter()
        .map(|&i| match net.clients[i].core.phase() {
            ClientPhase::Over { final_hash, .. } => *final_hash,
            other => panic!("client {i} is not over: {other:?}"),
        })
        .collect();
    assert_eq!(hashes[0], hashes[1]);
    assert_eq!(net.server.stats().replayed, 0);
}
