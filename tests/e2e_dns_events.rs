//! End to end against the lab's dnsmasq, issue 12 item 5: DNS trouble is
//! an event, not only a WARN on stderr. A DNS outage past the records' TTL
//! gives `dns_restored` (routes marked `source: restored`) with dynamic
//! cache restore on, and `dns_failed` with it off (the guide: no record is
//! used past its TTL, so nothing new is learnt; a registered line keeps the
//! route list it has, as `dns_outage_keeps_the_route_list_for_failover`
//! shows). A name that does not resolve is a `dns_failed` for its routes.

mod e2e_support;

use std::time::Duration;

use e2e_support::{kind, scenario, Scenario, Started};
use serde_json::Value;
use sipfleet_lab::{DnsMode, DEFAULT_DOMAIN};
use sipfleet_protocol::route::RouteSource;

const TTL_S: u32 = 3;

/// Registers one line, makes the DNS server silent and waits for `event`;
/// returns the harness, that event and the sources of the line's routes.
fn outage(
    scenario: Scenario,
    restore: bool,
    event: &'static str,
) -> (Started, Value, Vec<RouteSource>) {
    let mut h = scenario
        .concurrent()
        .ttl(TTL_S)
        .line("1041")
        .config(format!(
            "dns.cache.dynamicRestore.enable=\"{}\"\n",
            u8::from(restore)
        ))
        .start();
    let sources = h.run(async |h, fleet| {
        h.wait_event("registered", Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
        let result = h.with_lab(|lab| lab.dns().set_mode(DnsMode::Silent)).await;
        result.expect("DNS silent");
        let seen = h
            .wait_event(event, Duration::from_secs(25), |e| kind(e) == event)
            .await;
        // The line applies a restored set right after the event.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status = fleet.status().await;
        let sources = status[0].routes.iter().map(|r| r.source).collect();
        let result = h.with_lab(|lab| lab.dns().set_mode(DnsMode::Normal)).await;
        result.expect("DNS back");
        fleet.shutdown(Duration::from_secs(3)).await;
        (seen, sources)
    });
    (h, sources.0, sources.1)
}

#[test]
fn a_dns_outage_with_restore_on_serves_restored_routes() {
    let (h, restored, sources) = outage(scenario!(), true, "dns_restored");
    let story = h.story();
    assert_eq!(restored["error"], "no response (timeout)", "{story}");
    assert!(restored["name"].as_str().is_some(), "{story}");
    assert!(
        matches!(restored["query_type"].as_str(), Some("SRV" | "A" | "NAPTR")),
        "{story}"
    );
    assert_eq!(
        restored["ttl_ms"], 120_000,
        "dynamicRestore.ttl default\n{story}"
    );
    assert!(
        sources.iter().all(|s| *s == RouteSource::Restored),
        "routes past their TTL come from the restored cache: {sources:?}\n{story}"
    );
    assert!(
        !h.events().iter().any(|e| kind(e) == "dns_failed"),
        "{story}"
    );
    h.finish();
}

#[test]
fn a_dns_outage_with_restore_off_is_a_dns_failure() {
    let (h, failed, sources) = outage(scenario!(), false, "dns_failed");
    let story = h.story();
    assert_eq!(failed["error"], "no response (timeout)", "{story}");
    assert!(
        !h.events().iter().any(|e| kind(e) == "dns_restored"),
        "{story}"
    );
    assert!(
        sources.iter().all(|s| *s == RouteSource::Network),
        "the registered line keeps the routes it had: {sources:?}\n{story}"
    );
    h.finish();
}

#[test]
fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let name = format!("nosuch.{DEFAULT_DOMAIN}");
    let mut h = scenario!()
        .concurrent()
        .ttl(TTL_S)
        .line("1042")
        .config(format!("voIpProt.server.1.address=\"{name}\"\n"))
        .start();
    let failed = h.run_until_first("dns_failed", Duration::from_secs(10));
    let story = h.story();
    assert_eq!(failed["name"], name.as_str(), "{story}");
    assert_eq!(failed["query_type"], "routes", "{story}");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{story}"
    );
    h.finish();
}
