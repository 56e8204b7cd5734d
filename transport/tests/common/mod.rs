//! Test support for the flow tests: configurations, routes, a sample
//! message and TLS material made with rcgen.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use sipfleet_protocol::keepalive::KeepaliveSettings;
use sipfleet_protocol::route::{Route, RouteSource, Transport};
use sipfleet_transport::flow::FlowConfig;
use sipfleet_transport::tls::{TlsClient, TlsSettings};

pub fn config_with(tls: TlsClient, keepalive: KeepaliveSettings) -> FlowConfig {
    FlowConfig {
        keepalive,
        ..FlowConfig::new(tls)
    }
}

pub fn config() -> FlowConfig {
    let tls = TlsClient::new(&TlsSettings::default()).unwrap();
    config_with(
        tls,
        KeepaliveSettings {
            persistent_connection: true,
            ..KeepaliveSettings::default()
        },
    )
}

pub fn route(transport: Transport, host: &str, addr: SocketAddr) -> Route {
    Route {
        transport,
        host: host.to_string(),
        addr,
        group: 0,
        priority: 0,
        weight: 0,
        source: RouteSource::Literal,
    }
}

/// A small SIP request with a body, serialized.
pub fn options(branch: &str) -> Vec<u8> {
    let body = "v=0\r\n";
    format!(
        "OPTIONS sip:sbc.example.test SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:5060;rport;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1000@example.test>;tag=a\r\n\
         To: <sip:sbc.example.test>\r\n\
         Call-ID: {branch}@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Test PKI made by rcgen: a CA and a server certificate for `host` signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn pki(host: &str) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sipfleet test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, host);
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A TLS acceptor serving the PKI's server certificate.
pub fn acceptor(pki: &TestPki) -> tokio_native_tls::TlsAcceptor {
    let identity =
        native_tls::Identity::from_pkcs8(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).unwrap())
}

/// Waits at most `limit` for the next event (real time).
pub async fn next_event(
    events: &mut sipfleet_transport::flow::FlowEvents,
    limit: Duration,
) -> Option<sipfleet_transport::flow::FlowEvent> {
    tokio::time::timeout(limit, events.recv())
        .await
        .ok()
        .flatten()
}
