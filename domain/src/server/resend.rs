//! Catching a member up: the ticks it missed from the recent ones kept, or the whole state
//! as a keyframe when it is further behind than that.

use crate::proto::{Keyframe, MatchId, ServerMsg, TickMsg};
use crate::route::PeerId;
use crate::rules::PlayerId;

use super::links::Rate;
use super::{SECOND, ServerCore};

/// Most ticks resent in answer to one resync; further behind gets a keyframe. The playback
/// host follows the same rule.
pub(crate) const RESEND_MAX: u32 = 64;
/// Least time between two keyframes for one member.
const KEYFRAME_EVERY: u64 = 200_000;
/// Ticks one member may be resent: 64 a second, and two full resends at once. Asking for more gets a keyframe (at most one per
/// [`KEYFRAME_EVERY`]) instead, so resyncs cannot make the server send more than a few
/// kilobytes a second to anyone, whatever it asks.
pub(super) const RESEND_BUDGET: Rate =
    Rate { units: 64, per: SECOND, burst: 2 * RESEND_MAX as u64 };

impl ServerCore {
    /// `Resync`: sends the ticks a member missed from the recent ones kept, or a keyframe if
    /// they are older than that.
    pub(super) fn resync(
        &mut self,
        now: u64,
        mid: MatchId,
        player: PlayerId,
        peer: PeerId,
        from: u32,
    ) {
        let Some(m) = self.matches.get(&mid) else { return };
        let oldest = m.recent.front().map(|t| t.tick);
        let newest = m.state.tick;
        if from > newest {
            return;
        }
        self.stats.resyncs += 1;
        let kept = oldest.is_some_and(|oldest| from >= oldest) && newest - from < RESEND_MAX;
        let wanted = u64::from(newest - from) + 1;
        if !(kept && self.take_resend_budget(now, mid, player, wanted)) {
            self.send_keyframe(now, mid, player, peer);
            return;
        }
        let Some(m) = self.matches.get(&mid) else { return };
        let ticks: Vec<TickMsg> = m.recent.iter().filter(|t| t.tick >= from).copied().collect();
        for t in ticks {
            self.send(peer, ServerMsg::Tick(t));
        }
    }

    /// Takes `ticks` from the member's resend budget; false (counted) if it has not that
    /// many left.
    fn take_resend_budget(&mut self, now: u64, mid: MatchId, player: PlayerId, ticks: u64) -> bool {
        let ok =
            self.seat_mut(mid, player).is_some_and(|s| s.resend.take(now, ticks, RESEND_BUDGET));
        if !ok {
            self.stats.resends_limited += 1;
        }
        ok
    }

    fn send_keyframe(&mut self, now: u64, mid: MatchId, player: PlayerId, peer: PeerId) {
        let Some(m) = self.matches.get_mut(&mid) else { return };
        if !m.started {
            return;
        }
        let Some(seat) = m.seats[player.index()].as_mut() else { return };
        if seat.keyframe_at.is_some_and(|t| now < t + KEYFRAME_EVERY) {
            return;
        }
        seat.keyframe_at = Some(now);
        let k = Keyframe { state: m.state, input: m.last_input, acks: m.acks(m.state.tick) };
        self.send(peer, ServerMsg::Keyframe(k));
    }
}
