//! A link conditioner: wraps any client transport to make its link bad on purpose, and
//! reproducibly, so the protocol's tolerance of latency, jitter, loss, duplication,
//! reordering and outages can be tested (and a local game played over a "bad network").
//!
//! ```text
//! app ── ConditionedClient ──(upstream shaper)──► inner ClientTransport ──► server
//!     ◄──────────────────────(downstream shaper)◄──
//! ```
//!
//! [`ConditionedConnector`] wraps any [`Connector`]; every link it opens wraps the inner
//! link. Each direction applies the same [`LinkConditions`] independently: a frame is
//! dropped with probability `loss`, duplicated with probability `duplicate`, and each copy
//! is held for `latency ± jitter` (uniform), plus `reorder_delay` for a fraction `reorder`
//! of copies.
//!
//! **Jitter reorders frames on purpose**: two frames sent 1 ms apart with 10 ms of jitter
//! often arrive swapped, as UDP datagrams would. That breaks rules 1 and 2 of the Transport
//! port by design: it tests the *protocol's* tolerance, not the transport's. With
//! [`LinkConditions::perfect`] the wrapper keeps every rule (the conformance suite runs
//! against it).
//!
//! # Reproducibility
//! Randomness comes from a ChaCha8 generator per link and direction, seeded from
//! [`LinkConditions::seed`] and the link's number (the order in which this connector
//! opened it); no OS randomness. Delays use tokio's clock, so under
//! `tokio::time::pause()` (`#[tokio::test(start_paused = true)]`) a run is exactly
//! repeatable. Frames due at the same instant leave in the order they entered.
//!
//! # Outages
//! A [`LinkControl`] (from [`ConditionedConnector::control`], shared by all links of that
//! connector) cuts and restores links: while cut, every frame in either direction is
//! dropped silently, including frames already in flight when they fall due. A cut hides
//! frames, not the end of a link: if the inner link closes, `recv` still reports
//! [`TransportError::Closed`].
//!
//! # Limits
//! The wrapper's own queues are unbounded (the inner transport's queues still apply when
//! frames reach it); it is a test tool, not a production component.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pong_ports::{ClientTransport, Connector, Frame, MatchId, TransportError};
use pong_transport_support::check_frame_len;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How bad a link is, in one direction (a connector applies it to both, independently).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConditions {
    /// Base one-way delay.
    pub latency: Duration,
    /// Each frame's delay is uniform in `latency - jitter ..= latency + jitter` (never
    /// below zero). Frames overtake each other when jitter exceeds their spacing.
    pub jitter: Duration,
    /// Probability that a frame is dropped, in `0.0..=1.0`.
    pub loss: f64,
    /// Probability that a (not dropped) frame is delivered twice, in `0.0..=1.0`.
    pub duplicate: f64,
    /// Fraction of frame copies held an extra [`Self::reorder_delay`], so later frames
    /// overtake them, in `0.0..=1.0`.
    pub reorder: f64,
    /// The extra delay of a reordered copy.
    pub reorder_delay: Duration,
    /// Seed of the random choices; same seed, same traffic, same outcome.
    pub seed: u64,
}

impl Default for LinkConditions {
    fn default() -> Self {
        Self::perfect()
    }
}

impl LinkConditions {
    /// No delay, loss, duplication or reordering: the wrapper is transparent.
    #[must_use]
    pub const fn perfect() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            seed: 0,
        }
    }

    /// A local network: 1 ms ± 0.5 ms, nothing lost.
    #[must_use]
    pub const fn lan() -> Self {
        Self {
            latency: Duration::from_millis(1),
            jitter: Duration::from_micros(500),
            ..Self::perfect()
        }
    }

    /// A wide-area link with the given one-way latency and jitter, nothing lost; add loss
    /// and the rest with the `with_*` methods.
    #[must_use]
    pub const fn wan(latency: Duration, jitter: Duration) -> Self {
        Self { latency, jitter, ..Self::perfect() }
    }

    /// The same, dropping a fraction `loss` of frames.
    #[must_use]
    pub const fn with_loss(self, loss: f64) -> Self {
        Self { loss, ..self }
    }

    /// The same, duplicating a fraction `duplicate` of frames.
    #[must_use]
    pub const fn with_duplicate(self, duplicate: f64) -> Self {
        Self { duplicate, ..self }
    }

    /// The same, holding a fraction `reorder` of frames back by an extra `delay`.
    #[must_use]
    pub const fn with_reorder(self, reorder: f64, delay: Duration) -> Self {
        Self { reorder, reorder_delay: delay, ..self }
    }

    /// The same, with another seed.
    #[must_use]
    pub const fn with_seed(self, seed: u64) -> Self {
        Self { seed, ..self }
    }
}

/// Cuts and restores links; clones control the same links.
#[derive(Debug, Clone, Default)]
pub struct LinkControl {
    inner: Arc<ControlState>,
}

#[derive(Debug, Default)]
struct ControlState {
    manual: AtomicBool,
    /// Scheduled cut-offs in progress; overlapping ones nest.
    scheduled: AtomicUsize,
}

impl LinkControl {
    /// A control with the link up.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cuts the links: from now on every frame in either direction is dropped silently.
    pub fn cut(&self) {
        tracing::debug!("link cut");
        self.inner.manual.store(true, Ordering::Release);
    }

    /// Undoes [`Self::cut`]. Scheduled cut-offs in progress still apply.
    pub fn restore(&self) {
        tracing::debug!("link restored");
        self.inner.manual.store(false, Ordering::Release);
    }

    /// True while the links are cut (by [`Self::cut`] or a scheduled cut-off).
    #[must_use]
    pub fn is_cut(&self) -> bool {
        self.inner.manual.load(Ordering::Acquire)
            || self.inner.scheduled.load(Ordering::Acquire) > 0
    }

    /// Cuts the links `after` from now, for `duration`, on tokio's clock (so it follows
    /// paused time). Aborting the returned task ends the cut-off early.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn schedule_cut(&self, after: Duration, duration: Duration) -> JoinHandle<()> {
        let state = Arc::clone(&self.inner);
        let start = later(Instant::now(), after);
        tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            let _cut = ScheduledCut::begin(state);
            tokio::time::sleep_until(later(start, duration)).await;
        })
    }
}

/// Ends a scheduled cut-off when dropped, so an aborted schedule never leaves a link cut.
struct ScheduledCut(Arc<ControlState>);

impl ScheduledCut {
    fn begin(state: Arc<ControlState>) -> Self {
        tracing::debug!("scheduled cut-off begins");
        state.scheduled.fetch_add(1, Ordering::AcqRel);
        Self(state)
    }
}

impl Drop for ScheduledCut {
    fn drop(&mut self) {
        tracing::debug!("scheduled cut-off ends");
        self.0.scheduled.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A [`Connector`] whose links suffer [`LinkConditions`].
///
/// Each link is driven by a task spawned on the current tokio runtime, so `connect` must be
/// awaited inside one (it always is in practice).
pub struct ConditionedConnector {
    inner: Arc<dyn Connector>,
    upstream: LinkConditions,
    downstream: LinkConditions,
    control: LinkControl,
    links: AtomicU64,
}

impl std::fmt::Debug for ConditionedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConditionedConnector")
            .field("inner", &self.inner.describe())
            .field("upstream", &self.upstream)
            .field("downstream", &self.downstream)
            .finish_non_exhaustive()
    }
}

impl ConditionedConnector {
    /// Wraps `inner`, applying `conditions` to each direction of every link independently.
    #[must_use]
    pub fn new(inner: Arc<dyn Connector>, conditions: LinkConditions) -> Self {
        Self::asymmetric(inner, conditions, conditions)
    }

    /// Wraps `inner` with different conditions client → server (`upstream`) and server →
    /// client (`downstream`).
    #[must_use]
    pub fn asymmetric(
        inner: Arc<dyn Connector>,
        upstream: LinkConditions,
        downstream: LinkConditions,
    ) -> Self {
        Self { inner, upstream, downstream, control: LinkControl::new(), links: AtomicU64::new(0) }
    }

    /// Uses `control` instead of a control of its own (to cut several connectors at once).
    #[must_use]
    pub fn with_control(self, control: LinkControl) -> Self {
        Self { control, ..self }
    }

    /// The control shared by every link this connector opens (past and future).
    #[must_use]
    pub fn control(&self) -> LinkControl {
        self.control.clone()
    }
}

#[async_trait]
impl Connector for ConditionedConnector {
    async fn connect(&self) -> Result<Box<dyn ClientTransport>, TransportError> {
        let inner = self.inner.connect().await?;
        let link = self.links.fetch_add(1, Ordering::Relaxed);
        let max_frame_len = inner.max_frame_len();
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        let (deliver_tx, deliver_rx) = mpsc::unbounded_channel();
        let dead = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            inner,
            ops: ops_rx,
            deliver: Some(deliver_tx),
            up: Shaper::new(self.upstream, link, 0),
            down: Shaper::new(self.downstream, link, 1),
            control: self.control.clone(),
            dead: Arc::clone(&dead),
            link,
        };
        tokio::spawn(driver.run());
        tracing::debug!(link, inner = %self.inner.describe(), "conditioned link opened");
        Ok(Box::new(ConditionedClient {
            ops: ops_tx,
            incoming: deliver_rx,
            dead,
            closed: false,
            max_frame_len,
        }))
    }

    fn describe(&self) -> String {
        format!("{} (conditioned)", self.inner.describe())
    }
}

/// The client end of a conditioned link; the inner link lives in a driver task that holds
/// frames until they are due.
struct ConditionedClient {
    ops: mpsc::UnboundedSender<DriverOp>,
    incoming: mpsc::UnboundedReceiver<Frame>,
    /// Set by the driver once the inner link is known to be gone.
    dead: Arc<AtomicBool>,
    closed: bool,
    max_frame_len: usize,
}

/// What the client end asks of its driver task.
enum DriverOp {
    Send { frame: Frame, at: Instant },
    Subscribe { group: MatchId, reply: oneshot::Sender<Result<(), TransportError>> },
    Close { reply: oneshot::Sender<()> },
}

#[async_trait]
impl ClientTransport for ConditionedClient {
    async fn recv(&mut self) -> Result<Frame, TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        self.incoming.recv().await.ok_or(TransportError::Closed)
    }

    fn send(&self, frame: Frame) -> Result<(), TransportError> {
        if self.closed || self.dead.load(Ordering::Acquire) {
            return Err(TransportError::Closed);
        }
        check_frame_len(&frame, self.max_frame_len)?;
        self.ops
            .send(DriverOp::Send { frame, at: Instant::now() })
            .map_err(|_| TransportError::Closed)
    }

    async fn subscribe(&mut self, group: MatchId) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.ops.send(DriverOp::Subscribe { group, reply }).map_err(|_| TransportError::Closed)?;
        answer.await.map_err(|_| TransportError::Closed)?
    }

    async fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let (reply, done) = oneshot::channel();
        if self.ops.send(DriverOp::Close { reply }).is_ok() {
            // Returns once frames still in flight upstream have been handed over.
            let _ = done.await;
        }
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

/// One direction's timer queue and random choices.
struct Shaper {
    conditions: LinkConditions,
    rng: ChaCha8Rng,
    /// Min-heap on (due, entry order): equal due times leave in the order they entered.
    queue: BinaryHeap<Reverse<(Instant, u64, Frame)>>,
    entered: u64,
}

impl Shaper {
    fn new(conditions: LinkConditions, link: u64, direction: u64) -> Self {
        let seed =
            splitmix64(conditions.seed ^ splitmix64(link.wrapping_mul(2).wrapping_add(direction)));
        Self {
            conditions,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            entered: 0,
        }
    }

    /// Decides the fate of a frame sent at `at`. Always draws the same number of random
    /// values per copy, so one setting does not shift the others' choices.
    fn admit(&mut self, at: Instant, frame: Frame) {
        let lost = self.chance(self.conditions.loss);
        let copies = if self.chance(self.conditions.duplicate) { 2 } else { 1 };
        if lost {
            return;
        }
        for _ in 0..copies {
            let delay = self.delay();
            self.queue.push(Reverse((later(at, delay), self.entered, frame.clone())));
            self.entered += 1;
        }
    }

    fn delay(&mut self) -> Duration {
        let latency = self.conditions.latency.as_nanos();
        let jitter = self.conditions.jitter.as_nanos();
        let draw = u128::from(self.rng.next_u64());
        // Uniform in latency - jitter ..= latency + jitter, clamped at zero.
        let nanos = (latency + draw % (2 * jitter + 1)).saturating_sub(jitter);
        let mut delay = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        if self.chance(self.conditions.reorder) {
            delay += self.conditions.reorder_delay;
        }
        delay
    }

    fn chance(&mut self, probability: f64) -> bool {
        // 53 random bits give a uniform float in [0, 1).
        let unit = (self.rng.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        unit < probability
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((due, _, _))| *due)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Frame> {
        if self.next_due()? > now {
            return None;
        }
        self.queue.pop().map(|Reverse((_, _, frame))| frame)
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Owns the inner link and moves frames through both shapers.
struct Driver {
    inner: Box<dyn ClientTransport>,
    ops: mpsc::UnboundedReceiver<DriverOp>,
    /// Dropped once nothing more can arrive, which ends the client's `recv` with `Closed`.
    deliver: Option<mpsc::UnboundedSender<Frame>>,
    up: Shaper,
    down: Shaper,
    control: LinkControl,
    dead: Arc<AtomicBool>,
    link: u64,
}

/// Why the driver is winding down: the client asked to close (and waits for the answer)
/// or dropped its end.
enum Closing {
    Asked(oneshot::Sender<()>),
    Dropped,
}

impl Driver {
    async fn run(mut self) {
        let mut inner_open = true;
        let mut closing: Option<Closing> = None;
        loop {
            self.flush_due(Instant::now());
            if !inner_open && self.down.is_empty() {
                self.deliver = None;
            }
            if closing.is_some() && self.up.is_empty() {
                break;
            }
            let next_due =
                [self.up.next_due(), self.deliver.as_ref().and_then(|_| self.down.next_due())]
                    .into_iter()
                    .flatten()
                    .min();
            // A disabled branch's future is still built, so it needs some deadline.
            let wake = next_due.unwrap_or_else(|| later(Instant::now(), FAR_FUTURE));
            tokio::select! {
                () = tokio::time::sleep_until(wake), if next_due.is_some() => {}
                command = self.ops.recv(), if closing.is_none() => match command {
                    Some(DriverOp::Send { frame, at }) => {
                        if inner_open && !self.control.is_cut() {
                            self.up.admit(at, frame);
                        }
                    }
                    Some(DriverOp::Subscribe { group, reply }) => {
                        let _ = reply.send(self.inner.subscribe(group).await);
                    }
                    Some(DriverOp::Close { reply }) => closing = Some(Closing::Asked(reply)),
                    None => closing = Some(Closing::Dropped),
                },
                received = self.inner.recv(), if inner_open && closing.is_none() => match received {
                    Ok(frame) => {
                        if !self.control.is_cut() {
                            self.down.admit(Instant::now(), frame);
                        }
                    }
                    Err(error) => {
                        tracing::debug!(link = self.link, %error, "inner link closed");
                        inner_open = false;
                        self.dead.store(true, Ordering::Release);
                        self.up.queue.clear();
                    }
                },
            }
            if closing.is_some() {
                // Nobody reads any more.
                self.deliver = None;
                self.down.queue.clear();
            }
        }
        self.inner.close().await;
        tracing::debug!(link = self.link, "conditioned link closed");
        if let Some(Closing::Asked(reply)) = closing {
            let _ = reply.send(());
        }
    }

    /// Hands over every frame due by `now`, in due order, unless the link is cut.
    fn flush_due(&mut self, now: Instant) {
        let cut = self.control.is_cut();
        while let Some(frame) = self.up.pop_due(now) {
            if cut || self.dead.load(Ordering::Acquire) {
                continue;
            }
            if let Err(error) = self.inner.send(frame) {
                tracing::debug!(link = self.link, %error, "inner send failed; the link is gone");
                self.dead.store(true, Ordering::Release);
            }
        }
        while let Some(frame) = self.down.pop_due(now) {
            if cut {
                continue;
            }
            if let Some(deliver) = &self.deliver {
                // Fails only if the client was dropped; the command channel tells us that.
                let _ = deliver.send(frame);
            }
        }
    }
}

/// Further than any test runs; what absurdly long delays are capped at.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `at + by`, capped instead of overflowing on absurd durations.
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by.min(FAR_FUTURE)).unwrap_or(at)
}

/// SplitMix64's finaliser: spreads related seeds (link 0, 1, 2…) far apart.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
