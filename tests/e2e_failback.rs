//! End to end against the real lab: failback to the primary once it returns
//! (guide, "RROFO Configuration"), in `registration` mode (at each refresh)
//! and `duration` mode (`failBack.timeout` after registering on the
//! failover SBC), with and without `unRegisterOnFailBack`, and the guide's
//! Call-ID rule checked at the SBCs: one Call-ID through failover and
//! failback.

mod e2e_support;

use std::time::Duration;

use e2e_support::{assert_near, kind, scenario, t_ms, Harness};
use serde_json::Value;
use sipfleet_lab::Mode;

const USER: &str = "1001";

/// RROFO with short registrations: expires 10 s, so refreshes come every
/// 5 s (half the expiry below 64 s).
fn rrofo(mode: &str, unregister_on_failback: bool, extra: &str) -> String {
    format!(
        "voIpProt.server.1.expires=\"10\"\n\
         voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
         voIpProt.server.1.failOver.failRegistrationOn=\"1\"\n\
         voIpProt.server.1.failOver.failBack.mode=\"{mode}\"\n\
         voIpProt.server.1.failOver.unRegisterOnFailBack=\"{}\"\n\
         voIpProt.SIP.authOptimizedInFailover=\"1\"\n{extra}",
        u8::from(unregister_on_failback)
    )
}

/// What a failback run produced: the registration on SBC 2, the failback
/// event and the registration on SBC 1 that followed.
struct Failback {
    on_sbc2: Value,
    failback: Value,
    on_sbc1: Value,
}

/// SBC 1 is dead at start, so the line registers on SBC 2; SBC 1 then comes
/// back; waits (at most `within`) for the failback and the registration on
/// SBC 1.
async fn fail_over_then_back(h: &Harness, within: Duration) -> Failback {
    let on_sbc2 = h
        .wait_event("registered on SBC 2", Duration::from_secs(5), |e| {
            kind(e) == "registered" && h.sbc_of(e) == Some(2)
        })
        .await;
    h.set_mode(1, Mode::Ok).await;
    let failback = h
        .wait_event("failback", within, |e| kind(e) == "failback")
        .await;
    let on_sbc1 = h
        .wait_event("registered on SBC 1", Duration::from_secs(3), |e| {
            kind(e) == "registered" && h.sbc_of(e) == Some(1)
        })
        .await;
    let story = h.story();
    assert_eq!(h.sbc_of(&failback), Some(1), "{story}");
    assert_eq!(h.sbc_of_route(&failback["from"]), Some(2), "{story}");
    assert_eq!(on_sbc2["primary"], false, "{story}");
    assert_eq!(on_sbc1["primary"], true, "{story}");
    assert!(t_ms(&on_sbc1) >= t_ms(&failback), "{story}");
    assert!(
        t_ms(&on_sbc1) - t_ms(&failback) < 500,
        "registered on SBC 1 {} ms after the failback\n{story}",
        t_ms(&on_sbc1) - t_ms(&failback)
    );
    let failback_register = h
        .events()
        .into_iter()
        .find(|e| kind(e) == "registering" && e["purpose"] == "failback")
        .expect("a failback REGISTER");
    assert_eq!(h.sbc_of(&failback_register), Some(1), "{story}");
    Failback {
        on_sbc2,
        failback,
        on_sbc1,
    }
}

/// The guide's Call-ID rule, at the SBCs: every REGISTER either SBC got
/// from the line (failover, refreshes, failback, shutdown) carries the one
/// Call-ID the events report.
fn one_call_id_everywhere(h: &Harness) {
    let evs = h.events();
    let call_id = evs[0]["call_id"].as_str().unwrap().to_string();
    let story = h.story();
    assert!(
        evs.iter().all(|e| e["call_id"] == call_id.as_str()),
        "{story}"
    );
    for sbc in [1, 2] {
        let seen = h.registers(sbc, USER);
        assert!(!seen.is_empty(), "SBC {sbc} got nothing\n{story}");
        assert!(
            seen.iter().all(|r| r.call_id == call_id),
            "SBC {sbc}: {seen:#?}"
        );
    }
}

/// `failBack.mode=registration`: the first refresh after SBC 1 returns (5 s
/// after registering on SBC 2) goes to SBC 1. With
/// `unRegisterOnFailBack=0` the binding on SBC 2 is "terminated silently":
/// SBC 2 never gets an `Expires: 0` and still lists the contact.
#[test]
fn failback_at_the_next_refresh_in_registration_mode() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .config(rrofo("registration", false, ""))
        .start();
    h.run(async |h, fleet| {
        let f = fail_over_then_back(h, Duration::from_secs(8)).await;
        let story = h.story();
        assert_near(
            "failback at the refresh",
            t_ms(&f.failback) as i64 - t_ms(&f.on_sbc2) as i64,
            5000,
            300,
            &story,
        );
        let dropped = h
            .events()
            .into_iter()
            .find(|e| kind(e) == "unregistered")
            .expect("the SBC 2 binding is dropped");
        assert_eq!(dropped["reason"], "failback", "{story}");
        assert_eq!(h.sbc_of(&dropped), Some(2), "{story}");
        assert!(
            h.registers(2, USER).iter().all(|r| r.expires != Some(0)),
            "silent termination sends no Expires: 0\n{story}"
        );
        assert!(
            !h.lab.sbc(2).contacts(USER).unwrap().is_empty(),
            "{story}"
        );
        one_call_id_everywhere(h);
        eprintln!(
            "measured: registered on SBC 2 at {} ms, failback {} ms later, on SBC 1 {} ms after that",
            t_ms(&f.on_sbc2),
            t_ms(&f.failback) - t_ms(&f.on_sbc2),
            t_ms(&f.on_sbc1) - t_ms(&f.failback)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        // Shutdown un-registers where the line is registered: SBC 1.
        let at1 = h
            .wait_registers(1, USER, Duration::from_secs(2), |s| {
                s.last().is_some_and(|r| r.expires == Some(0))
            })
            .await;
        assert!(h.lab.sbc(1).contacts(USER).unwrap().is_empty(), "{at1:#?}");
        h.finish();
    });
}

/// `unRegisterOnFailBack=1`: the failback first removes the binding on
/// SBC 2 (`Expires: 0`, same Call-ID), and only then registers on SBC 1.
#[test]
fn failback_unregisters_from_the_failover_sbc_first() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .config(rrofo("registration", true, ""))
        .start();
    h.run(async |h, fleet| {
        let f = fail_over_then_back(h, Duration::from_secs(8)).await;
        let evs = h.events();
        let story = h.story();
        let unregister = evs
            .iter()
            .find(|e| kind(e) == "registering" && e["purpose"] == "unregister")
            .expect("an un-REGISTER");
        assert_eq!(h.sbc_of(unregister), Some(2), "{story}");
        assert_eq!(unregister["expires"], 0, "{story}");
        assert!(t_ms(unregister) >= t_ms(&f.failback), "{story}");
        let failback_register = evs
            .iter()
            .find(|e| kind(e) == "registering" && e["purpose"] == "failback")
            .unwrap();
        assert!(t_ms(unregister) <= t_ms(failback_register), "{story}");
        // At the SBCs: SBC 2's Expires: 0 arrived before SBC 1's failback
        // REGISTER (the first request SBC 1 read after it came back).
        let at2 = h.registers(2, USER);
        let zero = at2
            .iter()
            .find(|r| r.expires == Some(0))
            .expect("SBC 2 got Expires: 0");
        let at1 = h.registers(1, USER);
        let back = at1.first().expect("SBC 1 got the failback REGISTER");
        assert!(
            zero.t_ms <= back.t_ms,
            "Expires: 0 at SBC 2 at {} ms, failback REGISTER at SBC 1 at {} ms\n{story}",
            zero.t_ms,
            back.t_ms
        );
        assert!(h.lab.sbc(2).contacts(USER).unwrap().is_empty(), "{story}");
        assert!(!h.lab.sbc(1).contacts(USER).unwrap().is_empty(), "{story}");
        one_call_id_everywhere(h);
        eprintln!(
            "measured: failback {} ms after registering on SBC 2; Expires: 0 at SBC 2 at {} ms, \
             failback REGISTER at SBC 1 at {} ms, registered on SBC 1 at {} ms",
            t_ms(&f.failback) - t_ms(&f.on_sbc2),
            zero.t_ms,
            back.t_ms,
            t_ms(&f.on_sbc1)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// `failBack.mode=duration`, `failBack.timeout=60` (the guide's minimum):
/// the failback comes 60 s after registering on SBC 2, not at a refresh
/// (SBC 1 is back long before). About 65 s.
#[test]
fn failback_after_the_failback_timeout_in_duration_mode() {
    let mut h = scenario!()
        .concurrent()
        .mode(1, Mode::Dead)
        .line(USER)
        .config(rrofo(
            "duration",
            false,
            "voIpProt.server.1.failOver.failBack.timeout=\"60\"\n",
        ))
        .start();
    h.run(async |h, fleet| {
        let f = fail_over_then_back(h, Duration::from_secs(63)).await;
        let story = h.story();
        assert_near(
            "failback after failBack.timeout",
            t_ms(&f.failback) as i64 - t_ms(&f.on_sbc2) as i64,
            60_000,
            1000,
            &story,
        );
        // Refreshes meanwhile stayed on SBC 2 (duration mode does not try
        // the primary at a refresh).
        let refreshes: Vec<Value> = h
            .events()
            .into_iter()
            .filter(|e| kind(e) == "registering" && e["purpose"] == "refresh")
            .collect();
        assert!(refreshes.len() >= 10, "{story}");
        assert!(
            refreshes
                .iter()
                .filter(|e| t_ms(e) < t_ms(&f.failback))
                .all(|e| h.sbc_of(e) == Some(2)),
            "{story}"
        );
        one_call_id_everywhere(h);
        eprintln!(
            "measured: failback {} ms after registering on SBC 2 (failBack.timeout 60 s)",
            t_ms(&f.failback) - t_ms(&f.on_sbc2)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// The guide's everyday case: a line registered on its primary, which then
/// dies. The next refresh (5 s after registering, half of the 10 s expiry)
/// meets ICMP and fails over at once; with `failRegistrationOn=1` the old
/// binding is dropped as failover begins. One Call-ID throughout.
#[test]
fn registered_line_fails_over_at_the_refresh_when_the_primary_dies() {
    let mut h = scenario!()
        .line(USER)
        .config(rrofo("registration", false, ""))
        .start();
    h.run(async |h, fleet| {
        let on1 = h.first_registration_on(1).await;
        assert_eq!(on1["expires"], 10, "{}", h.story());
        h.set_mode(1, Mode::Dead).await;
        let failed = h
            .wait_event("route_failed", Duration::from_secs(7), |e| {
                kind(e) == "route_failed"
            })
            .await;
        let on2 = h
            .wait_event("registered on SBC 2", Duration::from_secs(2), |e| {
                kind(e) == "registered" && h.sbc_of(e) == Some(2)
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let refresh = evs
            .iter()
            .find(|e| kind(e) == "registering" && e["purpose"] == "refresh")
            .expect("a refresh");
        assert_eq!(h.sbc_of(refresh), Some(1), "{story}");
        assert_near(
            "refresh at half the expiry",
            t_ms(refresh) as i64 - t_ms(&on1) as i64,
            5000,
            300,
            &story,
        );
        assert_eq!(failed["reason"], "icmp", "{story}");
        assert!(t_ms(&failed) - t_ms(refresh) <= 100, "{story}");
        let dropped = evs
            .iter()
            .find(|e| kind(e) == "unregistered")
            .expect("binding dropped");
        assert_eq!(dropped["reason"], "failover_started", "{story}");
        assert_eq!(h.sbc_of(dropped), Some(1), "{story}");
        assert!(t_ms(&on2) - t_ms(&failed) <= 500, "{story}");
        assert_eq!(on2["primary"], false, "{story}");
        one_call_id_everywhere(h);
        eprintln!(
            "measured: refresh {} ms after registering, ICMP failover {} ms later, on SBC 2 {} ms after that",
            t_ms(refresh) - t_ms(&on1),
            t_ms(&failed) - t_ms(refresh),
            t_ms(&on2) - t_ms(&failed)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// `failBack.mode=registration` with a primary that is back but silent:
/// every refresh tries SBC 1 first, times out after 3.5 s and fails over to
/// SBC 2 again (guide: "These failover and fallback sequences will persist
/// as long as the primary server is unavailable"). The line never loses
/// SBC 2 for longer than one failover.
#[test]
fn failback_to_a_silent_primary_fails_over_again() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .config(rrofo("registration", false, ""))
        .start();
    h.run(async |h, fleet| {
        let on2 = h
            .wait_event("registered on SBC 2", Duration::from_secs(5), |e| {
                kind(e) == "registered" && h.sbc_of(e) == Some(2)
            })
            .await;
        h.set_mode(1, Mode::Silent).await;
        let failback = h
            .wait_event("failback", Duration::from_secs(7), |e| {
                kind(e) == "failback"
            })
            .await;
        let back_on2 = h
            .wait_event("registered on SBC 2 again", Duration::from_secs(6), |e| {
                kind(e) == "registered" && h.sbc_of(e) == Some(2) && t_ms(e) > t_ms(&failback)
            })
            .await;
        let evs = h.events();
        let story = h.story();
        assert_near(
            "failback at the refresh",
            t_ms(&failback) as i64 - t_ms(&on2) as i64,
            5000,
            300,
            &story,
        );
        let failed = evs
            .iter()
            .find(|e| kind(e) == "route_failed" && t_ms(e) >= t_ms(&failback))
            .expect("the failback REGISTER fails");
        assert_eq!(failed["reason"], "timeout", "{story}");
        assert_eq!(h.sbc_of(failed), Some(1), "{story}");
        assert_near(
            "failback REGISTER timed out",
            t_ms(failed) as i64 - t_ms(&failback) as i64,
            3500,
            300,
            &story,
        );
        assert!(t_ms(&back_on2) - t_ms(failed) <= 500, "{story}");
        assert!(
            !evs.iter()
                .any(|e| matches!(kind(e), "backoff" | "registration_failed")),
            "{story}"
        );
        // And the next refresh tries the primary again.
        let again = h
            .wait_event("a second failback", Duration::from_secs(7), |e| {
                kind(e) == "failback" && t_ms(e) > t_ms(&back_on2)
            })
            .await;
        assert_near(
            "second failback at the refresh",
            t_ms(&again) as i64 - t_ms(&back_on2) as i64,
            5000,
            300,
            &h.story(),
        );
        let call_id = evs[0]["call_id"].clone();
        assert!(
            h.events().iter().all(|e| e["call_id"] == call_id),
            "{}",
            h.story()
        );
        eprintln!(
            "measured: failback {} ms after registering on SBC 2, timeout at SBC 1 {} ms later, \
             back on SBC 2 {} ms after that, next failback {} ms later",
            t_ms(&failback) - t_ms(&on2),
            t_ms(failed) - t_ms(&failback),
            t_ms(&back_on2) - t_ms(failed),
            t_ms(&again) - t_ms(&back_on2)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.set_mode(1, Mode::Ok).await;
        h.finish();
    });
}

/// `failBack.mode=DNSTTL`: the primary is tried again once the DNS TTL of
/// the current route has passed (3 s in this lab), well before any refresh
/// (expires 3600).
#[test]
fn failback_after_the_dns_ttl_in_dnsttl_mode() {
    let mut h = scenario!()
        .ttl(3)
        .mode(1, Mode::Dead)
        .line(USER)
        .config(rrofo(
            "DNSTTL",
            false,
            "voIpProt.server.1.expires=\"3600\"\n",
        ))
        .start();
    h.run(async |h, fleet| {
        let f = fail_over_then_back(h, Duration::from_secs(5)).await;
        let story = h.story();
        let delay = t_ms(&f.failback) as i64 - t_ms(&f.on_sbc2) as i64;
        // The TTL counts from the DNS answer, which came a moment before
        // the registration on SBC 2.
        assert!(
            (2500..=3300).contains(&delay),
            "failback {delay} ms after registering on SBC 2 (TTL 3 s)\n{story}"
        );
        assert!(
            !h.events()
                .iter()
                .any(|e| kind(e) == "registering" && e["purpose"] == "refresh"),
            "{story}"
        );
        one_call_id_everywhere(h);
        eprintln!("measured: DNSTTL failback {delay} ms after registering on SBC 2 (TTL 3 s)");
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Guide, `failRegistrationOn=0`: "Existing registrations will remain
/// active until their expiries lapse normally." Registered on SBC 1 for
/// 12 s; every SBC then goes silent. The refresh at 6 s fails over (SBC 1
/// times out at 9.5 s) but the binding on SBC 1 stays in force through the
/// failover walk, and lapses at 12 s (`unregistered`, reason `expired`) —
/// no `failover_started`.
#[test]
fn fail_registration_off_keeps_the_binding_until_it_lapses() {
    let mut h = scenario!()
        .line(USER)
        .config(
            "voIpProt.server.1.expires=\"12\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.failRegistrationOn=\"0\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        let on1 = h.first_registration_on(1).await;
        for i in 1..=3 {
            h.set_mode(i, Mode::Silent).await;
        }
        let failed = h
            .wait_event("route_failed", Duration::from_secs(11), |e| {
                kind(e) == "route_failed"
            })
            .await;
        let story = h.story();
        assert_eq!(h.sbc_of(&failed), Some(1), "{story}");
        assert_near(
            "SBC 1 fails at the refresh + 3.5 s",
            t_ms(&failed) as i64 - t_ms(&on1) as i64,
            9500,
            300,
            &story,
        );
        // Mid-walk: the binding on SBC 1 still stands.
        h.sleep_ms(500).await;
        let status = fleet.status().await;
        let bound = status[0].registered_route.as_ref().map(|r| h.sbc_at(r.addr.ip()));
        assert_eq!(bound, Some(Some(1)), "{status:?}\n{}", h.story());
        let lapsed = h
            .wait_event("unregistered", Duration::from_secs(4), |e| {
                kind(e) == "unregistered"
            })
            .await;
        let story = h.story();
        assert_eq!(lapsed["reason"], "expired", "{story}");
        assert_eq!(h.sbc_of(&lapsed), Some(1), "{story}");
        assert_near(
            "binding lapses at its expiry",
            t_ms(&lapsed) as i64 - t_ms(&on1) as i64,
            12_000,
            300,
            &story,
        );
        assert!(
            !h.events()
                .iter()
                .any(|e| e["reason"] == "failover_started"),
            "{story}"
        );
        eprintln!(
            "measured: SBC 1 failed {} ms and the kept binding lapsed {} ms after registering (expires 12)",
            t_ms(&failed) - t_ms(&on1),
            t_ms(&lapsed) - t_ms(&on1)
        );
        fleet.shutdown(Duration::from_millis(500)).await;
        for i in 1..=3 {
            h.set_mode(i, Mode::Ok).await;
        }
        h.finish();
    });
}
