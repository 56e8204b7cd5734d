//! The resolver actor against an in-process DNS server on loopback, on a paused
//! tokio clock (the server runs on the same runtime, so its answers arrive
//! before any virtual timeout).

#[path = "../../transport/tests/dns_support/mod.rs"]
mod dns_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use dns_support::{TestDns, TestZone};
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType as Wire;
use sipfleet_actors::resolver::*;
use sipfleet_protocol::dns::{
    ResolveTarget, RestorePolicy, StaticA, StaticCache, TransportSetting,
};
use sipfleet_protocol::route::RouteSource;
use sipfleet_transport::dns::DnsClientConfig;
use tokio::time::sleep;

fn paused() -> actix_rt::SystemRunner {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
    })
}

fn config(server: SocketAddr) -> ResolverConfig {
    ResolverConfig {
        client: DnsClientConfig {
            servers: vec![server],
            timeout: Duration::from_secs(2),
            attempts: 1,
        },
        statics: StaticCache::default(),
        restore: RestorePolicy::default(),
        seed: Some(1),
    }
}

fn restore_on(server: SocketAddr) -> ResolverConfig {
    ResolverConfig {
        restore: RestorePolicy {
            enabled: true,
            ttl: Duration::from_secs(120),
        },
        ..config(server)
    }
}

fn udp_target(name: &str) -> ResolveTarget {
    ResolveTarget::new(name, TransportSetting::UdpOnly, 0)
}

fn one_sbc(addr: &str, ttl: u32) -> TestZone {
    TestZone::new()
        .srv("_sip._udp.example.com", ttl, 10, 0, 5060, "sbc.example.com")
        .a("sbc.example.com", ttl, &[addr])
}

async fn resolve(
    resolver: &Addr<Resolver>,
    target: &ResolveTarget,
) -> Result<sipfleet_protocol::dns::RouteSet, ResolveError> {
    resolver
        .send(Resolve {
            target: target.clone(),
        })
        .await
        .unwrap()
}

/// Let the actor and the in-process server exchange their packets without
/// advancing the virtual clock.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Collects route-set change notifications.
struct Collector(Arc<Mutex<Vec<RouteSetChanged>>>);
impl Actor for Collector {
    type Context = Context<Self>;
}
impl Handler<RouteSetChanged> for Collector {
    type Result = ();
    fn handle(&mut self, msg: RouteSetChanged, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg);
    }
}

#[test]
fn thousand_concurrent_resolves_make_one_query_per_record() {
    paused().block_on(async {
        let dns = TestDns::start(TestZone::guide_naptr("poly.example.com", 300)).await;
        let resolver = Resolver::new(config(dns.addr)).unwrap().start();
        let target = ResolveTarget::new("poly.example.com", TransportSetting::DnsNaptr, 0);
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let resolver = resolver.clone();
                let target = target.clone();
                actix_rt::spawn(async move { resolve(&resolver, &target).await })
            })
            .collect();
        let mut sets = Vec::new();
        for task in tasks {
            sets.push(task.await.unwrap().unwrap());
        }
        assert!(sets.iter().all(|s| s.same_routes(&sets[0])));
        assert_eq!(sets[0].entries.len(), 10);
        assert_eq!(dns.count("poly.example.com", Wire::NAPTR), 1);
        assert_eq!(
            dns.count("_sips._tcp.poly-sbc-ext.poly.example.com", Wire::SRV),
            1
        );
        assert_eq!(dns.count("c3.poly.example.com", Wire::A), 1);
        // 1 NAPTR + 4 SRV + 10 A, for 1,000 requests.
        assert_eq!(dns.total(), 15);
        // Within the TTL, no query at all.
        sleep(Duration::from_secs(299)).await;
        resolve(&resolver, &target).await.unwrap();
        assert_eq!(dns.total(), 15);
    });
}

#[test]
fn refresh_on_ttl_notifies_only_on_change() {
    paused().block_on(async {
        let dns = TestDns::start(one_sbc("127.0.0.10", 30)).await;
        let resolver = Resolver::new(config(dns.addr)).unwrap().start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collector = Collector(seen.clone()).start();
        resolver
            .send(Subscribe {
                target: None,
                recipient: collector.recipient(),
            })
            .await
            .unwrap();
        let target = udp_target("example.com");
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.addr.to_string(), "127.0.0.10:5060");
        assert_eq!(dns.total(), 2);

        // 30 s TTL: at 29.999 s nothing was asked again ...
        sleep(Duration::from_millis(29_999)).await;
        assert_eq!(dns.total(), 2);
        // ... at 30 s the refresh ran by itself (same answer: no notification).
        sleep(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(dns.total(), 4);
        assert!(seen.lock().unwrap().is_empty());

        // The SBC moves: the next refresh tells subscribers.
        dns.set_zone(one_sbc("127.0.0.11", 30));
        sleep(Duration::from_millis(29_999)).await;
        assert_eq!(dns.total(), 4);
        sleep(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(dns.total(), 6);
        let changes = seen.lock().unwrap().clone();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].previous.entries[0].route.addr.to_string(),
            "127.0.0.10:5060"
        );
        assert_eq!(
            changes[0].current.entries[0].route.addr.to_string(),
            "127.0.0.11:5060"
        );
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.addr.to_string(), "127.0.0.11:5060");
        assert_eq!(dns.total(), 6);
    });
}

#[test]
fn stopped_server_restores_last_answer_for_restore_ttl() {
    paused().block_on(async {
        let dns = TestDns::start(one_sbc("127.0.0.10", 10)).await;
        let addr = dns.addr;
        let resolver = Resolver::new(restore_on(addr)).unwrap().start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collector = Collector(seen.clone()).start();
        resolver
            .send(Subscribe {
                target: None,
                recipient: collector.recipient(),
            })
            .await
            .unwrap();
        let target = udp_target("example.com");
        let t0 = tokio::time::Instant::now().into_std();
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.source, RouteSource::Network);
        dns.stop().await;
        // TTL expires at 10 s, the refresh gets no answer, the last answer is
        // restored for dynamicRestore.ttl (120 s).
        sleep(Duration::from_secs(15)).await;
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.source, RouteSource::Restored);
        assert_eq!(set.entries[0].route.addr.to_string(), "127.0.0.10:5060");
        let restored_until = set.expires.unwrap();
        let left = restored_until - tokio::time::Instant::now().into_std();
        assert!(
            left > Duration::from_secs(110) && left <= Duration::from_secs(120),
            "{left:?}"
        );
        assert!(
            seen.lock().unwrap().is_empty(),
            "same routes: no notification"
        );

        // The server comes back with a new address: not asked before the
        // restored answer expires, asked right when it does.
        let dns = TestDns::start_on(addr, one_sbc("127.0.0.11", 10)).await;
        let just_before = restored_until - Duration::from_millis(1);
        tokio::time::sleep_until(tokio::time::Instant::from_std(just_before)).await;
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.source, RouteSource::Restored);
        assert_eq!(dns.total(), 0);
        // The SRV answer was restored first (the A query timed out 2 s later),
        // so only SRV is asked now; the route still rests on the restored A.
        sleep(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(dns.count("_sip._udp.example.com", Wire::SRV), 1);
        assert_eq!(dns.total(), 1);
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.source, RouteSource::Restored);
        let a_until = set.expires.unwrap();
        // d: how long one unanswered query took; the SRV failed at 10 s + d,
        // the A query after it at 10 s + 2d.
        let d = restored_until - t0 - Duration::from_secs(130);
        // One try with a 2 s timeout.
        assert_eq!(d, Duration::from_secs(2));
        assert_eq!(a_until - restored_until, d);
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            a_until - Duration::from_millis(1),
        ))
        .await;
        assert_eq!(dns.total(), 1);
        sleep(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(dns.total(), 2);
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.source, RouteSource::Network);
        assert_eq!(set.entries[0].route.addr.to_string(), "127.0.0.11:5060");
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}

#[test]
fn targets_sharing_a_name_share_its_queries() {
    paused().block_on(async {
        let dns = TestDns::start(one_sbc("127.0.0.10", 60)).await;
        let resolver = Resolver::new(config(dns.addr)).unwrap().start();
        let srv = udp_target("example.com");
        let direct = ResolveTarget::new("sbc.example.com", TransportSetting::UdpOnly, 5070);
        let (a, b) = tokio::join!(resolve(&resolver, &srv), resolve(&resolver, &direct));
        assert_eq!(
            a.unwrap().entries[0].route.addr.to_string(),
            "127.0.0.10:5060"
        );
        assert_eq!(
            b.unwrap().entries[0].route.addr.to_string(),
            "127.0.0.10:5070"
        );
        assert_eq!(dns.count("sbc.example.com", Wire::A), 1);
        assert_eq!(dns.total(), 2);
    });
}

#[test]
fn negative_or_error_answers_are_never_restored() {
    paused().block_on(async {
        let dns = TestDns::start(one_sbc("127.0.0.10", 10)).await;
        let resolver = Resolver::new(restore_on(dns.addr)).unwrap().start();
        let target = udp_target("example.com");
        resolve(&resolver, &target).await.unwrap();
        dns.set_rcode(Some(ResponseCode::ServFail));
        sleep(Duration::from_secs(11)).await;
        let got = resolve(&resolver, &target).await;
        assert!(matches!(got, Err(ResolveError::Dns(_))), "{got:?}");

        dns.set_rcode(None);
        dns.set_zone(TestZone::new().a("other.example.com", 10, &["127.0.0.1"]));
        sleep(Duration::from_secs(40)).await;
        let got = resolve(&resolver, &target).await;
        assert!(matches!(got, Err(ResolveError::Dns(_))), "{got:?}");
    });
}

#[test]
fn static_cache_when_server_is_down_from_the_start() {
    paused().block_on(async {
        let dns = TestDns::start(TestZone::new()).await;
        let addr = dns.addr;
        dns.stop().await;
        let mut config = config(addr);
        config.statics = StaticCache {
            a: vec![StaticA {
                name: "sbc.example.com".into(),
                ttl_s: 300,
                addr: "127.0.0.20".parse().unwrap(),
            }],
            ..StaticCache::default()
        };
        let resolver = Resolver::new(config).unwrap().start();
        let target = ResolveTarget::new("sbc.example.com", TransportSetting::TcpOnly, 5060);
        let set = resolve(&resolver, &target).await.unwrap();
        assert_eq!(set.entries[0].route.source, RouteSource::StaticCache);
        assert_eq!(set.entries[0].route.addr.to_string(), "127.0.0.20:5060");
    });
}

#[test]
fn unknown_name_is_an_error() {
    paused().block_on(async {
        let dns = TestDns::start(TestZone::new()).await;
        let resolver = Resolver::new(config(dns.addr)).unwrap().start();
        let got = resolve(&resolver, &udp_target("nowhere.example.com")).await;
        assert!(matches!(got, Err(ResolveError::Dns(_))), "{got:?}");
        // SRV then the A fallback.
        assert_eq!(dns.total(), 2);
    });
}
