//! Late binding of own inputs: an intent that changes right after the prediction stepped a
//! tick is applied at that tick, not the next one, when the revised input can still reach
//! the server before it simulates the tick; never when it cannot; at most once per tick.
//!
//! A server and two clients on one virtual clock with zero latency, stepped every 250 µs.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use pong_domain::client::{ClientCore, ClientPhase, Command};
use pong_domain::codec::{self, ClientFrame};
use pong_domain::proto::SessionMsg;
use pong_domain::route::{Dest, PeerId};
use pong_domain::server::{ServerConfig, ServerCore, ServerEvent, Transmit};
use pong_domain::sim::Intent;
use support::SimNet;

const STEP: u64 = 250;

struct Net {
    now: u64,
    server: ServerCore,
    clients: Vec<ClientCore>,
    peers: Vec<PeerId>,
    buf: Vec<u8>,
    /// Inputs the server applied, by tick, for client 0's seat.
    applied: Vec<(u32, Intent)>,
    /// Input runs client 0 sent: (first tick, intents).
    sent: Vec<(u32, Vec<Intent>)>,
}

impl Net {
    fn new() -> Net {
        let config = ServerConfig {
            default_players: 2,
            lives: 9,
            countdown: 100_000,
            record_ticks: true,
            ..ServerConfig::default()
        };
        let mut clients: Vec<ClientCore> =
            (0..2).map(|i| ClientCore::new(SimNet::player(&format!("p{i}"), 2))).collect();
        let now = 1_000_000;
        for c in &mut clients {
            c.handle_connected(now);
        }
        Net {
            now,
            server: ServerCore::new(config, [7; 32]),
            clients,
            peers: vec![PeerId(1), PeerId(2)],
            buf: Vec::new(),
            applied: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Delivers what every client has to send, then what the server has.
    fn flush(&mut self) {
        let now = self.now;
        for (i, c) in self.clients.iter_mut().enumerate() {
            while let Some(f) = c.poll_transmit() {
                if i == 0
                    && let Ok(ClientFrame::Signed(s)) = codec::decode_client(&f)
                    && let SessionMsg::Input(run) = s.msg
                {
                    self.sent.push((run.first_tick(), run.iter().map(|(_, i)| i).collect()));
                }
                self.server.handle_frame(now, self.peers[i], &f);
            }
            while let Some(Command::Subscribe(g)) = c.poll_command() {
                c.handle_subscribed(now, g);
            }
            while c.poll_event().is_some() {}
        }
        let me = self.clients[0].player();
        while let Some(e) = self.server.poll_event() {
            if let (ServerEvent::Tick { tick, input, .. }, Some(me)) = (e, me) {
                self.applied.push((tick, input.intents[me.index()]));
            }
        }
        while let Some(t) = self.server.poll_transmit(&mut self.buf) {
            let to: Vec<usize> = match t {
                Transmit::Send(Dest::Peer(p)) => {
                    self.peers.iter().position(|&x| x == p).into_iter().collect()
                }
                Transmit::Send(Dest::Group(_)) => vec![0, 1],
                _ => vec![],
            };
            for i in to {
                self.clients[i].handle_frame(now, &self.buf);
            }
        }
    }

    /// Runs every timeout due at the current time.
    fn wake(&mut self) {
        let now = self.now;
        for c in &mut self.clients {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
        if self.server.poll_timeout().is_some_and(|t| t <= now) {
            self.server.handle_timeout(now);
        }
        self.flush();
    }

    fn step(&mut self) {
        self.now += STEP;
        self.wake();
    }

    fn predicted(&self) -> u32 {
        self.clients[0].predicted().map_or(0, |p| p.tick)
    }

    /// Steps until client 0's prediction has just taken a new tick; returns it.
    fn until_next_prediction(&mut self) -> u32 {
        let before = self.predicted();
        while self.predicted() == before {
            self.step();
        }
        self.predicted()
    }

    fn applied_at(&mut self, tick: u32) -> Intent {
        while !self.applied.iter().any(|&(t, _)| t == tick) {
            self.step();
        }
        self.applied.iter().find(|&&(t, _)| t == tick).unwrap().1
    }
}

fn playing() -> Net {
    let mut net = Net::new();
    while !(matches!(net.clients[0].phase(), ClientPhase::Playing) && net.predicted() > 60) {
        net.step();
    }
    net
}

#[test]
fn a_change_right_after_a_predicted_step_applies_at_that_tick() {
    let mut net = playing();
    let n = net.until_next_prediction();
    let client = &mut net.clients[0];
    assert_eq!(client.revisions(), 0);
    client.set_intent(Intent::Plus);
    assert_eq!(client.poll_timeout(), Some(0), "the revision is due at once");
    client.handle_timeout(net.now);
    assert_eq!(client.revisions(), 1);
    assert_eq!(client.predicted().unwrap().tick, n, "the prediction was rebuilt, not advanced");
    net.flush();
    let (first, intents) = net.sent.last().unwrap().clone();
    let at_n = intents[usize::try_from(n - first).unwrap()];
    assert_eq!(at_n, Intent::Plus, "the input for tick {n} was resent with the new intent");
    // Once per tick: another change before the next predicted step waits for it.
    net.clients[0].set_intent(Intent::Minus);
    assert_ne!(net.clients[0].poll_timeout(), Some(0));
    net.clients[0].set_intent(Intent::Plus);
    assert_eq!(net.applied_at(n), Intent::Plus, "the server applied the change at tick {n}");
    assert_eq!(net.applied_at(n + 1), Intent::Plus);
    // Every client still agrees with the server: no desync from revising.
    for _ in 0..400 {
        net.step();
    }
    assert!(net.clients.iter().all(|c| c.desyncs() == 0));
}

#[test]
fn a_change_too_close_to_the_servers_tick_waits_for_the_next_one() {
    let mut net = playing();
    let n = net.until_next_prediction();
    // The server simulates tick n at most `lead` after the prediction stepped it: just
    // before then, a revision could not arrive in time.
    let lead = net.clients[0].lead();
    net.now += lead.saturating_sub(100);
    let client = &mut net.clients[0];
    client.set_intent(Intent::Minus);
    client.handle_timeout(net.now);
    assert_eq!(client.revisions(), 0, "no revision {lead} µs after the step");
    // A refused try counts as the tick's one try: a controller changing its mind again and
    // again must not keep the driver waking at once (it would never read its link).
    for intent in [Intent::Plus, Intent::Stop, Intent::Minus] {
        client.set_intent(intent);
        assert_ne!(client.poll_timeout(), Some(0));
    }
    net.flush();
    assert_ne!(net.applied_at(n), Intent::Minus);
    assert_eq!(net.applied_at(n + 1), Intent::Minus, "the change applies from the next tick");
}
