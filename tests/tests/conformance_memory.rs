//! The transport conformance suite against the in-memory transport.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pong_ports::{Connector, ServerTransport};
use pong_tests::conformance::Fresh;
use pong_transport_memory::MemoryHub;

/// A fresh hub per check.
fn memory() -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
    let hub = MemoryHub::default();
    (Box::new(hub.server().unwrap()), Arc::new(hub.connector()))
}

pong_tests::conformance_tests!(Fresh(memory));
