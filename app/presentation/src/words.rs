//! The words of each screen and the colour each is shown in, from the core's state: the
//! lobby's seats and status, the pause ("Bob lost connection - back in 27 s or out"), the
//! HUD's cards and ping, the result. A frontend lays them out; it does not word them.

use pong_domain::client::{ClientCore, ClientPhase};
use pong_domain::proto::{Lobby, MatchOver, Member, Standing};
use pong_domain::rules::{PlayerId, Side};
use pong_domain::sim::OutReason;

use crate::palette::{self, Rgba};
use crate::roster::Roster;

/// The game's name, atop every screen.
pub const TITLE: &str = "DISTRIBUTED PONG";
/// Under the title while connecting.
pub const TAGLINE: &str = "2 to 4 players - one authoritative server";
/// The banner while the link to the server is being restored.
pub const RECONNECTING: &str = "Lost the server - reconnecting...";
/// Under the pause's lines.
pub const PAUSE_FOOTER: &str = "The match goes on when everyone is back.";

/// The keys that move `side`'s paddle, as shown to the player.
#[must_use]
pub const fn keys_for(side: Side) -> &'static str {
    if side.is_vertical() { "W/S or Up/Down" } else { "A/D or Left/Right" }
}

/// The lobby's heading: "Room friday - 4 players", or "Match 12 - 2 players".
#[must_use]
pub fn lobby_heading(core: &ClientCore, seats: u8) -> String {
    match lobby(core).and_then(|l| l.room.as_ref()) {
        Some(room) => format!("Room {} - {seats} players", room.as_str()),
        None => format!("Match {} - {seats} players", core.match_id().map_or(0, |m| m.0)),
    }
}

/// "You play LEFT (P1): W/S or Up/Down".
#[must_use]
pub fn you_play(p: PlayerId) -> String {
    format!("You play {} ({}): {}", p.side().name().to_uppercase(), p, keys_for(p.side()))
}

/// The lobby, while the core is in one.
#[must_use]
pub fn lobby(core: &ClientCore) -> Option<&Lobby> {
    match core.phase() {
        ClientPhase::Lobby(l) => Some(l),
        _ => None,
    }
}

fn member(l: &Lobby, p: PlayerId) -> Option<&Member> {
    l.members.iter().find(|m| m.player == p)
}

/// The name on a lobby seat's card, or "open seat".
#[must_use]
pub fn seat_name(l: &Lobby, p: PlayerId) -> (String, Rgba) {
    match member(l, p) {
        Some(m) => (m.name.as_str().to_owned(), palette::TEXT),
        None => ("open seat".to_owned(), palette::MUTED),
    }
}

/// A lobby seat's badge: READY, getting ready, reconnecting, waiting.
#[must_use]
pub fn seat_ready(l: &Lobby, p: PlayerId) -> (&'static str, Rgba) {
    match member(l, p) {
        Some(m) if !m.connected => ("reconnecting...", palette::ERROR),
        Some(m) if m.ready => ("READY", palette::GOOD),
        Some(_) => ("getting ready...", palette::MUTED),
        None => ("waiting...", palette::MUTED),
    }
}

/// Who the match still waits for: "Waiting for 2 more players".
#[must_use]
pub fn lobby_status(l: &Lobby) -> String {
    match l.missing() {
        0 if l.members.iter().all(|m| m.ready) => "Everyone is ready - starting".to_owned(),
        0 => "Everyone is here - waiting for all to be ready".to_owned(),
        1 => "Waiting for 1 more player".to_owned(),
        n => format!("Waiting for {n} more players"),
    }
}

/// Whole seconds left until local time `at` (at least 1 while counting down): every host
/// shows the same number at the same moment, the core having turned the server's start time
/// into local time.
#[must_use]
pub fn seconds_left(at: u64, now: u64) -> u64 {
    at.saturating_sub(now).div_ceil(1_000_000).max(1)
}

/// The countdown's caption: "RESUMING" after a pause, "GET READY" before the first serve.
#[must_use]
pub fn countdown_caption(core: &ClientCore) -> &'static str {
    if core.confirmed().is_some_and(|s| s.tick > 0) { "RESUMING" } else { "GET READY" }
}

/// "You are LEFT - W/S or Up/Down", under the countdown.
#[must_use]
pub fn you_are(p: PlayerId) -> String {
    format!("You are {} - {}", p.side().name().to_uppercase(), keys_for(p.side()))
}

/// One line per player the paused match waits for, with the seconds left to come back:
/// "Bob lost connection - back in 27 s or out".
#[must_use]
pub fn pause_lines(core: &ClientCore, roster: &Roster, now: u64) -> Vec<String> {
    let ClientPhase::Paused(p) = core.phase() else { return Vec::new() };
    p.lost
        .iter()
        .map(|l| {
            // Rounded to the nearest second, not up: the deadline is in server time and the
            // clock estimate is off by a little, so rounding up showed "31 s" of a 30 s grace.
            let left = (core.to_local(l.deadline).saturating_sub(now) + 500_000) / 1_000_000;
            let who = if core.player() == Some(l.player) {
                "You".to_owned()
            } else {
                roster.name(l.player)
            };
            format!("{who} lost connection - back in {left} s or out")
        })
        .collect()
}

/// The status line of a player's card in the HUD: "lost connection", "out", or nothing.
#[must_use]
pub fn card_status(core: &ClientCore, p: PlayerId) -> (&'static str, Rgba) {
    let lost = match core.phase() {
        ClientPhase::Paused(paused) => paused.lost.iter().any(|l| l.player == p),
        _ => false,
    };
    if lost {
        ("lost connection", palette::ERROR)
    } else if core.confirmed().is_some_and(|s| s.lives[p.index()] == 0) {
        ("out", palette::MUTED)
    } else {
        ("", palette::MUTED)
    }
}

/// The ping readout: "ping 12 ms", or "ping -" before the first answer.
#[must_use]
pub fn ping(rtt_us: u64) -> String {
    if rtt_us == 0 { "ping -".to_owned() } else { format!("ping {} ms", rtt_us.div_ceil(1000)) }
}

/// The HUD's footer: "match 12 - 3 lives each".
#[must_use]
pub fn match_line(core: &ClientCore, lives: u8) -> String {
    format!("match {} - {} lives each", core.match_id().map_or(0, |m| m.0), lives)
}

/// Why the session ended without a result: refused, closed, or left.
#[must_use]
pub fn ended(core: &ClientCore) -> (&'static str, String) {
    match core.phase() {
        ClientPhase::Rejected(r) => ("The server refused", r.to_string()),
        ClientPhase::Closed(c) => ("The server closed the link", c.to_string()),
        _ => ("You left the match", String::new()),
    }
}

/// 1st, 2nd, 3rd, 4th, 11th…
#[must_use]
pub fn ordinal(n: u8) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, r) if r != 11 => "st",
        (2, r) if r != 12 => "nd",
        (3, r) if r != 13 => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The result's headline: "You win!", "Ada wins!" in the winner's colour, or "A draw".
#[must_use]
pub fn headline(
    result: Option<&MatchOver>,
    me: Option<PlayerId>,
    roster: &Roster,
) -> (String, Rgba) {
    match result.and_then(|r| r.winner) {
        Some(w) if Some(w) == me => ("You win!".to_owned(), palette::player(w)),
        Some(w) => (format!("{} wins!", roster.name(w)), palette::player(w)),
        None => ("A draw".to_owned(), palette::TEXT),
    }
}

/// The result's standings, best first.
#[must_use]
pub fn standings(result: Option<&MatchOver>) -> Vec<Standing> {
    let mut standings = result.map(|r| r.standings.clone()).unwrap_or_default();
    standings.sort_by_key(|s| (s.rank, s.player));
    standings
}

/// How a player ended: "2 lives left", "out of lives", "forfeited".
#[must_use]
pub fn how_out(s: &Standing) -> String {
    match s.reason {
        None => format!("{} lives left", s.lives),
        Some(OutReason::NoLives) => "out of lives".to_owned(),
        Some(OutReason::Forfeit) => "forfeited".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pong_domain::proto::{Epoch, MatchId, Name};

    fn lobby(members: &[(u8, bool, bool)], seats: u8) -> Lobby {
        Lobby {
            match_id: MatchId(1),
            epoch: Epoch(0),
            room: None,
            seats,
            members: members
                .iter()
                .map(|&(p, ready, connected)| Member {
                    player: PlayerId::new(p).unwrap(),
                    name: Name::new(&format!("p{p}")).unwrap(),
                    ready,
                    connected,
                })
                .collect(),
        }
    }

    #[test]
    fn the_lobby_says_who_is_missing_and_who_is_ready() {
        assert_eq!(lobby_status(&lobby(&[(0, true, true)], 4)), "Waiting for 3 more players");
        assert_eq!(lobby_status(&lobby(&[(0, true, true)], 2)), "Waiting for 1 more player");
        let full = lobby(&[(0, true, true), (1, false, false)], 2);
        assert_eq!(lobby_status(&full), "Everyone is here - waiting for all to be ready");
        let p = |n| PlayerId::new(n).unwrap();
        assert_eq!(seat_ready(&full, p(0)).0, "READY");
        assert_eq!(seat_ready(&full, p(1)), ("reconnecting...", palette::ERROR));
        assert_eq!(seat_name(&lobby(&[], 2), p(1)).0, "open seat");
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal).to_vec();
        assert_eq!(
            got,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
        );
    }

    #[test]
    fn ping_reads_in_whole_milliseconds_rounded_up() {
        assert_eq!(ping(0), "ping -");
        assert_eq!(ping(80), "ping 1 ms");
        assert_eq!(ping(12_000), "ping 12 ms");
    }
}
