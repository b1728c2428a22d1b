//! Drawing a frame on the canvas: the screen the core's phase calls for, in the shared
//! palette and words, so the page looks and reads like the window. The arena is drawn from
//! [`ClientCore::view_with_intent`] at the moment of the frame, so motion is as smooth as
//! the display (a key press shows in the frame that reads it).

use std::f64::consts::TAU;

use pong_domain::client::{ClientCore, ClientPhase};
use pong_domain::rules::{PlayerId, Rules, Side, UNITS_PER_PX};
use pong_presentation::palette::{self, Rgba};
use pong_presentation::words;
use web_sys::CanvasRenderingContext2d;

use crate::game::Game;
use crate::layout::{Area, Layout};

/// Monospaced, as the window's (Bevy's default font is Fira Mono).
const FONT: &str = "'Fira Mono', 'DejaVu Sans Mono', ui-monospace, Menlo, Consolas, monospace";

/// The canvas's 2D context, its size in CSS pixels, and helpers in the palette's terms.
pub struct Painter {
    ctx: CanvasRenderingContext2d,
    /// Width in CSS pixels.
    pub w: f64,
    /// Height in CSS pixels.
    pub h: f64,
}

/// How a piece of text is set.
#[derive(Clone, Copy)]
struct Style {
    size: f32,
    bold: bool,
    colour: Rgba,
    align: Align,
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Centre,
    Right,
}

impl Painter {
    /// Paints on `ctx`, a `w` × `h` CSS-pixel canvas (already scaled for the device).
    #[must_use]
    pub fn new(ctx: CanvasRenderingContext2d, w: f64, h: f64) -> Painter {
        Painter { ctx, w, h }
    }

    fn fill(&self, c: Rgba) {
        self.ctx.set_fill_style_str(&c.css());
    }

    fn rect(&self, a: Area, c: Rgba) {
        self.fill(c);
        self.ctx.fill_rect(a.x, a.y, a.w, a.h);
    }

    fn rounded(&self, a: Area, r: f64, c: Rgba) {
        let ctx = &self.ctx;
        let r = r.min(a.w / 2.0).min(a.h / 2.0);
        self.fill(c);
        ctx.begin_path();
        ctx.move_to(a.x + r, a.y);
        // arc_to fails only on a negative radius.
        let _ = ctx.arc_to(a.x + a.w, a.y, a.x + a.w, a.y + a.h, r);
        let _ = ctx.arc_to(a.x + a.w, a.y + a.h, a.x, a.y + a.h, r);
        let _ = ctx.arc_to(a.x, a.y + a.h, a.x, a.y, r);
        let _ = ctx.arc_to(a.x, a.y, a.x + a.w, a.y, r);
        ctx.close_path();
        ctx.fill();
    }

    fn circle(&self, x: f64, y: f64, r: f64, c: Rgba) {
        self.fill(c);
        self.ctx.begin_path();
        let _ = self.ctx.arc(x, y, r, 0.0, TAU);
        self.ctx.fill();
    }

    fn text(&self, s: &str, x: f64, y: f64, style: Style) {
        let Style { size, bold, colour, align } = style;
        let weight = if bold { "700" } else { "400" };
        self.ctx.set_font(&format!("{weight} {size}px {FONT}"));
        self.ctx.set_text_align(match align {
            Align::Left => "left",
            Align::Centre => "center",
            Align::Right => "right",
        });
        self.ctx.set_text_baseline("middle");
        self.fill(colour);
        for (i, line) in s.lines().enumerate() {
            let _ = self.ctx.fill_text(line, x, y + i as f64 * f64::from(size) * 1.35);
        }
    }

    /// A small filled label ending at `right` ("YOU"), text in the background colour.
    fn badge(&self, label: &str, right: f64, cy: f64, colour: Rgba) {
        let size = palette::SMALL;
        self.ctx.set_font(&format!("700 {size}px {FONT}"));
        let w = self.ctx.measure_text(label).map_or(30.0, |m| m.width()) + 12.0;
        let h = f64::from(size) + 8.0;
        self.rounded(Area { x: right - w, y: cy - h / 2.0, w, h }, 4.0, colour);
        let style = Style { size, bold: true, colour: palette::BACKGROUND, align: Align::Centre };
        self.text(label, right - w / 2.0, cy + 1.0, style);
    }

    /// A centred column of lines (text, size, bold, colour), laid out from its middle.
    fn column(&self, lines: &[(String, f32, bool, Rgba)], cx: f64, cy: f64) {
        let height = |l: &(String, f32, bool, Rgba)| {
            f64::from(l.1) * 1.35 * l.0.lines().count().max(1) as f64 + 10.0
        };
        let total: f64 = lines.iter().map(height).sum();
        let mut y = cy - total / 2.0;
        for l in lines {
            let style = Style { size: l.1, bold: l.2, colour: l.3, align: Align::Centre };
            self.text(&l.0, cx, y + f64::from(l.1) * 0.7, style);
            y += height(l);
        }
    }
}

/// Everything the frame shows beyond the core: the page's own state.
pub struct Extras<'a> {
    /// Where the page connects, for the Connecting screen.
    pub server: &'a str,
    /// The layout of this frame, if a match is on.
    pub layout: Option<&'a Layout>,
}

/// Draws one frame at local time `now`.
pub fn frame(p: &Painter, game: &Game, now: u64, extras: &Extras<'_>) {
    p.rect(Area { x: 0.0, y: 0.0, w: p.w, h: p.h }, palette::BACKGROUND);
    let core = game.core();
    match core.phase() {
        ClientPhase::Connecting | ClientPhase::Joining => connecting(p, game, extras.server),
        ClientPhase::Lobby(_) => lobby(p, game),
        ClientPhase::Rejected(_) | ClientPhase::Closed(_) | ClientPhase::Left => ended(p, core),
        ClientPhase::Countdown { .. }
        | ClientPhase::Playing
        | ClientPhase::Paused(_)
        | ClientPhase::Over { .. } => {
            let (Some(rules), Some(layout)) = (core.rules(), extras.layout) else { return };
            arena(p, core, rules, layout, now);
            hud(p, game, rules, layout);
            overlay(p, game, layout, now);
        }
    }
}

fn connecting(p: &Painter, game: &Game, server: &str) {
    let status = game.status();
    let (main, colour, more) = if let Some(why) = &status.gave_up {
        (
            "Cannot reach the server".to_owned(),
            palette::ERROR,
            format!("{why}\nIs the server running? Reload the page or press R to try again."),
        )
    } else if matches!(game.core().phase(), ClientPhase::Joining) {
        (format!("Connected to {server}"), palette::GOOD, "Asking for a seat...".to_owned())
    } else {
        let more = match (&status.last_error, status.attempts) {
            (Some(e), n) if n > 0 => format!("attempt {n} failed ({e}); retrying..."),
            (None, n) if n > 0 => format!("attempt {n} failed; retrying..."),
            _ => String::new(),
        };
        (format!("Connecting to {server}..."), palette::TEXT, more)
    };
    p.column(
        &[
            (words::TITLE.to_owned(), palette::TITLE, true, palette::TEXT),
            (words::TAGLINE.to_owned(), palette::BODY, false, palette::MUTED),
            (main, palette::HEADING, true, colour),
            (more, palette::BODY, false, palette::MUTED),
        ],
        p.w / 2.0,
        p.h / 2.0,
    );
}

fn lobby(p: &Painter, game: &Game) {
    let core = game.core();
    let Some(l) = words::lobby(core) else { return };
    let seats = l.seats;
    let me = core.player();
    let cx = p.w / 2.0;
    let mut y = (p.h / 2.0 - 190.0).max(30.0);
    p.text(
        words::TITLE,
        cx,
        y,
        Style { size: palette::TITLE, bold: true, colour: palette::TEXT, align: Align::Centre },
    );
    y += 44.0;
    let heading = words::lobby_heading(core, seats);
    p.text(
        &heading,
        cx,
        y,
        Style { size: palette::BODY, bold: false, colour: palette::MUTED, align: Align::Centre },
    );
    y += 40.0;
    // One card per seat, in a row (two rows on a narrow screen).
    let per_row = if p.w < 560.0 { 2 } else { usize::from(seats) };
    let card_w = ((p.w - 48.0) / per_row as f64 - 12.0).min(190.0);
    let card_h = 118.0;
    for (i, s) in (0..seats).filter_map(PlayerId::new).enumerate() {
        let (row, col) = (i / per_row, i % per_row);
        let in_row = (usize::from(seats) - row * per_row).min(per_row) as f64;
        let x0 = cx - (in_row * (card_w + 12.0) - 12.0) / 2.0;
        let a = Area {
            x: x0 + col as f64 * (card_w + 12.0),
            y: y + row as f64 * (card_h + 12.0),
            w: card_w,
            h: card_h,
        };
        let colour = palette::player(s);
        p.rounded(a, 10.0, palette::PANEL);
        p.rect(Area { h: 6.0, ..a }, colour);
        let side = s.side().name().to_uppercase();
        p.text(
            &format!("{side} - {s}"),
            a.x + 14.0,
            a.y + 24.0,
            Style { size: palette::SMALL, bold: false, colour, align: Align::Left },
        );
        let (name, c) = words::seat_name(l, s);
        p.text(
            &name,
            a.x + 14.0,
            a.y + 54.0,
            Style { size: palette::HEADING, bold: true, colour: c, align: Align::Left },
        );
        let (ready, c) = words::seat_ready(l, s);
        p.text(
            ready,
            a.x + 14.0,
            a.y + 88.0,
            Style { size: palette::BODY, bold: false, colour: c, align: Align::Left },
        );
        if me == Some(s) {
            p.badge("YOU", a.x + a.w - 12.0, a.y + 26.0, colour);
        }
    }
    let rows = usize::from(seats).div_ceil(per_row) as f64;
    y += rows * (card_h + 12.0) + 28.0;
    p.text(
        &words::lobby_status(l),
        cx,
        y,
        Style { size: palette::HEADING, bold: true, colour: palette::TEXT, align: Align::Centre },
    );
    y += 36.0;
    if let Some(me) = me {
        p.text(
            &words::you_play(me),
            cx,
            y,
            Style {
                size: palette::BODY,
                bold: false,
                colour: palette::player(me),
                align: Align::Centre,
            },
        );
    }
    y += 30.0;
    let hint = if game.is_bot() { "playing by itself (bot)" } else { "Esc: leave" };
    p.text(
        hint,
        cx,
        y,
        Style { size: palette::SMALL, bold: false, colour: palette::MUTED, align: Align::Centre },
    );
}

fn ended(p: &Painter, core: &ClientCore) {
    let (title, why) = words::ended(core);
    p.column(
        &[
            (words::TITLE.to_owned(), palette::TITLE, true, palette::TEXT),
            (title.to_owned(), palette::HEADING, true, palette::ERROR),
            (why, palette::BODY, false, palette::MUTED),
            ("R: join again".to_owned(), palette::BODY, false, palette::MUTED),
        ],
        p.w / 2.0,
        p.h / 2.0,
    );
}

fn arena(p: &Painter, core: &ClientCore, rules: &Rules, l: &Layout, now: u64) {
    let a = l.arena;
    let rim = 3.0;
    p.rect(
        Area { x: a.x - rim, y: a.y - rim, w: a.w + 2.0 * rim, h: a.h + 2.0 * rim },
        palette::WALL.with_alpha(0.35),
    );
    p.rect(a, palette::FLOOR);
    // Dashed centre lines: one for two players, a cross for three or four.
    let px = l.scale * f64::from(UNITS_PER_PX);
    let dash = 14.0 * px;
    let marking = palette::MARKING.over(palette::FLOOR);
    let (cx, cy) = a.centre();
    let mut t = a.y + dash / 2.0;
    while t < a.y + a.h {
        p.rect(Area { x: cx - 1.5 * px, y: t, w: 3.0 * px, h: dash.min(a.y + a.h - t) }, marking);
        t += dash * 2.0;
    }
    if rules.players() > 2 {
        let mut t = a.x + dash / 2.0;
        while t < a.x + a.w {
            p.rect(
                Area { x: t, y: cy - 1.5 * px, w: dash.min(a.x + a.w - t), h: 3.0 * px },
                marking,
            );
            t += dash * 2.0;
        }
    }
    let Some(view) = core.view_with_intent(now) else { return };
    let alive = |s: PlayerId| s.get() < rules.players() && view.lives[s.index()] > 0;
    // Each side: the player's goal line while it plays, a wall otherwise.
    for side in Side::ALL {
        let s = side.player();
        let (width, colour) = if alive(s) {
            (4.0 * px, palette::player_dim(s, 0.55).over(palette::FLOOR))
        } else {
            (8.0 * px, palette::WALL)
        };
        let strip = match side {
            Side::Left => Area { w: width, ..a },
            Side::Right => Area { x: a.x + a.w - width, w: width, ..a },
            Side::Top => Area { h: width, ..a },
            Side::Bottom => Area { y: a.y + a.h - width, h: width, ..a },
        };
        p.rect(strip, colour);
    }
    for b in rules.corner_blocks() {
        let (x, y) = l.to_page(f64::from(b.x0), f64::from(b.y0));
        p.rect(
            Area { x, y, w: f64::from(b.x1 - b.x0) * l.scale, h: f64::from(b.y1 - b.y0) * l.scale },
            palette::WALL,
        );
    }
    let (len, th, inset) = (
        f64::from(rules.paddle_length),
        f64::from(rules.paddle_thickness),
        f64::from(rules.paddle_inset),
    );
    let (w, h) = (f64::from(rules.width), f64::from(rules.height));
    for s in rules.config.seats().filter(|s| alive(*s)) {
        let pos = f64::from(view.paddles[s.index()]);
        let (x, y, sx, sy) = match s.side() {
            Side::Left => (inset, pos, th, len),
            Side::Right => (w - inset - th, pos, th, len),
            Side::Top => (pos, inset, len, th),
            Side::Bottom => (pos, h - inset - th, len, th),
        };
        let (px0, py0) = l.to_page(x, y);
        p.rounded(
            Area { x: px0, y: py0, w: sx * l.scale, h: sy * l.scale },
            2.0,
            palette::player(s),
        );
    }
    let ball = f64::from(rules.ball_size) * l.scale;
    let (bx, by) = l.to_page(f64::from(view.ball.0), f64::from(view.ball.1));
    p.rect(Area { x: bx, y: by, w: ball, h: ball }, palette::BALL);
}

fn hud(p: &Painter, game: &Game, rules: &Rules, l: &Layout) {
    let core = game.core();
    let roster = game.roster();
    let me = core.player();
    let lives_now = core.confirmed().map_or([0; 4], |s| s.lives);
    let card_floor = palette::PANEL.over(palette::BACKGROUND);
    for (s, a) in &l.cards {
        let colour = palette::player(*s);
        p.rounded(*a, 8.0, palette::PANEL);
        p.rect(Area { w: 6.0, ..*a }, colour);
        let x = a.x + 18.0;
        if l.stacked {
            p.text(
                &roster.name(*s),
                x,
                a.y + 20.0,
                Style { size: palette::BODY, bold: true, colour, align: Align::Left },
            );
        } else {
            p.text(
                &roster.name(*s),
                x,
                a.y + 24.0,
                Style { size: palette::HEADING, bold: true, colour, align: Align::Left },
            );
            p.text(
                &s.side().name().to_uppercase(),
                x,
                a.y + 52.0,
                Style {
                    size: palette::SMALL,
                    bold: false,
                    colour: palette::MUTED,
                    align: Align::Left,
                },
            );
        }
        if me == Some(*s) {
            p.badge("YOU", a.x + a.w - 10.0, a.y + 22.0, colour);
        }
        let pip = if l.stacked { 5.0 } else { 7.0 };
        let pips_y = if l.stacked { a.y + 42.0 } else { a.y + 80.0 };
        for i in 0..rules.config.lives {
            let lit = lives_now[s.index()] > i;
            let c = if lit { colour } else { palette::player_dim(*s, 0.16).over(card_floor) };
            let per_row = ((a.w - 30.0) / (pip * 2.0 + 5.0)).max(1.0) as u8;
            let (row, col) = (i / per_row, i % per_row);
            p.circle(
                x + pip + f64::from(col) * (pip * 2.0 + 5.0),
                pips_y + f64::from(row) * (pip * 2.0 + 5.0),
                pip,
                c,
            );
        }
        let (status, c) = words::card_status(core, *s);
        if !status.is_empty() {
            let y = if l.stacked { a.y + a.h - 10.0 } else { a.y + a.h - 18.0 };
            p.text(
                status,
                x,
                y,
                Style { size: palette::SMALL, bold: false, colour: c, align: Align::Left },
            );
        }
    }
    let small = |colour, align| Style { size: palette::SMALL, bold: false, colour, align };
    let keys = if game.is_bot() {
        "bot at the controls".to_owned()
    } else {
        me.map_or(String::new(), |s| format!("{}: move", words::keys_for(s.side())))
    };
    let match_line = words::match_line(core, rules.config.lives);
    if l.stacked {
        let line = format!("{}   {keys}   {match_line}", words::ping(core.rtt()));
        let info = l.info;
        p.text(&line, info.x, info.y + info.h / 2.0, small(palette::MUTED, Align::Left));
    } else {
        // As the window: the game's name and the match bottom left, the network and the
        // controls bottom right.
        let (left, right) = (l.info, l.info_right);
        let title =
            Style { size: palette::BODY, bold: true, colour: palette::TEXT, align: Align::Left };
        p.text(words::TITLE, left.x, left.y + left.h - 34.0, title);
        p.text(&match_line, left.x, left.y + left.h - 10.0, small(palette::MUTED, Align::Left));
        let x = right.x + right.w;
        let leave = if game.is_bot() { "" } else { "Esc: leave" };
        for (i, t) in [words::ping(core.rtt()), keys, leave.to_owned()].iter().enumerate() {
            let y = right.y + right.h - 58.0 + i as f64 * 24.0;
            p.text(t, x, y, small(palette::MUTED, Align::Right));
        }
    }
    let reconnecting = !matches!(game.link(), crate::game::Link::Up(_)) && !core.is_finished();
    if reconnecting {
        let w = 340.0;
        let banner = Area { x: p.w / 2.0 - w / 2.0, y: 14.0, w, h: 38.0 };
        p.rounded(banner, 6.0, palette::ERROR.with_alpha(0.85));
        p.text(
            words::RECONNECTING,
            p.w / 2.0,
            banner.y + 19.0,
            Style { size: palette::BODY, bold: false, colour: palette::TEXT, align: Align::Centre },
        );
    }
}

fn overlay(p: &Painter, game: &Game, l: &Layout, now: u64) {
    let core = game.core();
    let me = core.player();
    let lines: Vec<(String, f32, bool, Rgba)> = match core.phase() {
        ClientPhase::Countdown { at, .. } => vec![
            (words::countdown_caption(core).to_owned(), palette::BODY, false, palette::MUTED),
            (words::seconds_left(*at, now).to_string(), 96.0, true, palette::TEXT),
            (
                me.map_or(String::new(), words::you_are),
                palette::BODY,
                false,
                me.map_or(palette::MUTED, palette::player),
            ),
        ],
        ClientPhase::Paused(_) => vec![
            ("PAUSED".to_owned(), palette::TITLE, true, palette::TEXT),
            (
                words::pause_lines(core, game.roster(), now).join("\n"),
                palette::BODY,
                false,
                palette::ERROR,
            ),
            (words::PAUSE_FOOTER.to_owned(), palette::SMALL, false, palette::MUTED),
        ],
        ClientPhase::Over { .. } => {
            let roster = game.roster();
            let (headline, colour) = words::headline(roster.result.as_ref(), me, roster);
            let mut lines = vec![
                ("MATCH OVER".to_owned(), palette::BODY, false, palette::MUTED),
                (headline, palette::TITLE, true, colour),
            ];
            for s in words::standings(roster.result.as_ref()) {
                let you = if Some(s.player) == me { "  (you)" } else { "" };
                lines.push((
                    format!(
                        "{}   {}{you}   {}",
                        words::ordinal(s.rank),
                        s.name.as_str(),
                        words::how_out(&s)
                    ),
                    palette::BODY,
                    false,
                    palette::player(s.player),
                ));
            }
            lines.push((
                "R or Enter: play again".to_owned(),
                palette::SMALL,
                false,
                palette::MUTED,
            ));
            lines
        }
        _ => return,
    };
    let height: f64 = lines
        .iter()
        .map(|l| f64::from(l.1) * 1.35 * l.0.lines().count().max(1) as f64 + 10.0)
        .sum();
    let (cx, cy) = l.arena.centre();
    let w = (l.arena.w * 0.8).clamp(260.0, 560.0);
    let panel = Area { x: cx - w / 2.0, y: cy - height / 2.0 - 24.0, w, h: height + 48.0 };
    p.rounded(panel, 12.0, palette::OVERLAY);
    p.column(&lines, cx, cy);
}
