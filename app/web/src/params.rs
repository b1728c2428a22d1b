//! What a shared link asks for: `?name=Ada&players=4&room=friday&bot=0.8&seed=7`. Every
//! parameter is optional; a bad one is an error the page shows, not a guess.

use pong_domain::proto::{Name, RoomName};
use pong_domain::rules::{MAX_PLAYERS, MIN_PLAYERS};

/// What the page was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// The player's name (default "player").
    pub name: Name,
    /// Match size wanted (2–4); `None` takes the server's default.
    pub players: Option<u8>,
    /// The room to join or open.
    pub room: Option<RoomName>,
    /// Play by itself with the domain's bot at this skill (0–1).
    pub bot: Option<f64>,
    /// Varies the bot's mistakes.
    pub seed: u64,
}

/// A parameter the page cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError(pub String);

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Params {
    /// The parameters from decoded `(key, value)` pairs (the browser's `URLSearchParams`);
    /// unknown keys are ignored, so a link may carry more than the page reads.
    ///
    /// # Errors
    /// [`ParamError`] naming the first parameter that is out of range or malformed.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Params, ParamError> {
        let mut params = Params {
            name: Name::new("player").map_err(|e| ParamError(e.to_string()))?,
            players: None,
            room: None,
            bot: None,
            seed: 1,
        };
        for (key, value) in pairs {
            let bad = |why: &str| ParamError(format!("{key}={value}: {why}"));
            match key {
                "name" => params.name = Name::new(value).map_err(|e| bad(&e.to_string()))?,
                "players" => {
                    let n: u8 = value.parse().map_err(|_| bad("not a number"))?;
                    if !(MIN_PLAYERS..=MAX_PLAYERS).contains(&n) {
                        return Err(bad("a match has 2 to 4 players"));
                    }
                    params.players = Some(n);
                }
                "room" => {
                    params.room = Some(RoomName::new(value).map_err(|e| bad(&e.to_string()))?)
                }
                "bot" => {
                    let skill: f64 = value.parse().map_err(|_| bad("not a number"))?;
                    if !(0.0..=1.0).contains(&skill) {
                        return Err(bad("the bot's skill is from 0 to 1"));
                    }
                    params.bot = Some(skill);
                }
                "seed" => params.seed = value.parse().map_err(|_| bad("not a whole number"))?,
                _ => {}
            }
        }
        Ok(params)
    }

    /// The query of a link to the same room for another player: the room and size, not the
    /// name or the bot.
    #[must_use]
    pub fn room_query(&self) -> Option<String> {
        let room = self.room.as_ref()?;
        let mut q = format!("?room={}", encode(room.as_str()));
        if let Some(n) = self.players {
            q.push_str(&format!("&players={n}"));
        }
        Some(q)
    }
}

/// Percent-encodes what is not unreserved in a URL (RFC 3986).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_link_is_read() {
        let p = Params::from_pairs([
            ("name", "Ada"),
            ("players", "4"),
            ("room", "friday"),
            ("bot", "0.8"),
            ("seed", "7"),
            ("utm_source", "chat"),
        ])
        .unwrap();
        assert_eq!(p.name.as_str(), "Ada");
        assert_eq!((p.players, p.bot, p.seed), (Some(4), Some(0.8), 7));
        assert_eq!(p.room.as_ref().map(RoomName::as_str), Some("friday"));
        assert_eq!(p.room_query().as_deref(), Some("?room=friday&players=4"));
    }

    #[test]
    fn no_parameters_is_a_plain_player() {
        let p = Params::from_pairs([]).unwrap();
        assert_eq!((p.name.as_str(), p.players, p.bot), ("player", None, None));
        assert_eq!(p.room_query(), None);
    }

    #[test]
    fn bad_parameters_are_named() {
        for (k, v, why) in [
            ("players", "5", "2 to 4"),
            ("players", "two", "not a number"),
            ("bot", "1.5", "from 0 to 1"),
            ("seed", "-1", "whole number"),
            ("name", "", ""),
        ] {
            let e = Params::from_pairs([(k, v)]).unwrap_err();
            assert!(e.0.starts_with(&format!("{k}={v}: ")) && e.0.contains(why), "{e}");
        }
    }
}
