//! Cross-crate tests of Distributed Pong.
//!
//! The library half holds what several test files share:
//! - the transport [`conformance`] suite, written once and run against every Transport
//!   adapter. Each adapter has a small test file (in `tests/tests/` here, or in its own
//!   crate) that names a [`conformance::Harness`] and expands [`conformance_tests!`];
//! - the RabbitMQ [`broker`] that the adapter's tests and the binary's end-to-end tests
//!   share, and [`unique`] names for what tests share;
//! - [`python`]: Python's reference implementations as test oracles, installed when missing.
//!
//! The simulated network and frame helpers for tests of the pure core live with it, in
//! `pong_domain::testing` (feature `testing`).

pub mod broker;
pub mod conformance;
pub mod python;

/// A name no other test (in this run or any other) uses, so tests can share a broker, a
/// temporary directory or a queue name: `tag`, this process, a counter, the clock.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{tag}-{}-{}-{nanos:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
