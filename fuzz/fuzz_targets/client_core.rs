//! A client fed whatever a server (or anyone on its path) could send: frames of any bytes,
//! link events and time, in any order. It never panics, never asks to send a frame it
//! cannot encode, and its view stays drawable.
//!
//! Input: records of `[op][...]`: op 0 advances the clock by the next two bytes × 100 µs
//! and handles the timeout; op 1 delivers a frame of the next byte's length; op 2 reports
//! the link connected, 3 disconnected, 4 a confirmed subscription to the match.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pong_domain::client::{ClientConfig, ClientCore};
use pong_domain::proto::Name;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = Name::new("fuzz") else { return };
    let mut config = ClientConfig::new(name);
    config.players = Some(2);
    let mut core = ClientCore::new(config);
    let mut now: u64 = 1_000;
    core.handle_connected(now);
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        match op % 5 {
            0 => {
                let step = rest.get(..2).map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])));
                rest = rest.get(2..).unwrap_or(&[]);
                now += step * 100;
                core.handle_timeout(now);
            }
            1 => {
                let Some((&len, tail)) = rest.split_first() else { break };
                let len = usize::from(len).min(tail.len());
                core.handle_frame(now, &tail[..len]);
                rest = &tail[len..];
            }
            2 => core.handle_connected(now),
            3 => core.handle_disconnected(now),
            _ => {
                if let Some(m) = core.match_id() {
                    core.handle_subscribed(now, m);
                }
            }
        }
        while core.poll_transmit().is_some() {}
        while core.poll_transport_request().is_some() {}
        while core.poll_event().is_some() {}
        let _ = core.view(now);
    }
});
