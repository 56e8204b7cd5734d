//! End to end against the lab: failback and calls (the guide's "Failback":
//! "A SIP registration will not attempt failback while a call is active on
//! that registration ... until the call completes, at which point, failback
//! will immediately occur. If Enhanced Failover is enabled, then failback will
//! not occur while any SIP registration has an active call. Once all calls
//! are cleared, all lines will failback to the primary SBC.")
//!
//! Two lines start with SBC 1 dead and register on SBC 2. Line 2 reports a
//! call (`CallsActive`, what the call layer or an embedding application
//! sends). SBC 1 comes back; failback is due at each refresh
//! (`failBack.mode=registration`, expires 20 s: refresh at 10 s).

mod e2e_support;

use std::time::Duration;

use e2e_support::{kind, scenario, t_ms, Harness, Scenario, Started};
use serde_json::Value;
use sipfleet::actors::line::CallsActive;
use sipfleet_lab::Mode;

const SETTINGS: &str = "voIpProt.server.1.expires=\"20\"\n\
    voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
    voIpProt.server.1.failOver.failBack.mode=\"registration\"\n\
    voIpProt.SIP.authOptimizedInFailover=\"1\"\n";

fn failbacks(h: &Harness, evs: &[Value]) -> Vec<(u64, u64)> {
    evs.iter()
        .filter(|e| kind(e) == "failback" && h.sbc_of(e) == Some(1))
        .map(|e| (e["line"].as_u64().unwrap_or(0), t_ms(e)))
        .collect()
}

/// Runs the story above; returns the failbacks (line, t_ms) and when the
/// call ended.
fn call_holds_failback(scenario: Scenario, enhanced: bool) -> (Started, Vec<(u64, u64)>, u64) {
    let enhanced_line = if enhanced {
        "voIpProt.SIP.outboundProxy.failOver.enhanced.enable=\"1\"\n"
    } else {
        ""
    };
    let mut h = scenario
        .concurrent()
        .mode(1, Mode::Dead)
        .line("1001")
        .line("1002")
        .config(format!("{SETTINGS}{enhanced_line}"))
        .start();
    let (fb, call_end) = h.run(async |h, fleet| {
        for line in [1, 2] {
            h.wait_event("registered on SBC 2", Duration::from_secs(5), |e| {
                kind(e) == "registered" && e["line"] == line && h.sbc_of(e) == Some(2)
            })
            .await;
        }
        fleet.lines()[1].send(CallsActive(true)).await.unwrap();
        h.set_mode(1, Mode::Ok).await;
        // Both refreshes (≈10 s) pass while the call is up.
        h.sleep_until_ms(13_000).await;
        let held = failbacks(h, &h.events());
        let call_end = h.now_ms();
        fleet.lines()[1].send(CallsActive(false)).await.unwrap();
        h.sleep_ms(2_000).await;
        fleet.shutdown(Duration::from_secs(3)).await;
        (held, call_end)
    });
    h.finish();
    if enhanced {
        assert_eq!(fb, [], "no failback while a call is up\n{}", h.story());
    }
    let all = failbacks(&h, &h.events());
    (h, all, call_end)
}

#[test]
fn a_call_holds_failback_of_its_own_line_only() {
    let (h, fb, call_end) = call_holds_failback(scenario!(), false);
    let story = h.story();
    let line1 = fb.iter().find(|(l, _)| *l == 1).expect("line 1 fails back");
    let line2 = fb.iter().find(|(l, _)| *l == 2).expect("line 2 fails back");
    assert!(
        line1.1 < call_end,
        "line 1 has no call: it fails back at its refresh\n{story}"
    );
    assert!(
        line2.1 >= call_end && line2.1 - call_end < 500,
        "line 2 fails back as soon as its call ends ({} ms, call ended {call_end} ms)\n{story}",
        line2.1
    );
    // While held, line 2 refreshed on SBC 2.
    let evs = h.events();
    assert!(
        evs.iter().any(|e| kind(e) == "registering"
            && e["line"] == 2
            && e["purpose"] == "refresh"
            && h.sbc_of(e) == Some(2)
            && t_ms(e) < call_end),
        "{story}"
    );
}

#[test]
fn enhanced_failover_holds_every_line_then_fails_back_as_a_group() {
    let (h, fb, call_end) = call_holds_failback(scenario!(), true);
    let story = h.story();
    let line1 = fb.iter().find(|(l, _)| *l == 1).expect("line 1 fails back");
    let line2 = fb.iter().find(|(l, _)| *l == 2).expect("line 2 fails back");
    for (line, t) in [line1, line2] {
        assert!(
            *t >= call_end && *t - call_end < 500,
            "line {line} fails back when the last call ends ({t} ms, call ended {call_end} ms)\n{story}"
        );
    }
    // Each line reported why its failback waited, before the call ended.
    for line in [1, 2] {
        assert!(
            h.events().iter().any(|e| kind(e) == "failback_held"
                && e["line"] == line
                && e["reason"] == "call_active"
                && h.sbc_of(e) == Some(1)
                && t_ms(e) < call_end),
            "line {line} reports failback_held (call_active)\n{story}"
        );
    }
    // Both lines end registered on the primary.
    for line in [1, 2] {
        assert!(
            h.events().iter().any(|e| kind(e) == "registered"
                && e["line"] == line
                && h.sbc_of(e) == Some(1)
                && t_ms(e) >= call_end),
            "line {line} registered on SBC 1 after the call\n{story}"
        );
    }
}
