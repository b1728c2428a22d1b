//! One player of a soak: a bot over a clean, slow or cut-off link, that may be killed
//! mid-match (its link dropped without a word, as a crashed process's) and come back with
//! its session token, or never come back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pong_domain::client::{ClientConfig, ClientCore, ClientEvent};
use pong_domain::proto::{Name, Reject, RoomName, SessionId, Token};
use pong_domain::sim::Intent;
use pong_link_conditioner::{ConditionedConnector, LinkConditions, LinkControl};
use pong_ports::Connector;
use pong_runtime::bot::BotController;
use pong_runtime::client::{ClientError, Controller, ReconnectPolicy, play};
use pong_runtime::report::BotReport;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tokio::sync::watch;

/// The link a seat plays over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinkPlan {
    /// Loopback as it is.
    Clean,
    /// A slow, lossy wide-area link.
    Slow(LinkConditions),
    /// Silent both ways for `duration`, `after` the match starts (the player is declared
    /// lost, the match pauses, the client resumes when the link comes back).
    CutOff {
        /// From the start of play.
        after: Duration,
        /// How long.
        duration: Duration,
    },
}

/// What happens to the player's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Plays to the end.
    Stays,
    /// Killed `after` the match starts; a new client resumes the seat `back_after` later.
    Killed {
        /// From the start of play.
        after: Duration,
        /// Time away.
        back_after: Duration,
    },
    /// Killed `after` the match starts and never back: forfeits at the end of the grace
    /// period.
    Quits {
        /// From the start of play.
        after: Duration,
    },
}

/// One seat's plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeatPlan {
    /// Bot skill, 0–1.
    pub skill: f64,
    /// Varies the bot's mistakes and the link's randomness.
    pub seed: u64,
    /// Its link.
    pub link: LinkPlan,
    /// Its process's fate.
    pub fate: Fate,
}

/// Shares of the seats that get each disturbance, in percent.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// Slow links.
    pub slow: u32,
    /// Link cut-offs.
    pub cut: u32,
    /// Killed and resumed.
    pub killed: u32,
    /// Killed for good.
    pub quits: u32,
}

/// Draws seat plans.
#[derive(Debug)]
pub struct Planner {
    rng: ChaCha8Rng,
    mix: Mix,
    grace: Duration,
}

impl Planner {
    /// Plans from `seed`; a killed player comes back well within `grace`.
    #[must_use]
    pub fn new(seed: u64, mix: Mix, grace: Duration) -> Planner {
        Planner { rng: ChaCha8Rng::seed_from_u64(seed), mix, grace }
    }

    fn percent(&mut self, p: u32) -> bool {
        self.rng.next_u32() % 100 < p
    }

    /// Uniform in `lo..=hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.rng.next_u64() % (hi - lo + 1))
    }

    /// The next seat's plan.
    pub fn seat(&mut self) -> SeatPlan {
        let seed = self.rng.next_u64();
        let skill = 0.3 + f64::from(self.rng.next_u32() % 61) / 100.0;
        let link = if self.percent(self.mix.slow) {
            let latency = self.millis(40, 120);
            let jitter = self.millis(5, 30);
            LinkPlan::Slow(
                LinkConditions::wan(latency, jitter)
                    .with_loss(0.02)
                    .with_duplicate(0.01)
                    .with_reorder(0.02, Duration::from_millis(30))
                    .with_seed(seed),
            )
        } else if self.percent(self.mix.cut) {
            LinkPlan::CutOff {
                after: self.millis(2_000, 40_000),
                duration: self.millis(2_000, 6_000),
            }
        } else {
            LinkPlan::Clean
        };
        let fate = if self.percent(self.mix.quits) {
            Fate::Quits { after: self.millis(2_000, 40_000) }
        } else if self.percent(self.mix.killed) {
            // Back within half the grace period, so a loaded machine still makes it.
            let back = u64::try_from(self.grace.as_millis() / 2).unwrap_or(u64::MAX).max(600);
            Fate::Killed { after: self.millis(2_000, 40_000), back_after: self.millis(500, back) }
        } else {
            Fate::Stays
        };
        SeatPlan { skill, seed, link, fate }
    }
}

/// How a seat ended.
#[derive(Debug)]
pub enum SeatEnd {
    /// It saw the match over.
    Finished(Box<BotReport>),
    /// It quit as planned.
    Quit,
    /// Killed, it came back after its match had ended and was told its session is gone.
    CameBackTooLate,
    /// It failed: why.
    Failed(String),
}

/// What a seat did.
#[derive(Debug)]
pub struct SeatOutcome {
    /// Its plan.
    pub plan: SeatPlan,
    /// How it ended.
    pub end: SeatEnd,
    /// The match it was seated in, if it was.
    pub match_id: Option<u32>,
    /// Seats given back to it by the server.
    pub resumes: u32,
}

/// The bot, and what a soak needs to see of its client: its session (to come back with)
/// and the moment play starts (to time the disturbances from).
struct SoakBot {
    bot: BotController,
    session: Arc<Mutex<Option<(SessionId, Token, u32)>>>,
    started: watch::Sender<bool>,
    resumes: u32,
}

impl Controller for SoakBot {
    fn steer(&mut self, core: &ClientCore) -> Option<Intent> {
        self.bot.steer(core)
    }

    fn on_event(&mut self, core: &ClientCore, event: &ClientEvent) {
        match event {
            ClientEvent::Welcomed { resumed, .. } => {
                if let (Some((s, t)), Some(m)) = (core.session(), core.match_id())
                    && let Ok(mut slot) = self.session.lock()
                {
                    *slot = Some((s, t, m.0));
                }
                if *resumed {
                    self.resumes += 1;
                }
            }
            ClientEvent::Started => {
                self.started.send_replace(true);
            }
            _ => {}
        }
    }
}

/// Plays one seat of `room` to the end of its match, as `plan` says.
pub async fn run_seat(
    plan: SeatPlan,
    base: Arc<dyn Connector>,
    name: Name,
    room: RoomName,
    players: u8,
) -> SeatOutcome {
    let control = LinkControl::new();
    let connector: Arc<dyn Connector> = match plan.link {
        LinkPlan::Clean => base,
        LinkPlan::Slow(conditions) => Arc::new(ConditionedConnector::new(base, conditions)),
        LinkPlan::CutOff { .. } => Arc::new(
            ConditionedConnector::new(base, LinkConditions::perfect())
                .with_control(control.clone()),
        ),
    };
    let session = Arc::new(Mutex::new(None));
    let (started_tx, mut started) = watch::channel(false);
    let mut bot = SoakBot {
        bot: BotController::new(plan.skill, plan.seed),
        session: Arc::clone(&session),
        started: started_tx,
        resumes: 0,
    };
    let mut config = ClientConfig::new(name.clone());
    config.players = Some(players);
    config.room = Some(room);
    let policy = ReconnectPolicy::default();

    if let LinkPlan::CutOff { after, duration } = plan.link {
        let mut started = started.clone();
        let control = control.clone();
        tokio::spawn(async move {
            if started.wait_for(|s| *s).await.is_ok() {
                // Dropping the handle leaves the cut-off running to its end.
                drop(control.schedule_cut(after, duration));
            }
        });
    }
    let kill_after = match plan.fate {
        Fate::Stays => None,
        Fate::Killed { after, .. } | Fate::Quits { after } => Some(after),
    };
    let first = {
        let core = ClientCore::new(config.clone());
        let game = play(core, Arc::clone(&connector), &mut bot, policy, std::future::pending());
        match kill_after {
            None => Some(game.await),
            Some(after) => {
                let kill = async {
                    let _ = started.wait_for(|s| *s).await;
                    tokio::time::sleep(after).await;
                };
                tokio::select! {
                    r = game => Some(r),
                    () = kill => None,
                }
            }
        }
    };
    let seated = || session.lock().ok().and_then(|s| *s);
    let outcome =
        |end, resumes| SeatOutcome { plan, end, match_id: seated().map(|(_, _, m)| m), resumes };
    let result = match (first, plan.fate) {
        (Some(result), _) => result,
        // A seat that stays is never killed: only a quitter gets here without coming back.
        (None, Fate::Quits { .. } | Fate::Stays) => return outcome(SeatEnd::Quit, bot.resumes),
        (None, Fate::Killed { back_after, .. }) => {
            tokio::time::sleep(back_after).await;
            let Some((s, t, _)) = seated() else {
                return outcome(SeatEnd::Failed("killed before it was seated".into()), bot.resumes);
            };
            let mut config = config.clone();
            config.resume = Some((s, t));
            let core = ClientCore::new(config);
            play(core, Arc::clone(&connector), &mut bot, policy, std::future::pending()).await
        }
    };
    let end = match result {
        Ok((end, core)) => match BotReport::from_phase(
            &end.phase,
            core.match_id().map_or(0, |m| m.0),
            core.player().map_or(0, |p| p.get()),
            name.as_str(),
            end.pauses,
            end.desyncs,
        ) {
            Some(report) => {
                SeatEnd::Finished(Box::new(BotReport { resumes: bot.resumes, ..report }))
            }
            None => SeatEnd::Failed(format!("ended without a result: {:?}", end.phase)),
        },
        Err(ClientError::Rejected(Reject::UnknownSession))
            if matches!(plan.fate, Fate::Killed { .. }) =>
        {
            SeatEnd::CameBackTooLate
        }
        Err(e) => SeatEnd::Failed(e.to_string()),
    };
    outcome(end, bot.resumes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_mix_and_the_seed() {
        let mix = Mix { slow: 20, cut: 10, killed: 15, quits: 3 };
        let grace = Duration::from_secs(10);
        let a: Vec<SeatPlan> = {
            let mut p = Planner::new(7, mix, grace);
            (0..2000).map(|_| p.seat()).collect()
        };
        let b: Vec<SeatPlan> = {
            let mut p = Planner::new(7, mix, grace);
            (0..2000).map(|_| p.seat()).collect()
        };
        assert_eq!(a, b, "the same seed plans the same soak");
        let share =
            |f: &dyn Fn(&SeatPlan) -> bool| a.iter().filter(|p| f(p)).count() * 100 / a.len();
        assert!((15..=25).contains(&share(&|p| matches!(p.link, LinkPlan::Slow(_)))));
        assert!((1..=5).contains(&share(&|p| matches!(p.fate, Fate::Quits { .. }))));
        for p in &a {
            assert!((0.3..=0.9).contains(&p.skill));
            if let Fate::Killed { back_after, .. } = p.fate {
                assert!(back_after <= grace / 2, "{back_after:?}");
            }
        }
    }
}
