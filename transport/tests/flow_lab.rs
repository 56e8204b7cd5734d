//! Flows against a real SBC (Kamailio from the lab) in real time: a REGISTER
//! answered over UDP, TCP and TLS (certificate verified against the SBC's
//! host name with the lab CA), then the SBC dead (ICMP / refused) and silent
//! (no event: transaction timers are the line's job).

mod common;

use std::time::{Duration, Instant};

use common::*;
use sipfleet_lab::tools::register_text;
use sipfleet_lab::{Lab, LabConfig, Mode};
use sipfleet_protocol::keepalive::KeepaliveSettings;
use sipfleet_protocol::message::Message;
use sipfleet_protocol::route::Transport;
use sipfleet_transport::error::{IcmpKind, RouteFailureKind};
use sipfleet_transport::flow::{Flow, FlowConfig, FlowEvent};
use sipfleet_transport::tls::{TlsClient, TlsSettings};

fn lab_transport(t: Transport) -> sipfleet_lab::Transport {
    match t {
        Transport::Udp => sipfleet_lab::Transport::Udp,
        Transport::Tcp => sipfleet_lab::Transport::Tcp,
        Transport::Tls => sipfleet_lab::Transport::Tls,
    }
}

const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

#[test]
fn kamailio_ok_dead_and_silent_over_udp_tcp_tls() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tls = TlsClient::new(&TlsSettings {
        ca_file: Some(lab.ca_cert_path().to_path_buf()),
        only_ca_file: true,
    })
    .unwrap();
    let config = FlowConfig {
        connect_timeout: Duration::from_millis(500),
        ..config_with(
            tls,
            KeepaliveSettings {
                persistent_connection: true,
                ..KeepaliveSettings::default()
            },
        )
    };
    let sbc = lab.sbc(1);
    let domain = lab.domain().to_string();
    let route_for = |t: Transport| route(t, sbc.host_name(), sbc.addr(lab_transport(t)));

    rt.block_on(async {
        // OK: every transport gets an answer to its REGISTER.
        for t in ALL {
            let mut flow = Flow::open(&route_for(t), &config).await.unwrap();
            let local = flow.sender.local_addr();
            let call_id = format!("flow-lab-{t}");
            let text = register_text(lab_transport(t), local, &domain, "1001", &call_id);
            flow.sender.send(text.into_bytes().into()).unwrap();
            match next_event(&mut flow.events, Duration::from_secs(3)).await {
                Some(FlowEvent::Message(bytes)) => {
                    let Message::Response(resp) = Message::parse(bytes).unwrap() else {
                        panic!("{t}: expected a response");
                    };
                    let code = resp.status().as_u16();
                    assert!(code == 401 || code == 200, "{t}: {code}");
                    assert_eq!(resp.headers().call_id().unwrap(), call_id);
                }
                other => panic!("{t}: {other:?}"),
            }
        }
    });

    lab.set_mode(1, Mode::Dead).unwrap();
    rt.block_on(async {
        let mut udp = Flow::open(&route_for(Transport::Udp), &config)
            .await
            .unwrap();
        let local = udp.sender.local_addr();
        let text = register_text(
            lab_transport(Transport::Udp),
            local,
            &domain,
            "1001",
            "dead",
        );
        let start = Instant::now();
        udp.sender.send(text.into_bytes().into()).unwrap();
        assert_eq!(
            next_event(&mut udp.events, Duration::from_secs(2)).await,
            Some(FlowEvent::RouteFailure(RouteFailureKind::Icmp(
                IcmpKind::PortUnreachable
            )))
        );
        println!("Kamailio dead, UDP ICMP after {:?}", start.elapsed());
        for t in [Transport::Tcp, Transport::Tls] {
            let start = Instant::now();
            let err = Flow::open(&route_for(t), &config).await.unwrap_err();
            assert_eq!(err, RouteFailureKind::Refused, "{t}");
            println!("Kamailio dead, {t} refused after {:?}", start.elapsed());
        }
    });

    lab.set_mode(1, Mode::Silent).unwrap();
    rt.block_on(async {
        for t in [Transport::Udp, Transport::Tcp] {
            let mut flow = Flow::open(&route_for(t), &config).await.unwrap();
            let local = flow.sender.local_addr();
            let text = register_text(lab_transport(t), local, &domain, "1001", "silent");
            flow.sender.send(text.into_bytes().into()).unwrap();
            assert_eq!(
                next_event(&mut flow.events, Duration::from_millis(700)).await,
                None,
                "{t}"
            );
        }
        // The kernel completes the TCP handshake, nobody answers TLS.
        let err = Flow::open(&route_for(Transport::Tls), &config)
            .await
            .unwrap_err();
        assert_eq!(err, RouteFailureKind::ConnectTimeout);
    });
}
