//! The transport conformance suite against the ZeroMQ transport, over loopback tcp.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pong_ports::{Connector, ServerTransport};
use pong_tests::conformance::Harness;
use pong_transport_zmq::{ZmqConnector, ZmqOptions, ZmqServer};

/// A fresh server endpoint on an ephemeral port per check.
struct Zmq;

#[async_trait::async_trait]
impl Harness for Zmq {
    async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
        let server = ZmqServer::bind("tcp://127.0.0.1:0", ZmqOptions::default()).await.unwrap();
        let connector = ZmqConnector::new(&server.local_addr(), ZmqOptions::default()).unwrap();
        (Box::new(server), Arc::new(connector))
    }
}

pong_tests::conformance_tests!(Zmq);
