//! Counters of what an endpoint carried, refused and recovered from.
//!
//! Anything a peer or the broker sends that the transport will not deliver is dropped, logged
//! (thinned out, see `amqp::worth_logging`) and counted here, so the counts tell the full story
//! when the log does not.

use pong_transport_support::Counter;

/// A snapshot of an endpoint's counters (see [`AmqpServer::stats`](crate::AmqpServer::stats)
/// and [`AmqpClient::stats`](crate::AmqpClient::stats)). Fields that do not apply to one
/// side stay 0 there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AmqpStats {
    /// Frames (and control messages) handed to the broker.
    pub published: u64,
    /// Frames delivered to `recv`.
    pub delivered: u64,
    /// Frames refused by `send`/`publish` because the broker connection was down (server).
    pub dropped_link_down: u64,
    /// Frames refused by `send`/`publish` because the send buffer was full.
    pub dropped_buffer_full: u64,
    /// Frames queued for the broker that a lost connection took with it.
    pub lost_in_flight: u64,
    /// Inbound messages without a `reply_to` (server).
    pub refused_no_reply_to: u64,
    /// Inbound messages whose `reply_to` is not a broker-named queue (server).
    pub refused_bad_reply_to: u64,
    /// Inbound frames longer than `max_frame_len`.
    pub refused_oversized: u64,
    /// Inbound frames from a connection that is already gone (server).
    pub refused_retired: u64,
    /// Inbound messages of an unknown type, exchange or routing key.
    pub refused_unknown: u64,
    /// Group publishes dropped because they were made while the server had not joined this
    /// connection to the group (before `join_group`, or after `leave_group`) (client).
    pub filtered: u64,
    /// Mandatory messages the broker returned (their queue was gone).
    pub returned: u64,
    /// Messages the broker refused in confirm mode (`basic.nack`).
    pub nacked: u64,
    /// Frames a client queue dead-lettered (it overflowed or they expired) (server).
    pub dead_lettered: u64,
    /// Dead letters that did not carry this server's verified `user_id` (server).
    pub refused_forged: u64,
    /// Times the broker connection was re-established (server).
    pub reconnects: u64,
}

/// The live counters behind [`AmqpStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: Counter,
    pub(crate) delivered: Counter,
    pub(crate) dropped_link_down: Counter,
    pub(crate) dropped_buffer_full: Counter,
    pub(crate) lost_in_flight: Counter,
    pub(crate) refused_no_reply_to: Counter,
    pub(crate) refused_bad_reply_to: Counter,
    pub(crate) refused_oversized: Counter,
    pub(crate) refused_retired: Counter,
    pub(crate) refused_unknown: Counter,
    pub(crate) filtered: Counter,
    pub(crate) returned: Counter,
    pub(crate) nacked: Counter,
    pub(crate) dead_lettered: Counter,
    pub(crate) refused_forged: Counter,
    pub(crate) reconnects: Counter,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> AmqpStats {
        AmqpStats {
            published: self.published.get(),
            delivered: self.delivered.get(),
            dropped_link_down: self.dropped_link_down.get(),
            dropped_buffer_full: self.dropped_buffer_full.get(),
            lost_in_flight: self.lost_in_flight.get(),
            refused_no_reply_to: self.refused_no_reply_to.get(),
            refused_bad_reply_to: self.refused_bad_reply_to.get(),
            refused_oversized: self.refused_oversized.get(),
            refused_retired: self.refused_retired.get(),
            refused_unknown: self.refused_unknown.get(),
            filtered: self.filtered.get(),
            returned: self.returned.get(),
            nacked: self.nacked.get(),
            dead_lettered: self.dead_lettered.get(),
            refused_forged: self.refused_forged.get(),
            reconnects: self.reconnects.get(),
        }
    }
}
