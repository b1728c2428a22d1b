//! The page's player ([`Game`]) against a real `ServerCore`, in process, on a virtual clock:
//! what the page does with the browser's events, without a browser. Frames cross at once;
//! each link is numbered as the page numbers its sockets.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use pong_domain::route::{Dest, PeerId};
use pong_domain::server::{ServerCore, Transmit};
use pong_domain::testing::{SECOND, short_matches};
use pong_web::game::{Command, Game, Link};
use pong_web::params::Params;

/// A server and pages, with the links between them.
struct Net {
    now: u64,
    server: ServerCore,
    pages: Vec<Game>,
    /// Page and socket id of each open link.
    links: BTreeMap<PeerId, (usize, u32)>,
    groups: BTreeMap<u32, BTreeSet<PeerId>>,
    next_peer: u64,
    /// Dials that fail (the server cannot be reached).
    unreachable: bool,
}

impl Net {
    fn new(players: u8) -> Net {
        Net {
            now: 10 * SECOND,
            server: ServerCore::new(short_matches(players), [7; 32]),
            pages: Vec::new(),
            links: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_peer: 1,
            unreachable: false,
        }
    }

    fn page(&mut self, query: &[(&str, &str)]) -> usize {
        let params = Params::from_pairs(query.iter().copied()).unwrap();
        self.pages.push(Game::new(params, self.now));
        self.pages.len() - 1
    }

    fn peer_of(&self, page: usize) -> Option<PeerId> {
        self.links.iter().find(|(_, (p, _))| *p == page).map(|(peer, _)| *peer)
    }

    /// Cuts a page's link as a dropped Wi-Fi would: both ends learn it.
    fn cut(&mut self, page: usize) {
        let peer = self.peer_of(page).unwrap();
        let (_, id) = self.links.remove(&peer).unwrap();
        self.server.handle_peer_gone(self.now, peer);
        self.pages[page].on_close(id, self.now, None);
    }

    /// Carries every command and frame until nothing moves.
    fn flush(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.pages.len() {
                for command in self.pages[i].take_commands() {
                    moved = true;
                    match command {
                        Command::Dial(id) if self.unreachable => {
                            self.pages[i].on_close(id, self.now, Some("refused".into()));
                        }
                        Command::Dial(id) => {
                            let peer = PeerId(self.next_peer);
                            self.next_peer += 1;
                            self.links.insert(peer, (i, id));
                            self.pages[i].on_open(id, self.now);
                        }
                        Command::Send(frame) => {
                            let peer = self.peer_of(i).unwrap();
                            self.server.handle_frame(self.now, peer, &frame);
                        }
                        Command::Close => {
                            if let Some(peer) = self.peer_of(i) {
                                self.links.remove(&peer);
                                self.server.handle_peer_gone(self.now, peer);
                            }
                        }
                    }
                }
            }
            let mut buf = Vec::new();
            while let Some(t) = self.server.poll_transmit(&mut buf) {
                moved = true;
                let to: Vec<PeerId> = match t {
                    Transmit::Send(Dest::Peer(p)) => vec![p],
                    Transmit::Send(Dest::Group(g)) => self
                        .groups
                        .get(&g.0)
                        .map(|s| s.iter().copied().collect())
                        .unwrap_or_default(),
                    Transmit::JoinGroup(p, g) => {
                        self.groups.entry(g.0).or_default().insert(p);
                        vec![]
                    }
                    Transmit::LeaveGroup(p, g) => {
                        self.groups.entry(g.0).or_default().remove(&p);
                        vec![]
                    }
                    Transmit::Disconnect(p) => {
                        if let Some((page, id)) = self.links.remove(&p) {
                            self.pages[page].on_close(id, self.now, None);
                        }
                        vec![]
                    }
                };
                for peer in to {
                    if let Some(&(page, id)) = self.links.get(&peer) {
                        self.pages[page].on_frame(id, self.now, &buf);
                    }
                }
            }
            while self.server.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
    }

    /// Runs until `done` or `until` (µs from now).
    fn run(&mut self, until: u64, mut done: impl FnMut(&Net) -> bool) {
        let end = self.now + until;
        self.flush();
        while self.now < end && !done(self) {
            let next = self
                .pages
                .iter()
                .filter_map(Game::next_wake)
                .chain(self.server.poll_timeout())
                .min()
                .unwrap_or(end)
                .clamp(self.now, end);
            self.now = next;
            if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
                self.server.handle_timeout(self.now);
            }
            for page in &mut self.pages {
                if page.next_wake().is_some_and(|t| t <= self.now) {
                    page.on_timer(self.now);
                }
            }
            self.flush();
        }
    }
}

#[test]
fn two_bot_pages_play_a_match_to_the_end_and_agree_with_the_server() {
    let mut net = Net::new(2);
    let a = net.page(&[("name", "Ada"), ("bot", "0.6"), ("players", "2")]);
    let b = net.page(&[("name", "Bob"), ("bot", "0.6"), ("players", "2"), ("seed", "2")]);
    net.run(600 * SECOND, |n| n.pages.iter().all(|p| p.result().is_some()));
    let (ra, rb) = (net.pages[a].result().unwrap(), net.pages[b].result().unwrap());
    assert_eq!(
        (ra.match_id, ra.standings.clone(), ra.winner),
        (rb.match_id, rb.standings.clone(), rb.winner)
    );
    assert_eq!(ra.final_hash, ra.server_hash);
    assert_eq!(rb.final_hash, rb.server_hash);
    assert_eq!((ra.desyncs, rb.desyncs, ra.pauses, rb.resumes), (0, 0, 0, 0));
    assert_ne!(ra.player_id, rb.player_id);
    assert_eq!(ra.name, "Ada");
    // Both links are closed once the match is over.
    assert!(net.pages.iter().all(|p| matches!(p.link(), Link::Down { retry_at: None })));
}

#[test]
fn a_page_whose_link_drops_mid_match_takes_its_seat_back() {
    let mut net = Net::new(2);
    let a = net.page(&[("name", "Ada"), ("bot", "0.9"), ("room", "lan")]);
    let _b = net.page(&[("name", "Bob"), ("bot", "0.9"), ("room", "lan"), ("seed", "3")]);
    net.run(60 * SECOND, |n| n.pages[a].core().confirmed().is_some_and(|s| s.tick > 300));
    net.cut(a);
    assert!(net.pages[a].result().is_none());
    net.run(600 * SECOND, |n| n.pages.iter().all(|p| p.result().is_some()));
    let (ra, rb) = (net.pages[0].result().unwrap(), net.pages[1].result().unwrap());
    assert_eq!(ra.resumes, 1, "{ra:?}");
    assert_eq!(
        (ra.final_hash.as_str(), ra.standings.clone()),
        (rb.final_hash.as_str(), rb.standings.clone())
    );
    assert_eq!(ra.final_hash, ra.server_hash);
    assert!(ra.pauses >= 1 && rb.pauses >= 1, "{ra:?} {rb:?}");
}

#[test]
fn a_page_that_cannot_reach_the_server_backs_off_then_says_so() {
    let mut net = Net::new(2);
    net.unreachable = true;
    let a = net.page(&[("name", "Ada")]);
    net.run(120 * SECOND, |n| n.pages[a].status().gave_up.is_some());
    let status = net.pages[a].status();
    let why = status.gave_up.clone().unwrap();
    // 50 ms doubling to 2 s: about 20 attempts in 30 s, not thousands.
    assert!((10..40).contains(&status.attempts), "{status:?}");
    assert!(why.contains("Could not reach the server") && why.contains("refused"), "{why}");
    assert_eq!(net.pages[a].next_wake(), None, "no more dialling once it gave up");
    // R: a new round of attempts.
    net.unreachable = false;
    net.pages[a].retry(net.now);
    net.run(5 * SECOND, |n| matches!(n.pages[a].link(), Link::Up(_)));
    assert!(matches!(net.pages[a].link(), Link::Up(_)));
}

#[test]
fn keys_steer_the_own_paddle_only_while_the_match_is_on() {
    use pong_domain::sim::Intent;
    use pong_presentation::controls::Key;
    let mut net = Net::new(2);
    let a = net.page(&[("name", "Ada"), ("players", "2")]);
    let _b = net.page(&[("name", "Bob"), ("bot", "0.5"), ("players", "2")]);
    net.run(30 * SECOND, |n| {
        matches!(n.pages[a].core().phase(), pong_domain::client::ClientPhase::Lobby(_))
    });
    let now = net.now;
    net.pages[a].on_key(Key::S, true, now);
    assert_eq!(net.pages[a].core().intent(), Intent::Stop, "not in the lobby");
    net.run(30 * SECOND, |n| {
        matches!(n.pages[a].core().phase(), pong_domain::client::ClientPhase::Playing)
    });
    let now = net.now;
    net.pages[a].on_key(Key::Down, true, now);
    let side = net.pages[a].core().player().unwrap().side();
    assert!(side.is_vertical());
    assert_eq!(net.pages[a].core().intent(), Intent::Plus);
    net.pages[a].on_key(Key::Down, false, now);
    net.pages[a].on_key(Key::S, false, now);
    assert_eq!(net.pages[a].core().intent(), Intent::Stop);
}
