//! Writes the fuzz targets' seed corpora from a real match: a server and two bot clients
//! play one to its end on a perfect in-process network, and every frame each way is kept
//! (the decoders' seeds), the frames a client received with the time between them (the
//! client core's), a real ZMTP handshake and message (the guard's), and a WebSocket
//! handshake and a plain request (the HTTP sniffer's).
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --bin seed_corpus   # writes fuzz/seeds/
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use pong_domain::bot::Bot;
use pong_domain::client::{ClientConfig, ClientCore, TransportRequest};
use pong_domain::proto::{MatchId, Name};
use pong_domain::route::{Dest, Origin, PeerId};
use pong_domain::server::{ServerConfig, ServerCore, Transmit};

const STEP: u64 = 1_000_000 / 240;

fn main() -> std::io::Result<()> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let config = ServerConfig { lives: 2, countdown: 500_000, ..ServerConfig::default() };
    let mut server = ServerCore::new(config, [11; 32]);
    let mut clients: Vec<(PeerId, ClientCore, Option<Bot>)> = ["Ada", "Bob"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut c = ClientConfig::new(Name::new(name).expect("a name"));
            c.players = Some(2);
            (PeerId(i as u64 + 1), ClientCore::new(c), None)
        })
        .collect();
    let mut groups: BTreeMap<MatchId, BTreeSet<PeerId>> = BTreeMap::new();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    // What client 0 received, as the client_core target's records.
    let mut client_records = Vec::new();
    let mut now = 1_000_000;
    for (peer, core, _) in &mut clients {
        server.handle_peer_opened(now, *peer, Origin::Link);
        core.handle_connected(now);
    }
    let mut buf = Vec::new();
    let mut since_last = 0u64;
    while now < 400_000_000 && !clients.iter().all(|(_, c, _)| c.is_finished()) {
        now += STEP;
        since_last += STEP;
        for (peer, core, bot) in &mut clients {
            core.handle_timeout(now);
            if let (Some(player), Some(rules), Some(state)) =
                (core.player(), core.rules().cloned(), core.predicted().copied())
            {
                let bot = bot.get_or_insert_with(|| Bot::new(player, 600, u64::from(player.get())));
                core.set_intent(bot.decide(&rules, &state));
            }
            while let Some(frame) = core.poll_transmit() {
                server.handle_frame(now, *peer, &frame);
                up.push(frame);
            }
            while let Some(req) = core.poll_transport_request() {
                if let TransportRequest::Subscribe(m) = req {
                    core.handle_subscribed(now, m);
                }
            }
            while core.poll_event().is_some() {}
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(&mut buf) {
            let to: Vec<PeerId> = match t {
                Transmit::Send(Dest::Peer(p)) => vec![p],
                Transmit::Send(Dest::Group(g)) => {
                    groups.get(&g).into_iter().flatten().copied().collect()
                }
                Transmit::JoinGroup(p, g) => {
                    groups.entry(g).or_default().insert(p);
                    continue;
                }
                Transmit::LeaveGroup(p, g) => {
                    groups.entry(g).or_default().remove(&p);
                    continue;
                }
                Transmit::Disconnect(_) => continue,
            };
            down.push(buf.clone());
            for (peer, core, _) in &mut clients {
                if to.contains(peer) {
                    core.handle_frame(now, &buf);
                    if *peer == PeerId(1) && buf.len() <= 255 {
                        let step = u16::try_from(since_last / 100).unwrap_or(u16::MAX);
                        client_records.push(0);
                        client_records.extend_from_slice(&step.to_le_bytes());
                        client_records.push(1);
                        client_records.push(buf.len() as u8);
                        client_records.extend_from_slice(&buf);
                        since_last = 0;
                    }
                }
            }
        }
        while server.poll_event().is_some() {}
    }
    assert!(clients.iter().all(|(_, c, _)| c.is_finished()), "the seed match did not end");
    write_samples(&out.join("decode_client"), &up)?;
    write_samples(&out.join("decode_server"), &down)?;
    // The client's first seconds, and a stretch of play: small inputs mutate faster.
    let dir = out.join("client_core");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("start"), &client_records[..client_records.len().min(2048)])?;
    let middle = client_records.len() / 2;
    fs::write(
        dir.join("play"),
        &client_records[middle..(middle + 2048).min(client_records.len())],
    )?;
    let dir = out.join("zmq_guard");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("handshake"), zmtp_seed(&up))?;
    let dir = out.join("http_sniff");
    fs::create_dir_all(&dir)?;
    fs::write(
        dir.join("upgrade"),
        b"GET / HTTP/1.1\r\nHost: pong:7878\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x82\x02ab",
    )?;
    fs::write(dir.join("metrics"), b"GET /metrics HTTP/1.1\r\nHost: pong\r\nAccept: */*\r\n\r\n")?;
    let dir = out.join("server_core");
    fs::create_dir_all(&dir)?;
    // The arbitrary crate reads a Vec<Op> from any bytes; a few shapes to start from.
    fs::write(dir.join("ticks"), [6u8, 30, 6, 30, 6, 30, 6, 30])?;
    fs::write(dir.join("mixed"), [0u8, 1, 4, 3, 1, 2, 3, 4, 6, 20, 1, 0, 1, 3, 1, 6, 31])?;
    println!(
        "seeds in {}: {} client frames, {} server frames, {} bytes of client records",
        out.display(),
        up.len(),
        down.len(),
        client_records.len()
    );
    Ok(())
}

/// Up to 64 distinct frames, spread over the match, one file each.
fn write_samples(dir: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut seen = BTreeSet::new();
    let stride = (frames.len() / 64).max(1);
    for f in frames.iter().step_by(stride).chain(frames.iter().take(16)) {
        if seen.insert(f.clone()) {
            fs::write(dir.join(format!("frame-{:03}", seen.len())), f)?;
        }
    }
    Ok(())
}

/// A libzmq-style DEALER's first bytes: the ZMTP 3.0 greeting (NULL mechanism), a READY
/// command, then a few game frames as single-part messages.
fn zmtp_seed(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut s = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
    let mut mechanism = b"NULL".to_vec();
    mechanism.resize(20, 0);
    s.extend(mechanism);
    s.push(0);
    s.resize(64, 0);
    let mut ready = b"\x05READY".to_vec();
    ready.push(11);
    ready.extend_from_slice(b"Socket-Type");
    ready.extend_from_slice(&6u32.to_be_bytes());
    ready.extend_from_slice(b"DEALER");
    s.push(0x04);
    s.push(ready.len() as u8);
    s.extend(ready);
    for f in frames.iter().take(8) {
        if f.len() <= 255 {
            s.push(0x00);
            s.push(f.len() as u8);
            s.extend_from_slice(f);
        }
    }
    s
}
