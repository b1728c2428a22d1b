//! What both ends share below the port: parsing and redacting broker URLs, opening a
//! connection on the caller's tokio runtime, turning lapin errors into sentences, queue
//! arguments, the message kinds of the wire format, and reconnect backoff.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::ConfirmSelectOptions;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::{AMQPScheme, AMQPUri, SASLMechanism};
use lapin::{Channel, Connection, ConnectionProperties, Error as LapinError, ErrorKind};
use pong_ports::TransportError;

use crate::options::AmqpOptions;

/// The AMQP `type` property values of the wire format. Frames carry none: only control
/// messages are typed, so a data frame costs no extra header bytes.
pub(crate) mod kind {
    /// Client → server: the connection is closing (after the frames sent before it).
    pub(crate) const BYE: &str = "pong.bye";
    /// Server → client: the server closed the connection (after the frames sent before it).
    pub(crate) const CLOSE: &str = "pong.close";
    /// Server → client: stop delivering publishes of the match in the body.
    pub(crate) const LEAVE: &str = "pong.leave";
    /// Server → client: deliver publishes of the match in the body again.
    pub(crate) const JOIN: &str = "pong.join";
    /// Server → client: a mandatory no-op whose return tells the server the queue is gone.
    pub(crate) const PROBE: &str = "pong.probe";
}

/// Broker-named queues start with this; RabbitMQ refuses `amq.` names to clients, so a
/// `reply_to` with this prefix names a queue the broker made (never the server's own).
pub(crate) const SERVER_NAMED_PREFIX: &str = "amq.gen-";

/// Puts an end's publishing channel in confirm mode if the options ask for publisher
/// confirms; does nothing otherwise.
pub(crate) async fn confirm_if_asked(
    publisher: &Channel,
    options: &AmqpOptions,
) -> lapin::Result<()> {
    if options.confirms {
        publisher.confirm_select(ConfirmSelectOptions::default()).await
    } else {
        Ok(())
    }
}

/// `reply_code` of a mandatory message that matched no queue.
pub(crate) const NO_ROUTE: u16 = 312;

/// A parsed broker URL and how to show it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) uri: AMQPUri,
    /// The URL without credentials, for logs and errors: `amqp://host:port[/vhost]`.
    pub(crate) display: String,
}

impl Target {
    /// Parses `url` and fills in the heartbeat and connection timeout from `options` where
    /// the URL does not set them (a URL setting wins, so operators can override).
    pub(crate) fn parse(url: &str, options: &AmqpOptions) -> Result<Self, TransportError> {
        let mut uri: AMQPUri = url.parse().map_err(|reason: String| TransportError::Connect {
            addr: strip_credentials(url),
            reason: format!("not an AMQP URL: {reason}"),
        })?;
        let display = redact(&uri);
        options.check(&display)?;
        let heartbeat = u16::try_from(options.heartbeat.as_secs()).unwrap_or(u16::MAX);
        uri.query.heartbeat.get_or_insert(heartbeat);
        if uri.query.heartbeat == Some(0) {
            return Err(TransportError::Connect {
                addr: display,
                reason: "heartbeat=0 in the URL would disable heartbeats, which this transport \
                         needs to keep idle links alive and to find dead ones"
                    .to_owned(),
            });
        }
        let timeout_ms = u64::try_from(options.op_timeout.as_millis()).unwrap_or(u64::MAX);
        uri.query.connection_timeout.get_or_insert(timeout_ms);
        Ok(Self { uri, display })
    }

    /// The user the broker will know this connection as, when it is certain (PLAIN and
    /// AMQPLAIN log in with the URL's user). The server stamps it as `user_id`, which the
    /// broker verifies, so dead letters can be told apart from forgeries.
    pub(crate) fn verified_user(&self) -> Option<ShortString> {
        let user = &self.uri.authority.userinfo.username;
        let plain = matches!(
            self.uri.query.auth_mechanism,
            None | Some(SASLMechanism::Plain | SASLMechanism::AMQPlain)
        );
        (plain && !user.is_empty()).then(|| ShortString::from(user.clone()))
    }

    /// Opens a connection driven by the calling tokio runtime (heartbeats are a task on it;
    /// lapin's socket loop has its own thread), named for `rabbitmqctl list_connections`.
    pub(crate) async fn connect(
        &self,
        connection_name: &str,
        timeout: Duration,
    ) -> Result<Connection, TransportError> {
        let refused =
            |reason: String| TransportError::Connect { addr: self.display.clone(), reason };
        // lapin binds to the current runtime and would panic outside one.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(refused("must be called from within a tokio runtime".to_owned()));
        }
        let properties =
            ConnectionProperties::default().with_connection_name(connection_name.into());
        // The URL's connection_timeout covers TCP only; this bounds the AMQP handshake too.
        match tokio::time::timeout(timeout, Connection::connect_uri(self.uri.clone(), properties))
            .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(refused(describe(&error))),
            Err(_) => Err(refused(format!("no AMQP handshake within {timeout:?}"))),
        }
    }
}

/// `scheme://host:port` plus the virtual host when it is not the default one.
fn redact(uri: &AMQPUri) -> String {
    let scheme = match uri.scheme {
        AMQPScheme::AMQP => "amqp",
        AMQPScheme::AMQPS => "amqps",
    };
    let authority = format!("{scheme}://{}:{}", uri.authority.host, uri.authority.port);
    if uri.vhost == "/" { authority } else { format!("{authority}/{}", percent_encode(&uri.vhost)) }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Best effort for a URL that does not parse: never echo a password.
fn strip_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A lapin error as a short sentence for [`TransportError`] messages.
pub(crate) fn describe(error: &LapinError) -> String {
    match error.kind() {
        ErrorKind::IOError(io) | ErrorKind::RuntimeShutdownError(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            std::io::ErrorKind::TimedOut => "timed out".to_owned(),
            std::io::ErrorKind::ConnectionReset => "connection reset by the broker".to_owned(),
            std::io::ErrorKind::UnexpectedEof => {
                "the broker closed the connection (wrong user name or password?)".to_owned()
            }
            _ => io.to_string(),
        },
        ErrorKind::ProtocolError(amqp) => {
            let message = amqp.get_message().as_str();
            match amqp.kind() {
                AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
                | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => {
                    format!("refused by the broker: {message}")
                }
                _ => message.to_owned(),
            }
        }
        ErrorKind::MissingHeartbeatError => "the broker stopped answering heartbeats".to_owned(),
        _ => error.to_string(),
    }
}

/// True if `error` is a channel error with this soft code.
pub(crate) fn is_soft(error: &LapinError, code: AMQPSoftError) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(amqp) if *amqp.kind() == AMQPErrorKind::Soft(code))
}

/// `x-…` arguments of a bounded queue that sheds its oldest frames.
pub(crate) fn bounded_queue_args(max_len: u32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(i64::from(max_len)));
    args.insert("x-overflow".into(), AMQPValue::LongString(LongString::from("drop-head")));
    args
}

/// Milliseconds as an AMQP argument value (saturating).
pub(crate) fn millis(duration: Duration) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

/// A header as text, if it is one.
pub(crate) fn header_text<'a>(table: &'a FieldTable, key: &str) -> Option<&'a [u8]> {
    match table.inner().get(key)? {
        AMQPValue::LongString(text) => Some(text.as_bytes()),
        AMQPValue::ShortString(text) => Some(text.as_str().as_bytes()),
        _ => None,
    }
}

/// A name no other connection of this broker will have, for `connection_name`.
pub(crate) fn unique_suffix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}-{}-{nanos:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// True on the 1st, 2nd, 4th, 8th… occurrence: anomalies caused by peers are logged on
/// these only, so a misbehaving client cannot flood the log (every one is still counted).
pub(crate) fn worth_logging(count: u64) -> bool {
    count.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        let options = AmqpOptions::default();
        let target = Target::parse("amqp://bob:secret@broker.example:5673/%2f", &options).unwrap();
        assert_eq!(target.display, "amqp://broker.example:5673");
        let target = Target::parse("amqp://bob:secret@h/games%2Fpong", &options).unwrap();
        assert_eq!(target.display, "amqp://h:5672/games%2Fpong");
        assert_eq!(strip_credentials("amqp://bob:secret@h:1/x?y"), "amqp://h:1/x?y");
    }

    #[test]
    fn heartbeat_and_timeout_fill_in_unless_the_url_sets_them() {
        let options = AmqpOptions { heartbeat: Duration::from_secs(3), ..AmqpOptions::default() };
        let target = Target::parse(crate::DEFAULT_URL, &options).unwrap();
        assert_eq!(target.uri.query.heartbeat, Some(3));
        assert_eq!(target.uri.query.connection_timeout, Some(10_000));
        let target = Target::parse("amqp://h/%2f?heartbeat=7", &options).unwrap();
        assert_eq!(target.uri.query.heartbeat, Some(7));
        let error = Target::parse("amqp://h/%2f?heartbeat=0", &options).unwrap_err();
        assert!(error.to_string().contains("heartbeat=0"), "{error}");
    }

    #[test]
    fn bad_urls_and_options_are_connect_errors() {
        let error = Target::parse("http://u:pw@h/", &AmqpOptions::default()).unwrap_err();
        assert!(matches!(error, TransportError::Connect { .. }), "{error:?}");
        assert!(!error.to_string().contains("pw"), "{error}");
        let error = Target::parse(crate::DEFAULT_URL, &AmqpOptions::named("a b")).unwrap_err();
        assert!(error.to_string().contains("server name"), "{error}");
    }

    #[test]
    fn the_verified_user_is_the_plain_login() {
        let options = AmqpOptions::default();
        let target = Target::parse(crate::DEFAULT_URL, &options).unwrap();
        assert_eq!(target.verified_user().as_ref().map(ShortString::as_str), Some("guest"));
        let target = Target::parse("amqp://h/%2f?auth_mechanism=external", &options).unwrap();
        assert_eq!(target.verified_user(), None);
    }

    #[test]
    fn logging_thins_out_exponentially() {
        let logged: Vec<u64> = (1..=20).filter(|&n| worth_logging(n)).collect();
        assert_eq!(logged, [1, 2, 4, 8, 16]);
    }
}
