//! A whole line in virtual time, calls side: the guide's rules that sit
//! between the registration and the calls, driven through `Line` inputs
//! and asserted on its outputs to the millisecond.

mod line_support;

use line_support::*;
use sipfleet_protocol::flow_failure::{IcmpKind, RouteFailureKind};
use sipfleet_protocol::line::{Command, Input, LineFeatures};
use sipfleet_protocol::message::{HeaderName, Message, Method};
use sipfleet_protocol::registration::{FailbackMode, RegistrationSettings};
use sipfleet_protocol::route::{FlowKey, Transport};

fn udp(n: u8) -> sipfleet_protocol::route::Route {
    route(n, Transport::Udp)
}

/// Registered on SBC 1 (of three) at 0 ms.
fn registered(settings: RegistrationSettings, features: LineFeatures) -> LineSim {
    let mut sim = LineSim::new(setup(settings, features), vec![udp(1), udp(2), udp(3)]);
    sim.start();
    sim.register_ok(3600);
    sim
}

fn failover_settings() -> RegistrationSettings {
    RegistrationSettings {
        re_register_on: true,
        only_signal_with_registered: false,
        ..RegistrationSettings::default()
    }
}

#[test]
fn an_invite_that_gets_no_answer_moves_to_the_next_route_with_the_same_call_id() {
    let mut sim = registered(failover_settings(), LineFeatures::default());
    sim.run_until(10_000);
    let call_id = sim.command(Command::Call {
        target: "sip:2000@example.com".into(),
    });
    sim.run_until(13_999);
    // RFC 3261 Timer A on SBC 1 (retryMaxCount=3: 0.5, 1 s), the route
    // fails at 3.5 s and the INVITE goes to SBC 2 at once.
    assert_eq!(
        sim.log_since(10_000),
        vec![
            "10000 call_started sbc1.example.com",
            "10000 INVITE sbc1.example.com",
            "10500 INVITE sbc1.example.com",
            "11500 INVITE sbc1.example.com",
            "13500 call_route_failed sbc1.example.com",
            "13500 INVITE sbc2.example.com",
        ]
    );
    assert!(sim.call_ids("INVITE").iter().all(|id| *id == call_id));
    let first = &sim
        .sent
        .iter()
        .find(|(_, _, m)| {
            m.as_request()
                .is_some_and(|r| *r.method() == Method::Invite)
        })
        .unwrap()
        .2;
    let (_, last) = sim.last("INVITE");
    assert_eq!(
        first.headers().from().unwrap().tag(),
        last.headers().from().unwrap().tag(),
        "same dialog: same From tag"
    );
}

#[test]
fn with_only_signal_with_registered_the_call_ends_instead_of_trying_another_sbc() {
    let settings = RegistrationSettings {
        re_register_on: true,
        only_signal_with_registered: true,
        ..RegistrationSettings::default()
    };
    let mut sim = registered(settings, LineFeatures::default());
    sim.command(Command::Call {
        target: "sip:2000@example.com".into(),
    });
    sim.run_until(40_000);
    let log = sim.log_since(0);
    assert!(
        !log.iter().any(|l| l.contains("INVITE sbc2")),
        "no INVITE to an SBC without the registration: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l == "32000 call_ended sbc1.example.com"),
        "the only route is the last: Timer B runs out at 32 s: {log:#?}"
    );
}

fn invite_from(sim: &LineSim, n: u8) -> Message {
    let text = format!(
        "INVITE sip:1001@127.0.0.1:40000 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.{}:5060;branch=z9hG4bK-in{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:2000@example.com>;tag=far{n}\r\n\
         To: <sip:1001@example.com>\r\n\
         Call-ID: in-{n}@example.com\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:2000@10.0.0.2:5060>\r\n\
         Content-Length: 0\r\n\r\n",
        10 + n
    );
    let _ = sim;
    Message::parse(text.into_bytes()).unwrap()
}

#[test]
fn only_signal_with_registered_ignores_requests_from_another_sbc() {
    let settings = RegistrationSettings {
        re_register_on: true,
        only_signal_with_registered: true,
        ..RegistrationSettings::default()
    };
    let mut sim = registered(settings, LineFeatures::default());
    // The line holds SBC 2's flow too (an earlier REGISTER went there).
    sim.input(Input::FlowOpened {
        flow: FlowKey::of(&udp(2)),
        local: local(),
    });
    let before = sim.sent.len();
    let invite = invite_from(&sim, 2);
    sim.input(Input::Received {
        flow: FlowKey::of(&udp(2)),
        message: invite,
    });
    assert_eq!(sim.sent.len(), before, "no answer to SBC 2: {:#?}", sim.log);
    assert!(sim
        .outputs
        .iter()
        .any(|(_, o)| o.contains("IgnoredRequest")));
    // The same INVITE from the registrar rings.
    let invite = invite_from(&sim, 1);
    sim.input(Input::Received {
        flow: FlowKey::of(&udp(1)),
        message: invite,
    });
    assert!(
        sim.log.iter().any(|l| l == "0 180 sbc1.example.com"),
        "{:#?}",
        sim.log
    );
    assert!(!sim.log.iter().any(|l| l.ends_with("sbc2.example.com")));
}

#[test]
fn an_emergency_call_goes_out_32_s_after_a_line_seize_nobody_answers() {
    let mut sim = registered(failover_settings(), LineFeatures::default());
    sim.run_until(1_000);
    let call_id = sim.command(Command::Emergency {
        target: "sip:911@example.com".into(),
    });
    sim.run_until(33_000);
    let subscribes: Vec<String> = sim
        .log_since(1_000)
        .into_iter()
        .filter(|l| l.contains("SUBSCRIBE"))
        .collect();
    // voIpProt.SIP.lineSeize.retries=10: 0, 0.5, 1.5, 3.5, 7.5, 11.5,
    // 15.5, 19.5, 23.5, 27.5, 31.5 s after the seize started.
    let times: Vec<u64> = subscribes
        .iter()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        times,
        vec![1000, 1500, 2500, 4500, 8500, 12500, 16500, 20500, 24500, 28500, 32500]
    );
    let (flow, invite) = sim.last("INVITE");
    assert_eq!(flow, FlowKey::of(&udp(1)));
    assert_eq!(invite.headers().call_id().unwrap(), call_id);
    let invite_at = sim
        .log
        .iter()
        .find(|l| l.contains(" INVITE "))
        .map(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap());
    assert_eq!(invite_at, Some(33_000), "32 s after the seize began");
}

#[test]
fn a_call_holds_failback_until_it_is_hung_up() {
    let settings = RegistrationSettings {
        re_register_on: true,
        fail_registration_on: false,
        only_signal_with_registered: false,
        failback_mode: FailbackMode::Duration,
        failback_timeout_s: 60,
        ..RegistrationSettings::default()
    };
    let mut sim = registered(settings, LineFeatures::default());
    sim.run_until(60_000);
    // SBC 1 answers with ICMP: failover to SBC 2.
    sim.input(Input::RouteFailed {
        flow: FlowKey::of(&udp(1)),
        kind: RouteFailureKind::Icmp(IcmpKind::PortUnreachable),
    });
    sim.register_ok(3600);
    sim.command(Command::Call {
        target: "sip:2000@example.com".into(),
    });
    sim.ok_to(Method::Invite);
    sim.run_until(200_000);
    let during: Vec<String> = sim.log_since(60_001);
    assert!(
        !during.iter().any(|l| l.contains("REGISTER sbc1")),
        "failback held by the call: {during:#?}"
    );
    sim.command(Command::Hangup);
    sim.ok_to(Method::Bye);
    sim.register_ok(3600);
    let after = sim.log_since(200_000);
    assert_eq!(
        after,
        vec![
            "200000 BYE sbc2.example.com",
            "200000 call_ended sbc2.example.com",
            "200000 failback sbc1.example.com",
            "200000 unregistered sbc2.example.com",
            "200000 subscriptions_invalidated sbc2.example.com",
            "200000 registering sbc1.example.com",
            "200000 REGISTER sbc1.example.com",
            "200000 registered sbc1.example.com",
        ],
        "{:#?}",
        sim.log
    );
}

#[test]
fn an_established_call_sends_rtp_every_20_ms_and_stops_at_hangup() {
    let mut sim = registered(failover_settings(), LineFeatures::default());
    sim.command(Command::Call {
        target: "sip:2000@example.com".into(),
    });
    sim.ok_to(Method::Invite);
    sim.run_until(1_000);
    assert_eq!(sim.media_packets, 50, "one packet every 20 ms for 1 s");
    sim.command(Command::Hangup);
    sim.run_until(2_000);
    assert_eq!(sim.media_packets, 50);
}

#[test]
fn an_invite_for_a_new_call_is_answered_from_the_line_not_a_fixed_tag() {
    let mut sim = registered(failover_settings(), LineFeatures::default());
    let options = Message::parse(
        "OPTIONS sip:1001@127.0.0.1:40000 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.11:5060;branch=z9hG4bK-o1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:sbc@example.com>;tag=o1\r\n\
         To: <sip:1001@example.com>\r\n\
         Call-ID: opt-1@example.com\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
            .as_bytes()
            .to_vec(),
    )
    .unwrap();
    sim.input(Input::Received {
        flow: FlowKey::of(&udp(1)),
        message: options,
    });
    let (_, ok) = sim.last("200");
    let allow = ok
        .headers()
        .get(HeaderName::Allow)
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("INVITE") && allow.contains("BYE"), "{allow}");
    let tag = ok
        .headers()
        .to()
        .unwrap()
        .tag()
        .unwrap_or_default()
        .to_owned();
    assert!(!tag.is_empty() && tag != "sf", "{tag}");
}

#[test]
fn an_emergency_call_without_a_registration_still_goes_via_the_primary_route() {
    let mut sim = LineSim::new(
        setup(failover_settings(), LineFeatures::default()),
        vec![udp(1), udp(2)],
    );
    sim.start();
    // The registrar refuses the line: no binding anywhere.
    let (flow, register) = sim.last("REGISTER");
    sim.answer(flow, &register, 403, &[]);
    assert!(sim.line.status().registered_route.is_none());
    sim.command(Command::Emergency {
        target: "sip:911@example.com".into(),
    });
    let (flow, _) = sim.last("SUBSCRIBE");
    assert_eq!(
        flow,
        FlowKey::of(&udp(1)),
        "the line seize goes to the primary"
    );
    sim.run_until(33_000);
    let (flow, _) = sim.last("INVITE");
    assert_eq!(flow, FlowKey::of(&udp(1)), "and so does the INVITE");
}

#[test]
fn the_line_claims_only_its_own_messages_on_a_shared_flow() {
    let mut sim = registered(failover_settings(), LineFeatures::default());
    let (_, register) = sim.last("REGISTER");
    assert!(sim.line.accepts(&register), "its registration's Call-ID");
    sim.command(Command::Call {
        target: "sip:2000@example.com".into(),
    });
    let (_, invite) = sim.last("INVITE");
    assert!(sim.line.accepts(&invite), "its call's Call-ID");
    let stranger = invite_from(&sim, 1);
    assert!(!sim.line.accepts(&stranger), "another dialog");
}

fn pinned_settings() -> RegistrationSettings {
    RegistrationSettings {
        re_register_on: true,
        only_signal_with_registered: true,
        ..RegistrationSettings::default()
    }
}

/// The guide's `reRegisterOn=1`: "the phone attempts to register to any
/// server before continuing with any other pending SIP request. If the
/// registration succeeds, signaling will proceed with that server". An
/// INVITE whose SBC answers with ICMP waits for the line's new registration
/// and then goes to the SBC that holds it, with its Call-ID.
#[test]
fn an_invite_whose_sbc_dies_goes_to_the_sbc_the_line_registers_on_next() {
    let mut sim = registered(pinned_settings(), LineFeatures::default());
    sim.run_until(10_000);
    let call_id = sim.command(Command::Call {
        target: "sip:2000@example.com".into(),
    });
    sim.run_until(10_100);
    sim.input(Input::RouteFailed {
        flow: FlowKey::of(&udp(1)),
        kind: RouteFailureKind::Icmp(IcmpKind::PortUnreachable),
    });
    // SBC 1 answers another request of the line with ICMP (with
    // authOptimizedInFailover=0 the authenticated REGISTER goes to the
    // primary): nothing of the call is there any more.
    sim.run_until(10_150);
    sim.input(Input::RouteFailed {
        flow: FlowKey::of(&udp(1)),
        kind: RouteFailureKind::Icmp(IcmpKind::PortUnreachable),
    });
    sim.run_until(10_200);
    sim.register_ok(3600);
    sim.run_until(10_300);
    let log = sim.log_since(10_000);
    assert!(
        !log.iter().any(|l| l.contains("call_ended")),
        "the call waits for the registration instead of ending: {log:#?}"
    );
    assert_eq!(
        sim.last("INVITE").0,
        FlowKey::of(&udp(2)),
        "the INVITE follows the registration to SBC 2: {log:#?}"
    );
    assert!(sim.call_ids("INVITE").iter().all(|id| *id == call_id));
    assert_eq!(
        log.iter()
            .filter(|l| l.ends_with("INVITE sbc2.example.com"))
            .collect::<Vec<_>>(),
        vec!["10200 INVITE sbc2.example.com"],
        "one INVITE to SBC 2, right after its 200 OK to the REGISTER: {log:#?}"
    );
}

/// A pinned INVITE waiting for the registration does not wait past its
/// Timer B budget: with no SBC answering, it ends 32 s after the first
/// INVITE, not when the registration's own walk ends.
#[test]
fn an_invite_waiting_for_a_registration_ends_at_its_timer_b() {
    let mut sim = registered(pinned_settings(), LineFeatures::default());
    sim.run_until(10_000);
    sim.command(Command::Call {
        target: "sip:2000@example.com".into(),
    });
    sim.run_until(10_100);
    sim.input(Input::RouteFailed {
        flow: FlowKey::of(&udp(1)),
        kind: RouteFailureKind::Icmp(IcmpKind::PortUnreachable),
    });
    sim.run_until(60_000);
    let log = sim.log_since(10_000);
    let ended: Vec<&String> = log.iter().filter(|l| l.contains("call_ended")).collect();
    assert_eq!(ended.len(), 1, "{log:#?}");
    assert!(
        ended[0].starts_with("42000 "),
        "Timer B: 32 s after the INVITE at 10 s: {log:#?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("INVITE sbc2") || l.contains("INVITE sbc3")),
        "no INVITE where no registration is: {log:#?}"
    );
}
