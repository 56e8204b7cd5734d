//! Several configured servers (`reg.x.server.1`, `reg.x.server.2`, ...) on
//! one line, in virtual time: server 2 takes over when every route of server
//! 1 failed, each server's requests use its own `retryTimeOut`,
//! `retryMaxCount` and `expires`, and failback goes back to server 1.

mod registration_sim;

use std::time::Duration;

use registration_sim::{assert_lines, quick_backoff, route, Peer, Sim};
use sipfleet_protocol::registration::{RegisterResponse, RegistrationSettings, ServerTimers};
use sipfleet_protocol::route::{Route, Transport};
use sipfleet_protocol::servers::SERVER_GROUP_STRIDE;

/// Server 1: `a1`, `a2` (one SRV record); server 2: `b1`; server 3: `c1`.
fn three_servers() -> Vec<Route> {
    let s = SERVER_GROUP_STRIDE;
    vec![
        route("a1", Transport::Udp, 0, 1),
        route("a2", Transport::Udp, 0, 2),
        route("b1", Transport::Udp, s, 1),
        route("c1", Transport::Udp, 2 * s, 1),
    ]
}

fn timers(retry_timeout_ms: u32, retry_max_count: u32, expires_s: u32) -> ServerTimers {
    ServerTimers {
        retry_timeout_ms,
        retry_max_count,
        expires_s,
    }
}

/// "`reg.1.server.2` takes over when every route of server 1 is dead": the
/// line registers on server 2, is failed over (its primary is server 1's
/// top route, not server 2's), and every request kept the Call-ID.
#[test]
fn server_2_takes_over_when_every_route_of_server_1_is_dead() {
    let mut sim = Sim::new(quick_backoff(), three_servers());
    sim.set_peer("a1", Peer::Icmp);
    sim.set_peer("a2", Peer::Icmp);
    sim.start();
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering a1 initial",
            "0 send a1 cseq=1 exp=3600 cid-1",
            "0 route_failed a1 icmp",
            "0 failover a2 from=a1",
            "0 registering a2 failover",
            "0 send a2 cseq=2 exp=3600 cid-1",
            "0 route_failed a2 icmp",
            "0 failover b1 from=a2",
            "0 registering b1 failover",
            "0 send b1 cseq=3 exp=3600 cid-1",
            "0 registered b1 exp=3600 primary=false",
        ],
    );
    assert_eq!(sim.reg.primary().map(|r| r.host.as_str()), Some("a1"));
    assert!(sim.reg.is_failed_over());
}

/// Each server's `retryTimeOut` / `retryMaxCount` shape the sends to its
/// routes (guide, "UDP - Failover Timing Controls"), and its `expires` is
/// what the REGISTER asks for: server 1 sends twice 5 s apart, server 2
/// three times on RFC 3261 intervals (0, 0.5, 1.5 s, failing at 3.5 s),
/// server 3 registers asking 600 s.
#[test]
fn each_server_uses_its_own_retry_timing_and_expires() {
    let settings = RegistrationSettings {
        expires_s: 600,
        per_server: vec![timers(5000, 2, 3600), timers(0, 3, 1800), timers(0, 3, 600)],
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, three_servers());
    sim.set_peer("a1", Peer::Silent);
    sim.set_peer("a2", Peer::Silent);
    sim.set_peer("b1", Peer::Silent);
    sim.start();
    sim.run_until(40_000);
    assert_eq!(sim.send_times("a1"), [0, 5000]);
    assert_eq!(sim.send_times("a2"), [10_000, 15_000]);
    assert_eq!(sim.send_times("b1"), [20_000, 20_500, 21_500]);
    assert_eq!(sim.send_times("c1"), [23_500]);
    let asked: Vec<(&str, u32)> = sim
        .sends
        .iter()
        .filter(|(_, s)| !s.retransmission)
        .map(|(_, s)| (s.route.host.as_str(), s.expires))
        .collect();
    assert_eq!(
        asked,
        [("a1", 3600), ("a2", 3600), ("b1", 1800), ("c1", 600)]
    );
    assert_eq!(
        sim.log_of(&["registered"]),
        ["23500 registered c1 exp=600 primary=false"]
    );
}

/// A 423 from a server with a short `expires` raises what that server is
/// asked for to its Min-Expires; server 1 keeps asking its own, longer,
/// expiry.
#[test]
fn min_expires_raises_the_floor_under_every_server() {
    let settings = RegistrationSettings {
        expires_s: 60,
        per_server: vec![timers(0, 3, 3600), timers(0, 3, 60)],
        ..quick_backoff()
    };
    let s = SERVER_GROUP_STRIDE;
    let routes = vec![
        route("a1", Transport::Udp, 0, 1),
        route("b1", Transport::Udp, s, 1),
    ];
    let mut sim = Sim::new(settings, routes);
    sim.set_peer("a1", Peer::Icmp);
    sim.set_peer("b1", Peer::Silent);
    sim.start();
    let cseq = sim.sends.last().map(|(_, s)| s.cseq).unwrap();
    sim.set_peer("b1", Peer::Ok);
    sim.input(|reg, now| {
        reg.handle_response(
            now,
            RegisterResponse {
                min_expires: Some(Duration::from_secs(120)),
                ..RegisterResponse::new(cseq, 423)
            },
        )
    });
    let asked: Vec<(&str, u32)> = sim
        .sends
        .iter()
        .map(|(_, s)| (s.route.host.as_str(), s.expires))
        .collect();
    assert_eq!(asked, [("a1", 3600), ("b1", 60), ("b1", 120)]);
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("b1")
    );
    // The failback to server 1 still asks server 1's expiry.
    sim.set_peer("a1", Peer::Ok);
    let due = sim.reg.poll_timeout().unwrap();
    sim.run_until((due - sim.t0).as_millis() as u64);
    assert_eq!(
        sim.sends
            .last()
            .map(|(_, s)| (s.route.host.as_str(), s.expires)),
        Some(("a1", 3600))
    );
}

/// RROFO with `failBack.timeout=600`: registered on server 2 because server
/// 1 was dead, the line goes back to server 1 600 s later.
#[test]
fn fails_back_to_server_1() {
    let settings = RegistrationSettings {
        re_register_on: true,
        failback_timeout_s: 600,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, three_servers());
    sim.set_peer("a1", Peer::Icmp);
    sim.set_peer("a2", Peer::Icmp);
    sim.start();
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("b1")
    );
    sim.take_log();
    sim.set_peer("a1", Peer::Ok);
    sim.run_until(599_999);
    assert!(sim.log_of(&["failback"]).is_empty());
    sim.run_until(600_000);
    assert_lines(
        &sim.take_log(),
        &[
            "600000 failback a1 from=b1",
            "600000 unregistered b1 failback",
            "600000 subscriptions_invalidated b1 Unregistered",
            "600000 registering a1 failback",
            "600000 send a1 cseq=4 exp=3600 cid-1",
            "600000 registered a1 exp=3600 primary=true",
        ],
    );
    assert!(!sim.reg.is_failed_over());
}

/// The guide's default (`reRegisterOn=0`, so `newRequests`): the refresh of
/// a line on server 2 tries server 1 first; while server 1 stays dead the
/// walk comes back to server 2 with the same Call-ID.
#[test]
fn refreshes_on_server_2_try_server_1_first() {
    let mut sim = Sim::new(quick_backoff(), three_servers());
    sim.set_peer("a1", Peer::Icmp);
    sim.set_peer("a2", Peer::Icmp);
    sim.start();
    sim.take_log();
    // The refresh (whenever the machine schedules it) goes to server 1 first.
    let due = sim.reg.poll_timeout().expect("a refresh is scheduled");
    let t = (due - sim.t0).as_millis() as u64;
    sim.run_until(t);
    let expected: Vec<String> = [
        "failback a1 from=b1",
        "registering a1 failback",
        "send a1 cseq=4 exp=3600 cid-1",
        "route_failed a1 icmp",
        "failover a2 from=a1",
        "registering a2 failover",
        "send a2 cseq=5 exp=3600 cid-1",
        "route_failed a2 icmp",
        "failover b1 from=a2",
        "registering b1 failover",
        "send b1 cseq=6 exp=3600 cid-1",
        "registered b1 exp=3600 primary=false",
    ]
    .iter()
    .map(|l| format!("{t} {l}"))
    .collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_lines(&sim.take_log(), &expected);
    sim.set_peer("a1", Peer::Ok);
    sim.run_until(2 * t + 1);
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("a1")
    );
}

/// Server 1's name did not resolve at start, so the line registered on
/// server 2, which was then the top of its list. When server 1's routes
/// arrive, the line is failed over: its primary becomes server 1's top
/// route and `failBack.timeout` runs from then.
#[test]
fn server_1_resolving_late_becomes_the_primary_and_the_line_fails_back() {
    let settings = RegistrationSettings {
        re_register_on: true,
        failback_timeout_s: 600,
        ..quick_backoff()
    };
    let all = three_servers();
    let mut sim = Sim::new(settings, all[2..].to_vec());
    sim.start();
    assert_eq!(sim.reg.primary().map(|r| r.host.as_str()), Some("b1"));
    assert!(!sim.reg.is_failed_over());
    sim.run_until(100_000);
    sim.new_routes(all);
    assert_eq!(sim.reg.primary().map(|r| r.host.as_str()), Some("a1"));
    assert!(sim.reg.is_failed_over());
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("b1"),
        "sticky: no move until failback"
    );
    sim.take_log();
    sim.run_until(700_000);
    assert_eq!(
        sim.log_of(&["failback", "registered"]),
        [
            "700000 failback a1 from=b1",
            "700000 registered a1 exp=3600 primary=true"
        ]
    );
}
