//! A libzmq peer (pyzmq's DEALER, driven as a child process) against the Rust ROUTER server:
//! the wire format is standard ZMTP 3, not something only this crate understands.
//!
//! pyzmq is installed with pip if it is missing. If that fails the tests are skipped with a
//! message, except under `CI=true`, where they fail.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pong_ports::{Incoming, MatchId, PeerId, ServerTransport};
use pong_tests::python::{have_module, python};
use pong_transport_zmq::{ZmqOptions, ZmqServer};

const WAIT: Duration = Duration::from_secs(10);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pyzmq_dealer.py")
}

fn have_pyzmq() -> bool {
    have_module("zmq", "pyzmq")
}

async fn next_frame(server: &mut ZmqServer) -> (PeerId, Bytes) {
    loop {
        match tokio::time::timeout(WAIT, server.recv()).await.expect("timed out").unwrap() {
            Incoming::Frame { from, frame } => return (from, frame),
            Incoming::Connected { .. } | Incoming::Gone { .. } => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_libzmq_dealer_talks_to_the_router() {
    if !have_pyzmq() {
        return;
    }
    let mut server = ZmqServer::bind("tcp://127.0.0.1:0", ZmqOptions::default()).await.unwrap();
    let child = Command::new(python())
        .arg(script())
        .arg(server.local_addr())
        .arg("talk")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let (peer, frame) = next_frame(&mut server).await;
    assert!(frame.starts_with(b"hello from libzmq "), "got {frame:?}");
    server.send(peer, Bytes::from_static(b"direct reply")).unwrap();
    server.join_group(peer, MatchId(7)).unwrap();
    server.publish(MatchId(7), Bytes::from_static(b"group reply")).unwrap();

    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap();
    let output = output.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the pyzmq dealer failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, "direct reply\ngroup reply\n");
    let peer_closed = loop {
        match tokio::time::timeout(WAIT, server.recv()).await.expect("timed out").unwrap() {
            Incoming::Gone { peer: gone, .. } if gone == peer => break true,
            _ => {}
        }
    };
    assert!(peer_closed);
}

/// A libzmq client killed with SIGKILL says nothing, but its kernel closes the socket: the
/// server reports it gone within a second or two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_libzmq_client_is_reported_gone() {
    if !have_pyzmq() {
        return;
    }
    let mut server = ZmqServer::bind("tcp://127.0.0.1:0", ZmqOptions::default()).await.unwrap();
    let mut child = Command::new(python())
        .arg(script())
        .arg(server.local_addr())
        .arg("hang")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (peer, _) = next_frame(&mut server).await;
    child.kill().unwrap();
    let killed = Instant::now();
    let _ = child.wait();
    loop {
        match tokio::time::timeout(WAIT, server.recv()).await.expect("no Gone").unwrap() {
            Incoming::Gone { peer: gone, .. } if gone == peer => break,
            _ => {}
        }
    }
    assert!(killed.elapsed() < Duration::from_secs(2), "Gone took {:?}", killed.elapsed());
}
