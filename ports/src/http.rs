//! The HTTP port: what a server answers over HTTP beside its game traffic — metrics, health,
//! status, and pages — written once by the application and served by any adapter that
//! speaks HTTP (the WebSocket adapter on its own port, the standalone listener of
//! `pong server --metrics-listen`).
//!
//! The adapter owns the protocol (parsing, keep-alive, limits, errors on malformed requests);
//! the application sees only the parts of a request it routes on and returns a whole
//! response. Requests carry no body: everything served this way is read-only.

use async_trait::async_trait;
use bytes::Bytes;

/// The parts of a request the application routes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `HEAD`, … as sent.
    pub method: String,
    /// The path, without the query (`/metrics`).
    pub path: String,
    /// The query string without the `?`, if any.
    pub query: Option<String>,
    /// The `Accept` header, if any (for content negotiation).
    pub accept: Option<String>,
}

/// A whole response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code (200, 404, 503, …).
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body (the adapter sends none for `HEAD`, with the length of this one).
    pub body: Bytes,
}

impl HttpResponse {
    /// A plain-text response.
    #[must_use]
    pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(body.into()),
        }
    }
}

/// Answers HTTP requests. Implemented by the application, called by adapters, one call per
/// request, possibly many at once.
#[async_trait]
pub trait HttpHandler: Send + Sync + 'static {
    /// The response to `request`.
    async fn handle(&self, request: HttpRequest) -> HttpResponse;
}
