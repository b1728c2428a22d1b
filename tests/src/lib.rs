//! Cross-crate tests of Distributed Pong.
//!
//! The library half holds what several test files share; today that is the transport
//! [`conformance`] suite, written once and run against every Transport adapter. Each
//! adapter has a small test file (in `tests/tests/` here, or in its own crate) that names a
//! [`conformance::Harness`] and expands [`conformance_tests!`].

pub mod conformance;
