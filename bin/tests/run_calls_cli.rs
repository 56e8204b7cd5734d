//! `sipfleet run` call commands on stdin, as a user types them: the real
//! binary against the real lab. A good command shows up in the JSON event
//! stream; a malformed or inapplicable one gets one error line on stderr
//! and changes nothing; end of input stops the reading, not the fleet.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sipfleet_lab::{Lab, LabConfig};

fn config(lab: &Lab) -> String {
    format!(
        r#"reg.1.address="1001"
reg.1.auth.password="pw1001"
voIpProt.server.1.address="{domain}"
voIpProt.server.1.transport="UDPOnly"
tcpIpApp.dns.server="{dns}"
"#,
        domain = lab.domain(),
        dns = lab.dns_addr()
    )
}

fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads JSON events until one matches `pred`.
fn wait_event(
    rx: &mpsc::Receiver<String>,
    events: &mut Vec<Value>,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(ev) = events.iter().find(|e| pred(e)) {
            return ev.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => events.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")),
            ),
            Err(_) => panic!("no {what}: {events:#?}"),
        }
    }
}

/// Reads stderr until a `sipfleet run:` error line appears.
fn wait_error(rx: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("sipfleet run: ") => return line,
            Ok(_) => {}
            Err(_) => panic!("no error line on stderr"),
        }
    }
}

#[test]
fn stdin_commands_place_and_end_calls_and_bad_ones_are_refused_on_stderr() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("line.cfg");
    std::fs::write(&cfg, config(&lab)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(["run", "--events", "json", "--config"])
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut events = Vec::new();
    wait_event(&out, &mut events, "registered", |e| {
        e["event"] == "registered"
    });

    let mut say = |text: &str| {
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    };
    let target = format!("sip:9001@{}", lab.domain());
    say("dial 1 sip:9001@x");
    assert!(wait_error(&err).contains("unknown command \"dial\""));
    say("call 1 9001");
    assert!(wait_error(&err).contains("URI must be"));
    say(&format!("call 7 {target}"));
    assert!(wait_error(&err).contains("no line 7"));
    say("answer 1");
    assert!(wait_error(&err).contains("line 1: no call on the line to answer"));
    say("hangup 1");
    assert!(wait_error(&err).contains("line 1: no call on the line to hang up"));

    say(&format!("call 1 {target}"));
    let up = wait_event(&out, &mut events, "call_established", |e| {
        e["event"] == "call_established"
    });
    let call_id = up["call_id"].as_str().unwrap().to_string();
    say("hangup 1");
    let ended = wait_event(&out, &mut events, "call_ended", |e| {
        e["event"] == "call_ended" && e["call_id"] == call_id.as_str()
    });
    assert_eq!(ended["reason"], "local_hangup");
    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "call_started")
        .collect();
    assert_eq!(started.len(), 1, "the refused commands placed nothing");
    assert_eq!(started[0]["remote"], target.as_str());

    // An emergency call: the lab's SBC refuses the line seize (489), and
    // the INVITE goes anyway.
    say(&format!("emergency 1 sip:9911@{}", lab.domain()));
    let seize = wait_event(&out, &mut events, "line_seize_failed", |e| {
        e["event"] == "line_seize_failed"
    });
    assert_eq!(seize["outcome"], "refused");
    assert_eq!(seize["status"], 489);
    let up = wait_event(&out, &mut events, "emergency call established", |e| {
        e["event"] == "call_established" && e["call_id"] != call_id.as_str()
    });
    let emergency_id = up["call_id"].as_str().unwrap().to_string();
    say("hangup 1");
    wait_event(&out, &mut events, "emergency call ended", |e| {
        e["event"] == "call_ended" && e["call_id"] == emergency_id.as_str()
    });

    // End of input stops the reading, not the fleet.
    drop(stdin);
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "still running");

    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    // Sorted: the SBC's worker processes may log the ACK and the BYE that
    // followed it within a millisecond in either order.
    let mut methods: Vec<String> = lab
        .received(1)
        .unwrap()
        .into_iter()
        .filter(|r| r.call_id == call_id)
        .map(|r| r.method)
        .collect();
    methods.sort();
    assert_eq!(methods, ["ACK", "BYE", "INVITE"]);
}
