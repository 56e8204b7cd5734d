//! End to end against the lab: calls of the line actor. A call to
//! `sip:9001@<domain>` is answered by the SBC itself; a call between two
//! lines of the fleet goes through the SBC (Record-Route) to the other
//! line, which rings until answered. Hold and resume are shown both ways:
//! with the SBC as the callee, and between two lines.

mod e2e_support;

use std::time::Duration;

use actix::Addr;
use e2e_support::{kind, scenario, Harness};
use serde_json::Value;
use sipfleet::actors::line::{Answer, CallCommandError, Hangup, Hold, Line, PlaceCall, Resume};
use sipfleet_lab::tools::Sipp;
use sipfleet_lab::Transport as LabTransport;

fn on_line(ev: &Value, line: u64, name: &str, call_id: &str) -> bool {
    kind(ev) == name && ev["line"] == line && ev["call_id"] == call_id
}

/// Waits (3 s at most) for `kind` of call `call_id` on `line`.
async fn wait_call(h: &Harness, line: u64, kind: &str, call_id: &str) -> Value {
    h.wait_event(
        &format!("{kind} on line {line}"),
        Duration::from_secs(3),
        |e| on_line(e, line, kind, call_id),
    )
    .await
}

/// The methods SBC 1 received for `call_id`, sorted: the SBC's worker
/// processes may log requests sent together (an ACK and a BYE) in either
/// order.
fn sorted_methods(h: &Harness, call_id: &str) -> Vec<String> {
    let mut methods = h.methods_for(1, call_id);
    methods.sort();
    methods
}

/// Places a call from `line` and returns its Call-ID.
async fn place(line: &Addr<Line>, target: impl Into<String>) -> String {
    line.send(PlaceCall {
        target: target.into(),
    })
    .await
    .expect("line answers")
    .expect("call placed")
}

#[test]
fn an_outgoing_call_to_the_sbc_is_established_held_resumed_and_hung_up() {
    let mut h = scenario!().line("1001").start();
    let target = format!("sip:9001@{}", h.lab.domain());
    let call_id = h.run(async |h, fleet| {
        let line = &fleet.lines()[0];
        // Before the line registers there is no route to call through.
        h.wait_event("registered", Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
        let answered = line.send(Answer).await.unwrap();
        assert!(
            matches!(answered, Err(CallCommandError::NoCall("answer"))),
            "{answered:?}"
        );
        let call_id = place(line, target.clone()).await;
        let started = h
            .wait_event("call_started", Duration::from_secs(2), |e| {
                on_line(e, 1, "call_started", &call_id)
            })
            .await;
        assert_eq!(started["direction"], "outgoing");
        assert_eq!(started["remote"], target.as_str());
        assert_eq!(h.sbc_of(&started), Some(1), "via the registered SBC");
        let up = wait_call(h, 1, "call_established", &call_id).await;
        // The SBC's SDP answer names its own address and port 40000.
        let sbc1 = h.lab.sbcs()[0].ip();
        assert_eq!(up["remote_rtp"], format!("{sbc1}:40000").as_str());
        let status = fleet.status().await;
        assert_eq!(status[0].calls.len(), 1);
        // Hold and resume: re-INVITEs in the dialog, answered by the SBC
        // (recvonly to our sendonly, then sendrecv again).
        line.send(Hold).await.unwrap().expect("hold");
        let held = wait_call(h, 1, "call_held", &call_id).await;
        assert_eq!(held["by_remote"], false);
        line.send(Resume).await.unwrap().expect("resume");
        wait_call(h, 1, "call_resumed", &call_id).await;

        line.send(Hangup).await.unwrap().expect("hang up");
        let ended = wait_call(h, 1, "call_ended", &call_id).await;
        assert_eq!(ended["reason"], "local_hangup");
        let hung_up = line.send(Hangup).await.unwrap();
        assert!(
            matches!(hung_up, Err(CallCommandError::NoCall("hang up"))),
            "nothing left to hang up: {hung_up:?}"
        );
        h.wait_methods(1, &call_id, Duration::from_secs(3), |m| {
            m.iter().any(|x| x == "BYE")
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
        call_id
    });
    h.finish_with_calls();
    let methods = sorted_methods(&h, &call_id);
    assert_eq!(
        methods,
        ["ACK", "ACK", "ACK", "BYE", "INVITE", "INVITE", "INVITE"],
        "INVITE, ACK, hold re-INVITE, ACK, resume re-INVITE, ACK, BYE\n{}",
        h.story()
    );
}

#[test]
fn an_incoming_call_rings_until_answered_is_held_resumed_and_hung_up() {
    let mut h = scenario!().line("1001").line("1002").start();
    h.run(async |h, fleet| {
        for line in [1, 2] {
            h.wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered" && e["line"] == line
            })
            .await;
        }
        let (caller, callee) = (&fleet.lines()[0], &fleet.lines()[1]);
        let call_id = place(caller, format!("sip:1002@{}", h.lab.domain())).await;
        let incoming = wait_call(h, 2, "call_started", &call_id).await;
        assert_eq!(incoming["direction"], "incoming");
        wait_call(h, 1, "call_ringing", &call_id).await;
        // It rings: nothing answers by itself.
        h.sleep_ms(1_000).await;
        assert!(
            !h.events()
                .iter()
                .any(|e| kind(e) == "call_answered" && e["call_id"] == call_id.as_str()),
            "{}",
            h.story()
        );
        callee.send(Answer).await.unwrap().expect("answer");
        for line in [1, 2] {
            wait_call(h, line, "call_established", &call_id).await;
        }
        // Both sides send 20 ms packets of silence to the port the other's
        // SDP named, and receive the other's.
        h.sleep_ms(600).await;
        for status in fleet.status().await {
            let call = &status.calls[0];
            assert!(call.rtp_sent >= 15, "line {}: {call:?}", status.index);
            assert!(call.rtp_received >= 10, "line {}: {call:?}", status.index);
        }
        // The caller holds and resumes (re-INVITEs through the SBC's
        // Record-Route): the callee sees both.
        caller.send(Hold).await.unwrap().expect("hold");
        h.wait_event("caller holds", Duration::from_secs(3), |e| {
            on_line(e, 1, "call_held", &call_id) && e["by_remote"] == false
        })
        .await;
        h.wait_event("callee is held", Duration::from_secs(3), |e| {
            on_line(e, 2, "call_held", &call_id) && e["by_remote"] == true
        })
        .await;
        caller.send(Resume).await.unwrap().expect("resume");
        h.wait_event("callee is resumed", Duration::from_secs(3), |e| {
            on_line(e, 2, "call_resumed", &call_id) && e["by_remote"] == true
        })
        .await;
        wait_call(h, 1, "call_resumed", &call_id).await;
        // The callee hangs up: the caller sees the BYE.
        callee.send(Hangup).await.unwrap().expect("hang up");
        let caller_end = wait_call(h, 1, "call_ended", &call_id).await;
        assert_eq!(caller_end["reason"], "remote_hangup");
        let callee_end = wait_call(h, 2, "call_ended", &call_id).await;
        assert_eq!(callee_end["reason"], "local_hangup");
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish_with_calls();
}

#[test]
fn auto_answer_answers_an_incoming_call_at_once() {
    let mut h = scenario!()
        .line("1001")
        .line("1002")
        .config("reg.2.autoAnswer=\"1\"\n")
        .start();
    h.run(async |h, fleet| {
        for line in [1, 2] {
            h.wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered" && e["line"] == line
            })
            .await;
        }
        let call_id = place(&fleet.lines()[0], format!("sip:1002@{}", h.lab.domain())).await;
        wait_call(h, 2, "call_established", &call_id).await;
        fleet.lines()[0]
            .send(Hangup)
            .await
            .unwrap()
            .expect("hang up");
        h.wait_event("callee's call ends", Duration::from_secs(3), |e| {
            on_line(e, 2, "call_ended", &call_id) && e["reason"] == "remote_hangup"
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish_with_calls();
}

#[test]
fn a_ringing_call_can_be_cancelled_by_the_caller_or_declined_by_the_callee() {
    let mut h = scenario!().line("1001").line("1002").start();
    h.run(async |h, fleet| {
        for line in [1, 2] {
            h.wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered" && e["line"] == line
            })
            .await;
        }
        let (caller, callee) = (&fleet.lines()[0], &fleet.lines()[1]);
        let target = format!("sip:1002@{}", h.lab.domain());
        // The caller gives up while it rings: CANCEL through the SBC.
        let cancelled = place(caller, target.clone()).await;
        wait_call(h, 1, "call_ringing", &cancelled).await;
        caller.send(Hangup).await.unwrap().expect("cancel");
        let mine = wait_call(h, 1, "call_ended", &cancelled).await;
        assert_eq!(mine["reason"], "cancelled");
        assert_eq!(mine["status"], 487);
        let theirs = wait_call(h, 2, "call_ended", &cancelled).await;
        assert_eq!(theirs["reason"], "remote_cancelled");
        // The callee declines: 603 reaches the caller.
        let declined = place(caller, target).await;
        wait_call(h, 2, "call_ringing", &declined).await;
        callee.send(Hangup).await.unwrap().expect("decline");
        let theirs = wait_call(h, 2, "call_ended", &declined).await;
        assert_eq!(theirs["reason"], "declined");
        let mine = wait_call(h, 1, "call_ended", &declined).await;
        assert_eq!(mine["reason"], "rejected");
        assert_eq!(mine["status"], 603);
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish_with_calls();
}

/// A call the SBC challenges (`sip:8xxx@`: 407 with a Proxy-Authenticate
/// of its own nonce): the line acknowledges the 407, sends the INVITE again
/// with Proxy-Authorization (same Call-ID and From tag, CSeq 2) and
/// Kamailio, which checks the digest itself, answers it.
#[test]
fn an_invite_challenged_by_the_sbc_is_resent_with_credentials() {
    let mut h = scenario!().line("1001").start();
    let call_id = h.run(async |h, fleet| {
        h.wait_event("registered", Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
        let line = &fleet.lines()[0];
        let call_id = place(line, format!("sip:8001@{}", h.lab.domain())).await;
        let up = wait_call(h, 1, "call_established", &call_id).await;
        let sbc1 = h.lab.sbcs()[0].ip();
        assert_eq!(up["remote_rtp"], format!("{sbc1}:40000").as_str());
        line.send(Hangup).await.unwrap().expect("hang up");
        let ended = wait_call(h, 1, "call_ended", &call_id).await;
        assert_eq!(ended["reason"], "local_hangup");
        h.wait_methods(1, &call_id, Duration::from_secs(3), |m| {
            m.iter().any(|x| x == "BYE")
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
        call_id
    });
    // Kamailio's sl module absorbs the ACK of its own stateless 407 before
    // the script logs requests: the log shows the 200's ACK only.
    let methods = sorted_methods(&h, &call_id);
    assert_eq!(
        methods,
        ["ACK", "BYE", "INVITE", "INVITE"],
        "INVITE, INVITE with credentials, the 200's ACK, BYE\n{}",
        h.story()
    );
    h.finish_with_calls();
}

/// RFC 3261 13.2.2.4 and 15: a 2xx that reaches the caller after its call
/// ended (here a second fork of the callee answers after the CANCEL's 487)
/// still gets an ACK and a BYE, or the callee would hold a call nobody is
/// on. The callee is a SIPp UAS (`lab/sipp/late_2xx_uas.xml`) that succeeds
/// only if both arrive and its BYE is answered.
#[test]
fn a_2xx_after_the_cancelled_call_ended_is_acked_and_byed() {
    let mut h = scenario!().line("1001").start();
    let mut uas = Sipp::for_lab(&h.lab, "late_2xx_uas.xml", 1, LabTransport::Udp, "1002");
    uas.auth = None;
    uas.timeout = Duration::from_secs(15);
    let mut reg = Sipp::for_lab(&h.lab, "register_as.xml", 1, LabTransport::Udp, "1002");
    reg.keys = vec![("contact".into(), uas.local.to_string())];
    let callee = std::thread::spawn(move || uas.run());
    let run = reg.run().expect("sipp runs");
    assert!(run.success(), "the callee registers: {}", run.errors);
    let call_id = h.run(async |h, fleet| {
        h.wait_event("registered", Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
        let line = &fleet.lines()[0];
        let call_id = place(line, format!("sip:1002@{}", h.lab.domain())).await;
        wait_call(h, 1, "call_ringing", &call_id).await;
        line.send(Hangup).await.unwrap().expect("cancel");
        let ended = wait_call(h, 1, "call_ended", &call_id).await;
        assert_eq!(ended["reason"], "cancelled");
        assert_eq!(ended["status"], 487);
        let methods = h
            .wait_methods(1, &call_id, Duration::from_secs(5), |m| {
                m.iter().any(|x| x == "BYE")
            })
            .await;
        assert!(
            !h.events()
                .iter()
                .any(|e| on_line(e, 1, "call_established", &call_id)),
            "the late answer does not bring the call back\n{}",
            h.story()
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        eprintln!("measured (late 2xx): SBC 1 saw {methods:?}");
        call_id
    });
    let run = callee.join().expect("callee thread").expect("sipp runs");
    assert!(
        run.success(),
        "the callee got its ACK and BYE: {}\n{}\n{}",
        run.errors,
        run.stdout,
        h.story()
    );
    let methods = sorted_methods(&h, &call_id);
    assert_eq!(
        methods,
        ["ACK", "ACK", "BYE", "CANCEL", "INVITE"],
        "the 487's ACK, the late 200's ACK and its BYE\n{}",
        h.story()
    );
    h.finish_with_calls();
}

/// Over TCP the SBC delivers the INVITE on the connection the callee
/// registered on; both lines share that connection's flow.
#[test]
fn calls_work_over_tcp_on_the_shared_connection() {
    let mut h = scenario!()
        .line("1001")
        .line("1002")
        .transport("TCPOnly")
        .config("reg.2.autoAnswer=\"1\"\n")
        .start();
    h.run(async |h, fleet| {
        for line in [1, 2] {
            h.wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered" && e["line"] == line
            })
            .await;
        }
        let caller = &fleet.lines()[0];
        for target in [
            format!("sip:9001@{}", h.lab.domain()),
            format!("sip:1002@{}", h.lab.domain()),
        ] {
            let call_id = place(caller, target).await;
            let up = wait_call(h, 1, "call_established", &call_id).await;
            assert_eq!(up["route"]["transport"], "tcp");
            caller.send(Hangup).await.unwrap().expect("hang up");
            h.wait_event("ended", Duration::from_secs(3), |e| {
                on_line(e, 1, "call_ended", &call_id) && e["reason"] == "local_hangup"
            })
            .await;
        }
        h.wait_event("callee's call ended", Duration::from_secs(3), |e| {
            kind(e) == "call_ended" && e["line"] == 2 && e["reason"] == "remote_hangup"
        })
        .await;
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish_with_calls();
}
