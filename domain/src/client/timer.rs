//! The client's timers in one table, after quinn-proto's `TimerTable`:
//! [`ClientCore::poll_timeout`] is the earliest armed timer and
//! [`ClientCore::handle_timeout`] acts on the ones that have expired, so what the driver is
//! asked to wake for and what a wake does read the same deadlines.
//!
//! [`ClientCore::poll_timeout`]: super::ClientCore::poll_timeout
//! [`ClientCore::handle_timeout`]: super::ClientCore::handle_timeout

/// Something the client must do at a local time (µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The server has been silent too long: declare it lost and reconnect.
    Idle = 0,
    /// Send the next clock ping (pings are also the heartbeat).
    Ping = 1,
    /// Repeat an unanswered request: the Join or Resume, Ready, a Resync for a gap. Armed
    /// only while one of them waits for its answer.
    Retry = 2,
    /// The prediction's next step, or the end of the countdown.
    Step = 3,
    /// Late binding: revise the last predicted input while it can still reach the server.
    /// Armed at time 0: due at once.
    Revise = 4,
}

/// How many kinds of [`Timer`] there are.
const TIMERS: usize = 5;

/// A deadline per [`Timer`], or none while it is stopped.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TimerTable {
    data: [Option<u64>; TIMERS],
}

impl TimerTable {
    /// Arms `timer` for local time `time`, replacing any earlier deadline.
    pub(super) fn set(&mut self, timer: Timer, time: u64) {
        self.data[timer as usize] = Some(time);
    }

    /// Arms `timer` at `time`, or stops it for `None`.
    pub(super) fn set_or_stop(&mut self, timer: Timer, time: Option<u64>) {
        self.data[timer as usize] = time;
    }

    /// Disarms `timer`.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// The deadline of `timer`, if armed.
    #[cfg(test)]
    pub(super) fn get(&self, timer: Timer) -> Option<u64> {
        self.data[timer as usize]
    }

    /// True if `timer` is armed for `now` or earlier.
    pub(super) fn is_expired(&self, timer: Timer, now: u64) -> bool {
        self.data[timer as usize].is_some_and(|t| t <= now)
    }

    /// The earliest armed deadline.
    pub(super) fn next_timeout(&self) -> Option<u64> {
        self.data.iter().flatten().copied().min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_timeout_is_the_earliest_armed_timer() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Ping, 300);
        t.set(Timer::Idle, 200);
        t.set_or_stop(Timer::Step, Some(250));
        assert_eq!(t.next_timeout(), Some(200));
        t.stop(Timer::Idle);
        assert_eq!(t.next_timeout(), Some(250));
        t.set_or_stop(Timer::Step, None);
        assert_eq!(t.get(Timer::Step), None);
        assert_eq!(t.next_timeout(), Some(300));
    }

    #[test]
    fn a_timer_expires_at_its_deadline() {
        let mut t = TimerTable::default();
        assert!(!t.is_expired(Timer::Retry, u64::MAX), "a stopped timer never expires");
        t.set(Timer::Retry, 100);
        assert!(!t.is_expired(Timer::Retry, 99));
        assert!(t.is_expired(Timer::Retry, 100));
        t.set(Timer::Revise, 0);
        assert!(t.is_expired(Timer::Revise, 0));
    }
}
