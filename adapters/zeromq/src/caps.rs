//! The connection caps of a server endpoint: how many client connections it relays at once,
//! in all ([`ZmqOptions::max_connections`]) and from one IP address
//! ([`ZmqOptions::max_connections_per_address`]).
//!
//! The accept loop asks for a [`Slot`] for every connection it accepts, before a byte is
//! relayed; a connection that gets none is closed at once. The slot then lives exactly as
//! long as the relay of that connection: it is dropped, and its place freed, when the relay
//! ends, whichever way (client close, server disconnect, guard cut, stall, handshake
//! timeout, endpoint dropped, runtime shut down).
//!
//! One mutex holds both counts, so a connection is admitted against both caps at once and
//! the per-address table only ever holds addresses with a live connection (at most
//! `max_connections` entries).
//!
//! [`ZmqOptions::max_connections`]: crate::ZmqOptions::max_connections
//! [`ZmqOptions::max_connections_per_address`]: crate::ZmqOptions::max_connections_per_address

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use pong_transport_support::lock;

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections` connections were being relayed already.
    Total,
    /// `max_connections_per_address` connections from its address were being relayed already.
    PerAddress,
}

/// The caps and what counts against them.
#[derive(Debug)]
pub(crate) struct Caps {
    max_total: usize,
    max_per_address: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Caps {
    /// Caps of `max_total` connections in all and `max_per_address` from one address (both
    /// at least 1; the options are normalized before they get here).
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            counts: Mutex::new(Counts::default()),
        })
    }

    /// A place for one connection from `address` (`None` for one that has no IP address,
    /// such as an ipc connection: it counts against the total only), or why there is none.
    pub(crate) fn try_admit(self: &Arc<Self>, address: Option<IpAddr>) -> Result<Slot, Refused> {
        // An IPv4 client of a dual-stack listener shows up as ::ffff:a.b.c.d; it is the same
        // address as a.b.c.d.
        let address = address.map(|a| a.to_canonical());
        let mut counts = lock(&self.counts);
        if let Some(address) = address
            && counts.by_address.get(&address).copied().unwrap_or(0) >= self.max_per_address
        {
            return Err(Refused::PerAddress);
        }
        if counts.total >= self.max_total {
            return Err(Refused::Total);
        }
        counts.total += 1;
        if let Some(address) = address {
            *counts.by_address.entry(address).or_insert(0) += 1;
        }
        Ok(Slot { caps: Arc::clone(self), address })
    }

    /// Connections holding a slot now.
    pub(crate) fn current(&self) -> usize {
        lock(&self.counts).total
    }
}

/// One connection's place under the caps, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    caps: Arc<Caps>,
    address: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.caps.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(address) = self.address
            && let Entry::Occupied(mut entry) = counts.by_address.entry(address)
        {
            if *entry.get() <= 1 {
                entry.remove();
            } else {
                *entry.get_mut() -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn one_address_is_capped_and_others_are_not() {
        let caps = Caps::new(10, 2);
        let a1 = caps.try_admit(ip("10.0.0.1")).unwrap();
        let _a2 = caps.try_admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.try_admit(ip("10.0.0.1")).unwrap_err(), Refused::PerAddress);
        // The IPv4-mapped form is the same address.
        assert_eq!(caps.try_admit(ip("::ffff:10.0.0.1")).unwrap_err(), Refused::PerAddress);
        let _b = caps.try_admit(ip("10.0.0.2")).unwrap();
        assert_eq!(caps.current(), 3);
        drop(a1);
        let _a3 = caps.try_admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.current(), 3);
    }

    #[test]
    fn the_total_counts_every_connection_and_ipc_only_there() {
        let caps = Caps::new(3, 1);
        let ipc1 = caps.try_admit(None).unwrap();
        let _ipc2 = caps.try_admit(None).unwrap();
        let _a = caps.try_admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.try_admit(None).unwrap_err(), Refused::Total);
        assert_eq!(caps.try_admit(ip("10.0.0.2")).unwrap_err(), Refused::Total);
        // An address at its own cap is refused for that, even when the server is full.
        assert_eq!(caps.try_admit(ip("10.0.0.1")).unwrap_err(), Refused::PerAddress);
        drop(ipc1);
        let _b = caps.try_admit(ip("10.0.0.2")).unwrap();
        assert_eq!(caps.current(), 3);
    }

    #[test]
    fn every_slot_given_back_leaves_nothing_behind() {
        let caps = Caps::new(100, 5);
        let slots: Vec<_> = (0..50)
            .map(|i| caps.try_admit(ip(&format!("10.0.0.{}", i % 10))).unwrap())
            .chain((0..5).map(|_| caps.try_admit(None).unwrap()))
            .collect();
        assert_eq!(caps.current(), 55);
        drop(slots);
        assert_eq!(caps.current(), 0);
        assert!(lock(&caps.counts).by_address.is_empty());
    }
}
