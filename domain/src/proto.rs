//! The wire messages: what clients and the server say to each other, as serde types.
//!
//! The flow of one match is in `docs/protocol.md`. In short: a client sends [`OpenMsg::Join`]
//! and gets a [`Welcome`] with a secret [`Token`]; every later message it sends is a
//! [`SessionMsg`] signed with that token (see [`crate::codec`]), so the server never has to
//! trust a transport's idea of who sent a frame. The server answers with [`ServerMsg`]s.
//!
//! Every type that can arrive from the network validates itself while it is decoded
//! (names, seats, intents, configurations), so a decoded message is a well-formed one.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rules::{MatchConfig, PlayerId, Side};
use crate::sim::{Intent, MatchState, OutReason, TickInput};

/// The protocol version carried in the first byte of every frame.
pub const PROTOCOL_VERSION: u8 = 3;

/// A session: one player's membership of one match, named in every signed message.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(transparent)]
pub struct SessionId(pub u32);

/// A match hosted by a server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(transparent)]
pub struct MatchId(pub u32);

impl std::fmt::Display for MatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// The secret a server gives a player in [`Welcome`]: the key of every message the player
/// signs, and what lets it come back after losing its connection. Never printed.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub [u8; 16]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    /// Hex form, for handing a token to a restarted client (`--token`).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Option<Token> {
        let s = s.trim();
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Token(out))
    }
}

/// Why a name or room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty after trimming.
    #[error("the name is empty")]
    Empty,
    /// Too long.
    #[error("the name is longer than {0} characters")]
    TooLong(usize),
    /// Holds a character that is not allowed.
    #[error("the name contains {0:?}, which is not allowed")]
    BadChar(char),
}

/// What a validated text newtype (`Name`, `RoomName`) has besides its `new`: its text, and
/// the conversions its `#[serde(try_from = "String", into = "String")]` goes through, so
/// that a decoded value is checked by `new` like any other.
macro_rules! checked_text {
    ($type:ident) => {
        impl $type {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $type {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $type::new(&s)
            }
        }

        impl From<$type> for String {
            fn from(n: $type) -> String {
                n.0
            }
        }
    };
}

/// A player's display name: 1 to [`Name::MAX_CHARS`] characters, no control characters,
/// trimmed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 20;

    /// Validates a name.
    ///
    /// # Errors
    /// [`NameError`] if it is empty, too long or holds a control character.
    pub fn new(raw: &str) -> Result<Name, NameError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(NameError::TooLong(Self::MAX_CHARS));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(NameError::BadChar(c));
        }
        Ok(Name(s.to_owned()))
    }
}

checked_text!(Name);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named room that friends join to play together: 1 to [`RoomName::MAX_CHARS`] of
/// `A-Z a-z 0-9 - _ .`
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    /// Longest room name, in characters.
    pub const MAX_CHARS: usize = 32;

    /// Validates a room name.
    ///
    /// # Errors
    /// [`NameError`] if it is empty, too long or holds another character.
    pub fn new(raw: &str) -> Result<RoomName, NameError> {
        if raw.is_empty() {
            return Err(NameError::Empty);
        }
        if raw.len() > Self::MAX_CHARS {
            return Err(NameError::TooLong(Self::MAX_CHARS));
        }
        if let Some(c) = raw.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c))) {
            return Err(NameError::BadChar(c));
        }
        Ok(RoomName(raw.to_owned()))
    }
}

checked_text!(RoomName);

/// Asks for a seat.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Join {
    /// How the player wants to be shown.
    pub name: Name,
    /// Match size wanted (2 to 4); `None` takes the server's default.
    pub players: Option<u8>,
    /// A named room to join (created on first join), or `None` for any open match.
    pub room: Option<RoomName>,
}

/// Messages a client sends before it has a session (not signed).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum OpenMsg {
    /// Asks for a seat; answered by [`ServerMsg::Welcome`] or [`ServerMsg::Rejected`].
    Join(Join),
    /// Asks to take a session back after a lost connection; answered by
    /// [`ServerMsg::Challenge`], which the client answers with a signed [`SessionMsg::Prove`].
    Resume {
        /// The session to take back.
        session: SessionId,
    },
}

/// Most intents one [`InputRun`] carries (four per byte).
pub const MAX_INPUT_RUN: usize = 64;

/// A player's intents for consecutive ticks starting at `first_tick`. Each input message
/// repeats every intent the server has not yet acknowledged, so a late or lost message
/// never loses an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputRun {
    first_tick: u32,
    len: u8,
    packed: [u8; MAX_INPUT_RUN / 4],
}

impl InputRun {
    /// A run of `intents` (at most [`MAX_INPUT_RUN`]; any beyond are dropped) from
    /// `first_tick`.
    pub fn new(first_tick: u32, intents: impl IntoIterator<Item = Intent>) -> InputRun {
        let mut run = InputRun { first_tick, len: 0, packed: [0xff; MAX_INPUT_RUN / 4] };
        for (i, it) in intents.into_iter().take(MAX_INPUT_RUN).enumerate() {
            let (byte, shift) = (i / 4, 2 * (i % 4));
            run.packed[byte] = (run.packed[byte] & !(0b11 << shift)) | (it.bits() << shift);
            run.len += 1;
        }
        run
    }

    /// The tick of the first intent.
    pub fn first_tick(&self) -> u32 {
        self.first_tick
    }

    /// The tick of the last intent.
    pub fn last_tick(&self) -> u32 {
        self.first_tick.saturating_add(u32::from(self.len).saturating_sub(1))
    }

    /// Number of intents.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True if the run holds no intent.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `(tick, intent)` pairs in tick order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, Intent)> + '_ {
        (0..self.len()).map(move |i| {
            let bits = (self.packed[i / 4] >> (2 * (i % 4))) & 0b11;
            (self.first_tick.wrapping_add(i as u32), Intent::from_bits(bits).unwrap_or_default())
        })
    }

    fn used_bytes(&self) -> &[u8] {
        &self.packed[..self.len().div_ceil(4)]
    }
}

// Wire form: (first_tick, bytes) with four two-bit intents per byte; the unused value 0b11
// pads the last byte, so the length needs no byte of its own.
impl Serialize for InputRun {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.first_tick)?;
        t.serialize_element(&Bytes(self.used_bytes()))?;
        t.end()
    }
}

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de> Deserialize<'de> for InputRun {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RunVisitor;
        impl<'de> serde::de::Visitor<'de> for RunVisitor {
            type Value = InputRun;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an input run")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<InputRun, A::Error> {
                use serde::de::Error;
                let first_tick: u32 =
                    seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let packed: PackedBytes =
                    seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let mut run = InputRun { first_tick, len: 0, packed: packed.bytes };
                let mut ended = false;
                for i in 0..packed.len * 4 {
                    let bits = (packed.bytes[i / 4] >> (2 * (i % 4))) & 0b11;
                    match (bits, ended) {
                        (0b11, _) => ended = true,
                        (_, false) => run.len += 1,
                        (_, true) => return Err(A::Error::custom("intent after padding")),
                    }
                }
                if run.len == 0 || packed.len != run.used_bytes().len() {
                    return Err(A::Error::custom("empty or over-padded input run"));
                }
                Ok(run)
            }
        }
        d.deserialize_tuple(2, RunVisitor)
    }
}

/// Up to 16 bytes, copied out of the frame.
struct PackedBytes {
    bytes: [u8; MAX_INPUT_RUN / 4],
    len: usize,
}

impl<'de> Deserialize<'de> for PackedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PackedBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("1 to 16 bytes of packed intents")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<PackedBytes, E> {
                if v.is_empty() || v.len() > MAX_INPUT_RUN / 4 {
                    return Err(E::invalid_length(v.len(), &self));
                }
                let mut bytes = [0xff; MAX_INPUT_RUN / 4];
                bytes[..v.len()].copy_from_slice(v);
                Ok(PackedBytes { bytes, len: v.len() })
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Messages a client sends inside its session, signed with its token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SessionMsg {
    /// "My transport has confirmed my subscriptions: I will receive everything you send."
    /// The match starts only when every member has said it.
    Ready,
    /// Paddle intents for a run of ticks; also the heartbeat while playing.
    Input(InputRun),
    /// A clock probe; also the heartbeat while not playing.
    Ping {
        /// Echoed back to match the answer.
        id: u32,
        /// The client's clock when sent, in microseconds (echoed back).
        client_time: u64,
    },
    /// "My copy of the match is missing ticks from `from_tick` on (or disagrees with yours):
    /// send them again", answered with those [`ServerMsg::Tick`]s while the server still
    /// holds them, or else with a [`ServerMsg::Keyframe`].
    Resync {
        /// The first tick missing.
        from_tick: u32,
    },
    /// The answer to a [`ServerMsg::Challenge`]: proves the sender holds the token.
    Prove {
        /// The nonce of the challenge.
        nonce: u64,
    },
    /// The player leaves for good (before the start: frees the seat; after: forfeits).
    Leave,
}

/// The header of a signed client message.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signed {
    /// Whose session.
    pub session: SessionId,
    /// Strictly increasing per session, so a captured message cannot be replayed.
    pub seq: u32,
}

/// The server's acknowledgement of each seat's inputs in a [`TickMsg`]: the last tick for
/// which it holds that seat's input, as an offset from the message's tick, saturated to
/// ±127; [`Acks::NONE`] if it holds none.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Acks(pub [i8; 4]);

impl Acks {
    /// The offset that means "no input held".
    pub const NONE: i8 = i8::MIN;

    /// Builds the acks of tick `tick` from each seat's last acknowledged tick.
    pub fn relative_to(tick: u32, last: [Option<u32>; 4]) -> Acks {
        Acks(last.map(|l| match l {
            None => Self::NONE,
            Some(l) => (i64::from(l) - i64::from(tick)).clamp(-127, 127) as i8,
        }))
    }

    /// The last acknowledged tick of `player`, given the message's tick.
    pub fn get(&self, tick: u32, player: PlayerId) -> Option<u32> {
        match self.0[player.index()] {
            Self::NONE => None,
            d => u32::try_from(i64::from(tick) + i64::from(d)).ok(),
        }
    }
}

/// A state hash on the wire: always eight bytes (a varint would take ten for a random value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateHash(pub u64);

impl Serialize for StateHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.to_le_bytes().serialize(s)
    }
}

impl<'de> Deserialize<'de> for StateHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StateHash(u64::from_le_bytes(<[u8; 8]>::deserialize(d)?)))
    }
}

/// The server's word on one tick: the inputs it applied, which every member replays with the
/// same step function, and the hash of the state that resulted, which every member checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickMsg {
    /// The tick simulated.
    pub tick: u32,
    /// The inputs applied at that tick.
    pub input: TickInput,
    /// Each seat's input acknowledgement.
    pub acks: Acks,
    /// [`MatchState::hash`] after the tick.
    pub hash: StateHash,
}

impl Serialize for TickMsg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.tick, self.input.packed_intents(), self.input.forfeit, self.acks, self.hash)
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TickMsg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (tick, packed, forfeit, acks, hash) = <(u32, u8, u8, Acks, StateHash)>::deserialize(d)?;
        let intents = TickInput::unpack_intents(packed)
            .ok_or_else(|| serde::de::Error::custom("invalid intent"))?;
        Ok(TickMsg { tick, input: TickInput { intents, forfeit }, acks, hash })
    }
}

/// The whole state of a running match, for a member that joins late, comes back or fell
/// out of step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyframe {
    /// The state after tick `state.tick`.
    pub state: MatchState,
    /// The inputs applied at that tick (how the other paddles were moving).
    pub input: TickInput,
    /// Each seat's input acknowledgement, relative to `state.tick`.
    pub acks: Acks,
}

/// The server's answer to a [`OpenMsg::Join`] or a proven resume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The session to name in signed messages.
    pub session: SessionId,
    /// The session's secret.
    pub token: Token,
    /// The match joined.
    pub match_id: MatchId,
    /// The player's seat.
    pub player: PlayerId,
    /// The side the player defends.
    pub side: Side,
    /// Where the player's paddle starts (its low edge along its side).
    pub paddle: i32,
    /// How the match is played.
    pub config: MatchConfig,
    /// True when this welcomes a player back into a match it had lost its connection to.
    pub resumed: bool,
}

/// One seat as the lobby shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The seat.
    pub player: PlayerId,
    /// The player's name.
    pub name: Name,
    /// Has said [`SessionMsg::Ready`].
    pub ready: bool,
    /// Heard from recently.
    pub connected: bool,
}

/// Counts a match's phase changes (lobby, countdown, running, pause). Messages about the
/// phase carry it, so a client can drop one that the network delivered after a newer one.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
)]
#[serde(transparent)]
pub struct Epoch(pub u32);

impl Epoch {
    /// A new match's count: its lobby, before any phase change.
    pub const FIRST: Epoch = Epoch(0);

    /// The count after one more phase change.
    pub const fn next(self) -> Epoch {
        Epoch(self.0.wrapping_add(1))
    }
}

/// Who is in a match that has not started yet.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Lobby {
    /// The match.
    pub match_id: MatchId,
    /// The match's phase count.
    pub epoch: Epoch,
    /// Its room, if it is a named one.
    pub room: Option<RoomName>,
    /// Seats in the match (2 to 4).
    pub seats: u8,
    /// The seated players, in seat order.
    pub members: Vec<Member>,
}

impl Lobby {
    /// How many more players the match waits for.
    pub fn missing(&self) -> usize {
        usize::from(self.seats).saturating_sub(self.members.len())
    }
}

/// A member the match is waiting for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    /// The seat.
    pub player: PlayerId,
    /// Server time (µs) after which the player is out if it has not come back.
    pub deadline: u64,
}

/// The match is paused until every lost member is back or out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Paused {
    /// The match's phase count.
    pub epoch: Epoch,
    /// The last tick simulated before the pause.
    pub tick: u32,
    /// Who the match waits for.
    pub lost: Vec<Lost>,
}

/// A player's result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The seat.
    pub player: PlayerId,
    /// The player's name.
    pub name: Name,
    /// Lives left at the end (or when the player forfeited).
    pub lives: u8,
    /// 1 for the winner; players out at the same tick share a rank.
    pub rank: u8,
    /// The tick the player went out, if it did.
    pub out_tick: Option<u32>,
    /// Why it went out, if it did.
    pub reason: Option<OutReason>,
}

/// The final result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MatchOver {
    /// The last tick.
    pub tick: u32,
    /// The winner; `None` for a draw.
    pub winner: Option<PlayerId>,
    /// Every seat, in seat order.
    pub standings: Vec<Standing>,
    /// [`MatchState::hash`] of the final state.
    pub final_hash: StateHash,
}

/// Why the server refused a request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// A match has 2 to 4 players.
    BadPlayerCount,
    /// The named room is full or already playing.
    RoomFull,
    /// The server hosts as many matches as it may.
    ServerFull,
    /// No such session, or it has ended.
    UnknownSession,
    /// The proof did not match the challenge or the token.
    BadProof,
    /// Too many requests; slow down.
    RateLimited,
    /// The server is shutting down: it lets the matches in play finish and starts no new
    /// one. Another server (or this one, restarted) will take the player.
    ShuttingDown,
    /// Too many links are open from this address (`pong server --max-links-per-address`).
    TooManyLinks,
    /// Too many matches were opened from this address in the last minute
    /// (`pong server --matches-per-minute-per-address`); joining an open one still works.
    TooManyMatches,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reject::BadPlayerCount => "a match has 2 to 4 players",
            Reject::RoomFull => "that room is full or already playing",
            Reject::ServerFull => "the server is full",
            Reject::UnknownSession => "no such session (the match may have ended)",
            Reject::BadProof => "the session token did not match",
            Reject::RateLimited => "too many requests",
            Reject::ShuttingDown => "the server is shutting down; try again in a moment",
            Reject::TooManyLinks => "too many connections from your address",
            Reject::TooManyMatches => {
                "too many new matches from your address; try again in a minute"
            }
        })
    }
}

/// Why the server is closing a peer's link.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// It kept sending frames that do not decode.
    Malformed,
    /// It sent far more than a player can.
    Flooding,
    /// The session was taken over by a newer connection (a resume).
    Replaced,
    /// The server is shutting down.
    Shutdown,
    /// The lobby did not fill and start in time (`pong server --lobby-timeout-secs`).
    LobbyExpired,
    /// The link held no seat for too long (`pong server --join-timeout-secs`).
    Idle,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CloseReason::Malformed => "too many malformed frames",
            CloseReason::Flooding => "too many messages",
            CloseReason::Replaced => "the session was resumed on another connection",
            CloseReason::Shutdown => "the server is shutting down",
            CloseReason::LobbyExpired => "the lobby did not fill in time",
            CloseReason::Idle => "the connection took no seat in time",
        })
    }
}

/// Everything the server sends.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ServerMsg {
    /// You have a seat (or have it back).
    Welcome(Welcome),
    /// Prove you hold the token of `session` by signing `nonce` in a [`SessionMsg::Prove`].
    Challenge {
        /// The session being resumed.
        session: SessionId,
        /// Sign this.
        nonce: u64,
        /// The least sequence number the server still accepts for this session: the `Prove`
        /// and every frame after it continue from here (a client restarted from a session
        /// file learns where its sequence stands; a resume never reopens old numbers).
        next_seq: u32,
    },
    /// Your request was refused.
    Rejected(Reject),
    /// The answer to a [`SessionMsg::Ping`].
    Pong {
        /// The ping's id.
        id: u32,
        /// The ping's `client_time`.
        client_time: u64,
        /// The server's clock when it answered, in microseconds.
        server_time: u64,
    },
    /// The lobby of your match (sent on every change and as a heartbeat).
    Lobby(Lobby),
    /// The match starts, or resumes: tick `tick` is simulated at server time `server_time`
    /// (µs), and one tick per `1/tick_hz` seconds after it.
    StartAt {
        /// The match's phase count.
        epoch: Epoch,
        /// The first tick to simulate.
        tick: u32,
        /// When, on the server's clock.
        server_time: u64,
    },
    /// One simulated tick.
    Tick(TickMsg),
    /// The whole state, to catch up from.
    Keyframe(Keyframe),
    /// The match waits for lost members.
    Paused(Paused),
    /// The match is over.
    MatchOver(MatchOver),
    /// The server is closing your link.
    Closed(CloseReason),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(Name::new("  Ada  ").unwrap().as_str(), "Ada");
        assert_eq!(Name::new("   "), Err(NameError::Empty));
        assert_eq!(Name::new(&"x".repeat(21)), Err(NameError::TooLong(20)));
        assert_eq!(Name::new("a\u{7}b"), Err(NameError::BadChar('\u{7}')));
        assert!(Name::new("Zoë 🏓").is_ok());
        assert!(RoomName::new("friday-night_1.0").is_ok());
        assert_eq!(RoomName::new("a b"), Err(NameError::BadChar(' ')));
    }

    #[test]
    fn tokens_round_trip_through_hex() {
        let t = Token([0xab; 16]);
        assert_eq!(Token::from_hex(&t.to_hex()), Some(t));
        assert_eq!(Token::from_hex("zz"), None);
        assert_eq!(format!("{t:?}"), "Token(…)");
    }

    #[test]
    fn input_runs_keep_their_intents() {
        let intents = [Intent::Plus, Intent::Minus, Intent::Stop, Intent::Plus, Intent::Minus];
        let run = InputRun::new(100, intents);
        assert_eq!(run.len(), 5);
        assert_eq!(run.last_tick(), 104);
        let got: Vec<_> = run.iter().collect();
        assert_eq!(got[4], (104, Intent::Minus));
        assert_eq!(run.used_bytes().len(), 2);
    }

    #[test]
    fn acks_are_relative_and_saturate() {
        let acks = Acks::relative_to(1000, [Some(1003), Some(990), None, Some(5000)]);
        assert_eq!(acks.get(1000, PlayerId::ALL[0]), Some(1003));
        assert_eq!(acks.get(1000, PlayerId::ALL[1]), Some(990));
        assert_eq!(acks.get(1000, PlayerId::ALL[2]), None);
        assert_eq!(acks.get(1000, PlayerId::ALL[3]), Some(1127));
    }
}
