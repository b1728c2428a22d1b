//! Target of issue 9: no heap allocation per tick in steady state on the server.
//!
//! A `ServerCore` hosts several running 4-player matches; every seat sends its input every
//! tick (and a ping a second), as in play. After a warm-up (queues at their working
//! size), every call the driver makes during 300 grid ticks is counted, by phase: the
//! inputs arriving (`handle_frame`), the grid tick (`handle_timeout` on a tick), the
//! housekeeping round (`handle_timeout` between ticks, every 50 ms), both at once, and
//! draining the outputs (`poll_transmit`, `poll_event`). Allocations are counted on this
//! thread only (the `allocation-counter` crate), so the test harness cannot disturb them.
//! A failure lists every phase that allocated, with the bytes per allocation, which tell
//! the call site (for instance 4 bytes × running matches per grid tick is the `Vec` of
//! match ids that `ServerCore::grid_tick` collects).

use allocation_counter::{AllocationInfo, measure};
use pong_bench::fixture::Fixture;

const MATCHES: usize = 16;
const WARMUP_TICKS: usize = 300;
const MEASURED_TICKS: usize = 300;

#[derive(Default)]
struct Phase {
    calls: u64,
    info: AllocationInfo,
}

impl Phase {
    fn add(&mut self, info: AllocationInfo) {
        self.calls += 1;
        self.info.count_total += info.count_total;
        self.info.bytes_total += info.bytes_total;
    }

    fn line(&self, name: &str) -> String {
        let per = self.info.bytes_total.checked_div(self.info.count_total).unwrap_or(0);
        format!(
            "{name:<40} {:>6} calls {:>7} allocations {:>9} bytes ({per} bytes each)",
            self.calls, self.info.count_total, self.info.bytes_total
        )
    }
}

#[test]
fn a_steady_state_server_tick_allocates_nothing() {
    let mut f = Fixture::new(MATCHES, 4);
    // Warm-up: every queue grows to its working size; the ticks kept per match fill up.
    for _ in 0..WARMUP_TICKS {
        f.prepare();
        f.server_tick();
    }
    let mut inputs = Phase::default();
    let mut tick = Phase::default();
    let mut housekeeping = Phase::default();
    let mut transmits = Phase::default();
    let mut events = Phase::default();
    let ticks_before = f.core.stats().ticks;
    let mut grid_ticks = 0;
    while grid_ticks < MEASURED_TICKS {
        f.prepare();
        inputs.add(measure(|| f.deliver_inputs()));
        transmits.add(measure(|| {
            f.drain_transmits();
        }));
        events.add(measure(|| {
            f.drain_events();
        }));
        loop {
            // A wake either steps every match (a grid tick, which may also run the
            // housekeeping that is due) or only does housekeeping (every 50 ms).
            let mut ticked = false;
            let info = measure(|| ticked = f.wake());
            if ticked {
                tick.add(info)
            } else {
                housekeeping.add(info)
            }
            transmits.add(measure(|| {
                f.drain_transmits();
            }));
            events.add(measure(|| {
                f.drain_events();
            }));
            if ticked {
                grid_ticks += 1;
                break;
            }
        }
    }
    let steps = f.core.stats().ticks - ticks_before;
    assert_eq!(f.replaced, 0, "a match ended during the test: the steady state was not steady");
    assert_eq!(steps, (MATCHES * MEASURED_TICKS) as u64, "every match steps every grid tick");
    let phases = [
        ("inputs (handle_frame)", &inputs),
        ("grid tick (handle_timeout, may housekeep)", &tick),
        ("housekeeping only (handle_timeout)", &housekeeping),
        ("outputs (poll_transmit)", &transmits),
        ("events (poll_event)", &events),
    ];
    let total: u64 = phases.iter().map(|(_, p)| p.info.count_total).sum();
    let report: Vec<String> = phases.iter().map(|(n, p)| p.line(n)).collect();
    // The one allocation site known so far, recognised by its sizes: the `Vec<MatchId>`
    // that `ServerCore::grid_tick` collects every tick grows from 4 ids by doubling until
    // it holds every running match (each growth an allocation).
    let (mut cap, mut growths, mut bytes) = (4usize, 1u64, 16u64);
    while cap < MATCHES {
        cap *= 2;
        growths += 1;
        bytes += 4 * cap as u64;
    }
    let per_tick =
        (tick.info.count_total / tick.calls.max(1), tick.info.bytes_total / tick.calls.max(1));
    let diagnosis = if per_tick == (growths, bytes) {
        format!(
            "\nthe grid-tick allocations are exactly the Vec<MatchId> that ServerCore::grid_tick \
             collects each tick ({growths} allocations of 4 → {cap} ids, {bytes} bytes a tick): \
             iterate the matches in place (or keep the Vec in the core and clear it) instead"
        )
    } else {
        String::new()
    };
    assert!(
        total == 0,
        "{total} allocations in {MEASURED_TICKS} steady-state grid ticks of {MATCHES} running \
         4-player matches ({:.2} per tick):\n{}{diagnosis}",
        total as f64 / MEASURED_TICKS as f64,
        report.join("\n")
    );
}
