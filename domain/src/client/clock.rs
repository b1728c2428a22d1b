//! Time shared with the server: clock sync (pings and pongs give the offset of the server's
//! clock and the round trip, NTP style) and the server's tick schedule (the anchor from
//! `StartAt`), so that local time, server time and ticks convert into one another.

use std::collections::VecDeque;

use super::ClientCore;
use crate::proto::SessionMsg;

/// Most clock samples kept.
const CLOCK_SAMPLES: usize = 16;
/// Clock samples wanted before saying Ready (so the countdown is accurate).
const CLOCK_SAMPLES_FOR_READY: usize = 3;
/// Most pings awaiting their pong; an older one is forgotten (its pong is ignored).
const PINGS_OUT: usize = 8;
/// How far apart (µs), beyond what the two round trips explain, two offsets must be to come
/// from different server clocks.
const SAME_CLOCK_SLACK: u64 = 1_000;

/// The clock offset to the server, NTP style: of recent ping exchanges, the one with the
/// shortest round trip gives the best estimate (its two legs are the most alike).
#[derive(Clone, Debug, Default)]
pub(super) struct Clock {
    /// Recent exchanges: (round trip, offset), both µs.
    samples: VecDeque<(u64, i64)>,
    /// The sample with the shortest round trip.
    best: Option<(u64, i64)>,
    /// Id of the last ping sent.
    ping_id: u32,
    /// Pings awaiting their pong: (id, local time sent). A pong counts only if it matches.
    pings: VecDeque<(u32, u64)>,
    /// The server's tick schedule, from `StartAt`: tick `.0` is simulated at server time `.1`.
    pub(super) anchor: Option<(u32, u64)>,
    /// The last round trip measured (µs).
    last_rtt: Option<u64>,
    /// Interarrival jitter of the round trips (µs), RFC 3550 §6.4.1: each new difference
    /// moves it a sixteenth of the way.
    jitter: u64,
    /// Samples taken on the current link. A new link may reach another server process (one
    /// restarted from its journal, or another instance) whose clock is not the old one's.
    link_samples: u32,
}

impl Clock {
    /// A new link: pings sent on the old one are not answered, and the server's clock is to
    /// be checked again.
    pub(super) fn new_link(&mut self) {
        self.pings.clear();
        self.link_samples = 0;
    }

    fn sample(&mut self, sent: u64, received: u64, server_time: u64) {
        if received < sent {
            return;
        }
        let rtt = received - sent;
        let midpoint = sent + rtt / 2;
        let offset = i64::try_from(i128::from(server_time) - i128::from(midpoint)).unwrap_or(0);
        // The first sample on a link says whether the server's clock is the one the samples
        // kept were taken of: two estimates of one clock differ by less than their round
        // trips. Another clock (a restarted server counts from its own start) makes them
        // worthless.
        if self.link_samples == 0
            && let Some((best_rtt, best_offset)) = self.best
            && offset.abs_diff(best_offset) > rtt + best_rtt + SAME_CLOCK_SLACK
        {
            self.samples.clear();
        }
        self.link_samples = self.link_samples.saturating_add(1);
        if let Some(last) = self.last_rtt {
            let d = rtt.abs_diff(last);
            self.jitter = if d >= self.jitter {
                self.jitter + (d - self.jitter) / 16
            } else {
                self.jitter - (self.jitter - d) / 16
            };
        }
        self.last_rtt = Some(rtt);
        if self.samples.len() == CLOCK_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((rtt, offset));
        self.best = self.samples.iter().copied().min_by_key(|(rtt, _)| *rtt);
    }

    /// The estimated offset of the server's clock from the local one (µs).
    fn offset(&self) -> i64 {
        self.best.map_or(0, |(_, o)| o)
    }

    /// The last round trip measured (µs).
    pub(super) fn last_rtt(&self) -> Option<u64> {
        self.last_rtt
    }

    /// How much successive round trips differ (µs).
    pub(super) fn jitter(&self) -> u64 {
        self.jitter
    }

    /// The estimated round trip (µs).
    pub(super) fn rtt(&self) -> u64 {
        self.best.map_or(0, |(r, _)| r)
    }

    /// True once there are enough samples to trust the offset (for the countdown), one of
    /// them at least from the current link.
    pub(super) fn is_synced(&self) -> bool {
        self.link_samples > 0 && self.samples.len() >= CLOCK_SAMPLES_FOR_READY
    }

    pub(super) fn to_server(&self, local: u64) -> u64 {
        local.saturating_add_signed(self.offset())
    }

    pub(super) fn to_local(&self, server: u64) -> u64 {
        server.saturating_add_signed(-self.offset())
    }
}

impl ClientCore {
    pub(super) fn send_ping(&mut self, now: u64) {
        let clock = &mut self.clock;
        clock.ping_id = clock.ping_id.wrapping_add(1);
        if clock.pings.len() == PINGS_OUT {
            clock.pings.pop_front();
        }
        clock.pings.push_back((clock.ping_id, now));
        let id = clock.ping_id;
        self.push_signed(&SessionMsg::Ping { id, client_time: now });
    }

    /// A pong came back at `now`: a clock sample, if it answers a ping still awaited.
    pub(super) fn on_pong(&mut self, now: u64, id: u32, client_time: u64, server_time: u64) {
        let clock = &mut self.clock;
        if let Some(i) = clock.pings.iter().position(|&(pid, t)| pid == id && t == client_time) {
            clock.pings.remove(i);
            clock.sample(client_time, now, server_time);
        }
    }

    /// Server time at which the server simulates `tick`, by the anchor (the anchor's time
    /// for a tick before it).
    pub(super) fn tick_server_time(&self, tick: u32) -> Option<u64> {
        let (anchor_tick, anchor_time) = self.clock.anchor?;
        let rules = self.rules.as_ref()?;
        let ticks = u64::from(tick.saturating_sub(anchor_tick));
        Some(anchor_time.saturating_add(rules.config.ticks_to_micros(ticks)))
    }

    /// The last tick the server has simulated by server time `server_now`, by the anchor.
    pub(super) fn server_tick_at_server_time(&self, server_now: u64) -> Option<u32> {
        let (anchor_tick, anchor_time) = self.clock.anchor?;
        let rules = self.rules.as_ref()?;
        if server_now < anchor_time {
            return Some(anchor_tick.saturating_sub(1));
        }
        let k = rules.config.micros_to_ticks(server_now - anchor_time);
        Some(anchor_tick.saturating_add(u32::try_from(k).unwrap_or(u32::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_prefers_the_shortest_round_trip() {
        let mut c = Clock::default();
        // Server is 1000 µs ahead. A slow, asymmetric sample first, then a quick one.
        c.sample(0, 400, 1000 + 50);
        c.sample(1000, 1020, 1000 + 1010);
        assert_eq!(c.rtt(), 20);
        assert_eq!(c.offset(), 1000);
        assert_eq!(c.to_local(c.to_server(5555)), 5555);
    }

    #[test]
    fn a_new_link_keeps_the_samples_only_if_the_server_clock_is_the_same() {
        let synced = || {
            let mut c = Clock::default();
            for i in 0..4 {
                c.sample(i * 1000, i * 1000 + 20, 5_000_000 + i * 1000 + 10);
            }
            assert!(c.is_synced());
            c
        };
        // The same server after a reconnect: one sample on the new link is enough.
        let mut same = synced();
        same.new_link();
        assert!(!same.is_synced(), "not before the clock is checked on the new link");
        same.sample(9000, 9030, 5_009_015 + 200);
        assert!(same.is_synced());
        assert_eq!(same.offset(), 5_000_000);
        // A restarted server counts from its own start: everything kept is dropped.
        let mut other = synced();
        other.new_link();
        other.sample(9000, 9030, 1_000);
        assert_eq!(other.offset(), 1_000 - 9015);
        assert!(!other.is_synced(), "three samples of the new clock are wanted");
    }
}
