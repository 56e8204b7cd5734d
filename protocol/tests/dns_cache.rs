//! Static cache, dynamic cache restore and TTL expiry, in virtual time.

use std::time::{Duration, Instant};

use sipfleet_protocol::dns::*;
use sipfleet_protocol::route::RouteSource;

fn a_answer(addr: &str, ttl_s: u32) -> Answer {
    Answer::A(vec![ARecord {
        addr: addr.parse().unwrap(),
        ttl_s,
    }])
}

fn addr_of(r: &Resolved) -> String {
    match &r.answer {
        Answer::A(v) => v[0].addr.to_string(),
        other => panic!("{other:?}"),
    }
}

fn restore_on() -> RestorePolicy {
    RestorePolicy {
        enabled: true,
        ttl: Duration::from_secs(120),
    }
}

fn statics() -> StaticCache {
    StaticCache {
        a: vec![StaticA {
            name: "SBC.example.com.".into(),
            ttl_s: 300,
            addr: "192.0.2.99".parse().unwrap(),
        }],
        srv: vec![StaticSrv {
            name: "_sip._udp.example.com".into(),
            ttl_s: 30,
            priority: 1,
            weight: 2,
            port: 5062,
            target: "sbc.example.com".into(),
        }],
        naptr: vec![StaticNaptr {
            name: "example.com".into(),
            ttl_s: 40,
            order: 10,
            preference: 20,
            flags: "s".into(),
            service: "SIP+D2U".into(),
            regexp: String::new(),
            replacement: "_sip._udp.example.com".into(),
        }],
        a_network_override: false,
    }
}

#[test]
fn answers_live_for_their_smallest_ttl() {
    let t0 = Instant::now();
    let mut cache = DnsCache::default();
    let q = Query::new("sbc.example.com", RecordType::A);
    let answer = Answer::A(vec![
        ARecord {
            addr: "10.0.0.1".parse().unwrap(),
            ttl_s: 60,
        },
        ARecord {
            addr: "10.0.0.2".parse().unwrap(),
            ttl_s: 30,
        },
    ]);
    let r = cache.store(&q, Ok(answer), t0).unwrap();
    assert_eq!(r.source, RouteSource::Network);
    assert_eq!(r.expires, t0 + Duration::from_secs(30));
    assert!(cache
        .lookup(&q, t0 + Duration::from_millis(29_999))
        .is_some());
    assert!(cache.lookup(&q, t0 + Duration::from_secs(30)).is_none());
    // Names are case-insensitive, root dot optional.
    assert!(cache
        .lookup(&Query::new("SBC.Example.com.", RecordType::A), t0)
        .is_some());
}

#[test]
fn restore_only_after_silence_or_unreachable() {
    let t0 = Instant::now();
    let q = Query::new("sbc.example.com", RecordType::A);
    for failure in [
        QueryFailure::Timeout,
        QueryFailure::Unreachable("refused".into()),
    ] {
        let mut cache = DnsCache::new(StaticCache::default(), restore_on());
        cache.store(&q, Ok(a_answer("10.0.0.1", 60)), t0).unwrap();
        let t1 = t0 + Duration::from_secs(61);
        assert!(cache.lookup(&q, t1).is_none());
        let r = cache.store(&q, Err(failure), t1).unwrap();
        assert_eq!(r.source, RouteSource::Restored);
        assert_eq!(addr_of(&r), "10.0.0.1");
        // Used for dynamicRestore.ttl, then the network is asked again.
        assert_eq!(r.expires, t1 + Duration::from_secs(120));
        assert!(cache
            .lookup(&q, t1 + Duration::from_millis(119_999))
            .is_some());
        assert!(cache.lookup(&q, t1 + Duration::from_secs(120)).is_none());
    }
    for failure in [
        QueryFailure::NxDomain,
        QueryFailure::NoRecords,
        QueryFailure::ErrorResponse("SERVFAIL".into()),
        QueryFailure::ErrorResponse("FORMERR".into()),
        QueryFailure::ErrorResponse("NOTIMP".into()),
        QueryFailure::ErrorResponse("REFUSED".into()),
        QueryFailure::Malformed("garbage".into()),
    ] {
        let mut cache = DnsCache::new(StaticCache::default(), restore_on());
        cache.store(&q, Ok(a_answer("10.0.0.1", 60)), t0).unwrap();
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(cache.store(&q, Err(failure.clone()), t1), Err(failure));
        assert!(cache.lookup(&q, t1).is_none());
    }
}

#[test]
fn restore_disabled_by_default() {
    let t0 = Instant::now();
    let q = Query::new("sbc.example.com", RecordType::A);
    let mut cache = DnsCache::default();
    cache.store(&q, Ok(a_answer("10.0.0.1", 60)), t0).unwrap();
    let t1 = t0 + Duration::from_secs(61);
    assert_eq!(
        cache.store(&q, Err(QueryFailure::Timeout), t1),
        Err(QueryFailure::Timeout)
    );
}

#[test]
fn static_cache_on_timeout_or_negative_for_its_ttl() {
    let t0 = Instant::now();
    for failure in [
        QueryFailure::Timeout,
        QueryFailure::NxDomain,
        QueryFailure::NoRecords,
    ] {
        let mut cache = DnsCache::new(statics(), RestorePolicy::default());
        let q = Query::new("sbc.example.com", RecordType::A);
        let r = cache.store(&q, Err(failure), t0).unwrap();
        assert_eq!(r.source, RouteSource::StaticCache);
        assert_eq!(addr_of(&r), "192.0.2.99");
        assert_eq!(r.expires, t0 + Duration::from_secs(300));
        assert!(cache.lookup(&q, t0 + Duration::from_secs(299)).is_some());
        assert!(cache.lookup(&q, t0 + Duration::from_secs(300)).is_none());

        let q = Query::new("_sip._udp.example.com", RecordType::Srv);
        let r = cache.store(&q, Err(QueryFailure::Timeout), t0).unwrap();
        assert_eq!(
            r.answer,
            Answer::Srv(vec![SrvRecord {
                priority: 1,
                weight: 2,
                port: 5062,
                target: "sbc.example.com".into(),
                ttl_s: 30
            }])
        );
        let q = Query::new("example.com", RecordType::Naptr);
        let r = cache.store(&q, Err(QueryFailure::Timeout), t0).unwrap();
        assert_eq!(r.expires, t0 + Duration::from_secs(40));
    }
}

#[test]
fn restore_wins_over_static_when_both_apply() {
    let t0 = Instant::now();
    let q = Query::new("sbc.example.com", RecordType::A);
    let mut cache = DnsCache::new(statics(), restore_on());
    cache.store(&q, Ok(a_answer("10.0.0.1", 10)), t0).unwrap();
    let r = cache
        .store(&q, Err(QueryFailure::Timeout), t0 + Duration::from_secs(11))
        .unwrap();
    assert_eq!(r.source, RouteSource::Restored);
    // A negative answer cannot be restored, but the static entry still applies.
    let r = cache
        .store(
            &q,
            Err(QueryFailure::NxDomain),
            t0 + Duration::from_secs(200),
        )
        .unwrap();
    assert_eq!(r.source, RouteSource::StaticCache);
}

#[test]
fn network_override_uses_static_a_before_the_network() {
    let t0 = Instant::now();
    let q = Query::new("sbc.example.com", RecordType::A);
    let cache = DnsCache::new(
        StaticCache {
            a_network_override: true,
            ..statics()
        },
        RestorePolicy::default(),
    );
    let r = cache.lookup(&q, t0).unwrap();
    assert_eq!(r.source, RouteSource::StaticCache);
    assert_eq!(addr_of(&r), "192.0.2.99");
    // Only A entries: SRV still goes to the network.
    assert!(cache
        .lookup(&Query::new("_sip._udp.example.com", RecordType::Srv), t0)
        .is_none());
    // Without override the static entry is not consulted before the network.
    let cache = DnsCache::new(statics(), RestorePolicy::default());
    assert!(cache.lookup(&q, t0).is_none());
}

#[test]
fn whole_resolution_from_static_cache_marks_routes_static() {
    let t0 = Instant::now();
    let mut cache = DnsCache::new(statics(), RestorePolicy::default());
    let mut plan = Resolution::new(ResolveTarget::new(
        "example.com",
        TransportSetting::DnsNaptr,
        0,
    ));
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    while let Some(query) = plan.poll_query() {
        let r = cache.store(&query, Err(QueryFailure::Timeout), t0);
        plan.handle_result(&query, r, &mut rng);
    }
    let set = plan.finish().unwrap();
    assert_eq!(set.entries.len(), 1);
    let e = &set.entries[0];
    assert_eq!(e.route.source, RouteSource::StaticCache);
    assert_eq!(e.route.addr.to_string(), "192.0.2.99:5062");
    assert_eq!(e.naptr, Some((10, 20)));
    assert_eq!(e.srv_name.as_deref(), Some("_sip._udp.example.com"));
    // The SRV entry (30 s) expires first.
    assert_eq!(set.expires, Some(t0 + Duration::from_secs(30)));
}
