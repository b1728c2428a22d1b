//! The page's player without the browser: a [`ClientCore`], who sits where, what steers it
//! (keys, a finger or the bot), the link's fortunes (dialling, backoff, giving up), and the
//! result. The page feeds it what the browser reports and carries out the [`Command`]s it
//! gives back; everything here runs natively too, so it is tested without a browser.
//!
//! The network is driven by the link's own events and the core's timers, never by the
//! render loop: a frame is handled the moment it arrives, what the core queues is sent at
//! once, and the core's next deadline sets the page's timer. A tab that is drawn at 30
//! frames a second, or hidden and not drawn at all, keeps the same network path.

use pong_domain::bot::Pilot;
use pong_domain::client::{ClientConfig, ClientCore, ClientEvent, ClientPhase, TransportRequest};
use pong_domain::report::BotReport;
use pong_domain::sim::Intent;
use pong_presentation::Roster;
use pong_presentation::controls::{self, Key};

use crate::params::Params;

/// Keep trying the first connection this long (µs): the server may be starting.
const FIRST_CONNECT: u64 = 30_000_000;
/// Keep trying to get back this long after the link dropped (µs).
const RECONNECT: u64 = 60_000_000;
/// First pause between attempts (µs); doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: u64 = 50_000;
/// Longest pause between attempts (µs).
const BACKOFF_MAX: u64 = 2_000_000;

/// What the page must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send this frame on the open link.
    Send(Vec<u8>),
    /// Open a new link, numbered so events from an older one can be told apart.
    Dial(u32),
    /// Close the current link (its close event will be stale).
    Close,
}

/// Where the link is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// No link; the next attempt is at `retry_at` (µs), or never once dialling gave up.
    Down {
        /// When to dial next.
        retry_at: Option<u64>,
    },
    /// Dialling link number `id`.
    Dialing(u32),
    /// Link `id` is open.
    Up(u32),
}

/// The link's story, for the Connecting screen and the "reconnecting" banner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Failed attempts since dialling began.
    pub attempts: u32,
    /// The last failure, as the browser told it.
    pub last_error: Option<String>,
    /// Dialling gave up with this message; [`Game::retry`] starts again.
    pub gave_up: Option<String>,
    /// A link was open once in this round (reconnecting, not connecting).
    pub was_connected: bool,
}

/// The page's player.
pub struct Game {
    params: Params,
    core: ClientCore,
    roster: Roster,
    pilot: Option<Pilot>,
    held: Vec<Key>,
    finger: Option<f32>,
    link: Link,
    status: LinkStatus,
    next_id: u32,
    backoff: u64,
    give_up_at: u64,
    resumes: u32,
    result: Option<BotReport>,
    commands: Vec<Command>,
}

impl Game {
    /// A player as the link asks, about to dial.
    #[must_use]
    pub fn new(params: Params, now: u64) -> Game {
        let core = ClientCore::new(config(&params));
        let pilot = params.bot.map(|skill| Pilot::new(skill, params.seed));
        let mut game = Game {
            params,
            core,
            roster: Roster::default(),
            pilot,
            held: Vec::new(),
            finger: None,
            link: Link::Down { retry_at: Some(now) },
            status: LinkStatus::default(),
            next_id: 0,
            backoff: BACKOFF_MIN,
            give_up_at: now + FIRST_CONNECT,
            resumes: 0,
            result: None,
            commands: Vec::new(),
        };
        game.poll(now);
        game
    }

    /// The core, for drawing.
    #[must_use]
    pub fn core(&self) -> &ClientCore {
        &self.core
    }

    /// Who sits where.
    #[must_use]
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// What the link asked for.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The link.
    #[must_use]
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The link's story.
    #[must_use]
    pub fn status(&self) -> &LinkStatus {
        &self.status
    }

    /// True while the page plays by itself.
    #[must_use]
    pub fn is_bot(&self) -> bool {
        self.pilot.is_some()
    }

    /// The summary of the finished match, in the keys of `pong bot --json`.
    #[must_use]
    pub fn result(&self) -> Option<&BotReport> {
        self.result.as_ref()
    }

    /// What the page must do now, in order.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    /// When to call [`Game::on_timer`] next (µs): the core's next deadline or the next dial.
    #[must_use]
    pub fn next_wake(&self) -> Option<u64> {
        let retry = match self.link {
            Link::Down { retry_at } => retry_at,
            _ => None,
        };
        match (self.core.poll_timeout(), retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Link `id` opened.
    pub fn on_open(&mut self, id: u32, now: u64) {
        if self.link != Link::Dialing(id) {
            return;
        }
        self.link = Link::Up(id);
        self.status = LinkStatus { was_connected: true, ..LinkStatus::default() };
        self.backoff = BACKOFF_MIN;
        self.core.handle_connected(now);
        self.poll(now);
    }

    /// Link `id` closed or could not open; `why` is what the browser said, if anything.
    pub fn on_close(&mut self, id: u32, now: u64, why: Option<String>) {
        match self.link {
            Link::Up(open) if open == id => {
                self.link = Link::Down { retry_at: None };
                self.give_up_at = now + RECONNECT;
                self.core.handle_disconnected(now);
            }
            Link::Dialing(d) if d == id => {
                self.status.attempts += 1;
                self.status.last_error = why;
                self.schedule_dial(now);
            }
            _ => return,
        }
        self.poll(now);
    }

    /// A frame arrived on link `id`.
    pub fn on_frame(&mut self, id: u32, now: u64, frame: &[u8]) {
        if self.link != Link::Up(id) {
            return;
        }
        self.core.handle_frame(now, frame);
        // A hidden tab's timers are throttled to once a second or less, but its socket
        // events are not: stepping here keeps the core on the server's tick grid.
        self.run_timers(now);
        self.poll(now);
    }

    /// The page's timer fired.
    pub fn on_timer(&mut self, now: u64) {
        self.run_timers(now);
        if let Link::Down { retry_at: Some(at) } = self.link
            && at <= now
        {
            self.next_id = self.next_id.wrapping_add(1);
            self.link = Link::Dialing(self.next_id);
            self.commands.push(Command::Dial(self.next_id));
        }
        self.poll(now);
    }

    /// A steering key went down or up.
    pub fn on_key(&mut self, key: Key, down: bool, now: u64) {
        self.held.retain(|k| *k != key);
        if down {
            self.held.push(key);
        }
        self.poll(now);
    }

    /// A finger is at `target` along the player's side (arena units), or lifted (`None`).
    pub fn on_finger(&mut self, target: Option<f32>, now: u64) {
        self.finger = target;
        self.poll(now);
    }

    /// Leaves the match for good (Esc): the server is told, then the link closes.
    pub fn leave(&mut self, now: u64) {
        self.core.leave();
        self.poll(now);
    }

    /// After a result, a refusal, or giving up: a new player with the same link, dialling
    /// again (a rematch in the same room, or another try).
    pub fn retry(&mut self, now: u64) {
        let params = self.params.clone();
        let old = std::mem::replace(self, Game::new(params, now));
        if matches!(old.link, Link::Up(_) | Link::Dialing(_)) {
            self.commands.insert(0, Command::Close);
        }
        self.next_id = old.next_id;
    }

    fn run_timers(&mut self, now: u64) {
        while self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
    }

    fn schedule_dial(&mut self, now: u64) {
        if now >= self.give_up_at {
            let what = if self.status.was_connected { "get back to" } else { "reach" };
            self.status.gave_up = Some(format!(
                "Could not {what} the server after {} attempts{}",
                self.status.attempts,
                self.status.last_error.as_ref().map_or(String::new(), |e| format!(": {e}"))
            ));
            self.link = Link::Down { retry_at: None };
            return;
        }
        self.link = Link::Down { retry_at: Some(now + self.backoff) };
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Moves everything the core has queued into commands, the roster and the result, and
    /// steers.
    fn poll(&mut self, now: u64) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.core.poll_event() {
                progressed = true;
                self.on_event(&event);
            }
            self.steer();
            while let Some(request) = self.core.poll_transport_request() {
                progressed = true;
                match request {
                    // The server sends a WebSocket link its match's frames: nothing to
                    // subscribe to.
                    TransportRequest::Subscribe(group) => self.core.handle_subscribed(now, group),
                    // The server went silent (the link may look open) or the link closed.
                    TransportRequest::Reconnect => match self.link {
                        Link::Up(_) => {
                            self.commands.push(Command::Close);
                            self.give_up_at = now + RECONNECT;
                            self.schedule_dial(now);
                        }
                        Link::Down { retry_at: None } if self.status.gave_up.is_none() => {
                            self.schedule_dial(now);
                        }
                        _ => {}
                    },
                }
            }
            while let Some(frame) = self.core.poll_transmit() {
                if matches!(self.link, Link::Up(_)) {
                    self.commands.push(Command::Send(frame));
                }
            }
            if !progressed {
                break;
            }
        }
        if self.core.is_finished() && matches!(self.link, Link::Up(_) | Link::Dialing(_)) {
            self.commands.push(Command::Close);
            self.link = Link::Down { retry_at: None };
        }
    }

    fn on_event(&mut self, event: &ClientEvent) {
        self.roster.update(event);
        match event {
            ClientEvent::Welcomed { resumed: true, .. } => self.resumes += 1,
            ClientEvent::MatchOver { .. } => {
                self.result = self.report();
            }
            _ => {}
        }
    }

    fn report(&self) -> Option<BotReport> {
        let report = BotReport::from_phase(
            self.core.phase(),
            self.core.match_id().map_or(0, |m| m.0),
            self.core.player().map_or(0, |p| p.get()),
            self.params.name.as_str(),
            self.core.pauses(),
            self.core.desyncs(),
        )?;
        Some(BotReport { resumes: self.resumes, ..report })
    }

    fn steer(&mut self) {
        let Some(player) = self.core.player() else { return };
        let intent = if let Some(pilot) = &mut self.pilot {
            match pilot.steer(&self.core) {
                Some(intent) => intent,
                None => return,
            }
        } else if !matches!(
            self.core.phase(),
            ClientPhase::Countdown { .. } | ClientPhase::Playing | ClientPhase::Paused(_)
        ) {
            Intent::Stop
        } else if let (Some(target), Some(rules), Some(state)) =
            (self.finger, self.core.rules(), self.core.predicted())
        {
            controls::follow(rules, state.paddles[player.index()] as f32, target)
        } else {
            controls::intent(player.side(), |k| self.held.contains(&k))
        };
        if intent != self.core.intent() {
            self.core.set_intent(intent);
        }
    }
}

fn config(params: &Params) -> ClientConfig {
    ClientConfig {
        players: params.players,
        room: params.room.clone(),
        ..ClientConfig::new(params.name.clone())
    }
}
