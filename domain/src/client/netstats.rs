//! What the network is doing for this player, for the overlay a frontend shows on demand
//! (F3 in the window): the round trip and its jitter, the prediction's lead, corrections,
//! ticks that came late or twice, Resyncs, and frames and bytes each way. The core keeps
//! totals ([`NetStats`]); [`NetMeter`] turns successive snapshots into rates and keeps the
//! last seconds of them for a graph, so every frontend shows the same figures.

use std::collections::VecDeque;

use super::{ClientCore, SECOND};

/// Counted as frames come and go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Traffic {
    pub(super) frames_in: u64,
    pub(super) bytes_in: u64,
    pub(super) frames_out: u64,
    pub(super) bytes_out: u64,
    pub(super) corrections: u64,
    pub(super) late_ticks: u64,
    pub(super) duplicate_ticks: u64,
    pub(super) resyncs: u64,
}

/// The network figures at one moment: totals since the client started, and the clock's
/// current estimates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// The last round trip measured by a ping (µs), if any.
    pub rtt: Option<u64>,
    /// How much successive round trips differ (µs): the RFC 3550 interarrival jitter
    /// estimator, applied to the pings' round trips.
    pub jitter: u64,
    /// How far ahead of the server the prediction runs (µs).
    pub lead: u64,
    /// Frames received from the server.
    pub frames_in: u64,
    /// Bytes of those frames (the protocol's, without the transport's framing).
    pub bytes_in: u64,
    /// Frames handed to the transport.
    pub frames_out: u64,
    /// Bytes of those frames.
    pub bytes_out: u64,
    /// Confirmed ticks that contradicted the prediction, each rebuilding it.
    pub corrections: u64,
    /// Ticks that arrived after a later one: lost or reordered on the way, then resent or
    /// overtaken.
    pub late_ticks: u64,
    /// Ticks received again after they were already held.
    pub duplicate_ticks: u64,
    /// Resyncs asked for (missing ticks, a keyframe after a desync or a restart).
    pub resyncs: u64,
}

impl ClientCore {
    /// The network figures now; see [`NetMeter`] for rates.
    pub fn net_stats(&self) -> NetStats {
        let t = &self.traffic;
        NetStats {
            rtt: self.clock.last_rtt(),
            jitter: self.clock.jitter(),
            lead: self.lead(),
            frames_in: t.frames_in,
            bytes_in: t.bytes_in,
            frames_out: t.frames_out,
            bytes_out: t.bytes_out,
            corrections: t.corrections,
            late_ticks: t.late_ticks,
            duplicate_ticks: t.duplicate_ticks,
            resyncs: t.resyncs,
        }
    }
}

/// Rates over one sampling period.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetRates {
    /// Local time at the end of the period (µs).
    pub at: u64,
    /// Round trip at the end of the period (ms), if measured.
    pub rtt_ms: Option<f32>,
    /// Jitter at the end of the period (ms).
    pub jitter_ms: f32,
    /// Lead at the end of the period (ms).
    pub lead_ms: f32,
    /// Bytes per second from the server.
    pub bytes_in_per_s: f32,
    /// Bytes per second to the server.
    pub bytes_out_per_s: f32,
    /// Frames per second from the server.
    pub frames_in_per_s: f32,
    /// Frames per second to the server.
    pub frames_out_per_s: f32,
    /// Corrections per second.
    pub corrections_per_s: f32,
    /// Late or duplicate ticks per second.
    pub ticks_resent_per_s: f32,
}

/// Turns [`NetStats`] snapshots into [`NetRates`], one per `period`, keeping the last
/// `keep` of them (the overlay's graph). Feed it every frame; it samples on its own period,
/// so the figures do not depend on the frame rate.
#[derive(Clone, Debug)]
pub struct NetMeter {
    period: u64,
    keep: usize,
    last: Option<(u64, NetStats)>,
    history: VecDeque<NetRates>,
}

impl NetMeter {
    /// A meter with one sample every `period` µs, keeping `keep` samples.
    pub fn new(period: u64, keep: usize) -> NetMeter {
        NetMeter { period: period.max(1), keep: keep.max(1), last: None, history: VecDeque::new() }
    }

    /// Notes the figures at local time `now`; adds a sample once a period has passed since
    /// the last one.
    pub fn update(&mut self, now: u64, stats: NetStats) {
        let Some((then, before)) = self.last else {
            self.last = Some((now, stats));
            return;
        };
        let elapsed = now.saturating_sub(then);
        if elapsed < self.period {
            return;
        }
        let secs = elapsed as f32 / SECOND as f32;
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f32 / secs;
        let ms = |us: u64| us as f32 / 1000.0;
        if self.history.len() == self.keep {
            self.history.pop_front();
        }
        self.history.push_back(NetRates {
            at: now,
            rtt_ms: stats.rtt.map(ms),
            jitter_ms: ms(stats.jitter),
            lead_ms: ms(stats.lead),
            bytes_in_per_s: rate(stats.bytes_in, before.bytes_in),
            bytes_out_per_s: rate(stats.bytes_out, before.bytes_out),
            frames_in_per_s: rate(stats.frames_in, before.frames_in),
            frames_out_per_s: rate(stats.frames_out, before.frames_out),
            corrections_per_s: rate(stats.corrections, before.corrections),
            ticks_resent_per_s: rate(
                stats.late_ticks + stats.duplicate_ticks,
                before.late_ticks + before.duplicate_ticks,
            ),
        });
        self.last = Some((now, stats));
    }

    /// The latest sample, if a period has passed.
    pub fn latest(&self) -> Option<&NetRates> {
        self.history.back()
    }

    /// The samples kept, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &NetRates> {
        self.history.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_gives_rates_per_period_and_keeps_the_last_ones() {
        let mut m = NetMeter::new(SECOND / 2, 3);
        let mut s = NetStats::default();
        m.update(0, s);
        assert!(m.latest().is_none(), "no rate before a period has passed");
        s.bytes_in = 500;
        s.frames_out = 30;
        s.corrections = 1;
        s.late_ticks = 2;
        s.rtt = Some(12_500);
        m.update(SECOND / 4, s);
        assert!(m.latest().is_none());
        m.update(SECOND / 2, s);
        let r = m.latest().unwrap();
        assert_eq!(r.bytes_in_per_s, 1000.0);
        assert_eq!(r.frames_out_per_s, 60.0);
        assert_eq!(r.corrections_per_s, 2.0);
        assert_eq!(r.ticks_resent_per_s, 4.0);
        assert_eq!(r.rtt_ms, Some(12.5));
        for k in 2..6 {
            m.update(k * SECOND / 2, s);
        }
        assert_eq!(m.history().len(), 3);
        assert_eq!(m.latest().unwrap().bytes_in_per_s, 0.0, "nothing new came in");
    }
}
