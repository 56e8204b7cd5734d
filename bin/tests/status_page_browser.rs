//! The status page (`GET /` of `sipfleet run --listen`) in a real browser:
//! headless Chromium (Debian's `chromium`, from `scripts/lab-install`)
//! driven over its DevTools protocol. The page shows each line's SBC from
//! `/v1/lines`, then follows the event WebSocket: when SBC 1 dies and the
//! lines fail over, the SBC shown changes on screen without a reload. A
//! screenshot is taken (`SIPFLEET_SCREENSHOT=PATH` keeps it, e.g. for
//! `docs/status-page.png`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sipfleet_lab::{Lab, LabConfig, Mode, Transport};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // DevTools' HTTP server may keep the connection open: read the head,
    // then exactly Content-Length bytes.
    let mut reader = BufReader::new(s);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

fn http_post(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Reads `child`'s stderr until a line contains `needle`; answers it.
fn line_with(child: &mut Child, needle: &str, limit: Duration) -> String {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => {
                // Keep draining, so the child never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return line;
            }
            Ok(line) => seen.push(line),
            Err(_) => panic!("no {needle:?} on stderr:\n{}", seen.join("\n")),
        }
    }
}

/// One DevTools command; answers its `result`.
fn cdp(
    ws: &mut tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    id: &mut u64,
    method: &str,
    params: Value,
) -> Value {
    *id += 1;
    let me = *id;
    ws.send(tungstenite::Message::text(
        json!({"id": me, "method": method, "params": params}).to_string(),
    ))
    .unwrap();
    loop {
        if let tungstenite::Message::Text(text) = ws.read().expect("DevTools message") {
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            if v["id"] == me {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }
}

#[test]
fn the_status_page_shows_a_line_moving_to_sbc_2_when_sbc_1_dies() {
    let lab = Lab::start(LabConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fleet.cfg");
    std::fs::write(
        &cfg,
        format!(
            "reg.1.address=\"1001\"\nreg.1.auth.password=\"pw1001\"\n\
             reg.2.address=\"1002\"\nreg.2.auth.password=\"pw1002\"\n\
             voIpProt.server.1.address=\"{}\"\nvoIpProt.server.1.transport=\"UDPOnly\"\n\
             voIpProt.server.1.expires=\"300\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\ntcpIpApp.dns.server=\"{}\"\n",
            lab.domain(),
            lab.dns_addr()
        ),
    )
    .unwrap();
    let mut fleet = Killed(
        Command::new(env!("CARGO_BIN_EXE_sipfleet"))
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let listening = line_with(
        &mut fleet.0,
        "control API listening",
        Duration::from_secs(20),
    );
    let api: SocketAddr = listening
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("{listening}"));

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Killed(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--window-size=1100,700",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (scripts/lab-install installs it)"),
    );
    let devtools = line_with(
        &mut browser.0,
        "DevTools listening on",
        Duration::from_secs(30),
    );
    let port: u16 = devtools
        .rsplit_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{devtools}"));
    let targets: Value = serde_json::from_str(&http_get(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "/json/list",
    ))
    .unwrap();
    let page_ws = targets
        .as_array()
        .and_then(|t| t.iter().find(|t| t["type"] == "page"))
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .unwrap_or_else(|| panic!("no page target: {targets}"))
        .to_string();
    let (mut ws, _) = tungstenite::connect(page_ws).unwrap();
    let mut id = 0;
    cdp(&mut ws, &mut id, "Page.enable", json!({}));
    cdp(
        &mut ws,
        &mut id,
        "Page.navigate",
        json!({"url": format!("http://{api}/")}),
    );

    let mut cell = |ws: &mut _, id: &mut u64, line: u32| -> String {
        let r = cdp(
            ws,
            id,
            "Runtime.evaluate",
            json!({
                "expression": format!(
                    "(document.querySelector('#line-{line} .sbc') || {{}}).textContent || ''"
                ),
                "returnByValue": true,
            }),
        );
        r["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let wait_for = |ws: &mut _,
                    id: &mut u64,
                    what: &str,
                    addr: String,
                    cell: &mut dyn FnMut(&mut _, &mut u64, u32) -> String| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (one, two) = (cell(ws, id, 1), cell(ws, id, 2));
            if one.contains(&addr) && two.contains(&addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the page shows {one:?} and {two:?}, not {addr}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let sbc = |n: usize| lab.sbc(n).addr(Transport::Udp).to_string();
    wait_for(&mut ws, &mut id, "both lines on SBC 1", sbc(1), &mut cell);

    // SBC 1 dies; a REGISTER now meets ICMP and each line fails over.
    lab.set_mode(1, Mode::Dead).unwrap();
    for line in [1, 2] {
        assert_eq!(http_post(api, &format!("/v1/lines/{line}/register")), 202);
    }
    wait_for(
        &mut ws,
        &mut id,
        "both lines on SBC 2, live",
        sbc(2),
        &mut cell,
    );
    let live = cdp(
        &mut ws,
        &mut id,
        "Runtime.evaluate",
        json!({"expression": "document.getElementById('conn').textContent", "returnByValue": true}),
    );
    assert_eq!(
        live["result"]["value"], "live",
        "the page follows the WebSocket"
    );

    let shot = cdp(
        &mut ws,
        &mut id,
        "Page.captureScreenshot",
        json!({"format": "png"}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    let out = std::env::var_os("SIPFLEET_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("status-page.png"));
    std::fs::write(&out, &png).unwrap();
}
