//! Every fault mode of a lab SBC, observed from outside: 503 (with and
//! without Retry-After), silent, dead (ICMP / RST), reject (403); and
//! registrations surviving mode switches that keep the process.

use std::time::Duration;

use sipfleet_lab::tools::{register_text, sip_request, SipOutcome, Sipp};
use sipfleet_lab::{Lab, LabConfig, Mode, Transport};

fn one_sbc() -> Lab {
    Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap()
}

fn sipp(lab: &Lab, scenario: &str, transport: Transport, user: &str) -> Sipp {
    let mut s = Sipp::for_lab(lab, scenario, 1, transport, user);
    s.timeout = Duration::from_secs(3);
    s
}

/// A bare REGISTER from Rust; returns what came back within `timeout`.
fn raw_register(
    lab: &Lab,
    t: Transport,
    user: &str,
    call_id: &str,
    timeout: Duration,
) -> SipOutcome {
    let domain = lab.domain().to_string();
    sip_request(
        t,
        lab.client_ip().into(),
        lab.sbc(1).addr(t),
        |local| register_text(t, local, &domain, user, call_id),
        timeout,
    )
    .unwrap()
}

#[test]
fn mode_503_answers_every_request_with_and_without_retry_after() {
    let lab = one_sbc();
    lab.set_mode(1, Mode::Error503 { retry_after: None })
        .unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        let run = sipp(&lab, "register_503.xml", t, "1001").run().unwrap();
        assert!(run.success(), "{t}: {}", run.errors);
        match raw_register(
            &lab,
            t,
            "1001",
            &format!("r503-{t}"),
            Duration::from_secs(2),
        ) {
            SipOutcome::Response(r) => {
                assert_eq!(r.code, 503);
                assert_eq!(r.header("Retry-After"), None);
            }
            other => panic!("{t}: expected 503, got {other:?}"),
        }
    }
    lab.set_mode(
        1,
        Mode::Error503 {
            retry_after: Some(30),
        },
    )
    .unwrap();
    match raw_register(
        &lab,
        Transport::Udp,
        "1001",
        "r503-ra",
        Duration::from_secs(2),
    ) {
        SipOutcome::Response(r) => {
            assert_eq!(r.code, 503);
            assert_eq!(r.header("Retry-After"), Some("30"));
        }
        other => panic!("expected 503, got {other:?}"),
    }
    // The call path answers 503 too (every request).
    let mut call = sipp(&lab, "call.xml", Transport::Udp, "9000");
    call.auth = None;
    call.field1 = "1001".into();
    let run = call.run().unwrap();
    assert!(!run.success());
    assert!(run.errors.contains("503"), "{}", run.errors);
    // Every request reached the SBC and was observed.
    let got = lab.received(1).unwrap();
    assert!(got
        .iter()
        .any(|r| r.call_id == "r503-ra" && r.method == "REGISTER"));
    assert!(got.iter().any(|r| r.method == "INVITE"));
}

#[test]
fn mode_reject_answers_register_with_403_and_still_serves_calls() {
    let lab = one_sbc();
    lab.set_mode(1, Mode::Reject).unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        let run = sipp(&lab, "register_403.xml", t, "1001").run().unwrap();
        assert!(run.success(), "{t}: {}", run.errors);
    }
    let mut call = sipp(&lab, "call.xml", Transport::Udp, "9000");
    call.auth = None;
    call.field1 = "1001".into();
    let run = call.run().unwrap();
    assert!(run.success(), "{}", run.errors);
    lab.set_mode(1, Mode::Ok).unwrap();
    let run = sipp(&lab, "register.xml", Transport::Udp, "1001")
        .run()
        .unwrap();
    assert!(run.success(), "{}", run.errors);
}

#[test]
fn mode_silent_answers_nothing_then_recovers_with_registrations_kept() {
    let lab = one_sbc();
    let run = sipp(&lab, "register.xml", Transport::Udp, "1001")
        .run()
        .unwrap();
    assert!(run.success(), "{}", run.errors);
    assert_eq!(lab.sbc(1).contacts("1001").unwrap().len(), 1);

    lab.set_mode(1, Mode::Silent).unwrap();
    for t in [Transport::Udp, Transport::Tcp] {
        // TCP connects (the kernel completes the handshake) but nothing answers.
        let out = raw_register(
            &lab,
            t,
            "1002",
            &format!("silent-{t}"),
            Duration::from_millis(700),
        );
        assert!(matches!(out, SipOutcome::Timeout), "{t}: {out:?}");
    }
    let run = sipp(&lab, "register.xml", Transport::Udp, "1003")
        .run()
        .unwrap();
    assert!(!run.success(), "a silent SBC must not register anyone");

    lab.set_mode(1, Mode::Ok).unwrap();
    assert_eq!(
        lab.sbc(1).contacts("1001").unwrap().len(),
        1,
        "registration lost"
    );
    let run = sipp(&lab, "register.xml", Transport::Udp, "1004")
        .run()
        .unwrap();
    assert!(run.success(), "{}", run.errors);
    // What arrived while stopped is read after SIGCONT and observed.
    let got = lab.received(1).unwrap();
    assert!(got.iter().any(|r| r.call_id == "silent-udp"), "{got:?}");
}

#[test]
fn mode_dead_gives_icmp_and_rst_at_once_then_restarts_empty() {
    let lab = one_sbc();
    let run = sipp(&lab, "register.xml", Transport::Udp, "1001")
        .run()
        .unwrap();
    assert!(run.success(), "{}", run.errors);

    lab.set_mode(1, Mode::Dead).unwrap();
    assert_eq!(lab.sbc(1).pgid(), None);
    for t in [Transport::Udp, Transport::Tcp] {
        match raw_register(
            &lab,
            t,
            "1001",
            &format!("dead-{t}"),
            Duration::from_secs(2),
        ) {
            SipOutcome::Refused { after } => {
                assert!(
                    after < Duration::from_millis(100),
                    "{t}: refused only after {after:?}"
                )
            }
            other => panic!("{t}: expected ICMP/RST, got {other:?}"),
        }
    }
    let tls = std::net::TcpStream::connect_timeout(
        &lab.sbc(1).addr(Transport::Tls),
        Duration::from_secs(1),
    );
    assert_eq!(
        tls.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );

    lab.set_mode(1, Mode::Ok).unwrap();
    // A restarted SBC has an empty location table (like a real reboot).
    assert!(lab.sbc(1).contacts("1001").unwrap().is_empty());
    let run = sipp(&lab, "register.xml", Transport::Tcp, "1001")
        .run()
        .unwrap();
    assert!(run.success(), "{}", run.errors);
    // Observations survive the restart (the log is appended to).
    let methods: Vec<_> = lab
        .received(1)
        .unwrap()
        .into_iter()
        .map(|r| r.method)
        .collect();
    assert_eq!(methods, ["REGISTER"; 4]);
}

#[test]
fn switching_modes_keeps_registrations_and_can_start_in_any_mode() {
    let lab = one_sbc();
    let run = sipp(&lab, "register.xml", Transport::Tcp, "20001")
        .run()
        .unwrap();
    assert!(run.success(), "{}", run.errors);
    for m in [
        Mode::Error503 {
            retry_after: Some(5),
        },
        Mode::Reject,
        Mode::Silent,
        Mode::Error503 { retry_after: None },
        Mode::Ok,
    ] {
        lab.set_mode(1, m).unwrap();
        assert_eq!(lab.sbc(1).mode(), m);
    }
    assert_eq!(lab.sbc(1).contacts("20001").unwrap().len(), 1);
    // From dead straight into 503 and into silent.
    lab.set_mode(1, Mode::Dead).unwrap();
    lab.set_mode(
        1,
        Mode::Error503 {
            retry_after: Some(7),
        },
    )
    .unwrap();
    match raw_register(
        &lab,
        Transport::Udp,
        "1001",
        "from-dead",
        Duration::from_secs(2),
    ) {
        SipOutcome::Response(r) => assert_eq!((r.code, r.header("Retry-After")), (503, Some("7"))),
        other => panic!("expected 503, got {other:?}"),
    }
    lab.set_mode(1, Mode::Dead).unwrap();
    lab.set_mode(1, Mode::Silent).unwrap();
    let out = raw_register(
        &lab,
        Transport::Udp,
        "1001",
        "dead-silent",
        Duration::from_millis(500),
    );
    assert!(matches!(out, SipOutcome::Timeout), "{out:?}");
}
