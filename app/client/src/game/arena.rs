//! The arena in world space: floor, walls, goal lines, corner blocks, paddles and the ball,
//! spawned when a match appears ([`InMatch`]) and moved every frame from
//! [`PongClient::view`] — interpolated between fixed steps, so motion is smooth at any frame
//! rate. One world unit is one reference pixel (16 arena units); the arena's centre is the
//! origin and y grows upward (the domain's y grows downward).

use bevy::prelude::*;
use pong_domain::rules::{PlayerId, Rules, Side, UNITS_PER_PX};

use super::{GameSystems, InMatch, palette};
use crate::net::PongClient;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(OnEnter(InMatch), spawn_arena).add_systems(
        Update,
        (spawn_arena.run_if(no_arena), follow_view)
            .chain()
            .in_set(GameSystems::Render)
            .run_if(in_state(InMatch)),
    );
}

/// A player's paddle.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paddle(pub PlayerId);

/// The ball.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct Ball;

/// The strip along one side: the player's goal line while it plays, a wall otherwise.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SideStrip(pub Side);

/// The root of the arena's entities.
#[derive(Component, Clone, Copy, Debug, Default)]
pub struct Arena;

const UNIT: f32 = UNITS_PER_PX as f32;
const GOAL_WIDTH: f32 = 4.0;
const WALL_WIDTH: f32 = 8.0;

/// The world position of a point given in arena units.
pub fn to_world(rules: &Rules, x: f32, y: f32) -> Vec2 {
    Vec2::new(
        x / UNIT - rules.width as f32 / UNIT / 2.0,
        rules.height as f32 / UNIT / 2.0 - y / UNIT,
    )
}

/// The world centre and size of the paddle on `side` whose low edge is at `pos` (units).
pub fn paddle_box(rules: &Rules, side: Side, pos: f32) -> (Vec2, Vec2) {
    let (len, th, inset) =
        (rules.paddle_length as f32, rules.paddle_thickness as f32, rules.paddle_inset as f32);
    let (w, h) = (rules.width as f32, rules.height as f32);
    let (x, y, sx, sy) = match side {
        Side::Left => (inset, pos, th, len),
        Side::Right => (w - inset - th, pos, th, len),
        Side::Top => (pos, inset, len, th),
        Side::Bottom => (pos, h - inset - th, len, th),
    };
    (to_world(rules, x + sx / 2.0, y + sy / 2.0), Vec2::new(sx, sy) / UNIT)
}

/// The world centre of the ball whose top-left corner is at `(x, y)` (units).
pub fn ball_centre(rules: &Rules, (x, y): (f32, f32)) -> Vec2 {
    let half = rules.ball_size as f32 / 2.0;
    to_world(rules, x + half, y + half)
}

/// The arena's size in world units.
pub fn arena_size(rules: &Rules) -> Vec2 {
    Vec2::new(rules.width as f32, rules.height as f32) / UNIT
}

fn no_arena(q: Query<(), With<Arena>>) -> bool {
    q.is_empty()
}

fn spawn_arena(mut commands: Commands, client: Res<PongClient>, existing: Query<(), With<Arena>>) {
    let Some(rules) = client.rules() else { return };
    if !existing.is_empty() {
        return;
    }
    let size = arena_size(rules);
    let mut arena = commands.spawn((
        Name::new("Arena"),
        Arena,
        Transform::default(),
        Visibility::default(),
        DespawnOnExit(InMatch),
    ));
    arena.with_children(|a| {
        // A rim a little larger than the floor, then the floor.
        a.spawn((
            Sprite::from_color(palette::WALL.with_alpha(0.35), size + Vec2::splat(6.0)),
            Transform::from_xyz(0.0, 0.0, -0.1),
        ));
        a.spawn((Sprite::from_color(palette::FLOOR, size), Transform::from_xyz(0.0, 0.0, 0.0)));
        // Dashed centre lines: one for two players, a cross for three or four.
        let dash = 14.0;
        let mut dashes = |vertical: bool| {
            let len = if vertical { size.y } else { size.x };
            let n = (len / (dash * 2.0)) as i32;
            for i in 0..n {
                let t = -len / 2.0 + dash * (2.0 * i as f32 + 1.0);
                let (pos, s) = if vertical {
                    (Vec3::new(0.0, t, 0.5), Vec2::new(3.0, dash))
                } else {
                    (Vec3::new(t, 0.0, 0.5), Vec2::new(dash, 3.0))
                };
                a.spawn((
                    Sprite::from_color(palette::MARKING, s),
                    Transform::from_translation(pos),
                ));
            }
        };
        dashes(true);
        if rules.players() > 2 {
            dashes(false);
        }
        for side in Side::ALL {
            a.spawn((
                SideStrip(side),
                Sprite::from_color(palette::WALL, Vec2::ONE),
                Transform::from_xyz(0.0, 0.0, 0.8),
            ));
        }
        for b in rules.corner_blocks() {
            let c = to_world(rules, (b.x0 + b.x1) as f32 / 2.0, (b.y0 + b.y1) as f32 / 2.0);
            let s = Vec2::new((b.x1 - b.x0) as f32, (b.y1 - b.y0) as f32) / UNIT;
            a.spawn((
                Sprite::from_color(palette::WALL, s),
                Transform::from_translation(c.extend(1.0)),
            ));
        }
        for p in rules.config.seats() {
            let (c, s) = paddle_box(rules, p.side(), rules.paddle_start(p.side()) as f32);
            a.spawn((
                Name::new(format!("Paddle {p}")),
                Paddle(p),
                Sprite::from_color(palette::player(p), s),
                Transform::from_translation(c.extend(2.0)),
            ));
        }
        let ball = rules.ball_size as f32 / UNIT;
        let (cx, cy) = rules.ball_centre();
        let c = ball_centre(rules, (cx as f32, cy as f32));
        a.spawn((
            Name::new("Ball"),
            Ball,
            Sprite::from_color(palette::BALL, Vec2::splat(ball)),
            Transform::from_translation(c.extend(3.0)),
        ));
    });
}

/// Paddles, ball and side strips follow the client's view.
fn follow_view(
    client: Res<PongClient>,
    mut paddles: Query<(&Paddle, &mut Transform, &mut Visibility), Without<Ball>>,
    mut ball: Query<&mut Transform, (With<Ball>, Without<Paddle>)>,
    mut strips: Query<(&SideStrip, &mut Sprite, &mut Transform), (Without<Ball>, Without<Paddle>)>,
) {
    let (Some(rules), Some(view)) = (client.rules(), client.view()) else { return };
    let alive = |p: PlayerId| view.lives[p.index()] > 0 && p.get() < rules.players();
    for (paddle, mut t, mut vis) in &mut paddles {
        let p = paddle.0;
        let (c, _) = paddle_box(rules, p.side(), view.paddles[p.index()]);
        t.translation = c.extend(2.0);
        let want = if alive(p) { Visibility::Inherited } else { Visibility::Hidden };
        vis.set_if_neq(want);
    }
    for mut t in &mut ball {
        t.translation = ball_centre(rules, view.ball).extend(3.0);
    }
    let size = arena_size(rules);
    for (strip, mut sprite, mut t) in &mut strips {
        let side = strip.0;
        let p = side.player();
        let (width, color) = if alive(p) {
            (GOAL_WIDTH, palette::player_dim(p, 0.55))
        } else {
            (WALL_WIDTH, palette::WALL)
        };
        let (centre, s) = match side {
            Side::Left => (Vec2::new(-size.x / 2.0 + width / 2.0, 0.0), Vec2::new(width, size.y)),
            Side::Right => (Vec2::new(size.x / 2.0 - width / 2.0, 0.0), Vec2::new(width, size.y)),
            Side::Top => (Vec2::new(0.0, size.y / 2.0 - width / 2.0), Vec2::new(size.x, width)),
            Side::Bottom => (Vec2::new(0.0, -size.y / 2.0 + width / 2.0), Vec2::new(size.x, width)),
        };
        t.translation = centre.extend(0.8);
        if sprite.custom_size != Some(s) {
            sprite.custom_size = Some(s);
        }
        if sprite.color != color {
            sprite.color = color;
        }
    }
}
