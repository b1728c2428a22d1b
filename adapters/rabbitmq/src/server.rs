//! The server end: [`AmqpServer`], one broker connection that consumes the inbound queue and
//! the dead-letter queue and publishes to client queues and the matches exchange, kept up by
//! a supervisor task that reconnects with capped exponential backoff.
//!
//! ```text
//! AmqpServer::connect ──► establish (connect, declare, consume) ──► supervisor task
//!   send/publish/groups ──try_send──► [send buffer] ──► Publisher ──► broker
//!   recv ◄── events ◄── inbound Pump (frames, byes) / dead Pump (overflows) / returns / probes
//! ```
//!
//! # Peers
//! A peer is a client queue name seen in `reply_to` of inbound messages, given a fresh
//! [`PeerId`] the first time (never reused, also across reconnects). The name is only an
//! address: anyone who knows it can put it in `reply_to`, which is why the game protocol
//! authenticates every message with its session token and never trusts a `PeerId` as proof
//! of identity. Names must be broker-generated (`amq.gen-…`), so `reply_to` can never aim
//! the server at its own queue or another application's.
//!
//! A peer ends, reported [`Incoming::Gone`] exactly once, when:
//! - the broker returns a mandatory message to its queue (`NO_ROUTE`): the queue is gone,
//!   which for an exclusive queue means the client's connection is gone (closed, killed by
//!   an operator, or dropped by the broker after missed heartbeats). Idle peers are probed
//!   every [`AmqpOptions::probe_interval`] so this is noticed without traffic;
//! - its queue overflows or frames expire in it: the broker dead-letters them to
//!   `pong.<name>.dead`, stamped with the queue's name;
//! - the server calls [`ServerTransport::disconnect`] (reported too, like the memory
//!   transport does, so the server core cleans up in one place);
//! - the server's own broker connection is lost: every peer at once (see `Shared::detach`).
//!
//! Its queue name is then retired: late frames from it are dropped and counted, so a peer
//! never comes back under a new id by accident.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use lapin::message::{BasicReturnMessage, Delivery};
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::AMQPSoftError;
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use pong_ports::{Frame, Incoming, MatchId, Origin, PeerId, ServerTransport, TransportError};
use pong_transport_support::{
    Backoff, Credits, EventReceiver, EventSender, check_frame_len, events, lock, sorted,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::amqp::{
    NO_ROUTE, SERVER_NAMED_PREFIX, Target, bounded_queue_args, confirm_if_asked, describe,
    header_text, is_soft, kind, millis, unique_suffix, worth_logging,
};
use crate::channels::{Outgoing, Publisher, Pump};
use crate::options::AmqpOptions;
use crate::stats::{AmqpStats, Counters};

/// Queue names remembered after their peer ended, so late frames from them are refused.
const RETIRED_MEMORY: usize = 65_536;

/// Most dead letters kept for the server to read; they are notices, the oldest can go.
const DEAD_LETTER_MAX_LEN: u32 = 10_000;

/// The routing key that binds the anchor queue to the matches exchange (never a match id).
const ANCHOR_KEY: &str = "anchor";

/// Longest a graceful shutdown spends flushing and tidying up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The server end of the RabbitMQ transport. Dropping it (or [`AmqpServer::shutdown`])
/// flushes what is queued, deletes its queues and exchange, and closes the connection.
#[derive(Debug)]
pub struct AmqpServer {
    shared: Arc<Shared>,
    events: EventReceiver,
    /// Dropping it tells the supervisor to shut down.
    shutdown: Option<watch::Sender<()>>,
    supervisor: Option<JoinHandle<()>>,
}

/// What the background tasks and the endpoint share.
#[derive(Debug)]
struct Shared {
    options: AmqpOptions,
    target: Target,
    inbound: ShortString,
    dead: ShortString,
    matches: ShortString,
    /// The user the broker verifies our `user_id` against, if it is certain.
    user_id: Option<ShortString>,
    state: Mutex<State>,
    events: EventSender,
    /// One place per frame delivered by the inbound pump and not yet taken by `recv`.
    credit: Credits,
    counters: Counters,
}

#[derive(Debug, Default)]
struct State {
    next_peer: u64,
    by_queue: HashMap<ShortString, PeerId>,
    peers: HashMap<PeerId, Peer>,
    retired: HashSet<ShortString>,
    retired_order: VecDeque<ShortString>,
    /// The current connection's send buffer; `None` while reconnecting.
    send_buffer: Option<mpsc::Sender<Outgoing>>,
    /// Queues of the peers cut when the connection was lost, told `close` on reconnecting.
    cut: Vec<ShortString>,
}

#[derive(Debug)]
struct Peer {
    queue: ShortString,
    /// Groups the server joined this peer to (its client delivers only their publishes).
    joined: HashSet<MatchId>,
    /// Something mandatory went to its queue since the last probe round.
    addressed: bool,
}

impl AmqpServer {
    /// Connects to the broker at `url`, declares this server's queues and exchange and starts
    /// consuming, so clients can connect as soon as this returns.
    ///
    /// Must be called within a tokio runtime, which then drives the connection (heartbeats
    /// included): keep it running and unblocked.
    ///
    /// # Errors
    /// [`TransportError::Connect`] if the URL or options are invalid or the broker cannot be
    /// reached or refuses the login; [`TransportError::Listen`] if the queues cannot be
    /// declared or consumed (for instance another server of the same name is running).
    pub async fn connect(url: &str, options: AmqpOptions) -> Result<Self, TransportError> {
        let target = Target::parse(url, &options)?;
        let (events_tx, events) = events();
        let shared = Arc::new(Shared {
            inbound: options.inbound_queue().into(),
            dead: options.dead_letter_queue().into(),
            matches: options.matches_exchange().into(),
            user_id: target.verified_user(),
            credit: Credits::new(options.recv_buffer),
            options,
            target,
            state: Mutex::new(State::default()),
            events: events_tx,
            counters: Counters::default(),
        });
        let connection = BrokerConnection::establish(&shared).await?;
        let (shutdown, shutdown_rx) = watch::channel(());
        let supervisor = tokio::spawn(supervise(Arc::clone(&shared), connection, shutdown_rx));
        tracing::info!(addr = %shared.target.display, queue = %shared.inbound, "amqp server ready");
        Ok(Self { shared, events, shutdown: Some(shutdown), supervisor: Some(supervisor) })
    }

    /// Shuts down gracefully and waits for it: frames already queued are published, the
    /// server's queues and exchange are deleted (clients' publishes then bounce, so they
    /// learn the server is gone at once), and the connection is closed.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        self.shutdown.take();
        if let Some(supervisor) = self.supervisor.take() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, supervisor).await;
        }
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> AmqpStats {
        self.shared.counters.snapshot()
    }

    /// The peers currently connected, in id order.
    #[must_use]
    pub fn peers(&self) -> Vec<PeerId> {
        sorted(self.shared.state().peers.keys().copied())
    }

    /// True while the broker connection is up (false while reconnecting).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.state().send_buffer.is_some()
    }

    /// The options this server runs with.
    #[must_use]
    pub fn options(&self) -> &AmqpOptions {
        &self.shared.options
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn properties(&self) -> BasicProperties {
        match &self.user_id {
            Some(user) => BasicProperties::default().with_user_id(user.clone()),
            None => BasicProperties::default(),
        }
    }

    /// A frame or control message for one client queue, returned by the broker if the queue
    /// is gone.
    fn to_queue(&self, queue: &ShortString, body: Bytes, kind: Option<&str>) -> Outgoing {
        let properties = match kind {
            Some(kind) => self.properties().with_type(kind.into()),
            None => self.properties(),
        };
        Outgoing {
            exchange: ShortString::from(""),
            routing_key: queue.clone(),
            body,
            properties,
            mandatory: true,
        }
    }

    /// Hands a message to the current connection's publisher, never waiting.
    fn enqueue(&self, state: &State, message: Outgoing) -> Result<(), TransportError> {
        let Some(send_buffer) = &state.send_buffer else {
            let count = self.counters.dropped_link_down.bump();
            if worth_logging(count) {
                tracing::warn!(count, "amqp server: broker connection down, frame dropped");
            }
            return Err(TransportError::Other(
                "the broker connection is down (reconnecting); frame dropped".to_owned(),
            ));
        };
        match send_buffer.try_send(message) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                let count = self.counters.dropped_buffer_full.bump();
                if worth_logging(count) {
                    tracing::warn!(count, "amqp server: send buffer full, frame dropped");
                }
                Err(TransportError::Other(format!(
                    "the send buffer of {} frames is full (the broker is not keeping up); \
                     frame dropped",
                    self.options.send_buffer
                )))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TransportError::Other(
                "the broker connection is down (reconnecting); frame dropped".to_owned(),
            )),
        }
    }

    fn retire(state: &mut State, queue: ShortString) {
        if state.retired.insert(queue.clone()) {
            state.retired_order.push_back(queue);
            if state.retired_order.len() > RETIRED_MEMORY
                && let Some(oldest) = state.retired_order.pop_front()
            {
                state.retired.remove(&oldest);
            }
        }
    }

    /// Ends a peer: whoever removes it reports it, so `Gone` goes out exactly once.
    fn end_peer(&self, state: &mut State, peer: PeerId, reason: &str) -> Option<ShortString> {
        let entry = state.peers.remove(&peer)?;
        state.by_queue.remove(&entry.queue);
        Self::retire(state, entry.queue.clone());
        tracing::debug!(%peer, queue = %entry.queue, reason, "amqp peer gone");
        self.events.gone(peer, reason);
        Some(entry.queue)
    }

    /// One inbound delivery: a frame (its `Connected` first if the queue is new) or a bye.
    async fn on_inbound(&self, delivery: Delivery) {
        let properties = &delivery.properties;
        let bye = match properties.kind().as_ref().map(ShortString::as_str) {
            None => false,
            Some(kind::BYE) => true,
            Some(other) => {
                let count = self.counters.refused_unknown.bump();
                if worth_logging(count) {
                    tracing::warn!(
                        count,
                        kind = other,
                        "amqp server: unknown message type dropped"
                    );
                }
                return;
            }
        };
        let Some(queue) = properties.reply_to().clone() else {
            let count = self.counters.refused_no_reply_to.bump();
            if worth_logging(count) {
                tracing::warn!(count, "amqp server: message without reply_to dropped");
            }
            return;
        };
        if !queue.as_str().starts_with(SERVER_NAMED_PREFIX) {
            let count = self.counters.refused_bad_reply_to.bump();
            if worth_logging(count) {
                tracing::warn!(count, reply_to = %queue, "amqp server: reply_to is not a broker-named queue; dropped");
            }
            return;
        }
        if bye {
            // Anyone who knows the queue's name can say `bye` under it, so it only brings the
            // next probe forward: the peer ends when the broker says its queue is gone.
            let mut state = self.state();
            if let Some(peer) = state.by_queue.get(&queue).copied()
                && let Some(entry) = state.peers.get_mut(&peer)
            {
                entry.addressed = false;
            }
            return;
        }
        if delivery.data.len() > self.options.max_frame_len {
            let count = self.counters.refused_oversized.bump();
            if worth_logging(count) {
                tracing::warn!(
                    count,
                    len = delivery.data.len(),
                    "amqp server: oversized frame dropped"
                );
            }
            return;
        }
        // Waits while `recv_buffer` frames are already waiting for `recv`: the pump then stops
        // acknowledging and the broker keeps the rest.
        let credit = self.credit.take().await;
        let mut state = self.state();
        if state.retired.contains(&queue) {
            let count = self.counters.refused_retired.bump();
            if worth_logging(count) {
                tracing::debug!(count, "amqp server: frame from a connection that is gone dropped");
            }
            return;
        }
        let peer = match state.by_queue.get(&queue) {
            Some(&peer) => peer,
            None => {
                state.next_peer += 1;
                let peer = PeerId(state.next_peer);
                state.by_queue.insert(queue.clone(), peer);
                state.peers.insert(peer, Peer { queue, joined: HashSet::new(), addressed: false });
                tracing::debug!(%peer, "amqp peer connected");
                // Under the lock, so `Connected` is queued before the peer's first frame.
                self.events.connected(peer, Origin::Named);
                peer
            }
        };
        let frame = Bytes::from(delivery.data);
        self.events.frame(peer, frame, credit);
    }

    /// A dead letter: a frame a client queue shed because it overflowed or the frame expired.
    fn on_dead_letter(&self, delivery: &Delivery) {
        let properties = &delivery.properties;
        if let Some(user) = &self.user_id
            && properties.user_id().as_ref() != Some(user)
        {
            // Only the server publishes to client queues with its verified user_id, and dead
            // letters keep it; anything else was published here directly.
            let count = self.counters.refused_forged.bump();
            if worth_logging(count) {
                tracing::warn!(count, "amqp server: dead letter without our user_id dropped");
            }
            return;
        }
        let headers = properties.headers().as_ref();
        let queue = headers.and_then(|h| header_text(h, "x-first-death-queue"));
        let reason = headers.and_then(|h| header_text(h, "x-first-death-reason"));
        let Some(queue) = queue.and_then(|q| std::str::from_utf8(q).ok()) else {
            self.counters.refused_unknown.bump();
            return;
        };
        let reason = reason.and_then(|r| std::str::from_utf8(r).ok()).unwrap_or("unknown");
        self.counters.dead_lettered.bump();
        let mut state = self.state();
        let Some(&peer) = state.by_queue.get(queue) else { return };
        let why = match reason {
            // The bound is the client's own `client_queue_max_len`, unknown here.
            "maxlen" => "its queue overflowed: the client is not keeping up".to_owned(),
            "expired" => "frames expired in its queue: the client is not keeping up".to_owned(),
            other => format!("its queue dead-lettered a frame ({other})"),
        };
        tracing::warn!(%peer, %why, "amqp server: disconnecting a peer");
        if let Some(queue) = self.end_peer(&mut state, peer, &why) {
            // Drop-head keeps the newest frames, so this reaches the client after its backlog.
            let _ = self.enqueue(&state, self.to_queue(&queue, Bytes::new(), Some(kind::CLOSE)));
        }
    }

    /// A mandatory message came back: its queue no longer exists.
    fn on_return(&self, message: &BasicReturnMessage) {
        if message.reply_code != NO_ROUTE || !message.delivery.exchange.as_str().is_empty() {
            return;
        }
        let mut state = self.state();
        if let Some(&peer) = state.by_queue.get(&message.delivery.routing_key) {
            self.end_peer(&mut state, peer, "its queue is gone (the client's connection closed)");
        }
    }

    /// Probes every peer nothing mandatory was sent to since the last round.
    fn probe_idle_peers(&self) {
        let mut state = self.state();
        let idle: Vec<ShortString> = state
            .peers
            .values_mut()
            .filter_map(|peer| {
                let idle = !peer.addressed;
                peer.addressed = false;
                idle.then(|| peer.queue.clone())
            })
            .collect();
        for queue in idle {
            if self.enqueue(&state, self.to_queue(&queue, Bytes::new(), Some(kind::PROBE))).is_err()
            {
                break;
            }
        }
    }

    /// Installs a new connection's send buffer; every peer is probed on its first round.
    /// The queues of the peers cut by the lost connection are told `close`: those that
    /// survived it (only the server's own connection was lost) end their connections, so their
    /// clients reconnect as new peers; the others are returned, and nobody is listening.
    fn attach(&self, send_buffer: mpsc::Sender<Outgoing>) {
        let mut state = self.state();
        for peer in state.peers.values_mut() {
            peer.addressed = false;
        }
        state.send_buffer = Some(send_buffer);
        for queue in std::mem::take(&mut state.cut) {
            let _ = self.enqueue(&state, self.to_queue(&queue, Bytes::new(), Some(kind::CLOSE)));
        }
    }

    /// The broker connection is lost. Until it is back the server can neither hear its peers
    /// nor reach them, and what either side sends meanwhile is lost (a broker restart also
    /// deletes every client queue): every connection is cut. Each peer is reported `Gone` now, so
    /// the game pauses at once instead of playing on without anyone's input until its own
    /// timeout, and its clients reconnect and resume as after any lost connection.
    fn detach(&self) -> usize {
        let mut state = self.state();
        state.send_buffer = None;
        let peers: Vec<PeerId> = state.peers.keys().copied().collect();
        for peer in peers {
            if let Some(queue) =
                self.end_peer(&mut state, peer, "the server lost its broker connection")
            {
                state.cut.push(queue);
            }
        }
        state.cut.len()
    }
}

/// One established broker connection of the server.
struct BrokerConnection {
    connection: Connection,
    publisher: Channel,
    inbound: Pump,
    dead: Pump,
    outgoing: mpsc::Receiver<Outgoing>,
}

/// Why a connection's run ended.
enum End {
    Shutdown,
    Lost(String),
}

impl BrokerConnection {
    /// Connects, declares the topology, starts both consumers and installs the send buffer.
    async fn establish(shared: &Shared) -> Result<Self, TransportError> {
        let options = &shared.options;
        let name = format!("pong-server/{}/{}", options.server_name, unique_suffix());
        let connection = shared.target.connect(&name, options.op_timeout).await?;
        let setup = Setup {
            addr: format!("{} (queue {})", shared.target.display, shared.inbound),
            options,
        };

        let publisher = setup.step("opening a channel", connection.create_channel()).await?;
        setup
            .step(
                "declaring the matches exchange",
                publisher.exchange_declare(
                    shared.matches.clone(),
                    ExchangeKind::Direct,
                    // Not durable: it is re-declared on every (re)connect. Auto-delete, with
                    // the anchor below holding it while this connection lives: a server that
                    // dies without shutting down leaves no exchange behind once its clients
                    // are gone too (exchanges have no `x-expires`).
                    ExchangeDeclareOptions {
                        auto_delete: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                ),
            )
            .await?;
        // The anchor: an exclusive queue of this connection bound to the exchange under a key
        // no match uses (match keys are decimal), so the exchange always has a binding while
        // the server is connected and loses it with the connection. Named under the server's
        // prefix (which its broker permissions cover), uniquely per connection (an exclusive
        // queue of a previous connection may linger a moment).
        let anchor_name = format!("pong.{}.anchor-{}", options.server_name, unique_suffix());
        let anchor = setup
            .step(
                "declaring the exchange's anchor queue",
                publisher.queue_declare(
                    anchor_name.into(),
                    QueueDeclareOptions { exclusive: true, ..QueueDeclareOptions::default() },
                    bounded_queue_args(1),
                ),
            )
            .await?;
        setup
            .step(
                "binding the exchange's anchor queue",
                publisher.queue_bind(
                    anchor.name().clone(),
                    shared.matches.clone(),
                    ANCHOR_KEY.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                ),
            )
            .await?;
        let mut inbound_args = bounded_queue_args(options.server_queue_max_len);
        inbound_args.insert("x-expires".into(), millis(options.server_queue_expires));
        let mut dead_args = bounded_queue_args(DEAD_LETTER_MAX_LEN);
        dead_args.insert("x-expires".into(), millis(options.server_queue_expires));
        for (what, queue, args) in [
            ("declaring the inbound queue", shared.inbound.clone(), inbound_args),
            ("declaring the dead-letter queue", shared.dead.clone(), dead_args),
        ] {
            // Neither exclusive nor auto-delete: what clients send while the server
            // reconnects waits here (bounded); `x-expires` removes a server gone for good.
            setup
                .step(what, publisher.queue_declare(queue, QueueDeclareOptions::default(), args))
                .await?;
        }
        let confirms = confirm_if_asked(&publisher, options);
        setup.step("enabling publisher confirms", confirms).await?;

        let mut pumps = Vec::with_capacity(2);
        for queue in [shared.inbound.clone(), shared.dead.clone()] {
            // One channel per consumer: its `multiple` acks must not cover the other's tags.
            let channel = setup.step("opening a channel", connection.create_channel()).await?;
            setup
                .step(
                    "setting the prefetch",
                    channel.basic_qos(options.prefetch, BasicQosOptions::default()),
                )
                .await?;
            let what = format!("consuming {queue}");
            // Exclusive consumer: a second server of the same name is refused here instead of
            // silently taking every other frame.
            let consumer = setup
                .step(
                    &what,
                    channel.basic_consume(
                        queue,
                        "pong-server".into(),
                        BasicConsumeOptions { exclusive: true, ..BasicConsumeOptions::default() },
                        FieldTable::default(),
                    ),
                )
                .await?;
            pumps.push(Pump::new(consumer, channel, options.prefetch));
        }
        let (Some(dead), Some(inbound)) = (pumps.pop(), pumps.pop()) else {
            return Err(TransportError::Other("internal error: a consumer is missing".to_owned()));
        };

        let (tx, outgoing) = mpsc::channel(options.send_buffer);
        shared.attach(tx);
        Ok(Self { connection, publisher, inbound, dead, outgoing })
    }

    /// Runs the connection until it fails or the endpoint shuts down.
    async fn run(&mut self, shared: &Shared, shutdown: &mut watch::Receiver<()>) -> End {
        let BrokerConnection {
            publisher, inbound: inbound_pump, dead: dead_pump, outgoing, ..
        } = self;
        let mut publisher = Publisher::new(
            publisher.clone(),
            shared.options.confirms,
            &shared.counters,
            |message: &BasicReturnMessage| shared.on_return(message),
        );
        let inbound = async {
            while let Some(delivery) = inbound_pump.next().await.map_err(|e| describe(&e))? {
                let tag = delivery.delivery_tag;
                shared.on_inbound(delivery).await;
                inbound_pump.handled(tag);
            }
            Err::<(), _>("the broker cancelled the inbound consumer".to_owned())
        };
        let dead = async {
            while let Some(delivery) = dead_pump.next().await.map_err(|e| describe(&e))? {
                shared.on_dead_letter(&delivery);
                dead_pump.handled(delivery.delivery_tag);
            }
            Err::<(), _>("the broker cancelled the dead-letter consumer".to_owned())
        };
        let probes = async {
            let mut every = tokio::time::interval(shared.options.probe_interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                shared.probe_idle_peers();
            }
        };
        tokio::select! {
            result = publisher.run(outgoing) => End::Lost(match result {
                Ok(()) => "the send buffer closed".to_owned(),
                Err(error) => format!("publishing failed: {}", describe(&error)),
            }),
            Err(reason) = inbound => End::Lost(reason),
            Err(reason) = dead => End::Lost(reason),
            () = probes => End::Lost("probing stopped".to_owned()),
            _ = shutdown.changed() => End::Shutdown,
        }
    }

    /// Publishes what is still queued, removes the server's broker objects and closes.
    async fn close_gracefully(mut self, shared: &Shared) {
        // Shutting down, not lost: the connections end with the server's queues (their clients'
        // publishes bounce), and nobody reads `Gone` any more.
        shared.state().send_buffer = None;
        let mut publisher = Publisher::new(
            self.publisher.clone(),
            shared.options.confirms,
            &shared.counters,
            |message: &BasicReturnMessage| shared.on_return(message),
        );
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, publisher.run(&mut self.outgoing)).await;
        let tidy = async {
            let channel = &self.publisher;
            let _ =
                channel.queue_delete(shared.inbound.clone(), QueueDeleteOptions::default()).await;
            let _ = channel.queue_delete(shared.dead.clone(), QueueDeleteOptions::default()).await;
            let _ = channel
                .exchange_delete(
                    shared.matches.clone(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await;
            let _ = self.connection.close(200, "pong server shutting down".into()).await;
        };
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, tidy).await;
        tracing::info!(queue = %shared.inbound, "amqp server shut down");
    }
}

/// Runs the steps of [`BrokerConnection::establish`] under the operation timeout, naming
/// each failure.
struct Setup<'a> {
    addr: String,
    options: &'a AmqpOptions,
}

impl Setup<'_> {
    async fn step<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = lapin::Result<T>>,
    ) -> Result<T, TransportError> {
        let reason = match tokio::time::timeout(self.options.op_timeout, work).await {
            Ok(Ok(value)) => return Ok(value),
            // An exclusive consumer (or exclusive queue) already held: the broker says
            // "in exclusive use" / "exclusive access"; a missing permission is also
            // ACCESS_REFUSED but says "refused for user", and is reported as it is.
            Ok(Err(error))
                if (is_soft(&error, AMQPSoftError::ACCESSREFUSED)
                    || is_soft(&error, AMQPSoftError::RESOURCELOCKED))
                    && describe(&error).contains("exclusive") =>
            {
                format!(
                    "{what}: another server named {:?} is already running on this broker ({})",
                    self.options.server_name,
                    describe(&error)
                )
            }
            Ok(Err(error)) => format!("{what}: {}", describe(&error)),
            Err(_) => format!("{what}: no answer within {:?}", self.options.op_timeout),
        };
        Err(TransportError::Listen { addr: self.addr.clone(), reason })
    }
}

/// Keeps the server connected: runs the broker connection, and when it is lost reconnects
/// with capped exponential backoff, re-declaring everything. Sends fail fast meanwhile.
async fn supervise(
    shared: Arc<Shared>,
    mut connection: BrokerConnection,
    mut shutdown: watch::Receiver<()>,
) {
    let mut backoff = Backoff::new(shared.options.reconnect_min, shared.options.reconnect_max);
    loop {
        let reason = match connection.run(&shared, &mut shutdown).await {
            End::Shutdown => {
                connection.close_gracefully(&shared).await;
                return;
            }
            End::Lost(reason) => reason,
        };
        let cut = shared.detach();
        let stranded = connection.outgoing.len() as u64;
        shared.counters.lost_in_flight.add(stranded);
        tracing::warn!(
            %reason,
            stranded,
            peers_cut = cut,
            "amqp server: broker connection lost; reconnecting"
        );
        // The connection may still be open (say an operator deleted a queue and the broker
        // cancelled the consumer): close it before the channels drop, or their own closes
        // race the connection's and lapin logs a spurious connection error.
        if connection.connection.status().connected() {
            let close = connection.connection.close(200, "pong server reconnecting".into());
            let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
        }
        drop(connection);
        connection = loop {
            let delay = backoff.next_delay();
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(delay) => {}
            }
            match BrokerConnection::establish(&shared).await {
                Ok(connection) => break connection,
                Err(error) => tracing::warn!(%error, ?delay, "amqp server: reconnect failed"),
            }
        };
        backoff.reset();
        shared.counters.reconnects.bump();
        tracing::info!(queue = %shared.inbound, "amqp server: reconnected to the broker");
    }
}

#[async_trait]
impl ServerTransport for AmqpServer {
    async fn shutdown(&mut self) {
        self.stop().await;
    }

    async fn recv(&mut self) -> Result<Incoming, TransportError> {
        // The sender lives in `shared`, which we hold, so this never reports closed.
        let incoming = self.events.recv().await?;
        if matches!(incoming, Incoming::Frame { .. }) {
            self.shared.counters.delivered.bump();
        }
        Ok(incoming)
    }

    fn send(&self, to: PeerId, frame: Frame) -> Result<(), TransportError> {
        check_frame_len(&frame, self.shared.options.max_frame_len)?;
        let mut state = self.shared.state();
        let Some(peer) = state.peers.get(&to) else {
            return Err(TransportError::UnknownPeer(to));
        };
        let message = self.shared.to_queue(&peer.queue, frame, None);
        self.shared.enqueue(&state, message)?;
        if let Some(peer) = state.peers.get_mut(&to) {
            peer.addressed = true;
        }
        Ok(())
    }

    fn publish(&self, group: MatchId, frame: Frame) -> Result<(), TransportError> {
        check_frame_len(&frame, self.shared.options.max_frame_len)?;
        let message = Outgoing {
            exchange: self.shared.matches.clone(),
            routing_key: group.0.to_string().into(),
            body: frame,
            properties: self.shared.properties(),
            // A group nobody is subscribed to is normal; nothing to learn from a return.
            mandatory: false,
        };
        let state = self.shared.state();
        self.shared.enqueue(&state, message)
    }

    fn join_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        // The client's binding (`subscribe`) makes the broker route the group's publishes to
        // it; this `join` control, on the same channel as the publishes, marks in the
        // client's queue where membership starts: publishes made before this call that reach
        // the broker after the binding (they wait in the send buffer) sit before it, and the
        // client drops them.
        let mut state = self.shared.state();
        let Some(entry) = state.peers.get(&peer) else {
            return Err(TransportError::UnknownPeer(peer));
        };
        if entry.joined.contains(&group) {
            return Ok(());
        }
        let body = Bytes::from(group.0.to_string());
        let message = self.shared.to_queue(&entry.queue, body, Some(kind::JOIN));
        self.shared.enqueue(&state, message)?;
        if let Some(entry) = state.peers.get_mut(&peer) {
            entry.joined.insert(group);
            entry.addressed = true;
        }
        Ok(())
    }

    fn leave_group(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        // The client's queue is exclusive to its connection, so the server cannot unbind it
        // (the broker answers RESOURCE_LOCKED). It tells the client in band instead: every
        // publish after this call is behind the `leave` in the client's queue, and the client
        // drops that group's publishes from there on.
        let mut state = self.shared.state();
        let Some(entry) = state.peers.get(&peer) else { return Ok(()) };
        if !entry.joined.contains(&group) {
            return Ok(());
        }
        let body = Bytes::from(group.0.to_string());
        let message = self.shared.to_queue(&entry.queue, body, Some(kind::LEAVE));
        self.shared.enqueue(&state, message)?;
        if let Some(entry) = state.peers.get_mut(&peer) {
            entry.joined.remove(&group);
            entry.addressed = true;
        }
        Ok(())
    }

    fn disconnect(&self, peer: PeerId) -> Result<(), TransportError> {
        let mut state = self.shared.state();
        if let Some(queue) = self.shared.end_peer(&mut state, peer, "disconnected by the server") {
            // Behind every frame already queued for it, as the port asks; a lost `close` (broker
            // down) leaves the client to its heartbeats, the peer is gone here either way.
            let _ = self
                .shared
                .enqueue(&state, self.shared.to_queue(&queue, Bytes::new(), Some(kind::CLOSE)));
        }
        Ok(())
    }

    fn max_frame_len(&self) -> usize {
        self.shared.options.max_frame_len
    }

    fn is_connected(&self) -> bool {
        AmqpServer::is_connected(self)
    }

    fn local_addr(&self) -> String {
        format!("{} queue {}", self.shared.target.display, self.shared.inbound)
    }
}
