//! Catching a member up: the ticks it missed from the recent ones kept, or the whole state
//! as a keyframe when it is further behind than that.

use crate::proto::{Keyframe, MatchId, ServerMsg, TickMsg};
use crate::route::PeerId;
use crate::rules::PlayerId;

use super::ServerCore;

/// Most ticks resent in answer to one resync; further behind gets a keyframe. The playback
/// host follows the same rule.
pub(crate) const RESEND_MAX: u32 = 64;
/// Least time between two keyframes for one member.
const KEYFRAME_EVERY: u64 = 200_000;

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
        match oldest {
            Some(oldest) if from >= oldest && newest - from < RESEND_MAX => {
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
