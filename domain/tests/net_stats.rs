//! The network figures a frontend's overlay shows (`ClientCore::net_stats`, `NetMeter`),
//! checked against networks whose behaviour the test chooses: a clean LAN has no jitter,
//! no late tick and no resync; a jittery, reordering WAN with a cut shows all of them,
//! and a round trip within what the path allows.

#![allow(clippy::unwrap_used)]

use pong_domain::PlayerId;
use pong_domain::bot::Bot;
use pong_domain::client::{NetMeter, NetStats};
use pong_domain::testing::{Latency, MS, SECOND, SimNet, player, short_matches};

fn bots(net: &mut SimNet, latency: Latency) {
    for i in 0..2u8 {
        let bot = Bot::new(PlayerId::ALL[0], 700, u64::from(i) + 7);
        net.add_client(player(&format!("bot{i}"), 2), Some(bot), latency, u64::from(i) * 30 * MS);
    }
}

fn traffic_flows(s: &NetStats) {
    assert!(s.frames_in > 100 && s.bytes_in > s.frames_in * 5, "{s:?}");
    assert!(s.frames_out > 100 && s.bytes_out > s.frames_out * 5, "{s:?}");
    assert!(s.lead > 0, "{s:?}");
}

#[test]
fn a_clean_lan_shows_no_jitter_no_late_tick_no_resync() {
    let mut net = SimNet::new(short_matches(2), 5);
    bots(&mut net, Latency::LAN);
    let t0 = net.now;
    net.run_until(t0 + 3600 * SECOND, |n| n.all_finished());
    for c in &net.clients {
        let s = c.core.net_stats();
        traffic_flows(&s);
        assert_eq!(s.rtt, Some(4 * MS), "2 ms each way: {s:?}");
        assert_eq!(s.jitter, 0, "{s:?}");
        assert_eq!((s.late_ticks, s.duplicate_ticks, s.resyncs), (0, 0, 0), "{s:?}");
    }
}

#[test]
fn a_jittery_reordering_wan_with_a_cut_shows_in_the_figures() {
    let mut net = SimNet::new(short_matches(2), 6);
    net.in_order = false;
    bots(&mut net, Latency::wan(30, 10));
    let t0 = net.now;
    let mut meter = NetMeter::new(SECOND / 2, 10);
    let step = |net: &mut SimNet, until: u64, meter: &mut NetMeter| {
        while net.now < until && !net.all_finished() {
            let next = net.now + 100 * MS;
            net.run_until(next, |_| false);
            meter.update(net.now, net.clients[0].core.net_stats());
        }
    };
    step(&mut net, t0 + 6 * SECOND, &mut meter);
    net.clients[0].cut = true;
    step(&mut net, t0 + 6 * SECOND + 300 * MS, &mut meter);
    net.clients[0].cut = false;
    step(&mut net, t0 + 3600 * SECOND, &mut meter);
    assert!(net.all_finished());
    let s = net.clients[0].core.net_stats();
    traffic_flows(&s);
    let rtt = s.rtt.unwrap();
    assert!((60 * MS..=80 * MS).contains(&rtt), "30-40 ms each way: {s:?}");
    assert!(s.jitter > 0 && s.jitter < 20 * MS, "{s:?}");
    assert!(s.late_ticks > 0, "reordered ticks arrive late: {s:?}");
    assert!(s.resyncs > 0, "the ticks lost in the cut are asked for again: {s:?}");
    // The meter's figures are rates of the same counters.
    assert_eq!(meter.history().len(), 10);
    let last = meter.latest().unwrap();
    assert!(last.frames_in_per_s > 0.0 && last.bytes_out_per_s > 0.0, "{last:?}");
    assert!(last.rtt_ms.is_some_and(|r| (60.0..=80.0).contains(&r)), "{last:?}");
}
