//! The resolution plan and cache driven by an in-memory zone, in virtual time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sipfleet_protocol::dns::*;
use sipfleet_protocol::route::{RouteSource, Transport};

type Zone = HashMap<Query, Result<Answer, QueryFailure>>;

fn a(addrs: &[&str], ttl_s: u32) -> Answer {
    Answer::A(
        addrs
            .iter()
            .map(|s| ARecord {
                addr: s.parse().unwrap(),
                ttl_s,
            })
            .collect(),
    )
}

fn srv(records: &[(u16, u16, u16, &str)], ttl_s: u32) -> Answer {
    Answer::Srv(
        records
            .iter()
            .map(|&(priority, weight, port, target)| SrvRecord {
                priority,
                weight,
                port,
                target: target.into(),
                ttl_s,
            })
            .collect(),
    )
}

fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> NaptrRecord {
    NaptrRecord {
        order,
        preference,
        flags: "s".into(),
        services: services.into(),
        regexp: String::new(),
        replacement: replacement.into(),
        ttl_s: 300,
    }
}

fn q(name: &str, rtype: RecordType) -> Query {
    Query::new(name, rtype)
}

/// Drive one resolution: cache first, then the zone (the "network").
/// Returns the result and the queries that went to the network.
fn resolve(
    target: ResolveTarget,
    zone: &Zone,
    cache: &mut DnsCache,
    now: Instant,
    seed: u64,
) -> (Result<RouteSet, ResolveError>, Vec<Query>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut plan = Resolution::new(target);
    let mut sent = Vec::new();
    while let Some(query) = plan.poll_query() {
        let result = match cache.lookup(&query, now) {
            Some(hit) => Ok(hit),
            None => {
                sent.push(query.clone());
                let wire = zone
                    .get(&query)
                    .cloned()
                    .unwrap_or(Err(QueryFailure::NxDomain));
                cache.store(&query, wire, now)
            }
        };
        plan.handle_result(&query, result, &mut rng);
    }
    assert!(plan.is_done());
    (plan.finish(), sent)
}

/// The guide's "DNSNaptr Records for Mixed Transports" table, on documentation
/// names: a/b TCP, c TLS, d UDP.
fn guide_naptr_zone() -> Zone {
    let mut zone = Zone::new();
    zone.insert(
        q("poly.example.com", RecordType::Naptr),
        Ok(Answer::Naptr(vec![
            naptr(200, 10, "SIP+D2U", "_sip._udp.poly-sbc-bak.example.com"),
            naptr(50, 10, "SIP+D2T", "_sip._tcp.poly-sbc.example.com"),
            naptr(150, 10, "SIPS+D2T", "_sips._tcp.poly-sbc-ext.example.com"),
            naptr(100, 10, "SIP+D2T", "_sip._tcp.poly-sbc-int.example.com"),
        ])),
    );
    zone.insert(
        q("_sip._tcp.poly-sbc.example.com", RecordType::Srv),
        Ok(srv(
            &[
                (100, 50, 5060, "a1.example.com"),
                (100, 50, 5060, "a2.example.com"),
            ],
            300,
        )),
    );
    zone.insert(
        q("_sip._tcp.poly-sbc-int.example.com", RecordType::Srv),
        Ok(srv(
            &[
                (100, 50, 5060, "b1.example.com"),
                (100, 50, 5060, "b2.example.com"),
            ],
            300,
        )),
    );
    zone.insert(
        q("_sips._tcp.poly-sbc-ext.example.com", RecordType::Srv),
        Ok(srv(
            &[
                (340, 50, 5061, "c3.example.com"),
                (140, 50, 5061, "c1.example.com"),
                (440, 50, 5061, "c4.example.com"),
                (240, 50, 5061, "c2.example.com"),
            ],
            300,
        )),
    );
    zone.insert(
        q("_sip._udp.poly-sbc-bak.example.com", RecordType::Srv),
        Ok(srv(
            &[
                (240, 50, 5060, "d2.example.com"),
                (140, 50, 5060, "d1.example.com"),
            ],
            300,
        )),
    );
    for (host, addr) in [
        ("a1", "200.1.1.5"),
        ("a2", "200.2.2.9"),
        ("b1", "192.168.0.50"),
        ("b2", "192.168.0.100"),
        ("c1", "192.148.100.5"),
        ("c2", "192.148.100.20"),
        ("c3", "192.148.200.4"),
        ("c4", "192.148.200.30"),
        ("d1", "192.168.50.6"),
        ("d2", "192.168.50.64"),
    ] {
        zone.insert(
            q(&format!("{host}.example.com"), RecordType::A),
            Ok(a(&[addr], 300)),
        );
    }
    zone
}

fn summary(set: &RouteSet) -> Vec<(usize, usize, Transport, String)> {
    set.entries
        .iter()
        .map(|e| {
            (
                e.selection_order,
                e.route.group,
                e.route.transport,
                e.route.addr.to_string(),
            )
        })
        .collect()
}

#[test]
fn guide_naptr_table_selection_order() {
    let zone = guide_naptr_zone();
    let now = Instant::now();
    let target = ResolveTarget::new("poly.example.com", TransportSetting::DnsNaptr, 0);
    let mut first_pairs = std::collections::HashSet::new();
    for seed in 0..64 {
        let mut cache = DnsCache::default();
        let (set, sent) = resolve(target.clone(), &zone, &mut cache, now, seed);
        let set = set.unwrap();
        // 1 NAPTR + 4 SRV + 10 A.
        assert_eq!(sent.len(), 15);
        let rows = summary(&set);
        let orders: Vec<usize> = rows.iter().map(|r| r.0).collect();
        assert_eq!(orders, [1, 1, 2, 2, 3, 4, 5, 6, 7, 8]);
        let groups: Vec<usize> = rows.iter().map(|r| r.1).collect();
        assert_eq!(groups, [0, 0, 1, 1, 2, 2, 2, 2, 3, 3]);
        let transports: Vec<Transport> = rows.iter().map(|r| r.2).collect();
        use Transport::*;
        assert_eq!(
            transports,
            [Tcp, Tcp, Tcp, Tcp, Tls, Tls, Tls, Tls, Udp, Udp]
        );
        // Selection orders 3..8 never move.
        let fixed: Vec<&str> = rows[4..].iter().map(|r| r.3.as_str()).collect();
        assert_eq!(
            fixed,
            [
                "192.148.100.5:5061",
                "192.148.100.20:5061",
                "192.148.200.4:5061",
                "192.148.200.30:5061",
                "192.168.50.6:5060",
                "192.168.50.64:5060"
            ]
        );
        let mut pair: Vec<String> = vec![rows[0].3.clone(), rows[1].3.clone()];
        first_pairs.insert(pair.clone());
        pair.sort();
        assert_eq!(pair, ["200.1.1.5:5060", "200.2.2.9:5060"]);
        let naptr: Vec<_> = set.entries.iter().map(|e| e.naptr.unwrap().0).collect();
        assert_eq!(naptr, [50, 50, 100, 100, 150, 150, 150, 150, 200, 200]);
        assert!(set
            .entries
            .iter()
            .all(|e| e.route.source == RouteSource::Network));
        assert_eq!(set.expires, Some(now + Duration::from_secs(300)));
    }
    // Equal priority and weight: selection order 1 is randomised between seeds.
    assert_eq!(first_pairs.len(), 2, "{first_pairs:?}");
}

#[test]
fn selection_order_one_swaps_between_two_fixed_seeds() {
    let zone = guide_naptr_zone();
    let now = Instant::now();
    let target = ResolveTarget::new("poly.example.com", TransportSetting::DnsNaptr, 0);
    let firsts: Vec<String> = (0..64)
        .map(|seed| {
            let (set, _) = resolve(target.clone(), &zone, &mut DnsCache::default(), now, seed);
            set.unwrap().entries[0].route.addr.to_string()
        })
        .collect();
    let a = firsts.iter().position(|f| f == "200.1.1.5:5060").unwrap();
    let b = firsts.iter().position(|f| f == "200.2.2.9:5060").unwrap();
    // Reproducible: the same seed gives the same order.
    for seed in [a, b] {
        let (set, _) = resolve(
            target.clone(),
            &zone,
            &mut DnsCache::default(),
            now,
            seed as u64,
        );
        assert_eq!(set.unwrap().entries[0].route.addr.to_string(), firsts[seed]);
    }
}

#[test]
fn guide_srv_example_summerland_is_primary() {
    let mut zone = Zone::new();
    zone.insert(
        q("_sip._udp.example.poly.com", RecordType::Srv),
        Ok(srv(
            &[
                (20, 0, 5060, "kelowna.poly.com"),
                (10, 0, 5060, "summerland.poly.com"),
                (30, 0, 5060, "naramata.poly.com"),
            ],
            60,
        )),
    );
    zone.insert(
        q("summerland.poly.com", RecordType::A),
        Ok(a(&["10.242.16.2"], 60)),
    );
    zone.insert(
        q("kelowna.poly.com", RecordType::A),
        Ok(a(&["10.149.16.9"], 60)),
    );
    zone.insert(
        q("naramata.poly.com", RecordType::A),
        Ok(a(&["192.17.51.43"], 60)),
    );
    let target = ResolveTarget::new("example.poly.com", TransportSetting::UdpOnly, 0);
    let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    let set = set.unwrap();
    let hosts: Vec<&str> = set.entries.iter().map(|e| e.route.host.as_str()).collect();
    assert_eq!(
        hosts,
        [
            "summerland.poly.com",
            "kelowna.poly.com",
            "naramata.poly.com"
        ]
    );
    assert_eq!(
        set.entries[0].route.addr,
        "10.242.16.2:5060".parse::<SocketAddr>().unwrap()
    );
    assert!(set.entries.iter().all(|e| e.route.group == 0));
    assert_eq!(sent[0], q("_sip._udp.example.poly.com", RecordType::Srv));
    assert_eq!(sent.len(), 4);
}

#[test]
fn explicit_port_means_a_query_only() {
    let mut zone = Zone::new();
    zone.insert(
        q("example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.1", "10.0.0.2"], 60)),
    );
    for (setting, transport) in [
        (TransportSetting::DnsNaptr, Transport::Udp),
        (TransportSetting::UdpOnly, Transport::Udp),
        (TransportSetting::TcpOnly, Transport::Tcp),
        (TransportSetting::Tls, Transport::Tls),
    ] {
        let target = ResolveTarget::new("example.poly.com", setting, 5070);
        let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
        assert_eq!(sent, [q("example.poly.com", RecordType::A)]);
        let set = set.unwrap();
        let addrs: Vec<String> = set
            .entries
            .iter()
            .map(|e| e.route.addr.to_string())
            .collect();
        assert_eq!(addrs, ["10.0.0.1:5070", "10.0.0.2:5070"]);
        assert!(set.entries.iter().all(|e| e.route.transport == transport));
        // Order of the A answer, two distinct selection orders? No: same record
        // set, same priority: one selection order.
        assert!(set.entries.iter().all(|e| e.selection_order == 1));
    }
}

#[test]
fn failed_srv_falls_back_to_a_on_default_port() {
    let mut zone = Zone::new();
    zone.insert(
        q("example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.1"], 60)),
    );
    for (setting, srv_name, port) in [
        (
            TransportSetting::UdpOnly,
            "_sip._udp.example.poly.com",
            5060,
        ),
        (
            TransportSetting::TcpOnly,
            "_sip._tcp.example.poly.com",
            5060,
        ),
        (TransportSetting::Tls, "_sips._tcp.example.poly.com", 5061),
    ] {
        let target = ResolveTarget::new("example.poly.com", setting, 0);
        let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
        assert_eq!(
            sent,
            [
                q(srv_name, RecordType::Srv),
                q("example.poly.com", RecordType::A)
            ]
        );
        let set = set.unwrap();
        assert_eq!(set.entries.len(), 1);
        assert_eq!(set.entries[0].route.addr.port(), port);
        assert_eq!(set.entries[0].srv_name, None);
    }
}

#[test]
fn failed_naptr_tries_srv_per_transport_then_a() {
    let mut zone = Zone::new();
    zone.insert(
        q("_sip._tcp.example.poly.com", RecordType::Srv),
        Ok(srv(&[(10, 0, 5080, "t.example.poly.com")], 60)),
    );
    zone.insert(
        q("t.example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.7"], 60)),
    );
    zone.insert(
        q("example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.1"], 60)),
    );
    let target = ResolveTarget::new("example.poly.com", TransportSetting::DnsNaptr, 0);
    let (set, sent) = resolve(
        target.clone(),
        &zone,
        &mut DnsCache::default(),
        Instant::now(),
        1,
    );
    assert_eq!(sent.len(), 5, "{sent:?}"); // NAPTR, 3 SRV, A of the TCP target
    let set = set.unwrap();
    assert_eq!(set.entries.len(), 1);
    assert_eq!(set.entries[0].route.transport, Transport::Tcp);
    assert_eq!(set.entries[0].route.addr.to_string(), "10.0.0.7:5080");

    // No SRV either: A on 5060/UDP.
    zone.remove(&q("_sip._tcp.example.poly.com", RecordType::Srv));
    let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    assert_eq!(sent.last(), Some(&q("example.poly.com", RecordType::A)));
    let set = set.unwrap();
    assert_eq!(set.entries[0].route.addr.to_string(), "10.0.0.1:5060");
    assert_eq!(set.entries[0].route.transport, Transport::Udp);
}

#[test]
fn ip_literal_needs_no_dns() {
    for (name, setting, port, want) in [
        ("192.0.2.1", TransportSetting::DnsNaptr, 0, "192.0.2.1:5060"),
        ("192.0.2.1", TransportSetting::Tls, 0, "192.0.2.1:5061"),
        (
            "192.0.2.1",
            TransportSetting::TcpOnly,
            5080,
            "192.0.2.1:5080",
        ),
        (
            "[2001:db8::1]",
            TransportSetting::UdpOnly,
            0,
            "[2001:db8::1]:5060",
        ),
    ] {
        let target = ResolveTarget::new(name, setting, port);
        let (set, sent) = resolve(
            target,
            &Zone::new(),
            &mut DnsCache::default(),
            Instant::now(),
            1,
        );
        assert!(sent.is_empty());
        let set = set.unwrap();
        assert_eq!(set.entries[0].route.addr.to_string(), want);
        assert_eq!(set.entries[0].route.source, RouteSource::Literal);
        assert_eq!(set.expires, None);
    }
}

#[test]
fn at_most_four_addresses_per_a_answer() {
    let mut zone = Zone::new();
    let addrs = [
        "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6",
    ];
    zone.insert(q("many.example.com", RecordType::A), Ok(a(&addrs, 60)));
    let target = ResolveTarget::new("many.example.com", TransportSetting::UdpOnly, 5060);
    let (set, _) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    let got: Vec<String> = set
        .unwrap()
        .entries
        .iter()
        .map(|e| e.route.addr.ip().to_string())
        .collect();
    assert_eq!(got, &addrs[..4]);
}

#[test]
fn no_records_anywhere_is_an_error_naming_the_failures() {
    let target = ResolveTarget::new("nowhere.example.com", TransportSetting::TcpOnly, 0);
    let (set, _) = resolve(
        target,
        &Zone::new(),
        &mut DnsCache::default(),
        Instant::now(),
        1,
    );
    match set {
        Err(ResolveError::NoRoutes { failures, .. }) => {
            assert_eq!(failures.len(), 2);
            assert!(failures.iter().all(|(_, f)| *f == QueryFailure::NxDomain));
        }
        other => panic!("{other:?}"),
    }
    let (set, _) = resolve(
        ResolveTarget::new("  ", TransportSetting::TcpOnly, 0),
        &Zone::new(),
        &mut DnsCache::default(),
        Instant::now(),
        1,
    );
    assert_eq!(set.unwrap_err(), ResolveError::EmptyName);
}

#[test]
fn srv_target_dot_means_not_offered() {
    let mut zone = Zone::new();
    zone.insert(
        q("_sip._udp.example.com", RecordType::Srv),
        Ok(srv(&[(0, 0, 0, "")], 60)),
    );
    zone.insert(q("example.com", RecordType::A), Ok(a(&["10.0.0.1"], 60)));
    let target = ResolveTarget::new("example.com", TransportSetting::UdpOnly, 0);
    let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    // The SRV answer exists but offers nothing: no route, and no A fallback
    // either, because the SRV query itself did not fail.
    assert_eq!(sent.len(), 1);
    assert!(matches!(set, Err(ResolveError::NoRoutes { .. })));
}

fn rows(set: &RouteSet) -> Vec<(usize, Transport, String)> {
    set.entries
        .iter()
        .map(|e| (e.route.group, e.route.transport, e.route.addr.to_string()))
        .collect()
}

/// `TCPpreferred`, port 0: SRV `_sip._tcp` then `_sip._udp`; the TCP routes
/// form the first service record, the UDP routes the second, so a walk
/// tries every TCP route before any UDP route.
#[test]
fn tcp_preferred_looks_up_tcp_then_udp_srv() {
    let mut zone = Zone::new();
    zone.insert(
        q("_sip._tcp.example.poly.com", RecordType::Srv),
        Ok(srv(
            &[
                (20, 0, 5060, "t2.example.poly.com"),
                (10, 0, 5060, "t1.example.poly.com"),
            ],
            60,
        )),
    );
    zone.insert(
        q("_sip._udp.example.poly.com", RecordType::Srv),
        Ok(srv(&[(10, 0, 5062, "u1.example.poly.com")], 60)),
    );
    for (host, addr) in [("t1", "10.0.0.1"), ("t2", "10.0.0.2"), ("u1", "10.0.0.3")] {
        zone.insert(
            q(&format!("{host}.example.poly.com"), RecordType::A),
            Ok(a(&[addr], 60)),
        );
    }
    let target = ResolveTarget::new("example.poly.com", TransportSetting::TcpPreferred, 0);
    let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    assert_eq!(
        sent[..2],
        [
            q("_sip._tcp.example.poly.com", RecordType::Srv),
            q("_sip._udp.example.poly.com", RecordType::Srv),
        ]
    );
    assert_eq!(sent.len(), 5, "{sent:?}");
    let set = set.unwrap();
    use Transport::*;
    assert_eq!(
        rows(&set),
        [
            (0, Tcp, "10.0.0.1:5060".to_string()),
            (0, Tcp, "10.0.0.2:5060".to_string()),
            (1, Udp, "10.0.0.3:5062".to_string()),
        ]
    );
    assert_eq!(
        set.entries[2].srv_name.as_deref(),
        Some("_sip._udp.example.poly.com")
    );
}

/// `TCPpreferred` with an explicit port: one A query, every address over
/// TCP (first record), then every address over UDP (second record).
#[test]
fn tcp_preferred_with_a_port_uses_a_records_for_both_transports() {
    let mut zone = Zone::new();
    zone.insert(
        q("example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.1", "10.0.0.2"], 60)),
    );
    let target = ResolveTarget::new("example.poly.com", TransportSetting::TcpPreferred, 5070);
    let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    assert_eq!(sent, [q("example.poly.com", RecordType::A)]);
    use Transport::*;
    assert_eq!(
        rows(&set.unwrap()),
        [
            (0, Tcp, "10.0.0.1:5070".to_string()),
            (0, Tcp, "10.0.0.2:5070".to_string()),
            (1, Udp, "10.0.0.1:5070".to_string()),
            (1, Udp, "10.0.0.2:5070".to_string()),
        ]
    );
}

/// No SRV for either transport: the A record on 5060, TCP then UDP.
#[test]
fn tcp_preferred_without_srv_falls_back_to_a_for_both_transports() {
    let mut zone = Zone::new();
    zone.insert(
        q("example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.1"], 60)),
    );
    let target = ResolveTarget::new("example.poly.com", TransportSetting::TcpPreferred, 0);
    let (set, sent) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    assert_eq!(
        sent,
        [
            q("_sip._tcp.example.poly.com", RecordType::Srv),
            q("_sip._udp.example.poly.com", RecordType::Srv),
            q("example.poly.com", RecordType::A),
        ]
    );
    use Transport::*;
    assert_eq!(
        rows(&set.unwrap()),
        [
            (0, Tcp, "10.0.0.1:5060".to_string()),
            (1, Udp, "10.0.0.1:5060".to_string()),
        ]
    );
}

/// Only a UDP SRV record: the UDP routes alone (an SRV answer means the
/// domain publishes its services, so no A fallback for TCP).
#[test]
fn tcp_preferred_with_only_udp_srv_gives_the_udp_routes() {
    let mut zone = Zone::new();
    zone.insert(
        q("_sip._udp.example.poly.com", RecordType::Srv),
        Ok(srv(&[(10, 0, 5060, "u1.example.poly.com")], 60)),
    );
    zone.insert(
        q("u1.example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.3"], 60)),
    );
    zone.insert(
        q("example.poly.com", RecordType::A),
        Ok(a(&["10.0.0.1"], 60)),
    );
    let target = ResolveTarget::new("example.poly.com", TransportSetting::TcpPreferred, 0);
    let (set, _) = resolve(target, &zone, &mut DnsCache::default(), Instant::now(), 1);
    assert_eq!(
        rows(&set.unwrap()),
        [(0, Transport::Udp, "10.0.0.3:5060".to_string())]
    );
}

#[test]
fn tcp_preferred_ip_literal_is_tcp_then_udp() {
    let target = ResolveTarget::new("192.0.2.1", TransportSetting::TcpPreferred, 0);
    let (set, sent) = resolve(
        target,
        &Zone::new(),
        &mut DnsCache::default(),
        Instant::now(),
        1,
    );
    assert!(sent.is_empty());
    use Transport::*;
    assert_eq!(
        rows(&set.unwrap()),
        [
            (0, Tcp, "192.0.2.1:5060".to_string()),
            (1, Udp, "192.0.2.1:5060".to_string()),
        ]
    );
}
