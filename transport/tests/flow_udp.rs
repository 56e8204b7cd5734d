//! UDP flows on loopback: ICMP detection for the exact destination, message
//! exchange, local address for Via/Contact.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sipfleet_protocol::route::Transport;
use sipfleet_transport::error::{IcmpKind, RouteFailureKind};
use sipfleet_transport::flow::{Flow, FlowEvent, FlowKey};
use tokio::net::UdpSocket;

/// A loopback UDP port with nobody listening.
async fn closed_udp_port() -> std::net::SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.local_addr().unwrap()
}

#[tokio::test]
async fn icmp_port_unreachable_reported_within_a_millisecond_scale() {
    let dead = closed_udp_port().await;
    let mut flow = Flow::open(&route(Transport::Udp, "dead", dead), &config())
        .await
        .unwrap();
    let mut latencies = Vec::new();
    for i in 0..5 {
        let start = Instant::now();
        flow.sender
            .send(options(&format!("z9hG4bK{i}")).into())
            .unwrap();
        let event = next_event(&mut flow.events, Duration::from_secs(2)).await;
        let elapsed = start.elapsed();
        assert_eq!(
            event,
            Some(FlowEvent::RouteFailure(RouteFailureKind::Icmp(
                IcmpKind::PortUnreachable
            ))),
            "send {i}"
        );
        latencies.push(elapsed);
    }
    // The flow stays usable after an ICMP error: every send got its own event.
    println!("UDP ICMP port unreachable, send -> event latency: {latencies:?}");
}

#[tokio::test]
async fn icmp_names_the_exact_destination() {
    let dead = closed_udp_port().await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let live = peer.local_addr().unwrap();
    let config = config();
    let mut to_dead = Flow::open(&route(Transport::Udp, "dead", dead), &config)
        .await
        .unwrap();
    let mut to_live = Flow::open(&route(Transport::Udp, "live", live), &config)
        .await
        .unwrap();
    assert_eq!(
        to_dead.sender.key(),
        FlowKey {
            transport: Transport::Udp,
            remote: dead
        }
    );
    to_dead.sender.send(options("z9hG4bKd").into()).unwrap();
    to_live.sender.send(options("z9hG4bKl").into()).unwrap();

    let mut buf = vec![0u8; 4096];
    let (n, from) = peer.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], &options("z9hG4bKl")[..]);
    // The flow's local address is the real source: what Via/Contact must carry.
    assert_eq!(from, to_live.sender.local_addr());
    peer.send_to(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", from)
        .await
        .unwrap();

    assert!(matches!(
        next_event(&mut to_dead.events, Duration::from_secs(2)).await,
        Some(FlowEvent::RouteFailure(RouteFailureKind::Icmp(_)))
    ));
    assert_eq!(
        next_event(&mut to_live.events, Duration::from_secs(2)).await,
        Some(FlowEvent::Message(
            b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
                .to_vec()
                .into()
        ))
    );
    // No ICMP event leaks onto the live flow.
    assert_eq!(
        next_event(&mut to_live.events, Duration::from_millis(50)).await,
        None
    );
}

#[tokio::test]
async fn keepalive_datagrams_are_not_delivered_as_messages() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut flow = Flow::open(
        &route(Transport::Udp, "live", peer.local_addr().unwrap()),
        &config(),
    )
    .await
    .unwrap();
    let local = flow.sender.local_addr();
    peer.send_to(b"\r\n\r\n", local).await.unwrap();
    peer.send_to(b"OPTIONS sip:x SIP/2.0\r\n\r\n", local)
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut flow.events, Duration::from_secs(2)).await,
        Some(FlowEvent::Message(
            b"OPTIONS sip:x SIP/2.0\r\n\r\n".to_vec().into()
        ))
    );
}

#[tokio::test]
async fn via_carries_the_local_address_and_rport() {
    let via = sipfleet_transport::flow::via_value(
        Transport::Udp,
        "127.0.0.1:40000".parse().unwrap(),
        "z9hG4bK1",
    );
    assert_eq!(via, "SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bK1");
    let via6 = sipfleet_transport::flow::via_value(
        Transport::Tls,
        "[::1]:5061".parse().unwrap(),
        "z9hG4bK2",
    );
    assert_eq!(via6, "SIP/2.0/TLS [::1]:5061;rport;branch=z9hG4bK2");
}

#[tokio::test]
async fn icmp_over_ipv6_loopback() {
    let Ok(closed) = UdpSocket::bind("[::1]:0").await else {
        // No IPv6 loopback on this host: nothing to test.
        return;
    };
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let mut flow = Flow::open(&route(Transport::Udp, "dead6", dead), &config())
        .await
        .unwrap();
    assert!(flow.sender.local_addr().is_ipv6());
    flow.sender.send(options("z9hG4bK6").into()).unwrap();
    assert_eq!(
        next_event(&mut flow.events, Duration::from_secs(2)).await,
        Some(FlowEvent::RouteFailure(RouteFailureKind::Icmp(
            IcmpKind::PortUnreachable
        )))
    );
}
