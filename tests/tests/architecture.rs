//! The dependency rule, checked: the domain crate is pure (no async runtime, no IO
//! library, no game engine, no broker client) and the ports depend on nothing but the
//! domain and small helpers. Runs `cargo tree` on the workspace.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn normal_deps(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const FORBIDDEN_IN_DOMAIN: &[&str] = &[
    "tokio",
    "async-trait",
    "bevy",
    "lapin",
    "zeromq",
    "tungstenite",
    "rusqlite",
    "mio",
    "futures",
];

#[test]
fn the_domain_is_pure() {
    let deps = normal_deps("pong-domain");
    for line in deps.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        assert!(
            !FORBIDDEN_IN_DOMAIN.iter().any(|f| name.starts_with(f)),
            "pong-domain depends on {name}:\n{deps}"
        );
    }
}

#[test]
fn the_ports_depend_only_inward() {
    let deps = normal_deps("pong-ports");
    for forbidden in [
        "tokio",
        "bevy",
        "lapin",
        "zeromq",
        "tungstenite",
        "rusqlite",
        "pong-transport",
        "pong-runtime",
    ] {
        assert!(
            !deps.lines().any(|l| l.starts_with(forbidden)),
            "pong-ports depends on {forbidden}:\n{deps}"
        );
    }
}

/// The browser frontend runs the domain in WebAssembly: nothing of the native runtime, the
/// transports or the window may come with it, and what it shares with the window
/// (`pong-presentation`) is as pure as the domain.
#[test]
fn the_browser_frontend_brings_no_native_runtime() {
    let web = normal_deps("pong-web");
    for forbidden in [
        "tokio",
        "mio",
        "bevy",
        "lapin",
        "zeromq",
        "tungstenite",
        "rusqlite",
        "pong-runtime",
        "pong-ports",
        "pong-transport",
    ] {
        assert!(
            !web.lines().any(|l| l.starts_with(forbidden)),
            "pong-web depends on {forbidden}:\n{web}"
        );
    }
    let shared = normal_deps("pong-presentation");
    for line in shared.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        assert!(
            !FORBIDDEN_IN_DOMAIN.iter().any(|f| name.starts_with(f)) && name != "bevy_color",
            "pong-presentation depends on {name}:\n{shared}"
        );
    }
}
