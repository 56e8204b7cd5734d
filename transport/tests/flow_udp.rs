//! UDP flows on loopback: ICMP detection for the exact destination, message
//! exchange, local address for Via/Contact.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sipfleet_protocol::route::Transport;
use sipfleet_transport::error::{IcmpKind, RouteFailureKind};
use sipfleet_transport::flow::{Flow, FlowConfig, FlowEvent, FlowKey};
use sipfleet_transport::udp_port::UdpLocalPort;
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

/// A phone keeps one SIP port: every UDP flow opened with one configuration
/// (one fleet) binds the same local port, whatever its destination, so the
/// Contact does not change on failover.
#[tokio::test]
async fn flows_of_one_config_share_one_local_port() {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let config = config();
    let to_a = Flow::open(
        &route(Transport::Udp, "a", a.local_addr().unwrap()),
        &config,
    )
    .await
    .unwrap();
    let to_b = Flow::open(
        &route(Transport::Udp, "b", b.local_addr().unwrap()),
        &config,
    )
    .await
    .unwrap();
    let port = to_a.sender.local_addr().port();
    assert_eq!(to_b.sender.local_addr().port(), port);
    // Closed and opened again (a failback): still the same port.
    to_a.sender.close();
    drop(to_a);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = Flow::open(
        &route(Transport::Udp, "a", a.local_addr().unwrap()),
        &config,
    )
    .await
    .unwrap();
    assert_eq!(again.sender.local_addr().port(), port);
    // Each destination sees that port as the source.
    again.sender.send(options("z9hG4bKa").into()).unwrap();
    to_b.sender.send(options("z9hG4bKb").into()).unwrap();
    let mut buf = vec![0u8; 4096];
    let (_, from_a) = a.recv_from(&mut buf).await.unwrap();
    let (_, from_b) = b.recv_from(&mut buf).await.unwrap();
    assert_eq!((from_a.port(), from_b.port()), (port, port));
}

/// Two flows share the port, one destination is dead and one alive: only
/// the dead one reports ICMP, and the live one gets its answers.
#[tokio::test]
async fn icmp_stays_per_destination_on_a_shared_port() {
    let dead = closed_udp_port().await;
    let peer = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    let config = config();
    let mut to_live = Flow::open(
        &route(Transport::Udp, "live", peer.local_addr().unwrap()),
        &config,
    )
    .await
    .unwrap();
    let mut to_dead = Flow::open(&route(Transport::Udp, "dead", dead), &config)
        .await
        .unwrap();
    assert_eq!(
        to_dead.sender.local_addr().port(),
        to_live.sender.local_addr().port()
    );
    for i in 0..3 {
        to_dead
            .sender
            .send(options(&format!("z9hG4bKd{i}")).into())
            .unwrap();
        to_live
            .sender
            .send(options(&format!("z9hG4bKl{i}")).into())
            .unwrap();
        assert_eq!(
            next_event(&mut to_dead.events, Duration::from_secs(2)).await,
            Some(FlowEvent::RouteFailure(RouteFailureKind::Icmp(
                IcmpKind::PortUnreachable
            ))),
            "send {i}"
        );
        let mut buf = vec![0u8; 4096];
        let (n, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &options(&format!("z9hG4bKl{i}"))[..]);
        peer.send_to(b"SIP/2.0 200 OK\r\n\r\n", from).await.unwrap();
        assert_eq!(
            next_event(&mut to_live.events, Duration::from_secs(2)).await,
            Some(FlowEvent::Message(
                b"SIP/2.0 200 OK\r\n\r\n".to_vec().into()
            )),
            "send {i}"
        );
    }
    assert_eq!(
        next_event(&mut to_live.events, Duration::from_millis(50)).await,
        None,
        "no ICMP leaks onto the live flow"
    );
}

/// A configured port (`--sip-port`) is the one every flow binds.
#[tokio::test]
async fn a_configured_port_is_used() {
    let free = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = FlowConfig {
        udp_port: UdpLocalPort::reserve(port).unwrap(),
        ..config()
    };
    assert_eq!(config.udp_port.port(), port);
    let flow = Flow::open(
        &route(Transport::Udp, "p", peer.local_addr().unwrap()),
        &config,
    )
    .await
    .unwrap();
    assert_eq!(flow.sender.local_addr().port(), port);
}

/// An ephemeral port is chosen once, when reserved, and kept.
#[tokio::test]
async fn an_ephemeral_port_is_chosen_once() {
    let reserved = UdpLocalPort::reserve(0).unwrap();
    let port = reserved.port();
    assert_ne!(port, 0);
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = FlowConfig {
        udp_port: reserved,
        ..config()
    };
    for _ in 0..3 {
        let flow = Flow::open(
            &route(Transport::Udp, "p", peer.local_addr().unwrap()),
            &config,
        )
        .await
        .unwrap();
        assert_eq!(flow.sender.local_addr().port(), port);
    }
}

/// A datagram on the shared port from an address no flow is connected to
/// (an SBC the fleet never sent to) reaches no flow and gets ICMP port
/// unreachable, as it did when each flow had a port of its own.
#[tokio::test]
async fn a_stranger_on_the_shared_port_gets_icmp_and_reaches_no_flow() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut flow = Flow::open(
        &route(Transport::Udp, "peer", peer.local_addr().unwrap()),
        &config(),
    )
    .await
    .unwrap();
    let local = flow.sender.local_addr();
    let stranger = UdpSocket::bind("127.0.0.4:0").await.unwrap();
    stranger.connect(local).await.unwrap();
    stranger
        .send(b"OPTIONS sip:x SIP/2.0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let answer = tokio::time::timeout(Duration::from_secs(2), stranger.recv(&mut buf)).await;
    assert!(
        matches!(&answer, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{answer:?}"
    );
    assert_eq!(
        next_event(&mut flow.events, Duration::from_millis(50)).await,
        None
    );
}
