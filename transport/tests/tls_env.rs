//! `SSL_CERT_FILE` is honoured for the system trust store, as OpenSSL does.
//! Its own test binary: the variable is process-wide and read once.

mod common;

use std::io::Write;

use common::*;
use sipfleet_protocol::keepalive::KeepaliveSettings;
use sipfleet_protocol::route::Transport;
use sipfleet_transport::flow::Flow;
use sipfleet_transport::tls::{TlsClient, TlsSettings};
use tokio::net::TcpListener;

#[tokio::test]
async fn ssl_cert_file_adds_a_trusted_ca_to_the_system_store() {
    let host = "sbc.env.test";
    let pki = pki(host);
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(pki.ca_pem.as_bytes()).unwrap();
    // Before any TLS client exists in this process.
    std::env::set_var("SSL_CERT_FILE", ca_file.path());

    let acceptor = acceptor(&pki);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    drop(stream);
                }
            });
        }
    });
    // Default settings: system store only, no configured CA file.
    let tls = TlsClient::new(&TlsSettings::default()).unwrap();
    let config = config_with(tls, KeepaliveSettings::default());
    let flow = Flow::open(&route(Transport::Tls, host, addr), &config).await;
    assert!(flow.is_ok(), "{:?}", flow.err());
}
