//! The match journal: what an event store keeps of each match, and what is rebuilt from it.
//!
//! A match is its [`MatchConfig`] (with the seed) plus the [`TickInput`] the server applied
//! at every tick: [`MatchState::step`] is deterministic, so those alone give back every
//! state bit for bit. The journal also keeps who sat where (with the session token, so that
//! a restarted server can check the players' signatures), the phase changes and the
//! result. The server reports each record as it happens
//! ([`crate::server::ServerEvent::Match`]).
//!
//! From a match's records, in order:
//! - [`verify`] re-runs the match and checks every recorded hash and the final standings;
//! - [`RecoveredMatch::rebuild`] rebuilds a match that was running when the server stopped,
//!   for [`crate::server::ServerCore::restore`].
//!
//! Both read the records through one [`Replay`], which refuses anything inconsistent with a
//! typed [`JournalError`]: a journal read from a damaged store fails, it never verifies
//! wrongly and never panics.

use serde::{Deserialize, Serialize};

use crate::proto::{Epoch, MatchId, MatchOver, Name, RoomName, SessionId, Token};
use crate::rules::{ConfigError, MatchConfig, PlayerId, Rules};
use crate::sim::{MatchState, TickInput};
use crate::standings::{Placing, note_placings, result_of};

/// One entry of a match's journal.
///
/// This is a stored form: the variants keep their order (new ones go at the end) so that
/// stores written by older builds still read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The match opened: always the first record.
    Created {
        /// How it is played, with its seed.
        config: MatchConfig,
        /// Its room, if named.
        room: Option<RoomName>,
    },
    /// A player took a seat.
    Joined {
        /// The seat.
        player: PlayerId,
        /// The player's name.
        name: Name,
        /// The session.
        session: SessionId,
        /// The session's secret (a restarted server checks signatures with it).
        token: Token,
    },
    /// A player left before the start; the seat is free again.
    Left {
        /// The seat.
        player: PlayerId,
    },
    /// Everyone was ready: the countdown to the first tick began.
    CountdownStarted,
    /// The countdown was cancelled (a member left or was lost).
    CountdownCancelled,
    /// The first tick was simulated.
    Started,
    /// A tick was simulated.
    Tick {
        /// The tick.
        tick: u32,
        /// The inputs the server applied.
        input: TickInput,
        /// [`MatchState::hash`] after it.
        hash: u64,
    },
    /// A member went silent or its link dropped.
    Lost {
        /// The seat.
        player: PlayerId,
    },
    /// A lost member came back.
    Back {
        /// The seat.
        player: PlayerId,
    },
    /// The match paused after `tick`.
    Paused {
        /// The last tick before the pause.
        tick: u32,
    },
    /// The match resumes after a countdown.
    Resuming,
    /// A member forfeits at the next tick.
    Forfeit {
        /// The seat.
        player: PlayerId,
    },
    /// The match ended.
    Over {
        /// The result the server announced.
        result: MatchOver,
    },
    /// The match was removed from the server.
    Closed,
    /// A restarted server rebuilt the match from this journal at `tick`.
    Restored {
        /// The tick it was rebuilt at.
        tick: u32,
        /// The phase count it went on with.
        epoch: u32,
    },
}

/// Why a journal was refused. Each names the record (by its index) that did not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The journal has no records.
    #[error("the journal is empty")]
    Empty,
    /// The first record is not `Created`, or a later one is.
    #[error("record {index}: a journal starts with one `Created` record and has no other")]
    NotCreatedFirst {
        /// The record.
        index: usize,
    },
    /// The recorded configuration is not playable.
    #[error("the recorded configuration is not playable: {0}")]
    BadConfig(ConfigError),
    /// A seat record names a seat the match does not have, or that is (not) taken.
    #[error("record {index}: seat {player} does not fit the match")]
    BadSeat {
        /// The record.
        index: usize,
        /// The seat.
        player: PlayerId,
    },
    /// A tick is not the one after the last.
    #[error("record {index}: tick {found} follows tick {last}")]
    TickGap {
        /// The record.
        index: usize,
        /// The tick before it.
        last: u32,
        /// The tick recorded.
        found: u32,
    },
    /// A tick's forfeits are not the ones recorded before it.
    #[error(
        "record {index}: tick {tick} applies forfeits {found:#06b}, the journal announced {expected:#06b}"
    )]
    ForfeitMismatch {
        /// The record.
        index: usize,
        /// The tick.
        tick: u32,
        /// Forfeits announced by `Forfeit` records.
        expected: u8,
        /// Forfeits in the tick's input.
        found: u8,
    },
    /// Re-running a tick gave another state than the one recorded.
    #[error("tick {tick}: replay hash {replayed:016x} differs from the recorded {recorded:016x}")]
    HashMismatch {
        /// The tick.
        tick: u32,
        /// The hash in the journal.
        recorded: u64,
        /// The hash of the replayed state.
        replayed: u64,
    },
    /// A `Paused` record names another tick than the replayed one.
    #[error("record {index}: paused after tick {recorded}, the replay is at tick {replayed}")]
    PauseMismatch {
        /// The record.
        index: usize,
        /// The tick recorded.
        recorded: u32,
        /// The replay's tick.
        replayed: u32,
    },
    /// A tick was recorded after the match was over.
    #[error("record {index}: a tick after the end of the match")]
    AfterEnd {
        /// The record.
        index: usize,
    },
    /// A second `Over` record.
    #[error("record {index}: a second result")]
    SecondResult {
        /// The record.
        index: usize,
    },
    /// The recorded result is not the one the replay gives.
    #[error("the recorded result differs from the replay: {0}")]
    ResultMismatch(String),
    /// The journal has no result: the match did not finish (or its end was lost).
    #[error("the match has no result (it did not finish, or its end is not in the journal)")]
    NoResult,
    /// The match is over: there is nothing to recover.
    #[error("the match is over; there is nothing to recover")]
    AlreadyOver,
    /// The match was closed without a result (everyone left its lobby).
    #[error("the match was closed")]
    Closed,
}

/// A seat as the journal knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatRecord {
    /// The player's name.
    pub name: Name,
    /// The session.
    pub session: SessionId,
    /// The session's secret.
    pub token: Token,
    /// Gone for good (forfeited); the seat stays for the standings.
    pub gone: bool,
}

/// Where a replayed match stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayPhase {
    /// Seats are filling.
    Lobby,
    /// The countdown to the first tick runs.
    Countdown,
    /// Ticking.
    Running,
    /// Waiting for lost members (or for their Ready after a pause).
    Paused,
    /// The result is in.
    Over,
    /// Closed without a result.
    Closed,
}

/// A match being re-run from its journal, one record at a time.
#[derive(Clone, Debug)]
pub struct Replay {
    id: MatchId,
    rules: Rules,
    room: Option<RoomName>,
    state: MatchState,
    seats: [Option<SeatRecord>; 4],
    placings: [Option<Placing>; 4],
    phase: ReplayPhase,
    epoch: Epoch,
    pending_forfeit: u8,
    last_input: TickInput,
    started: bool,
    result: Option<MatchOver>,
    restarts: u32,
    next: usize,
}

impl Replay {
    /// Starts a replay from the journal's first record, which must be `Created`.
    ///
    /// # Errors
    /// [`JournalError::NotCreatedFirst`] or [`JournalError::BadConfig`].
    pub fn new(id: MatchId, first: &Record) -> Result<Replay, JournalError> {
        let Record::Created { config, room } = first else {
            return Err(JournalError::NotCreatedFirst { index: 0 });
        };
        config.validate().map_err(JournalError::BadConfig)?;
        let rules = Rules::new(*config);
        let state = MatchState::new(&rules);
        Ok(Replay {
            id,
            rules,
            room: room.clone(),
            state,
            seats: [None, None, None, None],
            placings: [None; 4],
            phase: ReplayPhase::Lobby,
            epoch: Epoch::FIRST,
            pending_forfeit: 0,
            last_input: TickInput::IDLE,
            started: false,
            result: None,
            restarts: 0,
            next: 1,
        })
    }

    /// Applies the next record.
    ///
    /// # Errors
    /// A [`JournalError`] naming what in the record does not fit the match so far.
    pub fn apply(&mut self, r: &Record) -> Result<(), JournalError> {
        let index = self.next;
        self.next += 1;
        match r {
            Record::Created { .. } => return Err(JournalError::NotCreatedFirst { index }),
            Record::Joined { player, name, session, token } => {
                let slot = self.seat_slot(index, *player)?;
                if slot.is_some() {
                    return Err(JournalError::BadSeat { index, player: *player });
                }
                *slot = Some(SeatRecord {
                    name: name.clone(),
                    session: *session,
                    token: *token,
                    gone: false,
                });
            }
            Record::Left { player } => {
                let slot = self.seat_slot(index, *player)?;
                if slot.take().is_none() {
                    return Err(JournalError::BadSeat { index, player: *player });
                }
            }
            Record::CountdownStarted => {
                self.phase = ReplayPhase::Countdown;
                self.epoch = self.epoch.next();
            }
            Record::CountdownCancelled => {
                self.phase = ReplayPhase::Lobby;
                self.epoch = self.epoch.next();
            }
            Record::Started => {
                self.started = true;
                self.phase = ReplayPhase::Running;
            }
            Record::Tick { tick, input, hash } => self.tick(index, *tick, input, *hash)?,
            Record::Lost { player } | Record::Back { player } => {
                self.seat_slot(index, *player)?;
            }
            Record::Paused { tick } => {
                if *tick != self.state.tick {
                    return Err(JournalError::PauseMismatch {
                        index,
                        recorded: *tick,
                        replayed: self.state.tick,
                    });
                }
                self.phase = ReplayPhase::Paused;
                self.epoch = self.epoch.next();
            }
            Record::Resuming => {
                self.phase = ReplayPhase::Countdown;
                self.epoch = self.epoch.next();
            }
            Record::Forfeit { player } => {
                let alive = self.state.is_alive(*player);
                let Some(seat) = self.seat_slot(index, *player)?.as_mut() else {
                    return Err(JournalError::BadSeat { index, player: *player });
                };
                seat.gone = true;
                if alive {
                    self.pending_forfeit |= 1 << player.index();
                }
            }
            Record::Over { result } => {
                if self.result.is_some() {
                    return Err(JournalError::SecondResult { index });
                }
                let replayed = self.result_now();
                if *result != replayed {
                    return Err(JournalError::ResultMismatch(describe_difference(
                        result, &replayed,
                    )));
                }
                self.result = Some(result.clone());
                self.phase = ReplayPhase::Over;
            }
            Record::Closed => {
                if self.phase != ReplayPhase::Over {
                    self.phase = ReplayPhase::Closed;
                }
            }
            Record::Restored { tick, epoch } => {
                if *tick != self.state.tick {
                    return Err(JournalError::PauseMismatch {
                        index,
                        recorded: *tick,
                        replayed: self.state.tick,
                    });
                }
                self.epoch = Epoch(*epoch);
                self.restarts += 1;
                if self.started {
                    self.phase = ReplayPhase::Paused;
                } else {
                    self.phase = ReplayPhase::Lobby;
                }
            }
        }
        Ok(())
    }

    fn seat_slot(
        &mut self,
        index: usize,
        player: PlayerId,
    ) -> Result<&mut Option<SeatRecord>, JournalError> {
        if player.get() >= self.rules.players() {
            return Err(JournalError::BadSeat { index, player });
        }
        Ok(&mut self.seats[player.index()])
    }

    fn tick(
        &mut self,
        index: usize,
        tick: u32,
        input: &TickInput,
        hash: u64,
    ) -> Result<(), JournalError> {
        if self.result.is_some() || self.state.is_over() {
            return Err(JournalError::AfterEnd { index });
        }
        let expected = self.state.tick.wrapping_add(1);
        if tick != expected {
            return Err(JournalError::TickGap { index, last: self.state.tick, found: tick });
        }
        if input.forfeit != self.pending_forfeit {
            return Err(JournalError::ForfeitMismatch {
                index,
                tick,
                expected: self.pending_forfeit,
                found: input.forfeit,
            });
        }
        self.pending_forfeit = 0;
        let lives_before = self.state.lives;
        let events = self.state.step(&self.rules, input);
        let replayed = self.state.hash();
        if replayed != hash {
            return Err(JournalError::HashMismatch { tick, recorded: hash, replayed });
        }
        note_placings(&mut self.placings, lives_before, &events, tick);
        self.last_input = *input;
        self.started = true;
        if self.phase != ReplayPhase::Paused {
            self.phase = ReplayPhase::Running;
        }
        Ok(())
    }

    /// The result the replayed state gives now.
    fn result_now(&self) -> MatchOver {
        let seats = self
            .seats
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((PlayerId::ALL[i], &s.as_ref()?.name)));
        result_of(&self.state, &self.placings, seats)
    }

    /// The match.
    pub fn id(&self) -> MatchId {
        self.id
    }

    /// The rules it is played with.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The replayed state.
    pub fn state(&self) -> &MatchState {
        &self.state
    }

    /// Where the match stands.
    pub fn phase(&self) -> ReplayPhase {
        self.phase
    }

    /// The seats.
    pub fn seats(&self) -> &[Option<SeatRecord>; 4] {
        &self.seats
    }

    /// The recorded result, once applied (it matched the replay).
    pub fn result(&self) -> Option<&MatchOver> {
        self.result.as_ref()
    }

    /// Records applied so far (with the first).
    pub fn records(&self) -> usize {
        self.next
    }
}

/// Runs a replay over a whole journal.
///
/// # Errors
/// The first [`JournalError`].
pub fn replay(id: MatchId, records: &[Record]) -> Result<Replay, JournalError> {
    let (first, rest) = records.split_first().ok_or(JournalError::Empty)?;
    let mut replay = Replay::new(id, first)?;
    for r in rest {
        replay.apply(r)?;
    }
    Ok(replay)
}

/// What [`verify`] found: the match ran as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The match's configuration.
    pub config: MatchConfig,
    /// Ticks re-run (each one's hash checked).
    pub ticks: u32,
    /// The result (checked against the replay).
    pub result: MatchOver,
    /// How many times a restarted server took the match over.
    pub restarts: u32,
}

/// Re-runs a finished match from its journal: every tick's hash, every forfeit, the pauses
/// and the final standings must match the replay.
///
/// # Errors
/// The first [`JournalError`]; [`JournalError::NoResult`] if the match did not finish.
pub fn verify(id: MatchId, records: &[Record]) -> Result<Verified, JournalError> {
    let r = replay(id, records)?;
    let result = r.result.clone().ok_or(JournalError::NoResult)?;
    Ok(Verified { config: r.rules.config, ticks: r.state.tick, result, restarts: r.restarts })
}

fn describe_difference(recorded: &MatchOver, replayed: &MatchOver) -> String {
    if recorded.tick != replayed.tick {
        format!("recorded at tick {}, the replay is at tick {}", recorded.tick, replayed.tick)
    } else if recorded.final_hash != replayed.final_hash {
        format!(
            "final hash {:016x} recorded, {:016x} replayed",
            recorded.final_hash.0, replayed.final_hash.0
        )
    } else if recorded.winner != replayed.winner {
        format!("winner {:?} recorded, {:?} replayed", recorded.winner, replayed.winner)
    } else {
        format!("standings {:?} recorded, {:?} replayed", recorded.standings, replayed.standings)
    }
}

/// A match rebuilt from its journal, ready for [`crate::server::ServerCore::restore`].
#[derive(Clone, Debug)]
pub struct RecoveredMatch {
    pub(crate) replay: Replay,
}

impl RecoveredMatch {
    /// Rebuilds a match that was not over when its server stopped: its state at the last
    /// journaled tick (every hash checked on the way), its seats with their tokens, who has
    /// forfeited, and its phase count.
    ///
    /// # Errors
    /// A [`JournalError`] if the journal is inconsistent; [`JournalError::AlreadyOver`] or
    /// [`JournalError::Closed`] if there is nothing to recover.
    pub fn rebuild(id: MatchId, records: &[Record]) -> Result<RecoveredMatch, JournalError> {
        let replay = replay(id, records)?;
        match replay.phase {
            ReplayPhase::Over => Err(JournalError::AlreadyOver),
            ReplayPhase::Closed => Err(JournalError::Closed),
            _ => Ok(RecoveredMatch { replay }),
        }
    }

    /// The match.
    pub fn id(&self) -> MatchId {
        self.replay.id
    }

    /// Its configuration.
    pub fn config(&self) -> &MatchConfig {
        &self.replay.rules.config
    }

    /// The last journaled tick: play goes on from the one after.
    pub fn tick(&self) -> u32 {
        self.replay.state.tick
    }

    /// True if the first tick was played (the match resumes through a pause; otherwise it
    /// is back in its lobby).
    pub fn started(&self) -> bool {
        self.replay.started
    }

    /// The rebuilt state.
    pub fn state(&self) -> &MatchState {
        &self.replay.state
    }

    /// The seats.
    pub fn seats(&self) -> &[Option<SeatRecord>; 4] {
        &self.replay.seats
    }

    pub(crate) fn room(&self) -> Option<&RoomName> {
        self.replay.room.as_ref()
    }

    pub(crate) fn placings(&self) -> &[Option<Placing>; 4] {
        &self.replay.placings
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.replay.epoch
    }

    pub(crate) fn pending_forfeit(&self) -> u8 {
        self.replay.pending_forfeit
    }

    pub(crate) fn last_input(&self) -> TickInput {
        self.replay.last_input
    }

    pub(crate) fn rules(&self) -> &Rules {
        &self.replay.rules
    }
}
