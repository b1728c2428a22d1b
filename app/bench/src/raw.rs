//! The same round trip as the adapters make, through the bare libraries with nothing of
//! ours in between: the yardstick an adapter's overhead is a ratio to.
//!
//! | transport | the bare round trip |
//! | --- | --- |
//! | memory | two bounded tokio `mpsc` channels and an echo task |
//! | ws | tokio-tungstenite: a client and an accepted server stream over loopback TCP (`TCP_NODELAY` on both, as the adapter sets), the server task echoing each binary message |
//! | amqp | lapin: one connection per end; the client publishes to the server's queue with `reply_to` = its own exclusive queue, the server task consumes (auto-ack) and publishes the body back to `reply_to` through the default exchange, the client consumes it (auto-ack) |
//! | zmq | zeromq: a DEALER connected to a ROUTER over loopback TCP, the ROUTER task sending every message back to its sender |
//!
//! Each echo runs in a task of its own, as the adapters' server ends do.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::transports::Kind;

/// A client of a bare echo server, and the server's task (stopped when this is dropped).
pub struct RawEcho {
    client: Client,
    server: Option<JoinHandle<()>>,
}

impl Drop for RawEcho {
    fn drop(&mut self) {
        if let Some(t) = self.server.take() {
            t.abort();
        }
    }
}

enum Client {
    Memory {
        tx: tokio::sync::mpsc::Sender<Bytes>,
        rx: tokio::sync::mpsc::Receiver<Bytes>,
    },
    #[cfg(feature = "websocket")]
    Ws(Box<ws::Stream>),
    #[cfg(feature = "rabbitmq")]
    Amqp(Box<amqp::AmqpClient>),
    #[cfg(feature = "zeromq")]
    Zmq(Box<zeromq::DealerSocket>),
}

impl RawEcho {
    /// Starts a bare echo server for `kind` on loopback and connects a client to it.
    ///
    /// # Errors
    /// The library is not compiled in, or cannot connect.
    pub async fn open(kind: Kind, amqp_url: &str) -> Result<RawEcho> {
        match kind {
            Kind::Memory => {
                let (tx, mut server_rx) = tokio::sync::mpsc::channel::<Bytes>(4096);
                let (server_tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4096);
                let server = tokio::spawn(async move {
                    while let Some(f) = server_rx.recv().await {
                        if server_tx.send(f).await.is_err() {
                            break;
                        }
                    }
                });
                Ok(RawEcho { client: Client::Memory { tx, rx }, server: Some(server) })
            }
            #[cfg(feature = "websocket")]
            Kind::Ws => {
                let (stream, server) = ws::open().await?;
                Ok(RawEcho { client: Client::Ws(Box::new(stream)), server: Some(server) })
            }
            #[cfg(feature = "rabbitmq")]
            Kind::Amqp => {
                let (client, server) = amqp::open(amqp_url).await?;
                Ok(RawEcho { client: Client::Amqp(Box::new(client)), server: Some(server) })
            }
            #[cfg(feature = "zeromq")]
            Kind::Zmq => {
                let (dealer, server) = zmq::open().await?;
                Ok(RawEcho { client: Client::Zmq(Box::new(dealer)), server: Some(server) })
            }
            #[allow(unreachable_patterns)] // When every library is compiled in.
            other => {
                let _ = amqp_url;
                bail!("the bare {} library is not compiled in", other.name())
            }
        }
    }

    /// Sends `frame` and waits for its echo; returns the echo's length.
    ///
    /// # Errors
    /// The link failed.
    pub async fn round_trip(&mut self, frame: &Bytes) -> Result<usize> {
        match &mut self.client {
            Client::Memory { tx, rx } => {
                tx.send(frame.clone()).await.context("echo task gone")?;
                Ok(rx.recv().await.context("echo task gone")?.len())
            }
            #[cfg(feature = "websocket")]
            Client::Ws(s) => ws::round_trip(s, frame).await,
            #[cfg(feature = "rabbitmq")]
            Client::Amqp(c) => c.round_trip(frame).await,
            #[cfg(feature = "zeromq")]
            Client::Zmq(d) => zmq::round_trip(d, frame).await,
        }
    }

    /// Sends `frame` one way (client to server) and waits until the server end has it;
    /// only the AMQP echo supports this (its server end is polled by the caller then).
    ///
    /// # Errors
    /// Not AMQP, or the link failed.
    pub async fn one_way(&mut self, frame: &Bytes) -> Result<()> {
        match &mut self.client {
            #[cfg(feature = "rabbitmq")]
            Client::Amqp(c) => c.one_way(frame).await,
            _ => {
                let _ = frame;
                bail!("one-way timing is only measured for AMQP")
            }
        }
    }
}

#[cfg(feature = "websocket")]
mod ws {
    use anyhow::{Context, Result, bail};
    use bytes::Bytes;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;

    pub(super) type Stream = WebSocketStream<TcpStream>;

    pub(super) async fn open() -> Result<(Stream, JoinHandle<()>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let _ = tcp.set_nodelay(true);
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Binary(b) = msg
                    && ws.send(Message::Binary(b)).await.is_err()
                {
                    break;
                }
            }
        });
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (stream, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp)
            .await
            .context("WebSocket handshake")?;
        Ok((stream, server))
    }

    pub(super) async fn round_trip(s: &mut Stream, frame: &Bytes) -> Result<usize> {
        s.send(Message::Binary(frame.clone())).await?;
        loop {
            match s.next().await {
                Some(Ok(Message::Binary(b))) => return Ok(b.len()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("the echo server closed"),
            }
        }
    }
}

#[cfg(feature = "rabbitmq")]
mod amqp {
    use anyhow::{Context, Result};
    use bytes::Bytes;
    use futures_util::StreamExt;
    use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::{FieldTable, ShortString};
    use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
    use tokio::task::JoinHandle;

    /// The client end: a connection, a publishing channel and a consumer of its own queue;
    /// plus, for one-way timing, the server's consumer borrowed back from its task.
    pub(crate) struct AmqpClient {
        _connections: [Connection; 2],
        channel: Channel,
        consumer: Consumer,
        inbound: ShortString,
        reply_to: ShortString,
        /// One-way mode: frames go to this queue, which the client itself consumes.
        one_way: Option<(ShortString, Consumer)>,
    }

    async fn consume(channel: &Channel, queue: ShortString, tag: &str) -> Result<Consumer> {
        let options = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        Ok(channel.basic_consume(queue, tag.into(), options, FieldTable::default()).await?)
    }

    async fn exclusive_queue(channel: &Channel, name: &str) -> Result<ShortString> {
        let declare = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let q = channel.queue_declare(name.into(), declare, FieldTable::default()).await?;
        Ok(q.name().clone())
    }

    pub(super) async fn open(url: &str) -> Result<(AmqpClient, JoinHandle<()>)> {
        let server_conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .with_context(|| "cannot reach the broker (set PONG_AMQP_URL)")?;
        let server_ch = server_conn.create_channel().await?;
        let inbound =
            exclusive_queue(&server_ch, &crate::transports::unique_name("raw-in")).await?;
        let mut server_consumer = consume(&server_ch, inbound.clone(), "raw-server").await?;
        let server = tokio::spawn(async move {
            let _keep = server_conn;
            while let Some(Ok(d)) = server_consumer.next().await {
                let Some(to) = d.properties.reply_to().clone() else { continue };
                let publish = server_ch.basic_publish(
                    "".into(),
                    to,
                    BasicPublishOptions::default(),
                    &d.data,
                    BasicProperties::default(),
                );
                if publish.await.is_err() {
                    break;
                }
            }
        });
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let reply_to = exclusive_queue(&channel, "").await?;
        let consumer = consume(&channel, reply_to.clone(), "raw-client").await?;
        // One way: a queue consumed on a third connection, as the server's would be, but
        // polled by the measuring task so that both timestamps are on one clock.
        let sink_connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let sink_channel = sink_connection.create_channel().await?;
        let sink = exclusive_queue(&sink_channel, "").await?;
        let sink_consumer = consume(&sink_channel, sink.clone(), "raw-sink").await?;
        let client = AmqpClient {
            _connections: [connection, sink_connection],
            channel,
            consumer,
            inbound,
            reply_to,
            one_way: Some((sink, sink_consumer)),
        };
        Ok((client, server))
    }

    impl AmqpClient {
        pub(super) async fn round_trip(&mut self, frame: &Bytes) -> Result<usize> {
            let props = BasicProperties::default().with_reply_to(self.reply_to.clone());
            self.channel
                .basic_publish(
                    "".into(),
                    self.inbound.clone(),
                    BasicPublishOptions::default(),
                    frame,
                    props,
                )
                .await?;
            let d = self.consumer.next().await.context("consumer ended")??;
            Ok(d.data.len())
        }

        pub(super) async fn one_way(&mut self, frame: &Bytes) -> Result<()> {
            let Some((sink, consumer)) = self.one_way.as_mut() else {
                anyhow::bail!("no one-way queue")
            };
            self.channel
                .basic_publish(
                    "".into(),
                    sink.clone(),
                    BasicPublishOptions::default(),
                    frame,
                    BasicProperties::default(),
                )
                .await?;
            consumer.next().await.context("consumer ended")??;
            Ok(())
        }
    }
}

#[cfg(feature = "zeromq")]
mod zmq {
    use anyhow::{Context, Result};
    use bytes::Bytes;
    use tokio::task::JoinHandle;
    use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

    pub(super) async fn open() -> Result<(DealerSocket, JoinHandle<()>)> {
        let mut router = RouterSocket::new();
        let endpoint = router.bind("tcp://127.0.0.1:0").await.context("ROUTER bind")?;
        let server = tokio::spawn(async move {
            while let Ok(m) = router.recv().await {
                if router.send(m).await.is_err() {
                    break;
                }
            }
        });
        let mut dealer = DealerSocket::new();
        dealer.connect(&endpoint.to_string()).await.context("DEALER connect")?;
        Ok((dealer, server))
    }

    pub(super) async fn round_trip(d: &mut DealerSocket, frame: &Bytes) -> Result<usize> {
        d.send(ZmqMessage::from(frame.clone())).await?;
        let m = d.recv().await?;
        Ok(m.get(0).map_or(0, Bytes::len))
    }
}
