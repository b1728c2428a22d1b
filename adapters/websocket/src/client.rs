//! The client end: [`WsConnector`] dials a `ws://` or `wss://` URL and returns one
//! [`WsClient`] per connection, through the [`Connector`] and [`ClientTransport`] ports.
//!
//! Each connection runs a reader task (frames into a bounded receive queue that `recv` drains)
//! and a writer task (a bounded send queue that `send` fills with `try_send`). The server
//! pings; the client answers (tungstenite does it while reading) and treats a server that
//! stays silent longer than [`WsOptions::keepalive_timeout`] as gone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pong_ports::{ClientTransport, Connector, Frame, MatchId, TransportError};
use pong_transport_support::check_frame_len;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::Instrument;

use crate::WsOptions;
use crate::connection::{self, ConnectionState, Deliver, Ending, ReadLimits};

/// Opens connections to one WebSocket server; cheap to clone, and reusable to reconnect.
#[derive(Clone)]
pub struct WsConnector {
    url: String,
    uri: Uri,
    /// The host as the socket and TLS want it (IPv6 without brackets).
    host: String,
    port: u16,
    options: WsOptions,
    ws_config: WebSocketConfig,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for WsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnector")
            .field("url", &self.url)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl WsConnector {
    /// A connector to `url`: `ws://host:port[/path]`, or `wss://…` with the `tls` feature
    /// (the port defaults to 80 and 443). Nothing is dialled until
    /// [`Connector::connect`].
    ///
    /// # Errors
    /// [`TransportError::Connect`] if the URL is not a `ws://`/`wss://` URL with a host,
    /// if it is `wss://` without the `tls` feature, or if the TLS settings cannot make a
    /// client configuration.
    pub fn new(url: &str, options: WsOptions) -> Result<Self, TransportError> {
        let fail = |reason: String| TransportError::Connect { addr: url.to_owned(), reason };
        let uri: Uri = url.parse().map_err(|e| fail(format!("not a URL: {e}")))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            Some(other) => {
                return Err(fail(format!("unsupported scheme {other}:// (use ws:// or wss://)")));
            }
            None => return Err(fail("no scheme (use ws:// or wss://)".to_owned())),
        };
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| fail("no host in the URL".to_owned()))?;
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let options = options.sanitized();
        #[cfg(feature = "tls")]
        let tls = if secure {
            Some(options.tls.connector().map_err(|e| fail(format!("TLS setup failed: {e}")))?)
        } else {
            None
        };
        #[cfg(not(feature = "tls"))]
        if secure {
            return Err(fail("wss:// needs the `tls` feature of pong-transport-ws".to_owned()));
        }
        Ok(Self {
            url: url.to_owned(),
            uri,
            host,
            port,
            ws_config: connection::ws_config(options.max_frame_len),
            options,
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// The URL this connector dials.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a connection and returns the concrete client.
    ///
    /// # Errors
    /// [`TransportError::Connect`] saying which step failed: the TCP connection (refused,
    /// unreachable), the TLS handshake (untrusted certificate), the WebSocket upgrade, or
    /// the whole not finishing within [`WsOptions::handshake_timeout`].
    pub async fn connect_client(&self) -> Result<WsClient, TransportError> {
        let deadline = Instant::now() + self.options.handshake_timeout;
        let tcp = self
            .step(deadline, TcpStream::connect((self.host.as_str(), self.port)))
            .await?
            .map_err(|e| self.fail(describe_io(&e)))?;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(url = %self.url, %error, "cannot set TCP_NODELAY");
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| {
                self.fail(format!("{} is not a valid TLS server name: {e}", self.host))
            })?;
            let stream = self
                .step(deadline, tls.connect(name, tcp))
                .await?
                .map_err(|e| self.fail(format!("TLS handshake failed: {e}")))?;
            return self.upgrade(stream, deadline).await;
        }
        self.upgrade(tcp, deadline).await
    }

    async fn upgrade<S>(&self, stream: S, deadline: Instant) -> Result<WsClient, TransportError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handshake = tokio_tungstenite::client_async_with_config(
            self.uri.clone(),
            stream,
            Some(self.ws_config),
        );
        let (ws, _response) = self.step(deadline, handshake).await?.map_err(|e| match e {
            WsError::Http(response) => self.fail(format!(
                "the server refused the WebSocket upgrade (HTTP {})",
                response.status()
            )),
            other => self.fail(format!("WebSocket handshake failed: {other}")),
        })?;
        tracing::debug!(url = %self.url, "connected");
        Ok(WsClient::start(ws, &self.options, self.url.clone()))
    }

    /// Runs one connection step under the overall handshake deadline.
    async fn step<F: Future>(
        &self,
        deadline: Instant,
        step: F,
    ) -> Result<F::Output, TransportError> {
        tokio::time::timeout_at(deadline, step).await.map_err(|_| {
            self.fail(format!(
                "no complete handshake within {:?} (handshake timeout)",
                self.options.handshake_timeout
            ))
        })
    }

    fn fail(&self, reason: String) -> TransportError {
        TransportError::Connect { addr: self.url.clone(), reason }
    }
}

/// An I/O error as a short reason ("connection refused" rather than the OS wording).
fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::TimedOut => "connection timed out".to_owned(),
        ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        _ => error.to_string(),
    }
}

#[async_trait]
impl Connector for WsConnector {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        Ok(Box::new(self.connect_client().await?))
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// The client end of one WebSocket connection. Dropping it closes the connection like
/// [`ClientTransport::close`], without waiting.
#[derive(Debug)]
pub struct WsClient {
    /// `None` once closed.
    outgoing: Option<mpsc::Sender<Frame>>,
    incoming: mpsc::Receiver<Frame>,
    connection: Arc<ConnectionState>,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
    max_frame_len: usize,
    close_timeout: Duration,
    url: String,
}

impl WsClient {
    fn start<S>(ws: WebSocketStream<S>, options: &WsOptions, url: String) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sink, stream) = ws.split();
        let (outgoing, outgoing_rx) = mpsc::channel(options.queue_capacity);
        let (incoming_tx, incoming) = mpsc::channel(options.queue_capacity);
        let connection = Arc::new(ConnectionState::default());
        let span = tracing::debug_span!("ws_client", url = %url);
        let writer = tokio::spawn(
            connection::run_writer(
                sink,
                outgoing_rx,
                Arc::clone(&connection),
                None,
                options.close_timeout,
            )
            .instrument(span.clone()),
        );
        let limits = ReadLimits {
            max_frame_len: options.max_frame_len,
            keepalive_timeout: options.keepalive_timeout,
            close_timeout: options.close_timeout,
        };
        let reader = tokio::spawn(
            read_to_client(stream, Arc::clone(&connection), limits, incoming_tx).instrument(span),
        );
        Self {
            outgoing: Some(outgoing),
            incoming,
            connection,
            writer: Some(writer),
            reader: Some(reader),
            max_frame_len: options.max_frame_len,
            close_timeout: options.close_timeout,
            url,
        }
    }

    /// The URL this connection was opened to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        if let Some(queue) = self.outgoing.take() {
            // The ending first: the writer reads it when the queue closes.
            self.connection.end(Ending::polite(CloseCode::Normal, "closed by the client"));
            drop(queue);
        }
        // The tasks finish on their own, within the close timeout.
    }
}

#[async_trait]
impl ClientTransport for WsClient {
    async fn recv(&mut self) -> Result<Frame, TransportError> {
        if self.outgoing.is_none() {
            return Err(TransportError::Closed);
        }
        self.incoming.recv().await.ok_or(TransportError::Closed)
    }

    fn send(&self, frame: Frame) -> Result<(), TransportError> {
        let Some(queue) = &self.outgoing else { return Err(TransportError::Closed) };
        check_frame_len(&frame, self.max_frame_len)?;
        if self.connection.is_ending() {
            return Err(TransportError::Closed);
        }
        match queue.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(url = %self.url, "send queue full: the connection cannot keep up; closing it");
                self.connection.end(Ending::abrupt(CloseCode::Policy, "send queue overflow"));
                Err(TransportError::Closed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TransportError::Closed),
        }
    }

    async fn subscribe(&mut self, _group: MatchId) -> Result<(), TransportError> {
        // Point-to-point: the server keeps the groups (join_group), nothing to confirm.
        Ok(())
    }

    async fn close(&mut self) {
        let Some(queue) = self.outgoing.take() else { return };
        self.connection.end(Ending::polite(CloseCode::Normal, "closed by the client"));
        drop(queue);
        // The writer sends what is queued, then the close frame.
        if let Some(mut writer) = self.writer.take()
            && tokio::time::timeout(self.close_timeout, &mut writer).await.is_err()
        {
            writer.abort();
        }
        // The reader waits for the server's close frame; nobody wants frames any more.
        self.incoming.close();
        if let Some(mut reader) = self.reader.take()
            && tokio::time::timeout(self.close_timeout, &mut reader).await.is_err()
        {
            reader.abort();
        }
        tracing::debug!(url = %self.url, "closed");
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

/// The client's reader task.
async fn read_to_client<S>(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    connection: Arc<ConnectionState>,
    limits: ReadLimits,
    incoming: mpsc::Sender<Frame>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut deliver = ToClient { incoming: Some(incoming) };
    connection::read_frames(&mut stream, &connection, limits, &mut deliver).await;
    connection.stop();
}

/// Hands frames to the client's receive queue; dropping the queue's sender at the end
/// makes `recv` return [`TransportError::Closed`] after the frames already received.
struct ToClient {
    incoming: Option<mpsc::Sender<Frame>>,
}

impl Deliver for ToClient {
    async fn frame(&mut self, frame: Frame) {
        if let Some(incoming) = &self.incoming
            && incoming.send(frame).await.is_err()
        {
            // The client closed its receive queue: it is closing and wants nothing more.
            self.incoming = None;
        }
    }

    async fn ended(&mut self, reason: String) {
        tracing::debug!(%reason, "connection ended");
        self.incoming = None;
    }
}
