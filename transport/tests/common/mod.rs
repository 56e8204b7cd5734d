//! Test support for the flow tests: a minimal stream framer and TLS material.
//!
//! The framer here is a deliberately small Content-Length scan used only by
//! these tests, so flow behaviour (FIN, RST, garbage, truncation) is tested
//! independently of the production codec.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use sipfleet_protocol::route::{Route, RouteSource, Transport};
use sipfleet_transport::flow::{FlowConfig, StreamDecoder, StreamFrame, DEFAULT_CONNECT_TIMEOUT};
use sipfleet_transport::keepalive::KeepaliveSettings;
use sipfleet_transport::tls::{TlsClient, TlsSettings};
use tokio_util::codec::Decoder;

/// Content-Length framing with RFC 5626 ping/pong, for tests only.
pub struct TestFramer;

impl Decoder for TestFramer {
    type Item = StreamFrame;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<StreamFrame>> {
        if src.starts_with(b"\r\n\r\n") {
            src.advance(4);
            return Ok(Some(StreamFrame::Ping));
        }
        if src.as_ref() == b"\r\n" {
            src.advance(2);
            return Ok(Some(StreamFrame::Pong));
        }
        if src.len() < 4 && b"\r\n\r\n".starts_with(src) {
            return Ok(None);
        }
        let first_line_end = src.windows(2).position(|w| w == b"\r\n");
        if let Some(end) = first_line_end {
            let line = &src[..end];
            let ok = line.starts_with(b"SIP/2.0 ") || line.ends_with(b" SIP/2.0");
            if !ok {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a SIP start line",
                ));
            }
        } else if src.len() > 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "start line too long",
            ));
        }
        let Some(head_end) = src.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&src[..head_end])
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "non UTF-8 header"))?;
        let mut length = None;
        for line in head.split("\r\n") {
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" || name == "l" {
                    length = Some(value.trim().parse::<usize>().map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")
                    })?);
                }
            }
        }
        let length = length
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Content-Length"))?;
        let total = head_end + 4 + length;
        if src.len() < total {
            return Ok(None);
        }
        Ok(Some(StreamFrame::Message(src.split_to(total).freeze())))
    }
}

pub fn test_framer() -> StreamDecoder {
    Box::new(TestFramer)
}

pub fn config_with(tls: TlsClient, keepalive: KeepaliveSettings) -> FlowConfig {
    FlowConfig {
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        keepalive,
        tls,
        framer: Arc::new(test_framer),
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
