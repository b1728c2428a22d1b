//! The tunables of both ends ([`WsOptions`]) and their defaults, in one place so the docs,
//! the server and the client agree on every number.

use std::time::Duration;

use pong_http::HttpService;

use crate::tls::TlsOptions;

/// Limits and timings of a [`WsServer`](crate::WsServer) or a
/// [`WsConnector`](crate::WsConnector). One type serves both ends; each reads the fields
/// that concern it (the server ignores client-only settings and the other way round).
///
/// Build it with struct update syntax or the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use pong_transport_ws::WsOptions;
///
/// let options = WsOptions { queue_capacity: 256, ..WsOptions::default() }
///     .with_ping_interval(Duration::from_secs(2));
/// assert_eq!(options.queue_capacity, 256);
/// ```
#[derive(Debug, Clone)]
pub struct WsOptions {
    /// Longest frame (WebSocket message payload) in either direction, in bytes. `send` and
    /// `publish` refuse longer frames; a peer that sends one is disconnected (close code
    /// 1009). Default [`pong_domain::codec::MAX_FRAME_LEN`].
    pub max_frame_len: usize,
    /// Frames each connection may have queued for sending (at the server and at the client)
    /// before the connection is disconnected as too slow. Also the number of
    /// received frames a client buffers for its `recv`. Default
    /// [`WsOptions::DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
    /// Server only: events (frames, connects, disconnects) buffered for `recv`; when it is
    /// full, connection readers stop reading their sockets until the server catches up.
    /// Default [`WsOptions::DEFAULT_INCOMING_CAPACITY`].
    pub incoming_capacity: usize,
    /// Server only: connections served at once, counting those still in their handshake.
    /// Connections beyond it are closed as soon as they are accepted. Default
    /// [`WsOptions::DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// Longest time from TCP accept (server) or from the start of `connect` (client) to a
    /// completed TLS and WebSocket handshake. Default [`WsOptions::DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
    /// Server only: how often each connection is sent a WebSocket ping. Default
    /// [`WsOptions::DEFAULT_PING_INTERVAL`].
    pub ping_interval: Duration,
    /// Both ends: a connection on which nothing at all (frame, ping, pong) arrives for this long
    /// is closed as dead. Keep it well above the server's `ping_interval`. Default
    /// [`WsOptions::DEFAULT_KEEPALIVE_TIMEOUT`].
    pub keepalive_timeout: Duration,
    /// Longest time a closing connection may take to send what it still has queued, send its
    /// close frame and hear the other end's; after that the socket is dropped. Default
    /// [`WsOptions::DEFAULT_CLOSE_TIMEOUT`].
    pub close_timeout: Duration,
    /// TLS settings: the server's certificate (which makes it serve `wss://`) and the
    /// certificates a client trusts. Empty by default; filled with
    /// `WsOptions::with_tls_pem` and `WsOptions::with_trusted_ca_pem` (feature `tls`).
    pub tls: TlsOptions,
    /// Server only: what answers a plain HTTP request (anything but a WebSocket upgrade) on
    /// the server's port — the metrics, health and status endpoints of `pong server`. Without
    /// one such a request is answered `426 Upgrade Required`.
    pub http: Option<HttpService>,
}

impl WsOptions {
    /// Default of [`WsOptions::queue_capacity`], in frames.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
    /// Default of [`WsOptions::incoming_capacity`], in events.
    pub const DEFAULT_INCOMING_CAPACITY: usize = 4096;
    /// Default of [`WsOptions::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// Default of [`WsOptions::handshake_timeout`]: 5 s.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default of [`WsOptions::ping_interval`]: 5 s.
    pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);
    /// Default of [`WsOptions::keepalive_timeout`]: 15 s (three missed pings).
    pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(15);
    /// Default of [`WsOptions::close_timeout`]: 2 s.
    pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

    /// Sets [`WsOptions::max_frame_len`].
    #[must_use]
    pub fn with_max_frame_len(mut self, max_frame_len: usize) -> Self {
        self.max_frame_len = max_frame_len;
        self
    }

    /// Sets [`WsOptions::queue_capacity`].
    #[must_use]
    pub fn with_queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity;
        self
    }

    /// Sets [`WsOptions::max_connections`].
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Sets [`WsOptions::handshake_timeout`].
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`WsOptions::ping_interval`].
    #[must_use]
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// Sets [`WsOptions::keepalive_timeout`].
    #[must_use]
    pub fn with_keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.keepalive_timeout = timeout;
        self
    }

    /// Sets [`WsOptions::close_timeout`].
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`WsOptions::http`].
    #[must_use]
    pub fn with_http(mut self, service: HttpService) -> Self {
        self.http = Some(service);
        self
    }

    /// The options with every count raised to at least 1 and every duration to at least
    /// 1 ms, so no setting can make a channel, a semaphore or a timer misbehave.
    pub(crate) fn sanitized(&self) -> Self {
        const MIN: Duration = Duration::from_millis(1);
        Self {
            max_frame_len: self.max_frame_len,
            queue_capacity: self.queue_capacity.max(1),
            incoming_capacity: self.incoming_capacity.max(1),
            max_connections: self.max_connections.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            handshake_timeout: self.handshake_timeout.max(MIN),
            ping_interval: self.ping_interval.max(MIN),
            keepalive_timeout: self.keepalive_timeout.max(MIN),
            close_timeout: self.close_timeout.max(MIN),
            tls: self.tls.clone(),
            http: self.http.clone(),
        }
    }
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            max_frame_len: pong_domain::codec::MAX_FRAME_LEN,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            incoming_capacity: Self::DEFAULT_INCOMING_CAPACITY,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            ping_interval: Self::DEFAULT_PING_INTERVAL,
            keepalive_timeout: Self::DEFAULT_KEEPALIVE_TIMEOUT,
            close_timeout: Self::DEFAULT_CLOSE_TIMEOUT,
            tls: TlsOptions::default(),
            http: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let options = WsOptions::default();
        assert_eq!(options.max_frame_len, pong_domain::codec::MAX_FRAME_LEN);
        assert_eq!(options.queue_capacity, 1024);
        assert_eq!(options.incoming_capacity, 4096);
        assert_eq!(options.max_connections, 10_000);
        assert_eq!(options.handshake_timeout, Duration::from_secs(5));
        assert_eq!(options.ping_interval, Duration::from_secs(5));
        assert_eq!(options.keepalive_timeout, Duration::from_secs(15));
        assert_eq!(options.close_timeout, Duration::from_secs(2));
        assert!(!options.tls.serves_tls());
    }

    #[test]
    fn zeros_cannot_break_channels_or_timers() {
        let zero = WsOptions {
            queue_capacity: 0,
            incoming_capacity: 0,
            max_connections: 0,
            handshake_timeout: Duration::ZERO,
            ping_interval: Duration::ZERO,
            keepalive_timeout: Duration::ZERO,
            close_timeout: Duration::ZERO,
            ..WsOptions::default()
        }
        .sanitized();
        assert_eq!((zero.queue_capacity, zero.incoming_capacity, zero.max_connections), (1, 1, 1));
        assert_eq!(zero.ping_interval, Duration::from_millis(1));
        assert_eq!(zero.close_timeout, Duration::from_millis(1));
    }
}
