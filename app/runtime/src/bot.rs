//! The computer player as a [`Controller`]: it learns its seat from the server and decides
//! once per predicted tick on the predicted state, as a person would react to what they see.

use pong_domain::bot::Pilot;
use pong_domain::client::ClientCore;
use pong_domain::sim::Intent;

use crate::client::Controller;

/// A bot steering one client: the domain's [`Pilot`] as a [`Controller`].
#[derive(Debug)]
pub struct BotController(Pilot);

impl BotController {
    /// A bot of `skill` (0.0 to 1.0) whose mistakes vary with `seed`.
    pub fn new(skill: f64, seed: u64) -> Self {
        BotController(Pilot::new(skill, seed))
    }
}

impl Controller for BotController {
    fn steer(&mut self, core: &ClientCore) -> Option<Intent> {
        self.0.steer(core)
    }
}

/// How `run_bots` plays.
#[derive(Clone, Debug)]
pub struct BotOptions {
    /// How many bots.
    pub count: usize,
    /// Skill, 0.0 to 1.0.
    pub skill: f64,
    /// Match size wanted (`None`: the server's default).
    pub players: Option<u8>,
    /// A named room to play in.
    pub room: Option<pong_domain::proto::RoomName>,
    /// Names are this prefix plus a number.
    pub name_prefix: String,
    /// Varies the bots' mistakes.
    pub seed: u64,
    /// Reconnection policy.
    pub policy: crate::client::ReconnectPolicy,
    /// A file holding the first bot's session: resumed from at start if it exists, written
    /// when the server seats the bot. Lets a killed bot come back into its match.
    pub session_file: Option<std::path::PathBuf>,
}

impl Default for BotOptions {
    fn default() -> Self {
        BotOptions {
            count: 1,
            skill: 0.7,
            players: None,
            room: None,
            name_prefix: "bot".into(),
            seed: 1,
            policy: crate::client::ReconnectPolicy::default(),
            session_file: None,
        }
    }
}

/// Reads a session file written by a bot: `SESSION TOKENHEX`.
pub fn read_session_file(
    path: &std::path::Path,
) -> Option<(pong_domain::proto::SessionId, pong_domain::proto::Token)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut parts = text.split_whitespace();
    let session = parts.next()?.parse().ok()?;
    let token = pong_domain::proto::Token::from_hex(parts.next()?)?;
    Some((pong_domain::proto::SessionId(session), token))
}

fn write_session_file(path: &std::path::Path, core: &ClientCore) {
    let Some((session, token)) = core.session() else { return };
    let text = format!("{} {}\n", session.0, token.to_hex());
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the session file");
    }
}

/// A bot that also keeps its session in a file, and counts the seats given back to it.
struct FileBot {
    inner: BotController,
    file: Option<std::path::PathBuf>,
    resumes: u32,
}

impl Controller for FileBot {
    fn steer(&mut self, core: &ClientCore) -> Option<Intent> {
        self.inner.steer(core)
    }

    fn on_event(&mut self, core: &ClientCore, event: &pong_domain::client::ClientEvent) {
        if let pong_domain::client::ClientEvent::Welcomed { resumed, .. } = event {
            if let Some(path) = &self.file {
                write_session_file(path, core);
            }
            if *resumed {
                self.resumes += 1;
            }
        }
    }
}

/// Runs `opts.count` bots against a server, each in its own task, until their matches end.
/// Returns each bot's report (in bot order) or why it stopped.
pub async fn run_bots(
    connector: std::sync::Arc<dyn pong_ports::Connector>,
    opts: &BotOptions,
) -> Vec<Result<crate::report::BotReport, crate::client::ClientError>> {
    use pong_domain::client::{ClientConfig, ClientCore};
    use pong_domain::proto::Name;

    let mut tasks = Vec::new();
    for i in 0..opts.count {
        // A prefix that makes an invalid name falls back to the plain numbered name.
        let Ok(name) = Name::new(&format!("{}{}", opts.name_prefix, i + 1))
            .or_else(|_| Name::new(&format!("bot{}", i + 1)))
        else {
            continue;
        };
        let mut config = ClientConfig::new(name.clone());
        config.players = opts.players;
        config.room = opts.room.clone();
        let file = if i == 0 { opts.session_file.clone() } else { None };
        if let Some(path) = &file {
            config.resume = read_session_file(path);
        }
        let connector = connector.clone();
        let policy = opts.policy;
        let seed = opts.seed.wrapping_mul(1000).wrapping_add(i as u64);
        let skill = opts.skill;
        tasks.push(tokio::spawn(async move {
            let mut controller =
                FileBot { inner: BotController::new(skill, seed), file, resumes: 0 };
            let core = ClientCore::new(config);
            let (outcome, core) = crate::client::play(
                core,
                connector,
                &mut controller,
                policy,
                std::future::pending(),
            )
            .await?;
            let report = crate::report::BotReport::from_phase(
                &outcome.phase,
                core.match_id().map_or(0, |m| m.0),
                core.player().map_or(0, |p| p.get()),
                name.as_str(),
                outcome.pauses,
                outcome.desyncs,
            )
            .map(|r| crate::report::BotReport { resumes: controller.resumes, ..r });
            report.ok_or(crate::client::ClientError::Closed(
                pong_domain::proto::CloseReason::Shutdown,
            ))
        }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(match t.await {
            Ok(r) => r,
            Err(_) => {
                Err(crate::client::ClientError::Closed(pong_domain::proto::CloseReason::Shutdown))
            }
        });
    }
    reports
}
