//! The two halves of a broker connection that both ends run: a [`Publisher`] that drains a
//! bounded queue of [`Outgoing`] messages onto one channel, and a [`Pump`] that takes
//! deliveries from one consumer and acknowledges them in batches.
//!
//! # Why one publishing channel
//! RabbitMQ keeps the order of messages published on one channel towards one queue,
//! whatever exchange they go through. Rule 1 of the port (direct sends and group publishes
//! reach a client in the order sent, interleaved) and the in-band control messages (a
//! `leave` must overtake no publish) both rest on that, so every message an endpoint sends
//! goes through its single [`Publisher`].
//!
//! # Why pipelined
//! `basic_publish` resolves once lapin's socket thread has written the frame. Awaiting each
//! one before the next caps a publisher at one write per thread hand-off; starting each
//! publish as soon as it is queued (its first poll hands the frame to lapin, in call order)
//! and collecting the completions in order lets the socket thread write many at once: 5 to 8
//! times the rate here (`examples/amqp_bench.rs`, numbers in `docs/transports/rabbitmq.md`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use lapin::message::{BasicReturnMessage, Delivery};
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use lapin::types::{DeliveryTag, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Consumer, PublisherConfirm};

use crate::amqp::worth_logging;
use crate::stats::Counters;

/// Publishes started but not yet written by lapin's socket thread.
const WRITE_WINDOW: usize = 256;

/// Publishes written but not yet confirmed by the broker (confirm mode). When the broker
/// stops confirming, the publisher stops taking work, so the send buffer fills and sends fail
/// instead of memory growing.
const CONFIRM_WINDOW: usize = 4096;

/// How often returned messages are collected when confirms are off (lapin only hands them
/// over on request then).
const RETURN_POLL: Duration = Duration::from_millis(50);

/// One message to publish.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) exchange: ShortString,
    pub(crate) routing_key: ShortString,
    pub(crate) body: Bytes,
    pub(crate) properties: BasicProperties,
    /// Ask the broker to return the message if it matches no queue.
    pub(crate) mandatory: bool,
}

type Publishing = Pin<Box<dyn Future<Output = lapin::Result<PublisherConfirm>> + Send>>;

/// What woke the publisher up.
enum Wake {
    Written(lapin::Result<PublisherConfirm>),
    Confirmed(lapin::Result<Confirmation>),
    Message(Outgoing),
    Drained,
    PollReturns,
}

/// Drains [`Outgoing`] messages onto a channel, in order, and reports what the broker
/// returned or refused.
pub(crate) struct Publisher<'a, R> {
    channel: Channel,
    confirms: bool,
    counters: &'a Counters,
    on_return: R,
}

impl<'a, R: FnMut(&BasicReturnMessage)> Publisher<'a, R> {
    /// `channel` must already be in confirm mode if `confirms` is set.
    pub(crate) fn new(
        channel: Channel,
        confirms: bool,
        counters: &'a Counters,
        on_return: R,
    ) -> Self {
        Self { channel, confirms, counters, on_return }
    }

    /// Publishes what `queue` holds until every sender of it is gone and all is written
    /// (and confirmed, in confirm mode): `Ok`. A channel or connection failure ends it
    /// early: `Err`, the messages not yet written being counted as lost.
    ///
    /// Dropping it part-way is safe: every message it took was handed to lapin at once (in
    /// order), so nothing taken is lost by the drop itself; only the write and confirm
    /// outcomes are no longer observed.
    pub(crate) async fn run(
        &mut self,
        queue: &mut tokio::sync::mpsc::Receiver<Outgoing>,
    ) -> Result<(), lapin::Error> {
        let mut writing: VecDeque<Publishing> = VecDeque::new();
        let mut confirming: FuturesOrdered<PublisherConfirm> = FuturesOrdered::new();
        let mut poll_returns = tokio::time::interval(RETURN_POLL);
        poll_returns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            if !open && writing.is_empty() && confirming.is_empty() {
                self.collect_returns().await?;
                return Ok(());
            }
            let taking = open && writing.len() < WRITE_WINDOW && confirming.len() < CONFIRM_WINDOW;
            // A hand-written poll rather than select!, so the arms can share `writing`.
            let wake = std::future::poll_fn(|cx: &mut Context<'_>| {
                if let Some(front) = writing.front_mut()
                    && let Poll::Ready(result) = front.as_mut().poll(cx)
                {
                    return Poll::Ready(Wake::Written(result));
                }
                if !confirming.is_empty()
                    && let Poll::Ready(Some(result)) = confirming.poll_next_unpin(cx)
                {
                    return Poll::Ready(Wake::Confirmed(result));
                }
                if taking {
                    match queue.poll_recv(cx) {
                        Poll::Ready(Some(message)) => return Poll::Ready(Wake::Message(message)),
                        Poll::Ready(None) => return Poll::Ready(Wake::Drained),
                        Poll::Pending => {}
                    }
                }
                if !self.confirms && poll_returns.poll_tick(cx).is_ready() {
                    return Poll::Ready(Wake::PollReturns);
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Written(result) => {
                    writing.pop_front();
                    match result {
                        Ok(confirm) => {
                            self.counters.published.bump();
                            if self.confirms {
                                confirming.push_back(confirm);
                            }
                        }
                        Err(error) => {
                            self.lost(writing.len() + 1);
                            return Err(error);
                        }
                    }
                }
                Wake::Confirmed(result) => match result {
                    Ok(Confirmation::Ack(returned)) => {
                        if let Some(message) = returned {
                            self.returned(&message);
                        }
                    }
                    Ok(Confirmation::Nack(returned)) => {
                        let count = self.counters.nacked.bump();
                        if worth_logging(count) {
                            tracing::warn!(count, "the broker refused a frame (basic.nack)");
                        }
                        if let Some(message) = returned {
                            self.returned(&message);
                        }
                    }
                    Ok(Confirmation::NotRequested) => {}
                    Err(error) => {
                        self.lost(writing.len());
                        return Err(error);
                    }
                },
                Wake::Message(message) => writing.push_back(self.start(message)),
                Wake::Drained => open = false,
                Wake::PollReturns => self.collect_returns().await?,
            }
        }
    }

    /// Starts a publish: its first poll hands the frames to lapin, so frames reach the
    /// socket in the order `start` is called. The rest (the write acknowledgement) is
    /// awaited later, in order.
    fn start(&self, message: Outgoing) -> Publishing {
        let channel = self.channel.clone();
        let mut publishing: Publishing = Box::pin(async move {
            let Outgoing { exchange, routing_key, body, properties, mandatory } = message;
            let options = BasicPublishOptions { mandatory, immediate: false };
            channel.basic_publish(exchange, routing_key, options, &body, properties).await
        });
        match publishing.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => Box::pin(std::future::ready(result)),
            // Polled again with a real waker once it is at the front.
            Poll::Pending => publishing,
        }
    }

    /// Without confirms lapin keeps returned messages until asked.
    async fn collect_returns(&mut self) -> Result<(), lapin::Error> {
        if !self.confirms {
            for message in self.channel.wait_for_confirms().await? {
                self.returned(&message);
            }
        }
        Ok(())
    }

    fn returned(&mut self, message: &BasicReturnMessage) {
        self.counters.returned.bump();
        tracing::debug!(
            reply_code = message.reply_code,
            reply_text = %message.reply_text,
            routing_key = %message.delivery.routing_key,
            "the broker returned a message"
        );
        (self.on_return)(message);
    }

    fn lost(&self, frames: usize) {
        self.counters.lost_in_flight.add(frames as u64);
    }
}

/// Takes deliveries from one consumer and acknowledges them with `multiple` acks: one per
/// batch while deliveries keep coming, and at once whenever the consumer has nothing ready
/// (so an idle connection has nothing unacknowledged and a busy one sends few acks).
///
/// The consumer's channel must carry only this consumer: a `multiple` ack covers every
/// earlier delivery tag of the channel.
pub(crate) struct Pump {
    consumer: Consumer,
    channel: Channel,
    ready: Option<Delivery>,
    ended: bool,
    last_handled: Option<DeliveryTag>,
    unacked: usize,
    batch: usize,
}

impl Pump {
    /// `prefetch` is the channel's `basic.qos`; acks go out at least every half of it so the
    /// broker never stalls waiting for them.
    pub(crate) fn new(consumer: Consumer, channel: Channel, prefetch: u16) -> Self {
        Self {
            consumer,
            channel,
            ready: None,
            ended: false,
            last_handled: None,
            unacked: 0,
            batch: usize::from(prefetch / 2).max(1),
        }
    }

    /// The next delivery, or `None` once the consumer is cancelled or its channel closed.
    /// Every delivery returned must be passed to [`handled`](Self::handled) once dealt with.
    pub(crate) async fn next(&mut self) -> Result<Option<Delivery>, lapin::Error> {
        if self.ready.is_none() && !self.ended {
            match self.consumer.next().now_or_never() {
                Some(Some(item)) => self.ready = Some(item?),
                Some(None) => self.ended = true,
                None => {}
            }
        }
        if let Some(delivery) = self.ready.take() {
            if self.unacked >= self.batch {
                self.flush().await?;
            }
            return Ok(Some(delivery));
        }
        self.flush().await?;
        if self.ended {
            return Ok(None);
        }
        match self.consumer.next().await {
            Some(item) => item.map(Some),
            None => {
                self.ended = true;
                Ok(None)
            }
        }
    }

    /// Marks a delivery as dealt with (delivered, or dropped on purpose).
    pub(crate) fn handled(&mut self, tag: DeliveryTag) {
        self.last_handled = Some(tag);
        self.unacked += 1;
    }

    async fn flush(&mut self) -> Result<(), lapin::Error> {
        if let Some(tag) = self.last_handled.take() {
            self.unacked = 0;
            self.channel.basic_ack(tag, BasicAckOptions { multiple: true }).await?;
        }
        Ok(())
    }
}
