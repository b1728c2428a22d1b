//! The transports a benchmark can run on, opened on loopback: the in-process memory
//! transport (the baseline) and every network transport compiled in (cargo features
//! `websocket`, `rabbitmq`, `zeromq`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Result, bail};
use pong_ports::{Connector, ServerTransport};

/// The RabbitMQ broker used when neither `--amqp-url` nor `PONG_AMQP_URL` names one.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The broker option of every tool that can use RabbitMQ.
#[derive(clap::Args, Clone, Debug)]
pub struct AmqpArgs {
    /// The RabbitMQ broker for the amqp transport.
    #[arg(
        long,
        value_name = "URL",
        env = "PONG_AMQP_URL",
        hide_env_values = true,
        default_value = DEFAULT_AMQP_URL
    )]
    pub amqp_url: String,
}

/// The transports a tool measures, and the broker for RabbitMQ.
#[derive(clap::Args, Clone, Debug)]
pub struct KindsArgs {
    /// The transports to measure, comma-separated, from memory, ws, amqp, zmq (reported in
    /// that order). One not compiled in is listed as such.
    #[arg(
        long,
        value_name = "KINDS",
        value_delimiter = ',',
        default_value = "memory,ws,amqp,zmq",
        value_parser = Kind::parse,
        action = clap::ArgAction::Set
    )]
    pub only: Vec<Kind>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub amqp: AmqpArgs,
}

/// One transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// In-process channels (`pong-transport-memory`): the floor every other is compared to.
    Memory,
    /// WebSockets over loopback TCP.
    Ws,
    /// RabbitMQ through the local broker.
    Amqp,
    /// ZeroMQ over loopback TCP.
    Zmq,
}

impl Kind {
    /// Every transport, in report order.
    pub const ALL: [Kind; 4] = [Kind::Memory, Kind::Ws, Kind::Amqp, Kind::Zmq];

    /// The short name used on command lines and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Ws => "ws",
            Kind::Amqp => "amqp",
            Kind::Zmq => "zmq",
        }
    }

    /// Parses a short name (the tools' command-line value parser for transports; a list
    /// such as `--only memory,ws` is split on commas by clap and each name parsed here).
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(s: &str) -> Result<Kind> {
        match Kind::ALL.into_iter().find(|k| k.name() == s) {
            Some(k) => Ok(k),
            None => bail!("unknown transport {s:?} (memory, ws, amqp, zmq)"),
        }
    }

    /// True if this binary was built with the transport (memory always is).
    pub fn compiled_in(self) -> bool {
        match self {
            Kind::Memory => true,
            Kind::Ws => cfg!(feature = "websocket"),
            Kind::Amqp => cfg!(feature = "rabbitmq"),
            Kind::Zmq => cfg!(feature = "zeromq"),
        }
    }
}

/// The two ends of a transport: the server's endpoint and a connector for its clients.
pub struct Endpoints {
    /// The server end.
    pub server: Box<dyn ServerTransport>,
    /// Opens client links to it.
    pub connector: Arc<dyn Connector>,
}

/// A name no other server on the broker uses (AMQP servers are named, one consumer each).
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Opens `kind` on loopback: a fresh memory hub, a WebSocket or ZeroMQ server on an
/// ephemeral port, or a uniquely named server on the broker at `amqp_url`. Must be called
/// on the tokio runtime that will run the server end (the adapters spawn their tasks on it).
///
/// # Errors
/// The transport is not compiled in, or cannot be opened (no broker, no port).
pub async fn open(kind: Kind, amqp_url: &str) -> Result<Endpoints> {
    match kind {
        Kind::Memory => {
            use pong_transport_memory::{MemoryHub, MemoryOptions};
            let hub = MemoryHub::new(MemoryOptions::default());
            let server = hub.server()?;
            Ok(Endpoints { server: Box::new(server), connector: Arc::new(hub.connector()) })
        }
        Kind::Ws => ws().await,
        Kind::Amqp => amqp(amqp_url).await,
        Kind::Zmq => zmq().await,
    }
}

/// A connector dialling a server that runs elsewhere (another process, another host):
/// `ws://HOST:PORT`, `tcp://HOST:PORT` for ZeroMQ, the server's name for RabbitMQ.
///
/// # Errors
/// The memory transport (it cannot cross a process), a transport not compiled in, or an
/// address the adapter refuses.
pub fn dial(kind: Kind, server: &str, amqp_url: &str) -> Result<Arc<dyn Connector>> {
    match kind {
        Kind::Memory => bail!("the memory transport cannot reach another process"),
        Kind::Ws => ws_connector(server),
        Kind::Amqp => amqp_connector(server, amqp_url),
        Kind::Zmq => zmq_connector(server),
    }
}

#[cfg(feature = "websocket")]
fn ws_connector(server: &str) -> Result<Arc<dyn Connector>> {
    use pong_transport_ws::{WsConnector, WsOptions};
    Ok(Arc::new(WsConnector::new(server, WsOptions::default())?))
}

#[cfg(not(feature = "websocket"))]
fn ws_connector(_: &str) -> Result<Arc<dyn Connector>> {
    Err(missing(Kind::Ws))
}

#[cfg(feature = "rabbitmq")]
fn amqp_connector(server: &str, url: &str) -> Result<Arc<dyn Connector>> {
    use pong_transport_amqp::{AmqpConnector, AmqpOptions};
    Ok(Arc::new(AmqpConnector::new(url, AmqpOptions::named(server))?))
}

#[cfg(not(feature = "rabbitmq"))]
fn amqp_connector(_: &str, _: &str) -> Result<Arc<dyn Connector>> {
    Err(missing(Kind::Amqp))
}

#[cfg(feature = "zeromq")]
fn zmq_connector(server: &str) -> Result<Arc<dyn Connector>> {
    use pong_transport_zmq::{ZmqConnector, ZmqOptions};
    Ok(Arc::new(ZmqConnector::new(server, ZmqOptions::default())?))
}

#[cfg(not(feature = "zeromq"))]
fn zmq_connector(_: &str) -> Result<Arc<dyn Connector>> {
    Err(missing(Kind::Zmq))
}

// Unused when every transport is compiled in.
#[allow(dead_code)]
fn missing(kind: Kind) -> anyhow::Error {
    anyhow::anyhow!("the {} transport is not compiled in (see the crate's features)", kind.name())
}

#[cfg(feature = "websocket")]
async fn ws() -> Result<Endpoints> {
    use pong_transport_ws::{WsOptions, WsServer};
    let server = WsServer::bind("127.0.0.1:0", WsOptions::default())?;
    let connector = ws_connector(&server.local_addr())?;
    Ok(Endpoints { server: Box::new(server), connector })
}

#[cfg(not(feature = "websocket"))]
async fn ws() -> Result<Endpoints> {
    Err(missing(Kind::Ws))
}

#[cfg(feature = "rabbitmq")]
async fn amqp(url: &str) -> Result<Endpoints> {
    use pong_transport_amqp::{AmqpOptions, AmqpServer};
    let name = unique_name("bench");
    let server = AmqpServer::connect(url, AmqpOptions::named(name.clone())).await?;
    let connector = amqp_connector(&name, url)?;
    Ok(Endpoints { server: Box::new(server), connector })
}

#[cfg(not(feature = "rabbitmq"))]
async fn amqp(_: &str) -> Result<Endpoints> {
    Err(missing(Kind::Amqp))
}

#[cfg(feature = "zeromq")]
async fn zmq() -> Result<Endpoints> {
    use pong_transport_zmq::{ZmqOptions, ZmqServer};
    // Every client of a run comes from this host.
    let options = ZmqOptions { max_connections_per_address: usize::MAX, ..ZmqOptions::default() };
    let server = ZmqServer::bind("tcp://127.0.0.1:0", options).await?;
    let connector = zmq_connector(&server.local_addr())?;
    Ok(Endpoints { server: Box::new(server), connector })
}

#[cfg(not(feature = "zeromq"))]
async fn zmq() -> Result<Endpoints> {
    Err(missing(Kind::Zmq))
}
