//! Tunables shared by both ends of the RabbitMQ transport, and the broker names they derive.
//!
//! A server and its clients must agree on [`AmqpOptions::server_name`] (it names the queues
//! and the exchange) and should agree on [`AmqpOptions::max_frame_len`]; every other field
//! is local to the process that sets it.

use std::time::Duration;

use pong_ports::TransportError;

/// The URL both ends use when none is given: the broker's default guest account on this
/// machine, default virtual host.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The server name used when none is given.
pub const DEFAULT_SERVER_NAME: &str = "pong";

/// Tunables of an [`AmqpServer`](crate::AmqpServer) or an [`AmqpConnector`](crate::AmqpConnector).
///
/// Defaults are chosen for a game: small frames at tens of hertz per connection, latency before
/// durability. `docs/transports/rabbitmq.md` explains each choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpOptions {
    /// Names this server's broker objects: `pong.<server_name>.in` (inbound queue),
    /// `pong.<server_name>.dead` (dead letters of client queues) and
    /// `pong.<server_name>.matches` (fan-out exchange). Several servers can share a broker
    /// under different names. ASCII letters, digits, `-`, `_` and `.` only, 1 to 200 bytes.
    pub server_name: String,
    /// Longest frame `send`/`publish` accept and the receiving side delivers.
    pub max_frame_len: usize,
    /// Put the publishing channel in confirm mode: the broker acknowledges every frame, and
    /// negative acknowledgements are logged and counted. Sends never wait for confirms
    /// either way; see the measured trade-off in the crate docs.
    pub confirms: bool,
    /// AMQP heartbeat asked for, in whole seconds (the broker may lower it; 0 would disable
    /// it, which this adapter refuses). A broker notices a vanished peer after about two
    /// heartbeats of silence, which is what lets a dead client's queue be deleted.
    pub heartbeat: Duration,
    /// Longest wait for the TCP connection and AMQP handshake, and for each declaration or
    /// binding confirmation (`subscribe`).
    pub op_timeout: Duration,
    /// Deliveries the broker may push ahead of acknowledgement on each consumer (`basic.qos`).
    pub prefetch: u16,
    /// Frames received from the broker and acknowledged but not yet taken by `recv`. Past
    /// this the consumer stops acknowledging, so the broker stops delivering and keeps the
    /// rest in the queue (where it is bounded).
    pub recv_buffer: usize,
    /// Frames `send`/`publish` may queue for the publishing task. This is a shock absorber
    /// for bursts, shared by all peers; the per-peer bound lives at the broker
    /// ([`AmqpOptions::client_queue_max_len`]). When it is full, sends fail (the frame is
    /// dropped and counted) instead of waiting or growing.
    pub send_buffer: usize,
    /// Most frames a client's queue holds (`x-max-length`, overflow `drop-head`). A queue at
    /// this bound belongs to a client that is not keeping up; the dropped frames are
    /// dead-lettered to the server, which disconnects that client (port rule 7).
    pub client_queue_max_len: u32,
    /// Optional per-frame lifetime in a client's queue (`x-message-ttl`). An expired frame
    /// is dead-lettered like an overflow and gets the client disconnected. `None` (the
    /// default) relies on the length bound alone.
    pub client_queue_ttl: Option<Duration>,
    /// Most frames the server's inbound queue holds (`x-max-length`, overflow `drop-head`).
    pub server_queue_max_len: u32,
    /// How long the server's queues outlive their server (`x-expires`): long enough to ride
    /// out a reconnect without losing what clients sent meanwhile, short enough that a
    /// server that is gone for good leaves nothing behind.
    pub server_queue_expires: Duration,
    /// How often the server checks, with a mandatory probe, that the queue of each peer it
    /// has not sent to lately still exists; a probe the broker returns means the peer is gone.
    pub probe_interval: Duration,
    /// First delay before the server reconnects to a lost broker; it doubles on each failure…
    pub reconnect_min: Duration,
    /// …up to this cap.
    pub reconnect_max: Duration,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        Self {
            server_name: DEFAULT_SERVER_NAME.to_owned(),
            max_frame_len: pong_domain::codec::MAX_FRAME_LEN,
            confirms: false,
            heartbeat: Duration::from_secs(10),
            op_timeout: Duration::from_secs(10),
            prefetch: 256,
            recv_buffer: 1024,
            send_buffer: 65_536,
            client_queue_max_len: 4096,
            client_queue_ttl: None,
            server_queue_max_len: 65_536,
            server_queue_expires: Duration::from_secs(60),
            probe_interval: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

impl AmqpOptions {
    /// The defaults with another server name.
    #[must_use]
    pub fn named(server_name: impl Into<String>) -> Self {
        Self { server_name: server_name.into(), ..Self::default() }
    }

    /// The queue the server consumes and every client publishes to.
    #[must_use]
    pub fn inbound_queue(&self) -> String {
        format!("pong.{}.in", self.server_name)
    }

    /// The queue client queues dead-letter into (overflow, expiry), consumed by the server.
    #[must_use]
    pub fn dead_letter_queue(&self) -> String {
        format!("pong.{}.dead", self.server_name)
    }

    /// The direct exchange match publishes go through (routing key = match id in decimal).
    #[must_use]
    pub fn matches_exchange(&self) -> String {
        format!("pong.{}.matches", self.server_name)
    }

    /// Checks the fields that would otherwise fail later at the broker, with a reason.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let name = &self.server_name;
        if name.is_empty() || name.len() > 200 {
            return Err(format!("server name {name:?} must be 1 to 200 bytes long"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return Err(format!(
                "server name {name:?} may only hold ASCII letters, digits, '-', '_' and '.'"
            ));
        }
        if self.heartbeat.as_secs() == 0 || self.heartbeat.as_secs() > u64::from(u16::MAX) {
            return Err(format!(
                "heartbeat {:?} must be between 1 s and {} s (heartbeats keep idle links \
                 alive and let the broker find dead ones)",
                self.heartbeat,
                u16::MAX
            ));
        }
        if self.max_frame_len == 0 {
            return Err("max_frame_len must be at least 1".to_owned());
        }
        if self.prefetch == 0 {
            return Err("prefetch must be at least 1 (0 would mean unlimited)".to_owned());
        }
        if self.recv_buffer == 0 || self.send_buffer == 0 {
            return Err("recv_buffer and send_buffer must be at least 1".to_owned());
        }
        if self.client_queue_max_len == 0 || self.server_queue_max_len == 0 {
            return Err("queue length bounds must be at least 1".to_owned());
        }
        if self.client_queue_ttl.is_some_and(|ttl| ttl.as_millis() == 0) {
            return Err("client_queue_ttl must be at least 1 ms".to_owned());
        }
        if self.server_queue_expires.as_millis() == 0 {
            return Err("server_queue_expires must be at least 1 ms".to_owned());
        }
        if self.probe_interval.is_zero() || self.op_timeout.is_zero() {
            return Err("probe_interval and op_timeout must not be zero".to_owned());
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return Err("reconnect_min must be positive and at most reconnect_max".to_owned());
        }
        Ok(())
    }

    /// [`validate`](Self::validate) as a transport error about `addr`.
    pub(crate) fn check(&self, addr: &str) -> Result<(), TransportError> {
        self.validate().map_err(|reason| TransportError::Connect { addr: addr.to_owned(), reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_names_follow_the_server_name() {
        let options = AmqpOptions::named("eu-1");
        assert_eq!(options.validate(), Ok(()));
        assert_eq!(options.inbound_queue(), "pong.eu-1.in");
        assert_eq!(options.dead_letter_queue(), "pong.eu-1.dead");
        assert_eq!(options.matches_exchange(), "pong.eu-1.matches");
    }

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        for bad in [
            AmqpOptions::named(""),
            AmqpOptions::named("white space"),
            AmqpOptions::named("x".repeat(201)),
            AmqpOptions { heartbeat: Duration::ZERO, ..AmqpOptions::default() },
            AmqpOptions { prefetch: 0, ..AmqpOptions::default() },
            AmqpOptions { send_buffer: 0, ..AmqpOptions::default() },
            AmqpOptions { client_queue_ttl: Some(Duration::ZERO), ..AmqpOptions::default() },
            AmqpOptions { reconnect_max: Duration::ZERO, ..AmqpOptions::default() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} was accepted");
        }
    }
}
