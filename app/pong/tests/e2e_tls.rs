//! End to end over `wss://` (issue 4, feature `tls`): a `pong server` with a self-signed
//! certificate made here (`--tls-cert/--tls-key`) and four `pong bot` processes that trust
//! it (`--tls-ca`) finish a match in agreement; a bot that does not trust the certificate
//! is refused at the TLS handshake and never takes a seat.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{MATCH_LIMIT, Proc, Scratch, assert_agree, bot, free_port, num, reports, server};

#[test]
fn four_bot_processes_finish_a_match_over_wss_with_a_self_signed_certificate() {
    let started = Instant::now();
    let scratch = Scratch::new("wss");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = scratch.write("server.crt", &certified.cert.pem());
    let key = scratch.write("server.key", &certified.signing_key.serialize_pem());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = server(&["--listen", &listen, "--tls-cert", cert, "--tls-key", key], &[]);
    server.wait_for_log(&format!("addr=wss://{listen}"), MATCH_LIMIT);

    // A bot that trusts only the usual roots: refused at the handshake, gives up after 1 s.
    let mut untrusting = Proc::spawn(
        "untrusting",
        &[
            "bot",
            "--json",
            "--server",
            &format!("wss://localhost:{port}"),
            "--connect-timeout-secs",
            "1",
        ],
    );
    // By host name for two, by address for two: both are in the certificate.
    let mut bots: Vec<Proc> = (0..4)
        .map(|i| {
            let host = if i % 2 == 0 { "localhost" } else { "127.0.0.1" };
            let url = format!("wss://{host}:{port}");
            bot(i, &["--server", &url, "--tls-ca", cert], 0.5, &[])
        })
        .collect();

    let (status, out) = untrusting.finish(Instant::now() + Duration::from_secs(30));
    assert!(!status.success() && out.trim().is_empty(), "an untrusting bot played: {out}");
    assert!(
        untrusting.find_log("certificate").is_some(),
        "the refusal does not say why\n{}",
        untrusting.tail(20)
    );

    let reports = reports(&mut bots);
    let summary = assert_agree(&reports, &server);
    for r in &reports {
        assert_eq!(num(r, "desyncs"), 0, "an undisturbed match desynced: {r:#}");
    }
    eprintln!("wss: {summary}; {:.1?} in all", started.elapsed());
}
