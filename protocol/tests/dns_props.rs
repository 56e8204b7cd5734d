//! Properties of the resolution plan and the RFC 2782 order on arbitrary
//! answers: never a panic, always a permutation, priorities never go down,
//! the failover groups stay contiguous.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sipfleet_protocol::dns::*;
use sipfleet_protocol::route::RouteSource;

fn srv_strategy() -> impl Strategy<Value = SrvRecord> {
    (
        0u16..4,
        0u16..3,
        1u16..6000,
        prop::sample::select(vec!["a", "b", "c", "", "10.0.0.9"]),
    )
        .prop_map(|(priority, weight, port, target)| SrvRecord {
            priority: priority * 10,
            weight: weight * 50,
            port,
            target: target.to_string(),
            ttl_s: 60,
        })
}

fn failure_strategy() -> impl Strategy<Value = QueryFailure> {
    prop::sample::select(vec![
        QueryFailure::Timeout,
        QueryFailure::NxDomain,
        QueryFailure::NoRecords,
        QueryFailure::ErrorResponse("SERVFAIL".into()),
        QueryFailure::Malformed("x".into()),
    ])
}

/// An answer of any type (possibly the wrong one for the question).
fn answer_strategy() -> impl Strategy<Value = Result<Answer, QueryFailure>> {
    prop_oneof![
        prop::collection::vec(srv_strategy(), 0..6).prop_map(|v| Ok(Answer::Srv(v))),
        prop::collection::vec(any::<[u8; 4]>(), 0..7).prop_map(|v| Ok(Answer::A(
            v.into_iter()
                .map(|b| ARecord {
                    addr: b.into(),
                    ttl_s: 30
                })
                .collect()
        ))),
        prop::collection::vec(
            (
                0u16..3,
                0u16..3,
                prop::sample::select(vec!["SIP+D2U", "SIP+D2T", "SIPS+D2T", "E2U+x"]),
                prop::sample::select(vec!["s", "S", "a", ""]),
                prop::sample::select(vec!["_sip._udp.x", "_sip._tcp.y", ""])
            ),
            0..5
        )
        .prop_map(|v| Ok(Answer::Naptr(
            v.into_iter()
                .map(
                    |(order, preference, services, flags, replacement)| NaptrRecord {
                        order,
                        preference,
                        flags: flags.into(),
                        services: services.into(),
                        regexp: String::new(),
                        replacement: replacement.into(),
                        ttl_s: 120,
                    }
                )
                .collect()
        ))),
        failure_strategy().prop_map(Err),
    ]
}

proptest! {
    #[test]
    fn srv_order_is_a_priority_sorted_permutation(records in prop::collection::vec(srv_strategy(), 0..12), seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let ordered = order_srv(&records, &mut rng);
        let mut want: Vec<_> = records.iter().filter(|r| !r.target.is_empty()).cloned().collect();
        prop_assert_eq!(ordered.len(), want.len());
        prop_assert!(ordered.windows(2).all(|w| w[0].priority <= w[1].priority));
        let key = |r: &SrvRecord| (r.priority, r.weight, r.port, r.target.clone());
        let mut got = ordered.clone();
        got.sort_by_key(key);
        want.sort_by_key(key);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn any_answers_give_routes_or_an_error_never_a_panic(
        answers in prop::collection::vec(answer_strategy(), 1..24),
        setting in prop::sample::select(vec![TransportSetting::DnsNaptr, TransportSetting::Tls, TransportSetting::TcpOnly, TransportSetting::UdpOnly]),
        port in prop::sample::select(vec![0u16, 5070]),
        seed: u64,
    ) {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut cache = DnsCache::default();
        let mut plan = Resolution::new(ResolveTarget::new("example.com", setting, port));
        let mut answers = answers.into_iter().cycle();
        let mut steps = 0;
        while let Some(query) = plan.poll_query() {
            steps += 1;
            prop_assert!(steps < 200, "plan does not terminate");
            let wire = answers.next().unwrap();
            let result = cache.store(&query, wire, now);
            plan.handle_result(&query, result, &mut rng);
        }
        prop_assert!(plan.is_done());
        if let Ok(set) = plan.finish() {
            prop_assert!(!set.entries.is_empty());
            // Groups start at 0 and never go back; selection orders start at 1
            // and grow by at most one.
            prop_assert_eq!(set.entries[0].route.group, 0);
            prop_assert_eq!(set.entries[0].selection_order, 1);
            for w in set.entries.windows(2) {
                prop_assert!(w[1].route.group == w[0].route.group || w[1].route.group == w[0].route.group + 1);
                prop_assert!(w[1].selection_order == w[0].selection_order || w[1].selection_order == w[0].selection_order + 1);
            }
            // No duplicate destinations.
            for (i, e) in set.entries.iter().enumerate() {
                prop_assert!(set.entries[..i].iter().all(|p| !p.route.same_destination(&e.route)));
                prop_assert_eq!(e.route.source, RouteSource::Network);
                prop_assert!(e.expires.unwrap() <= now + Duration::from_secs(120));
            }
            prop_assert!(set.expires.is_some());
        }
    }
}

#[test]
fn sticky_route_helpers() {
    let now = Instant::now();
    let zone_answer = |addrs: &[[u8; 4]]| {
        let mut cache = DnsCache::default();
        let mut plan = Resolution::new(ResolveTarget::new(
            "sbc.example.com",
            TransportSetting::UdpOnly,
            5060,
        ));
        let mut rng = StdRng::seed_from_u64(1);
        while let Some(q) = plan.poll_query() {
            let a = Answer::A(
                addrs
                    .iter()
                    .map(|b| ARecord {
                        addr: (*b).into(),
                        ttl_s: 60,
                    })
                    .collect(),
            );
            let r = cache.store(&q, Ok(a), now);
            plan.handle_result(&q, r, &mut rng);
        }
        plan.finish().unwrap()
    };
    let before = zone_answer(&[[10, 0, 0, 1], [10, 0, 0, 2]]);
    let reordered = zone_answer(&[[10, 0, 0, 2], [10, 0, 0, 1]]);
    let dropped = zone_answer(&[[10, 0, 0, 3], [10, 0, 0, 2]]);
    let current = before.entries[0].route.clone();
    // A reorder keeps the current route (sticky) but is a changed set.
    assert!(reordered.contains_destination(&current));
    assert!(!reordered.same_routes(&before));
    // A refresh without the current address: re-register with the new order.
    assert!(!dropped.contains_destination(&current));
    assert!(before.same_routes(&zone_answer(&[[10, 0, 0, 1], [10, 0, 0, 2]])));
    assert_eq!(before.routes().len(), 2);
}
