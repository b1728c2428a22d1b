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
    /// The `Accept-Encoding` header, if any (which compressed forms the client reads).
    pub accept_encoding: Option<String>,
    /// The `If-None-Match` header, if any (the client's cached copy, to answer 304).
    pub if_none_match: Option<String>,
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
    /// The `Cache-Control`; `None` sends `no-store` (live readings must not be cached).
    pub cache_control: Option<&'static str>,
    /// The `Content-Encoding` of `body` (`gzip`), if it is compressed.
    pub content_encoding: Option<&'static str>,
    /// The `ETag`, quoted, if the body has one.
    pub etag: Option<String>,
    /// The `Vary`, when the body depends on a request header (`Accept-Encoding`).
    pub vary: Option<&'static str>,
}

impl Default for HttpResponse {
    /// An empty `200 OK` of plain text, not to be cached.
    fn default() -> Self {
        HttpResponse {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::new(),
            cache_control: None,
            content_encoding: None,
            etag: None,
            vary: None,
        }
    }
}

impl HttpResponse {
    /// A plain-text response.
    #[must_use]
    pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse { status, body: Bytes::from(body.into()), ..HttpResponse::default() }
    }
}

/// Answers HTTP requests. Implemented by the application, called by adapters, one call per
/// request, possibly many at once.
#[async_trait]
pub trait HttpHandler: Send + Sync + 'static {
    /// The response to `request`.
    async fn handle(&self, request: HttpRequest) -> HttpResponse;
}
