//! The browser frontend: Distributed Pong in a web page, served by `pong server` itself.
//!
//! A second frontend on the same domain: the page runs the domain's
//! [`pong_domain::client::ClientCore`] compiled to WebAssembly, over the browser's WebSocket
//! carrying the same binary frames as the native client, and draws
//! [`pong_domain::client::ClientCore::view_with_intent`] on a canvas every animation frame.
//! No game or protocol logic is written again here; the palette, the words of each screen
//! and the controls are the window's (`pong-presentation`).
//!
//! - [`params`]: what a shared link asks for (`?name=&players=&room=&bot=`).
//! - [`game`]: the player without the browser: the core, the roster, the steering (keys, a
//!   finger, the bot) and the link's fortunes, as commands for the page. Tested natively.
//! - [`layout`]: where the arena and the cards go on any screen; arena units to pixels.
//! - [`draw`]: one frame on the canvas, by phase.
//! - `page` (WebAssembly only): the socket, the timer, the animation frame, keys, touch,
//!   buttons, and the result for scripts.
//!
//! Built by `scripts/build-web.sh` into `app/web/dist/`, which the `pong` binary embeds.

pub mod draw;
pub mod game;
pub mod layout;
#[cfg(target_arch = "wasm32")]
mod page;
pub mod params;

/// The page's entry point, run when the module loads.
///
/// # Errors
/// When the page lacks what it is built around (a window, the canvas).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() -> Result<(), wasm_bindgen::JsValue> {
    page::start()
}
