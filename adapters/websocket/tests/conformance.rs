//! The transport conformance suite over real loopback sockets: a fresh server on a free
//! port per check, clients dialling the URL it reports.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pong_ports::{Connector, ServerTransport};
use pong_tests::conformance::Harness;
use pong_transport_ws::{WsConnector, WsOptions, WsServer};

/// A fresh server on 127.0.0.1, any free port, default options.
struct Loopback;

#[async_trait::async_trait]
impl Harness for Loopback {
    async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
        let server = WsServer::bind("127.0.0.1:0", WsOptions::default()).unwrap();
        let connector = WsConnector::new(&server.local_addr(), WsOptions::default()).unwrap();
        (Box::new(server), Arc::new(connector))
    }
}

pong_tests::conformance_tests!(Loopback);
