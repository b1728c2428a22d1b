//! The relay between one client connection and the ROUTER's private backplane: bytes from
//! the client pass the ZMTP [`Guard`] before they are forwarded; bytes from the server are
//! forwarded as they are, and a client that stops taking them is cut.
//!
//! Closing is passed through in both directions, so the two ZMTP ends see each other's
//! end of stream: a client that closes makes the ROUTER report its peer gone, and a peer
//! the ROUTER drops sees its connection end after the bytes already written to it. When
//! one side has finished, the other gets [`LINGER`] to finish too (so the last frames of a
//! disconnected client are not lost to a reset), then the relay drops both.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backplane::Backplane;
use crate::guard::{Guard, Limits, Violation};

/// Bytes read at a time in each direction: several protocol frames, and small enough that
/// thousands of connections cost little.
const CHUNK: usize = 4096;

/// How long one direction may take to finish after the other has.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// What a relay checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayConfig {
    pub(crate) limits: Limits,
    pub(crate) handshake_timeout: Duration,
    pub(crate) stall_timeout: Duration,
}

/// How a relay ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// One side closed (or failed) and the other followed.
    Closed,
    /// The client broke the ZMTP framing or a limit; cut.
    Violation(Violation),
    /// The client did not finish the handshake in time; cut.
    HandshakeTimeout,
    /// The client stopped taking what the server sent; cut.
    Stalled,
    /// The ROUTER could not be reached.
    Backplane(std::io::Error),
    /// The server endpoint is shutting down.
    Cancelled,
}

enum Up {
    ClientEof,
    ClientFailed,
    Violation(Violation),
    HandshakeTimeout,
}

enum Down {
    ServerClosed,
    ClientFailed,
    Stalled,
}

/// Relays one accepted client connection until either side is done with it, and calls
/// `report` with how it ended while both connections are still open (so whoever sees them
/// close can rely on the report having been made).
pub(crate) async fn run<C>(
    client: C,
    backplane: &Backplane,
    config: RelayConfig,
    cancel: &CancellationToken,
    report: impl FnOnce(Ended),
) where
    C: AsyncRead + AsyncWrite + Send,
{
    let handshake_deadline = Instant::now() + config.handshake_timeout;
    let inner = match backplane.connect().await {
        Ok(inner) => inner,
        Err(e) => return report(Ended::Backplane(e)),
    };
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut inner_read, mut inner_write) = tokio::io::split(inner);
    let mut guard = Guard::new(config.limits);

    let up = upstream(&mut client_read, &mut inner_write, &mut guard, handshake_deadline);
    let down = downstream(&mut inner_read, &mut client_write, config.stall_timeout);
    tokio::pin!(up, down);
    let ended = tokio::select! {
        biased;
        () = cancel.cancelled() => Ended::Cancelled,
        end = &mut up => match end {
            Up::ClientEof => {
                // Let the ROUTER see the end and flush what it still has for the client.
                linger(cancel, &mut down).await;
                Ended::Closed
            }
            Up::ClientFailed => Ended::Closed,
            Up::Violation(v) => Ended::Violation(v),
            Up::HandshakeTimeout => Ended::HandshakeTimeout,
        },
        end = &mut down => match end {
            Down::ServerClosed => {
                // The client has been sent everything and an end of stream; read (and
                // discard) until it closes too, so that closing never resets a connection
                // whose last bytes it has not read yet.
                linger(cancel, &mut up).await;
                Ended::Closed
            }
            Down::ClientFailed => Ended::Closed,
            Down::Stalled => Ended::Stalled,
        },
    };
    report(ended);
}

/// Gives the other direction up to [`LINGER`] to finish, unless the relay is cancelled first.
async fn linger(cancel: &CancellationToken, other: impl Future + Unpin) {
    tokio::select! {
        () = cancel.cancelled() => {}
        _ = tokio::time::timeout(LINGER, other) => {}
    }
}

/// Client → ROUTER, through the guard. After the ROUTER side has closed, keeps reading so
/// the client can finish, but forwards nothing.
async fn upstream<R, W>(
    client: &mut R,
    inner: &mut W,
    guard: &mut Guard,
    handshake_deadline: Instant,
) -> Up
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0_u8; CHUNK];
    let mut inner_open = true;
    loop {
        let read = if guard.handshake_done() {
            client.read(&mut buf).await
        } else {
            match tokio::time::timeout_at(handshake_deadline, client.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => return Up::HandshakeTimeout,
            }
        };
        let n = match read {
            Ok(0) => {
                if inner_open {
                    let _ = inner.shutdown().await;
                }
                return Up::ClientEof;
            }
            Ok(n) => n,
            Err(_) => return Up::ClientFailed,
        };
        let chunk = &buf[..n];
        if let Err(violation) = guard.feed(chunk) {
            return Up::Violation(violation);
        }
        if inner_open && inner.write_all(chunk).await.is_err() {
            inner_open = false;
        }
    }
}

/// ROUTER → client. A write that cannot complete within `stall` means the client has not
/// been reading for longer than its kernel buffers last: it is cut.
async fn downstream<R, W>(inner: &mut R, client: &mut W, stall: Duration) -> Down
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0_u8; CHUNK];
    loop {
        let n = match inner.read(&mut buf).await {
            Ok(0) | Err(_) => {
                return match tokio::time::timeout(stall, client.shutdown()).await {
                    Ok(Ok(())) => Down::ServerClosed,
                    Ok(Err(_)) => Down::ClientFailed,
                    Err(_) => Down::Stalled,
                };
            }
            Ok(n) => n,
        };
        match tokio::time::timeout(stall, client.write_all(&buf[..n])).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Down::ClientFailed,
            Err(_) => return Down::Stalled,
        }
    }
}
