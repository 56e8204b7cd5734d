//! TCP flows on loopback: refused vs dropped (FIN, RST) vs silent, connect
//! timeout, garbage and truncated input. Latencies are printed (--nocapture).

mod common;

use std::time::{Duration, Instant};

use common::*;
use sipfleet_protocol::keepalive::KeepaliveSettings;
use sipfleet_protocol::route::Transport;
use sipfleet_transport::error::{FlowLostKind, RouteFailureKind};
use sipfleet_transport::flow::{Flow, FlowConfig, FlowEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn listener() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Opens a TCP flow to a fresh listener and returns both ends.
async fn connected(config: &FlowConfig) -> (Flow, TcpStream) {
    let (l, addr) = listener().await;
    let route = route(Transport::Tcp, "sbc", addr);
    let (flow, accepted) = tokio::join!(Flow::open(&route, config), l.accept());
    (flow.unwrap(), accepted.unwrap().0)
}

#[tokio::test]
async fn connect_to_a_closed_port_is_refused() {
    let (l, addr) = listener().await;
    drop(l);
    let config = config();
    let start = Instant::now();
    let err = Flow::open(&route(Transport::Tcp, "sbc", addr), &config)
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(err, RouteFailureKind::Refused);
    println!("TCP refused connect detected after {elapsed:?}");
}

#[tokio::test]
async fn full_backlog_hits_our_connect_timeout() {
    // listen(0) queues one connection; fill it and further SYNs are dropped.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // The first connect fills the queue; later ones may already be dropped.
    let fillers: Vec<_> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()
        })
        .collect();
    assert!(!fillers.is_empty());
    let config = FlowConfig {
        connect_timeout: Duration::from_millis(300),
        ..config()
    };
    let start = Instant::now();
    let err = Flow::open(&route(Transport::Tcp, "sbc", addr), &config)
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(err, RouteFailureKind::ConnectTimeout);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    drop(fillers);
}

#[tokio::test]
async fn far_end_close_is_flow_lost_fin() {
    let (mut flow, peer) = connected(&config()).await;
    let start = Instant::now();
    drop(peer);
    let event = next_event(&mut flow.events, Duration::from_secs(2)).await;
    let elapsed = start.elapsed();
    assert_eq!(event, Some(FlowEvent::Lost(FlowLostKind::Fin)));
    println!("TCP FIN from far end -> FlowLost(Fin) after {elapsed:?}");
    // The flow's task is gone: sending fails.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(flow.sender.send(options("z9hG4bKx").into()).is_err());
}

#[tokio::test]
async fn far_end_abort_is_flow_lost_reset() {
    let (mut flow, peer) = connected(&config()).await;
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    let start = Instant::now();
    drop(peer);
    let event = next_event(&mut flow.events, Duration::from_secs(2)).await;
    let elapsed = start.elapsed();
    assert_eq!(event, Some(FlowEvent::Lost(FlowLostKind::Reset)));
    println!("TCP RST from far end -> FlowLost(Reset) after {elapsed:?}");
}

#[tokio::test]
async fn messages_are_framed_both_ways() {
    let (mut flow, mut peer) = connected(&config()).await;
    assert_eq!(flow.sender.local_addr(), peer.peer_addr().unwrap());
    flow.sender.send(options("z9hG4bKa").into()).unwrap();
    let mut buf = vec![0u8; options("z9hG4bKa").len()];
    peer.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, options("z9hG4bKa"));
    // Two messages in one segment, a third split over two writes, with a
    // ping in between.
    let mut bytes = options("z9hG4bK1");
    bytes.extend(options("z9hG4bK2"));
    bytes.extend(b"\r\n\r\n");
    let third = options("z9hG4bK3");
    bytes.extend(&third[..10]);
    peer.write_all(&bytes).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    peer.write_all(&third[10..]).await.unwrap();
    for branch in ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"] {
        assert_eq!(
            next_event(&mut flow.events, Duration::from_secs(2)).await,
            Some(FlowEvent::Message(options(branch).into()))
        );
    }
    // persistentConnection=1 in the test config: the ping got a pong.
    let mut pong = [0u8; 2];
    peer.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"\r\n");
}

#[tokio::test]
async fn garbage_closes_the_flow_with_an_error() {
    let (mut flow, mut peer) = connected(&config()).await;
    peer.write_all(b"\x16\x03\x01 this is not SIP\r\n\r\n")
        .await
        .unwrap();
    match next_event(&mut flow.events, Duration::from_secs(2)).await {
        Some(FlowEvent::Lost(FlowLostKind::Malformed { reason })) => {
            assert!(reason.contains("Content-Length"), "{reason}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    // We closed our side: the peer reads EOF.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), peer.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
}

/// Garbage without the blank line that ends a header section, or a peer
/// that trickles a message byte by byte (slowloris), holds part of a
/// message forever: past `partial_message_timeout` the flow is lost, so
/// nothing more is sent into a stream whose boundaries are gone. Bytes
/// that arrive keep the clock running: only the start of the partial
/// message counts.
#[tokio::test]
async fn a_partial_message_held_too_long_loses_the_flow() {
    let mut cfg = config();
    cfg.framing.partial_message_timeout = Duration::from_millis(400);
    let (mut flow, mut peer) = connected(&cfg).await;
    let start = Instant::now();
    peer.write_all(b"SIP/2.0 200 OK\r\nVia: garbage")
        .await
        .unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peer.write_all(b"x").await.unwrap();
    }
    match next_event(&mut flow.events, Duration::from_secs(3)).await {
        Some(FlowEvent::Lost(FlowLostKind::Malformed { reason })) => {
            assert!(reason.contains("without its end"), "{reason}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(390) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(2), peer.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "we closed our side");
}

/// CRLF keep-alives between messages are not a partial message.
#[tokio::test]
async fn crlf_between_messages_is_not_a_partial_message() {
    let mut cfg = config();
    cfg.framing.partial_message_timeout = Duration::from_millis(200);
    let (mut flow, mut peer) = connected(&cfg).await;
    peer.write_all(&options("z9hG4bKc")).await.unwrap();
    peer.write_all(b"\r\n").await.unwrap();
    match next_event(&mut flow.events, Duration::from_secs(2)).await {
        Some(FlowEvent::Message(_)) => {}
        other => panic!("expected the message, got {other:?}"),
    }
    let later = next_event(&mut flow.events, Duration::from_millis(600)).await;
    assert!(
        !matches!(later, Some(FlowEvent::Lost(_))),
        "a pong is not a partial message: {later:?}"
    );
}

#[tokio::test]
async fn truncated_message_then_close_is_malformed_not_delivered() {
    let (mut flow, mut peer) = connected(&config()).await;
    let message = options("z9hG4bKt");
    peer.write_all(&message[..message.len() - 3]).await.unwrap();
    drop(peer);
    match next_event(&mut flow.events, Duration::from_secs(2)).await {
        Some(FlowEvent::Lost(FlowLostKind::Malformed { reason })) => {
            assert!(reason.contains("inside a message"), "{reason}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_far_end_produces_no_event() {
    // Transaction timers are the line's job: a peer that accepts and never
    // answers must not produce any flow event. A persistent connection with
    // no keep-alives has no timer at all, so an hour of virtual time passes.
    let (mut flow, _peer) = connected(&config()).await;
    flow.sender.send(options("z9hG4bKs").into()).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::time::pause();
    let got = tokio::time::timeout(Duration::from_secs(3600), flow.events.recv()).await;
    assert!(got.is_err(), "unexpected event {got:?}");
}

#[tokio::test]
async fn non_persistent_idle_stream_closed_after_60s_virtual() {
    let keepalive = KeepaliveSettings::default();
    let config = config_with(config().tls, keepalive);
    let (mut flow, mut peer) = connected(&config).await;
    flow.sender.send(options("z9hG4bKi").into()).unwrap();
    let mut buf = vec![0u8; options("z9hG4bKi").len()];
    peer.read_exact(&mut buf).await.unwrap();
    tokio::time::pause();
    let sent = tokio::time::Instant::now();
    let event = flow.events.recv().await;
    assert_eq!(event, Some(FlowEvent::Lost(FlowLostKind::Idle)));
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(59_900) && waited <= Duration::from_millis(60_100),
        "{waited:?}"
    );
    // We closed with FIN.
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!(n, 0);
}
