//! `sipfleet routes` against an in-process DNS server on loopback.

#[path = "../../transport/tests/dns_support/mod.rs"]
mod dns_support;

use std::process::{Command, Output};

use dns_support::{TestDns, TestZone};

async fn sipfleet(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sipfleet"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn guide_naptr_table_as_a_table() {
    let dns = TestDns::start(TestZone::guide_naptr("poly.example.com", 300)).await;
    let out = sipfleet(args(&[
        "routes",
        "poly.example.com",
        "--dns",
        &dns.addr.to_string(),
        "--seed",
        "1",
    ]))
    .await;
    let text = String::from_utf8(out.stdout).unwrap();
    println!("{text}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("poly.example.com (DNSnaptr, port 0): 10 route(s)"));
    assert!(lines[1].starts_with("SEL  GROUP  TRANSPORT  NAPTR"));
    let sel: Vec<&str> = lines[2..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sel, ["1", "1", "2", "2", "3", "4", "5", "6", "7", "8"]);
    assert!(
        lines[6].contains("tls") && lines[6].contains("127.148.100.5") && lines[6].contains("5061")
    );
    assert!(
        lines[11].contains("udp")
            && lines[11].contains("127.168.50.64")
            && lines[11].contains("network")
    );
}

#[tokio::test]
async fn guide_naptr_table_as_json() {
    let dns = TestDns::start(TestZone::guide_naptr("poly.example.com", 300)).await;
    let out = sipfleet(args(&[
        "routes",
        "poly.example.com",
        "--dns",
        &dns.addr.to_string(),
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let routes = doc["routes"].as_array().unwrap();
    let sel: Vec<u64> = routes
        .iter()
        .map(|r| r["selection_order"].as_u64().unwrap())
        .collect();
    assert_eq!(sel, [1, 1, 2, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(routes[4]["transport"], "tls");
    assert_eq!(routes[4]["naptr_order"], 150);
    assert_eq!(
        routes[4]["srv_name"],
        "_sips._tcp.poly-sbc-ext.poly.example.com"
    );
    assert_eq!(routes[4]["priority"], 140);
    assert_eq!(routes[4]["target"], "c1.poly.example.com");
    assert_eq!(routes[4]["address"], "127.148.100.5");
    assert_eq!(routes[4]["port"], 5061);
    assert_eq!(routes[4]["source"], "network");
    let ttl = routes[4]["ttl_left_s"].as_u64().unwrap();
    assert!((299..=300).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn explicit_port_and_transport() {
    let dns = TestDns::start(TestZone::new().a("sbc.example.com", 60, &["127.0.0.7"])).await;
    let out = sipfleet(args(&[
        "routes",
        "sbc.example.com",
        "--transport",
        "TCPOnly",
        "--port",
        "5080",
        "--dns",
        &dns.addr.to_string(),
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["routes"][0]["transport"], "tcp");
    assert_eq!(doc["routes"][0]["port"], 5080);
    assert_eq!(dns.total(), 1);
}

#[tokio::test]
async fn config_file_gives_server_static_cache_and_transport() {
    let dns = TestDns::start(TestZone::new()).await;
    let addr = dns.addr;
    dns.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("phone.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tcpIpApp.dns.server=\"{addr}\"\n\
             reg.1.address=\"1001\"\n\
             reg.1.server.1.address=\"sbc.example.com\"\n\
             reg.1.server.1.transport=\"TCPOnly\"\n\
             reg.1.server.1.port=\"5090\"\n\
             dns.cache.A.1.name=\"sbc.example.com\"\n\
             dns.cache.A.1.ttl=\"600\"\n\
             dns.cache.A.1.address=\"127.0.0.42\"\n"
        ),
    )
    .unwrap();
    let out = sipfleet(args(&[
        "routes",
        "sbc.example.com",
        "--config",
        cfg.to_str().unwrap(),
        "--timeout",
        "1",
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["transport_setting"], "TCPOnly");
    let route = &doc["routes"][0];
    assert_eq!(route["address"], "127.0.0.42");
    assert_eq!(route["port"], 5090);
    assert_eq!(route["source"], "static");
    let ttl = route["ttl_left_s"].as_u64().unwrap();
    assert!((599..=600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn unknown_name_fails_with_reason() {
    let dns = TestDns::start(TestZone::new()).await;
    let out = sipfleet(args(&[
        "routes",
        "nowhere.example.com",
        "--transport",
        "udponly",
        "--dns",
        &dns.addr.to_string(),
    ]))
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no route for nowhere.example.com") && err.contains("NXDOMAIN"),
        "{err}"
    );
    let out = sipfleet(args(&["routes", "x", "--transport", "carrier-pigeon"])).await;
    assert!(!out.status.success());
}

#[tokio::test]
async fn ip_literal_needs_no_server() {
    let out = sipfleet(args(&[
        "routes",
        "127.0.0.9",
        "--transport",
        "TLS",
        "--dns",
        "127.0.0.1:9",
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["routes"][0]["port"], 5061);
    assert_eq!(doc["routes"][0]["source"], "literal");
    assert_eq!(doc["routes"][0]["ttl_left_s"], serde_json::Value::Null);
}

/// `--transport TCPpreferred` on an IP literal (no DNS needed): the TCP
/// route first, the UDP route as the next service record.
#[tokio::test]
async fn tcp_preferred_lists_tcp_then_udp() {
    let out = sipfleet(args(&[
        "routes",
        "192.0.2.1",
        "--transport",
        "TCPpreferred",
        "--port",
        "5070",
        "--dns",
        "127.0.0.1:9",
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["transport_setting"], "TCPpreferred");
    let rows: Vec<(u64, String, u64)> = doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"].as_u64().unwrap(),
                r["transport"].as_str().unwrap().to_string(),
                r["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(0, "tcp".to_string(), 5070), (1, "udp".to_string(), 5070)]
    );
}
