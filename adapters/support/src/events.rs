//! The server's queue of what happened at its end: frames, peers connecting and going, and
//! a transport failure, turned into the port's [`Incoming`] by [`EventReceiver::recv`].
//!
//! The queue itself is unbounded so that the tasks feeding it (a socket pump, a client's
//! `send`, a synchronous `disconnect`) never wait; what bounds it is credit. Each frame
//! holds a [`Credit`] taken from its peer's [`Credits`] (or the endpoint's), released only
//! when `recv` hands the frame out. A peer that runs out of credit has more frames waiting
//! than the server has read: the adapter disconnects it (or, for a broker, stops taking
//! deliveries), so memory stays bounded without a slow server stalling anyone.

use std::sync::Arc;

use pong_ports::{Frame, Incoming, Origin, PeerId, TransportError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Room for frames waiting to be received, one permit per frame.
#[derive(Debug, Clone)]
pub struct Credits(Arc<Semaphore>);

/// One frame's place in a [`Credits`], given back when the frame is received.
#[derive(Debug)]
pub struct Credit {
    /// Held, never read: dropping it gives the place back.
    _permit: OwnedSemaphorePermit,
}

impl Credits {
    /// Room for `frames` frames.
    #[must_use]
    pub fn new(frames: usize) -> Self {
        Self(Arc::new(Semaphore::new(frames)))
    }

    /// A place, or `None` if every place is taken (the peer is over its bound).
    #[must_use]
    pub fn try_take(&self) -> Option<Credit> {
        Arc::clone(&self.0).try_acquire_owned().ok().map(|permit| Credit { _permit: permit })
    }

    /// Waits for a place. Cancel-safe: nothing is taken unless it returns.
    pub async fn take(&self) -> Credit {
        match Arc::clone(&self.0).acquire_owned().await {
            Ok(permit) => Credit { _permit: permit },
            // The semaphore is never closed; this arm only keeps the signature honest.
            Err(_) => std::future::pending().await,
        }
    }
}

#[derive(Debug)]
enum Event {
    Frame { from: PeerId, frame: Frame, _credit: Credit },
    Connected(PeerId, Origin),
    Gone { peer: PeerId, reason: String },
    Failed(String),
}

/// A new event queue: the sending half for the endpoint's tasks, the receiving half for
/// its `recv`.
#[must_use]
pub fn events() -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (EventSender(tx), EventReceiver { rx, failed: None })
}

/// Queues events for the endpoint's `recv`; cheap to clone. Sending never waits, and does
/// nothing once the endpoint is gone.
#[derive(Debug, Clone)]
pub struct EventSender(mpsc::UnboundedSender<Event>);

impl EventSender {
    /// A frame from a peer, holding its credit until received.
    pub fn frame(&self, from: PeerId, frame: Frame, credit: Credit) {
        let _ = self.0.send(Event::Frame { from, frame, _credit: credit });
    }

    /// A new peer, from `origin`; queue it before any frame of that peer.
    pub fn connected(&self, peer: PeerId, origin: Origin) {
        let _ = self.0.send(Event::Connected(peer, origin));
    }

    /// A peer is gone; whoever removes a peer reports it, so this goes out once per peer.
    pub fn gone(&self, peer: PeerId, reason: impl Into<String>) {
        let _ = self.0.send(Event::Gone { peer, reason: reason.into() });
    }

    /// The transport cannot go on: `recv` fails with this from now on.
    pub fn failed(&self, reason: impl Into<String>) {
        let _ = self.0.send(Event::Failed(reason.into()));
    }
}

/// The endpoint's end of the event queue.
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Event>,
    /// Set by a failure event; every later `recv` repeats it.
    failed: Option<String>,
}

impl EventReceiver {
    /// The next event, as the port's [`Incoming`]. Cancel-safe.
    ///
    /// # Errors
    /// [`TransportError::Other`] once a failure was queued; [`TransportError::Closed`] if
    /// every sender is gone.
    pub async fn recv(&mut self) -> Result<Incoming, TransportError> {
        if let Some(reason) = &self.failed {
            return Err(TransportError::Other(reason.clone()));
        }
        Ok(match self.rx.recv().await.ok_or(TransportError::Closed)? {
            Event::Frame { from, frame, _credit } => Incoming::Frame { from, frame },
            Event::Connected(peer, origin) => Incoming::Connected { peer, origin },
            Event::Gone { peer, reason } => Incoming::Gone { peer, reason },
            Event::Failed(reason) => {
                self.failed = Some(reason.clone());
                return Err(TransportError::Other(reason));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credit_comes_back_when_the_frame_is_received() {
        let (tx, mut rx) = events();
        let credits = Credits::new(1);
        tx.connected(PeerId(1), Origin::Link);
        tx.frame(PeerId(1), Frame::from_static(b"a"), credits.try_take().unwrap());
        assert!(credits.try_take().is_none(), "one frame waiting uses the only place");
        assert_eq!(
            rx.recv().await,
            Ok(Incoming::Connected { peer: PeerId(1), origin: Origin::Link })
        );
        assert_eq!(
            rx.recv().await,
            Ok(Incoming::Frame { from: PeerId(1), frame: Frame::from_static(b"a") })
        );
        assert!(credits.try_take().is_some());
        let _credit = credits.take().await;
        tx.gone(PeerId(1), "bye");
        assert_eq!(rx.recv().await, Ok(Incoming::Gone { peer: PeerId(1), reason: "bye".into() }));
    }

    #[tokio::test]
    async fn a_failure_sticks() {
        let (tx, mut rx) = events();
        tx.failed("socket died");
        tx.connected(PeerId(1), Origin::Link);
        for _ in 0..2 {
            assert_eq!(rx.recv().await, Err(TransportError::Other("socket died".into())));
        }
        drop(tx);
        let (tx, mut rx) = events();
        drop(tx);
        assert_eq!(rx.recv().await, Err(TransportError::Closed));
    }
}
