//! A server transport that times the server loop from outside: wraps the real transport
//! handed to [`pong_runtime::server::serve`] and measures how long the loop is busy
//! between two calls of `recv`, without touching the loop.
//!
//! `serve` calls `recv` (inside `select!`) every time it goes back to waiting; the `recv`
//! future ends when a frame arrives or is dropped when the tick timer fires. The time from
//! that moment to the next `recv` call is one *busy span*: the core handling the frame or
//! the due ticks, then the flush (encoding every output, copying it into a `Bytes`, and
//! handing it to the transport). A span that published at least one `Tick` is a *tick
//! span*: its length is the server's tick duration, everything a grid tick costs the
//! server task, for every match at once. The probe's own cost (two clock reads per span,
//! one byte compare per publish) is included.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use pong_domain::codec;
use pong_domain::proto::{Acks, ServerMsg, StateHash, TickMsg};
use pong_domain::sim::TickInput;
use pong_ports::{Frame, Incoming, MatchId, PeerId, ServerTransport, TransportError};

use crate::stats::Histogram;

/// What a [`TimedServer`] measured; shared with the reporting side.
#[derive(Debug, Default)]
pub struct ServerProbe {
    /// Busy spans that published at least one tick (the tick duration).
    pub tick_spans: Histogram,
    /// Other busy spans (one incoming frame each, mostly).
    pub frame_spans: Histogram,
    /// Total busy time, in nanoseconds.
    pub busy_ns: AtomicU64,
    /// Tick frames published.
    pub ticks_published: AtomicU64,
    /// Frames received from clients.
    pub frames_in: AtomicU64,
    /// Frames sent or published (all kinds).
    pub frames_out: AtomicU64,
    /// Tick spans, counted.
    pub tick_span_count: AtomicU64,
    /// Bytes of the frames received.
    pub bytes_in: AtomicU64,
    /// Bytes of the frames sent to one peer.
    pub bytes_sent: AtomicU64,
    /// Bytes of the frames published to a group (once per publish, not per member).
    pub bytes_published: AtomicU64,
}

impl ServerProbe {
    /// Forgets everything (the end of a warm-up).
    pub fn reset(&self) {
        self.tick_spans.reset();
        self.frame_spans.reset();
        for c in [
            &self.busy_ns,
            &self.ticks_published,
            &self.frames_in,
            &self.frames_out,
            &self.tick_span_count,
            &self.bytes_in,
            &self.bytes_sent,
            &self.bytes_published,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Wraps a server transport and feeds a [`ServerProbe`].
pub struct TimedServer {
    inner: Box<dyn ServerTransport>,
    probe: Arc<ServerProbe>,
    busy_since: Option<Instant>,
    ticks_in_span: Cell<u32>,
    tick_kind: u8,
}

/// The variant byte that follows the version byte in every `Tick` frame: a measuring
/// decorator tells ticks from the other frames it carries by it, without decoding them.
pub fn tick_variant() -> u8 {
    let tick = ServerMsg::Tick(TickMsg {
        tick: 1,
        input: TickInput::IDLE,
        acks: Acks::default(),
        hash: StateHash(0),
    });
    let mut buf = Vec::new();
    match codec::encode_server(&tick, &mut buf) {
        Ok(()) => buf.get(1).copied().unwrap_or(u8::MAX),
        Err(_) => u8::MAX,
    }
}

/// Inside the `impl ServerTransport` of a measuring decorator whose field `inner` is the
/// real transport: the methods that carry no frame, passed straight to `self.inner`. The
/// decorator writes `recv`, `send` and `publish`, what it measures; with this list, no
/// decorator can forget to pass one of the others on and so change how the server behaves
/// over the transport. `shutdown` keeps its default (an async method, which
/// `#[async_trait]` rewrites before this expands): the inner endpoint is dropped with the
/// decorator.
#[macro_export]
macro_rules! forward_server_control {
    () => {
        fn join_group(
            &self,
            peer: ::pong_ports::PeerId,
            group: ::pong_ports::MatchId,
        ) -> ::core::result::Result<(), ::pong_ports::TransportError> {
            self.inner.join_group(peer, group)
        }

        fn leave_group(
            &self,
            peer: ::pong_ports::PeerId,
            group: ::pong_ports::MatchId,
        ) -> ::core::result::Result<(), ::pong_ports::TransportError> {
            self.inner.leave_group(peer, group)
        }

        fn disconnect(
            &self,
            peer: ::pong_ports::PeerId,
        ) -> ::core::result::Result<(), ::pong_ports::TransportError> {
            self.inner.disconnect(peer)
        }

        fn max_frame_len(&self) -> usize {
            self.inner.max_frame_len()
        }

        fn local_addr(&self) -> String {
            self.inner.local_addr()
        }
    };
}

impl TimedServer {
    /// Wraps `inner`; the measurements go to `probe`.
    pub fn new(inner: Box<dyn ServerTransport>, probe: Arc<ServerProbe>) -> TimedServer {
        TimedServer {
            inner,
            probe,
            busy_since: None,
            ticks_in_span: Cell::new(0),
            tick_kind: tick_variant(),
        }
    }

    fn count_out(&self, frame: &Frame) {
        self.probe.frames_out.fetch_add(1, Ordering::Relaxed);
        if frame.get(1) == Some(&self.tick_kind) {
            self.ticks_in_span.set(self.ticks_in_span.get() + 1);
        }
    }
}

/// Marks the end of a wait: when the `recv` future completes or is dropped.
struct WaitEnds<'a>(&'a mut Option<Instant>);

impl Drop for WaitEnds<'_> {
    fn drop(&mut self) {
        *self.0 = Some(Instant::now());
    }
}

#[async_trait]
impl ServerTransport for TimedServer {
    async fn recv(&mut self) -> Result<Incoming, TransportError> {
        if let Some(since) = self.busy_since.take() {
            let span = since.elapsed();
            let p = &self.probe;
            p.busy_ns
                .fetch_add(u64::try_from(span.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
            let ticks = self.ticks_in_span.replace(0);
            if ticks > 0 {
                p.tick_spans.record(span);
                p.tick_span_count.fetch_add(1, Ordering::Relaxed);
                p.ticks_published.fetch_add(u64::from(ticks), Ordering::Relaxed);
            } else {
                p.frame_spans.record(span);
            }
        }
        let _wait = WaitEnds(&mut self.busy_since);
        let incoming = self.inner.recv().await;
        if let Ok(Incoming::Frame { frame, .. }) = &incoming {
            self.probe.frames_in.fetch_add(1, Ordering::Relaxed);
            self.probe.bytes_in.fetch_add(frame.len() as u64, Ordering::Relaxed);
        }
        incoming
    }

    fn send(&self, to: PeerId, frame: Frame) -> Result<(), TransportError> {
        self.count_out(&frame);
        self.probe.bytes_sent.fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.inner.send(to, frame)
    }

    fn publish(&self, group: MatchId, frame: Frame) -> Result<(), TransportError> {
        self.count_out(&frame);
        self.probe.bytes_published.fetch_add(frame.len() as u64, Ordering::Relaxed);
        self.inner.publish(group, frame)
    }

    crate::forward_server_control!();
}
