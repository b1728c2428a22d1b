//! The server's table of connected peers and match groups, for transports that fan out a
//! group publish themselves.
//!
//! Each peer has one bounded queue towards it (its [`Outbox`]); direct sends and group
//! publishes go through that same queue, so a peer sees them in the order they were made
//! (rule 1), and both only `try_send` (rule 7). The table says why a frame could not be
//! queued ([`Refusal`]); what to do about it (disconnect the peer, report it gone, count
//! it) is the adapter's.

use std::collections::{BTreeSet, HashMap};
use std::sync::MutexGuard;

use pong_ports::{Frame, MatchId, PeerId, TransportError};
use tokio::sync::mpsc;

use crate::check_frame_len;

/// A peer's entry in a [`PeerTable`]: whatever the adapter keeps per peer, with the queue
/// frames for it go into.
pub trait Outbox {
    /// The bounded queue of frames towards this peer.
    fn outbox(&self) -> &mpsc::Sender<Frame>;

    /// True if frames for this peer are to vanish without an error (a connection cut
    /// silently, for tests of heartbeats).
    fn is_severed(&self) -> bool {
        false
    }
}

/// The shared state of a server endpoint that keeps its peers in a [`PeerTable`]: with
/// these three answers it gets `send`, `publish` and the group calls of
/// [`ServerTransport`](pong_ports::ServerTransport), written once here.
pub trait PeerServer {
    /// What the endpoint keeps under its lock, the table among it.
    type State: AsMut<PeerTable<Self::Entry>>;
    /// A peer's entry.
    type Entry: Outbox;

    /// Locks the state.
    fn state(&self) -> MutexGuard<'_, Self::State>;

    /// Longest frame `send` and `publish` accept.
    fn max_frame_len(&self) -> usize;

    /// A frame could not be queued for `peer`: disconnect it as the transport does (a full
    /// queue means it cannot keep up), and return what `send` reports.
    fn refused(&self, state: &mut Self::State, peer: PeerId, refusal: Refusal) -> TransportError;

    /// [`ServerTransport::send`](pong_ports::ServerTransport::send).
    ///
    /// # Errors
    /// As the port says: too large, unknown peer, or back-pressure.
    fn send_to(&self, to: PeerId, frame: Frame) -> Result<(), TransportError> {
        check_frame_len(&frame, self.max_frame_len())?;
        let mut state = self.state();
        let queued = state.as_mut().send(to, frame);
        queued.map_err(|refusal| self.refused(&mut state, to, refusal))
    }

    /// [`ServerTransport::publish`](pong_ports::ServerTransport::publish): a member that
    /// refuses the frame is disconnected; the others still get it.
    ///
    /// # Errors
    /// A frame that is too large.
    fn publish_to(&self, group: MatchId, frame: &Frame) -> Result<(), TransportError> {
        check_frame_len(frame, self.max_frame_len())?;
        let mut state = self.state();
        for (peer, refusal) in state.as_mut().publish(group, frame) {
            self.refused(&mut state, peer, refusal);
        }
        Ok(())
    }

    /// [`ServerTransport::join_group`](pong_ports::ServerTransport::join_group).
    ///
    /// # Errors
    /// [`TransportError::UnknownPeer`] if the peer is gone.
    fn join(&self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        self.state().as_mut().join(peer, group)
    }

    /// [`ServerTransport::leave_group`](pong_ports::ServerTransport::leave_group).
    fn leave(&self, peer: PeerId, group: MatchId) {
        self.state().as_mut().leave(peer, group);
    }

    /// The peers in id order, for the endpoint's `peers()`.
    fn peer_ids(&self) -> Vec<PeerId> {
        self.state().as_mut().ids()
    }
}

/// Why a frame was not queued for a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such peer in the table.
    Unknown,
    /// Its queue is full: it cannot keep up and must be disconnected.
    Full,
    /// Its queue has no reader any more: whatever drained it has ended.
    Closed,
}

impl Refusal {
    /// The error `send` returns for it.
    #[must_use]
    pub fn into_error(self, peer: PeerId) -> TransportError {
        match self {
            Self::Full => TransportError::Backpressure(peer),
            Self::Unknown | Self::Closed => TransportError::UnknownPeer(peer),
        }
    }
}

/// Peers by [`PeerId`], and the members of each match group.
#[derive(Debug)]
pub struct PeerTable<E> {
    peers: HashMap<PeerId, Member<E>>,
    /// Ordered, so a publish reaches members in id order whatever the hasher.
    groups: HashMap<MatchId, BTreeSet<PeerId>>,
}

#[derive(Debug)]
struct Member<E> {
    entry: E,
    /// The groups it is in, so removing it does not scan every group.
    groups: Vec<MatchId>,
}

impl<E> Default for PeerTable<E> {
    fn default() -> Self {
        Self { peers: HashMap::new(), groups: HashMap::new() }
    }
}

impl<E: Outbox> PeerTable<E> {
    /// Adds a peer (in no group yet), replacing any entry under the same id.
    pub fn insert(&mut self, peer: PeerId, entry: E) {
        if let Some(old) = self.peers.insert(peer, Member { entry, groups: Vec::new() }) {
            self.forget_groups(peer, &old.groups);
        }
    }

    /// The entry of a peer.
    #[must_use]
    pub fn get(&self, peer: PeerId) -> Option<&E> {
        self.peers.get(&peer).map(|member| &member.entry)
    }

    /// True if the peer is in the table.
    #[must_use]
    pub fn contains(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// How many peers there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True with no peer.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// How many groups have members.
    #[must_use]
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Every peer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &E)> {
        self.peers.iter().map(|(peer, member)| (*peer, &member.entry))
    }

    /// The peers in id order (for tests and diagnostics).
    #[must_use]
    pub fn ids(&self) -> Vec<PeerId> {
        sorted(self.peers.keys().copied())
    }

    /// Takes a peer out of the table and out of its groups. Dropping the entry drops its
    /// queue's sender, which is how its writer learns that nothing more is coming.
    pub fn remove(&mut self, peer: PeerId) -> Option<E> {
        let member = self.peers.remove(&peer)?;
        self.forget_groups(peer, &member.groups);
        Some(member.entry)
    }

    /// Empties the table (the endpoint is going away), handing back every entry.
    pub fn drain(&mut self) -> impl Iterator<Item = (PeerId, E)> + '_ {
        self.groups.clear();
        self.peers.drain().map(|(peer, member)| (peer, member.entry))
    }

    /// Adds a peer to a group; joining twice is fine.
    ///
    /// # Errors
    /// [`TransportError::UnknownPeer`] if the peer is not in the table.
    pub fn join(&mut self, peer: PeerId, group: MatchId) -> Result<(), TransportError> {
        let member = self.peers.get_mut(&peer).ok_or(TransportError::UnknownPeer(peer))?;
        if !member.groups.contains(&group) {
            member.groups.push(group);
        }
        self.groups.entry(group).or_default().insert(peer);
        Ok(())
    }

    /// Removes a peer from a group; leaving a group one is not in is fine.
    pub fn leave(&mut self, peer: PeerId, group: MatchId) {
        if let Some(member) = self.peers.get_mut(&peer) {
            member.groups.retain(|g| *g != group);
        }
        self.leave_group(peer, group);
    }

    /// Queues a frame for one peer, never waiting. A severed peer takes it and drops it.
    ///
    /// # Errors
    /// Why it was not queued; the peer is still in the table.
    pub fn send(&self, to: PeerId, frame: Frame) -> Result<(), Refusal> {
        let member = self.peers.get(&to).ok_or(Refusal::Unknown)?;
        push(&member.entry, frame)
    }

    /// Queues a frame for every member of `group`, sharing its buffer. The members that
    /// refused it are returned (empty, and not allocated, when all took it) for the adapter
    /// to disconnect once the loop is over; the others got it all the same.
    #[must_use = "members that refused the frame must be disconnected"]
    pub fn publish(&self, group: MatchId, frame: &Frame) -> Vec<(PeerId, Refusal)> {
        let mut refused = Vec::new();
        let Some(members) = self.groups.get(&group) else { return refused };
        for &peer in members {
            let pushed = match self.peers.get(&peer) {
                Some(member) => push(&member.entry, frame.clone()),
                None => Err(Refusal::Unknown),
            };
            if let Err(refusal) = pushed {
                refused.push((peer, refusal));
            }
        }
        refused
    }

    fn forget_groups(&mut self, peer: PeerId, groups: &[MatchId]) {
        for &group in groups {
            self.leave_group(peer, group);
        }
    }

    fn leave_group(&mut self, peer: PeerId, group: MatchId) {
        if let Some(members) = self.groups.get_mut(&group) {
            members.remove(&peer);
            if members.is_empty() {
                self.groups.remove(&group);
            }
        }
    }
}

fn push<E: Outbox>(entry: &E, frame: Frame) -> Result<(), Refusal> {
    if entry.is_severed() {
        return Ok(());
    }
    entry.outbox().try_send(frame).map_err(|error| match error {
        mpsc::error::TrySendError::Full(_) => Refusal::Full,
        mpsc::error::TrySendError::Closed(_) => Refusal::Closed,
    })
}

/// Peer ids in order, for the `peers()` every endpoint offers its tests.
#[must_use]
pub fn sorted(peers: impl Iterator<Item = PeerId>) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = peers.collect();
    peers.sort_unstable();
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Entry {
        outbox: mpsc::Sender<Frame>,
        severed: bool,
    }

    impl Outbox for Entry {
        fn outbox(&self) -> &mpsc::Sender<Frame> {
            &self.outbox
        }

        fn is_severed(&self) -> bool {
            self.severed
        }
    }

    fn entry(capacity: usize) -> (Entry, mpsc::Receiver<Frame>) {
        let (outbox, rx) = mpsc::channel(capacity);
        (Entry { outbox, severed: false }, rx)
    }

    const MATCH: MatchId = MatchId(7);

    #[test]
    fn a_publish_reaches_members_only_and_reports_who_overflowed() {
        let mut table = PeerTable::default();
        let (a, mut a_rx) = entry(4);
        let (b, mut b_rx) = entry(1);
        let (c, mut c_rx) = entry(4);
        table.insert(PeerId(1), a);
        table.insert(PeerId(2), b);
        table.insert(PeerId(3), c);
        table.join(PeerId(1), MATCH).unwrap();
        table.join(PeerId(2), MATCH).unwrap();
        table.join(PeerId(2), MATCH).unwrap();

        assert!(table.publish(MATCH, &Frame::from_static(b"one")).is_empty());
        let refused = table.publish(MATCH, &Frame::from_static(b"two"));
        assert_eq!(refused, [(PeerId(2), Refusal::Full)]);
        assert_eq!(a_rx.try_recv().unwrap(), "one");
        assert_eq!(a_rx.try_recv().unwrap(), "two");
        assert_eq!(b_rx.try_recv().unwrap(), "one");
        assert!(c_rx.try_recv().is_err(), "not a member");
        assert!(table.publish(MatchId(8), &Frame::from_static(b"x")).is_empty());
    }

    #[test]
    fn removing_a_peer_takes_it_out_of_its_groups() {
        let mut table = PeerTable::default();
        let (a, _a_rx) = entry(4);
        let (b, mut b_rx) = entry(4);
        table.insert(PeerId(1), a);
        table.insert(PeerId(2), b);
        table.join(PeerId(1), MATCH).unwrap();
        table.join(PeerId(2), MATCH).unwrap();
        assert!(table.remove(PeerId(1)).is_some());
        assert!(table.remove(PeerId(1)).is_none());
        assert_eq!(table.join(PeerId(1), MATCH), Err(TransportError::UnknownPeer(PeerId(1))));
        assert!(table.publish(MATCH, &Frame::from_static(b"x")).is_empty());
        assert_eq!(b_rx.try_recv().unwrap(), "x");
        table.leave(PeerId(2), MATCH);
        table.leave(PeerId(2), MATCH);
        assert_eq!(table.group_count(), 0, "an empty group is dropped");
        assert_eq!(table.ids(), [PeerId(2)]);
    }

    #[test]
    fn sends_say_why_they_were_refused() {
        let mut table = PeerTable::default();
        let (a, a_rx) = entry(1);
        table.insert(PeerId(1), a);
        assert_eq!(table.send(PeerId(9), Frame::new()), Err(Refusal::Unknown));
        assert_eq!(table.send(PeerId(1), Frame::new()), Ok(()));
        assert_eq!(table.send(PeerId(1), Frame::new()), Err(Refusal::Full));
        drop(a_rx);
        assert_eq!(table.send(PeerId(1), Frame::new()), Err(Refusal::Closed));
        assert_eq!(Refusal::Full.into_error(PeerId(1)), TransportError::Backpressure(PeerId(1)));
    }

    #[test]
    fn a_severed_peer_swallows_frames() {
        let mut table = PeerTable::default();
        let (mut a, mut a_rx) = entry(1);
        a.severed = true;
        table.insert(PeerId(1), a);
        for _ in 0..3 {
            assert_eq!(table.send(PeerId(1), Frame::new()), Ok(()));
        }
        assert!(a_rx.try_recv().is_err());
    }
}
