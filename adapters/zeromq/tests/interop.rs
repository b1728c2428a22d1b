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
use pong_transport_zmq::{ZmqOptions, ZmqServer};

const WAIT: Duration = Duration::from_secs(10);

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pyzmq_dealer.py")
}

fn pyzmq_imports() -> bool {
    Command::new(python())
        .args(["-c", "import zmq"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True if pyzmq is usable, installing it if needed (once per run); false (after saying so)
/// if the test should be skipped. Panics under CI instead of skipping.
#[allow(clippy::print_stderr)] // A skip must be loud: it is printed for whoever runs the tests.
fn have_pyzmq() -> bool {
    static CHECKED: std::sync::Mutex<Option<bool>> = std::sync::Mutex::new(None);
    let mut checked = CHECKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let usable = *checked.get_or_insert_with(install_pyzmq);
    if !usable {
        eprintln!("SKIPPED: pyzmq is not usable; this libzmq interop test did not run");
    }
    usable
}

#[allow(clippy::print_stderr)] // Says why the tests are skipped.
fn install_pyzmq() -> bool {
    if pyzmq_imports() {
        return true;
    }
    let install = Command::new(python())
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "pyzmq"])
        .status();
    if pyzmq_imports() {
        return true;
    }
    let why = format!("pyzmq cannot be imported by {} (pip install: {install:?})", python());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}; required under CI=true");
    eprintln!("{why}");
    false
}

async fn next_frame(server: &mut ZmqServer) -> (PeerId, Bytes) {
    loop {
        match tokio::time::timeout(WAIT, server.recv()).await.expect("timed out").unwrap() {
            Incoming::Frame { from, frame } => return (from, frame),
            Incoming::Connected(_) | Incoming::Gone { .. } => {}
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
