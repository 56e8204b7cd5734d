//! Detection latency on loopback, measured over many samples and printed
//! (`cargo test --test flow_latency -- --nocapture`): send -> ICMP event,
//! connect -> refused, far-end close -> FIN event, far-end abort -> RST event.
//! Each sample also checks the event kind; the figures are not asserted
//! (speed targets belong in benches).

mod common;

use std::time::{Duration, Instant};

use common::*;
use sipfleet_protocol::route::Transport;
use sipfleet_transport::error::{FlowLostKind, IcmpKind, RouteFailureKind};
use sipfleet_transport::flow::{Flow, FlowEvent};
use tokio::net::{TcpListener, UdpSocket};

const SAMPLES: usize = 20;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: min {:?} median {:?} max {:?} ({} samples)",
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
        samples.len()
    );
}

#[tokio::test]
async fn detection_latencies_on_loopback() {
    let config = config();

    let mut icmp = Vec::new();
    let dead = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut flow = Flow::open(&route(Transport::Udp, "dead", dead), &config)
        .await
        .unwrap();
    for i in 0..SAMPLES {
        let start = Instant::now();
        flow.sender
            .send(options(&format!("z9hG4bK{i}")).into())
            .unwrap();
        let event = next_event(&mut flow.events, Duration::from_secs(2)).await;
        icmp.push(start.elapsed());
        assert_eq!(
            event,
            Some(FlowEvent::RouteFailure(RouteFailureKind::Icmp(
                IcmpKind::PortUnreachable
            )))
        );
    }
    summary("UDP ICMP port unreachable (send -> event)", icmp);

    let mut refused = Vec::new();
    for _ in 0..SAMPLES {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let route = route(Transport::Tcp, "dead", addr);
        let start = Instant::now();
        let err = Flow::open(&route, &config).await.unwrap_err();
        refused.push(start.elapsed());
        assert_eq!(err, RouteFailureKind::Refused);
    }
    summary("TCP refused connect (connect -> error)", refused);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let route = route(Transport::Tcp, "sbc", listener.local_addr().unwrap());
    for (abort, kind) in [(false, FlowLostKind::Fin), (true, FlowLostKind::Reset)] {
        let mut samples = Vec::new();
        for _ in 0..SAMPLES {
            let (flow, accepted) = tokio::join!(Flow::open(&route, &config), listener.accept());
            let mut flow = flow.unwrap();
            let (peer, _) = accepted.unwrap();
            if abort {
                socket2::SockRef::from(&peer)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            }
            let start = Instant::now();
            drop(peer);
            let event = next_event(&mut flow.events, Duration::from_secs(2)).await;
            samples.push(start.elapsed());
            assert_eq!(event, Some(FlowEvent::Lost(kind.clone())));
        }
        summary(&format!("TCP far-end close -> FlowLost({kind:?})"), samples);
    }
}
