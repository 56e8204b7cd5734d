//! End to end over TCP and TLS against the real lab: a dead primary refuses
//! the connection (immediate failover), `tcpFastFailover` bounds the wait on
//! a silent primary, a line registers over TLS with the lab's CA, a stream
//! dropped by the SBC is a registration loss, not a failover (guide, "When
//! Failover Is Not Triggered"), and so is a TLS connection whose keep-alive
//! pings go unanswered.

mod e2e_support;

use std::time::Duration;

use e2e_support::{assert_near, kind, scenario, t_ms, Harness};
use serde_json::Value;
use sipfleet_lab::{Mode, Transport};

const USER: &str = "1002";

fn first<'a>(h: &Harness, evs: &'a [Value], name: &str, sbc: usize) -> Option<&'a Value> {
    evs.iter()
        .find(|e| kind(e) == name && h.sbc_of(e) == Some(sbc))
}

/// A dead primary over a stream transport: the connect is refused (RST), a
/// failover trigger like ICMP; the line registers on SBC 2 over the same
/// transport within a moment. Returns (first REGISTER, failover, registered).
async fn refused_then_failover(h: &Harness, transport: &str) -> (u64, u64, Value) {
    let reg = h
        .wait_event("registered", Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
    let evs = h.events();
    let story = h.story();
    let t0 = t_ms(first(h, &evs, "registering", 1).expect("REGISTER to SBC 1"));
    let failed = first(h, &evs, "route_failed", 1).expect("route_failed on SBC 1");
    assert_eq!(failed["reason"], "refused", "{story}");
    assert_eq!(failed["route"]["transport"], transport, "{story}");
    let failover = first(h, &evs, "failover", 2).expect("failover to SBC 2");
    assert!(t_ms(failover) - t0 <= 100, "{story}");
    assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
    assert_eq!(reg["route"]["transport"], transport, "{story}");
    assert!(t_ms(&reg) - t0 <= 1000, "{story}");
    let call_id = evs[0]["call_id"].as_str().unwrap();
    assert!(evs.iter().all(|e| e["call_id"] == call_id), "{story}");
    (t0, t_ms(failover), reg)
}

/// Waits (at most `within`) for the registration on SBC 1 to be lost for
/// `reason` (a loss, not a failover), then for the back-off that follows
/// within 1 s; returns both events.
async fn loss_then_backoff(h: &Harness, reason: &str, within: Duration) -> (Value, Value) {
    let lost = h
        .wait_event(reason, within, |e| {
            kind(e) == "route_failed" && e["reason"] == reason
        })
        .await;
    let backoff = h
        .wait_event("backoff", Duration::from_secs(1), |e| kind(e) == "backoff")
        .await;
    assert_eq!(h.sbc_of(&lost), Some(1), "{}", h.story());
    (lost, backoff)
}
#[test]
fn tcp_dead_primary_is_refused_and_fails_over_at_once() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .transport("TCPOnly")
        .start();
    h.run(async |h, fleet| {
        let (t0, failover, reg) = refused_then_failover(h, "tcp").await;
        let at2 = h.registers(2, USER);
        assert!(!at2.is_empty(), "{}", h.story());
        assert!(at2.iter().all(|r| r.transport == Transport::Tcp), "{at2:#?}");
        assert!(h.registers(1, USER).is_empty());
        eprintln!(
            "measured (TCP): refused -> failover {} ms, registered on SBC 2 {} ms after the first REGISTER",
            failover - t0,
            t_ms(&reg) - t0
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Guide, "TCP/TLS Failover Timing Controls", example: `tcpFastFailover=1`,
/// `tcpFastFailover.timeout=2000`: a primary that accepts the connection but
/// never answers is failed 2 s after the request, instead of Timer F's 32 s.
#[test]
fn tcp_fast_failover_leaves_a_silent_primary_after_2_s() {
    let mut h = scenario!()
        .mode(1, Mode::Silent)
        .line(USER)
        .transport("TCPOnly")
        .config(
            "voIpProt.SIP.tcpFastFailover=\"1\"\n\
             voIpProt.SIP.tcpFastFailover.timeout=\"2000\"\n\
             voIpProt.server.1.retryTimeOut=\"0\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
        )
        .start();
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
        assert_eq!(failed["route"]["transport"], "tcp", "{story}");
        assert_near("route_failed", t_ms(failed) as i64 - t0, 2000, 300, &story);
        assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
        assert_eq!(reg["route"]["transport"], "tcp", "{story}");
        assert!(t_ms(&reg) as i64 - t0 < 2500, "{story}");
        eprintln!(
            "measured (TCP fast failover 2000): route_failed {} ms, registered on SBC 2 {} ms after the first REGISTER",
            t_ms(failed) as i64 - t0,
            t_ms(&reg) as i64 - t0
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.set_mode(1, Mode::Ok).await;
        h.finish();
    });
}

/// TLS with the lab's CA: a dead primary (connect refused) fails over, and
/// the line registers on SBC 2 over TLS (the SBC saw TLS).
#[test]
fn tls_dead_primary_fails_over_and_registers_over_tls() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .transport("TLS")
        .start();
    h.run(async |h, fleet| {
        let (t0, failover, reg) = refused_then_failover(h, "tls").await;
        assert_eq!(reg["route"]["address"], h.lab.sbc(2).addr(Transport::Tls).to_string());
        let at2 = h.registers(2, USER);
        assert!(!at2.is_empty(), "{}", h.story());
        assert!(at2.iter().all(|r| r.transport == Transport::Tls), "{at2:#?}");
        eprintln!(
            "measured (TLS): refused -> failover {} ms, registered on SBC 2 {} ms after the first REGISTER",
            failover - t0,
            t_ms(&reg) - t0
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        let at2 = h
            .wait_registers(2, USER, Duration::from_secs(2), |s| {
                s.iter().any(|r| r.expires == Some(0))
            })
            .await;
        assert!(h.lab.sbc(2).contacts(USER).unwrap().is_empty(), "{at2:#?}");
        h.finish();
    });
}

/// Registered on the primary over TLS; the primary dies, which closes the
/// stream. Guide: "TCP stream drop from the far end (either a FIN or an
/// RST)" does not trigger failover but is a registration loss: the line
/// reports `flow_lost`, backs off for [W/2, W] (W = 10 s), then starts
/// again at the top (SBC 1 refuses: failover) and registers on SBC 2.
#[test]
fn tls_stream_drop_is_a_registration_loss_then_a_new_walk() {
    let mut h = scenario!()
        .line(USER)
        .transport("TLS")
        .config(
            "voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        let on1 = h.first_registration_on(1).await;
        assert_eq!(on1["route"]["transport"], "tls");
        assert_eq!(on1["primary"], true);
        let at1 = h.registers(1, USER);
        assert!(at1.iter().all(|r| r.transport == Transport::Tls), "{at1:#?}");
        let killed_at = h.now_ms();
        h.set_mode(1, Mode::Dead).await;
        let (lost, backoff) = loss_then_backoff(h, "flow_lost", Duration::from_secs(3)).await;
        let story = h.story();
        assert!(t_ms(&lost) - killed_at < 1500, "{story}");
        let wait = backoff["wait_ms"].as_u64().unwrap();
        assert!((5000..=10_000).contains(&wait), "wait {wait}\n{story}");
        assert!(
            !h.events()
                .iter()
                .any(|e| kind(e) == "failover" && t_ms(e) < t_ms(&backoff) + wait),
            "no failover before the back-off ends\n{story}"
        );
        let on2 = h
            .wait_event("registered on SBC 2", Duration::from_millis(wait + 3000), |e| {
                kind(e) == "registered" && h.sbc_of(e) == Some(2)
            })
            .await;
        let story = h.story();
        let retry = h
            .events()
            .into_iter()
            .find(|e| kind(e) == "registering" && t_ms(e) > t_ms(&backoff))
            .unwrap();
        assert_eq!(h.sbc_of(&retry), Some(1), "the new walk starts at the top\n{story}");
        assert_near(
            "new walk after the back-off",
            t_ms(&retry) as i64 - t_ms(&backoff) as i64,
            wait as i64,
            200,
            &story,
        );
        assert_eq!(on2["route"]["transport"], "tls", "{story}");
        eprintln!(
            "measured (TLS): flow_lost {} ms after the kill, back-off {wait} ms, new walk after {} ms, on SBC 2 {} ms after it",
            t_ms(&lost) - killed_at,
            t_ms(&retry) - t_ms(&backoff),
            t_ms(&on2) - t_ms(&retry)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Guide, TLS keep-alive (`tcpIpApp.keepalive.tcp.sip.tls.enable`): after
/// `idleTransmitInterval` without traffic a CRLF ping goes out, repeated
/// every `noResponseTransmitInterval` until answered; after four unanswered
/// pings the connection is lost. The primary goes silent (SIGSTOP: the TCP
/// connection stays up, nothing answers) right after the line registers, so
/// the loss comes idle + 4 x no-response = 10 + 4 x 5 = 30 s after the 200
/// OK, as a registration loss (back-off in [W/2, W]), not a failover.
#[test]
fn unanswered_tls_keepalives_lose_the_registration_after_four_pings() {
    let mut h = scenario!()
        .line(USER)
        .transport("TLS")
        .config(
            "tcpIpApp.keepalive.tcp.sip.tls.enable=\"1\"\n\
             tcpIpApp.keepalive.tcp.idleTransmitInterval=\"10\"\n\
             tcpIpApp.keepalive.tcp.noResponseTransmitInterval=\"5\"\n\
             voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        let on1 = h.first_registration_on(1).await;
        assert_eq!(on1["route"]["transport"], "tls");
        h.set_mode(1, Mode::Silent).await;
        let (lost, backoff) =
            loss_then_backoff(h, "keepalive_lost", Duration::from_secs(40)).await;
        let story = h.story();
        assert_near(
            "keep-alive loss after the 200 OK",
            t_ms(&lost) as i64 - t_ms(&on1) as i64,
            30_000,
            1000,
            &story,
        );
        let wait = backoff["wait_ms"].as_u64().unwrap();
        assert!((5000..=10_000).contains(&wait), "wait {wait}\n{story}");
        assert!(
            !h.events()
                .iter()
                .any(|e| kind(e) == "failover" && t_ms(e) > t_ms(&on1)),
            "a keep-alive loss is not a failover trigger\n{story}"
        );
        eprintln!(
            "measured (TLS keep-alive): lost {} ms after the 200 OK (expected 30000), back-off {wait} ms",
            t_ms(&lost) - t_ms(&on1)
        );
        h.set_mode(1, Mode::Ok).await;
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Three lines share one TCP connection to SBC 1 (flows are shared per
/// route). SBC 1 dies: the stream drop reaches every line, each reports
/// `flow_lost` and backs off on its own randomized wait in [W/2, W]
/// (W = 10 s), then registers on SBC 2 at the end of its own wait.
#[test]
fn tcp_stream_drop_reaches_every_line_of_the_shared_connection() {
    let mut h = scenario!()
        .line("1051")
        .line("1052")
        .line("1053")
        .transport("TCPOnly")
        .config(
            "voIpProt.server.1.registerRetry.baseTimeOut=\"10\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        for line in 1..=3 {
            let reg = h
                .wait_event("registered", Duration::from_secs(5), |e| {
                    kind(e) == "registered" && e["line"] == line
                })
                .await;
            assert_eq!(h.sbc_of(&reg), Some(1), "{}", h.story());
        }
        // One connection: every REGISTER reached SBC 1 from one source.
        let sources: std::collections::BTreeSet<_> = h
            .lab
            .received(1)
            .unwrap()
            .into_iter()
            .filter(|r| r.method == "REGISTER")
            .map(|r| r.source)
            .collect();
        assert_eq!(sources.len(), 1, "{sources:?}");
        let killed_at = h.now_ms();
        h.set_mode(1, Mode::Dead).await;
        let mut lines = Vec::new();
        for line in 1..=3 {
            let backoff = h
                .wait_event("backoff", Duration::from_secs(3), |e| {
                    kind(e) == "backoff" && e["line"] == line
                })
                .await;
            let on2 = h
                .wait_event("registered on SBC 2", Duration::from_secs(13), |e| {
                    kind(e) == "registered" && e["line"] == line && h.sbc_of(e) == Some(2)
                })
                .await;
            lines.push((backoff, on2));
        }
        let evs = h.events();
        let story = h.story();
        for (line, (backoff, on2)) in (1..=3).zip(&lines) {
            let lost = evs
                .iter()
                .find(|e| {
                    kind(e) == "route_failed" && e["line"] == line && e["reason"] == "flow_lost"
                })
                .expect("flow_lost");
            assert!(t_ms(lost) - killed_at < 1500, "line {line}\n{story}");
            let wait = backoff["wait_ms"].as_u64().unwrap();
            assert!((5000..=10_000).contains(&wait), "line {line}\n{story}");
            assert_near(
                "registered on SBC 2 at the end of the line's own back-off",
                t_ms(on2) as i64 - t_ms(backoff) as i64,
                wait as i64,
                300,
                &story,
            );
        }
        eprintln!(
            "measured: back-offs {:?} ms; lines on SBC 2 after {:?} ms",
            lines
                .iter()
                .map(|(b, _)| b["wait_ms"].clone())
                .collect::<Vec<_>>(),
            lines
                .iter()
                .map(|(b, o)| t_ms(o) - t_ms(b))
                .collect::<Vec<_>>()
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}
