//! TLS for `wss://`: the server's certificate and key, the certificates a client trusts,
//! and the rustls configurations built from them.
//!
//! [`TlsOptions`] always exists so [`WsOptions`](crate::WsOptions) has the same fields with or without TLS;
//! only with the `tls` feature can it be filled (`WsOptions::with_tls_pem`,
//! `WsOptions::with_trusted_ca_pem`). rustls runs with the `ring` provider, named
//! explicitly, so this crate works whatever provider other crates in the same binary pick.

#[cfg(feature = "tls")]
use std::path::{Path, PathBuf};
#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
use rustls::pki_types::pem::PemObject;
#[cfg(feature = "tls")]
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(feature = "tls")]
use crate::WsOptions;

/// The TLS part of [`WsOptions`](crate::WsOptions): a server certificate (a server that has one serves
/// `wss://`) and the certificates a client trusts besides the webpki roots.
///
/// Filled through `WsOptions::with_tls_pem`, `WsOptions::with_trusted_ca_pem` and
/// `WsOptions::without_webpki_roots`, which need the `tls` feature; without it this is
/// always empty and `wss://` is refused.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// The server's certificate chain and key, ready to serve.
    #[cfg(feature = "tls")]
    server: Option<Arc<rustls::ServerConfig>>,
    /// Extra trust anchors for clients (a private CA or a self-signed certificate).
    #[cfg(feature = "tls")]
    trusted: Vec<CertificateDer<'static>>,
    /// Whether clients leave out the Mozilla roots shipped in `webpki-roots`.
    #[cfg(feature = "tls")]
    skip_webpki_roots: bool,
}

impl std::fmt::Debug for TlsOptions {
    // Never prints key material, only what is configured.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("TlsOptions");
        #[cfg(feature = "tls")]
        out.field("server_certificate", &self.server.is_some())
            .field("trusted_certificates", &self.trusted.len())
            .field("webpki_roots", &!self.skip_webpki_roots);
        out.finish()
    }
}

impl TlsOptions {
    /// True if a server with these options serves `wss://` (a certificate is set).
    #[must_use]
    pub fn serves_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.server.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

/// Why a certificate, key or CA file could not be used.
#[cfg(feature = "tls")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The file is not valid PEM.
    #[error("{} is not valid PEM: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds no `CERTIFICATE` block.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key block (PKCS#8, PKCS#1 or SEC1).
    #[error("{} holds no PEM private key", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The certificates and key were read but rustls refused them (a key that does not
    /// match the certificate, an unsupported algorithm, a malformed certificate).
    #[error("unusable TLS material: {reason}")]
    Invalid {
        /// What rustls said.
        reason: String,
    },
}

#[cfg(feature = "tls")]
impl WsOptions {
    /// Makes a server with these options serve `wss://` with the certificate chain (leaf
    /// first) and private key in these PEM files. The files are read and checked now.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file that is unreadable, not PEM, empty of what it should
    /// hold, or (for [`TlsError::Invalid`]) a key that does not fit the certificate.
    pub fn with_tls_pem(
        mut self,
        cert_chain: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let certs = read_certs(cert_chain.as_ref())?;
        let key = read_key(private_key.as_ref())?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(invalid)?;
        self.tls.server = Some(Arc::new(config));
        Ok(self)
    }

    /// Makes clients with these options also trust the certificates in this PEM file: a
    /// private CA, or the server's own self-signed certificate. May be called several times.
    ///
    /// # Errors
    /// A [`TlsError`] if the file is unreadable, not PEM, holds no certificate, or holds
    /// one that cannot be a trust anchor.
    pub fn with_trusted_ca_pem(mut self, ca: impl AsRef<Path>) -> Result<Self, TlsError> {
        let certs = read_certs(ca.as_ref())?;
        let mut check = rustls::RootCertStore::empty();
        for cert in &certs {
            check.add(cert.clone()).map_err(invalid)?;
        }
        self.tls.trusted.extend(certs);
        Ok(self)
    }

    /// Makes clients with these options trust only the certificates given with
    /// `WsOptions::with_trusted_ca_pem`, not the webpki (Mozilla) roots.
    #[must_use]
    pub fn without_webpki_roots(mut self) -> Self {
        self.tls.skip_webpki_roots = true;
        self
    }
}

#[cfg(feature = "tls")]
impl TlsOptions {
    /// The acceptor a server wraps its sockets in, if it serves `wss://`.
    pub(crate) fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.server.clone().map(tokio_rustls::TlsAcceptor::from)
    }

    /// The connector a `wss://` client wraps its socket in.
    pub(crate) fn connector(&self) -> Result<tokio_rustls::TlsConnector, String> {
        let mut roots = rustls::RootCertStore::empty();
        if !self.skip_webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in &self.trusted {
            roots.add(cert.clone()).map_err(|e| e.to_string())?;
        }
        if roots.is_empty() {
            return Err("no trusted certificates (webpki roots off and no CA given)".to_owned());
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

#[cfg(feature = "tls")]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(feature = "tls")]
fn invalid(error: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid { reason: error.to_string() }
}

#[cfg(feature = "tls")]
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read { path: path.to_owned(), reason: e.to_string() })
}

#[cfg(feature = "tls")]
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem { path: path.to_owned(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(certs)
}

#[cfg(feature = "tls")]
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::NoPrivateKey { path: path.to_owned() }
        }
        other => TlsError::Pem { path: path.to_owned(), reason: other.to_string() },
    })
}
