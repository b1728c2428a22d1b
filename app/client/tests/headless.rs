//! The client plugins without a window: `MinimalPlugins` + `StatesPlugin` + `InputPlugin`,
//! against a real in-process server and bots over the memory transport.
//!
//! Bevy's own time is manual (one 1/60 s step per `app.update()`, so `FixedUpdate` runs a
//! known number of times per update); the server and the client core run on wall time as
//! they do in the game. Every wait is a bounded loop of updates with a generous deadline,
//! so a loaded machine makes a test slower, not flaky.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bevy::input::InputPlugin;
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy::state::state::StateTransitionEvent;
use bevy::time::TimeUpdateStrategy;
use pong_client::game::arena::{Ball, Paddle, ball_centre, paddle_box, to_world};
use pong_client::game::overlay::{NetOverlay, OverlayBar, OverlayPanel, OverlayText};
use pong_client::game::screens::connecting::ConnectLine;
use pong_client::game::screens::countdown::CountdownText;
use pong_client::game::screens::lobby::{LobbyStatus, SeatCard};
use pong_client::game::screens::over::ResultPanel;
use pong_client::game::screens::paused::{PauseOverlay, PauseText};
use pong_client::{
    LinkStatus, NetPhase, PongClient, PongGamePlugin, PongNetPlugin, Roster, WINDOW_RECONNECT,
};
use pong_domain::client::{ClientConfig, ClientCore};
use pong_domain::proto::Name;
use pong_domain::rules::PlayerId;
use pong_domain::server::{ServerConfig, ServerCore};
use pong_domain::sim::Intent;
use pong_ports::{ClientTransport, Connector, TransportError};
use pong_runtime::bot::BotController;
use pong_runtime::client::{ReconnectPolicy, play};
use pong_runtime::local::LocalServer;

/// Every phase the app entered, in order.
#[derive(Resource, Default)]
struct Visited(Vec<NetPhase>);

fn record(mut events: MessageReader<StateTransitionEvent<NetPhase>>, mut visited: ResMut<Visited>) {
    for e in events.read() {
        if let Some(to) = e.entered
            && visited.0.last() != Some(&to)
        {
            visited.0.push(to);
        }
    }
}

struct Harness {
    app: App,
    rt: tokio::runtime::Runtime,
    server: Option<LocalServer>,
    connector: Arc<dyn Connector>,
}

fn server_config(players: u8, lives: u8, tick_hz: u16) -> ServerConfig {
    ServerConfig {
        default_players: players,
        lives,
        tick_hz,
        countdown: 600_000,
        lost_timeout: 400_000,
        grace: 30_000_000,
        ..ServerConfig::default()
    }
}

fn app_with(connector: Arc<dyn Connector>, players: u8, policy: ReconnectPolicy) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin, InputPlugin))
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_micros(16_667)))
        .init_resource::<Visited>();
    let mut config = ClientConfig::new(Name::new("Tester").unwrap());
    config.players = Some(players);
    app.add_plugins(PongNetPlugin::new(connector, config).with_policy(policy))
        .add_plugins(PongGamePlugin);
    app.add_systems(Update, record);
    app
}

impl Harness {
    fn new(config: ServerConfig) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let players = config.default_players;
        let server = {
            let _guard = rt.enter();
            LocalServer::start(ServerCore::new(config, [7; 32]), |_| {}).unwrap()
        };
        let connector = server.connector();
        let app = app_with(connector.clone(), players, WINDOW_RECONNECT);
        Harness { app, rt, server: Some(server), connector }
    }

    /// Starts a bot client in its own task; aborting the task drops its link.
    fn bot(&self, name: &str, players: u8, seed: u64) -> tokio::task::JoinHandle<()> {
        let mut config = ClientConfig::new(Name::new(name).unwrap());
        config.players = Some(players);
        let connector = self.connector.clone();
        self.rt.spawn(async move {
            let mut bot = BotController::new(0.9, seed);
            let _ = play(
                ClientCore::new(config),
                connector,
                &mut bot,
                ReconnectPolicy::default(),
                std::future::pending(),
            )
            .await;
        })
    }

    fn phase(&self) -> NetPhase {
        *self.app.world().resource::<State<NetPhase>>().get()
    }

    fn visited(&self) -> Vec<NetPhase> {
        self.app.world().resource::<Visited>().0.clone()
    }

    /// Updates until `done` holds; panics after `limit` of wall time.
    fn run_until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&mut App) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            self.app.update();
            if done(&mut self.app) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: phase {:?}, visited {:?}, core {:?}",
                self.phase(),
                self.visited(),
                self.app.world().resource::<PongClient>().core().phase(),
            );
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    fn run_until_phase(&mut self, phase: NetPhase, limit: Duration) {
        self.run_until(&format!("{phase:?}"), limit, |app| {
            *app.world().resource::<State<NetPhase>>().get() == phase
        });
    }

    fn count<C: Component>(&mut self) -> usize {
        let world = self.app.world_mut();
        world.query_filtered::<(), With<C>>().iter(world).count()
    }

    fn text_of<C: Component>(&mut self) -> String {
        let world = self.app.world_mut();
        world
            .query_filtered::<&Text, With<C>>()
            .iter(world)
            .map(|t| t.0.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn own_paddle(&mut self) -> (PlayerId, Vec3) {
        let me = self.app.world().resource::<PongClient>().player().unwrap();
        let world = self.app.world_mut();
        let t = world
            .query::<(&Paddle, &Transform)>()
            .iter(world)
            .find(|(p, _)| p.0 == me)
            .map(|(_, t)| t.translation)
            .unwrap();
        (me, t)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), server.stop()).await
            });
        }
    }
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn the_app_walks_from_connecting_to_match_over() {
    let mut h = Harness::new(server_config(2, 1, 240));
    assert_eq!(h.phase(), NetPhase::Connecting);
    h.run_until_phase(NetPhase::Lobby, LONG);
    // Alone in a two-seat match: the lobby says who it waits for.
    assert_eq!(h.count::<SeatCard>(), 2);
    h.run_until("the lobby text", LONG, |_| true);
    assert_eq!(h.text_of::<LobbyStatus>(), "Waiting for 1 more player");
    let _bot = h.bot("Robo", 2, 1);
    h.run_until_phase(NetPhase::Countdown, LONG);
    assert_eq!(h.count::<CountdownText>(), 1);
    assert_eq!(h.count::<Paddle>(), 2);
    assert_eq!(h.count::<SeatCard>(), 0, "the lobby is gone");
    h.run_until_phase(NetPhase::Playing, LONG);
    assert_eq!(h.count::<CountdownText>(), 0, "the countdown is gone");
    h.run_until_phase(NetPhase::Over, LONG);
    assert_eq!(h.count::<ResultPanel>(), 1);
    let visited = h.visited();
    assert_eq!(
        visited,
        vec![
            NetPhase::Connecting,
            NetPhase::Lobby,
            NetPhase::Countdown,
            NetPhase::Playing,
            NetPhase::Over
        ],
        "phases in order"
    );
    let roster = h.app.world().resource::<Roster>();
    let result = roster.result.clone().unwrap();
    assert_eq!(result.standings.len(), 2);
    assert!(roster.names.iter().flatten().any(|n| n == "Robo"));
    let client = h.app.world().resource::<PongClient>();
    assert_eq!(client.core().desyncs(), 0);
}

#[test]
fn paddles_and_ball_follow_the_snapshots() {
    let mut h = Harness::new(server_config(2, 5, 60));
    h.run_until_phase(NetPhase::Lobby, LONG);
    let _bot = h.bot("Robo", 2, 2);
    h.run_until_phase(NetPhase::Playing, LONG);
    let me = h.app.world().resource::<PongClient>().player().unwrap();
    let other = PlayerId::ALL[1 - me.index()];
    let (mut ball_moved, mut paddle_moved) = (false, false);
    let mut last: Option<(Vec3, Vec3)> = None;
    let mut checked = 0;
    let (mut flying, mut near) = (0u32, 0u32);
    h.run_until("the ball and the bot's paddle to move on screen", LONG, |app| {
        track_the_ball(app);
        let client = app.world().resource::<PongClient>();
        let (Some(rules), Some(conf)) =
            (client.rules().cloned(), client.core().confirmed().copied())
        else {
            return false;
        };
        if conf.is_over() {
            return true;
        }
        let world = app.world_mut();
        let paddle = world
            .query::<(&Paddle, &Transform)>()
            .iter(world)
            .find(|(p, _)| p.0 == other)
            .map(|(_, t)| t.translation)
            .unwrap();
        let ball = world
            .query_filtered::<&Transform, With<Ball>>()
            .iter(world)
            .next()
            .unwrap()
            .translation;
        // The other paddle is drawn between the last two confirmed states: within a
        // couple of paddle steps of the newest one.
        let (want, _) = paddle_box(&rules, other.side(), conf.paddles[other.index()] as f32);
        let step = rules.paddle_speed as f32 / 16.0;
        assert!(
            (paddle.truncate() - want).length() <= 2.0 * step + 0.01,
            "paddle {paddle} vs confirmed {want}"
        );
        // The ball is predicted a few ticks ahead of the confirmed one, never far off.
        let (bx, by) = conf.ball_pos(&rules);
        let confirmed_ball = ball_centre(&rules, (bx as f32, by as f32));
        let lead = client_lead(world) as f32 + 4.0;
        let reach = lead * rules.ball_speed_max as f32 / 16.0 + 4.0 * rules.ball_size as f32 / 16.0;
        // Both in flight (the prediction serves and scores a few ticks early): then the
        // drawn ball is at most the prediction's lead (plus the smoothing of a correction)
        // away from the confirmed one.
        let predicted_moving =
            matches!(client_predicted_ball(world), Some(pong_domain::sim::Ball::Moving { .. }));
        if predicted_moving && matches!(conf.ball, pong_domain::sim::Ball::Moving { .. }) {
            flying += 1;
            if (ball.truncate() - confirmed_ball).length() <= reach {
                near += 1;
            }
        }
        assert!(
            to_world(&rules, 0.0, 0.0).x < ball.x && ball.x < -to_world(&rules, 0.0, 0.0).x,
            "ball inside the arena"
        );
        if let Some((lp, lb)) = last {
            paddle_moved |= lp != paddle;
            ball_moved |= lb != ball;
        }
        last = Some((paddle, ball));
        checked += 1;
        ball_moved && paddle_moved && checked > 120 && flying > 60
    });
    assert!(
        ball_moved && paddle_moved,
        "ball moved: {ball_moved}, paddle moved: {paddle_moved}, in {checked} frames ({flying} in flight)"
    );
    assert!(
        near * 10 >= flying * 9,
        "the drawn ball was near the confirmed one in only {near} of {flying} frames"
    );
}

/// Plays the test's own paddle a little (follows the ball), so rallies reach the bot.
fn track_the_ball(app: &mut App) {
    let mut client = app.world_mut().resource_mut::<PongClient>();
    let (Some(me), Some(rules), Some(state)) =
        (client.player(), client.rules().cloned(), client.core().predicted().copied())
    else {
        return;
    };
    let (bx, by) = state.ball_pos(&rules);
    let ball = if me.side().is_vertical() { by } else { bx } + rules.ball_size / 2;
    let paddle = state.paddles[me.index()] + rules.paddle_length / 2;
    let intent = if ball < paddle - rules.paddle_speed {
        Intent::Minus
    } else if ball > paddle + rules.paddle_speed {
        Intent::Plus
    } else {
        Intent::Stop
    };
    client.set_intent(intent);
}

fn client_predicted_ball(world: &World) -> Option<pong_domain::sim::Ball> {
    world.resource::<PongClient>().core().predicted().map(|s| s.ball)
}

/// How many ticks the client's prediction runs ahead of the server (rounded up).
fn client_lead(world: &World) -> u32 {
    let core = world.resource::<PongClient>().core();
    let hz = core.rules().map_or(60, |r| u64::from(r.config.tick_hz));
    u32::try_from((core.lead() * hz).div_ceil(1_000_000)).unwrap_or(u32::MAX)
}

#[test]
fn a_paused_match_shows_who_is_missing() {
    let mut h = Harness::new(server_config(3, 5, 60));
    h.run_until_phase(NetPhase::Lobby, LONG);
    let _stay = h.bot("Alice", 3, 3);
    let gone = h.bot("Bob", 3, 4);
    h.run_until_phase(NetPhase::Playing, LONG);
    gone.abort();
    h.run_until_phase(NetPhase::Paused, LONG);
    assert_eq!(h.count::<PauseOverlay>(), 1);
    h.run_until("the pause text", LONG, |_| true);
    let text = h.text_of::<PauseText>();
    assert!(text.starts_with("Bob lost connection - back in "), "{text}");
    assert!(text.ends_with(" s or out"), "{text}");
    let secs: u64 = text
        .trim_start_matches("Bob lost connection - back in ")
        .trim_end_matches(" s or out")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
}

#[test]
fn a_keypress_moves_the_own_paddle_in_the_same_frame() {
    let mut h = Harness::new(server_config(2, 5, 60));
    h.run_until_phase(NetPhase::Lobby, LONG);
    let _bot = h.bot("Robo", 2, 5);
    h.run_until_phase(NetPhase::Playing, LONG);
    // A few frames with no key held: the paddle stays where it is.
    let (me, before) = h.own_paddle();
    for _ in 0..5 {
        h.app.update();
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(h.own_paddle().1, before, "the paddle does not move by itself");
    let (key, along) = if me.side().is_vertical() {
        (KeyCode::KeyW, Vec3::Y)
    } else {
        (KeyCode::KeyA, Vec3::NEG_X)
    };
    h.app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(key);
    h.app.update();
    let after = h.own_paddle().1;
    assert!(
        (after - before).dot(along) > 0.0,
        "moved {before} -> {after} along {along} in the same frame"
    );
    assert_eq!(h.app.world().resource::<PongClient>().core().intent(), Intent::Minus);
    h.app.world_mut().resource_mut::<ButtonInput<KeyCode>>().release(key);
    h.app.update();
    assert_eq!(h.app.world().resource::<PongClient>().core().intent(), Intent::Stop);
}

#[test]
fn f3_shows_the_network_overlay_with_the_cores_figures() {
    let mut h = Harness::new(server_config(2, 5, 60));
    h.run_until_phase(NetPhase::Lobby, LONG);
    let _bot = h.bot("Robo", 2, 6);
    h.run_until_phase(NetPhase::Playing, LONG);
    let visible = |h: &mut Harness| {
        let world = h.app.world_mut();
        let v = world.query_filtered::<&Visibility, With<OverlayPanel>>().single(world).unwrap();
        *v != Visibility::Hidden
    };
    assert!(!visible(&mut h), "hidden until asked for");
    tap(&mut h.app, KeyCode::F3);
    h.app.update();
    assert!(visible(&mut h));
    release(&mut h.app, KeyCode::F3);
    // The figures are the core's, as rates: a sample taken in play shows the 60 ticks a
    // second coming down.
    h.run_until("an overlay sample taken in play", LONG, |app| {
        let meter = &app.world().resource::<NetOverlay>().meter;
        meter.history().len() >= 3 && meter.latest().is_some_and(|r| r.frames_in_per_s > 30.0)
    });
    h.app.update();
    let text = h.text_of::<OverlayText>();
    for label in ["round trip", "jitter", "lead", "corrections", "ticks resent", "down", "up"] {
        assert!(text.contains(label), "{label:?} missing from {text:?}");
    }
    let latest = *h.app.world().resource::<NetOverlay>().meter.latest().unwrap();
    assert!(latest.frames_out_per_s > 30.0, "inputs go up: {latest:?}");
    assert!(latest.rtt_ms.is_some(), "{latest:?}");
    let world = h.app.world_mut();
    let drawn = world
        .query::<(&OverlayBar, &Node)>()
        .iter(world)
        .filter(|(_, n)| n.height != Val::Px(0.0))
        .count();
    assert!(drawn >= 3, "the graph has bars for the samples: {drawn}");
    tap(&mut h.app, KeyCode::F3);
    h.app.update();
    assert!(!visible(&mut h), "F3 again hides it");
}

/// A key press as the window would deliver it (read in this update's `PreUpdate`).
fn tap(app: &mut App, key: KeyCode) {
    key_event(app, key, bevy::input::ButtonState::Pressed);
}

/// The key let go, so that the next press is a new one.
fn release(app: &mut App, key: KeyCode) {
    key_event(app, key, bevy::input::ButtonState::Released);
}

fn key_event(app: &mut App, key: KeyCode, state: bevy::input::ButtonState) {
    use bevy::input::keyboard::{Key, KeyboardInput, NativeKey};
    app.world_mut().write_message(KeyboardInput {
        key_code: key,
        logical_key: Key::Unidentified(NativeKey::Unidentified),
        state,
        text: None,
        repeat: false,
        window: Entity::PLACEHOLDER,
    });
}

/// A server that is not there.
struct Nowhere;

#[async_trait]
impl Connector for Nowhere {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        Err(TransportError::Connect {
            addr: "nowhere:1".into(),
            reason: "connection refused".into(),
        })
    }

    fn describe(&self) -> String {
        "nowhere:1".into()
    }
}

#[test]
fn a_missing_server_gives_a_clear_error_and_a_retry() {
    let policy = ReconnectPolicy {
        first_connect: Duration::from_millis(300),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        ..WINDOW_RECONNECT
    };
    let mut app = app_with(Arc::new(Nowhere), 2, policy);
    let deadline = Instant::now() + LONG;
    let gave_up = |app: &App| app.world().resource::<LinkStatus>().gave_up.clone();
    while gave_up(&app).is_none() {
        app.update();
        assert!(Instant::now() < deadline, "never gave up");
        std::thread::sleep(Duration::from_millis(5));
    }
    app.update();
    let msg = gave_up(&app).unwrap();
    assert!(msg.starts_with("cannot reach nowhere:1: connection refused (gave up after "), "{msg}");
    assert_eq!(*app.world().resource::<State<NetPhase>>().get(), NetPhase::Connecting);
    let world = app.world_mut();
    let line: Vec<String> = world
        .query_filtered::<&Text, With<ConnectLine>>()
        .iter(world)
        .map(|t| t.0.clone())
        .collect();
    assert_eq!(line, vec!["Cannot reach the server".to_owned()]);
    // R tries again: the error goes away while it dials.
    tap(&mut app, KeyCode::KeyR);
    app.update();
    assert_eq!(gave_up(&app), None);
    let deadline = Instant::now() + LONG;
    while gave_up(&app).is_none() {
        app.update();
        assert!(Instant::now() < deadline, "never gave up again");
        std::thread::sleep(Duration::from_millis(5));
    }
}
