//! What the Transport adapters of Distributed Pong would otherwise each write on their own.
//!
//! The point-to-point transports (memory, WebSocket, ZeroMQ) keep the server's view of its
//! peers themselves; the RabbitMQ transport leaves groups to the broker but shares the rest:
//!
//! - [`peers`]: the table of connected peers and match groups ([`PeerTable`]): a direct
//!   send into one peer's bounded queue and the fan-out of a group publish, never waiting
//!   (rule 7 of [`pong_ports::transport`]); with [`PeerServer`] an endpoint gets `send`,
//!   `publish` and the group calls from three answers about itself.
//! - [`events`]: the server's queue of what happened ([`EventSender`], [`EventReceiver`])
//!   and the per-peer upstream credit ([`Credits`]) that bounds it: a frame carries its
//!   [`Credit`] until `recv` hands it out.
//! - [`backoff`]: capped exponential [`Backoff`] and the client's [`ReconnectPolicy`], used
//!   by the runtime, the Bevy bridge and the RabbitMQ server's reconnects.
//! - [`check_frame_len`] and [`lock`], the two lines every endpoint starts with, and
//!   [`Counter`], what an endpoint's statistics are made of.
//!
//! Nothing here looks inside a frame or knows a wire protocol.

pub mod backoff;
pub mod events;
pub mod peers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pong_ports::{Frame, TransportError};

pub use backoff::{Backoff, ReconnectPolicy, Retry};
pub use events::{Credit, Credits, EventReceiver, EventSender, events};
pub use peers::{Outbox, PeerServer, PeerTable, Refusal, sorted};

/// Refuses a frame longer than `max` (rule 4): what `send` and `publish` check first.
///
/// # Errors
/// [`TransportError::FrameTooLarge`] with both lengths.
pub fn check_frame_len(frame: &Frame, max: usize) -> Result<(), TransportError> {
    if frame.len() > max {
        return Err(TransportError::FrameTooLarge { len: frame.len(), max });
    }
    Ok(())
}

/// Locks a mutex, ignoring poisoning. Every critical section of the adapters leaves its
/// data consistent before anything that could panic, so a panic elsewhere must not take
/// the endpoint down with it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One statistic of an endpoint, counted from any task and read for a snapshot. Relaxed:
/// a count is reported, it orders nothing.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one and returns the new count (to log only now and then).
    pub fn bump(&self) -> u64 {
        self.add(1)
    }

    /// Adds `n` and returns the new count.
    pub fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, Ordering::Relaxed) + n
    }

    /// The count.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_up_to_the_limit_pass() {
        assert_eq!(check_frame_len(&Frame::from_static(b"abc"), 3), Ok(()));
        assert_eq!(
            check_frame_len(&Frame::from_static(b"abcd"), 3),
            Err(TransportError::FrameTooLarge { len: 4, max: 3 })
        );
    }

    #[test]
    fn a_poisoned_lock_still_opens() {
        let mutex = std::sync::Arc::new(Mutex::new(1));
        let poisoner = std::sync::Arc::clone(&mutex);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("poison it");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 1);
    }
}
