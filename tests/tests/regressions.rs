//! One named regression test for each fault of the Python prototype this project replaces,
//! run through the real drivers over the in-memory transport with the link conditioner,
//! on virtual time (`start_paused`), so minutes of play take a moment and runs repeat.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pong_domain::client::{ClientCore, ClientEvent, ClientPhase};
use pong_domain::journal::Record;
use pong_domain::proto::{MatchId, MatchOver};
use pong_domain::server::{ServerConfig, ServerCore, ServerEvent};
use pong_domain::sim::{Event, Intent, OutReason};
use pong_domain::testing::{join_frame, player, short_matches};
use pong_link_conditioner::{ConditionedConnector, LinkConditions, LinkControl};
use pong_ports::Connector;
use pong_runtime::bot::BotController;
use pong_runtime::client::{Controller, ReconnectPolicy, play};
use pong_runtime::local::LocalServer;
use tokio::time::Instant;

/// Logs go to the test's captured output (shown when a test fails); `RUST_LOG` filters.
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A bot that also writes down what it saw and when.
struct Recorder {
    bot: BotController,
    started: Vec<Instant>,
    paused: Vec<(Instant, Vec<u8>)>,
    welcomed: Vec<bool>,
}

impl Recorder {
    fn new(seed: u64) -> Self {
        Recorder {
            bot: BotController::new(0.7, seed),
            started: Vec::new(),
            paused: Vec::new(),
            welcomed: Vec::new(),
        }
    }
}

impl Controller for Recorder {
    fn steer(&mut self, core: &ClientCore) -> Option<Intent> {
        self.bot.steer(core)
    }

    fn on_event(&mut self, _core: &ClientCore, event: &ClientEvent) {
        match event {
            ClientEvent::Started => self.started.push(Instant::now()),
            ClientEvent::Paused { lost } => {
                self.paused.push((Instant::now(), lost.iter().map(|(p, _)| p.get()).collect()))
            }
            ClientEvent::Welcomed { resumed, .. } => self.welcomed.push(*resumed),
            _ => {}
        }
    }
}

struct Played {
    core: ClientCore,
    rec: Recorder,
}

impl Played {
    fn result(&self) -> (&MatchOver, u64) {
        match self.core.phase() {
            ClientPhase::Over { result, final_hash } => (result, *final_hash),
            other => panic!("match not over: {other:?}"),
        }
    }
}

struct Server {
    local: LocalServer,
    events: Arc<Mutex<Vec<(Instant, ServerEvent)>>>,
}

fn start_server(config: ServerConfig, seed: u8) -> Server {
    logs();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let local = LocalServer::start(ServerCore::new(config, [seed; 32]), move |e| {
        sink.lock().unwrap().push((Instant::now(), e.clone()));
    })
    .unwrap();
    Server { local, events }
}

impl Server {
    fn results(&self) -> BTreeMap<MatchId, MatchOver> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                ServerEvent::Match { match_id, record: Record::Over { result } } => {
                    Some((*match_id, result.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

fn client(name: &str, players: u8) -> ClientCore {
    ClientCore::new(player(name, players))
}

fn wan(seed: u64) -> LinkConditions {
    LinkConditions::wan(Duration::from_millis(50), Duration::from_millis(20)).with_seed(seed)
}

async fn spawn_player(
    name: String,
    players: u8,
    connector: Arc<dyn Connector>,
    seed: u64,
    after: Duration,
) -> tokio::task::JoinHandle<Played> {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let mut rec = Recorder::new(seed);
        let (_, core) = play(
            client(&name, players),
            connector,
            &mut rec,
            ReconnectPolicy::default(),
            std::future::pending(),
        )
        .await
        .unwrap();
        Played { core, rec }
    })
}

fn conditioned(server: &Server, conditions: LinkConditions) -> (Arc<dyn Connector>, LinkControl) {
    let c = ConditionedConnector::new(server.local.connector(), conditions);
    let control = c.control();
    (Arc::new(c), control)
}

/// Three players `p0`..`p2` of a 3-player match, each over a WAN link of its own (seeds
/// `seed`, `seed + 1`, `seed + 2`), with the controls of those links.
async fn three_on_wan(
    server: &Server,
    seed: u64,
) -> (Vec<tokio::task::JoinHandle<Played>>, Vec<LinkControl>) {
    let mut tasks = Vec::new();
    let mut controls = Vec::new();
    for i in 0..3u64 {
        let (connector, control) = conditioned(server, wan(seed + i));
        controls.push(control);
        tasks.push(spawn_player(format!("p{i}"), 3, connector, i, Duration::ZERO).await);
    }
    (tasks, controls)
}

/// Every client's view of the end equals the server's.
fn assert_agree(server: &Server, played: &[Played]) {
    let results = server.results();
    for p in played {
        let (result, own_hash) = p.result();
        let id = p.core.match_id().unwrap();
        let truth = &results[&id];
        assert_eq!(result, truth, "{} saw another result", p.core.player().unwrap());
        assert_eq!(own_hash, truth.final_hash.0, "final hash differs");
        assert_eq!(p.core.desyncs(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn the_match_starts_on_every_host_within_one_tick() {
    for seed in 0..5u64 {
        let server = start_server(short_matches(4), seed as u8);
        let mut tasks = Vec::new();
        for i in 0..4u64 {
            let (connector, _) = conditioned(&server, wan(seed * 10 + i));
            tasks.push(
                spawn_player(format!("p{i}"), 4, connector, i, Duration::from_millis(i * 37)).await,
            );
        }
        let mut played = Vec::new();
        for t in tasks {
            played.push(t.await.unwrap());
        }
        let starts: Vec<Instant> = played.iter().map(|p| p.rec.started[0]).collect();
        let first = *starts.iter().min().unwrap();
        let last = *starts.iter().max().unwrap();
        let tick = Duration::from_micros(1_000_000 / 60);
        assert!(last - first <= tick, "seed {seed}: starts spread over {:?}", last - first);
        assert_agree(&server, &played);
    }
}

#[tokio::test(start_paused = true)]
async fn no_member_misses_any_message() {
    // Jitter reorders frames; some are duplicated; inputs are repeated until acknowledged
    // and missing ticks are asked for again, so every host still sees every event.
    let server = start_server(short_matches(3), 7);
    let mut tasks = Vec::new();
    for i in 0..3u64 {
        let conditions =
            wan(100 + i).with_duplicate(0.05).with_reorder(0.05, Duration::from_millis(30));
        let (connector, _) = conditioned(&server, conditions);
        tasks.push(spawn_player(format!("p{i}"), 3, connector, i, Duration::ZERO).await);
    }
    let mut played = Vec::new();
    for t in tasks {
        played.push(t.await.unwrap());
    }
    let logs: Vec<&[(u32, Event)]> = played.iter().map(|p| p.core.game_log()).collect();
    assert!(logs[0].len() >= 4, "a real match has lives lost and players out");
    assert!(logs.windows(2).all(|w| w[0] == w[1]), "event logs differ");
    assert_agree(&server, &played);
}

#[tokio::test(start_paused = true)]
async fn a_player_who_joins_and_leaves_frees_the_seat() {
    let server = start_server(short_matches(2), 9);
    let connector = server.local.connector();
    // Bob waits in a 2-player lobby; Ada joins it, then leaves before the start.
    let bob = spawn_player("Bob".into(), 2, connector.clone(), 2, Duration::ZERO).await;
    let (leave_tx, leave_rx) = tokio::sync::oneshot::channel::<()>();
    let ada = {
        let connector = connector.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // A player on a slow link (400 ms each way): she leaves before her Ready (which
            // waits for three clock samples) reaches the server.
            let slow = ConditionedConnector::new(
                connector,
                LinkConditions::wan(Duration::from_millis(400), Duration::ZERO),
            );
            let mut rec = Recorder::new(1);
            let cancel = async move {
                let _ = leave_rx.await;
            };
            play(client("Ada", 2), Arc::new(slow), &mut rec, ReconnectPolicy::default(), cancel)
                .await
                .unwrap()
                .1
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    leave_tx.send(()).unwrap();
    let ada = ada.await.unwrap();
    assert_eq!(ada.phase(), &ClientPhase::Left);
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Cy takes the seat Ada freed: the match fills, starts and ends.
    let cy = spawn_player("Cy".into(), 2, connector, 3, Duration::ZERO).await;
    let played = vec![bob.await.unwrap(), cy.await.unwrap()];
    assert_eq!(ada.match_id(), played[0].core.match_id(), "Ada had joined Bob's match");
    assert_eq!(played[1].core.match_id(), played[0].core.match_id(), "Cy took the seat Ada freed");
    assert_eq!(played[1].core.player(), ada.player());
    let events = server.events.lock().unwrap();
    assert!(events.iter().any(|(_, e)| matches!(e.record(), Some((_, Record::Left { .. })))));
    assert_eq!(
        events.iter().filter(|(_, e)| matches!(e.record(), Some((_, Record::Started)))).count(),
        1
    );
    drop(events);
    assert_agree(&server, &played);
}

#[tokio::test(start_paused = true)]
async fn a_silent_member_is_reported_and_can_come_back() {
    let config = ServerConfig { lives: 5, ..short_matches(3) };
    let lost_timeout = Duration::from_micros(config.lost_timeout);
    let server = start_server(config, 11);
    let (tasks, controls) = three_on_wan(&server, 200).await;
    // Two seconds into the game (after the 3 s countdown), the third player's link goes
    // silent for three seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cut_at = Instant::now();
    controls[2].cut();
    tokio::time::sleep(Duration::from_secs(3)).await;
    controls[2].restore();
    let mut played = Vec::new();
    for t in tasks {
        played.push(t.await.unwrap());
    }
    let lost_seat = played[2].core.player().unwrap().get();
    for p in &played[..2] {
        let (at, who) = p.rec.paused.first().expect("the others saw a pause");
        assert_eq!(who, &vec![lost_seat], "the pause names the silent player");
        assert!(
            *at - cut_at <= lost_timeout + Duration::from_secs(1),
            "reported after {:?}",
            *at - cut_at
        );
    }
    assert!(played[2].rec.welcomed.contains(&true), "the silent player came back with its token");
    assert_agree(&server, &played);
    // Nobody forfeited: the player came back within the grace period.
    let (result, _) = played[0].result();
    assert!(result.standings.iter().all(|s| s.reason != Some(OutReason::Forfeit)));
}

#[tokio::test(start_paused = true)]
async fn after_the_grace_period_a_silent_side_becomes_a_wall() {
    let config = ServerConfig { grace: 5_000_000, lives: 5, ..short_matches(3) };
    let server = start_server(config, 12);
    let (mut tasks, controls) = three_on_wan(&server, 300).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    controls[2].cut();
    let mut played = Vec::new();
    for t in tasks.drain(..2) {
        played.push(t.await.unwrap());
    }
    let gone = tasks.pop().unwrap();
    gone.abort();
    let (result, _) = played[0].result();
    let forfeits: Vec<_> =
        result.standings.iter().filter(|s| s.reason == Some(OutReason::Forfeit)).collect();
    assert_eq!(forfeits.len(), 1, "{result:?}");
    let silent = result
        .standings
        .iter()
        .find(|s| s.reason == Some(OutReason::Forfeit))
        .unwrap()
        .player
        .get();
    for p in &played {
        assert_eq!(
            p.core.pauses(),
            1,
            "one pause, then the match went on without the silent player"
        );
        assert_eq!(p.rec.paused[0].1, vec![silent]);
    }
    let logs: Vec<_> = played.iter().map(|p| p.core.game_log()).collect();
    assert_eq!(logs[0], logs[1]);
    assert!(
        logs[0]
            .iter()
            .any(|(_, e)| matches!(e, Event::PlayerOut { reason: OutReason::Forfeit, .. }))
    );
    assert_agree(&server, &played);
}

#[tokio::test(start_paused = true)]
async fn the_ball_is_the_servers() {
    // 200 matches at once on one server, every link 50 ± 20 ms each way: every client's
    // final standings and hash equal the server's.
    let server = start_server(ServerConfig { lives: 1, ..short_matches(2) }, 13);
    let mut tasks = Vec::new();
    let sizes = [2u8, 3, 4];
    let mut seed = 0u64;
    for m in 0..200usize {
        let players = sizes[m % 3];
        for i in 0..players {
            seed += 1;
            let (connector, _) = conditioned(&server, wan(seed));
            let name = format!("m{m}p{i}");
            tasks.push(
                spawn_player(name, players, connector, seed, Duration::from_millis(m as u64 * 5))
                    .await,
            );
        }
    }
    let mut played = Vec::new();
    for t in tasks {
        played.push(t.await.unwrap());
    }
    let results = server.results();
    assert_eq!(results.len(), 200);
    assert_agree(&server, &played);
}

#[tokio::test(start_paused = true)]
async fn start_order_of_clients_does_not_matter() {
    // Clients start before the server exists and in every order; they wait for it.
    for (round, order) in [[0u64, 1, 2], [2, 0, 1], [1, 2, 0]].into_iter().enumerate() {
        let hub = pong_transport_memory::MemoryHub::default();
        let connector: Arc<dyn Connector> = Arc::new(hub.connector());
        let mut tasks = Vec::new();
        for (k, &i) in order.iter().enumerate() {
            tasks.push(
                spawn_player(
                    format!("p{i}"),
                    3,
                    connector.clone(),
                    i,
                    Duration::from_millis(k as u64 * 700),
                )
                .await,
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The server comes up after the first clients are already trying.
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let transport = Box::new(hub.server().unwrap());
        let core = ServerCore::new(short_matches(3), [round as u8; 32]);
        let server = tokio::spawn(pong_runtime::server::serve(
            core,
            transport,
            std::future::pending(),
            move |e| {
                sink.lock().unwrap().push(e.clone());
            },
        ));
        let mut played = Vec::new();
        for t in tasks {
            played.push(t.await.unwrap());
        }
        let hashes: Vec<u64> = played.iter().map(|p| p.result().1).collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "round {round}");
        server.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn forged_inputs_wrong_tokens_and_garbage_change_nothing() {
    use pong_domain::codec;
    use pong_domain::proto::{InputRun, SessionMsg, Signed, Token};

    let server = start_server(short_matches(2), 14);
    let connector = server.local.connector();
    let a = spawn_player("A".into(), 2, connector.clone(), 1, Duration::ZERO).await;
    let b = spawn_player("B".into(), 2, connector.clone(), 2, Duration::from_millis(100)).await;
    // The attacker has a seat of its own in another match and knows the victims' session ids.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let victims: Vec<u32> = server
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, e)| match e.record() {
            Some((_, pong_domain::journal::Record::Joined { session, .. })) => Some(session.0),
            _ => None,
        })
        .collect();
    assert_eq!(victims.len(), 2);
    let mut link = connector.connect().await.unwrap();
    link.send(join_frame("Mallory", Some(4)).into()).unwrap();
    let mut buf = Vec::new();
    let mut sent = 0;
    for round in 0..600u32 {
        // Inputs for both victims' sessions, signed with guessed tokens. The server drops a
        // link that keeps doing this; the attacker just connects again.
        for &session in &victims {
            let run = InputRun::new(round, [Intent::Plus; 8]);
            let header =
                Signed { session: pong_domain::proto::SessionId(session), seq: 1_000 + round };
            codec::encode_signed(
                header,
                &SessionMsg::Input(run),
                &Token([round as u8; 16]),
                &mut buf,
            )
            .unwrap();
            if link.send(buf.clone().into()).is_err() {
                link = connector.connect().await.unwrap();
            } else {
                sent += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Then a stream of garbage on another link.
    let garbage = connector.connect().await.unwrap();
    for i in 0..200u32 {
        let junk: Vec<u8> = (0..(i % 50)).map(|k| (k * 31 + i) as u8).collect();
        if garbage.send(junk.into()).is_err() {
            break;
        }
    }
    let played = vec![a.await.unwrap(), b.await.unwrap()];
    assert_agree(&server, &played);
    let events = server.events.lock().unwrap();
    let forged = events
        .iter()
        .filter(|(_, e)| {
            matches!(e, ServerEvent::Refused { why: pong_domain::server::Refusal::Forged(_), .. })
        })
        .count();
    assert!(forged >= sent * 9 / 10, "forged inputs were refused ({forged} of {sent})");
    assert!(
        events.iter().any(|(_, e)| matches!(e, ServerEvent::PeerDropped { .. })),
        "the garbage link was dropped"
    );
    // Every intent the server applied for the victims is one they sent: check that the
    // server's record of the match replays to the same result.
    let id = played[0].core.match_id().unwrap();
    let ticks: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e.record() {
            Some((m, Record::Tick { input, hash, .. })) if m == id => Some((*input, *hash)),
            _ => None,
        })
        .collect();
    let config = events
        .iter()
        .find_map(|(_, e)| match e.record() {
            Some((m, Record::Created { config, .. })) if m == id => Some(*config),
            _ => None,
        })
        .unwrap();
    let rules = pong_domain::Rules::new(config);
    let mut state = pong_domain::MatchState::new(&rules);
    for (input, hash) in ticks {
        state.step(&rules, &input);
        assert_eq!(state.hash(), hash);
    }
    assert_eq!(state.hash(), played[0].result().1);
}
