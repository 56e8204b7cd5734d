//! The guide's "Failback" and "RROFO Configuration": `failBack.mode`,
//! `failBack.timeout`, `unRegisterOnFailBack`, `failRegistrationOn`, calls
//! blocking failback, and the Call-ID through failover and failback.

mod registration_sim;

use std::time::Duration;

use registration_sim::{assert_lines, quick_backoff, routes, Peer, Sim};
use sipfleet_protocol::registration::{FailbackMode, RegistrationSettings, TransportError};
use sipfleet_protocol::route::Transport;

/// RROFO on, `failBack.mode=duration`, `failBack.timeout=600`.
fn rrofo() -> RegistrationSettings {
    RegistrationSettings {
        re_register_on: true,
        failback_timeout_s: 600,
        ..quick_backoff()
    }
}

/// Registers on r2 at 0 because r1 answers with ICMP errors.
fn failed_over(settings: RegistrationSettings) -> Sim {
    let mut sim = Sim::new(settings, routes(3, Transport::Udp));
    sim.set_peer("r1", Peer::Icmp);
    sim.start();
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("r2")
    );
    assert_eq!(sim.reg.primary().map(|r| r.host.as_str()), Some("r1"));
    sim.take_log();
    sim
}

#[test]
fn fails_back_after_failback_timeout() {
    let mut sim = failed_over(rrofo());
    sim.run_until(100_000);
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(599_999);
    assert!(sim.take_log().is_empty());
    sim.run_until(600_000);
    assert_lines(
        &sim.take_log(),
        &[
            "600000 failback r1 from=r2",
            "600000 unregistered r2 failback",
            "600000 subscriptions_invalidated r2 Unregistered",
            "600000 registering r1 failback",
            "600000 send r1 cseq=3 exp=3600 cid-1",
            "600000 registered r1 exp=3600 primary=true",
        ],
    );
    assert!(!sim.reg.is_failed_over());
}

/// A failback whose primary is still dead fails over again; the next failback
/// is due `failBack.timeout` after registering again.
#[test]
fn failback_to_a_dead_primary_fails_over_again() {
    let mut sim = failed_over(rrofo());
    sim.set_peer("r1", Peer::Silent);
    sim.run_until(600_000 + 3500);
    assert_lines(
        &sim.take_log(),
        &[
            "600000 failback r1 from=r2",
            "600000 unregistered r2 failback",
            "600000 subscriptions_invalidated r2 Unregistered",
            "600000 registering r1 failback",
            "600000 send r1 cseq=3 exp=3600 cid-1",
            "600500 send r1 cseq=3 exp=3600 cid-1 rtx",
            "601500 send r1 cseq=3 exp=3600 cid-1 rtx",
            "603500 route_failed r1 timeout",
            "603500 failover r2 from=r1",
            "603500 registering r2 failover",
            "603500 send r2 cseq=4 exp=3600 cid-1",
            "603500 registered r2 exp=3600 primary=false",
        ],
    );
    sim.run_until(1_203_500);
    assert_eq!(sim.log_of(&["failback"]), ["1203500 failback r1 from=r2"]);
}

/// `failBack.timeout=0`: never fail back; refreshes stay on the current route.
#[test]
fn failback_timeout_0_never_fails_back() {
    let settings = RegistrationSettings {
        failback_timeout_s: 0,
        ..rrofo()
    };
    let mut sim = failed_over(settings);
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(3 * 3600 * 1000);
    assert_eq!(sim.log_of(&["failback"]), Vec::<String>::new());
    assert_eq!(sim.send_times("r1"), [0]);
    assert_eq!(sim.send_times("r2"), [0, 3_540_000, 7_080_000, 10_620_000]);
}

/// `unRegisterOnFailBack=1`: Expires: 0 to the current SBC first (with `=0`
/// the binding is dropped silently, as `fails_back_after_failback_timeout`
/// shows).
#[test]
fn unregister_on_failback_unregisters_the_current_sbc_first() {
    let settings = RegistrationSettings {
        unregister_on_failback: true,
        ..rrofo()
    };
    let mut sim = failed_over(settings);
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(600_000);
    assert_lines(
        &sim.take_log(),
        &[
            "600000 failback r1 from=r2",
            "600000 registering r2 unregister",
            "600000 send r2 cseq=3 exp=0 cid-1",
            "600000 unregistered r2 failback",
            "600000 subscriptions_invalidated r2 Unregistered",
            "600000 registering r1 failback",
            "600000 send r1 cseq=4 exp=3600 cid-1",
            "600000 registered r1 exp=3600 primary=true",
        ],
    );
}

/// An un-REGISTER the current SBC never answers does not hold up failback
/// longer than its own retransmission schedule.
#[test]
fn unanswered_unregister_on_failback_gives_up_after_its_schedule() {
    let settings = RegistrationSettings {
        unregister_on_failback: true,
        ..rrofo()
    };
    let mut sim = failed_over(settings);
    sim.set_peer("r1", Peer::Ok);
    sim.set_peer("r2", Peer::Silent);
    sim.run_until(604_000);
    assert_eq!(sim.send_times("r2"), [0, 600_000, 600_500, 601_500]);
    assert_eq!(sim.send_times("r1"), [0, 603_500]);
}

/// A refresh on the primary goes unanswered. `failRegistrationOn=1` drops the
/// binding silently when failover begins; `=0` keeps it until the new
/// registrar accepts.
#[test]
fn fail_registration_on_drops_the_binding_when_failover_begins() {
    for (fail_registration_on, invalidation) in [
        (
            true,
            vec![
                "63500 route_failed r1 timeout",
                "63500 unregistered r1 failover_started",
                "63500 subscriptions_invalidated r1 FailoverStarted",
                "63500 failover r2 from=r1",
                "63500 registering r2 failover",
                "63500 send r2 cseq=3 exp=3600 cid-1",
                "63500 registered r2 exp=120 primary=false",
            ],
        ),
        (
            false,
            vec![
                "63500 route_failed r1 timeout",
                "63500 failover r2 from=r1",
                "63500 registering r2 failover",
                "63500 send r2 cseq=3 exp=3600 cid-1",
                "63500 subscriptions_invalidated r1 NewRegistrar",
                "63500 registered r2 exp=120 primary=false",
            ],
        ),
    ] {
        let settings = RegistrationSettings {
            fail_registration_on,
            ..rrofo()
        };
        let mut sim = Sim::new(settings, routes(3, Transport::Udp));
        for host in ["r1", "r2", "r3"] {
            sim.set_peer(host, Peer::OkFor(120));
        }
        sim.start();
        sim.run_until(59_999);
        sim.take_log();
        sim.set_peer("r1", Peer::Silent);
        sim.run_until(63_499);
        // Until failover begins, the binding on r1 holds either way.
        let r1 = sim.route("r1");
        assert!(sim.reg.may_signal_via(&r1));
        sim.run_until(63_500);
        let mut expected = vec![
            "60000 registering r1 refresh",
            "60000 send r1 cseq=2 exp=3600 cid-1",
            "60500 send r1 cseq=2 exp=3600 cid-1 rtx",
            "61500 send r1 cseq=2 exp=3600 cid-1 rtx",
        ];
        expected.extend(invalidation);
        assert_lines(&sim.take_log(), &expected);
        assert!(!sim.reg.may_signal_via(&r1));
        assert!(sim.reg.may_signal_via(&sim.route("r2")));
    }
}

/// `failRegistrationOn=0`: a binding kept through a failover lapses at its
/// expiry while the walk is still running.
#[test]
fn binding_kept_through_failover_lapses_at_its_expiry() {
    let settings = RegistrationSettings {
        fail_registration_on: false,
        ..rrofo()
    };
    let mut sim = Sim::new(settings, routes(3, Transport::Udp));
    sim.set_peer("r1", Peer::OkFor(40));
    sim.start();
    sim.run_until(19_999);
    for host in ["r1", "r2", "r3"] {
        sim.set_peer(host, Peer::Silent);
    }
    sim.run_until(39_999);
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("r1")
    );
    sim.run_until(52_000);
    assert_eq!(
        sim.log_of(&["route_failed", "unregistered", "subscriptions_invalidated"]),
        [
            "23500 route_failed r1 timeout",
            "27000 route_failed r2 timeout",
            "40000 unregistered r1 expired",
            "40000 subscriptions_invalidated r1 Unregistered",
            "52000 route_failed r3 timeout",
        ]
    );
    assert_eq!(sim.reg.registered_route(), None);
}

/// A line in a call does not fail back: it keeps refreshing on the current
/// route and fails back the moment the call ends. The Call-ID never changes.
#[test]
fn active_call_blocks_failback_until_it_ends() {
    let mut sim = Sim::new(rrofo(), routes(3, Transport::Udp));
    for host in ["r1", "r2", "r3"] {
        sim.set_peer(host, Peer::OkFor(300));
    }
    sim.set_peer("r1", Peer::Icmp);
    sim.start();
    sim.run_until(100_000);
    sim.input(|reg, now| reg.handle_calls_active(now, true));
    sim.set_peer("r1", Peer::OkFor(300));
    sim.run_until(1_000_000);
    sim.input(|reg, now| reg.handle_calls_active(now, false));
    assert_eq!(
        sim.log_of(&["registering", "failback", "registered"]),
        [
            "0 registering r1 initial",
            "0 registering r2 failover",
            "0 registered r2 exp=300 primary=false",
            "240000 registering r2 refresh",
            "240000 registered r2 exp=300 primary=false",
            "480000 registering r2 refresh",
            "480000 registered r2 exp=300 primary=false",
            "720000 registering r2 refresh",
            "720000 registered r2 exp=300 primary=false",
            "960000 registering r2 refresh",
            "960000 registered r2 exp=300 primary=false",
            "1000000 failback r1 from=r2",
            "1000000 registering r1 failback",
            "1000000 registered r1 exp=300 primary=true",
        ]
    );
    // The wait is reported once, when failback comes due, naming the
    // primary it will go to.
    assert_eq!(
        sim.log_of(&["failback_held"]),
        ["600000 failback_held r1 call_active"]
    );
    assert!(sim.sends.iter().all(|(_, s)| s.call_id == "cid-1"));
}

/// `reRegisterOn=0` behaves as `newRequests`: every refresh tries the primary
/// first (the guide's Failback example), the RROFO parameters are ignored.
#[test]
fn new_requests_refresh_tries_the_primary_first() {
    let mut sim = failed_over(RegistrationSettings::default());
    sim.run_until(3_540_000);
    assert_lines(
        &sim.take_log(),
        &[
            "3540000 failback r1 from=r2",
            "3540000 registering r1 failback",
            "3540000 send r1 cseq=3 exp=3600 cid-1",
            "3540000 route_failed r1 icmp",
            "3540000 failover r2 from=r1",
            "3540000 registering r2 failover",
            "3540000 send r2 cseq=4 exp=3600 cid-1",
            "3540000 registered r2 exp=3600 primary=false",
        ],
    );
    // Without RROFO any route may carry other requests.
    assert!(sim.reg.may_signal_via(&sim.route("r3")));
}

/// `failBack.mode=registration`: the primary is tried at each refresh; with
/// RROFO on, `onlySignalWithRegistered` holds.
#[test]
fn registration_mode_tries_the_primary_at_each_refresh() {
    let settings = RegistrationSettings {
        failback_mode: FailbackMode::Registration,
        ..rrofo()
    };
    let mut sim = failed_over(settings);
    assert!(!sim.reg.may_signal_via(&sim.route("r3")));
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(3_540_000);
    assert_eq!(
        sim.log_of(&["failback", "registered"]),
        [
            "3540000 failback r1 from=r2",
            "3540000 registered r1 exp=3600 primary=true"
        ]
    );
}

/// `failBack.mode=DNSTTL`: failback after the TTL of the current route's
/// record.
#[test]
fn dns_ttl_mode_fails_back_after_the_ttl() {
    let settings = RegistrationSettings {
        failback_mode: FailbackMode::DnsTtl,
        ..rrofo()
    };
    let mut sim = Sim::new(settings, routes(3, Transport::Udp));
    let list = sim.routes.clone();
    sim.input(|reg, now| reg.handle_routes(now, list, Some(Duration::from_secs(300))));
    sim.set_peer("r1", Peer::Icmp);
    sim.start();
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(300_000);
    assert_eq!(sim.log_of(&["failback"]), ["300000 failback r1 from=r2"]);
}

/// A failback that comes due while a failover walk is running belongs to the
/// route being left: the new route gets its own `failBack.timeout`.
#[test]
fn failback_due_during_a_failover_walk_is_not_carried_to_the_new_route() {
    let settings = RegistrationSettings {
        fail_registration_on: false,
        ..rrofo()
    };
    let mut sim = failed_over(settings);
    sim.set_peer("r1", Peer::Silent);
    sim.run_until(599_000);
    sim.set_peer("r2", Peer::Icmp);
    sim.transport_error("r2", TransportError::Icmp);
    sim.run_until(1_202_499);
    assert_eq!(
        sim.log_of(&["failover", "registered", "failback"]),
        [
            "599000 failover r1 from=r2",
            "602500 failover r3 from=r1",
            "602500 registered r3 exp=3600 primary=false",
        ]
    );
    sim.run_until(1_202_500);
    assert_eq!(sim.log_of(&["failback"]), ["1202500 failback r1 from=r3"]);
}

/// `failRegistrationOn=0` keeps the old binding during a failover walk; if its
/// flow drops meanwhile the binding goes, and the walk goes on.
#[test]
fn flow_lost_on_the_kept_binding_during_a_walk_drops_only_the_binding() {
    let settings = RegistrationSettings {
        fail_registration_on: false,
        tcp_fast_failover: true,
        tcp_fast_failover_timeout_ms: 2000,
        ..rrofo()
    };
    let mut sim = Sim::new(settings, routes(3, Transport::Tcp));
    sim.set_peer("r1", Peer::Refused);
    sim.start();
    sim.set_peer("r1", Peer::Silent);
    sim.run_until(100_000);
    sim.take_log();
    sim.transport_error("r2", TransportError::Icmp);
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("r2")
    );
    sim.run_until(101_000);
    sim.transport_error("r2", TransportError::FlowLost);
    sim.run_until(102_000);
    assert_lines(
        &sim.take_log(),
        &[
            "100000 route_failed r2 icmp",
            "100000 failover r1 from=r2",
            "100000 registering r1 failover",
            "100000 send r1 cseq=3 exp=3600 cid-1",
            "101000 route_failed r2 flow_lost",
            "101000 unregistered r2 flow_lost",
            "101000 subscriptions_invalidated r2 Unregistered",
            "102000 route_failed r1 timeout",
            "102000 failover r3 from=r1",
            "102000 registering r3 failover",
            "102000 send r3 cseq=4 exp=3600 cid-1",
            "102000 registered r3 exp=3600 primary=false",
        ],
    );
}

/// Enhanced failover's group failback: the fleet coordinator holds every line
/// while any is in a call, then asks them all to fail back together, even a
/// line whose own `failBack.timeout` has not come (or is 0).
#[test]
fn coordinator_requested_failback_waits_for_calls_then_runs() {
    let settings = RegistrationSettings {
        failback_timeout_s: 0,
        enhanced_failover: true,
        ..rrofo()
    };
    let mut sim = failed_over(settings);
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(50_000);
    sim.input(|reg, now| reg.handle_calls_active(now, true));
    sim.input(|reg, now| reg.request_failback(now));
    assert!(sim.reg.is_failback_pending());
    assert_eq!(sim.log_of(&["failback"]), Vec::<String>::new());
    sim.run_until(70_000);
    sim.input(|reg, now| reg.handle_calls_active(now, false));
    assert!(!sim.reg.is_failback_pending());
    assert_eq!(
        sim.log_of(&["failback", "registered"]),
        [
            "70000 failback r1 from=r2",
            "70000 registered r1 exp=3600 primary=true"
        ]
    );
    // On the primary there is nothing to fail back to.
    sim.input(|reg, now| reg.request_failback(now));
    assert_eq!(sim.log_of(&["failback"]).len(), 1);
}
