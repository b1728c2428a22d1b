//! The transport conformance suite against the memory transport seen through the link
//! conditioner with perfect conditions: the wrapper must be transparent then.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use pong_link_conditioner::{ConditionedConnector, LinkConditions};
use pong_ports::{Connector, ServerTransport};
use pong_tests::conformance::Fresh;
use pong_transport_memory::MemoryHub;

/// A fresh hub per check, its connector wrapped.
fn perfectly_conditioned_memory() -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
    let hub = MemoryHub::default();
    let connector = ConditionedConnector::new(Arc::new(hub.connector()), LinkConditions::perfect());
    (Box::new(hub.server().unwrap()), Arc::new(connector))
}

pong_tests::conformance_tests!(Fresh(perfectly_conditioned_memory));
