//! `pong replay DB --match ID --watch`: a journaled match played back in the game window.
//!
//! The window is the ordinary game client (`pong_client`) over the memory transport. At the
//! other end, instead of a server, the domain's [`PlaybackCore`] speaks the server's side of
//! the protocol from the journal (see `pong_domain::playback`); this module only drives it:
//! the transport, the clock and the timer.

use anyhow::Result;
use pong_domain::playback::{PlaybackCore, PlaybackError, PlaybackEvent};
use pong_domain::route::Dest;
use pong_domain::server::Transmit;
use pong_ports::{Frame, Incoming, MatchLog, ServerTransport, TransportError};
use pong_runtime::clock::Clock;
use tracing::{debug, info};

/// Reads a match's journal (it must replay cleanly) for playback at `speed`.
pub(crate) fn playback(log: &MatchLog, speed: f64) -> Result<PlaybackCore> {
    let id = log.summary.match_id;
    PlaybackCore::new(id, &log.records, speed).map_err(|e| match e {
        PlaybackError::Speed(speed) => {
            anyhow::anyhow!("--speed must be a positive number, not {speed}")
        }
        PlaybackError::Journal(e) => anyhow::anyhow!("{id} cannot be replayed: {e}"),
    })
}

/// Plays back to the viewer that connects through `transport`, until the transport closes
/// (the window is gone).
pub(crate) async fn host(mut core: PlaybackCore, mut transport: Box<dyn ServerTransport>) {
    let clock = Clock::new();
    let mut buf = Vec::new();
    loop {
        flush(&mut core, transport.as_ref(), &mut buf);
        let deadline = core.poll_timeout().map(|t| clock.instant_at(t));
        tokio::select! {
            () = sleep_until(deadline) => core.handle_timeout(clock.now()),
            incoming = transport.recv() => match incoming {
                Ok(Incoming::Frame { from, frame }) => core.handle_frame(clock.now(), from, &frame),
                Ok(Incoming::Gone { peer, .. }) => core.handle_peer_gone(clock.now(), peer),
                Ok(_) => {}
                Err(TransportError::Closed) => break,
                Err(e) => {
                    debug!(error = %e, "playback transport failed");
                    break;
                }
            },
        }
    }
}

/// Carries out everything the core asked for.
fn flush(core: &mut PlaybackCore, transport: &dyn ServerTransport, buf: &mut Vec<u8>) {
    while let Some(t) = core.poll_transmit(buf) {
        match t {
            Transmit::Send(Dest::Peer(to)) => {
                if let Err(e) = transport.send(to, Frame::copy_from_slice(buf)) {
                    debug!(error = %e, "the viewer's link is gone");
                }
            }
            // The viewer's group is for the client's subscription; the host sends to it
            // directly.
            Transmit::JoinGroup(peer, group) => {
                let _ = transport.join_group(peer, group);
            }
            // A playback host asks for nothing else.
            Transmit::Send(Dest::Group(_)) | Transmit::LeaveGroup(..) | Transmit::Disconnect(_) => {
            }
        }
    }
    while let Some(e) = core.poll_event() {
        match e {
            PlaybackEvent::Started { ticks, .. } => {
                info!(ticks, speed = core.speed(), "playing back");
            }
            PlaybackEvent::Malformed { error, .. } => {
                debug!(error = %error, "a frame the host cannot read");
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use pong_domain::client::{ClientConfig, ClientPhase};
    use pong_domain::journal::{self, Record};
    use pong_domain::proto::{MatchId, Name};
    use pong_domain::rules::{MAX_TICK_HZ, MatchConfig};
    use pong_domain::server::{ServerConfig, ServerCore};
    use pong_ports::{MatchStatus, MatchSummary};
    use pong_runtime::bot::{BotOptions, run_bots};
    use pong_runtime::client::{Controller, ReconnectPolicy, play};
    use pong_runtime::local::LocalServer;
    use pong_transport_memory::{MemoryHub, MemoryOptions};

    use super::*;

    /// Does nothing: a viewer.
    struct Watch;

    impl Controller for Watch {
        fn steer(
            &mut self,
            _: &pong_domain::client::ClientCore,
        ) -> Option<pong_domain::sim::Intent> {
            None
        }
    }

    /// A real match, journaled from the server's events.
    async fn journaled(players: u8) -> MatchLog {
        let config = ServerConfig {
            default_players: players,
            lives: 1,
            tick_hz: 1000,
            countdown: 200_000,
            record_ticks: true,
            ..ServerConfig::default()
        };
        let records = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = records.clone();
        let server = LocalServer::start(ServerCore::new(config, [3; 32]), move |e| {
            if let Some((_, r)) = e.record() {
                sink.lock().unwrap().push(r.clone());
            }
        })
        .unwrap();
        let opts = BotOptions {
            count: usize::from(players),
            players: Some(players),
            ..BotOptions::default()
        };
        for r in run_bots(server.connector(), &opts).await {
            r.unwrap();
        }
        server.stop().await.unwrap();
        let records = records.lock().unwrap().clone();
        let Record::Created { config, .. } = records[0].clone() else { panic!() };
        let summary = MatchSummary {
            match_id: MatchId(1),
            config,
            room: None,
            created_unix_ms: 0,
            status: MatchStatus::Over,
            records: records.len() as u64,
            last_tick: 0,
            winner: None,
            final_hash: None,
            note: None,
        };
        MatchLog { summary, records }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_viewer_sees_the_recorded_match_to_its_result() {
        for players in [2, 4] {
            let log = journaled(players).await;
            let recorded = journal::verify(MatchId(1), &log.records).unwrap().result;
            let playback = playback(&log, 2.0).unwrap();
            assert_eq!(playback.speed(), 2.0);
            let hub = MemoryHub::new(MemoryOptions::default());
            let host_task = tokio::spawn(host(playback, Box::new(hub.server().unwrap())));
            let mut config = ClientConfig::new(Name::new("viewer").unwrap());
            config.players = Some(players);
            let core = pong_domain::client::ClientCore::new(config);
            let (outcome, core) = play(
                core,
                Arc::new(hub.connector()),
                &mut Watch,
                ReconnectPolicy::default(),
                std::future::pending(),
            )
            .await
            .unwrap();
            let ClientPhase::Over { result, final_hash } = outcome.phase else {
                panic!("{:?}", outcome.phase)
            };
            assert_eq!(result, recorded);
            assert_eq!(final_hash, recorded.final_hash.0);
            assert_eq!(outcome.desyncs, 0);
            assert_eq!(core.confirmed().unwrap().tick, recorded.tick);
            drop(hub);
            host_task.abort();
        }
    }

    #[test]
    fn the_speed_scales_the_tick_rate_within_bounds() {
        let config = MatchConfig::new(2, 1, 60, 1).unwrap();
        let log = MatchLog {
            summary: MatchSummary {
                match_id: MatchId(1),
                config,
                room: None,
                created_unix_ms: 0,
                status: MatchStatus::Open,
                records: 1,
                last_tick: 0,
                winner: None,
                final_hash: None,
                note: None,
            },
            records: vec![Record::Created { config, room: None }],
        };
        assert_eq!(playback(&log, 0.5).unwrap().config().tick_hz, 30);
        assert_eq!(playback(&log, 100.0).unwrap().config().tick_hz, MAX_TICK_HZ);
        let refused = |speed| playback(&log, speed).unwrap_err().to_string();
        assert_eq!(refused(0.0), "--speed must be a positive number, not 0");
        assert_eq!(refused(f64::NAN), "--speed must be a positive number, not NaN");
        let broken = MatchLog { records: Vec::new(), ..log };
        assert_eq!(
            playback(&broken, 1.0).unwrap_err().to_string(),
            "m1 cannot be replayed: the journal is empty"
        );
    }
}
