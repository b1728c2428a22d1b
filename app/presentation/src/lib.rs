//! What every frontend shows, whatever draws it.
//!
//! The Bevy window (`app/client`) and the browser page (`app/web`) are two frontends on the
//! same [`pong_domain::client::ClientCore`]. The protocol and the game are the core's; this
//! crate holds the rest they share, so they look and read as one game: the colours and type
//! sizes ([`palette`]), who sits on which seat ([`roster`]), the words of each screen, with
//! the colour each is shown in ([`words`]), and which keys steer ([`controls`]). Each frontend owns only its drawing, its
//! input and its link.
//!
//! Pure and dependency-free beyond the domain: it builds for the browser's wasm target as
//! for the desktop.

pub mod controls;
pub mod palette;
pub mod roster;
pub mod words;

pub use palette::Rgba;
pub use roster::Roster;
