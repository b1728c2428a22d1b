//! An HTTP listener of its own, for servers whose transport has no HTTP port (RabbitMQ,
//! ZeroMQ) or operators who keep metrics off the players' port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::serve::{HttpOptions, HttpService, serve_connection};

/// Pause after a failed accept (typically out of file descriptors) so the task does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves an [`HttpService`] on its own address until dropped.
#[derive(Debug)]
pub struct HttpListener {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
}

impl HttpListener {
    /// Listens on `addr` (`"0.0.0.0:9100"`, `"127.0.0.1:0"` for any free port) and serves
    /// `service` on every connection. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(
        addr: &str,
        service: HttpService,
        options: HttpOptions,
    ) -> std::io::Result<HttpListener> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
        tokio::spawn(
            accept_loop(listener, service, options, slots, shutdown.clone())
                .instrument(tracing::info_span!("http_accept", addr = %local_addr)),
        );
        tracing::info!(addr = %local_addr, "HTTP endpoints listening");
        Ok(HttpListener { local_addr, shutdown })
    }

    /// The address bound (with the port chosen, for `:0`).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for HttpListener {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    service: HttpService,
    options: HttpOptions,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    loop {
        // A slot first: over the cap, connections wait in the backlog instead of being cut.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let service = service.clone();
        let stop = shutdown.clone();
        tokio::spawn(
            async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = serve_connection(tcp, service, options) => {}
                }
                drop(slot);
            }
            .instrument(tracing::debug_span!("http_conn", %remote)),
        );
    }
    tracing::debug!("HTTP accept task stopped");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use async_trait::async_trait;
    use pong_ports::{HttpHandler, HttpRequest, HttpResponse};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    struct Echo;

    #[async_trait]
    impl HttpHandler for Echo {
        async fn handle(&self, request: HttpRequest) -> HttpResponse {
            let status = if request.path == "/missing" { 404 } else { 200 };
            HttpResponse::text(
                status,
                format!("{} {} {:?}", request.method, request.path, request.query),
            )
        }
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request).await.unwrap();
        let mut reply = String::new();
        tcp.read_to_string(&mut reply).await.unwrap();
        reply
    }

    #[tokio::test]
    async fn requests_reach_the_handler_and_head_gets_no_body() {
        let listener =
            HttpListener::bind("127.0.0.1:0", HttpService::new(Echo), HttpOptions::default())
                .await
                .unwrap();
        let addr = listener.local_addr();
        let get =
            exchange(addr, b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{get}");
        assert!(get.contains("cache-control: no-store"), "{get}");
        assert!(get.ends_with("GET /a Some(\"b=1\")"), "{get}");
        let head =
            exchange(addr, b"HEAD /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(head.contains("content-length: 12"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "a HEAD answer has no body: {head}");
        let missing =
            exchange(addr, b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"), "{missing}");
        let garbage = exchange(addr, b"\x00\x01 nonsense\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{garbage}");
    }
}
