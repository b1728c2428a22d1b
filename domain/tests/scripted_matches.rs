//! Whole matches for 2, 3 and 4 players driven by a fixed input script, recorded as compact
//! traces: positions every 120 ticks, every event, final standings and hash. A trace changes
//! only when the rules do, and the commit that changes it says why.

#![allow(clippy::unwrap_used)]

use std::fmt::Write;

use pong_domain::sim::StepEvents;
use pong_domain::{Ball, Event, Intent, MatchConfig, MatchState, PlayerId, Rules, TickInput};

/// The script: each player follows the ball's centre along its side, but looks away for 40
/// ticks out of every 200 (a different window per seat), so that points are lost.
fn scripted_input(rules: &Rules, s: &MatchState) -> TickInput {
    let mut input = TickInput::IDLE;
    let (bx, by) = s.ball_pos(rules);
    for p in rules.config.seats() {
        let distracted = (s.tick / 40 + u32::from(p.get())).is_multiple_of(5);
        let ball = if p.side().is_vertical() { by } else { bx } + rules.ball_size / 2;
        let mid = s.paddles[p.index()] + rules.paddle_length / 2;
        input.intents[p.index()] = match (distracted, ball - mid) {
            (true, _) => Intent::Stop,
            (false, d) if d > rules.paddle_speed => Intent::Plus,
            (false, d) if d < -rules.paddle_speed => Intent::Minus,
            _ => Intent::Stop,
        };
    }
    input
}

fn px(u: i32) -> String {
    format!("{:.1}", f64::from(u) / 16.0)
}

fn describe(e: &Event) -> String {
    match e {
        Event::Served { toward } => format!("served toward {toward}"),
        Event::PaddleHit { player } => format!("paddle {player}"),
        Event::WallHit { side: Some(side) } => format!("wall {}", side.name()),
        Event::WallHit { side: None } => "corner block".into(),
        Event::LifeLost { player, lives_left } => {
            format!("{player} loses a life, {lives_left} left")
        }
        Event::PlayerOut { player, rank, reason } => {
            format!("{player} out ({reason:?}), rank {rank}")
        }
        Event::MatchOver { winner: Some(w) } => format!("match over, {w} wins"),
        Event::MatchOver { winner: None } => "match over, a draw".into(),
    }
}

fn trace(players: u8, lives: u8, seed: u64) -> String {
    let rules = Rules::new(MatchConfig::new(players, lives, 60, seed).unwrap());
    let mut s = MatchState::new(&rules);
    let mut out = String::new();
    let mut ranks = [0u8; 4];
    while !s.is_over() && s.tick < 30_000 {
        let input = scripted_input(&rules, &s);
        let events: StepEvents = s.step(&rules, &input);
        for e in events.iter() {
            // Bounces are many and follow from the positions; the trace keeps the rest.
            if !matches!(e, Event::WallHit { .. }) {
                writeln!(out, "{:>5} {}", s.tick, describe(&e)).unwrap();
            }
            if let Event::PlayerOut { player, rank, .. } = e {
                ranks[player.index()] = rank;
            }
        }
        if s.tick.is_multiple_of(120) {
            let (x, y) = s.ball_pos(&rules);
            let paddles: Vec<String> =
                rules.config.seats().map(|p| px(s.paddles[p.index()])).collect();
            let moving = matches!(s.ball, Ball::Moving { .. });
            writeln!(
                out,
                "{:>5} ball ({}, {}){} paddles [{}] lives {:?}",
                s.tick,
                px(x),
                px(y),
                if moving { "" } else { " resting" },
                paddles.join(", "),
                &s.lives[..usize::from(players)]
            )
            .unwrap();
        }
    }
    if let Some(w) = s.winner() {
        ranks[w.index()] = 1;
    }
    writeln!(out, "final tick {} hash {:#018x}", s.tick, s.hash()).unwrap();
    for p in rules.config.seats() {
        writeln!(out, "  {p}: rank {} lives {}", ranks[p.index()], s.lives[p.index()]).unwrap();
    }
    assert!(s.is_over(), "the scripted match should end");
    out
}

#[test]
fn two_players() {
    insta::assert_snapshot!(trace(2, 3, 2024));
}

#[test]
fn three_players() {
    insta::assert_snapshot!(trace(3, 2, 7));
}

#[test]
fn four_players() {
    insta::assert_snapshot!(trace(4, 2, 42));
}

#[test]
fn winner_is_ranked_first_and_the_rest_by_elimination() {
    let t = trace(4, 2, 42);
    let finals: Vec<&str> = t.lines().rev().take(4).collect();
    assert_eq!(finals.iter().filter(|l| l.contains("rank 1 ")).count(), 1, "{t}");
    assert!(PlayerId::ALL.iter().all(|p| t.contains(&format!("{p}: rank"))));
}
