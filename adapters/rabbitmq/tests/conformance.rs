//! The transport conformance suite (one test per rule of the Transport port) against a real
//! RabbitMQ broker: see `tests/common` for how the broker is found, and when a test fails or
//! is skipped without one. Every check gets its own server name, so they run in parallel on
//! one broker; the broker-restart test lives in its own file so it never overlaps them.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use pong_ports::{Connector, ServerTransport};
use pong_tests::conformance::Harness;
use pong_transport_amqp::{AmqpConnector, AmqpOptions, AmqpServer};

/// A fresh, uniquely named server per check.
struct Amqp {
    url: String,
    confirms: bool,
}

#[async_trait::async_trait]
impl Harness for Amqp {
    async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
        let options = AmqpOptions { confirms: self.confirms, ..common::options("conformance") };
        let server = AmqpServer::connect(&self.url, options.clone()).await.unwrap();
        let connector = AmqpConnector::new(&self.url, options).unwrap();
        (Box::new(server), Arc::new(connector))
    }
}

pong_tests::conformance_tests!(match common::broker("conformance") {
    Some(url) => Amqp { url, confirms: false },
    None => return,
});

/// The same suite with publisher confirms on, both ends.
mod with_confirms {
    use super::{Amqp, common};

    pong_tests::conformance_tests!(match common::broker("conformance with confirms") {
        Some(url) => Amqp { url, confirms: true },
        None => return,
    });
}
