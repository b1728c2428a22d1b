//! [`PongNetPlugin`]: the networking half of the client, reusable by any Bevy game that wants
//! to play Distributed Pong over any transport.
//!
//! It owns a [`ClientCore`] (in the [`PongClient`] resource) and a [`bridge`](crate::bridge)
//! to a link thread, and runs them in three system sets ([`NetSystems`]):
//! - [`NetSystems::Receive`] in `PreUpdate`: drains what the link reported into the core,
//!   publishes the core's events as [`PongEvent`] messages and moves [`NetPhase`] to match
//!   the core's phase;
//! - [`NetSystems::Step`] in `FixedUpdate`: lets the core's time pass (clock pings, retries,
//!   prediction steps) whenever its [`ClientCore::poll_timeout`] is due; the fixed timestep
//!   is set to the match's tick rate once it is known;
//! - [`NetSystems::Send`] in `PostUpdate`: hands the core's frames and commands to the link.
//!
//! Game systems therefore see, within one frame, the newest server data (after `Receive`),
//! can set the intent in `PreUpdate` or `Update` (it is predicted in the very frame), and
//! draw from [`PongClient::view`], which interpolates between fixed steps.
//!
//! The core runs on wall-clock microseconds ([`PongClient::now`]), not on Bevy's virtual
//! time: the server's clock is real, and the core's ping exchanges estimate its offset.

use std::sync::Arc;
use std::time::Instant;

use bevy::prelude::*;
use pong_domain::client::{
    ClientConfig, ClientCore, ClientEvent, ClientPhase, TransportRequest, View,
};
use pong_domain::rules::{PlayerId, Rules};
use pong_domain::sim::Intent;
use pong_ports::Connector;
use tracing::debug;

use crate::bridge::{Bridge, FromLink, ToLink, WINDOW_RECONNECT};
use pong_transport_support::ReconnectPolicy;

/// The networking plugin: connects through `connector`, joins with `config`, and keeps
/// [`PongClient`], [`NetPhase`], [`LinkStatus`] and [`Roster`] up to date. Needs
/// `StatesPlugin` (part of `DefaultPlugins`; add it to `MinimalPlugins`).
pub struct PongNetPlugin {
    connector: Arc<dyn Connector>,
    config: ClientConfig,
    policy: ReconnectPolicy,
}

impl PongNetPlugin {
    /// Plays as `config` says through `connector`, dialling as [`WINDOW_RECONNECT`] says.
    pub fn new(connector: Arc<dyn Connector>, config: ClientConfig) -> Self {
        PongNetPlugin { connector, config, policy: WINDOW_RECONNECT }
    }

    /// Dials as `policy` says.
    pub fn with_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// Where the match is, as screens see it: mirrors [`ClientCore::phase`], never the other
/// way round.
#[derive(States, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NetPhase {
    /// Dialling the server, or asking for a seat.
    #[default]
    Connecting,
    /// Seated; waiting for the match to fill and everyone to be ready.
    Lobby,
    /// The start (or a restart after a pause) is committed; counting down.
    Countdown,
    /// The match is running.
    Playing,
    /// The match waits for lost players.
    Paused,
    /// The match is over.
    Over,
    /// The server refused or closed the link, or the player left.
    Ended,
}

impl NetPhase {
    /// The screen for a core phase.
    pub fn of(phase: &ClientPhase) -> NetPhase {
        match phase {
            ClientPhase::Connecting | ClientPhase::Joining => NetPhase::Connecting,
            ClientPhase::Lobby(_) => NetPhase::Lobby,
            ClientPhase::Countdown { .. } => NetPhase::Countdown,
            ClientPhase::Playing => NetPhase::Playing,
            ClientPhase::Paused(_) => NetPhase::Paused,
            ClientPhase::Over { .. } => NetPhase::Over,
            ClientPhase::Rejected(_) | ClientPhase::Closed(_) | ClientPhase::Left => {
                NetPhase::Ended
            }
        }
    }

    /// True while there is an arena to show (countdown, play, pause, result).
    pub fn has_arena(self) -> bool {
        matches!(self, NetPhase::Countdown | NetPhase::Playing | NetPhase::Paused | NetPhase::Over)
    }
}

/// The order of the plugin's systems within a frame. Game systems that feed the core (input)
/// go before [`NetSystems::Step`]; systems that read it go after [`NetSystems::Receive`].
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetSystems {
    /// `PreUpdate`: the link's news into the core; events out; [`NetPhase`] updated.
    Receive,
    /// `FixedUpdate`: the core's timers and prediction steps.
    Step,
    /// `PostUpdate`: the core's frames and commands to the link.
    Send,
}

/// Everything the core reports, as a Bevy message (read with `MessageReader<PongEvent>`).
#[derive(Message, Clone, Debug, PartialEq, Eq)]
pub struct PongEvent(pub ClientEvent);

/// The client: its [`ClientCore`] and the clock it runs on.
#[derive(Resource)]
pub struct PongClient {
    core: ClientCore,
    config: ClientConfig,
    epoch: Instant,
    /// Asked for a fresh link (a rematch): sent with the next flush.
    reconnect: bool,
}

impl PongClient {
    fn new(config: ClientConfig) -> Self {
        PongClient {
            core: ClientCore::new(config.clone()),
            config,
            epoch: Instant::now(),
            reconnect: false,
        }
    }

    /// The core, for everything it can tell (phase, seat, rules, states, round trip…).
    pub fn core(&self) -> &ClientCore {
        &self.core
    }

    /// The core, to drive it directly; the plugin's systems still pump it.
    pub fn core_mut(&mut self) -> &mut ClientCore {
        &mut self.core
    }

    /// The configuration the client joins with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Microseconds on the core's clock (monotonic wall time since the plugin started).
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// What to draw now: ball and own paddle predicted, other paddles interpolated,
    /// corrections smoothed, the own paddle already moving at the current intent
    /// ([`ClientCore::view_with_intent`]).
    pub fn view(&self) -> Option<View> {
        self.core.view_with_intent(self.now())
    }

    /// The player's seat, once seated.
    pub fn player(&self) -> Option<PlayerId> {
        self.core.player()
    }

    /// The match's rules, once seated.
    pub fn rules(&self) -> Option<&Rules> {
        self.core.rules()
    }

    /// Sets the paddle's control; it is predicted from the next step on and drawn at once.
    pub fn set_intent(&mut self, intent: Intent) {
        if self.core.intent() != intent {
            self.core.set_intent(intent);
        }
    }

    /// Leaves the match: the server is told (a `Leave` goes out with this frame's flush)
    /// and the seat is freed, or forfeited during play.
    pub fn leave(&mut self) {
        self.core.leave();
    }

    /// Starts over with a fresh core on a fresh link: a rematch after a match is over, or a
    /// new try after a refusal or a failed connection.
    pub fn rematch(&mut self) {
        self.core = ClientCore::new(self.config.clone());
        self.reconnect = true;
    }
}

/// How the link is doing, for the Connecting screen and a "reconnecting" banner.
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// What is dialled.
    pub server: String,
    /// A link is up.
    pub connected: bool,
    /// Failed attempts since dialling began.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// Dialling gave up with this message; [`PongClient::rematch`] tries again.
    pub gave_up: Option<String>,
}

/// Who sits where ([`pong_presentation::Roster`], shared with the browser frontend), as a
/// resource.
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq, Deref, DerefMut)]
pub struct Roster(pub pong_presentation::Roster);

/// The plugin's configuration until its start-up system opens the bridge.
#[derive(Resource)]
struct PendingLink {
    connector: Arc<dyn Connector>,
    policy: ReconnectPolicy,
}

/// The bridge, as a resource.
#[derive(Resource)]
struct Link(Bridge);

impl Plugin for PongNetPlugin {
    fn build(&self, app: &mut App) {
        app.init_state::<NetPhase>()
            .add_message::<PongEvent>()
            .insert_resource(PongClient::new(self.config.clone()))
            .insert_resource(LinkStatus {
                server: self.connector.describe(),
                ..LinkStatus::default()
            })
            .init_resource::<Roster>()
            .insert_resource(PendingLink { connector: self.connector.clone(), policy: self.policy })
            .add_systems(Startup, open_link)
            .add_systems(
                PreUpdate,
                (receive, publish_events, follow_phase).chain().in_set(NetSystems::Receive),
            )
            .add_systems(FixedUpdate, (step, publish_events).chain().in_set(NetSystems::Step))
            .add_systems(PostUpdate, flush.in_set(NetSystems::Send));
    }
}

fn open_link(mut commands: Commands, pending: Option<Res<PendingLink>>) {
    let Some(pending) = pending else { return };
    commands.insert_resource(Link(Bridge::spawn(pending.connector.clone(), pending.policy)));
    commands.remove_resource::<PendingLink>();
}

/// The link's news into the core.
fn receive(
    link: Option<Res<Link>>,
    mut client: ResMut<PongClient>,
    mut status: ResMut<LinkStatus>,
) {
    let Some(link) = link else { return };
    let client = &mut *client;
    for news in link.0.drain() {
        let now = client.now();
        match news {
            FromLink::Attempt { attempt, error } => {
                status.attempts = attempt;
                status.last_error = Some(error);
            }
            FromLink::Connected => {
                status.connected = true;
                status.gave_up = None;
                client.core.handle_connected(now);
            }
            FromLink::Frame(frame) => client.core.handle_frame(now, &frame),
            FromLink::Subscribed(group) => client.core.handle_subscribed(now, group),
            FromLink::Lost(reason) => {
                debug!(%reason, "link lost");
                status.connected = false;
                status.last_error = Some(reason);
                client.core.handle_disconnected(now);
            }
            FromLink::GaveUp(message) => {
                status.connected = false;
                status.gave_up = Some(message);
            }
        }
    }
}

/// The core's events out as messages (and into the roster).
fn publish_events(
    mut client: ResMut<PongClient>,
    mut roster: ResMut<Roster>,
    mut status: ResMut<LinkStatus>,
    mut out: MessageWriter<PongEvent>,
) {
    while let Some(event) = client.core.poll_event() {
        roster.update(&event);
        if event == ClientEvent::ServerLost {
            status.connected = false;
        }
        out.write(PongEvent(event));
    }
}

/// [`NetPhase`] follows the core; the fixed timestep follows the match's tick rate.
fn follow_phase(
    client: Res<PongClient>,
    phase: Res<State<NetPhase>>,
    mut next: ResMut<NextState<NetPhase>>,
    mut fixed: ResMut<Time<Fixed>>,
) {
    let want = NetPhase::of(client.core.phase());
    if *phase.get() != want {
        debug!(from = ?phase.get(), to = ?want, "phase");
        next.set(want);
    }
    if let Some(rules) = client.core.rules() {
        let period = std::time::Duration::from_micros(rules.config.ticks_to_micros(1).max(1));
        if fixed.timestep() != period {
            fixed.set_timestep(period);
        }
    }
}

/// Lets the core's time pass when it asked to be woken.
fn step(mut client: ResMut<PongClient>) {
    let now = client.now();
    if client.core.poll_timeout().is_some_and(|t| t <= now) {
        client.core.handle_timeout(now);
    }
}

/// The core's frames and commands to the link.
fn flush(link: Option<Res<Link>>, mut client: ResMut<PongClient>) {
    let Some(link) = link else { return };
    if std::mem::take(&mut client.reconnect) {
        link.0.send(ToLink::Reconnect);
    }
    while let Some(frame) = client.core.poll_transmit() {
        link.0.send(ToLink::Frame(frame));
    }
    while let Some(cmd) = client.core.poll_transport_request() {
        link.0.send(match cmd {
            TransportRequest::Subscribe(group) => ToLink::Subscribe(group),
            TransportRequest::Reconnect => ToLink::Reconnect,
        });
    }
}
