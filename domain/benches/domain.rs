//! Benchmarks of the pure core: one simulation step (2 and 4 players, mid-rally: the ball in
//! flight, each step from a recorded state, the copy of the state included), the state
//! hash, encoding and decoding the hot messages (with the signature check), and a client
//! reconciling a mispredicted tick with 6 unacknowledged inputs.
//!
//! `cargo bench -p pong-domain --bench domain`; results and their meaning are in
//! docs/benchmarks.md.

#![allow(clippy::unwrap_used, missing_docs)]

mod rally;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pong_domain::client::{ClientCore, ClientPhase};
use pong_domain::codec::{self, ClientFrame};
use pong_domain::proto::*;
use pong_domain::server::{ServerConfig, ServerCore, Transmit};
use pong_domain::testing::player;
use pong_domain::{Intent, PlayerId, TickInput};

fn step(c: &mut Criterion) {
    for players in [2u8, 4] {
        let (rules, pairs) = rally::rally_steps(players).unwrap();
        c.bench_function(&format!("step/{players}_players"), |b| {
            let mut i = 0;
            b.iter(|| {
                let (state, input) = &pairs[i % pairs.len()];
                i += 1;
                let mut s = *state;
                black_box(s.step(&rules, black_box(input)));
                s
            });
        });
    }
    let (_, pairs) = rally::rally_steps(4).unwrap();
    let s = pairs[pairs.len() / 2].0;
    c.bench_function("hash/4_players", |b| b.iter(|| black_box(black_box(&s).hash())));
}

fn codec_benches(c: &mut Criterion) {
    let tick = ServerMsg::Tick(TickMsg {
        tick: 216_000,
        input: TickInput {
            intents: [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Plus],
            forfeit: 0,
        },
        acks: Acks([3, 2, 4, 3]),
        hash: StateHash(0x0123_4567_89ab_cdef),
    });
    let mut buf = Vec::with_capacity(64);
    c.bench_function("codec/encode_tick", |b| {
        b.iter(|| codec::encode_server(black_box(&tick), &mut buf).unwrap())
    });
    codec::encode_server(&tick, &mut buf).unwrap();
    let frame = buf.clone();
    c.bench_function("codec/decode_tick", |b| {
        b.iter(|| black_box(codec::decode_server(black_box(&frame)).unwrap()))
    });

    let token = Token([9; 16]);
    let input = SessionMsg::Input(InputRun::new(216_000, [Intent::Plus; 8]));
    let header = Signed { session: SessionId(1234), seq: 250_000 };
    c.bench_function("codec/encode_signed_input", |b| {
        b.iter(|| codec::encode_signed(header, black_box(&input), &token, &mut buf).unwrap())
    });
    codec::encode_signed(header, &input, &token, &mut buf).unwrap();
    let frame = buf.clone();
    c.bench_function("codec/decode_and_verify_input", |b| {
        b.iter(|| match codec::decode_client(black_box(&frame)).unwrap() {
            ClientFrame::Signed(f) => black_box(f.verify(&token)),
            ClientFrame::Open(_) => unreachable!(),
        })
    });
}

/// A client playing a 4-player match against a real server core, run to the point where
/// its prediction is 6 ticks ahead of the last confirmed tick.
fn playing_client() -> (ClientCore, Vec<Vec<u8>>, u64) {
    let config = ServerConfig { default_players: 4, countdown: 100_000, ..ServerConfig::default() };
    let mut server = ServerCore::new(config, [1; 32]);
    let mut clients: Vec<ClientCore> =
        (0..4).map(|i| ClientCore::new(player(&format!("p{i}"), 4))).collect();
    let peers: Vec<_> = (0..4).map(|i| pong_domain::route::PeerId(i as u64 + 1)).collect();
    let mut now = 1_000_000u64;
    for c in &mut clients {
        c.handle_connected(now);
    }
    let mut ticks_for_0: Vec<Vec<u8>> = Vec::new();
    let mut buf = Vec::new();
    // A zero-latency loop until client 0 has played a while.
    while clients[0].predicted().is_none_or(|p| p.tick < 300) {
        for (i, c) in clients.iter_mut().enumerate() {
            c.handle_timeout(now);
            while let Some(f) = c.poll_transmit() {
                server.handle_frame(now, peers[i], &f);
            }
            while let Some(pong_domain::client::TransportRequest::Subscribe(g)) =
                c.poll_transport_request()
            {
                c.handle_subscribed(now, g);
            }
            while c.poll_event().is_some() {}
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(&mut buf) {
            let targets: Vec<usize> = match t {
                Transmit::Send(pong_domain::route::Dest::Peer(p)) => {
                    vec![peers.iter().position(|&x| x == p).unwrap()]
                }
                Transmit::Send(pong_domain::route::Dest::Group(_)) => (0..4).collect(),
                _ => vec![],
            };
            for i in targets {
                clients[i].handle_frame(now, &buf);
            }
        }
        now += 4_000;
    }
    // From here on, keep the next ticks for client 0 instead of delivering them.
    let mut client = clients.swap_remove(0);
    for _ in 0..60 {
        client.handle_timeout(now);
        while client.poll_transmit().is_some() {}
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(&mut buf) {
            if let Transmit::Send(pong_domain::route::Dest::Group(_)) = t
                && matches!(codec::decode_server(&buf), Ok(ServerMsg::Tick(_)))
            {
                ticks_for_0.push(buf.clone());
            }
        }
        now += 16_667;
    }
    assert!(matches!(client.phase(), ClientPhase::Playing));
    (client, ticks_for_0, now)
}

fn client(c: &mut Criterion) {
    let (base, ticks, now) = playing_client();
    let confirmed = base.confirmed().unwrap().tick;
    // The first tick the client has not seen, with the other players' intents changed so
    // the prediction is wrong and must be rebuilt.
    let tick = ticks
        .iter()
        .filter_map(|f| match codec::decode_server(f) {
            Ok(ServerMsg::Tick(t)) if t.tick == confirmed + 1 => Some(t),
            _ => None,
        })
        .next()
        .unwrap();
    let me = base.player().unwrap();
    let mut surprising = tick;
    for p in PlayerId::ALL {
        if p != me {
            surprising.input.intents[p.index()] = match tick.input.intents[p.index()] {
                Intent::Plus => Intent::Minus,
                _ => Intent::Plus,
            };
        }
    }
    let mut state = *base.confirmed().unwrap();
    state.step(base.rules().unwrap(), &surprising.input);
    surprising.hash = StateHash(state.hash());
    let mut frame = Vec::new();
    codec::encode_server(&ServerMsg::Tick(surprising), &mut frame).unwrap();
    let ahead = base.predicted().unwrap().tick - confirmed;
    assert!(ahead >= 6, "prediction only {ahead} ticks ahead");
    c.bench_function("client/reconcile_misprediction", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |core| core.handle_frame(now, black_box(&frame)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, step, codec_benches, client);
criterion_main!(benches);
