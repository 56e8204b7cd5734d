//! The guide's "DNS Ordering Changes While a Phone Is Registered" and
//! "DNSNaptr Records for Mixed Transports Across Multiple Networks".

mod registration_sim;

use std::net::SocketAddr;

use registration_sim::{assert_lines, quick_backoff, routes, Peer, Sim};
use sipfleet_protocol::registration::{Phase, RegistrationSettings, TransportError};
use sipfleet_protocol::route::{Route, RouteSource, Transport};

fn naptr_route(host: &str, transport: Transport, group: usize, ip: &str, priority: u16) -> Route {
    Route {
        transport,
        host: host.to_owned(),
        addr: SocketAddr::new(ip.parse().unwrap(), transport.default_port()),
        group,
        priority,
        weight: 50,
        source: RouteSource::Network,
    }
}

/// The guide's NAPTR table in selection order: records a and b (TCP), c (TLS)
/// holding SBCs 3 to 6, d (UDP) holding SBCs 7 and 8.
fn naptr_table() -> Vec<Route> {
    vec![
        naptr_route("a1", Transport::Tcp, 0, "200.1.1.5", 100),
        naptr_route("a2", Transport::Tcp, 0, "200.2.2.9", 100),
        naptr_route("b1", Transport::Tcp, 1, "192.168.0.50", 100),
        naptr_route("b2", Transport::Tcp, 1, "192.168.0.100", 100),
        naptr_route("s3", Transport::Tls, 2, "192.148.100.5", 140),
        naptr_route("s4", Transport::Tls, 2, "192.148.100.20", 240),
        naptr_route("s5", Transport::Tls, 2, "192.148.200.4", 340),
        naptr_route("s6", Transport::Tls, 2, "192.148.200.30", 440),
        naptr_route("s7", Transport::Udp, 3, "192.168.50.6", 140),
        naptr_route("s8", Transport::Udp, 3, "192.168.50.64", 240),
    ]
}

/// Records a and b unroutable, SBCs 3 and 4 down: the phone registers on 5
/// (failover state, primary 3). When 5 fails it tries 3, 4, 6, then 7 in the
/// next record, which becomes the primary.
#[test]
fn naptr_selection_order_walk() {
    let settings = RegistrationSettings {
        re_register_on: true,
        tcp_fast_failover: true,
        tcp_fast_failover_timeout_ms: 2000,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, naptr_table());
    for host in ["a1", "a2", "b1", "b2"] {
        sim.set_peer(host, Peer::Icmp);
    }
    sim.set_peer("s3", Peer::Refused);
    sim.set_peer("s4", Peer::Refused);
    sim.start();
    assert_eq!(
        sim.log_of(&["route_failed", "registered"]),
        [
            "0 route_failed a1 icmp",
            "0 route_failed a2 icmp",
            "0 route_failed b1 icmp",
            "0 route_failed b2 icmp",
            "0 route_failed s3 refused",
            "0 route_failed s4 refused",
            "0 registered s5 exp=3600 primary=false",
        ]
    );
    assert_eq!(sim.reg.primary().map(|r| r.host.as_str()), Some("s3"));
    assert!(sim.reg.is_failed_over());
    sim.take_log();

    sim.run_until(100_000);
    sim.set_peer("s6", Peer::Silent);
    sim.set_peer("s5", Peer::Refused);
    sim.transport_error("s5", TransportError::Refused);
    sim.run_until(110_000);
    assert_lines(
        &sim.take_log(),
        &[
            "100000 route_failed s5 refused",
            "100000 unregistered s5 failover_started",
            "100000 subscriptions_invalidated s5 FailoverStarted",
            "100000 failover s3 from=s5",
            "100000 registering s3 failover",
            "100000 send s3 cseq=8 exp=3600 cid-1",
            "100000 route_failed s3 refused",
            "100000 failover s4 from=s3",
            "100000 registering s4 failover",
            "100000 send s4 cseq=9 exp=3600 cid-1",
            "100000 route_failed s4 refused",
            "100000 failover s6 from=s4",
            "100000 registering s6 failover",
            "100000 send s6 cseq=10 exp=3600 cid-1",
            "102000 route_failed s6 timeout",
            "102000 failover s7 from=s6",
            "102000 registering s7 failover",
            "102000 send s7 cseq=11 exp=3600 cid-1",
            "102000 registered s7 exp=3600 primary=true",
        ],
    );
    assert_eq!(sim.reg.primary().map(|r| r.host.as_str()), Some("s7"));
    assert!(!sim.reg.is_failed_over());
}

/// A refresh that still lists the current route changes nothing, even when it
/// reorders; a failover afterwards walks the new order.
#[test]
fn reordering_is_ignored_while_the_current_route_is_listed() {
    let mut sim = Sim::new(quick_backoff(), routes(3, Transport::Udp));
    sim.start();
    sim.run_until(5000);
    sim.take_log();
    let reordered = vec![sim.route("r3"), sim.route("r2"), sim.route("r1")];
    sim.new_routes(reordered);
    assert!(sim.take_log().is_empty());
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("r1")
    );
    assert_eq!(sim.reg.primary().map(|r| r.host.as_str()), Some("r1"));
    assert_eq!(sim.reg.phase(), Phase::Registered);

    sim.run_until(10_000);
    sim.set_peer("r1", Peer::Icmp);
    sim.transport_error("r1", TransportError::Icmp);
    assert_eq!(
        sim.log_of(&["failover", "registered"]),
        [
            "10000 failover r3 from=r1",
            "10000 registered r3 exp=3600 primary=true"
        ]
    );
}

/// A refresh that drops the current address triggers an immediate
/// re-registration with the new order; the Call-ID stays.
#[test]
fn removal_of_the_current_route_re_registers_at_once() {
    let mut sim = Sim::new(quick_backoff(), routes(3, Transport::Udp));
    sim.start();
    sim.run_until(5000);
    sim.take_log();
    let without_r1 = vec![sim.route("r3"), sim.route("r2")];
    sim.new_routes(without_r1);
    assert_lines(
        &sim.take_log(),
        &[
            "5000 route_failed r1 dns_removed",
            "5000 failover r3 from=r1",
            "5000 registering r3 failover",
            "5000 send r3 cseq=2 exp=3600 cid-1",
            "5000 subscriptions_invalidated r1 NewRegistrar",
            "5000 registered r3 exp=3600 primary=true",
        ],
    );
}

/// A DNS refresh during a walk: the next failover step uses the new order.
#[test]
fn failover_during_a_walk_follows_the_refreshed_order() {
    let mut sim = Sim::new(quick_backoff(), routes(3, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(1000);
    let reordered = vec![sim.route("r1"), sim.route("r3"), sim.route("r2")];
    sim.new_routes(reordered);
    sim.run_until(3500);
    assert_eq!(
        sim.log_of(&["failover", "registered"]),
        [
            "3500 failover r3 from=r1",
            "3500 registered r3 exp=3600 primary=false"
        ]
    );
}

/// No routes yet: the line waits, and registers as soon as a list arrives.
/// A refresh that empties the list leaves it waiting again.
#[test]
fn waits_for_routes() {
    let mut sim = Sim::new(quick_backoff(), Vec::new());
    sim.start();
    assert_eq!(sim.reg.phase(), Phase::WaitingForRoutes);
    assert_eq!(sim.reg.poll_timeout(), None);
    sim.run_until(2000);
    sim.new_routes(routes(2, Transport::Udp));
    assert_eq!(
        sim.log_of(&["registered"]),
        ["2000 registered r1 exp=3600 primary=true"]
    );
    sim.new_routes(Vec::new());
    assert_eq!(sim.reg.phase(), Phase::WaitingForRoutes);
    sim.run_until(3000);
    sim.new_routes(routes(2, Transport::Udp));
    assert_eq!(sim.reg.phase(), Phase::Registered);
    assert_eq!(sim.send_times("r1"), [2000, 3000]);
}
