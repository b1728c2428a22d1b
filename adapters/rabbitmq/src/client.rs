//! The client end: [`AmqpConnector`] opens one broker connection per client connection and
//! returns an [`AmqpClient`] whose queue is already declared and consumed, so nothing the
//! server sends after it learns of the connection (its Welcome) can be missed.
//!
//! ```text
//! connect(): connect ─► passive-declare pong.<name>.in (server there?) ─► declare own queue
//!            (exclusive, auto-delete, bounded, dead-lettering to the server) ─► consume ─► return
//! send ──try_send──► [send buffer] ──► Publisher ──► default exchange, key pong.<name>.in,
//!                                                     reply_to = own queue, mandatory
//! recv ◄── [recv buffer] ◄── Pump ◄── own queue (frames, and the server's in-band controls)
//! subscribe(m) ──► queue.bind(own queue, pong.<name>.matches, "m") ──► waits for bind-ok
//! ```
//!
//! A connection ends, and `recv` returns [`TransportError::Closed`] after the frames already
//! received, when the server disconnects it (an in-band `close`), when the connection is lost
//! (the app then reconnects through the [`Connector`] and resumes its session with its token;
//! there is no transparent reconnect on this side, since a new connection is a new queue and
//! so a new peer), when the server's inbound queue is gone (a mandatory publish came back),
//! or when the send buffer overflows.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use lapin::message::{BasicReturnMessage, Delivery};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::AMQPSoftError;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use pong_ports::{ClientTransport, Connector, Frame, MatchId, TransportError};
use pong_transport_support::{Counter, check_frame_len, lock};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::amqp::{
    NO_ROUTE, Target, bounded_queue_args, confirm_if_asked, describe, is_soft, kind, millis,
    unique_suffix, worth_logging,
};
use crate::channels::{Outgoing, Publisher, Pump};
use crate::options::AmqpOptions;
use crate::stats::{AmqpStats, Counters};

/// Opens connections to one server through one broker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AmqpConnector {
    target: Target,
    options: Arc<AmqpOptions>,
}

impl AmqpConnector {
    /// A connector for the server named in `options` through the broker at `url`.
    ///
    /// # Errors
    /// [`TransportError::Connect`] if the URL or the options are invalid.
    pub fn new(url: &str, options: AmqpOptions) -> Result<Self, TransportError> {
        let target = Target::parse(url, &options)?;
        Ok(Self { target, options: Arc::new(options) })
    }

    /// Opens a connection and returns the concrete client (for its queue name, stats, heartbeat).
    /// When this returns, the client's queue exists and is consumed, and the server's inbound
    /// queue exists and has a consumer.
    ///
    /// Must be called within a tokio runtime, which then drives the connection (heartbeats
    /// included): keep it running and unblocked.
    ///
    /// # Errors
    /// [`TransportError::Connect`] if the broker cannot be reached or refuses the login, or
    /// no server of that name is running on it.
    pub async fn connect_client(&self) -> Result<AmqpClient, TransportError> {
        let options = &self.options;
        let connection_name = format!("pong-client/{}/{}", options.server_name, unique_suffix());
        let connection = self.target.connect(&connection_name, options.op_timeout).await?;
        let setup = Setup { addr: self.describe(), options };
        let inbound: ShortString = options.inbound_queue().into();

        let publisher = setup.step("opening a channel", connection.create_channel()).await?;
        // Passive: clients only need to know the server is there, not to create its queue.
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        match tokio::time::timeout(
            options.op_timeout,
            publisher.queue_declare(inbound.clone(), passive, FieldTable::default()),
        )
        .await
        {
            Ok(Ok(queue)) if queue.consumer_count() == 0 => {
                return Err(setup.refused(format!(
                    "the pong server {:?} is not running (nobody consumes {inbound})",
                    options.server_name
                )));
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) if is_soft(&error, AMQPSoftError::NOTFOUND) => {
                return Err(setup.refused(format!(
                    "no pong server named {:?} on this broker (queue {inbound} does not exist)",
                    options.server_name
                )));
            }
            Ok(Err(error)) => {
                return Err(setup.refused(format!("looking for {inbound}: {}", describe(&error))));
            }
            Err(_) => {
                return Err(setup.refused(format!("looking for {inbound}: no answer in time")));
            }
        }
        let confirms = confirm_if_asked(&publisher, options);
        setup.step("enabling publisher confirms", confirms).await?;

        let consuming = setup.step("opening a channel", connection.create_channel()).await?;
        let mut args = bounded_queue_args(options.client_queue_max_len);
        // Shed frames go to the server, which then disconnects this connection (port rule 7).
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(LongString::from("")));
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(LongString::from(options.dead_letter_queue())),
        );
        if let Some(ttl) = options.client_queue_ttl {
            args.insert("x-message-ttl".into(), millis(ttl));
        }
        // Server-named (unguessable, and a valid reply_to by the server's rule), exclusive
        // (only this connection may consume or bind it; it dies with the connection), and
        // auto-delete (also gone if its consumer is cancelled).
        let declare = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let queue = setup
            .step("declaring the link's queue", consuming.queue_declare("".into(), declare, args))
            .await?
            .name()
            .clone();
        setup
            .step(
                "setting the prefetch",
                consuming.basic_qos(options.prefetch, BasicQosOptions::default()),
            )
            .await?;
        let consumer = setup
            .step(
                "consuming the link's queue",
                consuming.basic_consume(
                    queue.clone(),
                    "pong-client".into(),
                    BasicConsumeOptions { exclusive: true, ..BasicConsumeOptions::default() },
                    FieldTable::default(),
                ),
            )
            .await?;
        let control = setup.step("opening a channel", connection.create_channel()).await?;
        let heartbeat = Duration::from_secs(u64::from(connection.configuration().heartbeat()));

        let shared = Arc::new(ClientShared {
            closed: AtomicBool::new(false),
            stop: Notify::new(),
            stop_reason: Mutex::new(None),
            closing: Notify::new(),
            counters: Counters::default(),
        });
        let (outbox_tx, outbox) = mpsc::channel(options.send_buffer);
        let (inbox_tx, inbox) = mpsc::channel(options.recv_buffer);
        let connection = Arc::new(connection);
        let driver = Driver {
            shared: Arc::clone(&shared),
            options: Arc::clone(options),
            connection: Arc::clone(&connection),
            publisher,
            pump: Pump::new(consumer, consuming, options.prefetch),
            outbox,
            inbox: inbox_tx,
            matches: options.matches_exchange().into(),
            control: control.clone(),
        };
        let driver = tokio::spawn(driver.run());
        tracing::debug!(%queue, connection = connection_name, "amqp client connection open");
        let properties = BasicProperties::default().with_reply_to(queue.clone());
        Ok(AmqpClient {
            shared,
            options: Arc::clone(options),
            connection,
            control: Some(control),
            inbox,
            outbox: Some(outbox_tx),
            driver: Some(driver),
            inbound,
            properties,
            queue,
            connection_name,
            heartbeat,
            closed: false,
        })
    }
}

#[async_trait]
impl Connector for AmqpConnector {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        Ok(Box::new(self.connect_client().await?))
    }

    fn describe(&self) -> String {
        format!("{} (server {:?})", self.target.display, self.options.server_name)
    }
}

/// Runs the steps of [`AmqpConnector::connect_client`] under the operation timeout.
struct Setup<'a> {
    addr: String,
    options: &'a AmqpOptions,
}

impl Setup<'_> {
    fn refused(&self, reason: String) -> TransportError {
        TransportError::Connect { addr: self.addr.clone(), reason }
    }

    async fn step<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = lapin::Result<T>>,
    ) -> Result<T, TransportError> {
        match tokio::time::timeout(self.options.op_timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.refused(format!("{what}: {}", describe(&error)))),
            Err(_) => {
                Err(self.refused(format!("{what}: no answer within {:?}", self.options.op_timeout)))
            }
        }
    }
}

/// What the client handle and its driver task share.
#[derive(Debug)]
struct ClientShared {
    /// Set once the connection has ended; `send` refuses from then on.
    closed: AtomicBool,
    /// Asks the driver to end the connection now (`stop_reason` says why).
    stop: Notify,
    stop_reason: Mutex<Option<String>>,
    /// The app closed or dropped the handle: the driver gets a bounded time to flush.
    closing: Notify,
    counters: Counters,
}

impl ClientShared {
    fn stop(&self, reason: String) {
        lock(&self.stop_reason).get_or_insert(reason);
        self.stop.notify_one();
    }
}

/// The client end of one connection: one broker connection, one exclusive queue. Dropping it
/// closes the connection like [`ClientTransport::close`] (the goodbye and the close then happen in
/// the background).
#[derive(Debug)]
pub struct AmqpClient {
    shared: Arc<ClientShared>,
    options: Arc<AmqpOptions>,
    connection: Arc<Connection>,
    /// For bindings, apart from the consuming channel: a failed bind closes its channel.
    control: Option<Channel>,
    inbox: mpsc::Receiver<Frame>,
    outbox: Option<mpsc::Sender<Outgoing>>,
    driver: Option<JoinHandle<()>>,
    inbound: ShortString,
    properties: BasicProperties,
    queue: ShortString,
    connection_name: String,
    heartbeat: Duration,
    closed: bool,
}

impl AmqpClient {
    /// The broker-named queue of this connection (what the server sees in `reply_to`).
    #[must_use]
    pub fn queue_name(&self) -> &str {
        self.queue.as_str()
    }

    /// The `connection_name` this connection gives the broker (`rabbitmqctl list_connections
    /// client_properties`, or `user_provided_name` from RabbitMQ 3.11): for operators, and
    /// for tests that kill a connection.
    #[must_use]
    pub fn connection_name(&self) -> &str {
        &self.connection_name
    }

    /// The AMQP heartbeat the broker and this connection agreed on.
    #[must_use]
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> AmqpStats {
        self.shared.counters.snapshot()
    }

    fn outgoing(&self, body: Bytes, kind: Option<&str>) -> Outgoing {
        let properties = match kind {
            Some(kind) => self.properties.clone().with_type(kind.into()),
            None => self.properties.clone(),
        };
        // Mandatory: if the server's queue is gone the broker says so, and the connection ends.
        Outgoing {
            exchange: "".into(),
            routing_key: self.inbound.clone(),
            body,
            properties,
            mandatory: true,
        }
    }

    /// Queues the goodbye behind every frame sent so far and lets the driver finish.
    fn shut(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        self.inbox.close();
        // Dropping the only sender (here) lets the publisher finish once it has flushed.
        if let Some(outbox) = self.outbox.take()
            && !self.shared.closed.load(Ordering::Acquire)
        {
            // If the buffer is full the goodbye is lost; the server's probes find the queue
            // gone once the connection closes.
            let _ = outbox.try_send(self.outgoing(Bytes::new(), Some(kind::BYE)));
        }
        self.shared.closing.notify_one();
    }
}

impl Drop for AmqpClient {
    fn drop(&mut self) {
        self.shut();
    }
}

#[async_trait]
impl ClientTransport for AmqpClient {
    async fn recv(&mut self) -> Result<Frame, TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        let frame = self.inbox.recv().await.ok_or(TransportError::Closed)?;
        self.shared.counters.delivered.bump();
        Ok(frame)
    }

    fn send(&self, frame: Frame) -> Result<(), TransportError> {
        if self.closed || self.shared.closed.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        check_frame_len(&frame, self.options.max_frame_len)?;
        let Some(outbox) = &self.outbox else { return Err(TransportError::Closed) };
        match outbox.try_send(self.outgoing(frame, None)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.counters.dropped_buffer_full.bump();
                // Rule 7: a connection whose queue overflows is closed, not buffered without bound.
                // The client has no PeerId to put in `Backpressure`, so it reports `Closed`.
                tracing::warn!(
                    queue = %self.queue,
                    frames = self.options.send_buffer,
                    "amqp client: send buffer full (the broker is not taking frames); closing the connection"
                );
                self.shared.stop(format!(
                    "the send buffer of {} frames overflowed",
                    self.options.send_buffer
                ));
                Err(TransportError::Closed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TransportError::Closed),
        }
    }

    async fn subscribe(&mut self, group: MatchId) -> Result<(), TransportError> {
        let refused = |reason: String| TransportError::Subscribe { group, reason };
        if self.closed || self.shared.closed.load(Ordering::Acquire) {
            return Err(refused("the link is closed".to_owned()));
        }
        let control = match self.control.take() {
            Some(channel) if channel.status().connected() => channel,
            _ => self
                .connection
                .create_channel()
                .await
                .map_err(|error| refused(format!("opening a channel: {}", describe(&error))))?,
        };
        let matches: ShortString = self.options.matches_exchange().into();
        let bind = control.queue_bind(
            self.queue.clone(),
            matches.clone(),
            group.0.to_string().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        );
        // Rule 9: bind-ok means the binding is in the broker's routing table, so every publish
        // routed after this returns reaches this queue.
        let result = match tokio::time::timeout(self.options.op_timeout, bind).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) if is_soft(&error, AMQPSoftError::NOTFOUND) => Err(refused(format!(
                "exchange {matches} does not exist (is the server running?): {}",
                describe(&error)
            ))),
            Ok(Err(error)) => Err(refused(describe(&error))),
            Err(_) => Err(refused(format!("no bind-ok within {:?}", self.options.op_timeout))),
        };
        self.control = Some(control);
        result
    }

    async fn close(&mut self) {
        self.shut();
        if let Some(driver) = self.driver.take() {
            let grace = self.options.op_timeout + Duration::from_secs(1);
            let _ = tokio::time::timeout(grace, driver).await;
        }
    }

    fn max_frame_len(&self) -> usize {
        self.options.max_frame_len
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The app closed or dropped the handle, and what it sent has been flushed.
    Closed,
    /// The server disconnected this connection.
    ServerClosed,
    /// Anything else, said in words.
    Lost(String),
}

/// The background task of one connection: publishes, consumes, and closes the broker
/// connection at the end.
struct Driver {
    shared: Arc<ClientShared>,
    options: Arc<AmqpOptions>,
    connection: Arc<Connection>,
    publisher: Channel,
    pump: Pump,
    outbox: mpsc::Receiver<Outgoing>,
    inbox: mpsc::Sender<Frame>,
    matches: ShortString,
    /// A clone of the handle's binding channel, so that dropping the handle does not close
    /// it while the connection is open (see the end of [`Driver::run`]).
    control: Channel,
}

/// What to do with one delivery.
enum Action {
    Deliver(Frame),
    Close,
    Leave(u32),
    Join(u32),
    Ignore,
}

impl Driver {
    async fn run(self) {
        let Driver {
            shared,
            options,
            connection,
            publisher,
            mut pump,
            mut outbox,
            inbox,
            matches,
            control,
        } = self;
        let counters = &shared.counters;
        let on_return = |message: &BasicReturnMessage| {
            if message.reply_code == NO_ROUTE {
                shared.stop(format!(
                    "the server's queue {} is gone (the server stopped)",
                    message.delivery.routing_key
                ));
            }
        };
        let mut publisher = Publisher::new(publisher, options.confirms, counters, on_return);
        // Groups the server joined this connection to: only their publishes are delivered.
        let mut admitted: HashSet<u32> = HashSet::new();
        let consuming = async {
            loop {
                let delivery = match pump.next().await {
                    Ok(Some(delivery)) => delivery,
                    Ok(None) => {
                        return End::Lost(
                            "the broker cancelled this connection's consumer".to_owned(),
                        );
                    }
                    Err(error) => return End::Lost(describe(&error)),
                };
                let tag = delivery.delivery_tag;
                let action = classify(counters, &options, &matches, &admitted, delivery);
                pump.handled(tag);
                match action {
                    Action::Deliver(frame) => {
                        if inbox.send(frame).await.is_err() {
                            // The app dropped its handle: let the publisher flush its goodbye.
                            std::future::pending::<()>().await;
                        }
                    }
                    Action::Close => return End::ServerClosed,
                    Action::Join(group) => {
                        admitted.insert(group);
                    }
                    Action::Leave(group) => {
                        admitted.remove(&group);
                    }
                    Action::Ignore => {}
                }
            }
        };
        let grace = options.op_timeout;
        let closing = async {
            shared.closing.notified().await;
            tokio::time::sleep(grace).await;
        };
        let end = tokio::select! {
            result = publisher.run(&mut outbox) => match result {
                Ok(()) => End::Closed,
                Err(error) => End::Lost(format!("publishing failed: {}", describe(&error))),
            },
            end = consuming => end,
            () = shared.stop.notified() => End::Lost(
                lock(&shared.stop_reason).take()
                    .unwrap_or_else(|| "stopped".to_owned()),
            ),
            () = closing => End::Lost(format!("could not flush within {grace:?} of closing")),
        };
        shared.closed.store(true, Ordering::Release);
        // `recv` now drains what was received, then reports Closed.
        drop(inbox);
        match &end {
            End::Closed => tracing::debug!("amqp client connection closed"),
            End::ServerClosed => tracing::debug!("amqp client connection closed by the server"),
            End::Lost(reason) => tracing::warn!(%reason, "amqp client connection lost"),
        }
        // Closing the connection deletes the exclusive queue and its bindings at once. The
        // channels (in `publisher` and `pump`) are dropped only after it: a channel dropped
        // while the connection is still open sends its own close, which races lapin's
        // connection close and makes lapin log a spurious connection error.
        let close = connection.close(200, "pong client link closed".into());
        let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
        drop((publisher, pump, control));
    }
}

/// Decides what a delivery is: a frame for `recv`, one of the server's in-band controls, or
/// something to drop (logged, thinned out, and counted).
fn classify(
    counters: &Counters,
    options: &AmqpOptions,
    matches: &ShortString,
    admitted: &HashSet<u32>,
    delivery: Delivery,
) -> Action {
    let exchange = delivery.exchange.as_str();
    let direct = exchange.is_empty();
    let refuse = |counter: &Counter, what: &str| {
        let count = counter.bump();
        if worth_logging(count) {
            tracing::warn!(count, what, exchange, routing_key = %delivery.routing_key, "amqp client: delivery dropped");
        }
        Action::Ignore
    };
    match delivery.properties.kind().as_ref().map(ShortString::as_str) {
        None => {
            if !direct {
                if exchange != matches.as_str() {
                    return refuse(&counters.refused_unknown, "unknown exchange");
                }
                match delivery.routing_key.as_str().parse::<u32>() {
                    Ok(group) if !admitted.contains(&group) => {
                        // Published before the server joined this connection to the group, or
                        // after it removed it: not a member then.
                        counters.filtered.bump();
                        return Action::Ignore;
                    }
                    Ok(_) => {}
                    Err(_) => return refuse(&counters.refused_unknown, "unknown routing key"),
                }
            }
            if delivery.data.len() > options.max_frame_len {
                return refuse(&counters.refused_oversized, "oversized frame");
            }
            Action::Deliver(Bytes::from(delivery.data))
        }
        // Controls come straight from the server, never through a group.
        Some(_) if !direct => {
            refuse(&counters.refused_unknown, "control message through an exchange")
        }
        Some(kind::CLOSE) => Action::Close,
        Some(kind::PROBE) => Action::Ignore,
        Some(control @ (kind::LEAVE | kind::JOIN)) => {
            let group = std::str::from_utf8(&delivery.data).ok().and_then(|text| text.parse().ok());
            match (control, group) {
                (kind::LEAVE, Some(group)) => Action::Leave(group),
                (_, Some(group)) => Action::Join(group),
                (_, None) => refuse(&counters.refused_unknown, "group control without a group"),
            }
        }
        Some(_) => refuse(&counters.refused_unknown, "unknown message type"),
    }
}
