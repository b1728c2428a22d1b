//! Turns command-line choices into concrete transports. Each network transport is a cargo
//! feature; asking for one that was not compiled in is a clear error, not a panic.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use pong_http::HttpService;
use pong_ports::{Connector, ServerTransport};

use crate::cli::{TransportArgs, TransportKind};

/// The default listening address of each transport.
pub(crate) fn default_listen(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Ws => "0.0.0.0:7878",
        TransportKind::Amqp => "pong",
        TransportKind::Zmq => "tcp://0.0.0.0:7879",
    }
}

/// The default server address clients dial for each transport.
pub(crate) fn default_server(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Ws => "ws://127.0.0.1:7878",
        TransportKind::Amqp => "pong",
        TransportKind::Zmq => "tcp://127.0.0.1:7879",
    }
}

// Unused when every transport is compiled in.
#[allow(dead_code)]
fn missing(kind: TransportKind, feature: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the {kind:?} transport is not compiled into this binary: rebuild with `--features {feature}`"
    )
}

/// TLS material for a `wss://` server.
// Without the `tls` feature a server given TLS material refuses to start, unread.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) struct ServerTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// The transport's name in metrics and status (`pong_links{transport=…}`).
pub(crate) fn name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Ws => "websocket",
        TransportKind::Amqp => "amqp",
        TransportKind::Zmq => "zmq",
    }
}

/// Opens the server end of the chosen transport on `listen`; a WebSocket server also
/// answers plain HTTP requests on its port with `http`.
pub(crate) async fn server(
    args: &TransportArgs,
    listen: &str,
    tls: Option<ServerTls>,
    http: Option<HttpService>,
    links_per_address: u32,
) -> Result<Box<dyn ServerTransport>> {
    if tls.is_some() && args.transport != TransportKind::Ws {
        bail!("--tls-cert/--tls-key apply to the WebSocket transport only");
    }
    match args.transport {
        TransportKind::Ws => ws_server(listen, tls, http),
        TransportKind::Amqp => amqp_server(&args.amqp_url, listen).await,
        TransportKind::Zmq => zmq_server(listen, links_per_address).await,
    }
}

/// A connector for the client end of the chosen transport, dialling `server`.
pub(crate) fn connector(args: &TransportArgs, server: &str) -> Result<Arc<dyn Connector>> {
    match args.transport {
        TransportKind::Ws => ws_connector(server, args.tls_ca.as_deref()),
        TransportKind::Amqp => amqp_connector(&args.amqp_url, server),
        TransportKind::Zmq => zmq_connector(server),
    }
}

#[cfg(feature = "websocket")]
fn ws_server(
    listen: &str,
    tls: Option<ServerTls>,
    http: Option<HttpService>,
) -> Result<Box<dyn ServerTransport>> {
    use pong_transport_ws::{WsOptions, WsServer};
    let mut options = match tls {
        None => WsOptions::default(),
        #[cfg(feature = "tls")]
        Some(t) => WsOptions::default().with_tls_pem(&t.cert, &t.key)?,
        #[cfg(not(feature = "tls"))]
        Some(_) => bail!("TLS is not compiled into this binary: rebuild with `--features tls`"),
    };
    options.http = http;
    Ok(Box::new(WsServer::bind(listen, options)?))
}

#[cfg(not(feature = "websocket"))]
fn ws_server(
    _: &str,
    _: Option<ServerTls>,
    _: Option<HttpService>,
) -> Result<Box<dyn ServerTransport>> {
    Err(missing(TransportKind::Ws, "websocket"))
}

#[cfg(feature = "websocket")]
fn ws_connector(server: &str, ca: Option<&std::path::Path>) -> Result<Arc<dyn Connector>> {
    use pong_transport_ws::{WsConnector, WsOptions};
    let options = match ca {
        None => WsOptions::default(),
        #[cfg(feature = "tls")]
        Some(ca) => WsOptions::default().with_trusted_ca_pem(ca)?,
        #[cfg(not(feature = "tls"))]
        Some(_) => bail!("TLS is not compiled into this binary: rebuild with `--features tls`"),
    };
    Ok(Arc::new(WsConnector::new(server, options)?))
}

#[cfg(not(feature = "websocket"))]
fn ws_connector(_: &str, _: Option<&std::path::Path>) -> Result<Arc<dyn Connector>> {
    Err(missing(TransportKind::Ws, "websocket"))
}

#[cfg(feature = "rabbitmq")]
async fn amqp_server(url: &str, name: &str) -> Result<Box<dyn ServerTransport>> {
    use pong_transport_amqp::{AmqpOptions, AmqpServer};
    Ok(Box::new(AmqpServer::connect(url, AmqpOptions::named(name)).await?))
}

#[cfg(not(feature = "rabbitmq"))]
async fn amqp_server(_: &str, _: &str) -> Result<Box<dyn ServerTransport>> {
    Err(missing(TransportKind::Amqp, "rabbitmq"))
}

#[cfg(feature = "rabbitmq")]
fn amqp_connector(url: &str, name: &str) -> Result<Arc<dyn Connector>> {
    use pong_transport_amqp::{AmqpConnector, AmqpOptions};
    Ok(Arc::new(AmqpConnector::new(url, AmqpOptions::named(name))?))
}

#[cfg(not(feature = "rabbitmq"))]
fn amqp_connector(_: &str, _: &str) -> Result<Arc<dyn Connector>> {
    Err(missing(TransportKind::Amqp, "rabbitmq"))
}

#[cfg(feature = "zeromq")]
async fn zmq_server(listen: &str, links_per_address: u32) -> Result<Box<dyn ServerTransport>> {
    use pong_transport_zmq::{ZmqOptions, ZmqServer};
    // The ROUTER behind the relay sees no client address, so the relay holds the bound the
    // server core holds for the other transports.
    let options = ZmqOptions {
        max_connections_per_address: usize::try_from(links_per_address).unwrap_or(usize::MAX),
        ..ZmqOptions::default()
    };
    Ok(Box::new(ZmqServer::bind(listen, options).await?))
}

#[cfg(not(feature = "zeromq"))]
async fn zmq_server(_: &str, _: u32) -> Result<Box<dyn ServerTransport>> {
    Err(missing(TransportKind::Zmq, "zeromq"))
}

#[cfg(feature = "zeromq")]
fn zmq_connector(server: &str) -> Result<Arc<dyn Connector>> {
    use pong_transport_zmq::{ZmqConnector, ZmqOptions};
    Ok(Arc::new(ZmqConnector::new(server, ZmqOptions::default())?))
}

#[cfg(not(feature = "zeromq"))]
fn zmq_connector(_: &str) -> Result<Arc<dyn Connector>> {
    Err(missing(TransportKind::Zmq, "zeromq"))
}
