//! A whole line in virtual time, registration side: flows, DNS, the
//! transport failures' reading by the guide, subscriptions following the
//! registrar, and the driver contract (spurious timeouts, deadlines
//! announced only when they move).

mod line_support;

use line_support::*;
use sipfleet_protocol::flow_failure::{IcmpKind, RouteFailureKind};
use sipfleet_protocol::line::{Input, LineFeatures, Output};
use sipfleet_protocol::message::{HeaderName, Method};
use sipfleet_protocol::registration::RegistrationSettings;
use sipfleet_protocol::route::{FlowKey, Route, Transport};

fn tls(n: u8) -> Route {
    route(n, Transport::Tls)
}

fn udp(n: u8) -> Route {
    route(n, Transport::Udp)
}

fn mwi() -> LineFeatures {
    LineFeatures {
        mwi: true,
        ..LineFeatures::default()
    }
}

#[test]
fn the_register_waits_for_its_flow_and_goes_when_it_opens() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        vec![udp(1), udp(2)],
    );
    sim.start();
    assert_eq!(
        sim.outputs.first().map(|(_, o)| o.as_str()),
        Some("open sbc1.example.com")
    );
    let (flow, register) = sim.last("REGISTER");
    assert_eq!(flow, FlowKey::of(&udp(1)));
    let via = register.headers().get(HeaderName::Via).unwrap().to_owned();
    assert!(
        via.contains("127.0.0.1:40000"),
        "our address on the flow: {via}"
    );
}

#[test]
fn a_tls_handshake_failure_fails_over_at_once_and_says_why() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        vec![tls(1), tls(2)],
    );
    sim.unreachable.insert(
        FlowKey::of(&tls(1)),
        RouteFailureKind::TlsHandshake {
            reason: "certificate verify failed".into(),
        },
    );
    sim.start();
    assert_eq!(
        sim.log,
        vec![
            "0 registering sbc1.example.com",
            "0 route_failed sbc1.example.com",
            "0 failover sbc2.example.com",
            "0 registering sbc2.example.com",
            "0 REGISTER sbc2.example.com",
        ]
    );
    assert!(
        sim.outputs
            .iter()
            .any(|(_, o)| o.contains("RouteFailed") && o.contains("certificate verify failed")),
        "the TLS detail reaches the log: {:#?}",
        sim.outputs
    );
}

#[test]
fn a_register_accepted_by_a_new_sbc_moves_the_subscription_there_at_once() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), mwi()),
        vec![udp(1), udp(2)],
    );
    sim.start();
    sim.register_ok(3600);
    assert_eq!(sim.last("SUBSCRIBE").0, FlowKey::of(&udp(1)));
    sim.ok_to(Method::Subscribe);
    sim.run_until(60_000);
    sim.input(Input::RouteFailed {
        flow: FlowKey::of(&udp(1)),
        kind: RouteFailureKind::Icmp(IcmpKind::PortUnreachable),
    });
    sim.register_ok(3600);
    let after: Vec<String> = sim
        .log_since(60_000)
        .into_iter()
        .filter(|l| {
            l.contains("REGISTER")
                || l.contains("SUBSCRIBE")
                || l.contains("registered")
                || l.contains("invalidated")
        })
        .collect();
    assert_eq!(
        after,
        vec![
            "60000 REGISTER sbc2.example.com",
            "60000 subscriptions_invalidated sbc1.example.com",
            "60000 registered sbc2.example.com",
            "60000 subscription_invalidated sbc1.example.com",
            "60000 SUBSCRIBE sbc2.example.com",
        ]
    );
    let to_sbc1 = sim
        .sent
        .iter()
        .filter(|(at, flow, m)| {
            *at >= 60_000 && *flow == FlowKey::of(&udp(1)) && m.as_request().is_some()
        })
        .count();
    assert_eq!(to_sbc1, 0, "nothing for the old SBC");
}

#[test]
fn fail_registration_on_invalidates_subscriptions_at_failover_start() {
    let settings = RegistrationSettings {
        re_register_on: true,
        fail_registration_on: true,
        ..RegistrationSettings::default()
    };
    let mut sim = LineSim::new(setup(settings, mwi()), vec![udp(1), udp(2)]);
    sim.start();
    sim.register_ok(3600);
    sim.ok_to(Method::Subscribe);
    sim.run_until(60_000);
    sim.input(Input::RouteFailed {
        flow: FlowKey::of(&udp(1)),
        kind: RouteFailureKind::Icmp(IcmpKind::PortUnreachable),
    });
    let invalidated = sim
        .log_since(60_000)
        .iter()
        .position(|l| l == "60000 subscriptions_invalidated sbc1.example.com");
    let register = sim
        .log_since(60_000)
        .iter()
        .position(|l| l == "60000 REGISTER sbc2.example.com");
    assert!(
        invalidated.is_some() && invalidated < register,
        "invalidated before the REGISTER to SBC 2: {:#?}",
        sim.log
    );
    sim.run_until(60_040);
    sim.register_ok(3600);
    assert_eq!(
        sim.log_since(60_040),
        vec![
            "60040 registered sbc2.example.com",
            "60040 SUBSCRIBE sbc2.example.com"
        ]
    );
}

#[test]
fn a_spurious_timeout_does_nothing_and_deadlines_are_announced_when_they_move() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        vec![udp(1)],
    );
    sim.start();
    sim.register_ok(3600);
    let deadline = sim.line.poll_timeout().expect("a refresh is due");
    let sent = sim.sent.len();
    let outputs = sim.outputs.len();
    // Woken early, twice: nothing happens and no new deadline is announced.
    for _ in 0..2 {
        let now = sim.now;
        sim.line.handle_input(now, Input::Timeout);
        let mut announced = Vec::new();
        while let Some(o) = sim.line.poll_output() {
            announced.push(format!("{o:?}"));
        }
        assert!(announced.is_empty(), "{announced:?}");
    }
    assert_eq!(sim.sent.len(), sent);
    assert_eq!(sim.outputs.len(), outputs);
    assert_eq!(sim.line.poll_timeout(), Some(deadline));
    // Refresh at expires - overlap (3600 - 60 s).
    sim.run_until(3_540_000);
    assert_eq!(
        sim.log_since(3_540_000)
            .iter()
            .filter(|l| l.contains("REGISTER"))
            .count(),
        1
    );
}

#[test]
fn a_target_without_routes_is_asked_again_after_2_then_4_s() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        vec![udp(1)],
    );
    let now = sim.now;
    sim.line.start(now);
    let mut resolves = Vec::new();
    let ask = |sim: &mut LineSim, resolves: &mut Vec<u64>| {
        while let Some(o) = sim.line.poll_output() {
            if let Output::Resolve { .. } = o {
                resolves.push(sim.ms());
            }
        }
    };
    ask(&mut sim, &mut resolves);
    for at in [0u64, 2_000, 6_000] {
        sim.now = sim.at(at);
        let now = sim.now;
        sim.line.handle_input(now, Input::Timeout);
        ask(&mut sim, &mut resolves);
        sim.line.handle_input(
            now,
            Input::ResolveFailed {
                index: 0,
                error: "SERVFAIL".into(),
            },
        );
        ask(&mut sim, &mut resolves);
    }
    assert_eq!(resolves, vec![0, 2_000, 6_000]);
    assert_eq!(sim.line.poll_timeout(), Some(sim.at(14_000)), "then 8 s");
}

#[test]
fn the_status_counts_register_retransmissions() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        vec![udp(1)],
    );
    sim.start();
    assert_eq!(sim.line.status().register_retransmissions, 0);
    // Unanswered over UDP: Timer E resends at 0.5, 1.5 and 3.5 s.
    sim.run_until(3_600);
    let registers = sim
        .sent
        .iter()
        .filter(|(_, _, m)| {
            m.as_request()
                .is_some_and(|r| *r.method() == Method::Register)
        })
        .count();
    assert!(registers >= 4, "{registers} REGISTERs sent");
    assert_eq!(
        sim.line.status().register_retransmissions as usize,
        registers - 1
    );
}
