//! What a soak checks at its end: every finished match's players agree with each other and
//! with the server, the journal re-runs every match to the same result, and the server's
//! memory and cost per match-tick at the end are within a tolerance of the start.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::seat::{SeatEnd, SeatOutcome};
use super::server::Sample;

/// The seats of one match the soak started.
#[derive(Debug)]
pub struct MatchOutcome {
    /// The room its players met in.
    pub room: String,
    /// Its size.
    pub players: u8,
    /// Each seat.
    pub seats: Vec<SeatOutcome>,
}

/// Tallies of the matches and seats of a soak.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Matches whose players saw the end and agreed.
    pub matches_agreed: usize,
    /// Seats that saw their match end.
    pub seats_finished: usize,
    /// Seats killed and resumed.
    pub killed_and_resumed: usize,
    /// Killed seats that came back after their match ended.
    pub came_back_too_late: usize,
    /// Seats that quit for good.
    pub quit: usize,
    /// Seats on slow links.
    pub slow: usize,
    /// Seats whose link was cut off for seconds.
    pub cut_off: usize,
    /// Pauses the players saw (each player counts its own).
    pub pauses_seen: u64,
    /// Seats given back by the server.
    pub resumes: u64,
    /// Journaled matches `pong replay --verify` re-ran bit for bit.
    pub journal_verified: usize,
}

/// Checks that the players of each match agree; returns the tally and every problem found.
#[must_use]
pub fn agreement(matches: &[MatchOutcome]) -> (Tally, Vec<String>, BTreeMap<u32, String>) {
    use super::seat::{Fate, LinkPlan};
    let mut tally = Tally::default();
    let mut problems = Vec::new();
    // The agreed final hash of each finished match, to hold the journal to.
    let mut hashes = BTreeMap::new();
    for m in matches {
        let mut reports = Vec::new();
        for seat in &m.seats {
            tally.resumes += u64::from(seat.resumes);
            match seat.plan.link {
                LinkPlan::Slow(_) => tally.slow += 1,
                LinkPlan::CutOff { .. } => tally.cut_off += 1,
                LinkPlan::Clean => {}
            }
            match &seat.end {
                SeatEnd::Finished(r) => {
                    tally.seats_finished += 1;
                    tally.pauses_seen += u64::from(r.pauses);
                    if matches!(seat.plan.fate, Fate::Killed { .. }) {
                        tally.killed_and_resumed += 1;
                    }
                    reports.push(r);
                }
                SeatEnd::Quit => tally.quit += 1,
                SeatEnd::CameBackTooLate => tally.came_back_too_late += 1,
                SeatEnd::Failed(why) => problems
                    .push(format!("room {} ({:?}): a seat failed: {why}", m.room, seat.plan)),
            }
        }
        let Some(first) = reports.first() else {
            if m.seats.iter().any(|s| !matches!(s.end, SeatEnd::Quit)) {
                problems.push(format!("room {}: nobody saw the match end", m.room));
            }
            continue;
        };
        let mut agreed = true;
        for r in &reports {
            let what =
                format!("room {} match {} {} (P{})", m.room, r.match_id, r.name, r.player_id + 1);
            if r.match_id != first.match_id {
                problems.push(format!("{what}: in another match than {}", first.match_id));
                agreed = false;
            }
            if r.final_hash != r.server_hash {
                problems.push(format!(
                    "{what}: final hash {} but the server's {}",
                    r.final_hash, r.server_hash
                ));
                agreed = false;
            }
            if r.final_hash != first.final_hash || r.standings != first.standings {
                problems.push(format!("{what}: its result differs from {}'s", first.name));
                agreed = false;
            }
            if r.desyncs != 0 {
                problems.push(format!("{what}: {} desyncs", r.desyncs));
                agreed = false;
            }
        }
        if usize::from(m.players) != first.standings.len() {
            problems.push(format!(
                "room {}: {} standings for {} players",
                m.room,
                first.standings.len(),
                m.players
            ));
            agreed = false;
        }
        if agreed {
            tally.matches_agreed += 1;
            hashes.insert(first.match_id, first.final_hash.clone());
        }
    }
    (tally, problems, hashes)
}

/// Checks the journal's re-runs (`pong replay --verify --json` lines) against the players:
/// every line verified, every match the players finished there with the players' hash.
/// Returns how many verified and the problems.
#[must_use]
pub fn journal(lines: &[Value], agreed: &BTreeMap<u32, String>) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut verified = BTreeMap::new();
    for line in lines {
        let id = line["match_id"].as_u64().unwrap_or(u64::MAX);
        if line["verified"].as_bool() == Some(true) {
            verified.insert(id, line["final_hash"].as_str().unwrap_or_default().to_owned());
        } else {
            problems.push(format!("journal: match {id} does not verify: {}", line["error"]));
        }
    }
    for (id, hash) in agreed {
        match verified.get(&u64::from(*id)) {
            None => {
                problems.push(format!("journal: match {id}, finished by its players, is not there"))
            }
            Some(h) if h != hash => {
                problems.push(format!("journal: match {id} re-runs to {h}, its players saw {hash}"))
            }
            Some(_) => {}
        }
    }
    (verified.len(), problems)
}

/// The server over one stretch of the soak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Window {
    /// From, in seconds since the start.
    pub from: f64,
    /// To.
    pub to: f64,
    /// Mean resident memory, MiB.
    pub rss_mib: f64,
    /// The server loop's busy time per match-tick, µs.
    pub busy_us_per_match_tick: f64,
    /// The process's CPU time per match-tick, µs (the loop, the transport, the journal).
    pub cpu_us_per_match_tick: f64,
    /// Mean matches running.
    pub running: f64,
    /// Mean client links.
    pub links: f64,
    /// Mean load average of the machine (the soak's own clients included).
    pub load: f64,
    /// Pauses the server counted in the window (each brings resends and a countdown: a
    /// window with more of them costs more per match-tick).
    pub pauses: f64,
    /// Grid ticks the server skipped for falling behind in the window.
    pub overruns: f64,
    /// Mean time of one journal commit in the window, ms (the writer runs beside the loop:
    /// a slower journal takes CPU from it).
    pub commit_ms: f64,
}

/// The samples from `from` to `to` seconds summed up; `None` if fewer than two fall there
/// or no match ticked.
#[must_use]
pub fn window(samples: &[Sample], from: f64, to: f64) -> Option<Window> {
    let inside: Vec<&Sample> = samples.iter().filter(|s| s.at >= from && s.at <= to).collect();
    let (first, last) = (inside.first()?, inside.last()?);
    let ticks = last.ticks - first.ticks;
    if inside.len() < 2 || ticks <= 0.0 {
        return None;
    }
    let n = inside.len() as f64;
    let mean = |f: fn(&Sample) -> f64| inside.iter().map(|s| f(s)).sum::<f64>() / n;
    Some(Window {
        from: first.at,
        to: last.at,
        rss_mib: mean(|s| s.rss as f64) / (1024.0 * 1024.0),
        busy_us_per_match_tick: (last.busy - first.busy) / ticks * 1e6,
        cpu_us_per_match_tick: (last.cpu - first.cpu) / ticks * 1e6,
        running: mean(|s| s.running),
        links: mean(|s| s.links),
        load: mean(|s| s.load),
        pauses: last.pauses - first.pauses,
        overruns: last.overruns - first.overruns,
        commit_ms: if last.commits > first.commits {
            (last.commit - first.commit) / (last.commits - first.commits) * 1e3
        } else {
            0.0
        },
    })
}

/// The run cut into `n` equal windows, for the trend: a leak or a slowdown grows window
/// after window, a busy stretch of play stands out in one.
#[must_use]
pub fn series(samples: &[Sample], seconds: f64, n: usize) -> Vec<Window> {
    (0..n)
        .filter_map(|i| {
            let (from, to) = (seconds * i as f64 / n as f64, seconds * (i + 1) as f64 / n as f64);
            window(samples, from, to)
        })
        .collect()
}

/// Growth from `start` to `end` in percent.
#[must_use]
pub fn growth(start: f64, end: f64) -> f64 {
    if start == 0.0 { 0.0 } else { (end - start) / start * 100.0 }
}

/// The start and end windows compared: a problem for each figure that grew past
/// `tolerance` percent.
#[must_use]
pub fn stability(start: &Window, end: &Window, tolerance: f64) -> Vec<String> {
    let mut problems = Vec::new();
    let checks = [
        ("resident memory", start.rss_mib, end.rss_mib, "MiB"),
        (
            "loop busy time per match-tick",
            start.busy_us_per_match_tick,
            end.busy_us_per_match_tick,
            "µs",
        ),
    ];
    for (what, a, b, unit) in checks {
        let g = growth(a, b);
        if g > tolerance {
            problems.push(format!(
                "{what} grew {g:.1} % (from {a:.2} {unit} to {b:.2} {unit}; tolerance {tolerance} %)"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::seat::{Fate, LinkPlan, SeatPlan};
    use pong_runtime::report::{BotReport, StandingReport};
    use serde_json::json;

    fn plan() -> SeatPlan {
        SeatPlan { skill: 0.5, seed: 1, link: LinkPlan::Clean, fate: Fate::Stays }
    }

    fn report(player: u8, hash: &str) -> SeatEnd {
        let standing = |p: u8| StandingReport {
            player_id: p,
            name: format!("s{p}"),
            lives: if p == 0 { 1 } else { 0 },
            rank: p + 1,
            out_tick: (p != 0).then_some(900),
            reason: (p != 0).then_some("no_lives"),
        };
        SeatEnd::Finished(Box::new(BotReport {
            match_id: 3,
            player_id: player,
            name: format!("s{player}"),
            standings: vec![standing(0), standing(1)],
            winner: Some(0),
            final_hash: hash.into(),
            server_hash: "00000000000000aa".into(),
            ticks: 900,
            pauses: 1,
            desyncs: 0,
            resumes: 0,
        }))
    }

    fn seat(end: SeatEnd) -> SeatOutcome {
        SeatOutcome { plan: plan(), end, match_id: Some(3), resumes: 0 }
    }

    #[test]
    fn agreeing_players_and_journal_pass() {
        let m = MatchOutcome {
            room: "r".into(),
            players: 2,
            seats: vec![seat(report(0, "00000000000000aa")), seat(report(1, "00000000000000aa"))],
        };
        let (tally, problems, hashes) = agreement(&[m]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(tally.matches_agreed, 1);
        assert_eq!(tally.pauses_seen, 2);
        let lines = [json!({"match_id": 3, "verified": true, "final_hash": "00000000000000aa"})];
        assert_eq!(journal(&lines, &hashes), (1, vec![]));
    }

    #[test]
    fn a_disagreement_a_failure_and_a_bad_journal_are_each_reported() {
        let m = MatchOutcome {
            room: "r".into(),
            players: 2,
            seats: vec![seat(report(0, "00000000000000aa")), seat(report(1, "00000000000000bb"))],
        };
        let (tally, problems, _) = agreement(&[m]);
        assert_eq!(tally.matches_agreed, 0);
        assert_eq!(problems.len(), 2, "{problems:?}"); // the server's hash and the other's
        let m = MatchOutcome {
            room: "q".into(),
            players: 2,
            seats: vec![seat(SeatEnd::Failed("refused".into())), seat(SeatEnd::Quit)],
        };
        let (_, problems, _) = agreement(&[m]);
        assert!(problems.iter().any(|p| p.contains("refused")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("nobody saw")), "{problems:?}");
        let agreed = BTreeMap::from([(3, "00000000000000aa".to_owned()), (4, "1".to_owned())]);
        let lines = [
            json!({"match_id": 3, "verified": true, "final_hash": "00000000000000ab"}),
            json!({"match_id": 5, "verified": false, "error": "tick 7 hash"}),
        ];
        let (verified, problems) = journal(&lines, &agreed);
        assert_eq!(verified, 1);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn windows_and_growth() {
        let s = |at: f64, rss_mib: u64, busy: f64, ticks: f64| Sample {
            at,
            rss: rss_mib * 1024 * 1024,
            busy,
            ticks,
            ..Sample::default()
        };
        let samples = [
            s(0.0, 10, 0.0, 0.0),
            s(10.0, 12, 0.001, 1000.0),
            s(90.0, 12, 0.009, 9000.0),
            s(100.0, 14, 0.0105, 10000.0),
        ];
        let start = window(&samples, 0.0, 10.0).unwrap();
        assert_eq!(start.rss_mib, 11.0);
        assert!((start.busy_us_per_match_tick - 1.0).abs() < 1e-9);
        let end = window(&samples, 90.0, 100.0).unwrap();
        assert!((end.busy_us_per_match_tick - 1.5).abs() < 1e-9);
        assert!(window(&samples, 20.0, 30.0).is_none());
        let problems = stability(&start, &end, 5.0);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(stability(&start, &end, 60.0).is_empty());
    }
}
