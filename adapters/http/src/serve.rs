//! One HTTP connection, served with hyper: the application's handler answers each request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use pong_ports::{HttpHandler, HttpRequest, HttpResponse};
use tokio::io::{AsyncRead, AsyncWrite};

/// The application's handler, shared by every connection that serves it.
#[derive(Clone)]
pub struct HttpService(Arc<dyn HttpHandler>);

impl HttpService {
    /// Serves `handler`.
    pub fn new(handler: impl HttpHandler) -> HttpService {
        HttpService(Arc::new(handler))
    }
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpService(..)")
    }
}

/// Limits of the HTTP side.
#[derive(Clone, Copy, Debug)]
pub struct HttpOptions {
    /// Connections served at once by an [`crate::HttpListener`]; more wait in the kernel's
    /// backlog.
    pub max_connections: usize,
    /// Time a client has to send each request head; an idle kept-alive connection is closed
    /// after it too.
    pub header_timeout: Duration,
    /// Longest request head read, in bytes.
    pub max_head: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            max_head: 8 * 1024,
        }
    }
}

/// Serves HTTP/1.1 on `stream` until the client closes it, goes quiet for
/// [`HttpOptions::header_timeout`], or breaks the protocol (hyper answers that with 400 or
/// 431 and closes).
pub async fn serve_connection<S>(stream: S, service: HttpService, options: HttpOptions)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handler = service.0;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(answer(handler.as_ref(), &request).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(options.max_head.max(8192))
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

async fn answer(handler: &dyn HttpHandler, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let head = request.method() == Method::HEAD;
    let header =
        |name| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let asked = HttpRequest {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        accept: header(hyper::header::ACCEPT),
        accept_encoding: header(hyper::header::ACCEPT_ENCODING),
        if_none_match: header(hyper::header::IF_NONE_MATCH),
    };
    let HttpResponse { status, content_type, body, cache_control, content_encoding, etag, vary } =
        handler.handle(asked).await;
    let len = body.len();
    let mut response = Response::new(Full::new(if head { Bytes::new() } else { body }));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Health and metrics are live readings: no cache may answer for the server, unless the
    // handler says what may be kept (the web page's assets).
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control.unwrap_or("no-store")));
    if let Some(encoding) = content_encoding {
        headers.insert(hyper::header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    if let Some(vary) = vary {
        headers.insert(hyper::header::VARY, HeaderValue::from_static(vary));
    }
    // An ETag the handler made is ASCII; one that is not is left out rather than sent broken.
    if let Some(value) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(hyper::header::ETAG, value);
    }
    if head {
        headers.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    response
}
