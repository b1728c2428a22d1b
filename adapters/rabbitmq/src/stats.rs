//! Counters of what an endpoint carried, refused and recovered from.
//!
//! Anything a peer or the broker sends that the transport will not deliver is dropped, logged
//! (thinned out, see `amqp::worth_logging`) and counted here, so the counts tell the full story
//! when the log does not.

use std::sync::atomic::{AtomicU64, Ordering};

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
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) dropped_link_down: AtomicU64,
    pub(crate) dropped_buffer_full: AtomicU64,
    pub(crate) lost_in_flight: AtomicU64,
    pub(crate) refused_no_reply_to: AtomicU64,
    pub(crate) refused_bad_reply_to: AtomicU64,
    pub(crate) refused_oversized: AtomicU64,
    pub(crate) refused_retired: AtomicU64,
    pub(crate) refused_unknown: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) returned: AtomicU64,
    pub(crate) nacked: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) refused_forged: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

/// Adds one and returns the new count (for `amqp::worth_logging`).
pub(crate) fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

impl Counters {
    pub(crate) fn snapshot(&self) -> AmqpStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AmqpStats {
            published: get(&self.published),
            delivered: get(&self.delivered),
            dropped_link_down: get(&self.dropped_link_down),
            dropped_buffer_full: get(&self.dropped_buffer_full),
            lost_in_flight: get(&self.lost_in_flight),
            refused_no_reply_to: get(&self.refused_no_reply_to),
            refused_bad_reply_to: get(&self.refused_bad_reply_to),
            refused_oversized: get(&self.refused_oversized),
            refused_retired: get(&self.refused_retired),
            refused_unknown: get(&self.refused_unknown),
            filtered: get(&self.filtered),
            returned: get(&self.returned),
            nacked: get(&self.nacked),
            dead_lettered: get(&self.dead_lettered),
            refused_forged: get(&self.refused_forged),
            reconnects: get(&self.reconnects),
        }
    }
}
