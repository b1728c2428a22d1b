//! The time the cores see: microseconds since the clock was made, from tokio's monotonic
//! clock so that tests with `tokio::time::pause()` run on virtual time.

use tokio::time::{Duration, Instant};

/// A monotonic clock in microseconds since its creation.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock reading zero now.
    pub fn new() -> Self {
        Clock { epoch: Instant::now() }
    }

    /// Microseconds since the clock was made.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant at which the clock reads `micros`.
    pub fn instant_at(&self, micros: u64) -> Instant {
        self.epoch + Duration::from_micros(micros)
    }
}
