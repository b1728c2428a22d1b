//! The `/status` document (JSON) and the page a person reads (HTML), both built from the
//! core's view of its matches at the moment they are asked for.

use std::fmt::Write as _;

use pong_domain::server::{MatchOverview, MatchPhase};
use serde::Serialize;

use super::{Figures, Telemetry};

/// What `/status` answers.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// The program's version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// The transport.
    pub transport: String,
    /// Where clients reach it.
    pub address: String,
    /// True while the server serves (what `/healthz` says).
    pub healthy: bool,
    /// Why it does not, if it does not.
    pub problems: Vec<&'static str>,
    /// Client links connected (as of the last second).
    pub links: u64,
    /// Matches hosted, by phase (as of the last second).
    pub matches_by_phase: Vec<PhaseCount>,
    /// Every hosted match; `null` when the server loop did not answer in time.
    pub matches: Option<Vec<MatchStatus>>,
}

/// Matches in one phase.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseCount {
    /// The phase.
    pub phase: &'static str,
    /// How many.
    pub matches: usize,
}

/// One match on the status page.
#[derive(Clone, Debug, Serialize)]
pub struct MatchStatus {
    /// Its number (as `pong replay --match` takes it).
    pub id: u32,
    /// Its room, if named.
    pub room: Option<String>,
    /// `lobby`, `countdown`, `running`, `paused` or `over`.
    pub phase: &'static str,
    /// Players it is for.
    pub size: u8,
    /// The last tick simulated.
    pub tick: u32,
    /// Its members, by seat.
    pub players: Vec<PlayerStatus>,
}

/// One member of a match.
#[derive(Clone, Debug, Serialize)]
pub struct PlayerStatus {
    /// The seat (`P1` … `P4`).
    pub seat: String,
    /// The name chosen.
    pub name: String,
    /// Lives left.
    pub lives: u8,
    /// Said ready.
    pub ready: bool,
    /// Heard from lately.
    pub connected: bool,
    /// Out for good.
    pub gone: bool,
}

impl StatusReport {
    pub(super) fn new(
        telemetry: &Telemetry,
        figures: &Figures,
        matches: Option<Vec<MatchOverview>>,
    ) -> StatusReport {
        let info = telemetry.info();
        let health = telemetry.health();
        StatusReport {
            version: info.version.clone(),
            uptime_secs: telemetry.uptime().as_secs(),
            transport: info.transport.clone(),
            address: telemetry.address().to_owned(),
            healthy: health.is_ok(),
            problems: health.problems,
            links: figures.links,
            matches_by_phase: figures
                .phases
                .iter()
                .map(|(phase, matches)| PhaseCount { phase: phase.as_str(), matches })
                .collect(),
            matches: matches.map(|all| all.iter().map(MatchStatus::from).collect()),
        }
    }
}

impl From<&MatchOverview> for MatchStatus {
    fn from(m: &MatchOverview) -> MatchStatus {
        MatchStatus {
            id: m.id.0,
            room: m.room.clone(),
            phase: m.phase.as_str(),
            size: m.size,
            tick: m.tick,
            players: m
                .members
                .iter()
                .map(|p| PlayerStatus {
                    seat: p.player.to_string(),
                    name: p.name.clone(),
                    lives: p.lives,
                    ready: p.ready,
                    connected: p.connected,
                    gone: p.gone,
                })
                .collect(),
        }
    }
}

/// The status page: the server, then a table of the running matches (and the others below
/// it), refreshed every few seconds. Player names are escaped: they are anyone's input.
#[must_use]
pub fn render_page(report: &StatusReport) -> String {
    let mut page = String::with_capacity(4096);
    let health = if report.healthy {
        "<span class=ok>serving</span>".to_owned()
    } else {
        format!("<span class=bad>{}</span>", escape(&report.problems.join(", ")))
    };
    let _ = write!(
        page,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta http-equiv=refresh content=3><meta name=viewport content=\"width=device-width\">\
         <title>Distributed Pong server</title><style>\
         body{{background:#10131a;color:#e8e8e8;font:15px/1.4 system-ui,sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{padding:.25em .8em;text-align:left}}\
         th{{color:#9aa4b2;font-weight:normal;border-bottom:1px solid #333}}\
         .ok{{color:#6ee7a0}}.bad{{color:#ff8a6e}}.dim{{color:#7a828e}}code{{color:#9ecbff}}\
         </style></head><body><h1>Distributed Pong</h1>\
         <p>{health} · version {} · {} at <code>{}</code> · up {} · {} links · \
         <a href=/status>status.json</a> · <a href=/metrics>metrics</a></p>",
        escape(&report.version),
        escape(&report.transport),
        escape(&report.address),
        uptime(report.uptime_secs),
        report.links,
    );
    let Some(matches) = &report.matches else {
        page.push_str("<p class=bad>The server loop did not answer in time.</p></body></html>");
        return page;
    };
    let running: Vec<&MatchStatus> =
        matches.iter().filter(|m| m.phase != MatchPhase::Lobby.as_str()).collect();
    let lobbies = matches.len() - running.len();
    let _ = write!(
        page,
        "<h2>Matches</h2><p class=dim>{} in play or ending, {lobbies} in the lobby</p>",
        running.len()
    );
    page.push_str(
        "<table><tr><th>match</th><th>room</th><th>phase</th><th>tick</th><th>players</th></tr>",
    );
    for m in running.iter().copied().chain(matches.iter().filter(|m| m.phase == "lobby")) {
        let players: Vec<String> = m
            .players
            .iter()
            .map(|p| {
                let state = if p.gone {
                    " <span class=dim>(out)</span>"
                } else if !p.connected {
                    " <span class=bad>(lost)</span>"
                } else {
                    ""
                };
                format!("{} {} ♥{}{state}", p.seat, escape(&p.name), p.lives)
            })
            .collect();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} <span class=dim>({}/{})</span></td></tr>",
            m.id,
            escape(m.room.as_deref().unwrap_or("—")),
            m.phase,
            m.tick,
            players.join(", "),
            m.players.len(),
            m.size,
        );
    }
    page.push_str("</table></body></html>");
    page
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Text made safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_inject_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;"
        );
    }
}
