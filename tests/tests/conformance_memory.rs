//! The transport conformance suite against the in-memory transport.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pong_ports::{Connector, ServerTransport};
use pong_tests::conformance::Harness;
use pong_transport_memory::MemoryHub;

/// A fresh hub per check.
struct Memory;

#[async_trait::async_trait]
impl Harness for Memory {
    async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
        let hub = MemoryHub::default();
        (Box::new(hub.server().unwrap()), Arc::new(hub.connector()))
    }
}

pong_tests::conformance_tests!(Memory);
