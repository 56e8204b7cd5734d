//! End to end against the lab: the fleet's control API, what the HTTP API
//! will call. A line added at run time registers and its removal sends
//! `Expires: 0`; calls are addressed by Call-ID; the event stream yields
//! the events in the order the lines emitted them; the metrics and
//! readiness follow the lines, failover included.

mod e2e_support;

use std::time::Duration;

use e2e_support::{kind, scenario, Harness};
use serde_json::Value;
use sipfleet::actors::events::{event_json, LineEvent};
use sipfleet::actors::fleet::{ControlError, Fleet};
use sipfleet::actors::hub::EventStream;
use sipfleet::actors::line::CallCommandError;
use sipfleet::actors::views::LineState;
use sipfleet_lab::{password_for, Mode};

/// The `reg.2` block of lab user `user`, against the lab's domain.
fn line_text(h: &Harness, n: u32, user: &str) -> String {
    format!(
        "reg.{n}.address=\"{user}\"\n\
         reg.{n}.auth.password=\"{}\"\n\
         reg.{n}.server.1.address=\"{}\"\n\
         reg.{n}.server.1.port=\"0\"\n\
         reg.{n}.server.1.transport=\"UDPOnly\"\n",
        password_for(user),
        h.lab.domain()
    )
}

/// The value of the sample `key` (`name{labels}`) in the exposition.
fn sample(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
}

/// Reads the stream until `pred` holds for an event; every event read,
/// in order, as JSON. Panics after `timeout` or on a lag notice.
async fn read_until(
    h: &Harness,
    stream: &mut EventStream,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let read = async {
        while let Some(item) = stream.recv().await {
            let event: LineEvent = item.expect("the test keeps up: no lag");
            let json = event_json(&event, event.at);
            let done = pred(&json);
            seen.push(json);
            if done {
                return;
            }
        }
    };
    if tokio::time::timeout(timeout, read).await.is_err() {
        panic!(
            "the stream never matched within {timeout:?}: {seen:#?}\n{}",
            h.story()
        );
    }
    seen
}

fn names_of(events: &[Value], line: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["line"] == line)
        .map(|e| kind(e).to_owned())
        .collect()
}

async fn metrics(fleet: &Fleet) -> String {
    fleet.metrics_text().await
}

#[test]
fn a_line_added_at_run_time_registers_and_its_removal_sends_expires_0() {
    let mut h = scenario!().line("1001").start();
    h.run(async |h, fleet| {
        let mut stream = fleet.subscribe();
        read_until(h, &mut stream, Duration::from_secs(5), |e| {
            kind(e) == "registered" && e["line"] == 1
        })
        .await;
        assert!(fleet.ready(1.0));
        assert_eq!(
            sample(
                &metrics(&fleet).await,
                r#"sipfleet_lines{state="registered"}"#
            ),
            Some(1.0)
        );

        // Refused without a change: bad text, no line, two lines, a line
        // that is there already.
        let bad = fleet
            .add_line_text("reg.2.address=\"1002\"\nreg.2.server.1.port=\"99999\"\n")
            .unwrap_err();
        assert!(
            matches!(&bad, ControlError::Config(_)) && bad.to_string().contains("port"),
            "{bad}"
        );
        assert!(matches!(
            fleet.add_line_text("voIpProt.SIP.keepalive.sessionTimers=\"1\"\n"),
            Err(ControlError::LineCount { found: 0 })
        ));
        let two = format!("{}{}", line_text(h, 2, "1002"), line_text(h, 3, "1003"));
        assert!(matches!(
            fleet.add_line_text(&two),
            Err(ControlError::LineCount { found: 2 })
        ));
        assert!(matches!(
            fleet.add_line_text(&line_text(h, 1, "1002")),
            Err(ControlError::LineExists(1))
        ));
        assert_eq!(fleet.line_indexes(), [1]);

        let added = fleet
            .add_line_text(&line_text(h, 2, "1002"))
            .expect("added");
        assert_eq!(added, 2);
        assert!(!fleet.ready(1.0), "line 2 is not registered yet");
        assert!(fleet.ready(0.5));
        let story = read_until(h, &mut stream, Duration::from_secs(5), |e| {
            kind(e) == "registered" && e["line"] == 2
        })
        .await;
        // The stream tells line 2's story in the order the sink got it.
        let line2 = names_of(&story, 2);
        assert_eq!(line2.first().map(String::as_str), Some("registering"));
        assert_eq!(names_of(&h.events(), 2), line2, "{}", h.story());
        let detail = fleet.line_detail(2).await.expect("line 2");
        assert_eq!(detail.view.state, LineState::Registered);
        assert!(detail.view.expires.is_some_and(|e| e > 0));
        assert_eq!(
            detail.status.registered_route.map(|r| r.addr.ip()),
            Some(std::net::IpAddr::V4(h.lab.sbcs()[0].ip()))
        );
        assert!(fleet.ready(1.0));
        let text = metrics(&fleet).await;
        assert_eq!(
            sample(&text, r#"sipfleet_lines{state="registered"}"#),
            Some(2.0),
            "{text}"
        );
        assert_eq!(fleet.line_details().await.len(), 2);

        fleet
            .remove_line(2, Duration::from_secs(3))
            .await
            .expect("removed");
        let unregisters = h
            .wait_registers(1, "1002", Duration::from_secs(3), |s| {
                s.iter().any(|r| r.expires == Some(0))
            })
            .await;
        assert!(
            unregisters.iter().filter(|r| r.expires == Some(0)).count() >= 1,
            "{unregisters:#?}"
        );
        let gone = read_until(h, &mut stream, Duration::from_secs(3), |e| {
            kind(e) == "unregistered" && e["line"] == 2
        })
        .await;
        assert_eq!(gone.last().unwrap()["reason"], "shutdown");
        assert!(matches!(
            fleet.line_detail(2).await,
            Err(ControlError::UnknownLine(2))
        ));
        assert!(matches!(
            fleet.remove_line(2, Duration::from_secs(1)).await,
            Err(ControlError::UnknownLine(2))
        ));
        assert!(matches!(
            fleet.place_call(2, "sip:9001@x").await,
            Err(ControlError::UnknownLine(2))
        ));
        assert_eq!(fleet.line_indexes(), [1]);
        assert!(fleet.ready(1.0));
        assert_eq!(
            sample(
                &metrics(&fleet).await,
                r#"sipfleet_lines{state="registered"}"#
            ),
            Some(1.0)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish();
}

#[test]
fn two_calls_on_one_line_are_hung_up_by_id_in_reverse_order() {
    let mut h = scenario!().line("1001").start();
    let target = format!("sip:9001@{}", h.lab.domain());
    let (first, second) = h.run(async |h, fleet| {
        let mut stream = fleet.subscribe();
        read_until(h, &mut stream, Duration::from_secs(5), |e| {
            kind(e) == "registered"
        })
        .await;
        let first = fleet.place_call(1, &target).await.expect("first call");
        read_until(h, &mut stream, Duration::from_secs(3), |e| {
            kind(e) == "call_established" && e["call_id"] == first.as_str()
        })
        .await;
        let second = fleet.place_call(1, &target).await.expect("second call");
        read_until(h, &mut stream, Duration::from_secs(3), |e| {
            kind(e) == "call_established" && e["call_id"] == second.as_str()
        })
        .await;
        let calls = fleet.calls().await;
        let ids: Vec<&str> = calls.iter().map(|c| c.call.call_id.as_str()).collect();
        assert_eq!(ids, [first.as_str(), second.as_str()]);
        for c in &calls {
            assert_eq!(c.line, 1);
            assert_eq!(c.call.remote, format!("<{target}>"));
            assert_eq!(
                c.call.route.addr.ip(),
                std::net::IpAddr::V4(h.lab.sbcs()[0].ip())
            );
        }
        assert_eq!(
            sample(
                &metrics(&fleet).await,
                r#"sipfleet_calls{state="established"}"#
            ),
            Some(2.0)
        );

        // The newer first, by id: the older stays up.
        fleet.hold(&second).await.expect("hold the second");
        read_until(h, &mut stream, Duration::from_secs(3), |e| {
            kind(e) == "call_held" && e["call_id"] == second.as_str()
        })
        .await;
        fleet.hangup(&second).await.expect("hang up the second");
        let ended = read_until(h, &mut stream, Duration::from_secs(3), |e| {
            kind(e) == "call_ended"
        })
        .await;
        let ended = ended.last().unwrap();
        assert_eq!(ended["call_id"], second.as_str());
        assert_eq!(ended["reason"], "local_hangup");
        let left: Vec<String> = fleet
            .calls()
            .await
            .into_iter()
            .map(|c| c.call.call_id)
            .collect();
        assert_eq!(left, std::slice::from_ref(&first));
        // An ended call, or one that never was, is an error naming it.
        for id in [second.as_str(), "nope@sipfleet"] {
            match fleet.hangup(id).await {
                Err(ControlError::UnknownCall(named)) => assert_eq!(named, id),
                other => panic!("hang up {id}: {other:?}"),
            }
        }
        // An action the call's state refuses says so, with the line.
        match fleet.answer(&first).await {
            Err(ControlError::Call {
                line: 1,
                source: CallCommandError::Call(_),
            }) => {}
            other => panic!("answer an established call: {other:?}"),
        }
        fleet.hangup(&first).await.expect("hang up the first");
        read_until(h, &mut stream, Duration::from_secs(3), |e| {
            kind(e) == "call_ended" && e["call_id"] == first.as_str()
        })
        .await;
        assert!(fleet.calls().await.is_empty());
        for id in [&first, &second] {
            h.wait_methods(1, id, Duration::from_secs(3), |m| {
                m.iter().any(|x| x == "BYE")
            })
            .await;
        }
        let text = metrics(&fleet).await;
        assert_eq!(
            sample(
                &text,
                r#"sipfleet_calls_ended_total{reason="local_hangup"}"#
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"sipfleet_invite_transactions_total{kind="initial"}"#
            ),
            Some(2.0)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        (first, second)
    });
    h.finish_with_calls();
    // Each call's BYE went to the SBC after its INVITE; the second's
    // dialog also carried the hold re-INVITE.
    let methods = |id: &str| {
        let mut m = h.methods_for(1, id);
        m.sort();
        m
    };
    assert_eq!(methods(&second), ["ACK", "ACK", "BYE", "INVITE", "INVITE"]);
    assert_eq!(methods(&first), ["ACK", "BYE", "INVITE"]);
}

#[test]
fn metrics_count_a_failover_forced_by_a_re_register_on_a_dead_sbc() {
    let mut h = scenario!().line("1001").start();
    h.run(async |h, fleet| {
        h.first_registration_on(1).await;
        let text = metrics(&fleet).await;
        assert_eq!(
            sample(&text, r#"sipfleet_lines{state="registered"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "sipfleet_registration_latency_seconds_count"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"sipfleet_flows{transport="udp"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"sipfleet_failovers_total{reason="icmp"}"#),
            None
        );
        h.set_mode(1, Mode::Dead).await;
        // The refresh comes now, not in an hour: SBC 1 answers with ICMP
        // and the line fails over to SBC 2.
        let before = h.events().len();
        assert!(fleet.register_now(1).await.expect("line 1"));
        let on_two = h
            .wait_event_after(before, "registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        assert_eq!(h.sbc_of(&on_two), Some(2), "{}", h.story());
        assert!(
            h.events()
                .iter()
                .any(|e| kind(e) == "route_failed" && e["reason"] == "icmp"),
            "{}",
            h.story()
        );
        // One failover per `failover` event: SBC 2's 401 sends the
        // authenticated REGISTER back to the primary
        // (`authOptimizedInFailover=0`), which meets ICMP again.
        let failovers = h.events().iter().filter(|e| kind(e) == "failover").count();
        assert!(failovers >= 1, "{}", h.story());
        let text = metrics(&fleet).await;
        assert_eq!(
            sample(&text, r#"sipfleet_failovers_total{reason="icmp"}"#),
            Some(failovers as f64),
            "{text}\n{}",
            h.story()
        );
        let sbc2 = &on_two["route"];
        let key = format!(
            r#"sipfleet_lines_per_registrar{{transport="udp",host="{}",address="{}"}}"#,
            sbc2["host"].as_str().unwrap_or_default(),
            sbc2["address"].as_str().unwrap_or_default()
        );
        assert_eq!(sample(&text, &key), Some(1.0), "{text}");
        assert_eq!(
            sample(
                &text,
                r#"sipfleet_register_transactions_total{purpose="refresh"}"#
            ),
            Some(1.0),
            "{text}"
        );
        let detail = fleet.line_detail(1).await.expect("line 1");
        let failure = detail.view.last_failure.expect("the ICMP");
        assert_eq!(
            (failure.event, failure.reason.as_str()),
            ("route_failed", "icmp")
        );
        assert!(fleet.ready(1.0));
        assert!(matches!(
            fleet.register_now(7).await,
            Err(ControlError::UnknownLine(7))
        ));
        fleet.shutdown(Duration::from_secs(3)).await;
    });
    h.finish();
}
