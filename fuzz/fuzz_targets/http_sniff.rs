//! Whatever a client sends first on the WebSocket port, cut into any chunks: telling a
//! WebSocket handshake from a plain HTTP request (the code of ours in front of tungstenite
//! and hyper) never panics, never loses a byte (the stream it hands on replays exactly what
//! was sent), and, for heads within its limit, gives the same verdict however the bytes
//! arrive.
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use pong_http::{Sniffed, sniff};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

const LIMIT: usize = 8192;

/// A connection that delivers `bytes` in chunks of the given sizes, then ends.
struct Chunked {
    bytes: Vec<u8>,
    at: usize,
    cuts: Vec<u8>,
    next_cut: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let cut = self.cuts.get(self.next_cut).map_or(usize::MAX, |&c| usize::from(c).max(1));
        self.next_cut += 1;
        let n = cut.min(buf.remaining()).min(self.bytes.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.bytes[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// Runs a future whose reads are always ready to its end.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn verdict(bytes: &[u8], cuts: Vec<u8>) -> Option<Sniffed> {
    let conn = Chunked { bytes: bytes.to_vec(), at: 0, cuts, next_cut: 0 };
    run(async {
        let (kind, mut stream) = sniff(conn, LIMIT).await.ok()?;
        let mut replayed = Vec::new();
        stream.read_to_end(&mut replayed).await.expect("a replay cannot fail");
        assert_eq!(replayed, bytes, "the stream handed on lost or changed bytes");
        Some(kind)
    })
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (bytes, cuts) = input;
    let whole = verdict(&bytes, Vec::new());
    let chunked = verdict(&bytes, cuts);
    if bytes.len() < LIMIT {
        assert_eq!(whole, chunked, "the verdict depends on how the bytes arrived");
    }
});
