//! End to end against the lab: what failover and failback do to calls and
//! subscriptions (the guide's "Failback", "Subscriptions and Failover" and
//! "Failover and Emergency Dialing for Shared (SCA) Lines").

mod e2e_support;

use std::time::Duration;

use actix::Addr;
use e2e_support::{assert_near, kind, scenario, t_ms, Harness, Scenario};
use serde_json::Value;
use sipfleet::actors::line::{Emergency, Hangup, Line, PlaceCall};
use sipfleet_lab::tools::sip_request;
use sipfleet_lab::{Mode, Transport};

fn of_call(ev: &Value, name: &str, call_id: &str) -> bool {
    kind(ev) == name && ev["call_id"] == call_id
}

/// Waits for the line to register on SBC 1, then places a call to
/// `target` and waits until it is established through SBC 1.
async fn call_through_sbc_1(h: &Harness, line: &Addr<Line>, target: String) -> String {
    h.wait_event("registered on SBC 1", Duration::from_secs(5), |e| {
        kind(e) == "registered" && h.sbc_of(e) == Some(1)
    })
    .await;
    let call_id = line
        .send(PlaceCall { target })
        .await
        .expect("line answers")
        .expect("call placed");
    h.wait_event("call established", Duration::from_secs(3), |e| {
        of_call(e, "call_established", &call_id) && h.sbc_of(e) == Some(1)
    })
    .await;
    call_id
}

/// A call placed on SBC 2 while the primary is back: the refreshes that
/// would fail back pass during the call; the line fails back as soon as
/// the call ends.
#[test]
fn a_call_holds_failback_past_the_timer_and_failback_follows_its_end() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line("1001")
        .config(
            "voIpProt.server.1.expires=\"20\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.failBack.mode=\"registration\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
        )
        .start();
    let target = format!("sip:9001@{}", h.lab.domain());
    let (call_id, hung_up) = h.run(async |h, fleet| {
        let line = &fleet.lines()[0];
        h.wait_event("registered on SBC 2", Duration::from_secs(5), |e| {
            kind(e) == "registered" && h.sbc_of(e) == Some(2)
        })
        .await;
        h.set_mode(1, Mode::Ok).await;
        let call_id = line
            .send(PlaceCall { target })
            .await
            .unwrap()
            .expect("call placed");
        let up = h
            .wait_event("call established", Duration::from_secs(3), |e| {
                of_call(e, "call_established", &call_id)
            })
            .await;
        assert_eq!(h.sbc_of(&up), Some(2), "the call goes via the registrar");
        // The refresh at ≈10 s would fail back; the call holds it.
        h.sleep_until_ms(13_000).await;
        let evs = h.events();
        assert!(
            !evs.iter().any(|e| kind(e) == "failback"),
            "no failback during the call\n{}",
            h.story()
        );
        assert!(
            evs.iter().any(|e| kind(e) == "registering"
                && e["purpose"] == "refresh"
                && h.sbc_of(e) == Some(2)),
            "the line refreshed on SBC 2 during the call\n{}",
            h.story()
        );
        assert!(!evs.iter().any(|e| of_call(e, "call_ended", &call_id)));
        let hung_up = h.now_ms();
        line.send(Hangup).await.unwrap().expect("hang up");
        h.wait_event("failback", Duration::from_secs(3), |e| {
            kind(e) == "failback" && h.sbc_of(e) == Some(1)
        })
        .await;
        h.wait_event("registered on SBC 1", Duration::from_secs(3), |e| {
            kind(e) == "registered" && h.sbc_of(e) == Some(1)
        })
        .await;
        h.wait_methods(2, &call_id, Duration::from_secs(3), |m| {
            m.iter().any(|x| x == "BYE")
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
        (call_id, hung_up)
    });
    h.finish_with_calls();
    let evs = h.events();
    let story = h.story();
    let ended = evs
        .iter()
        .find(|e| of_call(e, "call_ended", &call_id))
        .expect("call ended");
    let failback = evs
        .iter()
        .find(|e| kind(e) == "failback")
        .expect("failback");
    assert!(t_ms(failback) >= t_ms(ended), "{story}");
    assert_near(
        "failback after the call ended",
        t_ms(failback) as i64,
        hung_up as i64,
        500,
        &story,
    );
    assert_eq!(
        h.methods_for(2, &call_id),
        ["INVITE", "ACK", "BYE"],
        "{story}"
    );
}

/// Enhanced failover: a real call on line 2 holds failback of both lines
/// (through the fleet's coordinator); both fail back together when it ends.
#[test]
fn with_enhanced_failover_a_call_on_one_line_holds_both_until_it_ends() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line("1001")
        .line("1002")
        .config(
            "voIpProt.server.1.expires=\"20\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.failBack.mode=\"registration\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n\
             voIpProt.SIP.outboundProxy.failOver.enhanced.enable=\"1\"\n",
        )
        .start();
    let target = format!("sip:9002@{}", h.lab.domain());
    let hung_up = h.run(async |h, fleet| {
        for line in [1, 2] {
            h.wait_event("registered on SBC 2", Duration::from_secs(5), |e| {
                kind(e) == "registered" && e["line"] == line && h.sbc_of(e) == Some(2)
            })
            .await;
        }
        h.set_mode(1, Mode::Ok).await;
        let line2 = &fleet.lines()[1];
        let call_id = line2
            .send(PlaceCall { target })
            .await
            .unwrap()
            .expect("call placed");
        h.wait_event("call established", Duration::from_secs(3), |e| {
            of_call(e, "call_established", &call_id)
        })
        .await;
        h.sleep_until_ms(13_000).await;
        assert!(
            !h.events().iter().any(|e| kind(e) == "failback"),
            "no line fails back while line 2 is in a call\n{}",
            h.story()
        );
        let hung_up = h.now_ms();
        line2.send(Hangup).await.unwrap().expect("hang up");
        for line in [1, 2] {
            h.wait_event("registered on SBC 1", Duration::from_secs(3), |e| {
                kind(e) == "registered" && e["line"] == line && h.sbc_of(e) == Some(1)
            })
            .await;
        }
        fleet.shutdown(Duration::from_secs(3)).await;
        hung_up
    });
    h.finish_with_calls();
    let story = h.story();
    for line in [1, 2] {
        let fb = h
            .events()
            .into_iter()
            .find(|e| kind(e) == "failback" && e["line"] == line)
            .expect("failback");
        assert_near(
            "failback when the call ended",
            t_ms(&fb) as i64,
            hung_up as i64,
            500,
            &story,
        );
    }
}

/// `onlySignalWithRegistered=1`: the call was set up through SBC 1; once
/// the registration moved to SBC 2, hanging up would need to signal to an
/// SBC without the registration, so the call ends without a BYE.
#[test]
fn only_signal_with_registered_ends_a_call_whose_sbc_lost_the_registration() {
    let mut h = scenario!()
        .line("1001")
        .config(
            "voIpProt.server.1.expires=\"20\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.onlySignalWithRegistered=\"1\"\n\
             voIpProt.server.1.failOver.failBack.mode=\"duration\"\n",
        )
        .start();
    let target = format!("sip:9003@{}", h.lab.domain());
    let call_id = h.run(async |h, fleet| {
        let line = &fleet.lines()[0];
        let call_id = call_through_sbc_1(h, line, target).await;
        // SBC 1 reboots; the refresh at ≈10 s fails over to SBC 2.
        h.set_mode(1, Mode::Dead).await;
        h.wait_event("registered on SBC 2", Duration::from_secs(15), |e| {
            kind(e) == "registered" && h.sbc_of(e) == Some(2)
        })
        .await;
        h.set_mode(1, Mode::Ok).await;
        line.send(Hangup).await.unwrap().expect("hang up");
        let ended = h
            .wait_event("call ended", Duration::from_secs(2), |e| {
                of_call(e, "call_ended", &call_id)
            })
            .await;
        assert_eq!(ended["reason"], "registrar_changed", "{}", h.story());
        h.sleep_ms(300).await;
        fleet.shutdown(Duration::from_secs(3)).await;
        call_id
    });
    h.finish_with_calls();
    let story = h.story();
    for sbc in [1, 2] {
        assert!(
            !h.methods_for(sbc, &call_id).iter().any(|m| m == "BYE"),
            "no BYE to any SBC\n{story}"
        );
    }
}

/// The guide's `reRegisterOn=1`: a call placed while its SBC is dead (it
/// answers with ICMP) waits for the line to register on SBC 2, then goes
/// there with the same Call-ID and is answered, instead of ending.
#[test]
fn a_call_placed_as_its_sbc_dies_goes_on_via_the_sbc_the_line_registers_on() {
    let mut h = scenario!()
        .line("1001")
        .config(
            "voIpProt.server.1.expires=\"300\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.onlySignalWithRegistered=\"1\"\n",
        )
        .start();
    let target = format!("sip:9001@{}", h.lab.domain());
    let call_id = h.run(async |h, fleet| {
        let line = &fleet.lines()[0];
        h.wait_event("registered on SBC 1", Duration::from_secs(5), |e| {
            kind(e) == "registered" && h.sbc_of(e) == Some(1)
        })
        .await;
        h.set_mode(1, Mode::Dead).await;
        let call_id = line
            .send(PlaceCall { target })
            .await
            .expect("line answers")
            .expect("call placed");
        let up = h
            .wait_event("call established", Duration::from_secs(5), |e| {
                of_call(e, "call_established", &call_id)
            })
            .await;
        assert_eq!(h.sbc_of(&up), Some(2), "{}", h.story());
        let evs = h.events();
        assert!(
            !evs.iter().any(|e| of_call(e, "call_ended", &call_id)),
            "{}",
            h.story()
        );
        line.send(Hangup).await.unwrap().expect("hang up");
        h.wait_event("call ended", Duration::from_secs(3), |e| {
            of_call(e, "call_ended", &call_id)
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
        call_id
    });
    h.finish_with_calls();
    let story = h.story();
    assert!(
        h.methods_for(2, &call_id).iter().any(|m| m == "INVITE"),
        "the INVITE reached SBC 2 with the first Call-ID\n{story}"
    );
    assert!(
        h.methods_for(2, &call_id).iter().any(|m| m == "BYE"),
        "and the call was hung up there\n{story}"
    );
}

/// MWI, SCA and BLF subscriptions live on the SBC that holds the
/// registration: when SBC 1 dies and the REGISTER is accepted by SBC 2, all are
/// invalidated and re-created on SBC 2 at once.
#[test]
fn subscriptions_are_recreated_on_the_new_sbc_after_failover() {
    let mut h = scenario!()
        .line("1001")
        .config(
            "voIpProt.server.1.expires=\"20\"\n\
             reg.1.subscribe.mwi=\"1\"\n\
             reg.1.subscribe.sca=\"1\"\n\
             reg.1.subscribe.blf=\"1002\"\n",
        )
        .start();
    h.run(async |h, fleet| {
        for package in ["message-summary", "call-info", "dialog"] {
            h.wait_event("subscribed on SBC 1", Duration::from_secs(5), |e| {
                kind(e) == "subscribed" && e["package"] == package && h.sbc_of(e) == Some(1)
            })
            .await;
            h.wait_event("first NOTIFY", Duration::from_secs(5), |e| {
                kind(e) == "subscription_notify"
                    && e["package"] == package
                    && h.sbc_of(e) == Some(1)
            })
            .await;
        }
        h.set_mode(1, Mode::Dead).await;
        // The refresh at ≈10 s meets a dead SBC 1 and fails over.
        let registered = h
            .wait_event("registered on SBC 2", Duration::from_secs(15), |e| {
                kind(e) == "registered" && h.sbc_of(e) == Some(2)
            })
            .await;
        for package in ["message-summary", "call-info", "dialog"] {
            let gone = h
                .wait_event("invalidated", Duration::from_secs(2), |e| {
                    kind(e) == "subscription_invalidated" && e["package"] == package
                })
                .await;
            assert_eq!(gone["reason"], "new_registrar");
            assert_eq!(h.sbc_of(&gone), Some(1));
            let again = h
                .wait_event("subscribed on SBC 2", Duration::from_secs(3), |e| {
                    kind(e) == "subscribed" && e["package"] == package && h.sbc_of(e) == Some(2)
                })
                .await;
            assert!(
                t_ms(&again) - t_ms(&registered) < 500,
                "re-created at once\n{}",
                h.story()
            );
        }
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish_with_calls();
}

/// With SBC 1 silent, the emergency line seize (3 retries: 0, 0.5, 1.5,
/// 3.5 s, given up at 7.5 s) fails and the INVITE is sent anyway; it then
/// fails over to SBC 2 with the same Call-ID and is answered there.
#[test]
fn the_emergency_invite_follows_a_failed_line_seize_within_32_s() {
    let mut h = scenario!()
        .line("1001")
        .config("voIpProt.SIP.lineSeize.retries=\"3\"\n")
        .start();
    let target = format!("sip:9911@{}", h.lab.domain());
    let (call_id, asked) = h.run(async |h, fleet| {
        let line = &fleet.lines()[0];
        h.wait_event("registered", Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
        h.set_mode(1, Mode::Silent).await;
        let asked = h.now_ms();
        let call_id = line
            .send(Emergency { target })
            .await
            .unwrap()
            .expect("emergency accepted");
        let failed = h
            .wait_event("line seize failed", Duration::from_secs(32), |e| {
                kind(e) == "line_seize_failed"
            })
            .await;
        assert_eq!(failed["outcome"], "timeout");
        let started = h
            .wait_event("emergency INVITE", Duration::from_secs(1), |e| {
                of_call(e, "call_started", &call_id)
            })
            .await;
        assert!(t_ms(&started) >= t_ms(&failed));
        h.wait_event("answered on SBC 2", Duration::from_secs(10), |e| {
            of_call(e, "call_established", &call_id) && h.sbc_of(e) == Some(2)
        })
        .await;
        h.set_mode(1, Mode::Ok).await;
        line.send(Hangup).await.unwrap().expect("hang up");
        h.wait_event("ended", Duration::from_secs(3), |e| {
            of_call(e, "call_ended", &call_id)
        })
        .await;
        h.wait_methods(1, &call_id, Duration::from_secs(3), |m| {
            m.iter().any(|x| x == "INVITE")
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
        (call_id, asked)
    });
    h.finish_with_calls();
    let evs = h.events();
    let story = h.story();
    let failed = evs
        .iter()
        .find(|e| kind(e) == "line_seize_failed")
        .expect("seize failed");
    assert_near(
        "seize given up",
        t_ms(failed) as i64,
        asked as i64 + 7_500,
        400,
        &story,
    );
    let started = evs
        .iter()
        .find(|e| of_call(e, "call_started", &call_id))
        .expect("started");
    assert!(
        t_ms(started) - t_ms(failed) < 50,
        "the INVITE goes as soon as the seize fails\n{story}"
    );
    assert!(
        t_ms(started) - asked < 32_000,
        "within 32 s of the request\n{story}"
    );
    // The seize: the first SUBSCRIBE and 3 retransmissions, all to SBC 1.
    let seize_id = failed["call_id"].as_str().unwrap_or_default();
    let subscribes = h
        .methods_for(1, seize_id)
        .iter()
        .filter(|m| *m == "SUBSCRIBE")
        .count();
    assert_eq!(subscribes, 4, "{story}");
    // Same Call-ID on both SBCs: the guide's Call-ID rule on failover.
    // (SBC 1 answers its queued INVITEs once it runs again: those late 2xx
    // get ACK and BYE too, so only the first requests are fixed.)
    assert_eq!(h.methods_for(1, &call_id)[0], "INVITE", "{story}");
    let on_2 = h.methods_for(2, &call_id);
    assert_eq!(on_2[..2], ["INVITE", "ACK"], "{story}");
    assert!(on_2.iter().any(|m| m == "BYE"), "{story}");
}

/// SBC 1 rejects every REGISTER (403): the line has no binding and backs
/// off. An emergency call still goes: seize on the primary (refused 489 by
/// the lab), then the INVITE, answered.
#[test]
fn an_emergency_call_goes_out_even_when_the_registration_is_rejected() {
    let mut h = scenario!().mode(1, Mode::Reject).line("1001").start();
    let target = format!("sip:9911@{}", h.lab.domain());
    h.run(async |h, fleet| {
        let line = &fleet.lines()[0];
        h.wait_event("registration rejected", Duration::from_secs(5), |e| {
            kind(e) == "registration_failed" && e["status"] == 403
        })
        .await;
        let placed = line
            .send(PlaceCall {
                target: target.clone(),
            })
            .await
            .unwrap();
        assert!(
            matches!(
                placed,
                Err(sipfleet::actors::line::CallCommandError::NotRegistered)
            ),
            "an ordinary call needs the registration: {placed:?}"
        );
        let call_id = line
            .send(Emergency { target })
            .await
            .unwrap()
            .expect("emergency accepted");
        let seize = h
            .wait_event("line seize refused", Duration::from_secs(3), |e| {
                kind(e) == "line_seize_failed"
            })
            .await;
        assert_eq!(seize["outcome"], "refused");
        assert_eq!(h.sbc_of(&seize), Some(1));
        h.wait_event("emergency call established", Duration::from_secs(3), |e| {
            of_call(e, "call_established", &call_id) && h.sbc_of(e) == Some(1)
        })
        .await;
        line.send(Hangup).await.unwrap().expect("hang up");
        h.wait_event("ended", Duration::from_secs(3), |e| {
            of_call(e, "call_ended", &call_id)
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish_with_calls();
}

/// What line 1 made of an INVITE that SBC 1 delivered after the line's
/// registration had moved to SBC 2: the line's events for that Call-ID.
///
/// The line registers on SBC 1 (expires 20 s) and calls the SBC's callee,
/// so the flow to SBC 1 stays in use. SBC 1 goes silent: the refresh at
/// 10 s times out (3.5 s) and the line fails over to SBC 2. SBC 1 comes
/// back, its binding of the line still valid, and a caller on the lab's
/// client address sends it an INVITE for the line, which SBC 1 relays on
/// that flow.
fn invite_via_the_old_sbc(
    scenario: Scenario,
    only_signal_with_registered: bool,
) -> (Vec<Value>, String) {
    let mut h = scenario
        .line("1001")
        .config(format!(
            "voIpProt.server.1.expires=\"20\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.onlySignalWithRegistered=\"{}\"\n\
             voIpProt.server.1.failOver.failBack.mode=\"duration\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
            u8::from(only_signal_with_registered)
        ))
        .start();
    let target = format!("sip:9003@{}", h.lab.domain());
    let domain = h.lab.domain().to_string();
    let sbc1 = h.lab.sbc(1).addr(Transport::Udp);
    let client_ip = h.lab.client_ip();
    let call_id = format!("old-sbc-{}@lab-caller", std::process::id());
    let events = h.run(async |h, fleet| {
        let line = &fleet.lines()[0];
        call_through_sbc_1(h, line, target).await;
        h.set_mode(1, Mode::Silent).await;
        h.wait_event("registered on SBC 2", Duration::from_secs(16), |e| {
            kind(e) == "registered" && h.sbc_of(e) == Some(2)
        })
        .await;
        h.set_mode(1, Mode::Ok).await;
        let id = call_id.clone();
        let outcome = h
            .with_lab(move |_| {
                sip_request(
                    Transport::Udp,
                    client_ip.into(),
                    sbc1,
                    |local| invite_for_1001(local, &domain, &id),
                    Duration::from_secs(2),
                )
            })
            .await
            .expect("INVITE sent");
        eprintln!("the caller's INVITE via SBC 1: {outcome:?}");
        h.sleep_ms(1000).await;
        let on_line = h
            .events()
            .into_iter()
            .filter(|e| e["call_id"] == call_id.as_str())
            .collect();
        fleet.shutdown(Duration::from_secs(3)).await;
        on_line
    });
    let story = h.story();
    let delivered = h.methods_for(1, &call_id);
    assert_eq!(delivered, ["INVITE"], "SBC 1 took the INVITE\n{story}");
    (events, story)
}

/// An INVITE from the lab's caller for line 1001, with an SDP offer.
fn invite_for_1001(local: std::net::SocketAddr, domain: &str, call_id: &str) -> String {
    let sdp = format!(
        "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = local.ip()
    );
    format!(
        "INVITE sip:1001@{domain} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-old-sbc-{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1500@{domain}>;tag=caller\r\n\
         To: <sip:1001@{domain}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:1500@{local}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        std::process::id(),
        sdp.len()
    )
}

/// Guide, `onlySignalWithRegistered=1`: "No signaling is accepted from ...
/// an SBC that doesn't hold the currently active registration". SBC 1
/// relays the INVITE on the flow the line still keeps for its call, and the
/// line ignores it: no call starts, nothing is answered.
#[test]
fn only_signal_with_registered_ignores_an_invite_from_the_sbc_without_the_registration() {
    let (events, story) = invite_via_the_old_sbc(scenario!(), true);
    assert!(
        events.is_empty(),
        "the INVITE was ignored: {events:?}\n{story}"
    );
}

/// The control: with `onlySignalWithRegistered=0` the same INVITE over the
/// same flow starts an incoming call, so the test above sees a real
/// delivery being refused, not an INVITE that never arrived.
#[test]
fn without_only_signal_with_registered_the_old_sbc_s_invite_rings() {
    let (events, story) = invite_via_the_old_sbc(scenario!(), false);
    let started = events.iter().find(|e| kind(e) == "call_started");
    let started = started.unwrap_or_else(|| panic!("an incoming call\n{story}"));
    assert_eq!(started["direction"], "incoming", "{story}");
    assert_eq!(started["route"]["address"], events[0]["route"]["address"]);
}
