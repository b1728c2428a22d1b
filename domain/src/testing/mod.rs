//! Test support, shared by this crate's tests and the tests of other crates: [`SimNet`], a
//! whole session (a server, its clients and a network between them) on a virtual clock, and
//! small helpers that build and read the frames a test sends a [`ServerCore`] by hand.
//!
//! Only with the `testing` feature, which tests turn on through their dev-dependency
//! (`pong-domain = { …, features = ["testing"] }`). Production code must not enable it:
//! these helpers panic on anything unexpected, as a test should, and nothing here is kept
//! stable for other uses.
//!
//! [`ServerCore`]: crate::server::ServerCore

mod frames;
mod simnet;

pub use frames::{drain, join_frame, resume, room_join_frame, signed, take_records, welcome_of};
pub use simnet::{Latency, SimClient, SimNet};

use crate::client::ClientConfig;
use crate::proto::Name;
use crate::server::ServerConfig;

/// One millisecond, in the µs every core counts time in.
pub const MS: u64 = 1_000;
/// One second, in µs.
pub const SECOND: u64 = 1_000_000;

/// A client that asks for a match of `players`.
///
/// # Panics
/// If `name` is not a valid player name.
pub fn player(name: &str, players: u8) -> ClientConfig {
    let mut c = ClientConfig::new(Name::new(name).expect("a valid player name"));
    c.players = Some(players);
    c
}

/// A server whose matches are short and fully journaled: `players` seats, 2 lives, every
/// tick recorded.
pub fn short_matches(players: u8) -> ServerConfig {
    ServerConfig {
        default_players: players,
        lives: 2,
        record_ticks: true,
        ..ServerConfig::default()
    }
}
