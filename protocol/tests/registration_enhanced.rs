//! The guide's Enhanced Failover, point 2: "When DNSNaptr results provide
//! multiple transport protocol options, the phone will try all routes within a
//! transport before moving to a route that uses a different transport
//! protocol." Without enhanced failover the walk follows the NAPTR ranking.

mod registration_sim;

use std::net::SocketAddr;

use registration_sim::{quick_backoff, Peer, Sim};
use sipfleet_protocol::registration::RegistrationSettings;
use sipfleet_protocol::route::{Route, RouteSource, Transport};

fn route(host: &str, transport: Transport, group: usize, ip: &str) -> Route {
    Route {
        transport,
        host: host.to_owned(),
        addr: SocketAddr::new(ip.parse().unwrap(), transport.default_port()),
        group,
        priority: 10,
        weight: 0,
        source: RouteSource::Network,
    }
}

/// NAPTR records ranked TCP, UDP, TCP: the UDP record sits between two TCP
/// records.
fn mixed() -> Vec<Route> {
    vec![
        route("tcp1", Transport::Tcp, 0, "10.0.0.1"),
        route("udp1", Transport::Udp, 1, "10.0.1.1"),
        route("tcp2", Transport::Tcp, 2, "10.0.2.1"),
    ]
}

fn walk(enhanced: bool) -> Vec<String> {
    let settings = RegistrationSettings {
        re_register_on: true,
        enhanced_failover: enhanced,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, mixed());
    sim.set_peer("tcp1", Peer::Icmp);
    sim.set_peer("udp1", Peer::Icmp);
    sim.start();
    sim.log_of(&["route_failed", "registered"])
}

#[test]
fn enhanced_failover_tries_the_same_transport_first() {
    assert_eq!(
        walk(true),
        [
            "0 route_failed tcp1 icmp",
            "0 registered tcp2 exp=3600 primary=true"
        ]
    );
}

#[test]
fn without_enhanced_failover_the_walk_follows_the_naptr_ranking() {
    assert_eq!(
        walk(false),
        [
            "0 route_failed tcp1 icmp",
            "0 route_failed udp1 icmp",
            "0 registered tcp2 exp=3600 primary=true"
        ]
    );
}
