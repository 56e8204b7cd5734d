//! Connection actors over real loopback sockets with in-process peers on the
//! same runtime: several lines multiplexed over one flow, unroutable
//! requests answered, failures fanned out to every line, flows closed when
//! the last line leaves, keep-alive timings under a paused tokio clock.

use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use sipfleet_actors::connection::*;
use sipfleet_protocol::keepalive::KeepaliveSettings;
use sipfleet_protocol::message::Message as SipMessage;
use sipfleet_protocol::route::{Route, RouteSource, Transport};
use sipfleet_transport::error::{FlowLostKind, RouteFailureKind};
use sipfleet_transport::flow::{FlowConfig, FlowKey};
use sipfleet_transport::tls::{TlsClient, TlsSettings};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// What a test line saw.
#[derive(Debug)]
enum Note {
    In(Inbound),
    Fail(RouteFailure),
    Lost(FlowLost),
}

/// A stand-in for a line actor: forwards everything to the test.
struct Recorder(mpsc::UnboundedSender<Note>);

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<FlowNotice> for Recorder {
    type Result = ();
    fn handle(&mut self, msg: FlowNotice, _: &mut Context<Self>) {
        let _ = self.0.send(match msg {
            FlowNotice::Inbound(m) => Note::In(m),
            FlowNotice::RouteFailure(m) => Note::Fail(m),
            FlowNotice::FlowLost(m) => Note::Lost(m),
        });
    }
}

fn recorder() -> (LineEndpoints, mpsc::UnboundedReceiver<Note>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (LineEndpoints::of(&Recorder(tx).start()), rx)
}

fn config(keepalive: KeepaliveSettings) -> FlowConfig {
    FlowConfig {
        keepalive,
        ..FlowConfig::new(TlsClient::new(&TlsSettings::default()).unwrap())
    }
}

fn persistent() -> KeepaliveSettings {
    KeepaliveSettings {
        persistent_connection: true,
        ..KeepaliveSettings::default()
    }
}

fn route(transport: Transport, addr: SocketAddr) -> Route {
    Route {
        transport,
        host: "sbc.example.test".into(),
        addr,
        group: 0,
        priority: 0,
        weight: 0,
        source: RouteSource::Literal,
    }
}

fn parse(text: &str) -> SipMessage {
    SipMessage::parse(text.replace('\n', "\r\n").into_bytes()).unwrap()
}

fn register(user: &str, branch: &str, local: SocketAddr) -> SipMessage {
    parse(&format!(
        "REGISTER sip:example.test SIP/2.0\n\
         Via: SIP/2.0/UDP {local};rport;branch={branch}\n\
         Max-Forwards: 70\n\
         From: <sip:{user}@example.test>;tag=t{user}\n\
         To: <sip:{user}@example.test>\n\
         Call-ID: reg-{user}\n\
         CSeq: 1 REGISTER\n\
         Contact: <sip:{user}@{local}>\n\
         Content-Length: 0\n\n"
    ))
}

/// The 200 OK a registrar would send for `request`.
fn ok_for(request: &[u8]) -> Vec<u8> {
    let SipMessage::Request(req) = SipMessage::parse(request.to_vec()).unwrap() else {
        panic!("not a request");
    };
    let status = sipfleet_protocol::message::StatusCode::new(200).unwrap();
    sipfleet_protocol::message::Response::for_request(&req, status, Some("reg"))
        .to_bytes()
        .to_vec()
}

fn request_to(method: &str, user: &str, to_tag: Option<&str>) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:{user}@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsbc{method}{user}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:9000@example.test>;tag=sbc\r\n\
         To: <sip:{user}@example.test>{to_tag}\r\n\
         Call-ID: in-{method}-{user}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Note>) -> Note {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("no note within 2 s")
        .expect("recorder gone")
}

async fn recv_text(peer: &UdpSocket) -> (String, SocketAddr) {
    let mut buf = vec![0u8; 65535];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf))
        .await
        .expect("peer got nothing")
        .unwrap();
    (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
}

#[actix_rt::test]
async fn lines_share_one_udp_flow_and_get_their_own_responses() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sbc = peer.local_addr().unwrap();
    let manager = FlowManager::new(config(persistent())).start();
    let key = FlowKey {
        transport: Transport::Udp,
        remote: sbc,
    };

    let mut lines = Vec::new();
    for line in 1..=3u64 {
        let (endpoints, rx) = recorder();
        let connection = manager
            .send(Acquire {
                route: route(Transport::Udp, sbc),
                line,
                contact_user: Some(format!("555000{line}")),
                endpoints,
            })
            .await
            .unwrap();
        lines.push((line, connection, rx));
    }
    assert_eq!(manager.send(FlowUsage { key }).await.unwrap(), (1, 3));

    // Each line registers over the shared flow with its own branch.
    let local = lines[0].1.send(LocalAddr).await.unwrap().unwrap();
    for (line, connection, _) in &lines {
        let sent = connection
            .send(SendMessage {
                line: *line,
                message: register(&format!("555000{line}"), &format!("z9hG4bKl{line}"), local),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent, local);
    }
    let mut requests = Vec::new();
    for _ in 0..3 {
        let (text, from) = recv_text(&peer).await;
        assert_eq!(from, local, "every line uses the same flow");
        requests.push(text);
    }
    // Answer in reverse order.
    for text in requests.iter().rev() {
        peer.send_to(&ok_for(text.as_bytes()), local).await.unwrap();
    }
    for (line, _, rx) in &mut lines {
        match next(rx).await {
            Note::In(inbound) => {
                let SipMessage::Response(resp) = inbound.message else {
                    panic!("line {line}: expected a response");
                };
                assert_eq!(resp.status().as_u16(), 200);
                assert_eq!(
                    resp.headers().top_via().unwrap().branch(),
                    Some(format!("z9hG4bKl{line}").as_str())
                );
                assert_eq!(inbound.flow, key);
            }
            other => panic!("line {line}: {other:?}"),
        }
    }

    // An INVITE for line 2's Contact goes to line 2 only.
    peer.send_to(&request_to("INVITE", "5550002", None), local)
        .await
        .unwrap();
    match next(&mut lines[1].2).await {
        Note::In(inbound) => assert!(matches!(inbound.message, SipMessage::Request(_))),
        other => panic!("{other:?}"),
    }
    // Unknown user → 404; unknown dialog → 481; both answered by the flow.
    peer.send_to(&request_to("INVITE", "5559999", None), local)
        .await
        .unwrap();
    let (answer, _) = recv_text(&peer).await;
    assert!(answer.starts_with("SIP/2.0 404 "), "{answer}");
    peer.send_to(&request_to("BYE", "5550001", Some("nodialog")), local)
        .await
        .unwrap();
    let (answer, _) = recv_text(&peer).await;
    assert!(answer.starts_with("SIP/2.0 481 "), "{answer}");
    // A dialog registered by line 3 routes its in-dialog requests there.
    lines[2]
        .1
        .send(RegisterDialog {
            line: 3,
            call_id: "in-BYE-5550003".into(),
            local_tag: "d3".into(),
        })
        .await
        .unwrap();
    peer.send_to(&request_to("BYE", "5550003", Some("d3")), local)
        .await
        .unwrap();
    assert!(matches!(next(&mut lines[2].2).await, Note::In(_)));
    for (_, _, rx) in &mut lines {
        assert!(rx.try_recv().is_err(), "no stray deliveries");
    }

    // The flow closes when the last line releases it.
    for line in 1..=3u64 {
        manager.send(Release { key, line }).await.unwrap();
    }
    assert_eq!(manager.send(FlowUsage { key }).await.unwrap(), (0, 0));
}

#[actix_rt::test]
async fn icmp_on_udp_reaches_the_lines_with_a_request_out_and_keeps_the_flow() {
    let dead = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let manager = FlowManager::new(config(persistent())).start();
    let (a, mut rx_a) = recorder();
    let (b, mut rx_b) = recorder();
    let conn = manager
        .send(Acquire {
            route: route(Transport::Udp, dead),
            line: 1,
            contact_user: None,
            endpoints: a,
        })
        .await
        .unwrap();
    manager
        .send(Acquire {
            route: route(Transport::Udp, dead),
            line: 2,
            contact_user: None,
            endpoints: b,
        })
        .await
        .unwrap();
    let local = conn.send(LocalAddr).await.unwrap().unwrap();
    conn.send(SendMessage {
        line: 1,
        message: register("1", "z9hG4bKicmp", local),
    })
    .await
    .unwrap()
    .unwrap();
    match next(&mut rx_a).await {
        Note::Fail(f) => assert!(matches!(f.kind, RouteFailureKind::Icmp(_)), "{f:?}"),
        other => panic!("{other:?}"),
    }
    // Line 2 sent nothing: the ICMP error is none of its business (it meets
    // its own when it sends).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx_b.recv())
            .await
            .is_err(),
        "line 2 hears nothing"
    );
    // Still usable: a second send fails again the same way.
    assert!(conn
        .send(SendMessage {
            line: 2,
            message: register("2", "z9hG4bKicmp2", local),
        })
        .await
        .unwrap()
        .is_ok());
    assert!(matches!(next(&mut rx_b).await, Note::Fail(_)));
}

#[actix_rt::test]
async fn refused_tcp_is_a_route_failure_for_every_line_and_is_forgotten() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let key = FlowKey {
        transport: Transport::Tcp,
        remote: closed,
    };
    let manager = FlowManager::new(config(persistent())).start();
    let (a, mut rx_a) = recorder();
    let (b, mut rx_b) = recorder();
    let conn = manager
        .send(Acquire {
            route: route(Transport::Tcp, closed),
            line: 1,
            contact_user: None,
            endpoints: a,
        })
        .await
        .unwrap();
    manager
        .send(Acquire {
            route: route(Transport::Tcp, closed),
            line: 2,
            contact_user: None,
            endpoints: b,
        })
        .await
        .unwrap();
    for rx in [&mut rx_a, &mut rx_b] {
        match next(rx).await {
            Note::Fail(f) => {
                assert_eq!(f.kind, RouteFailureKind::Refused);
                assert_eq!(f.flow, key);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        conn.send(LocalAddr).await.unwrap(),
        Err(ConnectionError::RouteFailed(RouteFailureKind::Refused))
    );
    // The manager forgot the failed flow: the next Acquire opens a new one.
    assert_eq!(manager.send(FlowUsage { key }).await.unwrap(), (0, 0));
}

#[actix_rt::test]
async fn far_end_fin_and_rst_are_flow_lost() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sbc = listener.local_addr().unwrap();
    let manager = FlowManager::new(config(persistent())).start();
    for (abort, expected) in [(false, FlowLostKind::Fin), (true, FlowLostKind::Reset)] {
        let (endpoints, mut rx) = recorder();
        let conn = manager
            .send(Acquire {
                route: route(Transport::Tcp, sbc),
                line: 1,
                contact_user: None,
                endpoints,
            })
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        conn.send(LocalAddr).await.unwrap().unwrap();
        if abort {
            socket2::SockRef::from(&peer)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(peer);
        match next(&mut rx).await {
            Note::Lost(lost) => assert_eq!(lost.kind, expected),
            other => panic!("{other:?}"),
        }
        manager
            .send(Release {
                key: FlowKey::of(&route(Transport::Tcp, sbc)),
                line: 1,
            })
            .await
            .unwrap();
    }
}

#[actix_rt::test]
async fn tcp_keepalives_and_idle_close_in_paused_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sbc = listener.local_addr().unwrap();

    // NAT keep-alives every 25 s with a custom TCP payload.
    let nat = KeepaliveSettings {
        nat_interval: Duration::from_secs(25),
        tcp_payload: bytes::Bytes::from_static(b"ka\r\n\r\n"),
        ..KeepaliveSettings::default()
    };
    let manager = FlowManager::new(config(nat)).start();
    let (endpoints, mut rx) = recorder();
    let conn = manager
        .send(Acquire {
            route: route(Transport::Tcp, sbc),
            line: 1,
            contact_user: None,
            endpoints,
        })
        .await
        .unwrap();
    let (mut peer, _) = listener.accept().await.unwrap();
    conn.send(LocalAddr).await.unwrap().unwrap();
    tokio::time::pause();
    let start = tokio::time::Instant::now();
    let mut arrivals = Vec::new();
    let mut buf = [0u8; 6];
    for _ in 0..3 {
        peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ka\r\n\r\n");
        arrivals.push(start.elapsed().as_millis());
    }
    // Scheduled from when the flow came up (just before the pause); tokio
    // timers fire on whole milliseconds.
    assert!((24_990..=25_001).contains(&arrivals[0]), "{arrivals:?}");
    assert_eq!(arrivals[1] - arrivals[0], 25_000);
    assert_eq!(arrivals[2] - arrivals[1], 25_000);
    // Sending keep-alives, so no idle close: no event at all.
    assert!(rx.try_recv().is_err());
    tokio::time::resume();

    // Defaults (no keep-alives, not persistent): closed after 60 s idle.
    let manager = FlowManager::new(config(KeepaliveSettings::default())).start();
    let (endpoints, mut rx) = recorder();
    let conn = manager
        .send(Acquire {
            route: route(Transport::Tcp, sbc),
            line: 1,
            contact_user: None,
            endpoints,
        })
        .await
        .unwrap();
    let (_peer, _) = listener.accept().await.unwrap();
    conn.send(LocalAddr).await.unwrap().unwrap();
    tokio::time::pause();
    let start = tokio::time::Instant::now();
    let note = rx.recv().await.unwrap();
    let waited = start.elapsed().as_millis();
    match note {
        Note::Lost(lost) => assert_eq!(lost.kind, FlowLostKind::Idle),
        other => panic!("{other:?}"),
    }
    assert!((59_990..=60_001).contains(&waited), "{waited}");
}

#[actix_rt::test]
async fn tcp_flow_closes_only_when_the_last_line_releases_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sbc = listener.local_addr().unwrap();
    let key = FlowKey {
        transport: Transport::Tcp,
        remote: sbc,
    };
    let manager = FlowManager::new(config(persistent())).start();
    let mut conns = Vec::new();
    for line in [1u64, 2] {
        let (endpoints, rx) = recorder();
        let conn = manager
            .send(Acquire {
                route: route(Transport::Tcp, sbc),
                line,
                contact_user: None,
                endpoints,
            })
            .await
            .unwrap();
        conns.push((conn, rx));
    }
    // One connection for both lines.
    let (mut peer, _) = listener.accept().await.unwrap();
    assert_eq!(conns[0].0, conns[1].0);
    assert_eq!(manager.send(FlowUsage { key }).await.unwrap(), (1, 2));

    manager.send(Release { key, line: 1 }).await.unwrap();
    let mut buf = [0u8; 1];
    let still_open = tokio::time::timeout(Duration::from_millis(100), peer.read(&mut buf)).await;
    assert!(still_open.is_err(), "flow closed while line 2 uses it");

    manager.send(Release { key, line: 2 }).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), peer.read(&mut buf))
        .await
        .expect("flow not closed")
        .unwrap();
    assert_eq!(n, 0, "we close with FIN");
    assert_eq!(manager.send(FlowUsage { key }).await.unwrap(), (0, 0));
    // Closing is ours: no FlowLost to anyone.
    for (_, rx) in &mut conns {
        assert!(rx.try_recv().is_err());
    }
}

#[actix_rt::test]
async fn garbage_datagrams_are_dropped_and_the_flow_goes_on() {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sbc = peer.local_addr().unwrap();
    let manager = FlowManager::new(config(persistent())).start();
    let (endpoints, mut rx) = recorder();
    let conn = manager
        .send(Acquire {
            route: route(Transport::Udp, sbc),
            line: 1,
            contact_user: Some("5550001".into()),
            endpoints,
        })
        .await
        .unwrap();
    let local = conn.send(LocalAddr).await.unwrap().unwrap();
    peer.send_to(b"\x00\x01garbage\xff", local).await.unwrap();
    peer.send_to(b"SIP/2.0 200\r\n\r\n", local).await.unwrap();
    peer.send_to(&request_to("OPTIONS", "5550001", None), local)
        .await
        .unwrap();
    match next(&mut rx).await {
        Note::In(inbound) => assert!(matches!(inbound.message, SipMessage::Request(_))),
        other => panic!("{other:?}"),
    }
    assert!(rx.try_recv().is_err());
}

#[actix_rt::test]
async fn lines_detaching_directly_also_close_the_flow() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sbc = listener.local_addr().unwrap();
    let key = FlowKey {
        transport: Transport::Tcp,
        remote: sbc,
    };
    let manager = FlowManager::new(config(persistent())).start();
    let (endpoints, _rx) = recorder();
    let conn = manager
        .send(Acquire {
            route: route(Transport::Tcp, sbc),
            line: 7,
            contact_user: None,
            endpoints,
        })
        .await
        .unwrap();
    let (mut peer, _) = listener.accept().await.unwrap();
    conn.send(Detach { line: 7 }).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(2), peer.read(&mut buf))
        .await
        .expect("flow not closed")
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(manager.send(FlowUsage { key }).await.unwrap(), (0, 0));
}

/// One fleet, one SIP port: the manager's UDP flows to two SBCs bind the
/// same local port (the line's Contact does not change when it moves). One
/// SBC is dead: only its flow reports ICMP; the live one's answer arrives.
#[actix_rt::test]
async fn udp_flows_to_two_sbcs_share_the_local_port_and_icmp_stays_per_sbc() {
    let live = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let manager = FlowManager::new(config(persistent())).start();
    let (endpoints, mut rx) = recorder();
    let mut conns = Vec::new();
    for addr in [live.local_addr().unwrap(), dead] {
        let conn = manager
            .send(Acquire {
                route: route(Transport::Udp, addr),
                line: 1,
                contact_user: Some("5550001".into()),
                endpoints: endpoints.clone(),
            })
            .await
            .unwrap();
        conns.push(conn);
    }
    let to_live = conns[0].send(LocalAddr).await.unwrap().unwrap();
    let to_dead = conns[1].send(LocalAddr).await.unwrap().unwrap();
    assert_eq!(to_live.port(), to_dead.port(), "one SIP port per fleet");

    for (conn, branch) in [(&conns[1], "z9hG4bKdead"), (&conns[0], "z9hG4bKlive")] {
        conn.send(SendMessage {
            line: 1,
            message: register("5550001", branch, to_live),
        })
        .await
        .unwrap()
        .unwrap();
    }
    let (text, from) = recv_text(&live).await;
    assert_eq!(from, to_live);
    live.send_to(&ok_for(text.as_bytes()), from).await.unwrap();

    let mut failures = Vec::new();
    let mut answered = false;
    while failures.is_empty() || !answered {
        match next(&mut rx).await {
            Note::Fail(f) => failures.push(f.flow.remote),
            Note::In(inbound) => {
                assert_eq!(inbound.flow.remote, live.local_addr().unwrap());
                answered = true;
            }
            Note::Lost(l) => panic!("unexpected loss {l:?}"),
        }
    }
    assert_eq!(failures, [dead], "only the dead SBC's flow reports ICMP");
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_err(),
        "nothing else"
    );
}
