//! The HTTP side of a Distributed Pong server: answers what the application's
//! [`HttpHandler`] serves (metrics, health, status, pages) over HTTP/1.1 with hyper.
//!
//! ```text
//! HttpListener::bind("0.0.0.0:9100", handler)        its own port (`--metrics-listen`)
//! sniff(stream) ──► Sniffed::Http ──► serve_connection(stream, handler)
//!               └─► Sniffed::WebSocket ──► the WebSocket handshake (pong-transport-ws)
//! ```
//!
//! - [`sniff`] reads a request head off a fresh connection and says whether it asks for a
//!   WebSocket upgrade, handing back a [`Prefixed`] stream that replays the bytes read, so
//!   one port serves the game and HTTP alike.
//! - [`serve_connection`] serves one connection: keep-alive, a deadline for each request
//!   head, `HEAD` answered without a body, request bodies ignored (nothing served here takes
//!   any input).
//! - [`HttpListener`] accepts connections on its own address, at most
//!   [`HttpOptions::max_connections`] at once.

mod listener;
mod serve;
mod sniff;

pub use listener::HttpListener;
pub use pong_ports::{HttpHandler, HttpRequest, HttpResponse};
pub use serve::{HttpOptions, HttpService, serve_connection};
pub use sniff::{Prefixed, Sniffed, sniff};
