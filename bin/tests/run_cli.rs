//! `sipfleet run` as a user runs it: the real binary against the real lab
//! (Kamailio + dnsmasq on loopback), `--events json` read line by line from
//! its stdout, SIGTERM to stop it. Proves the command's contract: every line
//! registers, every state change is one JSON object with the documented
//! fields, and SIGTERM un-registers every line (Expires: 0 reaches the SBC)
//! and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sipfleet_lab::{Lab, LabConfig};

fn config(lab: &Lab) -> String {
    format!(
        r#"reg.1.address="1001"
reg.1.auth.password="pw1001"
reg.2.address="1002"
reg.2.auth.password="pw1002"
voIpProt.server.1.address="{domain}"
voIpProt.server.1.transport="UDPOnly"
voIpProt.server.1.expires="60"
tcpIpApp.dns.server="{dns}"
"#,
        domain = lab.domain(),
        dns = lab.dns_addr()
    )
}

/// Reads stdout lines until `pred` holds for the events seen so far, or
/// `timeout` passes.
fn wait_for(
    rx: &mpsc::Receiver<String>,
    events: &mut Vec<Value>,
    timeout: Duration,
    pred: impl Fn(&[Value]) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while !pred(events) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => events.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
            ),
            Err(_) => return false,
        }
    }
    true
}

/// The child's stdout, line by line, on a channel.
fn stdout_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (at most `limit`) for the child to exit.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn registered_lines(events: &[Value]) -> usize {
    let mut lines: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "registered")
        .filter_map(|e| e["line"].as_u64())
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines.len()
}

#[test]
fn run_registers_every_line_prints_json_and_unregisters_on_sigterm() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lines.cfg");
    std::fs::write(&cfg, config(&lab)).unwrap();

    let sip_port = free_udp_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args([
            "run",
            "--events",
            "json",
            "--sip-port",
            &sip_port.to_string(),
            "--config",
        ])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);

    let mut events = Vec::new();
    let ok = wait_for(&rx, &mut events, Duration::from_secs(10), |ev| {
        registered_lines(ev) == 2
    });
    assert!(ok, "both lines should register: {events:#?}");

    // Every event has the documented envelope.
    for e in &events {
        assert!(e["t_ms"].is_u64(), "{e}");
        assert!(e["line"].is_u64(), "{e}");
        assert!(e["event"].is_string(), "{e}");
        assert!(e["call_id"].is_string(), "{e}");
        let route = &e["route"];
        assert_eq!(route["transport"], "udp", "{e}");
        assert_eq!(route["host"], "sbc1.lab.sipfleet.test", "{e}");
        assert_eq!(
            route["address"],
            lab.sbc(1).addr(sipfleet_lab::Transport::Udp).to_string()
        );
    }
    assert!(events
        .iter()
        .any(|e| e["event"] == "registering" && e["purpose"] == "initial"));

    // SIGTERM: un-register every line, then exit 0.
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let ok = wait_for(&rx, &mut events, Duration::from_secs(10), |ev| {
        ev.iter()
            .filter(|e| e["event"] == "unregistered" && e["reason"] == "shutdown")
            .count()
            == 2
    });
    assert!(ok, "both lines should un-register: {events:#?}");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");

    let unregisters: Vec<_> = lab
        .received(1)
        .unwrap()
        .into_iter()
        .filter(|r| r.method == "REGISTER" && r.expires == Some(0))
        .map(|r| r.from_user.unwrap_or_default())
        .collect();
    assert!(unregisters.contains(&"1001".to_string()), "{unregisters:?}");
    assert!(unregisters.contains(&"1002".to_string()), "{unregisters:?}");
    // `--sip-port`: every REGISTER of both lines came from that one port.
    let sources: Vec<u16> = lab
        .received(1)
        .unwrap()
        .into_iter()
        .filter(|r| r.method == "REGISTER")
        .map(|r| r.source.port())
        .collect();
    assert!(!sources.is_empty());
    assert!(
        sources.iter().all(|p| *p == sip_port),
        "{sources:?} vs {sip_port}"
    );
}

/// A UDP port nobody holds right now.
fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.local_addr().unwrap().port()
}

#[test]
fn run_with_a_taken_sip_port_exits_2_and_names_it() {
    // Held without SO_REUSEPORT: nobody else may bind it.
    let holder = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("one.cfg");
    std::fs::write(
        &cfg,
        "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"127.0.0.1\"\nvoIpProt.server.1.transport=\"UDPOnly\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args([
            "run",
            "--duration",
            "1",
            "--sip-port",
            &port.to_string(),
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("SIP port (UDP {port})")), "{err}");
}

#[test]
fn run_with_a_bad_config_exits_2_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.cfg");
    std::fs::write(
        &cfg,
        "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"x.test\"\nvoIpProt.server.1.retryMaxCount=\"-4\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retryMaxCount"), "{err}");
    assert!(err.contains("bad.cfg:3"), "{err}");
}

/// `--trace` and `--pcap`: every message both ways, readable and as a
/// capture, flushed by the time the process exits; never the password.
#[test]
fn run_writes_the_message_trace_and_a_pcap() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lines.cfg");
    std::fs::write(&cfg, config(&lab)).unwrap();
    let trace = dir.path().join("trace.txt");
    let pcap = dir.path().join("trace.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(["run", "--events", "json", "--duration", "3", "--config"])
        .arg(&cfg)
        .arg("--trace")
        .arg(&trace)
        .arg("--pcap")
        .arg(&pcap)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let sent_registers = text.matches("UDP sent (").count();
    assert!(
        sent_registers >= 6,
        "2 lines x (REGISTER, authenticated, un-REGISTER)\n{text}"
    );
    assert!(text.contains("\n\nREGISTER sip:"), "{text}");
    assert!(text.contains("\n\nSIP/2.0 401 "), "{text}");
    assert!(text.contains("\n\nSIP/2.0 200 OK"), "{text}");
    assert!(text.contains("UDP received ("), "{text}");
    assert!(text.contains(" t="), "on the events' clock: {text}");
    assert!(
        !text.contains("pw1001") && !text.contains("pw1002"),
        "no password"
    );
    let bytes = std::fs::read(&pcap).unwrap();
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
    let mut at = 24;
    let mut packets = 0;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        assert_eq!(bytes[at + 16] >> 4, 4, "IPv4");
        at += 16 + len;
        packets += 1;
    }
    assert_eq!(at, bytes.len(), "whole records");
    assert_eq!(
        packets,
        text.matches("\n----- ").count() + 1,
        "one packet per traced message"
    );
}

/// A hang-up (terminal or SSH session gone) stops the fleet like SIGTERM:
/// every binding is removed at the SBC, then exit 0.
#[test]
fn run_unregisters_and_exits_on_sighup() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lines.cfg");
    std::fs::write(&cfg, config(&lab)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(["run", "--events", "json", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    let mut events = Vec::new();
    let ok = wait_for(&rx, &mut events, Duration::from_secs(10), |ev| {
        registered_lines(ev) == 2
    });
    assert!(ok, "both lines should register: {events:#?}");

    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let _ = wait_for(&rx, &mut events, Duration::from_secs(2), |ev| {
        ev.iter()
            .filter(|e| e["event"] == "unregistered" && e["reason"] == "shutdown")
            .count()
            == 2
    });
    let gone = events
        .iter()
        .filter(|e| e["event"] == "unregistered" && e["reason"] == "shutdown")
        .count();
    assert_eq!(gone, 2, "{events:#?}");
    let unregisters: Vec<_> = lab
        .received(1)
        .unwrap()
        .into_iter()
        .filter(|r| r.method == "REGISTER" && r.expires == Some(0))
        .map(|r| r.from_user.unwrap_or_default())
        .collect();
    assert!(unregisters.contains(&"1001".to_string()), "{unregisters:?}");
    assert!(unregisters.contains(&"1002".to_string()), "{unregisters:?}");
}

/// An SBC that went silent never answers the shutdown's `Expires: 0`; over
/// TCP its Timer B (32 s) outlasts `--shutdown-timeout-ms`, and the event
/// says the binding's removal was not confirmed instead of `shutdown`.
#[test]
fn run_reports_an_unanswered_unregister_as_unconfirmed() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lines.cfg");
    std::fs::write(
        &cfg,
        config(&lab).replace(
            "voIpProt.server.1.transport=\"UDPOnly\"",
            "voIpProt.server.1.transport=\"TCPOnly\"",
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(["run", "--events", "json", "--shutdown-timeout-ms", "1000"])
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    let mut events = Vec::new();
    let ok = wait_for(&rx, &mut events, Duration::from_secs(10), |ev| {
        registered_lines(ev) == 2
    });
    assert!(ok, "both lines should register: {events:#?}");
    lab.set_mode(1, sipfleet_lab::Mode::Silent).unwrap();

    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let _ = wait_for(&rx, &mut events, Duration::from_secs(2), |ev| {
        ev.iter().filter(|e| e["event"] == "unregistered").count() == 2
    });
    let reasons: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "unregistered")
        .map(|e| &e["reason"])
        .collect();
    assert_eq!(
        reasons,
        ["unregister_unconfirmed", "unregister_unconfirmed"],
        "{events:#?}"
    );
}
