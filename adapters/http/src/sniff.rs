//! Telling a WebSocket handshake from a plain HTTP request on a fresh connection, without
//! losing a byte of either.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Headers a request head may carry before it is taken as plain HTTP (hyper then judges it).
const MAX_HEADERS: usize = 64;

/// What a connection's first request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A WebSocket upgrade (`Upgrade: websocket`).
    WebSocket,
    /// Anything else, including a malformed or oversized head: for the HTTP server to answer.
    Http,
}

/// A stream that first replays bytes already read from it.
#[derive(Debug)]
pub struct Prefixed<S> {
    head: Vec<u8>,
    read: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, with `head` to be read before anything else from it.
    pub fn new(head: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed { head, read: 0, inner }
    }

    /// The stream underneath (its replayed bytes are lost).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read < this.head.len() {
            let rest = &this.head[this.read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.read += n;
            if this.read == this.head.len() {
                // Replayed: give the memory back for the rest of the connection.
                this.head = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Reads the head of the first request on `stream` (at most `limit` bytes) and says what it
/// asks for. The returned stream replays what was read, so whoever serves it next sees the
/// connection from its first byte. The caller bounds the time this takes.
///
/// # Errors
/// The connection failed or closed before a whole head arrived (nothing to answer).
pub async fn sniff<S: AsyncRead + Unpin>(
    mut stream: S,
    limit: usize,
) -> io::Result<(Sniffed, Prefixed<S>)> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before its request was complete",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let sniffed = match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                if asks_for_websocket(request.headers) {
                    Sniffed::WebSocket
                } else {
                    Sniffed::Http
                }
            }
            Ok(httparse::Status::Partial) if head.len() < limit => continue,
            // Too long, too many headers or malformed: hyper answers it with the right error.
            Ok(httparse::Status::Partial) | Err(_) => Sniffed::Http,
        };
        return Ok((sniffed, Prefixed::new(head, stream)));
    }
}

fn asks_for_websocket(headers: &[httparse::Header<'_>]) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && std::str::from_utf8(h.value).is_ok_and(|v| {
                v.split(',').any(|token| token.trim().eq_ignore_ascii_case("websocket"))
            })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::AsyncReadExt;

    async fn sniffed(bytes: &'static [u8]) -> (Sniffed, Vec<u8>) {
        let (kind, mut stream) = sniff(bytes, 8192).await.unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        (kind, all)
    }

    #[tokio::test]
    async fn a_websocket_handshake_is_told_from_a_plain_request_and_replayed_whole() {
        let upgrade: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
            UPGRADE: WebSocket\r\nSec-WebSocket-Key: k\r\n\r\n\x82\x01a";
        assert_eq!(sniffed(upgrade).await, (Sniffed::WebSocket, upgrade.to_vec()));
        let plain: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(sniffed(plain).await, (Sniffed::Http, plain.to_vec()));
    }

    #[tokio::test]
    async fn garbage_and_oversized_heads_go_to_the_http_server_and_a_cut_one_is_an_error() {
        let garbage: &[u8] = b"\x16\x03\x01 not http at all\r\n\r\n";
        assert_eq!(sniffed(garbage).await.0, Sniffed::Http);
        let long = b"GET / HTTP/1.1\r\nX: ".iter().chain([b'a'; 9000].iter()).copied();
        let long: &'static [u8] = Vec::leak(long.collect());
        assert_eq!(sniffed(long).await.0, Sniffed::Http);
        let cut: &[u8] = b"GET / HTTP/1.1\r\nHost:";
        assert!(sniff(cut, 8192).await.is_err());
    }
}
