//! The client end: one DEALER socket per connection, with a fresh routing id, connected to one
//! server endpoint; a reader task and a writer task between it and the connection's queues.
//!
//! ```text
//! send() ─► outbox (bounded) ─► writer ─► DEALER ─► server
//! recv() ◄─ inbox  (bounded) ◄─ reader ◄─ DEALER ◄─ server
//! ```
//!
//! The connection is down once the socket monitor reports the connection closed (the server
//! disconnected this connection, was dropped, or its process died): the reader hands over what
//! arrived before that, then `recv` returns [`TransportError::Closed`]. The DEALER is never
//! reconnected by the crate (zeromq 0.7 does not for DEALER), and this adapter never
//! reconnects either: the protocol does, by calling [`Connector::connect`] again, which
//! gives a new routing id and so a new `PeerId` at the server.
//!
//! When the inbox is full (the application is not reading), the reader stops reading the
//! socket: the server's stall rule then cuts the connection. When the outbox is full, the server
//! has not taken anything for a long time: the connection is closed and `send` says
//! [`TransportError::Closed`], since dropping frames silently would break rule 2.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use pong_ports::{ClientTransport, Connector, Frame, MatchId, TransportError};
use pong_transport_support::check_frame_len;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeromq::util::PeerIdentity;
use zeromq::{
    DealerRecvHalf, DealerSendHalf, DealerSocket, Socket, SocketEvent, SocketOptions, SocketRecv,
    ZmqMessage,
};

use crate::relay::LINGER;
use crate::{Hex, ZmqOptions, parse_endpoint, write_queued};

/// Opens DEALER connections to one server endpoint.
#[derive(Debug, Clone)]
pub struct ZmqConnector {
    endpoint: String,
    options: ZmqOptions,
}

impl ZmqConnector {
    /// A connector to `endpoint`, such as `tcp://game.example:7879` or `ipc:///run/pong.sock`.
    /// Nothing is dialled until [`Connector::connect`].
    ///
    /// # Errors
    /// [`TransportError::Connect`] if the endpoint does not parse.
    pub fn new(endpoint: &str, options: ZmqOptions) -> Result<Self, TransportError> {
        parse_endpoint(endpoint)
            .map_err(|reason| TransportError::Connect { addr: endpoint.to_owned(), reason })?;
        Ok(Self { endpoint: endpoint.to_owned(), options: options.normalized() })
    }

    /// Opens a connection and returns the concrete client (for its [`ZmqClient::routing_id`]).
    /// Must be called inside a tokio runtime, which then runs the connection's tasks.
    ///
    /// # Errors
    /// [`TransportError::Connect`] if no server completed the ZMTP handshake within
    /// [`ZmqOptions::connect_timeout`] (refused connections are retried until then).
    pub async fn connect_client(&self) -> Result<ZmqClient, TransportError> {
        let identity = PeerIdentity::new();
        let routing_id = Bytes::from(identity.clone());
        let mut socket_options = SocketOptions::default();
        socket_options.peer_identity(identity).connect_timeout(self.options.connect_timeout);
        let mut dealer = DealerSocket::with_options(socket_options);
        let monitor = dealer.monitor();
        dealer.connect(&self.endpoint).await.map_err(|e| TransportError::Connect {
            addr: self.endpoint.clone(),
            reason: e.to_string(),
        })?;
        let (send_half, recv_half) = dealer.split();

        let capacity = self.options.queue_capacity;
        let (outbox, queued) = mpsc::channel(capacity);
        let (arrived, inbox) = mpsc::channel(capacity);
        let connection = Arc::new(ConnectionState { down: AtomicBool::new(false) });
        let abort = CancellationToken::new();
        let stop_reader = abort.child_token();
        tokio::spawn(read_from_server(ReaderTask {
            socket: recv_half,
            monitor,
            arrived,
            connection: Arc::clone(&connection),
            stop: stop_reader.clone(),
            abort: abort.clone(),
            max_frame_len: self.options.max_frame_len,
        }));
        let writer = tokio::spawn(write_to_server(
            send_half,
            queued,
            Arc::clone(&connection),
            abort.clone(),
        ));
        tracing::debug!(
            endpoint = %self.endpoint,
            routing_id = %Hex(&routing_id),
            "zmq connection opened",
        );
        Ok(ZmqClient {
            outbox: Some(outbox),
            inbox,
            connection,
            abort,
            stop_reader,
            writer: Some(writer),
            routing_id,
            max_frame_len: self.options.max_frame_len,
            closed: false,
        })
    }
}

#[async_trait]
impl Connector for ZmqConnector {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        Ok(Box::new(self.connect_client().await?))
    }

    fn describe(&self) -> String {
        self.endpoint.clone()
    }
}

/// What the client and its two tasks share about the connection.
#[derive(Debug)]
struct ConnectionState {
    /// Set once the connection is known to be gone.
    down: AtomicBool,
}

/// The client end of one DEALER connection. Dropping it closes the connection like
/// [`ClientTransport::close`], without waiting.
#[derive(Debug)]
pub struct ZmqClient {
    /// Taken on close, so the writer drains and ends.
    outbox: Option<mpsc::Sender<Frame>>,
    inbox: mpsc::Receiver<Frame>,
    connection: Arc<ConnectionState>,
    /// Stops both tasks at once.
    abort: CancellationToken,
    /// Stops the reader only (a child of `abort`).
    stop_reader: CancellationToken,
    writer: Option<JoinHandle<()>>,
    routing_id: Bytes,
    max_frame_len: usize,
    closed: bool,
}

impl ZmqClient {
    /// The routing id this connection's DEALER announced, which the server's ROUTER knows it by
    /// (an address for replies, not a credential).
    #[must_use]
    pub fn routing_id(&self) -> &[u8] {
        &self.routing_id
    }

    /// Starts closing: the writer sends what is queued, the reader stops.
    fn shut(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        self.outbox = None;
        self.stop_reader.cancel();
        self.inbox.close();
    }
}

impl Drop for ZmqClient {
    fn drop(&mut self) {
        self.shut();
        // The writer drains in the background, but not for ever if the server stopped
        // reading.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let abort = self.abort.clone();
            runtime.spawn(async move {
                tokio::time::sleep(LINGER).await;
                abort.cancel();
            });
        } else {
            self.abort.cancel();
        }
    }
}

#[async_trait]
impl ClientTransport for ZmqClient {
    async fn recv(&mut self) -> Result<Frame, TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        self.inbox.recv().await.ok_or(TransportError::Closed)
    }

    fn send(&self, frame: Frame) -> Result<(), TransportError> {
        if self.closed || self.connection.down.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        check_frame_len(&frame, self.max_frame_len)?;
        let outbox = self.outbox.as_ref().ok_or(TransportError::Closed)?;
        match outbox.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    routing_id = %Hex(&self.routing_id),
                    "zmq queue towards the server is full; closing the connection",
                );
                self.connection.down.store(true, Ordering::Release);
                self.abort.cancel();
                Err(TransportError::Closed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TransportError::Closed),
        }
    }

    async fn subscribe(&mut self, _group: MatchId) -> Result<(), TransportError> {
        // The server keeps the groups (join_group) and applies them before it answers the
        // frame that led to them, so there is nothing to confirm here.
        Ok(())
    }

    async fn close(&mut self) {
        self.shut();
        if let Some(writer) = self.writer.take()
            && tokio::time::timeout(LINGER, writer).await.is_err()
        {
            tracing::debug!(
                routing_id = %Hex(&self.routing_id),
                "zmq connection closed before its queue drained",
            );
        }
        self.abort.cancel();
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

/// Everything the reader owns. `M` is the crate's monitor channel.
struct ReaderTask<M> {
    socket: DealerRecvHalf,
    monitor: M,
    arrived: mpsc::Sender<Frame>,
    connection: Arc<ConnectionState>,
    stop: CancellationToken,
    abort: CancellationToken,
    max_frame_len: usize,
}

/// Why the reader stopped.
enum ReaderEnd {
    /// The client is closing.
    Stopped,
    /// The connection is gone.
    Lost(String),
}

async fn read_from_server<M>(mut task: ReaderTask<M>)
where
    M: futures_util::Stream<Item = SocketEvent> + Unpin,
{
    let end = loop {
        let message = tokio::select! {
            biased;
            () = task.stop.cancelled() => break ReaderEnd::Stopped,
            // The crate reports the close only after the last message of the connection
            // has been returned by `recv`, so nothing that arrived is lost by stopping here.
            event = task.monitor.next() => match event {
                Some(SocketEvent::Disconnected(_)) => {
                    break ReaderEnd::Lost("the server closed the connection".to_owned());
                }
                None => break ReaderEnd::Lost("the socket monitor ended".to_owned()),
                Some(other) => {
                    tracing::trace!(event = ?other, "zmq client socket event");
                    continue;
                }
            },
            message = task.socket.recv() => match message {
                Ok(message) => message,
                Err(e) => break ReaderEnd::Lost(format!("receive failed: {e}")),
            },
        };
        let Some(frame) = single_frame(message, task.max_frame_len) else { continue };
        tokio::select! {
            biased;
            () = task.stop.cancelled() => break ReaderEnd::Stopped,
            sent = task.arrived.send(frame) => if sent.is_err() {
                break ReaderEnd::Stopped;
            },
        }
    };
    if let ReaderEnd::Lost(reason) = end {
        tracing::debug!(reason, "zmq connection lost");
        task.connection.down.store(true, Ordering::Release);
        task.abort.cancel();
    }
}

/// The frame in a message from the server, or `None` (logged) if the message is not one
/// non-empty part within the limit. The server is trusted to send frames, but nothing from
/// the network may panic or reach the client core unchecked.
fn single_frame(message: ZmqMessage, max_frame_len: usize) -> Option<Frame> {
    let mut parts = message.into_vecdeque();
    match parts.pop_front() {
        Some(frame) if parts.is_empty() && !frame.is_empty() && frame.len() <= max_frame_len => {
            Some(frame)
        }
        first => {
            tracing::debug!(
                parts = parts.len() + usize::from(first.is_some()),
                len = first.map_or(0, |f| f.len()),
                "zmq message from the server dropped: not one non-empty frame within the limit"
            );
            None
        }
    }
}

async fn write_to_server(
    mut socket: DealerSendHalf,
    mut queued: mpsc::Receiver<Frame>,
    connection: Arc<ConnectionState>,
    abort: CancellationToken,
) {
    if let Err(e) = write_queued(&mut socket, &mut queued, &abort, None).await {
        tracing::debug!(error = %e, "zmq send to the server failed");
        connection.down.store(true, Ordering::Release);
    }
    // Dropping the send half (and the reader its half) drops the socket; the crate then
    // writes what it still holds and closes the connection.
}
