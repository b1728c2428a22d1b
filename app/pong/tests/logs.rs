//! What an operator's log collector gets (issue 16): a server whose stderr is a file writes
//! plain text, without a single terminal escape byte, and `--log-format json` writes one
//! JSON object per line.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PONG, Scratch, free_port};

/// Runs `pong server` with its stderr in a file until it says it listens, stops it with
/// SIGTERM, and returns what it wrote.
fn server_log(scratch: &Scratch, name: &str, extra: &[&str]) -> Vec<u8> {
    let path = scratch.path(name);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child: Child = Command::new(PONG)
        .args(["server", "--listen", listen.as_str()])
        .args(extra)
        .env("RUST_LOG", "info")
        // As under a service manager: no NO_COLOR, no terminal.
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&path).unwrap_or_default().contains("listening") {
        assert!(Instant::now() < deadline, "the server did not start: {:?}", std::fs::read(&path));
        assert!(child.try_wait().unwrap().is_none(), "the server exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::read(&path).unwrap()
}

#[test]
fn a_server_logging_to_a_file_writes_no_terminal_escapes() {
    let scratch = Scratch::new("logs-text");
    let log = server_log(&scratch, "server.log", &[]);
    let text = String::from_utf8(log.clone()).unwrap();
    assert!(text.contains("server listening") && text.contains("shutting down"), "{text}");
    assert!(!log.contains(&0x1b), "escape bytes in a log written to a file:\n{text:?}");
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let scratch = Scratch::new("logs-json");
    let log = server_log(&scratch, "server.jsonl", &["--log-format", "json"]);
    let text = String::from_utf8(log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for l in &lines {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(l.get(key).is_some(), "no {key:?} in {l}");
        }
    }
    let listening = lines
        .iter()
        .find(|l| l["fields"]["message"] == "server listening")
        .unwrap_or_else(|| panic!("no 'server listening' event: {text}"));
    assert_eq!(listening["level"], "INFO");
    // The event's own fields are fields of the object, not text to parse.
    assert!(listening["fields"]["addr"].as_str().is_some_and(|a| a.starts_with("ws://")));
}
