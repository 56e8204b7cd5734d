//! TLS flows against an in-process server with an rcgen test CA: accepted
//! with the right host name and CA, refused with a wrong host name or an
//! unknown CA, and FIN/RST after the handshake.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use sipfleet_protocol::keepalive::KeepaliveSettings;
use sipfleet_protocol::route::Transport;
use sipfleet_transport::error::{FlowLostKind, RouteFailureKind};
use sipfleet_transport::flow::{Flow, FlowConfig, FlowEvent};
use sipfleet_transport::tls::{TlsClient, TlsSettings, TlsSetupError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HOST: &str = "sbc1.example.test";

struct Server {
    addr: std::net::SocketAddr,
    ca_file: tempfile::NamedTempFile,
    accepted: tokio::sync::mpsc::UnboundedReceiver<
        Result<tokio_native_tls::TlsStream<tokio::net::TcpStream>, String>,
    >,
}

/// A TLS server for `HOST` that hands over every accepted stream.
async fn server() -> Server {
    let pki = pki(HOST);
    let acceptor = acceptor(&pki);
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(pki.ca_pem.as_bytes()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let result = acceptor.accept(tcp).await.map_err(|e| e.to_string());
            if tx.send(result).is_err() {
                break;
            }
        }
    });
    Server {
        addr,
        ca_file,
        accepted,
    }
}

fn trusting(server: &Server, keepalive: KeepaliveSettings) -> FlowConfig {
    let tls = TlsClient::new(&TlsSettings {
        ca_file: Some(server.ca_file.path().to_path_buf()),
        only_ca_file: true,
    })
    .unwrap();
    config_with(tls, keepalive)
}

fn persistent() -> KeepaliveSettings {
    KeepaliveSettings {
        persistent_connection: true,
        ..KeepaliveSettings::default()
    }
}

#[tokio::test]
async fn right_host_and_ca_is_accepted_and_carries_messages() {
    let mut server = server().await;
    let config = trusting(&server, persistent());
    let mut flow = Flow::open(&route(Transport::Tls, HOST, server.addr), &config)
        .await
        .unwrap();
    let mut peer = server.accepted.recv().await.unwrap().unwrap();
    flow.sender.send(options("z9hG4bKtls").into()).unwrap();
    let mut buf = vec![0u8; options("z9hG4bKtls").len()];
    peer.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, options("z9hG4bKtls"));
    peer.write_all(&options("z9hG4bKback")).await.unwrap();
    assert_eq!(
        next_event(&mut flow.events, Duration::from_secs(2)).await,
        Some(FlowEvent::Message(options("z9hG4bKback").into()))
    );
    assert_eq!(
        flow.sender.local_addr(),
        peer.get_ref().get_ref().get_ref().peer_addr().unwrap()
    );
}

#[tokio::test]
async fn wrong_host_name_is_rejected() {
    let server = server().await;
    let config = trusting(&server, persistent());
    let err = Flow::open(
        &route(Transport::Tls, "sbc2.example.test", server.addr),
        &config,
    )
    .await
    .unwrap_err();
    match err {
        RouteFailureKind::TlsHandshake { reason } => {
            assert!(reason.contains("certificate verify failed"), "{reason}");
            assert!(reason.to_lowercase().contains("hostname"), "{reason}");
        }
        other => panic!("expected TlsHandshake, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_ca_is_rejected() {
    let server = server().await;
    // System store only: the test CA is not in it.
    let config = config_with(
        TlsClient::new(&TlsSettings::default()).unwrap(),
        persistent(),
    );
    let err = Flow::open(&route(Transport::Tls, HOST, server.addr), &config)
        .await
        .unwrap_err();
    match err {
        RouteFailureKind::TlsHandshake { reason } => {
            assert!(reason.contains("certificate verify failed"), "{reason}")
        }
        other => panic!("expected TlsHandshake, got {other:?}"),
    }
}

#[tokio::test]
async fn a_ca_of_another_pki_is_rejected() {
    let server = server().await;
    let other = pki(HOST);
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(other.ca_pem.as_bytes()).unwrap();
    let tls = TlsClient::new(&TlsSettings {
        ca_file: Some(ca_file.path().to_path_buf()),
        only_ca_file: true,
    })
    .unwrap();
    let err = Flow::open(
        &route(Transport::Tls, HOST, server.addr),
        &config_with(tls, persistent()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RouteFailureKind::TlsHandshake { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreadable_or_empty_ca_file_is_a_setup_error() {
    let missing = TlsClient::new(&TlsSettings {
        ca_file: Some("/nonexistent/ca.pem".into()),
        only_ca_file: false,
    });
    assert!(matches!(missing, Err(TlsSetupError::ReadCaFile { .. })));
    let empty = tempfile::NamedTempFile::new().unwrap();
    let bad = TlsClient::new(&TlsSettings {
        ca_file: Some(empty.path().to_path_buf()),
        only_ca_file: false,
    });
    assert!(matches!(bad, Err(TlsSetupError::BadCaFile { .. })));
}

#[tokio::test]
async fn handshake_to_a_silent_server_times_out() {
    // Accepts TCP but never speaks TLS.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(tcp);
    });
    let config = FlowConfig {
        connect_timeout: Duration::from_millis(200),
        ..config()
    };
    let err = Flow::open(&route(Transport::Tls, HOST, addr), &config)
        .await
        .unwrap_err();
    assert_eq!(err, RouteFailureKind::ConnectTimeout);
    hold.abort();
}

#[tokio::test]
async fn far_end_tcp_close_after_handshake_is_fin_and_abort_is_reset() {
    let mut server = server().await;
    let config = trusting(&server, persistent());
    let route = route(Transport::Tls, HOST, server.addr);

    let mut flow = Flow::open(&route, &config).await.unwrap();
    let peer = server.accepted.recv().await.unwrap().unwrap();
    drop(peer);
    assert_eq!(
        next_event(&mut flow.events, Duration::from_secs(2)).await,
        Some(FlowEvent::Lost(FlowLostKind::Fin))
    );

    let mut flow = Flow::open(&route, &config).await.unwrap();
    let peer = server.accepted.recv().await.unwrap().unwrap();
    socket2::SockRef::from(peer.get_ref().get_ref().get_ref())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    assert_eq!(
        next_event(&mut flow.events, Duration::from_secs(2)).await,
        Some(FlowEvent::Lost(FlowLostKind::Reset))
    );
}

#[tokio::test]
async fn unanswered_tls_keepalives_lose_the_flow_after_4_attempts_virtual() {
    let mut server = server().await;
    let keepalive = KeepaliveSettings {
        tls_enable: true,
        persistent_connection: true,
        ..KeepaliveSettings::default()
    };
    let config = trusting(&server, keepalive);
    let mut flow = Flow::open(&route(Transport::Tls, HOST, server.addr), &config)
        .await
        .unwrap();
    let mut peer = server.accepted.recv().await.unwrap().unwrap();
    tokio::time::pause();
    let start = tokio::time::Instant::now();
    let reader = tokio::spawn(async move {
        // The peer reads pings and never answers.
        let mut pings = Vec::new();
        let mut buf = [0u8; 4];
        while peer.read_exact(&mut buf).await.is_ok() {
            assert_eq!(&buf, b"\r\n\r\n");
            pings.push(start.elapsed().as_millis());
        }
        pings
    });
    let event = flow.events.recv().await;
    let lost_at = start.elapsed().as_millis();
    assert_eq!(event, Some(FlowEvent::Lost(FlowLostKind::KeepaliveTimeout)));
    let pings = reader.await.unwrap();
    // The schedule started when the flow came up, a few real milliseconds
    // before the clock was paused; the spacing is exact.
    assert_eq!(pings.len(), 4, "{pings:?}");
    // tokio timers fire on whole-millisecond ticks: up to 1 ms late.
    assert!((29_990..=30_001).contains(&pings[0]), "{pings:?}");
    let offsets: Vec<u128> = pings.iter().map(|p| p - pings[0]).collect();
    assert_eq!(offsets, vec![0, 20_000, 40_000, 60_000]);
    assert_eq!(lost_at - pings[0], 80_000);
}
