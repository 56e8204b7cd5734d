//! End to end against the real lab over TLS: a certificate that does not
//! verify is reported as what it is. `route_failed` says `reason: "tls"`
//! (not `refused`, which means an SBC that is down) with the verification
//! error in `detail`, and the line fails over at once, as for a refused
//! connect.

mod e2e_support;

use std::time::Duration;

use e2e_support::{kind, scenario, t_ms, Harness};
use serde_json::Value;

const USER: &str = "1001";

/// The `route_failed` events so far, in order.
fn route_failures(h: &Harness) -> Vec<Value> {
    h.events()
        .into_iter()
        .filter(|e| kind(e) == "route_failed")
        .collect()
}

/// The fleet does not trust the lab's CA (no `--ca-file`): every SBC's
/// certificate fails verification. Each route fails with `tls` and the
/// OpenSSL verification error, SBC 1 then SBC 2 then SBC 3 at once, and
/// no SBC ever receives a REGISTER.
#[test]
fn an_untrusted_certificate_is_reason_tls_with_the_verification_error() {
    let mut h = scenario!()
        .line(USER)
        .transport("TLS")
        .options(|o| o.ca_file = None)
        .start();
    h.run(async |h, fleet| {
        h.wait_event("the third route_failed", Duration::from_secs(8), |e| {
            kind(e) == "route_failed" && h.sbc_of(e) == Some(3)
        })
        .await;
        let story = h.story();
        let failed = route_failures(h);
        let sbcs: Vec<_> = failed.iter().map(|e| h.sbc_of(e)).collect();
        assert_eq!(&sbcs[..3], &[Some(1), Some(2), Some(3)], "{story}");
        for e in &failed[..3] {
            assert_eq!(e["reason"], "tls", "{story}");
            assert_eq!(e["route"]["transport"], "tls", "{story}");
            let detail = e["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("certificate verify failed"),
                "detail {detail:?}\n{story}"
            );
        }
        // Failover at once, like a refused connect: no transaction timer.
        let failover = h
            .events()
            .into_iter()
            .find(|e| kind(e) == "failover" && h.sbc_of(e) == Some(2))
            .expect("failover to SBC 2");
        assert!(
            t_ms(&failover) - t_ms(&failed[0]) <= 100,
            "failover {} ms after the failure\n{story}",
            t_ms(&failover) - t_ms(&failed[0])
        );
        assert!(
            !h.events().iter().any(|e| kind(e) == "registered"),
            "{story}"
        );
        for sbc in 1..=3 {
            assert!(h.registers(sbc, USER).is_empty(), "SBC {sbc}\n{story}");
        }
        eprintln!(
            "measured: route_failed tls on SBC 1 at {} ms, failover {} ms later; detail: {}",
            t_ms(&failed[0]),
            t_ms(&failover) - t_ms(&failed[0]),
            failed[0]["detail"]
        );
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}

/// The lab's CA is trusted, but the line reaches SBC 1 under a name its
/// certificate does not carry (a static A entry for another name): the
/// verification error names the host name mismatch.
#[test]
fn a_wrong_host_name_is_reason_tls_naming_the_mismatch() {
    let mut h = scenario!()
        .line(USER)
        .transport("TLS")
        .config_with(|lab| {
            format!(
                "voIpProt.server.1.address=\"wrong-name.sipfleet.test\"\n\
                 voIpProt.server.1.port=\"5061\"\n\
                 dns.cache.A.networkOverride=\"1\"\n\
                 dns.cache.A.1.name=\"wrong-name.sipfleet.test\"\n\
                 dns.cache.A.1.address=\"{}\"\n",
                lab.sbc(1).ip()
            )
        })
        .start();
    h.run(async |h, fleet| {
        let failed = h
            .wait_event("route_failed", Duration::from_secs(5), |e| {
                kind(e) == "route_failed"
            })
            .await;
        let story = h.story();
        assert_eq!(failed["reason"], "tls", "{story}");
        assert_eq!(
            failed["route"]["host"], "wrong-name.sipfleet.test",
            "{story}"
        );
        let detail = failed["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("certificate verify failed") && detail.contains("hostname mismatch"),
            "detail {detail:?}\n{story}"
        );
        eprintln!("measured: wrong host name detail: {detail}");
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}
