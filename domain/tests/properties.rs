//! Property tests of the simulation and the codec over random seeds and input streams.
//!
//! Every tick of every generated match is checked: the ball stays in the arena and out of
//! every solid thing, it never passes through a paddle that stood in its way (checked
//! against an independent floating-point sweep), lives only fall and only by the events that
//! say so, and the match ends exactly when at most one player is left.

#![allow(clippy::unwrap_used)]

use pong_domain::bot::Bot;
use pong_domain::codec::{self, ClientFrame};
use pong_domain::proto::*;
use pong_domain::rules::Rect;
use pong_domain::sim::StateError;
use pong_domain::{
    Ball, Event, Intent, MatchConfig, MatchState, OutReason, PlayerId, Rules, Side, TickInput,
};
use proptest::prelude::*;

/// A reproducible stream of inputs: intents change at random moments; forfeits are rare.
struct InputStream {
    rng: u64,
    current: [Intent; 4],
    forfeit_per_mille: u64,
}

impl InputStream {
    fn new(seed: u64, forfeit_per_mille: u64) -> Self {
        InputStream { rng: seed | 1, current: [Intent::Stop; 4], forfeit_per_mille }
    }

    fn next_u64(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn next(&mut self) -> TickInput {
        for i in 0..4 {
            if self.next_u64().is_multiple_of(8) {
                self.current[i] = Intent::from_bits((self.next_u64() % 3) as u8).unwrap();
            }
        }
        let mut forfeit = 0;
        if self.next_u64() % 1000 < self.forfeit_per_mille {
            forfeit = 1 << (self.next_u64() % 4);
        }
        TickInput { intents: self.current, forfeit }
    }
}

fn solids(rules: &Rules, s: &MatchState) -> Vec<Rect> {
    let paddles =
        PlayerId::ALL.into_iter().filter(|&p| s.is_alive(p)).map(|p| s.paddle_rect(rules, p));
    rules.corner_blocks().chain(paddles).collect()
}

/// Entry time in [0, 1] of a `b`-sized box at (x, y) moving (vx, vy) into `r`, by f64 slabs.
fn entry_time(x: f64, y: f64, vx: f64, vy: f64, b: f64, r: &Rect) -> Option<f64> {
    let slab = |p: f64, v: f64, lo: f64, hi: f64| -> Option<(f64, f64)> {
        if v == 0.0 {
            return (lo < p && p < hi).then_some((f64::NEG_INFINITY, f64::INFINITY));
        }
        let (a, c) = ((lo - p) / v, (hi - p) / v);
        Some((a.min(c), a.max(c)))
    };
    let (x0, x1) = slab(x, vx, f64::from(r.x0) - b, f64::from(r.x1))?;
    let (y0, y1) = slab(y, vy, f64::from(r.y0) - b, f64::from(r.y1))?;
    let (enter, exit) = (x0.max(y0), x1.min(y1));
    (enter < exit && (0.0..=1.0).contains(&enter)).then_some(enter)
}

/// Time at which the box reaches the arena boundary, if within this tick.
fn boundary_time(rules: &Rules, x: f64, y: f64, vx: f64, vy: f64) -> f64 {
    let b = f64::from(rules.ball_size);
    let (w, h) = (f64::from(rules.width), f64::from(rules.height));
    let mut t = f64::INFINITY;
    if vx < 0.0 {
        t = t.min(x / -vx);
    }
    if vx > 0.0 {
        t = t.min((w - b - x) / vx);
    }
    if vy < 0.0 {
        t = t.min(y / -vy);
    }
    if vy > 0.0 {
        t = t.min((h - b - y) / vy);
    }
    t
}

/// Runs a match for at most `max_ticks`, checking every invariant on every tick.
fn run_checked(
    config: MatchConfig,
    next_input: &mut dyn FnMut(&Rules, &MatchState) -> TickInput,
    max_ticks: u32,
) -> (MatchState, Vec<Event>) {
    let rules = Rules::new(config);
    let mut s = MatchState::new(&rules);
    let mut log = Vec::new();
    let mut over_seen = false;
    let b = rules.ball_size;
    while s.tick < max_ticks {
        let before = s;
        let input = next_input(&rules, &s);
        let events: Vec<Event> = s.step(&rules, &input).iter().collect();

        // The ball is inside the arena and inside nothing.
        let (x, y) = s.ball_pos(&rules);
        assert!(
            (0..=rules.width - b).contains(&x) && (0..=rules.height - b).contains(&y),
            "ball left the arena: {s:?}"
        );
        let ball = Rect::at(x, y, b, b);
        for r in solids(&rules, &s) {
            assert!(!r.overlaps(&ball), "ball inside {r:?}: {s:?}");
        }
        assert_eq!(s.validate(&rules), Ok::<(), StateError>(()));

        // No tunnelling: if a paddle (after this tick's paddle moves) stood first in the
        // ball's straight path, the tick must report hitting it first.
        if let (Ball::Moving { x: x0, y: y0, vx, vy, .. }, false) = (before.ball, before.is_over())
        {
            let gone = input.forfeit & before.alive_mask() != 0;
            if !gone {
                let (fx, fy, fvx, fvy, fb) =
                    (f64::from(x0), f64::from(y0), f64::from(vx), f64::from(vy), f64::from(b));
                let mut first: Option<(f64, Option<PlayerId>)> = None;
                for p in PlayerId::ALL.into_iter().filter(|&p| before.is_alive(p)) {
                    if let Some(t) = entry_time(fx, fy, fvx, fvy, fb, &s.paddle_rect(&rules, p))
                        && first.is_none_or(|(ft, _)| t < ft)
                    {
                        first = Some((t, Some(p)));
                    }
                }
                for r in rules.corner_blocks() {
                    if let Some(t) = entry_time(fx, fy, fvx, fvy, fb, &r)
                        && first.is_none_or(|(ft, _)| t < ft)
                    {
                        first = Some((t, None));
                    }
                }
                let tb = boundary_time(&rules, fx, fy, fvx, fvy);
                if let Some((t, Some(p))) = first
                    && t + 1e-6 < tb
                {
                    let hit = events.iter().find(|e| {
                        matches!(
                            e,
                            Event::PaddleHit { .. }
                                | Event::WallHit { .. }
                                | Event::LifeLost { .. }
                        )
                    });
                    assert_eq!(
                        hit,
                        Some(&Event::PaddleHit { player: p }),
                        "went through {p}'s paddle: {before:?} -> {s:?}"
                    );
                }
            }
        }

        // Lives only fall, one per LifeLost, or to zero on a forfeit.
        for p in PlayerId::ALL {
            let (was, now) = (before.lives[p.index()], s.lives[p.index()]);
            let lost = events
                .iter()
                .filter(|e| matches!(e, Event::LifeLost { player, .. } if *player == p))
                .count();
            let forfeited = events.iter().any(|e| matches!(e, Event::PlayerOut { player, reason: OutReason::Forfeit, .. } if *player == p));
            if forfeited {
                assert_eq!(now, 0);
            } else {
                assert_eq!(
                    u32::from(was) - u32::from(now),
                    lost as u32,
                    "{p}: {was} -> {now} with {events:?}"
                );
            }
        }

        // The match ends exactly when at most one player is left, once.
        let over_now = events.iter().any(|e| matches!(e, Event::MatchOver { .. }));
        assert_eq!(over_now, !before.is_over() && s.is_over(), "{events:?}");
        assert!(!over_seen || events.is_empty(), "events after the end");
        over_seen |= over_now;
        log.extend(events);
        if s.is_over() {
            break;
        }
    }
    (s, log)
}

fn config() -> impl Strategy<Value = MatchConfig> {
    (2u8..=4, 1u8..=3, any::<u64>())
        .prop_map(|(p, l, seed)| MatchConfig::new(p, l, 60, seed).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_matches_end(config in config(), seed in any::<u64>(), forfeits in 0u64..3) {
        let mut stream = InputStream::new(seed, forfeits);
        // Random paddles miss often: even 4 players with 3 lives end well within this.
        let (s, log) = run_checked(config, &mut |_, _| stream.next(), 200_000);
        prop_assert!(s.is_over(), "not over after {} ticks", s.tick);
        let overs = log.iter().filter(|e| matches!(e, Event::MatchOver { .. })).count();
        prop_assert_eq!(overs, 1);
        // Every player is out except the winner, each reported once.
        let outs = log.iter().filter(|e| matches!(e, Event::PlayerOut { .. })).count();
        prop_assert_eq!(outs, usize::from(config.players) - usize::from(s.winner().is_some()));
    }

    #[test]
    fn invariants_hold_in_long_fast_rallies(config in config(), seed in any::<u64>(), skill in 900u16..=1000) {
        // Good bots keep rallies going until the ball is at full speed and steep, which is
        // where tunnelling and corner wedges would show.
        let mut bots: Vec<Bot> = Rules::new(config).config.seats().map(|p| Bot::new(p, skill, seed)).collect();
        let mut next = |rules: &Rules, s: &MatchState| {
            let mut input = TickInput::IDLE;
            for bot in &mut bots {
                input.intents[bot.player().index()] = bot.decide(rules, s);
            }
            input
        };
        let (s, _) = run_checked(config, &mut next, 400_000);
        prop_assert!(s.is_over(), "not over after {} ticks", s.tick);
    }

    #[test]
    fn same_inputs_same_hashes(config in config(), seed in any::<u64>()) {
        let rules = Rules::new(config);
        let run = || {
            let mut stream = InputStream::new(seed, 1);
            let mut s = MatchState::new(&rules);
            let mut hashes = Vec::new();
            for _ in 0..3000 {
                s.step(&rules, &stream.next());
                hashes.push(s.hash());
            }
            hashes
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn keyframes_of_real_states_validate_and_survive_the_codec(config in config(), seed in any::<u64>(), at in 1u32..2000) {
        let rules = Rules::new(config);
        let mut stream = InputStream::new(seed, 0);
        let mut s = MatchState::new(&rules);
        for _ in 0..at {
            s.step(&rules, &stream.next());
        }
        let msg = ServerMsg::Keyframe(Keyframe { state: s, input: TickInput::IDLE, acks: Acks::default() });
        let mut buf = Vec::new();
        codec::encode_server(&msg, &mut buf).unwrap();
        let ServerMsg::Keyframe(k) = codec::decode_server(&buf).unwrap() else { panic!() };
        prop_assert_eq!(k.state.hash(), s.hash());
        prop_assert_eq!(k.state.validate(&rules), Ok(()));
    }
}

// ---- every message survives encode → decode ----

fn name() -> impl Strategy<Value = Name> {
    "[a-zA-Z0-9éü🏓][a-zA-Z0-9 éü🏓_-]{0,18}[a-zA-Z0-9]?"
        .prop_filter_map("valid name", |s| Name::new(&s).ok())
}

fn room() -> impl Strategy<Value = RoomName> {
    "[a-zA-Z0-9._-]{1,32}".prop_map(|s| RoomName::new(&s).unwrap())
}

fn player() -> impl Strategy<Value = PlayerId> {
    (0u8..4).prop_map(|n| PlayerId::new(n).unwrap())
}

fn intent() -> impl Strategy<Value = Intent> {
    (0u8..3).prop_map(|b| Intent::from_bits(b).unwrap())
}

fn tick_input() -> impl Strategy<Value = TickInput> {
    (prop::array::uniform4(intent()), any::<u8>())
        .prop_map(|(intents, forfeit)| TickInput { intents, forfeit })
}

fn acks() -> impl Strategy<Value = Acks> {
    any::<[i8; 4]>().prop_map(Acks)
}

fn state() -> impl Strategy<Value = MatchState> {
    let ball = prop_oneof![
        (any::<u16>(), player()).prop_map(|(timer, toward)| Ball::Resting { timer, toward }),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i32>(), any::<u8>())
            .prop_map(|(x, y, vx, vy, hits)| Ball::Moving { x, y, vx, vy, hits }),
    ];
    (any::<u32>(), ball, any::<[i32; 4]>(), any::<[u8; 4]>())
        .prop_map(|(tick, ball, paddles, lives)| MatchState { tick, ball, paddles, lives })
}

fn match_config() -> impl Strategy<Value = MatchConfig> {
    (2u8..=4, 1u8..=15, 10u16..=2000, any::<u64>())
        .prop_map(|(p, l, hz, s)| MatchConfig::new(p, l, hz, s).unwrap())
}

fn out_reason() -> impl Strategy<Value = OutReason> {
    prop_oneof![Just(OutReason::NoLives), Just(OutReason::Forfeit)]
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    let welcome = (
        any::<u32>(),
        any::<[u8; 16]>(),
        any::<u32>(),
        player(),
        any::<i32>(),
        match_config(),
        any::<bool>(),
    )
        .prop_map(|(s, t, m, p, paddle, config, resumed)| {
            ServerMsg::Welcome(Welcome {
                session: SessionId(s),
                token: Token(t),
                match_id: MatchId(m),
                player: p,
                side: p.side(),
                paddle,
                config,
                resumed,
            })
        });
    let member = (player(), name(), any::<bool>(), any::<bool>())
        .prop_map(|(player, name, ready, connected)| Member { player, name, ready, connected });
    let lobby =
        (any::<u32>(), prop::option::of(room()), 2u8..=4, prop::collection::vec(member, 0..4))
            .prop_map(|(m, room, seats, members)| {
                ServerMsg::Lobby(Lobby {
                    match_id: MatchId(m),
                    epoch: Epoch(m / 3),
                    room,
                    seats,
                    members,
                })
            });
    let tick =
        (any::<u32>(), tick_input(), acks(), any::<u64>()).prop_map(|(tick, input, acks, h)| {
            ServerMsg::Tick(TickMsg { tick, input, acks, hash: StateHash(h) })
        });
    let keyframe = (state(), tick_input(), acks())
        .prop_map(|(state, input, acks)| ServerMsg::Keyframe(Keyframe { state, input, acks }));
    let paused = (any::<u32>(), prop::collection::vec((player(), any::<u64>()), 0..4)).prop_map(
        |(tick, lost)| {
            ServerMsg::Paused(Paused {
                epoch: Epoch(tick / 2),
                tick,
                lost: lost
                    .into_iter()
                    .map(|(player, deadline)| Lost { player, deadline })
                    .collect(),
            })
        },
    );
    let standing = (
        player(),
        name(),
        0u8..16,
        1u8..5,
        prop::option::of(any::<u32>()),
        prop::option::of(out_reason()),
    )
        .prop_map(|(player, name, lives, rank, out_tick, reason)| Standing {
            player,
            name,
            lives,
            rank,
            out_tick,
            reason,
        });
    let over = (
        any::<u32>(),
        prop::option::of(player()),
        prop::collection::vec(standing, 0..4),
        any::<u64>(),
    )
        .prop_map(|(tick, winner, standings, h)| {
            ServerMsg::MatchOver(MatchOver { tick, winner, standings, final_hash: StateHash(h) })
        });
    prop_oneof![
        welcome,
        (any::<u32>(), any::<u64>()).prop_map(|(s, nonce)| ServerMsg::Challenge {
            session: SessionId(s),
            nonce,
            next_seq: s.rotate_left(7),
        }),
        prop_oneof![
            Just(Reject::BadPlayerCount),
            Just(Reject::RoomFull),
            Just(Reject::ServerFull),
            Just(Reject::UnknownSession),
            Just(Reject::BadProof),
            Just(Reject::RateLimited),
            Just(Reject::ShuttingDown),
            Just(Reject::TooManyLinks),
            Just(Reject::TooManyMatches)
        ]
        .prop_map(ServerMsg::Rejected),
        (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(id, client_time, server_time)| {
            ServerMsg::Pong { id, client_time, server_time }
        }),
        lobby,
        (any::<u32>(), any::<u64>()).prop_map(|(tick, server_time)| ServerMsg::StartAt {
            epoch: Epoch(tick / 7),
            tick,
            server_time
        }),
        tick,
        keyframe,
        paused,
        over,
        prop_oneof![
            Just(CloseReason::Malformed),
            Just(CloseReason::Flooding),
            Just(CloseReason::Replaced),
            Just(CloseReason::Shutdown),
            Just(CloseReason::LobbyExpired),
            Just(CloseReason::Idle)
        ]
        .prop_map(ServerMsg::Closed),
    ]
}

fn session_msg() -> impl Strategy<Value = SessionMsg> {
    prop_oneof![
        Just(SessionMsg::Ready),
        (any::<u32>(), prop::collection::vec(intent(), 1..=MAX_INPUT_RUN))
            .prop_map(|(first, intents)| SessionMsg::Input(InputRun::new(first, intents))),
        (any::<u32>(), any::<u64>())
            .prop_map(|(id, client_time)| SessionMsg::Ping { id, client_time }),
        any::<u32>().prop_map(|from_tick| SessionMsg::Resync { from_tick }),
        any::<u64>().prop_map(|nonce| SessionMsg::Prove { nonce }),
        Just(SessionMsg::Leave),
    ]
}

fn open_msg() -> impl Strategy<Value = OpenMsg> {
    prop_oneof![
        (name(), prop::option::of(any::<u8>()), prop::option::of(room()))
            .prop_map(|(name, players, room)| OpenMsg::Join(Join { name, players, room })),
        any::<u32>().prop_map(|s| OpenMsg::Resume { session: SessionId(s) }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn server_messages_round_trip(msg in server_msg()) {
        let mut buf = Vec::new();
        codec::encode_server(&msg, &mut buf).unwrap();
        prop_assert_eq!(codec::decode_server(&buf).unwrap(), msg);
    }

    #[test]
    fn open_messages_round_trip(msg in open_msg()) {
        let mut buf = Vec::new();
        codec::encode_open(&msg, &mut buf).unwrap();
        prop_assert_eq!(codec::decode_client(&buf).unwrap(), ClientFrame::Open(msg));
    }

    #[test]
    fn session_messages_round_trip(msg in session_msg(), session in any::<u32>(), seq in any::<u32>(), token in any::<[u8; 16]>()) {
        let mut buf = Vec::new();
        let header = Signed { session: SessionId(session), seq };
        codec::encode_signed(header, &msg, &Token(token), &mut buf).unwrap();
        let ClientFrame::Signed(f) = codec::decode_client(&buf).unwrap() else { panic!("not signed") };
        prop_assert!(f.verify(&Token(token)));
        prop_assert_eq!(f.header, header);
        prop_assert_eq!(f.msg, msg);
    }
}

#[test]
fn sides_follow_seats() {
    assert_eq!(PlayerId::ALL.map(|p| p.side()), Side::ALL);
}
