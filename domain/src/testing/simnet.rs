//! [`SimNet`]: a deterministic stepper for whole sessions. One [`ServerCore`], any number of
//! [`ClientCore`]s, a virtual clock and a simulated network with per-client latency and
//! jitter, in the manner of quinn-proto's test `Pair`. [`SimNet::run_until`] jumps the clock
//! from one wake-up to the next, so minutes of play take milliseconds.
//!
//! Set `SIMNET_TRACE` to have every delivered frame written to stderr (the test's captured
//! output).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use super::{MS, SECOND};
use crate::bot::Bot;
use crate::client::{ClientConfig, ClientCore, ClientEvent, TransportRequest};
use crate::codec;
use crate::journal::Record;
use crate::proto::MatchId;
use crate::route::{Dest, PeerId};
use crate::server::{ServerConfig, ServerCore, ServerEvent, Transmit};

/// How long frames between one client and the server take, each way.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// One-way delay (µs).
    pub one_way: u64,
    /// Uniform jitter added to each frame, 0..=jitter (µs).
    pub jitter: u64,
}

impl Latency {
    /// A local network: 2 ms, no jitter.
    pub const LAN: Latency = Latency { one_way: 2 * MS, jitter: 0 };

    /// A wide-area path: `one_way_ms` milliseconds each way, up to `jitter_ms` more.
    pub fn wan(one_way_ms: u64, jitter_ms: u64) -> Latency {
        Latency { one_way: one_way_ms * MS, jitter: jitter_ms * MS }
    }
}

enum Packet {
    ToServer { peer: PeerId, frame: Vec<u8> },
    ToClient { client: usize, peer: PeerId, frame: Vec<u8> },
    Reconnect { client: usize },
}

/// One client of a [`SimNet`]: its core, and how the network treats it.
#[allow(missing_docs)]
pub struct SimClient {
    pub core: ClientCore,
    /// Steers the client after every step when set; `None` leaves the intent to the test.
    pub bot: Option<Bot>,
    /// The server's name for the current connection; `None` while disconnected.
    pub peer: Option<PeerId>,
    pub latency: Latency,
    /// Frames to and from this client are silently dropped while cut.
    pub cut: bool,
    /// Client stopped for good (simulates a killed process).
    pub dead: bool,
    /// What the client reported, with the (network) time it did.
    pub events: Vec<(u64, ClientEvent)>,
    /// Local clock skew: this client's clock reads `now + skew`.
    pub skew: u64,
}

/// A server and its clients on one virtual clock. See the module docs.
#[allow(missing_docs)]
pub struct SimNet {
    /// The network's clock (µs); each client's clock reads this plus its skew.
    pub now: u64,
    pub server: ServerCore,
    /// What the server reported, with the time it did.
    pub server_events: Vec<(u64, ServerEvent)>,
    pub clients: Vec<SimClient>,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    packets: BTreeMap<usize, Packet>,
    seq: u64,
    next_packet: usize,
    next_peer: u64,
    groups: BTreeMap<MatchId, BTreeSet<PeerId>>,
    rng: u64,
    /// When the last frame on each client's path, each way (`true`: up), is delivered: with
    /// `in_order`, no later frame overtakes it.
    last_delivery: BTreeMap<(usize, bool), u64>,
    /// Whether frames on one client's path keep their order despite jitter (as on TCP).
    pub in_order: bool,
    /// The network time at which the server process's clock read zero: a restarted server
    /// counts from its own start, as a new process does.
    server_epoch: u64,
}

impl SimNet {
    /// A server with `config`, its keys made of `seed`, and no clients yet.
    pub fn new(config: ServerConfig, seed: u8) -> SimNet {
        SimNet {
            now: 1_000 * SECOND,
            server: ServerCore::new(config, [seed; 32]),
            server_events: Vec::new(),
            clients: Vec::new(),
            queue: BinaryHeap::new(),
            packets: BTreeMap::new(),
            seq: 0,
            next_packet: 0,
            next_peer: 1,
            groups: BTreeMap::new(),
            rng: 0x1234_5678_9abc_def1 ^ u64::from(seed),
            last_delivery: BTreeMap::new(),
            in_order: true,
            server_epoch: 0,
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Adds a client that connects `after` µs from now; returns its index.
    pub fn add_client(
        &mut self,
        config: ClientConfig,
        bot: Option<Bot>,
        latency: Latency,
        after: u64,
    ) -> usize {
        let i = self.clients.len();
        let skew = (i as u64 + 1) * 7_777_777;
        self.clients.push(SimClient {
            core: ClientCore::new(config),
            bot,
            peer: None,
            latency,
            cut: false,
            dead: false,
            events: Vec::new(),
            skew,
        });
        self.schedule(self.now + after, Packet::Reconnect { client: i });
        i
    }

    fn schedule(&mut self, at: u64, p: Packet) {
        let id = self.next_packet;
        self.next_packet += 1;
        self.seq += 1;
        self.packets.insert(id, p);
        self.queue.push(Reverse((at, self.seq, id)));
    }

    fn delay(&mut self, client: usize, up: bool) -> u64 {
        let latency = self.clients[client].latency;
        let jitter = if latency.jitter > 0 { self.rand() % (latency.jitter + 1) } else { 0 };
        let mut at = self.now + latency.one_way + jitter;
        if self.in_order {
            let last = self.last_delivery.entry((client, up)).or_insert(0);
            at = at.max(*last);
            *last = at;
        }
        at
    }

    fn client_of(&self, peer: PeerId) -> Option<usize> {
        self.clients.iter().position(|c| c.peer == Some(peer))
    }

    fn local(&self, i: usize) -> u64 {
        self.now + self.clients[i].skew
    }

    /// The server's clock: the network's, less the time before the server process started.
    pub fn server_now(&self) -> u64 {
        self.now - self.server_epoch
    }

    /// Runs until `until` (absolute virtual time) or until `done` says stop.
    pub fn run_until(&mut self, until: u64, mut done: impl FnMut(&SimNet) -> bool) {
        let mut stuck = 0u32;
        while self.now < until && !done(self) {
            let before = self.now;
            let mut next = until;
            if let Some(Reverse((at, _, _))) = self.queue.peek() {
                next = next.min(*at);
            }
            if let Some(t) = self.server.poll_timeout() {
                next = next.min(t.saturating_add(self.server_epoch).max(self.now));
            }
            for c in &self.clients {
                if c.dead {
                    continue;
                }
                if let Some(t) = c.core.poll_timeout() {
                    next = next.min(t.saturating_sub(c.skew).max(self.now));
                }
            }
            self.now = next.max(self.now);
            // Deliver what is due.
            while let Some(Reverse((at, _, id))) = self.queue.peek().copied() {
                if at > self.now {
                    break;
                }
                self.queue.pop();
                let p = self.packets.remove(&id).expect("every queued packet is stored");
                self.deliver(p);
            }
            let now = self.server_now();
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
            for i in 0..self.clients.len() {
                if self.clients[i].dead {
                    continue;
                }
                let local = self.local(i);
                if self.clients[i].core.poll_timeout().is_some_and(|t| t <= local) {
                    self.clients[i].core.handle_timeout(local);
                }
            }
            self.flush();
            stuck = if self.now == before { stuck + 1 } else { 0 };
            if stuck >= 100_000 {
                let clients: Vec<String> = self
                    .clients
                    .iter()
                    .map(|c| {
                        format!(
                            "{:?} wake {:?} local {} pred {:?} conf {:?} lead {}",
                            c.core.phase(),
                            c.core.poll_timeout(),
                            self.now + c.skew,
                            c.core.predicted().map(|p| p.tick),
                            c.core.confirmed().map(|p| p.tick),
                            c.core.lead()
                        )
                    })
                    .collect();
                panic!(
                    "no progress at {}: server wake {:?}; clients {clients:#?}",
                    self.now,
                    self.server.poll_timeout()
                );
            }
        }
    }

    // The trace is asked for (SIMNET_TRACE) and goes to the test's captured output; the
    // domain has no logger.
    #[allow(clippy::print_stderr)]
    fn deliver(&mut self, p: Packet) {
        match p {
            Packet::ToServer { peer, frame } => {
                if std::env::var("SIMNET_TRACE").is_ok() {
                    let m = codec::decode_client(&frame)
                        .map(|m| format!("{m:?}").chars().take(80).collect::<String>());
                    eprintln!("T {} server <- {:?} {:?}", self.now / 1000, peer, m);
                }
                let now = self.server_now();
                self.server.handle_frame(now, peer, &frame)
            }
            Packet::ToClient { client, peer, frame } => {
                let c = &mut self.clients[client];
                if std::env::var("SIMNET_TRACE").is_ok() {
                    let m = codec::decode_server(&frame)
                        .map(|m| format!("{m:?}").chars().take(80).collect::<String>());
                    eprintln!(
                        "T {} -> c{client} {:?} (peer {:?} cur {:?})",
                        self.now / 1000,
                        m,
                        peer,
                        c.peer
                    );
                }
                if !c.dead && c.peer == Some(peer) {
                    let local = self.now + c.skew;
                    c.core.handle_frame(local, &frame);
                }
            }
            Packet::Reconnect { client } => {
                if self.clients[client].dead {
                    return;
                }
                let peer = PeerId(self.next_peer);
                self.next_peer += 1;
                self.clients[client].peer = Some(peer);
                let local = self.local(client);
                self.clients[client].core.handle_connected(local);
            }
        }
    }

    /// Kills a client's link from the server side as a transport would report it.
    pub fn drop_link(&mut self, client: usize) {
        if let Some(peer) = self.clients[client].peer.take() {
            for g in self.groups.values_mut() {
                g.remove(&peer);
            }
            let now = self.server_now();
            self.server.handle_peer_gone(now, peer);
            let local = self.local(client);
            self.clients[client].core.handle_disconnected(local);
        }
    }

    /// Drains every core's outputs into the network, repeatedly, until all are quiet.
    pub fn flush(&mut self) {
        loop {
            let mut moved = false;
            let mut buf = Vec::new();
            while let Some(t) = self.server.poll_transmit(&mut buf) {
                moved = true;
                match t {
                    Transmit::Send(Dest::Peer(p)) => self.send_to_client(p, buf.clone()),
                    Transmit::Send(Dest::Group(g)) => {
                        let members: Vec<PeerId> = self
                            .groups
                            .get(&g)
                            .map(|s| s.iter().copied().collect())
                            .unwrap_or_default();
                        for p in members {
                            self.send_to_client(p, buf.clone());
                        }
                    }
                    Transmit::JoinGroup(p, g) => {
                        self.groups.entry(g).or_default().insert(p);
                    }
                    Transmit::LeaveGroup(p, g) => {
                        if let Some(s) = self.groups.get_mut(&g) {
                            s.remove(&p);
                        }
                    }
                    Transmit::Disconnect(p) => {
                        if let Some(c) = self.client_of(p) {
                            self.clients[c].peer = None;
                            let local = self.local(c);
                            self.clients[c].core.handle_disconnected(local);
                        }
                    }
                }
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push((self.now, e));
            }
            for i in 0..self.clients.len() {
                if self.clients[i].dead {
                    continue;
                }
                while let Some(frame) = self.clients[i].core.poll_transmit() {
                    moved = true;
                    let (cut, peer) = (self.clients[i].cut, self.clients[i].peer);
                    if let (false, Some(peer)) = (cut, peer) {
                        let at = self.delay(i, true);
                        self.schedule(at, Packet::ToServer { peer, frame });
                    }
                }
                while let Some(cmd) = self.clients[i].core.poll_transport_request() {
                    moved = true;
                    let local = self.local(i);
                    match cmd {
                        TransportRequest::Subscribe(g) => {
                            self.clients[i].core.handle_subscribed(local, g)
                        }
                        TransportRequest::Reconnect => {
                            // The old link is dropped; a new one comes up after a short backoff.
                            if let Some(peer) = self.clients[i].peer.take() {
                                let now = self.server_now();
                                self.server.handle_peer_gone(now, peer);
                            }
                            let at = self.now + 200 * MS;
                            self.schedule(at, Packet::Reconnect { client: i });
                        }
                    }
                }
                while let Some(e) = self.clients[i].core.poll_event() {
                    self.clients[i].events.push((self.now, e));
                }
                // Bots decide on the predicted state after every step.
                let c = &mut self.clients[i];
                if let (Some(bot), Some(rules), Some(state)) =
                    (c.bot.as_mut(), c.core.rules(), c.core.predicted())
                {
                    if let Some(p) = c.core.player() {
                        bot.set_player(p);
                    }
                    let intent = bot.decide(rules, state);
                    c.core.set_intent(intent);
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn send_to_client(&mut self, peer: PeerId, frame: Vec<u8>) {
        if let Some(c) = self.client_of(peer) {
            if self.clients[c].cut || self.clients[c].dead {
                return;
            }
            let at = self.delay(c, false);
            self.schedule(at, Packet::ToClient { client: c, peer, frame });
        }
    }

    /// The server process dies and `core` takes its place: frames in flight to or from the
    /// old one are lost, every link drops (the clients learn it as a transport would tell
    /// them) and the clients reconnect to the new server. The new process's clock starts at
    /// zero now, far from the old one's (restore `core`'s matches at time 0), so a client
    /// that kept the old server's clock offset would be seconds off.
    pub fn restart_server(&mut self, core: ServerCore) {
        self.server = core;
        self.server_epoch = self.now;
        self.groups.clear();
        self.packets.retain(|_, p| matches!(p, Packet::Reconnect { .. }));
        let packets = &self.packets;
        self.queue.retain(|Reverse((_, _, id))| packets.contains_key(id));
        for i in 0..self.clients.len() {
            if self.clients[i].dead {
                continue;
            }
            if self.clients[i].peer.take().is_some() {
                let local = self.local(i);
                self.clients[i].core.handle_disconnected(local);
            }
        }
    }

    /// Moves the server's events so far out of [`SimNet::server_events`] and returns the
    /// journal records among them of match `mid`.
    pub fn take_journal(&mut self, mid: MatchId) -> Vec<Record> {
        self.server_events
            .drain(..)
            .filter_map(|(_, e)| match e {
                ServerEvent::Match { match_id, record } if match_id == mid => Some(record),
                _ => None,
            })
            .collect()
    }

    /// True when every client still running has seen its match end.
    pub fn all_finished(&self) -> bool {
        self.clients.iter().all(|c| c.dead || c.core.is_finished())
    }
}
