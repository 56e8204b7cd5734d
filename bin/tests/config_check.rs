//! `sipfleet config check` run as a process: exit codes and output for the
//! guide's Appendix A examples, an XML equivalent, layering, environment
//! overrides and bad files.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples")).join(name)
}

fn check(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipfleet"));
    cmd.args(["config", "check"]).args(args);
    for (k, _) in std::env::vars() {
        if k.to_ascii_uppercase().starts_with("SIPFLEET__") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn temp(contents: &str, suffix: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

/// The row for `name` in the section that starts with `section`.
fn row<'a>(out: &'a str, section: &str, name: &str) -> &'a str {
    let start = out
        .find(section)
        .unwrap_or_else(|| panic!("no {section:?} in\n{out}"));
    out[start..]
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} after {section:?} in\n{out}"))
}

fn assert_row(out: &str, section: &str, name: &str, value: &str, source: &str) {
    let r = row(out, section, name);
    let (_, rest) = r.split_once(" = ").unwrap();
    let (v, s) = rest.rsplit_once(" (").unwrap();
    assert_eq!(v.trim(), value, "{r}");
    assert!(
        s.trim_end_matches(')').ends_with(source) || s.starts_with(source),
        "{r}: want source {source}"
    );
}

#[test]
fn udp_appendix_example_is_accepted() {
    let path = example("udp-sbc-failover.cfg");
    let out = check(&[path.as_os_str()], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("configuration OK: 2 line(s)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("line 1: 5551239999\n") && stdout.contains("line 2: 5554560000\n"));
    assert_row(
        &stdout,
        "line 2:",
        "retryTimeOut",
        "500 ms",
        "udp-sbc-failover.cfg:10",
    );
    assert!(row(&stdout, "line 2:", "retryTimeOut")
        .contains("(global voIpProt.server.1.retryTimeOut @ "));
    assert_row(
        &stdout,
        "line 1:",
        "retryMaxCount",
        "3",
        "udp-sbc-failover.cfg:11",
    );
    assert_row(
        &stdout,
        "line 1:",
        "registerRetry.baseTimeOut",
        "60 s",
        "default",
    );
    assert_row(
        &stdout,
        "outbound proxy:",
        "transport",
        "UDPOnly",
        "udp-sbc-failover.cfg:18",
    );
    assert_row(
        &stdout,
        "outbound proxy:",
        "port",
        "0 (SRV lookup)",
        "udp-sbc-failover.cfg:17",
    );
    assert!(stdout.contains("failover (outbound proxy scope):"));
    assert_row(
        &stdout,
        "failover (outbound",
        "failBack.timeout",
        "600 s",
        "udp-sbc-failover.cfg:22",
    );
    assert_row(
        &stdout,
        "failover (outbound",
        "reRegisterOn",
        "1",
        "udp-sbc-failover.cfg:19",
    );
    assert_row(
        &stdout,
        "failover (outbound",
        "enhanced.enable",
        "0",
        "default",
    );
    assert_row(
        &stdout,
        "sip (all lines):",
        "authOptimizedInFailover",
        "1",
        "udp-sbc-failover.cfg:13",
    );
    assert!(stdout.ends_with("warnings: none\n"), "{stdout}");
    assert!(out.stderr.is_empty());
}

#[test]
fn tls_appendix_example_is_accepted() {
    let path = example("tls-keepalive-sbc-failover.cfg");
    let out = check(&[path.as_os_str()], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_row(
        &stdout,
        "line 1:",
        "registerRetry.baseTimeOut",
        "10 s",
        "tls-keepalive-sbc-failover.cfg:14",
    );
    assert_row(
        &stdout,
        "line 1:",
        "registerRetry.maxTimeOut",
        "180 s",
        "tls-keepalive-sbc-failover.cfg:15",
    );
    assert_row(
        &stdout,
        "line 1:",
        "retryTimeOut",
        "0 (RFC 3261 back-off)",
        "tls-keepalive-sbc-failover.cfg:13",
    );
    assert_row(
        &stdout,
        "outbound proxy:",
        "transport",
        "TLS",
        "tls-keepalive-sbc-failover.cfg:24",
    );
    assert_row(
        &stdout,
        "failover (outbound",
        "enhanced.enable",
        "1",
        "tls-keepalive-sbc-failover.cfg:25",
    );
    assert_row(
        &stdout,
        "sip (all lines):",
        "tcpFastFailover.timeout",
        "4000 ms",
        "tls-keepalive-sbc-failover.cfg:18",
    );
    assert_row(
        &stdout,
        "keep-alive:",
        "tcp.sip.tls.enable",
        "1",
        "tls-keepalive-sbc-failover.cfg:31",
    );
    assert_row(
        &stdout,
        "keep-alive:",
        "tcp.sip.persistentConnection",
        "1",
        "tls-keepalive-sbc-failover.cfg:34",
    );
    assert!(stdout.ends_with("warnings: none\n"), "{stdout}");
}

/// The XML file states the same configuration: every effective value is equal,
/// only the sources differ.
#[test]
fn xml_equivalent_gives_the_same_effective_values() {
    let values = |name: &str| {
        let path = example(name);
        let out = check(&[path.as_os_str()], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                l.rsplit_once(" (")
                    .map_or(l, |(v, _)| v)
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let cfg = values("tls-keepalive-sbc-failover.cfg");
    let xml = values("tls-keepalive-sbc-failover.xml");
    assert!(cfg.len() > 60);
    assert_eq!(cfg, xml);
    // and the sources point into the XML file
    let path = example("tls-keepalive-sbc-failover.xml");
    let stdout = text(&check(&[path.as_os_str()], &[]).stdout);
    assert_row(
        &stdout,
        "outbound proxy:",
        "transport",
        "TLS",
        "tls-keepalive-sbc-failover.xml:23",
    );
}

#[test]
fn bad_file_exits_2_with_errors_and_warnings() {
    let bad = temp(
        concat!(
            "reg.1.address=\"1001\"\n",
            "voIpProt.server.1.address=\"core.example.com\"\n",
            "voIpProt.SIP.outboundProxy.failOver.failBack.timeout=\"30\"\n",
            "voIpProt.server.1.retryMaxCont=\"3\"\n",
            "tcpIpApp.keepalive.tcp.idleTransmitInterval=\"5\"\n",
        ),
        ".cfg",
    );
    let out = check(&[bad.path().as_os_str()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let p = bad.path().display();
    let expected = [
        format!("error: {p}:3: voIpProt.SIP.outboundProxy.failOver.failBack.timeout=\"30\" is not allowed; allowed: 0 or 60 to 65535"),
        format!("error: {p}:5: tcpIpApp.keepalive.tcp.idleTransmitInterval=\"5\" is not allowed; allowed: 10 to 7200"),
        format!("warning: {p}:4: voIpProt.server.1.retryMaxCont: unknown key, ignored"),
        "configuration rejected: 2 error(s), 1 warning(s)".to_string(),
    ];
    assert_eq!(stderr.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn unknown_keys_alone_are_warnings_and_exit_0() {
    let extra = temp("some.vendor.key=\"1\"\n", ".cfg");
    let base = example("udp-sbc-failover.cfg");
    let out = check(&[base.as_os_str(), extra.path().as_os_str()], &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "warnings: 1\n  warning: {}:1: some.vendor.key: unknown key, ignored\n",
            extra.path().display()
        )),
        "{stdout}"
    );
}

#[test]
fn later_files_override_and_per_line_keys_override_global_ones() {
    let site = temp(
        "reg.2.server.1.retryMaxCount=\"5\"\nreg.2.outboundProxy.failOver.failBack.timeout=\"0\"\n",
        ".cfg",
    );
    let base = example("udp-sbc-failover.cfg");
    let out = check(&[base.as_os_str(), site.path().as_os_str()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let site_name = site.path().display().to_string();
    assert_row(
        &stdout,
        "line 1:",
        "retryMaxCount",
        "3",
        "udp-sbc-failover.cfg:11",
    );
    assert_row(
        &stdout,
        "line 2:",
        "retryMaxCount",
        "5",
        &format!("{site_name}:1"),
    );
    assert!(row(&stdout, "line 2:", "retryMaxCount")
        .contains("(per-line reg.2.server.1.retryMaxCount @ "));
    let line2 = &stdout[stdout.find("line 2:").unwrap()..];
    assert_row(
        line2,
        "failover (outbound",
        "failBack.timeout",
        "0 (no failback)",
        &format!("{site_name}:2"),
    );
}

#[test]
fn environment_overrides_files_unless_disabled() {
    let base = example("udp-sbc-failover.cfg");
    let env = [("SIPFLEET__VOIPPROT__SERVER__1__RETRYMAXCOUNT", "6")];
    let stdout = text(&check(&[base.as_os_str()], &env).stdout);
    assert_row(
        &stdout,
        "line 1:",
        "retryMaxCount",
        "6",
        "environment SIPFLEET__VOIPPROT__SERVER__1__RETRYMAXCOUNT",
    );
    let stdout = text(&check(&[base.as_os_str(), "--no-env".as_ref()], &env).stdout);
    assert_row(
        &stdout,
        "line 1:",
        "retryMaxCount",
        "3",
        "udp-sbc-failover.cfg:11",
    );
    let out = check(
        &[base.as_os_str()],
        &[("SIPFLEET__VOIPPROT__SERVER__1__RETRYMAXCOUNT", "many")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(
        "error: environment SIPFLEET__VOIPPROT__SERVER__1__RETRYMAXCOUNT: voIpProt.server.1.retryMaxCount=\"many\" is not allowed; allowed: 0 to 65535"
    ));
}

#[test]
fn passwords_are_never_printed() {
    let f = temp(
        "reg.1.address=\"1001\"\nreg.1.auth.userId=\"alice\"\nreg.1.auth.password=\"hunter2\"\nreg.1.server.1.address=\"10.0.0.1\"\n",
        ".cfg",
    );
    let out = check(&[f.path().as_os_str()], &[]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("hunter2"));
    assert_row(&all, "line 1:", "auth.password", "(set, hidden)", ":3");
    assert_row(&all, "line 1:", "auth.userId", "alice", ":2");
}

#[test]
fn unreadable_files_and_bad_xml_exit_2() {
    let out = check(&["/nonexistent/phones.cfg".as_ref()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: /nonexistent/phones.cfg: cannot read:"));
    let xml = temp(
        "<polycomConfig>\n  <reg reg.1.address=\"1\">\n</polycomConfig>\n",
        ".xml",
    );
    let out = check(&[xml.path().as_os_str()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("error: {}:3: malformed XML", xml.path().display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_files_is_a_usage_error() {
    let out = check(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("FILES"));
}

#[test]
fn line_filter_prints_only_the_chosen_lines() {
    let base = example("udp-sbc-failover.cfg");
    let out = check(
        &[
            base.as_os_str(),
            "--line".as_ref(),
            "2".as_ref(),
            "--line".as_ref(),
            "9".as_ref(),
        ],
        &[],
    );
    // Line 9 is not there: reported, and a usage error (exit 2).
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("configuration OK: 2 line(s)\n"));
    assert!(!stdout.contains("line 1:"), "{stdout}");
    assert!(stdout.contains("line 2: 5554560000\n"));
    assert!(stdout.contains("line 9: not configured\n"));
}

#[test]
fn params_lists_the_parameter_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_sipfleet"))
        .args(["config", "params"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .contains("reg.x.server.y.failOver.failBack.timeout\t0 or 60 to 65535\tdefault 3600\n"),
        "{stdout}"
    );
    assert!(stdout.contains("voIpProt.SIP.tcpFastFailover.timeout\t2000 to 5000\tdefault 5000\n"));
    assert!(stdout.contains("dns.cache.NAPTR.x.replacement\t"));
    for key in [
        "voIpProt.server.y.transport",
        "reg.x.server.y.transport",
        "voIpProt.SIP.outboundProxy.transport",
        "reg.x.outboundProxy.transport",
    ] {
        assert!(
            stdout.contains(&format!(
                "{key}\tDNSnaptr, TLS, TCPOnly, TCPpreferred or UDPOnly\tdefault DNSnaptr\n"
            )),
            "{stdout}"
        );
    }
    assert_eq!(
        stdout.lines().count(),
        1 + sipfleet_protocol::config::schema::specs().len()
    );
}

/// The server list and what each server is used for: without an outbound
/// proxy every server is walked in `y` order; with one, only the proxy.
#[test]
fn servers_are_listed_with_their_use() {
    let two = temp(
        "reg.1.address=\"1001\"\n\
         reg.1.server.1.address=\"one.example.com\"\n\
         reg.1.server.2.address=\"two.example.com\"\n\
         reg.1.server.2.transport=\"TCPpreferred\"\n\
         reg.1.server.2.retryMaxCount=\"2\"\n",
        ".cfg",
    );
    let out = check(&[two.path().as_os_str()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("  walk: server 1, then server 2\n"),
        "{stdout}"
    );
    let use1 = row(&stdout, "  server 1:", "use");
    assert!(use1.contains("primary: walked first"), "{use1}");
    let use2 = row(&stdout, "  server 2:", "use");
    assert!(use2.contains("failover: walked after server 1"), "{use2}");
    assert_row(
        &stdout,
        "  server 2:",
        "transport",
        "TCPpreferred",
        "per-line",
    );
    assert_row(&stdout, "  server 2:", "retryMaxCount", "2", "per-line");

    let proxy = temp(
        "reg.1.address=\"1001\"\n\
         voIpProt.server.1.address=\"one.example.com\"\n\
         voIpProt.server.2.address=\"two.example.com\"\n\
         voIpProt.SIP.outboundProxy.address=\"sbc.example.com\"\n",
        ".cfg",
    );
    let out = check(&[proxy.path().as_os_str()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("  walk: outbound proxy only (servers are not walked)\n"),
        "{stdout}"
    );
    let use2 = row(&stdout, "  server 2:", "use");
    assert!(use2.contains("not walked"), "{use2}");
}

/// With `reRegisterOn=0` (the guide's default) the RROFO failback settings
/// are idle: `config check` says so beside them instead of showing them as
/// in force; with `reRegisterOn=1` they read plainly.
#[test]
fn failback_settings_say_when_re_register_on_makes_them_idle() {
    let off = temp(
        "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"x.test\"\n",
        ".cfg",
    );
    let out = text(&check(&[off.path().as_os_str()], &[]).stdout);
    assert!(
        row(&out, "line 1", "failBack.mode").contains("ignored: reRegisterOn=0"),
        "{out}"
    );
    assert!(
        row(&out, "line 1", "failBack.timeout").contains("ignored: reRegisterOn=0"),
        "{out}"
    );
    let on = temp(
        "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"x.test\"\nvoIpProt.server.1.failOver.reRegisterOn=\"1\"\n",
        ".cfg",
    );
    let out = text(&check(&[on.path().as_os_str()], &[]).stdout);
    assert!(
        !row(&out, "line 1", "failBack.mode").contains("ignored"),
        "{out}"
    );
}

/// An IP-literal server has no SRV records: port 0 means the transport's
/// default port, not an SRV lookup.
#[test]
fn an_ip_literal_server_does_not_claim_an_srv_lookup() {
    let cfg = temp(
        "reg.1.address=\"1001\"\nreg.1.server.1.address=\"127.0.0.12\"\n",
        ".cfg",
    );
    let out = text(&check(&[cfg.path().as_os_str()], &[]).stdout);
    let port = row(&out, "line 1", "port");
    assert!(port.contains("an IP address"), "{port}");
    assert!(!port.contains("SRV"), "{port}");
}

/// sipfleet's pacing keys are printed fleet-wide with their effective
/// values and sources; 0 says "no limit".
#[test]
fn register_pacing_is_listed_with_values_and_sources() {
    let defaults = check(&[example("udp-sbc-failover.cfg").as_os_str()], &[]);
    let stdout = text(&defaults.stdout);
    assert_eq!(defaults.status.code(), Some(0), "{stdout}");
    let section = "register pacing (all lines):";
    assert_row(
        &stdout,
        section,
        "sipfleet.register.rate",
        "2000/s",
        "default",
    );
    assert_row(
        &stdout,
        section,
        "sipfleet.register.window",
        "200 per flow",
        "default",
    );
    assert_row(
        &stdout,
        section,
        "sipfleet.register.refreshSpread",
        "10 %",
        "default",
    );

    let f = temp(
        "reg.1.address=\"1001\"\nvoIpProt.server.1.address=\"sbc.example.com\"\n\
         sipfleet.register.rate=\"0\"\nsipfleet.register.window=\"0\"\n\
         sipfleet.register.refreshSpread=\"0\"\n",
        ".cfg",
    );
    let out = check(&[f.path().as_os_str()], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_row(
        &stdout,
        section,
        "sipfleet.register.rate",
        "0 (no limit)",
        ":3",
    );
    assert_row(
        &stdout,
        section,
        "sipfleet.register.window",
        "0 (no limit)",
        ":4",
    );
    assert_row(
        &stdout,
        section,
        "sipfleet.register.refreshSpread",
        "0 (Poly's refresh point exactly)",
        ":5",
    );
}
