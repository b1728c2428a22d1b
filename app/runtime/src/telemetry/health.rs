//! What `/healthz` checks: the server loop is serving and beating, not draining, and its
//! transport and event store are reachable.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A driver silent this long is taken as stalled (it publishes every second).
const STALLED_AFTER: Duration = Duration::from_secs(5);

/// The answer of a health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Why the server does not serve; empty when it does.
    pub problems: Vec<&'static str>,
}

impl Health {
    /// True when nothing is wrong.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Health as the driver, the journal writer and the app set it.
#[derive(Debug)]
pub(super) struct HealthState {
    serving: AtomicBool,
    draining: AtomicBool,
    transport: AtomicBool,
    store: AtomicBool,
    /// When the driver last published, in ms since the start.
    beat_ms: AtomicU64,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            serving: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            transport: AtomicBool::new(true),
            store: AtomicBool::new(true),
            beat_ms: AtomicU64::new(0),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl HealthState {
    pub(super) fn set_serving(&self, serving: bool, now: Duration) {
        self.beat_ms.store(ms(now), Ordering::Relaxed);
        self.serving.store(serving, Ordering::Relaxed);
    }

    pub(super) fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub(super) fn set_store(&self, healthy: bool) {
        self.store.store(healthy, Ordering::Relaxed);
    }

    pub(super) fn beat(&self, now: Duration, transport_connected: bool) {
        self.beat_ms.store(ms(now), Ordering::Relaxed);
        self.transport.store(transport_connected, Ordering::Relaxed);
    }

    pub(super) fn check(&self, now: Duration) -> Health {
        let mut problems = Vec::new();
        let serving = self.serving.load(Ordering::Relaxed);
        if !serving {
            problems.push("not serving");
        }
        if self.draining.load(Ordering::Relaxed) {
            problems.push("draining");
        }
        if !self.transport.load(Ordering::Relaxed) {
            problems.push("transport disconnected (broker unreachable)");
        }
        if !self.store.load(Ordering::Relaxed) {
            problems.push("event store failing");
        }
        let beat = Duration::from_millis(self.beat_ms.load(Ordering::Relaxed));
        if serving && now.saturating_sub(beat) > STALLED_AFTER {
            problems.push("server loop stalled");
        }
        Health { problems }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_is_named_and_health_comes_back() {
        let h = HealthState::default();
        let at = Duration::from_secs;
        assert_eq!(h.check(at(0)).problems, ["not serving"]);
        h.set_serving(true, at(0));
        assert!(h.check(at(1)).is_ok());
        h.beat(at(2), false);
        assert_eq!(h.check(at(2)).problems, ["transport disconnected (broker unreachable)"]);
        h.beat(at(3), true);
        h.set_store(false);
        assert_eq!(h.check(at(3)).problems, ["event store failing"]);
        h.set_store(true);
        assert_eq!(h.check(at(9)).problems, ["server loop stalled"]);
        h.beat(at(9), true);
        assert!(h.check(at(9)).is_ok());
        h.set_draining();
        assert_eq!(h.check(at(9)).problems, ["draining"]);
    }
}
