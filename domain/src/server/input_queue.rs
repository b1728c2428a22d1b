//! A member's inputs, filed by the tick they are for: early ones wait in a ring, late ones
//! apply once at the next tick, a tick with none repeats the last.

use crate::proto::InputRun;
use crate::sim::Intent;

/// Inputs arriving further ahead than this many ticks are refused.
pub(super) const MAX_AHEAD: u32 = 120;
/// Slots of the ring: more than [`MAX_AHEAD`], so an accepted input never overwrites one
/// still waiting.
const RING: usize = 128;

/// A session's inputs, by tick.
#[derive(Clone, Debug)]
pub(super) struct InputQueue {
    ring: [(u32, Intent); RING],
    /// The newest tick an input arrived for: acknowledged to the client in every tick.
    pub(super) acked: Option<u32>,
    /// The newest input that arrived after its tick was simulated, waiting for a tick with
    /// no input of its own.
    late: Option<(u32, Intent)>,
    /// The tick of the last late input applied, so that an older one is not applied after it.
    late_applied: u32,
    last: Intent,
}

impl InputQueue {
    pub(super) fn new() -> Self {
        InputQueue {
            ring: [(u32::MAX, Intent::Stop); RING],
            acked: None,
            late: None,
            late_applied: 0,
            last: Intent::Stop,
        }
    }

    /// Files the intents of a run; returns false if any was for a tick too far ahead.
    pub(super) fn add(&mut self, run: &InputRun, next_tick: u32) -> bool {
        let mut in_window = true;
        for (t, intent) in run.iter() {
            if t < next_tick {
                // Already simulated: the newest such intent is applied at the next tick that
                // has no input of its own ("late inputs apply at the current tick").
                if t > self.late_applied && self.late.is_none_or(|(lt, _)| t > lt) {
                    self.late = Some((t, intent));
                }
            } else if t - next_tick >= MAX_AHEAD {
                in_window = false;
            } else {
                self.ring[t as usize % RING] = (t, intent);
                self.acked = Some(self.acked.map_or(t, |a| a.max(t)));
            }
        }
        if let Some(last) = run.iter().last().map(|(t, _)| t)
            && last < next_tick
        {
            self.acked = Some(self.acked.map_or(last, |a| a.max(last)));
        }
        in_window
    }

    /// The intent to apply at tick `n`.
    pub(super) fn take(&mut self, n: u32) -> Intent {
        let slot = self.ring[n as usize % RING];
        let intent = if slot.0 == n {
            if self.late.is_some_and(|(lt, _)| lt < n) {
                self.late = None;
            }
            slot.1
        } else if let Some((lt, li)) = self.late.take() {
            self.late_applied = lt;
            li
        } else {
            self.last
        };
        self.last = intent;
        intent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_inputs_apply_once_at_the_current_tick() {
        let mut q = InputQueue::new();
        q.add(&InputRun::new(10, [Intent::Plus; 3]), 10);
        assert_eq!(q.take(10), Intent::Plus);
        assert_eq!(q.take(11), Intent::Plus);
        assert_eq!(q.take(12), Intent::Plus);
        // Tick 13 had no input: the last one repeats.
        assert_eq!(q.take(13), Intent::Plus);
        // An input for 13 arrives late: applied at 14, then not again.
        q.add(&InputRun::new(13, [Intent::Minus]), 14);
        assert_eq!(q.take(14), Intent::Minus);
        q.add(&InputRun::new(13, [Intent::Stop]), 15);
        assert_eq!(q.take(15), Intent::Minus);
        assert_eq!(q.acked, Some(13));
        // Far ahead is refused.
        assert!(!q.add(&InputRun::new(15 + MAX_AHEAD, [Intent::Plus]), 15));
    }
}
