//! `wss://` with rustls: a server with a self-signed certificate made here by rcgen, a
//! client that trusts it, one that does not, and the typed errors for bad PEM files.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{hello, round_trip, within};
use pong_ports::{Connector, ServerTransport, TransportError};
use pong_transport_ws::{TlsError, WsConnector, WsOptions, WsServer};

/// A scratch directory for one test's PEM files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pong-ws-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for localhost and 127.0.0.1: (cert path, key path).
fn self_signed(scratch: &Scratch, name: &str) -> (PathBuf, PathBuf) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = scratch.write(&format!("{name}.crt"), &certified.cert.pem());
    let key = scratch.write(&format!("{name}.key"), &certified.signing_key.serialize_pem());
    (cert, key)
}

fn port_of(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_round_trip_with_a_self_signed_certificate() {
    let scratch = Scratch::new("round-trip");
    let (cert, key) = self_signed(&scratch, "server");
    let options = WsOptions::default().with_tls_pem(&cert, &key).unwrap();
    assert!(options.tls.serves_tls());
    let mut server = WsServer::bind("127.0.0.1:0", options).unwrap();
    let url = server.local_addr();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");

    // By IP address and by host name, both in the certificate.
    let trusting = WsOptions::default().with_trusted_ca_pem(&cert).unwrap();
    let by_name = format!("wss://localhost:{}", port_of(&url));
    for (tag, target) in [(1, url.clone()), (2, by_name)] {
        let connector = WsConnector::new(&target, trusting.clone()).unwrap();
        let mut client = within("a wss connect", connector.connect()).await.unwrap();
        let peer = hello(&mut server, &*client, tag).await;
        round_trip(&mut server, &mut *client, peer, tag).await;
        client.close().await;
    }

    // Trusting only some other certificate: the handshake fails, clearly.
    let (other, _) = self_signed(&scratch, "other");
    let strangers = [
        WsOptions::default(),
        WsOptions::default().with_trusted_ca_pem(&other).unwrap().without_webpki_roots(),
    ];
    for options in strangers {
        let connector = WsConnector::new(&url, options).unwrap();
        match within("a refused wss connect", connector.connect()).await {
            Err(TransportError::Connect { addr, reason }) => {
                assert_eq!(addr, url);
                assert!(reason.starts_with("TLS handshake failed"), "unexpected reason {reason:?}");
                assert!(reason.contains("certificate"), "unexpected reason {reason:?}");
            }
            Ok(_) => panic!("connected to a server whose certificate is not trusted"),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    // A plain ws:// client on the wss port is turned away by the TLS acceptor.
    let plain =
        WsConnector::new(&format!("ws://127.0.0.1:{}", port_of(&url)), WsOptions::default())
            .unwrap();
    assert!(matches!(
        within("a plain connect to a TLS port", plain.connect()).await,
        Err(TransportError::Connect { .. })
    ));
}

#[test]
fn unusable_pem_files_give_typed_errors() {
    let scratch = Scratch::new("bad-pem");
    let (cert, key) = self_signed(&scratch, "good");
    let (other_cert, _) = self_signed(&scratch, "other");
    let missing = scratch.0.join("missing.pem");
    let empty = scratch.write("empty.pem", "nothing to see here\n");
    let broken = scratch.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    );

    let server = |c: &Path, k: &Path| WsOptions::default().with_tls_pem(c, k).map(|_| ());
    assert!(matches!(server(&missing, &key), Err(TlsError::Read { .. })));
    assert!(matches!(server(&cert, &missing), Err(TlsError::Read { .. })));
    assert!(matches!(server(&empty, &key), Err(TlsError::NoCertificate { .. })));
    assert!(matches!(server(&cert, &cert), Err(TlsError::NoPrivateKey { .. })));
    assert!(matches!(server(&broken, &key), Err(TlsError::Pem { .. })));
    assert!(matches!(server(&other_cert, &key), Err(TlsError::Invalid { .. })));
    assert!(server(&cert, &key).is_ok());

    let trust = |c: &Path| WsOptions::default().with_trusted_ca_pem(c).map(|_| ());
    assert!(matches!(trust(&missing), Err(TlsError::Read { .. })));
    assert!(matches!(trust(&empty), Err(TlsError::NoCertificate { .. })));
    let error = trust(&missing).unwrap_err().to_string();
    assert!(error.starts_with("cannot read ") && error.contains("missing.pem"), "{error}");
}

/// The whole conformance suite again, over `wss://`.
mod conformance_over_tls {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use pong_tests::conformance::Harness;

    use super::*;

    /// A fresh certificate and server per check; clients trust only that certificate.
    struct TlsLoopback;

    #[async_trait::async_trait]
    impl Harness for TlsLoopback {
        async fn start(&self) -> (Box<dyn ServerTransport>, Arc<dyn Connector>) {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let scratch =
                Scratch::new(&format!("conformance-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
            let (cert, key) = self_signed(&scratch, "server");
            let server_options = WsOptions::default().with_tls_pem(&cert, &key).unwrap();
            let client_options =
                WsOptions::default().with_trusted_ca_pem(&cert).unwrap().without_webpki_roots();
            let server = WsServer::bind("127.0.0.1:0", server_options).unwrap();
            let connector = WsConnector::new(&server.local_addr(), client_options).unwrap();
            (Box::new(server), Arc::new(connector))
        }
    }

    pong_tests::conformance_tests!(TlsLoopback);
}
