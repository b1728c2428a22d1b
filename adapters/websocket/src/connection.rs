//! What both ends of a WebSocket connection share: how a connection ends
//! ([`ConnectionState`], [`Ending`]), the writer task ([`run_writer`]) and the read loop
//! ([`read_frames`]).
//!
//! A connection is split in two halves: a writer task owns the sending
//! half and a bounded queue of frames, the reader owns the receiving half. Whoever decides
//! first that the connection is over (the reader on EOF, a bad frame or silence; the writer on a
//! write error; the server or client API on overflow, disconnect, close or drop) records an
//! [`Ending`]; both halves then wind down within the close timeout, whatever the peer does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use pong_ports::Frame;
use pong_transport_support::lock;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_util::sync::CancellationToken;

/// Bytes tungstenite reads from the socket at a time. It is allocated up front for every
/// connection, so it is small: frames are at most a kilobyte or so, and an idle connection
/// should cost little.
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Bytes tungstenite gathers before writing to the socket; the writer flushes after every
/// batch anyway, so this only splits very large batches.
const WRITE_BUFFER_SIZE: usize = 16 * 1024;

/// Frames the writer takes from its queue before it flushes: enough to cut syscalls under
/// load, few enough that a flush is never far off.
const WRITE_BATCH: usize = 64;

/// Longest close reason the protocol allows (a control frame carries at most 125 bytes,
/// two of which are the code).
const MAX_CLOSE_REASON: usize = 123;

/// The tungstenite settings of both ends: frame limits from the options, small buffers.
pub(crate) fn ws_config(max_frame_len: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(WRITE_BUFFER_SIZE)
        .max_message_size(Some(max_frame_len))
        .max_frame_size(Some(max_frame_len))
}

/// Why and how a connection ends. The first one recorded wins.
#[derive(Debug, Clone)]
pub(crate) struct Ending {
    /// For logs and [`pong_ports::Incoming::Gone`].
    pub(crate) reason: String,
    /// The close frame to send; `None` when the other end cannot hear it any more (it
    /// closed, vanished, or its close was already answered by tungstenite).
    pub(crate) close: Option<CloseFrame>,
    /// Whether what is already queued is sent before the close frame (a polite close), or
    /// dropped (the peer broke a rule or cannot keep up).
    pub(crate) drain: bool,
}

impl Ending {
    /// The other end is gone or unreachable: nothing to send, nothing to wait for.
    pub(crate) fn lost(reason: impl Into<String>) -> Self {
        Self { reason: reason.into(), close: None, drain: false }
    }

    /// A polite close: queued frames, then a close frame with `code`.
    pub(crate) fn polite(code: CloseCode, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self { close: Some(close_frame(code, &reason)), reason, drain: true }
    }

    /// An immediate close: queued frames are dropped, a close frame with `code` is sent.
    pub(crate) fn abrupt(code: CloseCode, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self { close: Some(close_frame(code, &reason)), reason, drain: false }
    }
}

/// A close frame whose reason is cut to what the protocol carries.
fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame { code, reason: reason[..end].into() }
}

/// The state both halves of a connection and the API that owns it share.
#[derive(Debug, Default)]
pub(crate) struct ConnectionState {
    ending: Mutex<Option<Ending>>,
    /// Cancelled once an ending is recorded: the close deadline starts, the reader stops
    /// delivering.
    ended: CancellationToken,
    /// Cancelled when the writer must stop sending queued frames and close at once.
    stop: CancellationToken,
}

impl ConnectionState {
    /// Records why the connection ends, unless an ending is already recorded. Returns true if
    /// this call ended it.
    pub(crate) fn end(&self, ending: Ending) -> bool {
        let drain = ending.drain;
        {
            let mut slot = lock(&self.ending);
            if slot.is_some() {
                return false;
            }
            *slot = Some(ending);
        }
        self.ended.cancel();
        if !drain {
            self.stop.cancel();
        }
        true
    }

    /// Tells the writer to stop draining, whatever the ending said: used once reading is
    /// over, when nobody will answer anyway.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// True once an ending is recorded.
    pub(crate) fn is_ending(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// The recorded ending's reason, or `fallback`.
    pub(crate) fn reason_or(&self, fallback: &str) -> String {
        lock(&self.ending).as_ref().map_or_else(|| fallback.to_owned(), |e| e.reason.clone())
    }

    fn close_frame(&self) -> Option<CloseFrame> {
        match lock(&self.ending).as_ref() {
            Some(ending) => ending.close.clone(),
            // The queue closed without a recorded ending; cannot happen by construction,
            // but a normal close is the right answer if it does.
            None => Some(close_frame(CloseCode::Normal, "closing")),
        }
    }

    /// Resolves `close_timeout` after the connection started ending.
    pub(crate) async fn deadline(&self, close_timeout: Duration) {
        self.ended.cancelled().await;
        tokio::time::sleep(close_timeout).await;
    }
}

/// Sends queued frames (and, at the server, pings) until the connection ends, then the close
/// frame; gives up `close_timeout` after the connection started ending.
pub(crate) async fn run_writer<S>(
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    mut queue: mpsc::Receiver<Frame>,
    conn: Arc<ConnectionState>,
    ping_interval: Option<Duration>,
    close_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let work = async {
        if let Err(error) = write_frames(&mut sink, &mut queue, &conn, ping_interval).await {
            tracing::debug!(%error, "write failed");
            conn.end(Ending::lost(format!("connection lost: {error}")));
            return;
        }
        // Nothing is sent after this, so free the queue now: a full one can hold a
        // thousand frames.
        queue.close();
        while queue.try_recv().is_ok() {}
        if let Some(close) = conn.close_frame() {
            tracing::trace!(code = %close.code, reason = %close.reason, "sending close frame");
            if let Err(error) = sink.send(Message::Close(Some(close))).await {
                tracing::debug!(%error, "close frame not sent");
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = conn.deadline(close_timeout) => {
            tracing::debug!(?close_timeout, "close deadline passed while writing; dropping");
        }
    }
}

/// The writer's main loop; returns `Ok` when the connection ends (queue closed by the owner, or
/// an abrupt ending).
async fn write_frames<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    queue: &mut mpsc::Receiver<Frame>,
    conn: &ConnectionState,
    ping_interval: Option<Duration>,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pings = ping_interval.map(|period| {
        let mut pings = tokio::time::interval_at(Instant::now() + period, period);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        pings
    });
    loop {
        tokio::select! {
            biased;
            () = conn.stop.cancelled() => return Ok(()),
            frame = queue.recv() => {
                let Some(frame) = frame else { return Ok(()) };
                let batch = async {
                    sink.feed(Message::Binary(frame)).await?;
                    for _ in 1..WRITE_BATCH {
                        let Ok(frame) = queue.try_recv() else { break };
                        sink.feed(Message::Binary(frame)).await?;
                    }
                    sink.flush().await
                };
                // A peer that stops reading leaves the writer stuck in a flush; an abrupt
                // ending must still get through.
                tokio::select! {
                    biased;
                    () = conn.stop.cancelled() => return Ok(()),
                    sent = batch => sent?,
                }
            }
            () = tick(&mut pings) => {
                tokio::select! {
                    biased;
                    () = conn.stop.cancelled() => return Ok(()),
                    sent = sink.send(Message::Ping(Bytes::new())) => sent?,
                }
            }
        }
    }
}

async fn tick(pings: &mut Option<Interval>) {
    match pings {
        Some(pings) => {
            pings.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Where the read loop hands what it reads: the server's event queue or a client's
/// receive queue.
pub(crate) trait Deliver: Send {
    /// Hands over one frame; may wait for room.
    fn frame(&mut self, frame: Frame) -> impl Future<Output = ()> + Send;
    /// Called exactly once, as soon as the connection is seen ending (no frame follows).
    fn ended(&mut self, reason: String) -> impl Future<Output = ()> + Send;
}

/// Limits the read loop enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadLimits {
    /// Longest frame delivered; longer ones end the connection with 1009.
    pub(crate) max_frame_len: usize,
    /// Silence after which the connection is dead.
    pub(crate) keepalive_timeout: Duration,
    /// How long an ending connection may take to finish its close handshake.
    pub(crate) close_timeout: Duration,
}

/// Reads until the connection is over, handing frames to `deliver` while the connection is up and
/// reporting its end to `deliver` exactly once, as soon as it is seen.
///
/// Text frames, frames over the limit and protocol errors end the connection with a close code
/// (1003, 1009, 1002) and are never delivered. After the connection started ending, reading goes
/// on (discarding) only to see the other end's close, for at most `close_timeout`.
pub(crate) async fn read_frames<S, D>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    conn: &ConnectionState,
    limits: ReadLimits,
    deliver: &mut D,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    D: Deliver,
{
    let deadline = conn.deadline(limits.close_timeout);
    tokio::pin!(deadline);
    let silence = tokio::time::sleep(limits.keepalive_timeout);
    tokio::pin!(silence);
    let mut reported = false;
    loop {
        let next = tokio::select! {
            biased;
            () = conn.ended.cancelled(), if !reported => {
                reported = true;
                deliver.ended(conn.reason_or("connection closed")).await;
                continue;
            }
            () = &mut deadline => {
                tracing::debug!(close_timeout = ?limits.close_timeout, "close handshake not finished in time");
                break;
            }
            next = stream.next() => next,
            () = &mut silence => {
                let quiet = limits.keepalive_timeout;
                tracing::debug!(?quiet, "peer silent; closing");
                conn.end(Ending::abrupt(
                    CloseCode::Policy,
                    format!("keepalive timeout: nothing received for {quiet:?}"),
                ));
                break;
            }
        };
        silence.as_mut().reset(Instant::now() + limits.keepalive_timeout);
        match next {
            Some(Ok(Message::Binary(frame))) => {
                if conn.is_ending() {
                    continue;
                }
                if frame.len() > limits.max_frame_len {
                    // tungstenite enforces the same limit; this only guards a change there.
                    oversized(conn, frame.len(), limits.max_frame_len);
                    continue;
                }
                tokio::select! {
                    biased;
                    () = &mut deadline => break,
                    () = deliver.frame(frame) => {}
                }
                // Waiting for room is not the peer's silence.
                silence.as_mut().reset(Instant::now() + limits.keepalive_timeout);
            }
            Some(Ok(Message::Text(_))) => {
                tracing::debug!("text frame received; closing");
                conn.end(Ending::abrupt(CloseCode::Unsupported, "text frames are not accepted"));
            }
            Some(Ok(Message::Close(frame))) => {
                let reason = match frame {
                    Some(frame) if frame.reason.is_empty() => {
                        format!("closed by the peer ({})", frame.code)
                    }
                    Some(frame) => format!("closed by the peer ({} {})", frame.code, frame.reason),
                    None => "closed by the peer".to_owned(),
                };
                tracing::debug!(%reason, "close frame received");
                // tungstenite answers the close itself; the stream ends right after.
                conn.end(Ending::lost(reason));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                oversized(conn, size, max_size);
                // tungstenite's stream is unusable after an error.
                break;
            }
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                conn.end(Ending::lost("connection closed without a close frame"));
                break;
            }
            Some(Err(WsError::Protocol(error))) => {
                tracing::debug!(%error, "protocol error; closing");
                conn.end(Ending::abrupt(CloseCode::Protocol, format!("protocol error: {error}")));
                break;
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "read failed");
                conn.end(Ending::lost(format!("connection lost: {error}")));
                break;
            }
            None => {
                conn.end(Ending::lost("connection closed"));
                break;
            }
        }
    }
    if !reported {
        deliver.ended(conn.reason_or("connection closed")).await;
    }
}

fn oversized(conn: &ConnectionState, len: usize, max: usize) {
    tracing::debug!(len, max, "oversized frame received; closing");
    conn.end(Ending::abrupt(CloseCode::Size, format!("frame of {len} bytes exceeds {max}")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_are_cut_to_what_a_close_frame_carries() {
        let long = "é".repeat(100); // 200 bytes, two per char
        let frame = close_frame(CloseCode::Policy, &long);
        assert!(frame.reason.len() <= MAX_CLOSE_REASON);
        assert_eq!(frame.reason.len(), 122, "cut at a char boundary");
        assert_eq!(close_frame(CloseCode::Normal, "bye").reason.as_str(), "bye");
    }

    #[test]
    fn the_first_ending_wins_and_only_abrupt_ones_stop_the_writer() {
        let conn = ConnectionState::default();
        assert!(!conn.is_ending());
        assert!(conn.end(Ending::polite(CloseCode::Normal, "first")));
        assert!(conn.is_ending());
        assert!(!conn.stop.is_cancelled(), "a polite ending lets the writer drain");
        assert!(!conn.end(Ending::abrupt(CloseCode::Policy, "second")));
        assert_eq!(conn.reason_or("none"), "first");
        assert_eq!(conn.close_frame().map(|f| f.code), Some(CloseCode::Normal));

        let conn = ConnectionState::default();
        assert_eq!(conn.reason_or("none"), "none");
        assert!(conn.end(Ending::abrupt(CloseCode::Size, "too big")));
        assert!(conn.stop.is_cancelled());
        let lost = ConnectionState::default();
        lost.end(Ending::lost("gone"));
        assert!(lost.close_frame().is_none(), "nobody to send a close frame to");
    }
}
