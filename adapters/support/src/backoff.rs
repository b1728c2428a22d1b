//! Retrying a connection: capped exponential [`Backoff`], how long to keep at it
//! ([`ReconnectPolicy`]), and the two together for one round of attempts ([`Retry`]).
//!
//! The runtime's headless client, the Bevy bridge and the RabbitMQ server's supervisor
//! all retry the same way: the first pause is the minimum, each failure doubles it up to
//! the maximum, a success starts over.

use std::time::Duration;

use tokio::time::Instant;

/// Pauses between attempts: `min`, then doubling, never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`.
    #[must_use]
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, next: min }
    }

    /// The pause before the next attempt; the one after it is twice as long (capped).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Back to `min`, after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// How persistently a client (re)connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Keep trying the first connection this long (the server may start after the client).
    pub first_connect: Duration,
    /// Keep trying to get back this long after the connection dropped.
    pub reconnect: Duration,
    /// First pause between attempts; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest pause between attempts.
    pub backoff_max: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            first_connect: Duration::from_secs(30),
            reconnect: Duration::from_secs(60),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
        }
    }
}

impl ReconnectPolicy {
    /// One round of attempts: the first connection, or getting back after a drop.
    #[must_use]
    pub fn retry(&self, ever_connected: bool) -> Retry {
        let wait = if ever_connected { self.reconnect } else { self.first_connect };
        Retry {
            give_up: Instant::now() + wait,
            backoff: Backoff::new(self.backoff_min, self.backoff_max),
            attempts: 0,
        }
    }
}

/// One round of connection attempts under a [`ReconnectPolicy`]: counts them and says how
/// long to pause after each failure, until the round's time is up. On tokio's clock.
#[derive(Debug, Clone)]
pub struct Retry {
    give_up: Instant,
    backoff: Backoff,
    attempts: u32,
}

impl Retry {
    /// Counts an attempt about to be made; returns its number, 1 for the first.
    pub fn attempt(&mut self) -> u32 {
        self.attempts += 1;
        self.attempts
    }

    /// Attempts made so far.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failed attempt: the pause before the next one, or `None` if waiting that
    /// long would pass the round's deadline (give up).
    pub fn pause(&mut self) -> Option<Duration> {
        let delay = self.backoff.next_delay();
        (Instant::now() + delay <= self.give_up).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_gives_up_when_the_next_pause_would_pass_its_deadline() {
        let policy = ReconnectPolicy {
            first_connect: Duration::from_millis(300),
            reconnect: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        let mut retry = policy.retry(false);
        let mut pauses = Vec::new();
        loop {
            retry.attempt();
            let Some(pause) = retry.pause() else { break };
            pauses.push(pause.as_millis());
            tokio::time::sleep(pause).await;
        }
        // 100 ms, then 200 ms (t = 300 ms, just in time), then 400 ms would pass it.
        assert_eq!(pauses, [100, 200]);
        assert_eq!(retry.attempts(), 3);
        assert!(policy.retry(true).pause().is_some(), "the reconnect round is longer");
    }
}
