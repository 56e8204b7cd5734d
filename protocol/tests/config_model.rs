//! The typed configuration: defaults, ranges, scoping, case-insensitive keys,
//! both file formats, layering and error reporting.

use std::net::{Ipv4Addr, SocketAddr};

use sipfleet_protocol::config::{
    parse_auto, parse_lines, parse_xml, ConfigBuilder, ConfigError, ConfigErrors, FailbackMode,
    FleetConfig, Location, TransportSetting, ValueSource,
};
use sipfleet_protocol::route::Transport;

fn build(files: &[(&str, &str)]) -> Result<FleetConfig, ConfigErrors> {
    let mut b = ConfigBuilder::new();
    for (path, text) in files {
        b.add_source(parse_auto(text, path));
    }
    b.build()
}

fn ok(text: &str) -> FleetConfig {
    match build(&[("a.cfg", text)]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match build(&[("a.cfg", text)]) {
        Ok(_) => panic!("expected errors for {text}"),
        Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn at(path: &str, line: u32) -> Location {
    Location::File {
        path: path.into(),
        line,
    }
}

fn set_at(source: &ValueSource) -> (String, Location) {
    match source {
        ValueSource::Global(s) | ValueSource::Line(s) => (s.key.clone(), s.location.clone()),
        ValueSource::Default => panic!("value came from the default"),
    }
}

const MINIMAL: &str = "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"core.example.com\"\n";

#[test]
fn unset_parameters_take_the_guides_defaults() {
    let c = ok(MINIMAL);
    assert_eq!(c.lines.len(), 1);
    let line = &c.lines[0];
    assert_eq!(line.index, 1);
    assert_eq!(*line.address, "1001");
    assert!(line.outbound_proxy.is_none());
    let s = &line.servers[0];
    assert_eq!(s.index, 1);
    assert_eq!(s.port.get(), None);
    assert_eq!(s.transport.get(), TransportSetting::DnsNaptr);
    assert_eq!(s.transport.get().fixed(), None);
    let t = &line.registration;
    assert_eq!(t.expires_s.get(), 3600);
    assert_eq!(t.retry_timeout_ms.get(), 0);
    assert_eq!(t.retry_max_count.get(), 3);
    assert_eq!(t.register_retry_base_s.get(), 60);
    assert_eq!(t.register_retry_max_s.get(), 60);
    assert_eq!(t.retry_max_count.source, ValueSource::Default);
    let f = &line.failover;
    assert!(!f.re_register_on.get());
    assert!(f.only_signal_with_registered.get());
    assert!(f.fail_registration_on.get());
    assert_eq!(f.failback_mode.get(), FailbackMode::Duration);
    assert_eq!(f.failback_timeout_s.get(), 3600);
    assert!(!f.unregister_on_failback.get());
    assert!(!f.enhanced.get());
    assert!(c.sip.failover_on_503.get());
    assert!(!c.sip.auth_optimized_in_failover.get());
    assert!(c.sip.new_call_on_unregister.get());
    assert!(!c.sip.tcp_fast_failover.get());
    assert_eq!(c.sip.tcp_fast_failover_timeout_ms.get(), 5000);
    assert_eq!(c.sip.line_seize_retries.get(), 10);
    assert!(!c.keepalive.tls_enable.get());
    assert_eq!(c.keepalive.tcp_no_response_interval_s.get(), 20);
    assert_eq!(c.keepalive.tcp_idle_interval_s.get(), 30);
    assert!(!c.keepalive.tcp_persistent_connection.get());
    assert_eq!(c.keepalive.nat_interval_s.get(), 0);
    assert_eq!(c.keepalive.nat_udp_payload.value, b"\r\n\r\n");
    assert_eq!(c.keepalive.nat_tcp_payload.value, b"\r\n\r\n");
    assert!(c.dns.server.is_none() && c.dns.alt_server.is_none());
    assert!(!c.dns.a_network_override.get());
    assert!(!c.dns.dynamic_restore.get());
    assert_eq!(c.dns.dynamic_restore_ttl_s.get(), 120);
    assert!(c.dns.static_a.is_empty());
    assert!(c.warnings.is_empty());
}

#[test]
fn per_line_server_keys_override_global_ones_field_by_field() {
    let c = ok(concat!(
        "reg.1.address=\"1001\"\n",
        "reg.2.address=\"1002\"\n",
        "voIpProt.server.1.address=\"core.example.com\"\n",
        "voIpProt.server.1.retryMaxCount=\"5\"\n",
        "voIpProt.server.1.retryTimeOut=\"500\"\n",
        "reg.2.server.1.retryMaxCount=\"2\"\n",
        "reg.2.server.1.failOver.failBack.timeout=\"0\"\n",
        "reg.2.server.2.address=\"backup.example.com\"\n",
        "reg.2.server.2.port=\"5070\"\n",
        "reg.2.server.2.transport=\"udponly\"\n",
    ));
    let (l1, l2) = (&c.lines[0], &c.lines[1]);
    assert_eq!(l1.registration.retry_max_count.get(), 5);
    assert_eq!(
        set_at(&l1.registration.retry_max_count.source),
        ("voIpProt.server.1.retryMaxCount".into(), at("a.cfg", 4))
    );
    assert!(matches!(
        l1.registration.retry_max_count.source,
        ValueSource::Global(_)
    ));
    assert_eq!(l2.registration.retry_max_count.get(), 2);
    assert!(matches!(
        l2.registration.retry_max_count.source,
        ValueSource::Line(_)
    ));
    assert_eq!(
        set_at(&l2.registration.retry_max_count.source),
        ("reg.2.server.1.retryMaxCount".into(), at("a.cfg", 6))
    );
    // not overridden per line: the global value
    assert_eq!(l2.registration.retry_timeout_ms.get(), 500);
    assert_eq!(l2.failover.failback_timeout_s.get(), 0);
    assert_eq!(l1.failover.failback_timeout_s.get(), 3600);
    assert_eq!(l1.servers.len(), 1);
    assert_eq!(l2.servers.len(), 2);
    let backup = &l2.servers[1];
    assert_eq!(backup.index, 2);
    assert_eq!(*backup.address, "backup.example.com");
    assert_eq!(backup.port.get(), Some(5070));
    assert_eq!(backup.transport.get().fixed(), Some(Transport::Udp));
    // server 2 has its own scope: server 1's global retryMaxCount does not apply
    assert_eq!(backup.timers.retry_max_count.get(), 3);
}

#[test]
fn failover_comes_from_the_outbound_proxy_scope_when_a_proxy_is_set() {
    let c = ok(concat!(
        "reg.1.address=\"1001\"\n",
        "reg.2.address=\"1002\"\n",
        "reg.2.outboundProxy.address=\"sbc2.example.com\"\n",
        "reg.2.outboundProxy.failOver.failBack.mode=\"Registration\"\n",
        "voIpProt.server.1.address=\"core.example.com\"\n",
        "voIpProt.server.1.failOver.reRegisterOn=\"0\"\n",
        "voIpProt.server.1.failOver.failBack.timeout=\"120\"\n",
        "voIpProt.SIP.outboundProxy.failOver.reRegisterOn=\"1\"\n",
        "voIpProt.SIP.outboundProxy.failOver.failBack.timeout=\"600\"\n",
    ));
    // line 1 has no proxy at any scope... except the global proxy family has no
    // address, so the server scope applies
    let l1 = &c.lines[0];
    assert!(l1.outbound_proxy.is_none());
    assert!(!l1.failover.re_register_on.get());
    assert_eq!(l1.failover.failback_timeout_s.get(), 120);
    let l2 = &c.lines[1];
    let proxy = l2.outbound_proxy.as_ref().unwrap();
    assert_eq!(*proxy.address, "sbc2.example.com");
    assert!(l2.failover.re_register_on.get());
    assert_eq!(l2.failover.failback_timeout_s.get(), 600);
    assert_eq!(l2.failover.failback_mode.get(), FailbackMode::Registration);
    assert!(matches!(
        l2.failover.failback_mode.source,
        ValueSource::Line(_)
    ));
    assert!(matches!(
        l2.failover.re_register_on.source,
        ValueSource::Global(_)
    ));
}

#[test]
fn global_outbound_proxy_applies_to_every_line_and_per_line_overrides_it() {
    let c = ok(concat!(
        "reg.1.address=\"1001\"\n",
        "reg.2.address=\"1002\"\n",
        "voIpProt.server.1.address=\"core.example.com\"\n",
        "voIpProt.SIP.outboundProxy.address=\"sbc.example.com\"\n",
        "voIpProt.SIP.outboundProxy.transport=\"TLS\"\n",
        "reg.2.outboundProxy.address=\"sbc-b.example.com\"\n",
        "reg.2.outboundProxy.port=\"5062\"\n",
    ));
    let p1 = c.lines[0].outbound_proxy.as_ref().unwrap();
    let p2 = c.lines[1].outbound_proxy.as_ref().unwrap();
    assert_eq!(
        (p1.address.as_str(), p1.port.get()),
        ("sbc.example.com", None)
    );
    assert_eq!(
        (p2.address.as_str(), p2.port.get()),
        ("sbc-b.example.com", Some(5062))
    );
    assert_eq!(p2.transport.get(), TransportSetting::Tls);
    assert_eq!(p2.index, 0);
}

#[test]
fn keys_match_case_insensitively_and_are_stored_canonically() {
    let c = ok(concat!(
        "REG.1.ADDRESS=\"1001\"\n",
        "voipprot.SERVER.1.Address=\"core.example.com\"\n",
        "tcpIpApp.Keepalive.tcp.noResponseTransmitInterval=\"40\"\n",
        "nat.Keepalive.interval=\"25\"\n",
        "VOIPPROT.sip.TCPFASTFAILOVER=\"1\"\n",
    ));
    assert_eq!(c.keepalive.tcp_no_response_interval_s.get(), 40);
    assert_eq!(
        set_at(&c.keepalive.tcp_no_response_interval_s.source).0,
        "tcpIpApp.keepalive.tcp.noResponseTransmitInterval"
    );
    assert_eq!(c.keepalive.nat_interval_s.get(), 25);
    assert!(c.sip.tcp_fast_failover.get());
    assert_eq!(
        set_at(&c.lines[0].servers[0].address.source).0,
        "voIpProt.server.1.address"
    );
    // differently spelled keys are the same parameter: the later one wins
    let c = ok(concat!(
        "tcpIpApp.keepalive.tcp.idleTransmitInterval=\"60\"\n",
        "tcpIpApp.KEEPALIVE.tcp.idleTransmitInterval=\"90\"\n",
    ));
    assert_eq!(c.keepalive.tcp_idle_interval_s.get(), 90);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].message.contains("overrides line 1"));
}

#[test]
fn enumerations_are_case_insensitive() {
    for (written, expected) in [
        ("dnsNaptr", TransportSetting::DnsNaptr),
        ("DNSNaptr", TransportSetting::DnsNaptr),
        ("tls", TransportSetting::Tls),
        ("TCPOnly", TransportSetting::TcpOnly),
        ("UDPONLY", TransportSetting::UdpOnly),
        ("TCPpreferred", TransportSetting::TcpPreferred),
        ("tcpPreferred", TransportSetting::TcpPreferred),
    ] {
        let c = ok(&format!(
            "{MINIMAL}voIpProt.server.1.transport=\"{written}\"\n"
        ));
        assert_eq!(c.lines[0].servers[0].transport.get(), expected, "{written}");
    }
    for (written, expected) in [
        ("Duration", FailbackMode::Duration),
        ("newRequests", FailbackMode::NewRequests),
        ("DNSTTL", FailbackMode::DnsTtl),
        ("registration", FailbackMode::Registration),
    ] {
        let c = ok(&format!(
            "{MINIMAL}voIpProt.server.1.failOver.failBack.mode=\"{written}\"\n"
        ));
        assert_eq!(
            c.lines[0].failover.failback_mode.get(),
            expected,
            "{written}"
        );
    }
}

#[test]
fn range_boundaries() {
    let accepted = [
        "voIpProt.server.1.failOver.failBack.timeout=\"0\"",
        "voIpProt.server.1.failOver.failBack.timeout=\"60\"",
        "voIpProt.server.1.failOver.failBack.timeout=\"65535\"",
        "voIpProt.server.1.retryMaxCount=\"0\"",
        "voIpProt.server.1.retryTimeOut=\"65535\"",
        "voIpProt.server.1.registerRetry.baseTimeOut=\"10\"",
        "voIpProt.server.1.registerRetry.maxTimeOut=\"1800\"",
        "voIpProt.SIP.tcpFastFailover.timeout=\"2000\"",
        "voIpProt.SIP.lineSeize.retries=\"3\"",
        "tcpIpApp.keepalive.tcp.idleTransmitInterval=\"7200\"",
        "nat.keepalive.interval=\"3600\"",
        "dns.cache.dynamicRestore.ttl=\"90\"",
        "voIpProt.server.1.port=\"65535\"",
        "voIpProt.server.1.port=\"\"",
    ];
    for line in accepted {
        ok(&format!("{MINIMAL}{line}\n"));
    }
    let rejected = [
        (
            "voIpProt.server.1.failOver.failBack.timeout=\"59\"",
            "0 or 60 to 65535",
        ),
        (
            "voIpProt.server.1.failOver.failBack.timeout=\"65536\"",
            "0 or 60 to 65535",
        ),
        ("voIpProt.server.1.retryMaxCount=\"-1\"", "0 to 65535"),
        (
            "voIpProt.server.1.registerRetry.baseTimeOut=\"9\"",
            "10 to 120",
        ),
        (
            "voIpProt.server.1.registerRetry.maxTimeOut=\"1801\"",
            "60 to 1800",
        ),
        (
            "voIpProt.SIP.tcpFastFailover.timeout=\"1999\"",
            "2000 to 5000",
        ),
        ("voIpProt.SIP.lineSeize.retries=\"11\"", "3 to 10"),
        (
            "tcpIpApp.keepalive.tcp.noResponseTransmitInterval=\"4\"",
            "5 to 120",
        ),
        ("dns.cache.dynamicRestore.ttl=\"601\"", "90 to 600"),
        ("voIpProt.SIP.failoverOn503Response=\"2\"", "0 or 1"),
        ("voIpProt.SIP.failoverOn503Response=\"true\"", "0 or 1"),
        ("voIpProt.server.1.port=\"65536\"", "0 to 65535"),
        (
            "voIpProt.server.1.transport=\"SCTP\"",
            "DNSnaptr, TLS, TCPOnly, TCPpreferred or UDPOnly",
        ),
        (
            "voIpProt.server.1.failOver.failBack.mode=\"never\"",
            "duration, newRequests",
        ),
        ("voIpProt.server.1.retryTimeOut=\"1.5\"", "0 to 65535"),
        ("voIpProt.server.1.expires=\"5\"", "10 to 2147483647"),
        ("voIpProt.server.1.address=\"bad host\"", "host name"),
        ("tcpIpApp.dns.server=\"dns.example.com\"", "IP address"),
        ("dns.cache.A.1.address=\"10.0.0.256\"", "IPv4"),
    ];
    for (line, allowed) in rejected {
        let errs = errors(&format!("{MINIMAL}{line}\n"));
        assert_eq!(errs.len(), 1, "{line}: {errs:?}");
        assert!(errs[0].contains(allowed), "{line}: {}", errs[0]);
        assert!(errs[0].starts_with("a.cfg:3: "), "{}", errs[0]);
    }
}

#[test]
fn error_names_key_value_range_file_and_line() {
    let e = build(&[(
        "site/phones.cfg",
        &format!("{MINIMAL}\n# c\nreg.1.server.1.failOver.failBack.timeout = \"30\"\n"),
    )])
    .unwrap_err();
    assert_eq!(
        e.errors,
        vec![ConfigError::Value {
            key: "reg.1.server.1.failOver.failBack.timeout".into(),
            value: "30".into(),
            allowed: "0 or 60 to 65535".into(),
            location: at("site/phones.cfg", 5),
        }]
    );
    assert_eq!(
        e.errors[0].to_string(),
        "site/phones.cfg:5: reg.1.server.1.failOver.failBack.timeout=\"30\" is not allowed; allowed: 0 or 60 to 65535"
    );
}

#[test]
fn all_errors_are_collected_with_the_warnings() {
    let e = build(&[(
        "a.cfg",
        concat!(
            "reg.1.address=\"1001\"\n",
            "voIpProt.server.1.address=\"core.example.com\"\n",
            "voIpProt.server.1.retryMaxCount=\"x\"\n",
            "voIpProt.server.1.bogus=\"1\"\n",
            "this line is wrong\n",
            "voIpProt.SIP.lineSeize.retries=\"99\"\n",
        ),
    )])
    .unwrap_err();
    let lines: Vec<u32> = e
        .errors
        .iter()
        .map(|e| match e {
            ConfigError::Value {
                location: Location::File { line, .. },
                ..
            }
            | ConfigError::Syntax {
                location: Location::File { line, .. },
                ..
            } => *line,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lines, vec![5, 3, 6]); // syntax errors first (parser), then values
    assert_eq!(e.warnings.len(), 1);
    assert_eq!(e.warnings[0].key, "voIpProt.server.1.bogus");
    assert_eq!(e.warnings[0].location, at("a.cfg", 4));
    assert!(e.to_string().contains("3 configuration error(s)"));
}

#[test]
fn an_overridden_bad_value_is_still_an_error() {
    let e = build(&[
        (
            "a.cfg",
            &format!("{MINIMAL}voIpProt.server.1.retryMaxCount=\"70000\"\n"),
        ),
        ("b.cfg", "voIpProt.server.1.retryMaxCount=\"4\"\n"),
    ])
    .unwrap_err();
    assert_eq!(e.errors.len(), 1);
}

#[test]
fn unknown_keys_warn_with_file_and_line() {
    let c = ok(&format!(
        "{MINIMAL}\nvoIpProt.server.1.retryMaxCont=\"3\"\nfoo=bar\n"
    ));
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        vec![
            "a.cfg:4: voIpProt.server.1.retryMaxCont: unknown key, ignored",
            "a.cfg:5: foo: unknown key, ignored"
        ]
    );
}

#[test]
fn indices_are_range_checked() {
    // large line indices are allowed for load tests
    let c = ok("reg.100000.address=\"9\"\nvoIpProt.server.1.address=\"core.example.com\"\n");
    assert_eq!(c.lines[0].index, 100_000);
    for (key, allowed) in [
        ("reg.0.address", "1 to 100000"),
        ("reg.100001.address", "1 to 100000"),
        ("voIpProt.server.9.address", "1 to 8"),
        ("reg.1.server.0.port", "1 to 8"),
        ("dns.cache.A.19.name", "1 to 18"),
        ("reg.99999999999999999999999.address", "1 to 100000"),
    ] {
        let errs = errors(&format!("{MINIMAL}{key}=\"1\"\n"));
        assert_eq!(errs.len(), 1, "{key}");
        assert!(
            errs[0].contains(allowed) && errs[0].contains(key),
            "{}",
            errs[0]
        );
    }
}

#[test]
fn later_sources_override_earlier_ones_and_record_where() {
    let c = build(&[
        (
            "base.cfg",
            &format!("{MINIMAL}voIpProt.server.1.retryTimeOut=\"500\"\n"),
        ),
        ("site.cfg", "\nvoIpProt.server.1.retryTimeOut=\"1000\"\n"),
    ])
    .unwrap();
    let t = &c.lines[0].registration.retry_timeout_ms;
    assert_eq!(t.get(), 1000);
    assert_eq!(set_at(&t.source).1, at("site.cfg", 2));
    assert!(
        c.warnings.is_empty(),
        "overriding across files is not a warning"
    );
    assert_eq!(
        t.source.to_string(),
        "global voIpProt.server.1.retryTimeOut @ site.cfg:2"
    );
}

#[test]
fn line_format_syntax() {
    let p = parse_lines(
        concat!(
            "# comment\n",
            "\n",
            "   reg.1.address   =   \"5551239999\"   \n",
            "reg.1.displayName=\"A \\\"quoted\\\" name\" # trailing comment\n",
            "reg.1.auth.userId=unquoted # comment\n",
            "nat.keepalive.udp.payload=\"\\r\\n\"\n",
            "reg.1.label=\"x\" junk\n",
            "reg.1.auth.password=\"open\n",
            "=\"x\"\n",
            "no equals sign\n",
            "bad key!=\"1\"\n",
        ),
        "f.cfg",
    );
    let got: Vec<(&str, &str)> = p
        .params
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("reg.1.address", "5551239999"),
            ("reg.1.displayName", "A \"quoted\" name"),
            ("reg.1.auth.userId", "unquoted"),
            ("nat.keepalive.udp.payload", "\\r\\n"),
        ]
    );
    assert_eq!(p.params[0].location, at("f.cfg", 3));
    let bad: Vec<u32> = p
        .errors
        .iter()
        .map(|e| match e {
            ConfigError::Syntax {
                location: Location::File { line, .. },
                ..
            } => *line,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bad, vec![7, 8, 9, 10, 11]);
}

const XML: &str = r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?>
<!-- sipfleet sample -->
<polycomConfig xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="polycomConfig.xsd">
  <reg reg.1.address="5551239999"
       reg.1.auth.password="s3cret">
    <reg.2 reg.2.address="5554560000"/>
  </reg>
  <voIpProt>
    <voIpProt.server voIpProt.server.1.address="server.coreSide.com" voIpProt.server.1.retryTimeOut="500"/>
    <voIpProt.SIP voIpProt.SIP.outboundProxy.transport="UDPOnly"
        voIpProt.SIP.outboundProxy.address="sbc.accessSide.com"/>
  </voIpProt>
  <tcpIpApp tcpIpApp.Keepalive.tcp.idleTransmitInterval="45" tcpIpApp.dns.server="127.0.0.1:5353"/>
</polycomConfig>
"#;

#[test]
fn poly_xml_attributes_at_any_depth_with_line_numbers() {
    let p = parse_xml(XML, "p.xml");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let keys: Vec<(&str, Location)> = p
        .params
        .iter()
        .map(|p| (p.key.as_str(), p.location.clone()))
        .collect();
    assert_eq!(keys.len(), 9, "{keys:?}");
    assert_eq!(keys[0], ("reg.1.address", at("p.xml", 4)));
    assert_eq!(keys[1], ("reg.1.auth.password", at("p.xml", 5)));
    assert_eq!(keys[2], ("reg.2.address", at("p.xml", 6)));
    assert_eq!(
        keys[6],
        ("voIpProt.SIP.outboundProxy.address", at("p.xml", 11))
    );
    let c = build(&[("p.xml", XML)]).unwrap();
    assert_eq!(c.lines.len(), 2);
    assert_eq!(c.lines[1].servers[0].timers.retry_timeout_ms.get(), 500);
    assert_eq!(c.lines[0].auth_password.value.expose(), "s3cret");
    assert_eq!(c.keepalive.tcp_idle_interval_s.get(), 45);
    assert_eq!(
        c.dns.server.as_ref().map(|s| s.get()),
        Some("127.0.0.1:5353".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(
        c.lines[0].outbound_proxy.as_ref().unwrap().transport.get(),
        TransportSetting::UdpOnly
    );
}

#[test]
fn malformed_xml_is_an_error_with_a_line() {
    let p = parse_xml(
        "<polycomConfig>\n<reg reg.1.address=\"1\">\n</polycomConfig>\n",
        "bad.xml",
    );
    assert_eq!(p.errors.len(), 1);
    assert!(
        matches!(
            &p.errors[0],
            ConfigError::Syntax {
                location: Location::File { line: 3, .. },
                ..
            }
        ),
        "{:?}",
        p.errors
    );
    let p = parse_xml("<config a=\"1\"/>", "bad.xml");
    assert!(p.errors[0].to_string().contains("expected <polycomConfig>"));
}

#[test]
fn static_dns_cache_entries_and_servers() {
    let c = ok(&format!(
        "{MINIMAL}{}",
        concat!(
            "tcpIpApp.dns.server=\"10.0.0.53\"\n",
            "tcpIpApp.dns.altServer=\"[::1]:5300\"\n",
            "dns.cache.A.networkOverride=\"1\"\n",
            "dns.cache.dynamicRestore.enable=\"1\"\n",
            "dns.cache.dynamicRestore.ttl=\"300\"\n",
            "dns.cache.A.2.name=\"sbc1.example.com\"\n",
            "dns.cache.A.2.address=\"192.0.2.10\"\n",
            "dns.cache.SRV.1.name=\"_sip._udp.example.com\"\n",
            "dns.cache.SRV.1.priority=\"10\"\n",
            "dns.cache.SRV.1.weight=\"5\"\n",
            "dns.cache.SRV.1.port=\"5060\"\n",
            "dns.cache.SRV.1.ttl=\"60\"\n",
            "dns.cache.SRV.1.target=\"sbc1.example.com\"\n",
            "dns.cache.NAPTR.1.name=\"example.com\"\n",
            "dns.cache.NAPTR.1.order=\"50\"\n",
            "dns.cache.NAPTR.1.preference=\"10\"\n",
            "dns.cache.NAPTR.1.flags=\"s\"\n",
            "dns.cache.NAPTR.1.service=\"SIP+D2U\"\n",
            "dns.cache.NAPTR.1.replacement=\"_sip._udp.example.com\"\n",
        )
    ));
    let d = &c.dns;
    assert_eq!(
        d.server.as_ref().unwrap().get(),
        "10.0.0.53:53".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        d.alt_server.as_ref().unwrap().get(),
        "[::1]:5300".parse::<SocketAddr>().unwrap()
    );
    assert!(d.a_network_override.get() && d.dynamic_restore.get());
    assert_eq!(d.dynamic_restore_ttl_s.get(), 300);
    assert_eq!(d.static_a.len(), 1);
    assert_eq!(d.static_a[0].index, 2);
    assert_eq!(d.static_a[0].ttl_s, 300);
    assert_eq!(d.static_a[0].address, Ipv4Addr::new(192, 0, 2, 10));
    let srv = &d.static_srv[0];
    assert_eq!(
        (srv.priority, srv.weight, srv.port, srv.ttl_s),
        (10, 5, 5060, 60)
    );
    assert_eq!(srv.target, "sbc1.example.com");
    let n = &d.static_naptr[0];
    assert_eq!((n.order, n.preference), (50, 10));
    assert_eq!((n.flags.as_str(), n.service.as_str()), ("s", "SIP+D2U"));
    assert_eq!(n.replacement, "_sip._udp.example.com");
}

#[test]
fn incomplete_cache_entries_are_errors_and_orphans_warn() {
    let errs = errors(&format!("{MINIMAL}dns.cache.A.1.name=\"a.example.com\"\n"));
    assert_eq!(
        errs,
        vec!["a.cfg:3: dns.cache.A.1.address: is required when the name is set"]
    );
    let c = ok(&format!("{MINIMAL}dns.cache.SRV.4.port=\"5060\"\n"));
    assert!(c.dns.static_srv.is_empty());
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0]
        .message
        .contains("dns.cache.SRV.4.name is not set"));
}

#[test]
fn a_line_needs_a_registrar_and_stray_line_keys_warn() {
    let errs = errors("reg.1.address=\"1001\"\n");
    assert!(errs[0].contains("line 1 has no registrar"), "{errs:?}");
    let c = ok(&format!("{MINIMAL}reg.3.auth.userId=\"u3\"\n"));
    assert_eq!(c.lines.len(), 1);
    assert!(c.warnings[0].message.contains("line 3 is not configured"));
    // a per-line server is enough
    let c = ok("reg.1.address=\"1001\"\nreg.1.server.2.address=\"10.0.0.1\"\n");
    assert_eq!(c.lines[0].servers[0].index, 2);
}

#[test]
fn passwords_never_appear_in_debug_or_errors() {
    let c = ok(&format!(
        "{MINIMAL}reg.1.auth.password=\"hunter2\"\nreg.1.auth.userId=\"alice\"\n"
    ));
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"));
    assert_eq!(c.lines[0].auth_password.value.expose(), "hunter2");
    let long = "p".repeat(300);
    let e = build(&[(
        "a.cfg",
        &format!("{MINIMAL}reg.1.auth.password=\"{long}\"\n"),
    )])
    .unwrap_err();
    let text = e.to_string();
    assert!(
        !text.contains(&long) && text.contains("reg.1.auth.password=\"***\""),
        "{text}"
    );
    let p = parse_lines("reg.1.auth.password=\"hunter2\"\n", "a.cfg");
    assert!(!format!("{p:?}").contains("hunter2"));
}

#[test]
fn keepalive_payloads_decode_escapes() {
    let c = ok(&format!(
        "{MINIMAL}nat.keepalive.tcp.payload=\"ping\\r\\n\\\\x\"\n"
    ));
    assert_eq!(c.keepalive.nat_tcp_payload.value, b"ping\r\n\\x");
}

#[test]
fn line_helpers() {
    let c = ok(concat!(
        "reg.1.address=\"1001\"\n",
        "reg.7.address=\"1007\"\n",
        "reg.7.auth.userId=\"u7\"\n",
        "reg.7.outboundProxy.address=\"sbc.example.com\"\n",
        "voIpProt.server.1.address=\"core.example.com\"\n",
        "voIpProt.server.2.address=\"core2.example.com\"\n",
    ));
    assert!(c.line(2).is_none());
    let l1 = c.line(1).unwrap();
    let l7 = c.line(7).unwrap();
    assert_eq!(l1.auth_username(), "1001");
    assert_eq!(l7.auth_username(), "u7");
    assert_eq!(l7.digest_client().username(), "u7");
    let hops: Vec<&str> = l1.first_hops().iter().map(|s| s.address.as_str()).collect();
    assert_eq!(hops, vec!["core.example.com", "core2.example.com"]);
    let hops: Vec<&str> = l7.first_hops().iter().map(|s| s.address.as_str()).collect();
    assert_eq!(hops, vec!["sbc.example.com"]);
}

/// Property tests that assert only that nothing panics.
mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn line_parser_never_panics(text in "(\\PC|[\"=#\\\\.\n ])*") {
            let p = parse_lines(&text, "p.cfg");
            let mut b = ConfigBuilder::new();
            b.add_source(p);
            let _ = b.build();
        }

        #[test]
        fn xml_parser_never_panics(text in "(\\PC|[<>\"=/ \n])*") {
            let _ = parse_xml(&format!("<polycomConfig {text}/>"), "p.xml");
            let _ = parse_xml(&text, "p.xml");
        }

        #[test]
        fn known_keys_with_arbitrary_values_never_panics(value in "\\PC{0,12}", which in 0usize..400) {
            let specs = sipfleet_protocol::config::schema::specs();
            let spec = specs[which % specs.len()];
            let key = spec.template.replace(".x.", ".1.").replace(".y.", ".2.");
            let _ = build(&[("a.cfg", &format!("{MINIMAL}{key}=\"{}\"\n", value.replace('"', "")))]);
        }
    }
}

#[test]
fn byte_order_marks_are_ignored() {
    let xml = format!("\u{feff}{XML}");
    let c = build(&[("p.xml", &xml)]).unwrap();
    assert_eq!(c.lines.len(), 2);
    let c = build(&[("a.cfg", &format!("\u{feff}{MINIMAL}"))]).unwrap();
    assert_eq!(c.lines.len(), 1);
}

/// `TCPpreferred` is a transport kind wherever a transport is set: a
/// server at either scope and the outbound proxy at either scope.
#[test]
fn tcp_preferred_is_accepted_by_every_transport_key() {
    let c = ok(concat!(
        "reg.1.address=\"1001\"\n",
        "voIpProt.server.1.address=\"a.example.com\"\n",
        "voIpProt.server.1.transport=\"TCPpreferred\"\n",
        "reg.1.server.2.address=\"b.example.com\"\n",
        "reg.1.server.2.transport=\"TCPpreferred\"\n",
        "voIpProt.SIP.outboundProxy.address=\"p.example.com\"\n",
        "voIpProt.SIP.outboundProxy.transport=\"TCPpreferred\"\n",
        "reg.2.address=\"1002\"\n",
        "reg.2.outboundProxy.address=\"q.example.com\"\n",
        "reg.2.outboundProxy.transport=\"tcppreferred\"\n",
    ));
    let l1 = &c.lines[0];
    assert_eq!(
        l1.servers[0].transport.get(),
        TransportSetting::TcpPreferred
    );
    assert_eq!(
        l1.servers[1].transport.get(),
        TransportSetting::TcpPreferred
    );
    let proxy = l1.outbound_proxy.as_ref().unwrap();
    assert_eq!(proxy.transport.get(), TransportSetting::TcpPreferred);
    assert_eq!(proxy.transport.get().as_str(), "TCPpreferred");
    let p2 = c.lines[1].outbound_proxy.as_ref().unwrap();
    assert_eq!(p2.transport.get(), TransportSetting::TcpPreferred);
    // Two transports, TCP first: no single fixed one.
    assert_eq!(proxy.transport.get().fixed(), None);
    assert_eq!(
        proxy.transport.get().transports(),
        &[Transport::Tcp, Transport::Udp]
    );
}

#[test]
fn call_limits_and_the_socket_ceiling_have_defaults_scopes_and_ranges() {
    let c = ok(MINIMAL);
    let f = &c.lines[0].features;
    assert_eq!(f.calls_per_line.get(), 24);
    assert_eq!(f.ring_timeout_s.get(), 60);
    assert_eq!(
        c.resources.sockets_max.get(),
        0,
        "0: derived from RLIMIT_NOFILE"
    );

    let c = ok(&format!(
        "{MINIMAL}reg.2.address=\"1002\"\ncall.callsPerLineKey=\"4\"\nreg.2.callsPerLineKey=\"2\"\n\
         sipfleet.call.ringTimeout=\"30\"\nsipfleet.sockets.max=\"500\"\n"
    ));
    assert_eq!(c.line(1).unwrap().features.calls_per_line.get(), 4);
    assert_eq!(c.line(2).unwrap().features.calls_per_line.get(), 2);
    assert_eq!(c.line(2).unwrap().features.ring_timeout_s.get(), 30);
    assert_eq!(
        c.line(2).unwrap().features.ring_timeout(),
        Some(std::time::Duration::from_secs(30))
    );
    let off = ok(&format!("{MINIMAL}sipfleet.call.ringTimeout=\"0\"\n"));
    assert_eq!(off.lines[0].features.ring_timeout(), None);
    assert_eq!(c.resources.sockets_max.get(), 500);

    let e = errors(&format!("{MINIMAL}call.callsPerLineKey=\"25\"\n"));
    assert!(
        e[0].contains("call.callsPerLineKey") && e[0].contains("1 to 24"),
        "{e:?}"
    );
    let e = errors(&format!("{MINIMAL}sipfleet.call.ringTimeout=\"3601\"\n"));
    assert!(e[0].contains("0 to 3600"), "{e:?}");
}

/// sipfleet's pacing keys: fleet-wide, with defaults from the schema, 0
/// meaning "no limit", ranges checked; the registration settings of a fleet
/// line carry them (a line alone does not: it is one phone).
#[test]
fn register_pacing_keys_have_defaults_ranges_and_reach_a_fleet_lines_settings() {
    use sipfleet_protocol::line_setup::{fleet_registration_settings, pacing_settings};
    use sipfleet_protocol::registration::RegistrationSettings;

    let c = ok(MINIMAL);
    let p = &c.pacing;
    assert_eq!(p.rate.get(), 2000);
    assert_eq!(p.window.get(), 200);
    assert_eq!(p.refresh_spread_pct.get(), 10);
    assert_eq!(p.rate.source, ValueSource::Default);
    let s = fleet_registration_settings(&c.lines[0], &c);
    assert!(s.paced);
    assert_eq!(s.refresh_spread_pct, 10);
    let pacer = pacing_settings(p).expect("the default paces");
    assert_eq!((pacer.rate, pacer.window, pacer.burst), (2000, 200, 20));
    // A line alone (a phone, the guide's timelines) is neither paced nor
    // spread.
    let alone = RegistrationSettings::default();
    assert!(!alone.paced);
    assert_eq!(alone.refresh_spread_pct, 0);

    let c = ok(&format!(
        "{MINIMAL}sipfleet.register.rate=\"100\"\nSIPFLEET.register.WINDOW=\"5\"\n\
         sipfleet.register.refreshSpread=\"0\"\n"
    ));
    assert_eq!(c.pacing.rate.get(), 100);
    assert_eq!(c.pacing.window.get(), 5);
    assert!(matches!(c.pacing.window.source, ValueSource::Global(_)));
    let s = fleet_registration_settings(&c.lines[0], &c);
    assert_eq!(s.refresh_spread_pct, 0);

    // Both limits off: no pacer at all, lines start at once.
    let c = ok(&format!(
        "{MINIMAL}sipfleet.register.rate=\"0\"\nsipfleet.register.window=\"0\"\n"
    ));
    assert_eq!(pacing_settings(&c.pacing), None);
    assert!(!fleet_registration_settings(&c.lines[0], &c).paced);

    let e = errors(&format!(
        "{MINIMAL}sipfleet.register.refreshSpread=\"51\"\n"
    ));
    assert!(
        e[0].contains("sipfleet.register.refreshSpread") && e[0].contains("0 to 50"),
        "{e:?}"
    );
    let e = errors(&format!("{MINIMAL}sipfleet.register.rate=\"-1\"\n"));
    assert!(e[0].contains("sipfleet.register.rate"), "{e:?}");
}
