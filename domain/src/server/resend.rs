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
        let wanted = u64::from(newest - from) + 1;
        let within_budget = |core: &mut Self| {
            let seat = core.seat_mut(mid, player);
            let ok = seat.is_some_and(|s| s.resend.take(now, wanted, RESEND_BUDGET));
            if !ok {
                core.stats.resends_limited += 1;
            }
            ok
        };
        match oldest {
            Some(oldest) if from >= oldest && newest - from < RESEND_MAX && within_budget(self) => {
                let Some(m) = self.matches.get(&mid) else { return };
                let ticks: Vec<TickMsg> =
                    m.recent.iter().filter(|t| t.tick >= from).copied().collect();
                for t in ticks {
                    self.send(peer, ServerMsg::Tick(t));
                }
            }
            _ => self.send_keyframe(now, mid, player, peer),
        }
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
