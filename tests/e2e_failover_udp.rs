//! End to end, over UDP, against the real lab: how a line fails over (or
//! does not) when its primary SBC is dead, silent, answers 503 or rejects,
//! with the guide's timelines measured on the events the fleet reports
//! (the JSON of `sipfleet run --events json`) and on what each SBC received.
//!
//! The lab's zone lists SBC 1, 2, 3 at SRV priorities 10, 20, 30 under
//! `_sip._udp`, so SBC 1 is every line's primary.

mod e2e_support;

use std::time::Duration;

use e2e_support::{assert_near, kind, scenario, t_ms, BlackHole, Harness};
use serde_json::Value;
use sipfleet_lab::{Mode, Transport};

const USER: &str = "1001";

/// The first event of `name` on SBC `sbc`, if any.
fn first<'a>(h: &Harness, evs: &'a [Value], name: &str, sbc: usize) -> Option<&'a Value> {
    evs.iter()
        .find(|e| kind(e) == name && h.sbc_of(e) == Some(sbc))
}

/// Guide, "Triggering Failover": an ICMP error triggers failover at once.
/// SBC 1 is dead (ICMP port unreachable): the first REGISTER fails with
/// `icmp` and the line fails over to SBC 2 within 100 ms. With the default
/// `authOptimizedInFailover=0` SBC 2's challenge sends the authenticated
/// request to the primary again (ICMP again, no delay), then to SBC 2.
#[test]
fn udp_dead_primary_fails_over_on_icmp_at_once() {
    let mut h = scenario!().mode(1, Mode::Dead).line(USER).start();
    h.run(async |h, fleet| {
        let reg = h
            .wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let start = first(h, &evs, "registering", 1).expect("first REGISTER to SBC 1");
        assert_eq!(start["purpose"], "initial", "{story}");
        let failed = first(h, &evs, "route_failed", 1).expect("route_failed on SBC 1");
        assert_eq!(failed["reason"], "icmp", "{story}");
        let failover = first(h, &evs, "failover", 2).expect("failover to SBC 2");
        assert_eq!(h.sbc_of_route(&failover["from"]), Some(1), "{story}");
        let dt = t_ms(failover) as i64 - t_ms(start) as i64;
        assert!(
            (0..=100).contains(&dt),
            "failover {dt} ms after the first REGISTER\n{story}"
        );
        assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
        assert_eq!(reg["primary"], false, "{story}");
        assert_eq!(reg["route"]["transport"], "udp", "{story}");
        // The challenge from SBC 2 sent the new request to the primary first.
        let auth = evs
            .iter()
            .find(|e| kind(e) == "registering" && e["purpose"] == "authenticate")
            .expect("an authenticated REGISTER");
        assert_eq!(
            h.sbc_of(auth),
            Some(1),
            "authOptimizedInFailover=0\n{story}"
        );
        assert!(
            t_ms(&reg) - t_ms(start) < 1000,
            "registered {} ms after start\n{story}",
            t_ms(&reg)
        );
        // One Call-ID for the whole failover (guide: same Call-ID).
        let call_id = start["call_id"].clone();
        assert!(evs.iter().all(|e| e["call_id"] == call_id), "{story}");
        eprintln!(
            "measured: failover {dt} ms, registered on SBC 2 {} ms after the first REGISTER",
            t_ms(&reg) - t_ms(start)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        // A dead SBC received nothing; SBC 2 got every REGISTER with that
        // Call-ID, the last one the un-REGISTER of the shutdown.
        assert!(h.registers(1, USER).is_empty(), "{story}");
        let at2 = h
            .wait_registers(2, USER, Duration::from_secs(2), |s| {
                s.iter().any(|r| r.expires == Some(0))
            })
            .await;
        assert!(
            at2.iter().all(|r| call_id == r.call_id.as_str()),
            "{at2:#?}"
        );
        assert!(h.registers(3, USER).is_empty(), "{}", h.story());
        h.finish();
    });
}

/// Guide, "UDP - Failover Timing Controls", example 1 (defaults,
/// `retryTimeOut=0`, `retryMaxCount=3`): sends at 0, 0.5 and 1.5 s, then
/// failover at 3.5 s. SBC 1 is a silent socket of the test (stamping
/// arrivals); SBC 2 registers the line.
#[test]
fn udp_silent_primary_rfc3261_timers_fail_over_at_3500_ms() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .config("voIpProt.SIP.authOptimizedInFailover=\"1\"\n")
        .start();
    let hole = BlackHole::bind(h.lab.sbc(1).addr(Transport::Udp));
    h.run(async |h, fleet| {
        let reg = h
            .wait_event("registered", Duration::from_secs(8), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs = h.events();
        let story = h.story();
        // Time 0 of the guide's timeline: the first REGISTER (after DNS).
        let t0 = t_ms(first(h, &evs, "registering", 1).expect("REGISTER to SBC 1")) as i64;
        let failed = first(h, &evs, "route_failed", 1).expect("route_failed on SBC 1");
        assert_eq!(failed["reason"], "timeout", "{story}");
        assert_near("route_failed", t_ms(failed) as i64 - t0, 3500, 300, &story);
        let failover = first(h, &evs, "failover", 2).expect("failover to SBC 2");
        assert!(t_ms(failover) - t_ms(failed) <= 50, "{story}");
        assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
        // authOptimizedInFailover=1: SBC 2's challenge is answered at SBC 2.
        assert!(
            t_ms(&reg) - t_ms(failover) < 500,
            "registered {} ms after the failover\n{story}",
            t_ms(&reg) - t_ms(failover)
        );
        let sends = hole.seen();
        let call_id = evs[0]["call_id"].as_str().unwrap().to_string();
        assert_eq!(sends.len(), 3, "three sends to SBC 1: {sends:?}\n{story}");
        assert!(sends.iter().all(|(_, c)| *c == call_id), "{sends:?}");
        let t: Vec<i64> = sends.iter().map(|(at, _)| h.ms_of(*at)).collect();
        assert_near("first send", t[0], t0, 50, &story);
        assert_near(
            "first retransmission interval",
            t[1] - t[0],
            500,
            100,
            &story,
        );
        assert_near(
            "second retransmission interval",
            t[2] - t[1],
            1000,
            100,
            &story,
        );
        assert_near(
            "failover after the last send",
            t_ms(failed) as i64 - t[2],
            2000,
            150,
            &story,
        );
        let at2 = h.registers(2, USER);
        assert!(at2.iter().all(|r| r.call_id == call_id), "{at2:#?}");
        eprintln!(
            "measured (ms after the first REGISTER): sends at {:?}, route_failed at {}, \
             registered on SBC 2 at {}",
            t.iter().map(|x| x - t0).collect::<Vec<_>>(),
            t_ms(failed) as i64 - t0,
            t_ms(&reg) as i64 - t0
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// The same with a static retry timer: `retryTimeOut=1000`,
/// `retryMaxCount=2` sends at 0 and 1 s and fails over at 2 s.
#[test]
fn udp_silent_primary_static_retry_timer_fails_over_at_2000_ms() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .config(
            "voIpProt.server.1.retryTimeOut=\"1000\"\n\
             voIpProt.server.1.retryMaxCount=\"2\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
        )
        .start();
    let hole = BlackHole::bind(h.lab.sbc(1).addr(Transport::Udp));
    h.run(async |h, fleet| {
        let reg = h
            .wait_event("registered", Duration::from_secs(6), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let t0 = t_ms(first(h, &evs, "registering", 1).expect("REGISTER to SBC 1")) as i64;
        let failed = first(h, &evs, "route_failed", 1).expect("route_failed on SBC 1");
        assert_eq!(failed["reason"], "timeout", "{story}");
        assert_near("route_failed", t_ms(failed) as i64 - t0, 2000, 300, &story);
        assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
        let t: Vec<i64> = hole.seen().iter().map(|(at, _)| h.ms_of(*at)).collect();
        assert_eq!(t.len(), 2, "two sends to SBC 1: {t:?}\n{story}");
        assert_near("retransmission interval", t[1] - t[0], 1000, 100, &story);
        assert_near(
            "failover after the last send",
            t_ms(failed) as i64 - t[1],
            1000,
            150,
            &story,
        );
        eprintln!(
            "measured (ms after the first REGISTER): sends at {:?}, route_failed at {}, \
             registered on SBC 2 at {}",
            t.iter().map(|x| x - t0).collect::<Vec<_>>(),
            t_ms(failed) as i64 - t0,
            t_ms(&reg) as i64 - t0
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// A real silent Kamailio (SIGSTOPped) as the primary, with the default
/// `authOptimizedInFailover=0`: failover at 3.5 s; SBC 2's challenge sends
/// the authenticated request to the primary again (guide: "the phone will
/// retry its primary, which may add a delay"), which costs another 3.5 s,
/// then SBC 2 registers the line at about 7 s. Once continued, SBC 1 shows
/// it read 3 + 3 REGISTERs, all with the line's one Call-ID.
#[test]
fn udp_silent_kamailio_primary_and_the_challenge_back_to_the_primary() {
    let mut h = scenario!().mode(1, Mode::Silent).line(USER).start();
    h.run(async |h, fleet| {
        let reg = h
            .wait_event("registered", Duration::from_secs(12), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let fails: Vec<&Value> = evs
            .iter()
            .filter(|e| kind(e) == "route_failed" && h.sbc_of(e) == Some(1))
            .collect();
        assert_eq!(fails.len(), 2, "{story}");
        assert!(fails.iter().all(|e| e["reason"] == "timeout"), "{story}");
        let t0 = t_ms(first(h, &evs, "registering", 1).expect("REGISTER to SBC 1")) as i64;
        assert_near(
            "first route_failed",
            t_ms(fails[0]) as i64 - t0,
            3500,
            300,
            &story,
        );
        let auth = evs
            .iter()
            .find(|e| kind(e) == "registering" && e["purpose"] == "authenticate")
            .expect("authenticated REGISTER");
        assert_eq!(h.sbc_of(auth), Some(1), "{story}");
        assert_near(
            "second route_failed after the authenticated REGISTER",
            t_ms(fails[1]) as i64 - t_ms(auth) as i64,
            3500,
            300,
            &story,
        );
        assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
        assert_near(
            "registered on SBC 2",
            t_ms(&reg) as i64 - t0,
            7000,
            600,
            &story,
        );
        let call_id = evs[0]["call_id"].as_str().unwrap().to_string();
        assert!(
            evs.iter().all(|e| e["call_id"] == call_id.as_str()),
            "{story}"
        );
        // Continue SBC 1: it reads (and logs) what it was sent meanwhile.
        h.set_mode(1, Mode::Ok).await;
        let at1 = h
            .wait_registers(1, USER, Duration::from_secs(3), |s| s.len() >= 6)
            .await;
        assert_eq!(at1.len(), 6, "{at1:#?}");
        assert!(at1.iter().all(|r| r.call_id == call_id), "{at1:#?}");
        let at2 = h.registers(2, USER);
        assert_eq!(at2.len(), 2, "challenge + authenticated: {at2:#?}");
        assert!(at2.iter().all(|r| r.call_id == call_id), "{at2:#?}");
        eprintln!(
            "measured (ms after the first REGISTER): route_failed at {} and {}, \
             registered on SBC 2 at {}",
            t_ms(fails[0]) as i64 - t0,
            t_ms(fails[1]) as i64 - t0,
            t_ms(&reg) as i64 - t0
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Guide, `failoverOn503Response=1` (default): a 503 triggers failover at
/// once; its Retry-After "is only applied when sending a request through the
/// last failover route", so a Retry-After of 30 s on the primary delays
/// nothing.
#[test]
fn udp_503_on_primary_fails_over_at_once_ignoring_retry_after() {
    let mut h = scenario!()
        .mode(
            1,
            Mode::Error503 {
                retry_after: Some(30),
            },
        )
        .line(USER)
        .config(
            "voIpProt.SIP.failoverOn503Response=\"1\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        let reg = h
            .wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let t0 = t_ms(first(h, &evs, "registering", 1).expect("REGISTER to SBC 1")) as i64;
        let failed = first(h, &evs, "route_failed", 1).expect("route_failed on SBC 1");
        assert_eq!(failed["reason"], "503", "{story}");
        let failover = first(h, &evs, "failover", 2).expect("failover to SBC 2");
        assert!(t_ms(failover) as i64 - t0 <= 100, "{story}");
        assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
        assert!(t_ms(&reg) as i64 - t0 <= 500, "{story}");
        assert!(!evs.iter().any(|e| kind(e) == "backoff"), "{story}");
        let at1 = h.registers(1, USER);
        assert_eq!(at1.len(), 1, "{at1:#?}");
        assert_eq!(at1[0].call_id, evs[0]["call_id"].as_str().unwrap());
        eprintln!(
            "measured: 503 failover {} ms, registered on SBC 2 {} ms after the first REGISTER",
            t_ms(failover) as i64 - t0,
            t_ms(&reg) as i64 - t0
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Guide, `failoverOn503Response=0`: "A 503 response will not trigger a
/// failover. It will be treated as a final response": the registration fails
/// (status 503), the line backs off for a randomized wait in [W/2, W] with
/// W = `registerRetry.baseTimeOut` = 10 s, and SBC 2 hears nothing.
#[test]
fn udp_503_without_failover_backs_off() {
    let mut h = scenario!()
        .concurrent()
        .mode(1, Mode::Error503 { retry_after: None })
        .line(USER)
        .config(
            "voIpProt.SIP.failoverOn503Response=\"0\"\n\
             voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        let backoff = h
            .wait_event("backoff", Duration::from_secs(5), |e| kind(e) == "backoff")
            .await;
        // Nothing else may happen for a while: no failover to SBC 2.
        h.sleep_ms(1000).await;
        let evs = h.events();
        let story = h.story();
        let failed = evs
            .iter()
            .find(|e| kind(e) == "registration_failed")
            .expect("registration_failed");
        assert_eq!(failed["status"], 503, "{story}");
        assert_eq!(h.sbc_of(failed), Some(1), "{story}");
        let wait = backoff["wait_ms"].as_u64().unwrap();
        assert!((5000..=10_000).contains(&wait), "wait {wait} ms\n{story}");
        assert_eq!(backoff["failures"], 0, "{story}");
        assert!(
            !evs.iter()
                .any(|e| matches!(kind(e), "failover" | "route_failed" | "registered")),
            "{story}"
        );
        assert!(h.registers(2, USER).is_empty(), "{story}");
        assert_eq!(h.registers(1, USER).len(), 1, "{story}");
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}

/// `failoverOn503Response=0` with `Retry-After: 3`: "the value specified
/// will be used before a new request dialog is attempted again": the
/// back-off is exactly 3 s, then a new registration (new Call-ID, since
/// `newCallOnUnRegister=1` by default) starts at the primary again.
#[test]
fn udp_503_without_failover_honours_retry_after() {
    let mut h = scenario!()
        .mode(
            1,
            Mode::Error503 {
                retry_after: Some(3),
            },
        )
        .line(USER)
        .config("voIpProt.SIP.failoverOn503Response=\"0\"\n")
        .start();
    h.run(async |h, fleet| {
        let backoff = h
            .wait_event("backoff", Duration::from_secs(5), |e| kind(e) == "backoff")
            .await;
        assert_eq!(backoff["wait_ms"], 3000, "{}", h.story());
        let retry = h
            .wait_event("REGISTER after the back-off", Duration::from_secs(5), |e| {
                kind(e) == "registering" && t_ms(e) > t_ms(&backoff)
            })
            .await;
        let story = h.story();
        assert_eq!(retry["purpose"], "initial", "{story}");
        assert_eq!(h.sbc_of(&retry), Some(1), "{story}");
        assert_near(
            "retry after Retry-After",
            t_ms(&retry) as i64 - t_ms(&backoff) as i64,
            3000,
            200,
            &story,
        );
        assert_ne!(retry["call_id"], backoff["call_id"], "{story}");
        let at1 = h
            .wait_registers(1, USER, Duration::from_secs(2), |s| s.len() >= 2)
            .await;
        assert_near("SBC 1 saw the retry", at1[1].t_ms - at1[0].t_ms, 3000, 250, &story);
        assert_ne!(at1[0].call_id, at1[1].call_id);
        assert!(h.registers(2, USER).is_empty(), "{story}");
        eprintln!(
            "measured: Retry-After 3 s, next REGISTER {} ms after the back-off began (SBC 1: {} ms)",
            t_ms(&retry) - t_ms(&backoff),
            at1[1].t_ms - at1[0].t_ms
        );
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}

/// Guide, "When Failover Is Not Triggered": a 403 is a registration loss,
/// not a failover. The line backs off for a wait in [W/2, W] (W =
/// `registerRetry.baseTimeOut` = 10 s), then starts again at the primary
/// with a new Call-ID; the next failure doubles W (RFC 5626 4.5). SBC 2
/// hears nothing.
#[test]
fn udp_403_backs_off_randomized_and_never_fails_over() {
    let mut h = scenario!()
        .mode(1, Mode::Reject)
        .line(USER)
        .config(
            "voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\n\
             voIpProt.server.1.registerRetry.maxTimeOut=\"120\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        let backoff = h
            .wait_event("backoff", Duration::from_secs(5), |e| kind(e) == "backoff")
            .await;
        let wait = backoff["wait_ms"].as_u64().unwrap();
        let story = h.story();
        assert!((5000..=10_000).contains(&wait), "wait {wait} ms\n{story}");
        assert_eq!(backoff["failures"], 0, "{story}");
        let failed = h
            .events()
            .into_iter()
            .find(|e| kind(e) == "registration_failed")
            .expect("registration_failed");
        assert_eq!(failed["status"], 403, "{story}");
        assert_eq!(h.sbc_of(&failed), Some(1), "{story}");
        let second = h
            .wait_event("the second back-off", Duration::from_millis(wait + 3000), |e| {
                kind(e) == "backoff" && e["failures"] == 1
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let retry = evs
            .iter()
            .find(|e| kind(e) == "registering" && t_ms(e) > t_ms(&backoff))
            .expect("REGISTER after the back-off");
        assert_eq!(h.sbc_of(retry), Some(1), "{story}");
        assert_eq!(retry["purpose"], "initial", "{story}");
        assert_near(
            "retry after the back-off",
            t_ms(retry) as i64 - t_ms(&backoff) as i64,
            wait as i64,
            200,
            &story,
        );
        assert_ne!(retry["call_id"], backoff["call_id"], "{story}");
        let wait2 = second["wait_ms"].as_u64().unwrap();
        assert!((10_000..=20_000).contains(&wait2), "second wait {wait2} ms\n{story}");
        assert!(
            !evs.iter().any(|e| matches!(kind(e), "failover" | "registered")),
            "{story}"
        );
        assert!(h.registers(2, USER).is_empty(), "{story}");
        assert!(h.registers(3, USER).is_empty(), "{story}");
        eprintln!(
            "measured: back-off {wait} ms (W=10 s), retry {} ms after it began, then {wait2} ms (W=20 s)",
            t_ms(retry) - t_ms(&backoff)
        );
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}

/// Guide, "UDP - Failover Timing Controls": "The final route is repeatedly
/// tried until the complete 32-second transaction period since the original
/// request to the primary SBC has elapsed." All three SBCs are silent
/// (sockets of the test): SBC 1 gets 3 sends (0, 0.5, 1.5 s), SBC 2 gets 3
/// from 3.5 s, SBC 3 from 7 s with RFC 3261 intervals 0.5, 1, 2, 4, 4 ... s
/// until 32 s; then the registration fails and the back-off begins, at 32 s
/// (design.md decision 5). About 33 s.
#[test]
fn udp_all_routes_silent_the_last_is_retried_until_32_s() {
    let mut h = scenario!()
        .concurrent()
        .line(USER)
        .config("voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\n")
        .start();
    let mut holes = Vec::new();
    for i in 1..=3 {
        h.lab.set_mode(i, Mode::Dead).unwrap();
        holes.push(BlackHole::bind(h.lab.sbc(i).addr(Transport::Udp)));
    }
    h.run(async |h, fleet| {
        let backoff = h
            .wait_event("backoff", Duration::from_secs(36), |e| kind(e) == "backoff")
            .await;
        let evs = h.events();
        let story = h.story();
        let t0 = t_ms(first(h, &evs, "registering", 1).expect("REGISTER to SBC 1")) as i64;
        let fails: Vec<(usize, i64)> = evs
            .iter()
            .filter(|e| kind(e) == "route_failed")
            .map(|e| (h.sbc_of(e).unwrap(), t_ms(e) as i64 - t0))
            .collect();
        assert_eq!(fails.len(), 3, "{story}");
        assert!(evs
            .iter()
            .filter(|e| kind(e) == "route_failed")
            .all(|e| e["reason"] == "timeout"));
        assert_eq!((fails[0].0, fails[1].0, fails[2].0), (1, 2, 3), "{story}");
        assert_near("SBC 1 failed", fails[0].1, 3500, 300, &story);
        assert_near("SBC 2 failed", fails[1].1, 7000, 400, &story);
        assert_near(
            "SBC 3 failed (32 s budget)",
            fails[2].1,
            32_000,
            400,
            &story,
        );
        let failed = evs
            .iter()
            .find(|e| kind(e) == "registration_failed")
            .expect("registration_failed");
        assert_eq!(failed["status"], Value::Null, "{story}");
        assert_near(
            "back-off begins",
            t_ms(&backoff) as i64 - t0,
            32_000,
            400,
            &story,
        );
        let wait = backoff["wait_ms"].as_u64().unwrap();
        assert!((5000..=10_000).contains(&wait), "{story}");
        let call_id = evs[0]["call_id"].as_str().unwrap().to_string();
        let sends: Vec<Vec<i64>> = holes
            .iter()
            .map(|hole| {
                let seen = hole.seen();
                assert!(seen.iter().all(|(_, c)| *c == call_id), "{seen:?}");
                seen.iter().map(|(at, _)| h.ms_of(*at) - t0).collect()
            })
            .collect();
        assert_eq!(sends[0].len(), 3, "{sends:?}");
        assert_eq!(sends[1].len(), 3, "{sends:?}");
        // SBC 3 from 7 s: 7.0, 7.5, 8.5, 10.5, 14.5, 18.5, 22.5, 26.5, 30.5.
        let expected = [
            7000, 7500, 8500, 10_500, 14_500, 18_500, 22_500, 26_500, 30_500,
        ];
        assert_eq!(sends[2].len(), expected.len(), "{sends:?}\n{story}");
        for (got, want) in sends[2].iter().zip(expected) {
            assert_near("send to SBC 3", *got, want, 400, &story);
        }
        for pair in sends[2].windows(2).skip(3) {
            assert_near("T2 interval", pair[1] - pair[0], 4000, 150, &story);
        }
        eprintln!(
            "measured (ms after the first REGISTER): SBC 1 sends {:?}, SBC 2 sends {:?}, \
             SBC 3 sends {:?}; route_failed {:?}; back-off at {} for {wait} ms",
            sends[0],
            sends[1],
            sends[2],
            fails,
            t_ms(&backoff) as i64 - t0
        );
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}

/// Guide: with `failoverOn503Response=1`, "A retry-after header in a 503
/// response is only applied when sending a request through the last failover
/// route". Every SBC answers 503 with Retry-After 4 s: the line walks SBC 1,
/// 2, 3 at once, and only SBC 3's Retry-After sets the back-off (4000 ms,
/// not a randomized wait); then the walk starts again at SBC 1.
#[test]
fn udp_503_everywhere_retry_after_of_the_last_route_sets_the_back_off() {
    let mut h = scenario!()
        .line(USER)
        .config("voIpProt.SIP.failoverOn503Response=\"1\"\n")
        .start();
    for i in 1..=3 {
        h.lab
            .set_mode(
                i,
                Mode::Error503 {
                    retry_after: Some(4),
                },
            )
            .unwrap();
    }
    h.run(async |h, fleet| {
        let backoff = h
            .wait_event("backoff", Duration::from_secs(5), |e| kind(e) == "backoff")
            .await;
        let retry = h
            .wait_event("the next walk", Duration::from_secs(6), |e| {
                kind(e) == "registering" && t_ms(e) > t_ms(&backoff)
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let t0 = t_ms(&evs[0]) as i64;
        let fails: Vec<usize> = evs
            .iter()
            .filter(|e| kind(e) == "route_failed" && t_ms(e) <= t_ms(&backoff))
            .map(|e| {
                assert_eq!(e["reason"], "503", "{story}");
                h.sbc_of(e).unwrap()
            })
            .collect();
        assert_eq!(fails, [1, 2, 3], "{story}");
        assert!(t_ms(&backoff) as i64 - t0 <= 200, "{story}");
        assert_eq!(backoff["wait_ms"], 4000, "{story}");
        assert_eq!(h.sbc_of(&retry), Some(1), "{story}");
        assert_near(
            "next walk after Retry-After",
            t_ms(&retry) as i64 - t_ms(&backoff) as i64,
            4000,
            200,
            &story,
        );
        for i in 1..=3 {
            assert!(!h.registers(i, USER).is_empty(), "SBC {i}\n{story}");
        }
        eprintln!(
            "measured: 503 walk over 3 SBCs in {} ms, back-off {} ms, next walk {} ms after it began",
            t_ms(&backoff) as i64 - t0,
            backoff["wait_ms"],
            t_ms(&retry) - t_ms(&backoff)
        );
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}

/// `newCallOnUnRegister=0`: the Call-ID survives a registration loss too
/// (design.md decision 6: a new Call-ID only after being unregistered, and
/// only with `newCallOnUnRegister=1`). A 503 without failover (Retry-After
/// 2 s) and its back-off later, SBC 1 sees the same Call-ID again and
/// registers it.
#[test]
fn udp_back_off_keeps_the_call_id_with_new_call_on_unregister_0() {
    let mut h = scenario!()
        .concurrent()
        .mode(
            1,
            Mode::Error503 {
                retry_after: Some(2),
            },
        )
        .line(USER)
        .config(
            "voIpProt.SIP.failoverOn503Response=\"0\"\n\
             voIpProt.SIP.newCallOnUnRegister=\"0\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        let backoff = h
            .wait_event("backoff", Duration::from_secs(5), |e| kind(e) == "backoff")
            .await;
        h.set_mode(1, Mode::Ok).await;
        let reg = h
            .wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        let story = h.story();
        assert!(t_ms(&reg) > t_ms(&backoff), "{story}");
        assert_eq!(reg["call_id"], backoff["call_id"], "{story}");
        let at1 = h.registers(1, USER);
        assert!(at1.len() >= 3, "{at1:#?}");
        assert!(at1.iter().all(|r| r.call_id == at1[0].call_id), "{at1:#?}");
        fleet.shutdown(Duration::from_secs(1)).await;
        h.finish();
    });
}
