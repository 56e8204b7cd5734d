//! The control API (`sipfleet run --listen`) as a client uses it: the real
//! binary against the real lab, plain HTTP/1.1 over loopback. A call placed
//! over HTTP reaches the SBC; every bad request gets a JSON 4xx naming what
//! is wrong; a listener off loopback needs a token, and the token is
//! enforced.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sipfleet_lab::{Lab, LabConfig};

fn config(lab: &Lab) -> String {
    format!(
        "reg.1.address=\"1001\"\nreg.1.auth.password=\"pw1001\"\n\
         voIpProt.server.1.address=\"{}\"\nvoIpProt.server.1.transport=\"UDPOnly\"\n\
         voIpProt.server.1.expires=\"60\"\ntcpIpApp.dns.server=\"{}\"\n",
        lab.domain(),
        lab.dns_addr()
    )
}

/// One request, `Connection: close`; the status and the body as JSON
/// (`Value::Null` when the body is not JSON).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    // JSON bodies as JSON, Poly configuration text as text.
    let content_type = if body.is_empty() || body.starts_with('{') {
        "application/json"
    } else {
        "text/plain"
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The `sipfleet run` child, killed if the test fails half way (a panic
/// must not leave it running, holding the lab's ports and lock).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts `sipfleet run` with `args` and waits for the API's address on
/// stderr; the child's stderr lines keep coming on the channel.
fn start(args: &[&str]) -> (Running, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no 'control API listening' on stderr:\n{}", seen.join("\n"));
        };
        if line.contains("control API listening") {
            let addr = line
                .split_whitespace()
                .find_map(|w| w.trim_end_matches(',').parse::<SocketAddr>().ok())
                .unwrap_or_else(|| panic!("no address in {line}"));
            return (Running(child), addr, rx);
        }
        seen.push(line);
    }
}

/// `sipfleet run --listen 127.0.0.1:0` with one line (1001) on `lab`; the
/// temporary directory of its configuration and the reader of its stderr
/// (which must keep draining the pipe) live as long as the answer.
fn start_on_lab(
    lab: &Lab,
) -> (
    Running,
    SocketAddr,
    (tempfile::TempDir, mpsc::Receiver<String>),
) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fleet.cfg");
    std::fs::write(&cfg, config(lab)).unwrap();
    let (child, addr, stderr) = start(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    (child, addr, (dir, stderr))
}

fn sigterm_and_wait(child: &mut Child) -> std::process::ExitStatus {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_call_placed_over_http_reaches_the_sbc_and_bad_requests_get_json_errors() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let (mut child, addr, _keep) = start_on_lab(&lab);

    assert_eq!(http(addr, "GET", "/healthz", None, None).0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let (status, body) = http(addr, "GET", "/readyz", None, None);
        if status == 200 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert_eq!(ready.1["registered"], 1);

    let (status, lines) = http(addr, "GET", "/v1/lines", None, None);
    assert_eq!(status, 200);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["state"], "registered");
    let sbc1 = lab.sbc(1).addr(sipfleet_lab::Transport::Udp).to_string();
    assert_eq!(lines[0]["registered_route"]["address"], sbc1.as_str());

    let to = format!("sip:9001@{}", lab.domain());
    let (status, placed) = http(
        addr,
        "POST",
        "/v1/lines/1/calls",
        None,
        Some(&format!("{{\"to\": \"{to}\"}}")),
    );
    assert_eq!(status, 201, "{placed}");
    let call_id = placed["call_id"].as_str().expect("call_id").to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let invites = lab
            .received(1)
            .unwrap()
            .into_iter()
            .filter(|r| r.method == "INVITE" && r.call_id == call_id)
            .count();
        if invites > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no INVITE {call_id} at SBC 1");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, line) = http(addr, "GET", "/v1/lines/1", None, None);
    assert_eq!(status, 200);
    assert!(
        line["calls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["call_id"] == call_id.as_str())),
        "{line}"
    );

    // The routes a line walks, from the fleet's resolver: the lab's SBCs
    // in selection order.
    let (status, routes) = http(
        addr,
        "GET",
        &format!("/v1/routes?name={}", lab.domain()),
        None,
        None,
    );
    assert_eq!(status, 200, "{routes}");
    assert_eq!(routes["name"], lab.domain());
    let first = &routes["routes"][0];
    assert_eq!(
        format!("{}:{}", first["address"].as_str().unwrap(), first["port"]),
        sbc1,
        "{routes}"
    );
    assert!(routes["routes"].as_array().unwrap().len() >= 2, "{routes}");
    let (status, err) = http(
        addr,
        "GET",
        &format!("/v1/routes?name={}&transport=carrier-pigeon", lab.domain()),
        None,
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(err["field"], "transport");
    assert_eq!(http(addr, "GET", "/v1/routes", None, None).0, 400);

    // Bad requests: JSON errors, the field named where one is at fault.
    let (status, err) = http(
        addr,
        "POST",
        "/v1/lines/9/calls",
        None,
        Some("{\"to\": \"sip:1@x\"}"),
    );
    assert_eq!(status, 404, "{err}");
    assert!(err["error"].as_str().unwrap().contains("reg.9"), "{err}");
    let (status, err) = http(
        addr,
        "POST",
        "/v1/lines/1/calls",
        None,
        Some("{\"to\": \"tel:+123\"}"),
    );
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["field"], "to");
    let (status, err) = http(addr, "POST", "/v1/lines/1/calls", None, Some("{\"to\": "));
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].is_string());
    let (status, err) = http(
        addr,
        "POST",
        "/v1/lines/1/calls",
        None,
        Some("{\"ot\": \"sip:1@x\"}"),
    );
    assert_eq!(status, 400, "{err}");
    let big = format!("{{\"to\": \"{}\"}}", "a".repeat(100_000));
    let (status, _) = http(addr, "POST", "/v1/lines/1/calls", None, Some(&big));
    assert_eq!(status, 413);
    let (status, err) = http(addr, "GET", "/v1/lines/abc", None, None);
    assert_eq!(status, 404, "{err}");
    assert!(err["error"].is_string());
    let (status, err) = http(addr, "GET", "/v1/nothing", None, None);
    assert_eq!(status, 404);
    assert!(
        err["error"].as_str().unwrap().contains("/v1/nothing"),
        "{err}"
    );
    let (status, err) = http(addr, "GET", "/readyz?ratio=2", None, None);
    assert_eq!(status, 400);
    assert_eq!(err["field"], "ratio");

    let status = sigterm_and_wait(&mut child);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn off_loopback_the_api_needs_a_token_and_enforces_it() {
    // Refused at start without a token file.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fleet.cfg");
    // No SBC needed: the line's server does not answer; the API serves anyway.
    std::fs::write(
        &cfg,
        "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"127.0.0.1\"\nvoIpProt.server.1.port=\"9\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args([
            "run",
            "--duration",
            "5",
            "--listen",
            "0.0.0.0:0",
            "--config",
        ])
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--token-file"), "{stderr}");

    let short = dir.path().join("short.token");
    std::fs::write(&short, "abc\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args([
            "run",
            "--duration",
            "5",
            "--listen",
            "0.0.0.0:0",
            "--token-file",
        ])
        .arg(&short)
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("16 characters"));

    // With a token: bound on every address, reached over loopback.
    let token = "s3cret-token-0123456789";
    let file = dir.path().join("api.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let (mut child, addr, _stderr) = start(&[
        "run",
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        file.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    assert_eq!(
        http(addr, "GET", "/healthz", None, None).0,
        200,
        "health needs no token"
    );
    let (status, err) = http(addr, "GET", "/v1/lines", None, None);
    assert_eq!(status, 401, "{err}");
    assert!(err["error"].as_str().unwrap().contains("bearer"), "{err}");
    assert_eq!(
        http(
            addr,
            "GET",
            "/v1/lines",
            Some("s3cret-token-012345678"),
            None
        )
        .0,
        401
    );
    assert_eq!(
        http(
            addr,
            "POST",
            "/v1/lines/1/calls",
            Some("wrong-token-0123456789"),
            Some("{\"to\":\"sip:1@x\"}")
        )
        .0,
        401
    );
    // The WebSocket: a browser cannot send a header, so the token may come
    // as access_token (and nothing else gets in).
    assert!(tungstenite::connect(format!("ws://{addr}/v1/events")).is_err());
    assert!(tungstenite::connect(format!(
        "ws://{addr}/v1/events?access_token=wrong-token-0123456789"
    ))
    .is_err());
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/v1/events?access_token={token}"))
        .expect("the token as access_token opens the event stream");
    drop(ws);
    assert_eq!(
        http(
            addr,
            "GET",
            &format!("/v1/lines?access_token={token}"),
            None,
            None
        )
        .0,
        401,
        "only the event stream takes the token in the query"
    );
    assert_eq!(
        http(addr, "GET", "/", None, None).0,
        200,
        "the page itself is static"
    );
    let (status, lines) = http(addr, "GET", "/v1/lines", Some(token), None);
    assert_eq!(status, 200, "{lines}");
    assert_eq!(lines[0]["line"], 1);
    let status = sigterm_and_wait(&mut child);
    assert_eq!(status.code(), Some(0));
}

/// A Prometheus text exposition as `name{labels}` → value.
fn metrics(addr: SocketAddr) -> std::collections::HashMap<String, f64> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    let mut values = std::collections::HashMap::new();
    for line in body.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not an exposition line: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a sample value: {line}"));
        values.insert(name.to_string(), value);
    }
    assert!(body.trim_end().ends_with("# EOF") || !values.is_empty());
    values
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Calls addressed by id, a line added and removed at run time, the
/// metrics moving with them, and the WebSocket event stream (in order,
/// numbered, with a replay for a client that reconnects).
#[test]
fn calls_by_id_lines_at_run_time_metrics_and_the_event_websocket() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let (mut child, addr, _keep) = start_on_lab(&lab);
    wait_until("line 1 registered", Duration::from_secs(10), || {
        http(addr, "GET", "/readyz", None, None).0 == 200
    });
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/v1/events?replay=100")).unwrap();
    let mut seen: Vec<Value> = Vec::new();
    let mut read_until = |seen: &mut Vec<Value>, what: &str, pred: &dyn Fn(&Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(
                Instant::now() < deadline,
                "no {what} on the WebSocket: {seen:#?}"
            );
            let message = ws.read().expect("WebSocket message");
            if let tungstenite::Message::Text(text) = message {
                let event: Value = serde_json::from_str(text.as_str()).expect("JSON event");
                let hit = pred(&event);
                seen.push(event);
                if hit {
                    return;
                }
            }
        }
    };
    // The replay starts with line 1's story.
    read_until(&mut seen, "line 1 registered (replayed)", &|e| {
        e["event"] == "registered" && e["line"] == 1
    });
    assert_eq!(
        seen[0]["seq"], 1,
        "the replay starts at the first event: {seen:#?}"
    );

    // A call by id: listed, then hung up by id; the SBC gets the BYE.
    let to = format!("sip:9001@{}", lab.domain());
    let (status, placed) = http(
        addr,
        "POST",
        "/v1/lines/1/calls",
        None,
        Some(&format!("{{\"to\":\"{to}\"}}")),
    );
    assert_eq!(status, 201, "{placed}");
    let call_id = placed["call_id"].as_str().unwrap().to_string();
    read_until(&mut seen, "call established", &|e| {
        e["event"] == "call_established" && e["call_id"] == call_id.as_str()
    });
    let (status, calls) = http(addr, "GET", "/v1/calls", None, None);
    assert_eq!(status, 200);
    assert!(
        calls
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["call_id"] == call_id.as_str() && c["line"] == 1),
        "{calls}"
    );
    let m = metrics(addr);
    assert_eq!(
        m.get(r#"sipfleet_lines{state="registered"}"#),
        Some(&1.0),
        "{m:#?}"
    );
    assert!(
        m.keys()
            .any(|k| k.starts_with("sipfleet_calls_started_total")),
        "{m:#?}"
    );
    // The lab's name was resolved over DNS (NAPTR, SRV, A) by the fleet's
    // resolver: its questions are counted.
    assert!(
        m.iter()
            .any(|(k, v)| k.starts_with("sipfleet_dns_queries_total{") && *v >= 1.0),
        "{m:#?}"
    );
    let (status, done) = http(
        addr,
        "POST",
        &format!("/v1/calls/{call_id}/hangup"),
        None,
        None,
    );
    assert_eq!(status, 200, "{done}");
    read_until(&mut seen, "call ended", &|e| {
        e["event"] == "call_ended" && e["call_id"] == call_id.as_str()
    });
    wait_until("BYE at SBC 1", Duration::from_secs(5), || {
        lab.received(1)
            .unwrap()
            .iter()
            .any(|r| r.method == "BYE" && r.call_id == call_id)
    });
    assert_eq!(
        http(
            addr,
            "POST",
            &format!("/v1/calls/{call_id}/hangup"),
            None,
            None
        )
        .0,
        404
    );
    assert_eq!(
        http(addr, "POST", "/v1/calls/nope/hangup", None, None).0,
        404
    );
    assert_eq!(
        http(
            addr,
            "POST",
            &format!("/v1/calls/{call_id}/explode"),
            None,
            None
        )
        .0,
        404
    );
    let m = metrics(addr);
    assert!(
        m.iter()
            .any(|(k, v)| k.starts_with("sipfleet_calls_ended_total") && *v >= 1.0),
        "the ended call is counted: {m:#?}"
    );

    // A line added at run time (JSON keys) registers; removing it sends
    // Expires: 0.
    let (status, added) = http(
        addr,
        "POST",
        "/v1/lines",
        None,
        Some(&format!(
            r#"{{"reg.2.address": "1002", "reg.2.auth.password": "pw1002",
                "reg.2.server.1.address": "{}", "reg.2.server.1.transport": "UDPOnly"}}"#,
            lab.domain()
        )),
    );
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["line"], 2);
    read_until(&mut seen, "line 2 registered", &|e| {
        e["event"] == "registered" && e["line"] == 2
    });
    assert_eq!(
        http(addr, "GET", "/v1/lines/2", None, None).1["state"],
        "registered"
    );
    let (status, err) = http(
        addr,
        "POST",
        "/v1/lines",
        None,
        Some(r#"{"reg.2.address": "1002", "reg.2.server.1.address": "x.test"}"#),
    );
    assert_eq!(status, 409, "line 2 exists: {err}");
    let (status, err) = http(
        addr,
        "POST",
        "/v1/lines",
        None,
        Some(r#"{"reg.3.expires": "abc"}"#),
    );
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["field"], "config");
    let (status, removed) = http(addr, "DELETE", "/v1/lines/2", None, None);
    assert_eq!(status, 200, "{removed}");
    wait_until("un-REGISTER of 1002", Duration::from_secs(5), || {
        lab.received(1).unwrap().iter().any(|r| {
            r.method == "REGISTER" && r.from_user.as_deref() == Some("1002") && r.expires == Some(0)
        })
    });
    assert_eq!(http(addr, "GET", "/v1/lines/2", None, None).0, 404);
    // A block that names no server inherits the run's files' servers, as
    // the configured lines do; Poly text works as well as JSON.
    let (status, added) = http(
        addr,
        "POST",
        "/v1/lines",
        None,
        Some("reg.3.address=\"1003\"\nreg.3.auth.password=\"pw1003\"\n"),
    );
    assert_eq!(status, 201, "{added}");
    read_until(&mut seen, "line 3 registered", &|e| {
        e["event"] == "registered" && e["line"] == 3
    });
    assert_eq!(
        http(addr, "POST", "/v1/lines/1/register", None, None).0,
        202
    );

    // Events came in order, each numbered one more than the last.
    let seqs: Vec<u64> = seen.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    drop(ws);
    // A client reconnecting with a replay gets the last events again.
    let (mut again, _) = tungstenite::connect(format!("ws://{addr}/v1/events?replay=3")).unwrap();
    let first = match again.read().unwrap() {
        tungstenite::Message::Text(t) => serde_json::from_str::<Value>(t.as_str()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(
        first["seq"].as_u64().unwrap() >= *seqs.last().unwrap() - 2,
        "{first}"
    );
    assert_eq!(
        http(addr, "GET", "/v1/events?replay=100000", None, None).0,
        400,
        "replay is bounded"
    );

    let status = sigterm_and_wait(&mut child);
    assert_eq!(status.code(), Some(0));
}
