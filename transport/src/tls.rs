//! TLS client side of a flow: native-tls (OpenSSL on Linux) through
//! tokio-native-tls.
//!
//! The server certificate is verified against the route's host name — the SRV
//! target, not the domain the user configured (RFC 5922 would allow either; the
//! design fixes the SRV target). Trust anchors are the system store, which
//! OpenSSL locates through `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, plus an
//! optional CA file from configuration. A failed verification is a
//! [`RouteFailureKind::TlsHandshake`]; nothing is ever accepted unverified.

use std::path::PathBuf;

use tokio::net::TcpStream;
use tokio_native_tls::{TlsConnector, TlsStream};

use crate::error::RouteFailureKind;

/// Where trusted CAs come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Extra trusted CA certificates (PEM, one or more) to add to the trust store.
    pub ca_file: Option<PathBuf>,
    /// Trust only `ca_file`, not the system store.
    pub only_ca_file: bool,
}

/// Why TLS could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// `--ca-file` could not be read.
    #[error("cannot read CA file {path}: {source}")]
    ReadCaFile {
        /// The file given.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// `--ca-file` holds no PEM certificate the TLS library accepts.
    #[error("CA file {path} holds no usable PEM certificate: {reason}")]
    BadCaFile {
        /// The file given.
        path: PathBuf,
        /// What the TLS library said.
        reason: String,
    },
}

/// A configured TLS client, built once and shared by every TLS flow (cheap to
/// clone).
#[derive(Clone)]
pub struct TlsClient {
    /// The CA file's certificates, read at start.
    roots: std::sync::Arc<Vec<native_tls::Certificate>>,
    only_ca_file: bool,
    /// Built at the first handshake: loading the system's CA bundle costs
    /// about 80 ms of CPU, which a fleet without TLS routes never pays.
    connector: std::sync::Arc<std::sync::OnceLock<Result<TlsConnector, String>>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

impl TlsClient {
    /// Builds the client: loads the CA file (if any) now, so a bad file is a
    /// configuration error rather than a failure of every connection.
    pub fn new(settings: &TlsSettings) -> Result<Self, TlsSetupError> {
        let mut roots = Vec::new();
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|source| TlsSetupError::ReadCaFile {
                path: path.clone(),
                source,
            })?;
            let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
                TlsSetupError::BadCaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                }
            })?;
            if certs.is_empty() {
                return Err(TlsSetupError::BadCaFile {
                    path: path.clone(),
                    reason: "no certificate found".into(),
                });
            }
            roots = certs;
        }
        Ok(TlsClient {
            roots: std::sync::Arc::new(roots),
            only_ca_file: settings.only_ca_file,
            connector: std::sync::Arc::default(),
        })
    }

    /// The connector, built on first use.
    fn connector(&self) -> Result<&TlsConnector, RouteFailureKind> {
        let built = self.connector.get_or_init(|| {
            let mut builder = native_tls::TlsConnector::builder();
            for cert in self.roots.iter() {
                builder.add_root_certificate(cert.clone());
            }
            builder.disable_built_in_roots(self.only_ca_file);
            builder
                .build()
                .map(TlsConnector::from)
                .map_err(|e| e.to_string())
        });
        built
            .as_ref()
            .map_err(|reason| RouteFailureKind::TlsHandshake {
                reason: format!("TLS setup: {reason}"),
            })
    }

    /// Runs the handshake over a connected TCP stream, verifying the server
    /// certificate against `host`.
    pub async fn handshake(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, RouteFailureKind> {
        self.connector()?
            .connect(host, tcp)
            .await
            .map_err(|e| RouteFailureKind::TlsHandshake {
                reason: handshake_reason(&e),
            })
    }
}

/// The most specific text native-tls gives for a failed handshake (OpenSSL
/// puts the verification result in the error's source chain).
fn handshake_reason(err: &native_tls::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
