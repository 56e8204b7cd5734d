//! "Re-register now" (`Line::register_now`, the control API's
//! `POST /v1/lines/{n}/register`) in virtual time: a bound line refreshes
//! at once; a line backing off ends its wait at once; an exchange under
//! way is left alone.

mod line_support;

use line_support::*;
use sipfleet_protocol::flow_failure::{IcmpKind, RouteFailureKind};
use sipfleet_protocol::line::{Input, LineFeatures};
use sipfleet_protocol::registration::{Phase, RegistrationSettings};
use sipfleet_protocol::route::{FlowKey, Transport};

fn register_now(sim: &mut LineSim) -> bool {
    let now = sim.now;
    let started = sim.line.register_now(now);
    sim.pump();
    started
}

#[test]
fn a_registered_line_refreshes_at_once_and_an_exchange_under_way_is_left_alone() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        vec![route(1, Transport::Udp)],
    );
    sim.start();
    sim.register_ok(3600);
    sim.run_until(10_000);
    assert!(sim.log_since(1).is_empty(), "{:#?}", sim.log);
    assert!(register_now(&mut sim));
    assert_eq!(
        sim.log_since(10_000),
        [
            "10000 registering sbc1.example.com",
            "10000 REGISTER sbc1.example.com"
        ]
    );
    // Under way: a second request changes nothing.
    assert!(!register_now(&mut sim));
    assert_eq!(sim.log_since(10_000).len(), 2);
    sim.register_ok(3600);
    assert_eq!(sim.line.phase(), Phase::Registered);
    assert_eq!(
        sim.log_since(10_000).last().map(String::as_str),
        Some("10000 registered sbc1.example.com")
    );
}

#[test]
fn a_line_backing_off_registers_at_once() {
    let mut sim = LineSim::new(
        setup(RegistrationSettings::default(), LineFeatures::default()),
        vec![route(1, Transport::Udp)],
    );
    sim.start();
    sim.input(Input::RouteFailed {
        flow: FlowKey::of(&route(1, Transport::Udp)),
        kind: RouteFailureKind::Icmp(IcmpKind::PortUnreachable),
    });
    sim.run_until(1_000);
    assert_eq!(sim.line.phase(), Phase::BackingOff, "{:#?}", sim.log);
    let registers = sim.call_ids("REGISTER").len();
    assert!(register_now(&mut sim));
    assert_eq!(sim.call_ids("REGISTER").len(), registers + 1);
    assert!(
        sim.log_since(1_000)
            .contains(&"1000 REGISTER sbc1.example.com".to_owned()),
        "{:#?}",
        sim.log
    );
    sim.register_ok(3600);
    assert_eq!(sim.line.phase(), Phase::Registered);
}
