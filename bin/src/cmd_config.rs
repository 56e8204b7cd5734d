//! `sipfleet config check FILE...`: validate configuration files and print
//! each line's effective settings with where every value came from.
//!
//! Exit status: 0 when the configuration is usable (warnings allowed), 2 when
//! it has errors (all of them are printed to stderr). Passwords are never
//! printed, only whether one is set.

use std::fmt::Display;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use sipfleet::config_files;

use crate::output;
use sipfleet_protocol::config::{
    schema, FailoverSettings, FleetConfig, LineConfig, RegistrationTimers, ServerConfig, Sourced,
    ValueSource,
};

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate configuration files and print each line's effective settings.
    ///
    /// Files are Poly XML (starting with `<`) or the guide's key="value" lines;
    /// later files override earlier ones, then SIPFLEET__<KEY> environment
    /// variables (`__` for `.`) override both.
    Check {
        /// Configuration files, later ones override earlier ones.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Ignore SIPFLEET__* environment variables.
        #[arg(long)]
        no_env: bool,
        /// Print only these lines (`reg.N`); repeatable. Useful for load
        /// configurations with thousands of lines.
        #[arg(long = "line", value_name = "N")]
        lines: Vec<u32>,
    },
    /// List every parameter sipfleet understands, with its range and default.
    Params,
}

pub fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Params => {
            output::finish(output::stdout(&render_params()), ExitCode::SUCCESS)
        }
        ConfigCommand::Check {
            files,
            no_env,
            lines,
        } => {
            let env = no_env.then(config_files::EnvMap::new);
            match config_files::load_with_env(&files, env) {
                Ok(fleet) if fleet.lines.is_empty() => {
                    output::report(&format!("error: {NO_LINES}"));
                    output::report("configuration rejected: no line");
                    ExitCode::from(2)
                }
                Ok(fleet) => {
                    // Asking for a line that is not there is a usage error:
                    // the report says which, and the exit code says so too.
                    let code = if lines.iter().all(|&n| fleet.line(n).is_some()) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(2)
                    };
                    output::finish(output::stdout(&render(&fleet, &lines)), code)
                }
                Err(e) => {
                    for error in &e.errors {
                        output::report(&format!("error: {error}"));
                    }
                    for warning in &e.warnings {
                        output::report(&format!("warning: {warning}"));
                    }
                    output::report(&format!(
                        "configuration rejected: {} error(s), {} warning(s)",
                        e.errors.len(),
                        e.warnings.len()
                    ));
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Why a configuration without any `reg.x.address` is refused: it would
/// run forever doing nothing.
pub const NO_LINES: &str =
    "no line is configured: set reg.x.address for at least one line (reg.1.address=\"1001\")";

/// `name = value  (source)`, aligned.
fn row(out: &mut String, indent: usize, name: &str, value: impl Display, source: &ValueSource) {
    let width = 34usize.saturating_sub(indent);
    let _ = writeln!(
        out,
        "{:indent$}{name:<width$} = {:<24} ({source})",
        "",
        value.to_string()
    );
}

fn flag(b: &Sourced<bool>) -> &'static str {
    if b.value {
        "1"
    } else {
        "0"
    }
}

/// The parameter table: canonical key, allowed values, default.
fn render_params() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# x: line 1..{} (reg.x) or cache entry 1..{} (dns.cache); y: server 1..{}",
        schema::MAX_LINES,
        schema::MAX_CACHE_ENTRIES,
        schema::MAX_SERVERS
    );
    for spec in schema::specs() {
        let default = if spec.default.is_empty() {
            "(empty)"
        } else {
            spec.default
        };
        let _ = writeln!(
            out,
            "{}\t{}\tdefault {}",
            spec.template,
            spec.kind.allowed(),
            default
        );
    }
    out
}

/// The whole report printed on success; `only` limits the lines shown.
fn render(fleet: &FleetConfig, only: &[u32]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "configuration OK: {} line(s)", fleet.lines.len());
    for line in &fleet.lines {
        if only.is_empty() || only.contains(&line.index) {
            render_line(&mut out, line);
        }
    }
    for missing in only.iter().filter(|&&n| fleet.line(n).is_none()) {
        let _ = writeln!(out, "line {missing}: not configured");
    }
    render_fleet(&mut out, fleet);
    if fleet.warnings.is_empty() {
        let _ = writeln!(out, "warnings: none");
    } else {
        let _ = writeln!(out, "warnings: {}", fleet.warnings.len());
        for w in &fleet.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    out
}

fn render_line(out: &mut String, line: &LineConfig) {
    let _ = writeln!(out, "line {}: {}", line.index, line.address.value);
    row(out, 2, "address", &line.address.value, &line.address.source);
    row(
        out,
        2,
        "displayName",
        format!("{:?}", line.display_name.value),
        &line.display_name.source,
    );
    let user = if line.auth_user_id.value.is_empty() {
        "(the address)".to_string()
    } else {
        line.auth_user_id.value.clone()
    };
    row(out, 2, "auth.userId", user, &line.auth_user_id.source);
    let password = if line.auth_password.value.is_empty() {
        "(not set)"
    } else {
        "(set, hidden)"
    };
    row(
        out,
        2,
        "auth.password",
        password,
        &line.auth_password.source,
    );
    let walk = match &line.outbound_proxy {
        Some(_) => "outbound proxy only (servers are not walked)".to_string(),
        None => line
            .servers
            .iter()
            .map(|s| format!("server {}", s.index))
            .collect::<Vec<_>>()
            .join(", then "),
    };
    let _ = writeln!(out, "  walk: {walk}");
    let mut previous: Option<u32> = None;
    for (k, server) in line.servers.iter().enumerate() {
        let _ = writeln!(out, "  server {}:", server.index);
        let use_ = match (&line.outbound_proxy, previous) {
            (Some(_), _) if k == 0 => {
                "registrar (Request-URI domain); not walked: requests go to the outbound proxy"
                    .to_string()
            }
            (Some(_), _) => "not walked: requests go to the outbound proxy".to_string(),
            (None, None) => "primary: walked first; registrar (Request-URI domain)".to_string(),
            (None, Some(p)) => format!(
                "failover: walked after server {p}'s routes (own retryTimeOut, retryMaxCount, expires); failback to server {}",
                line.servers.first().map_or(1, |s| s.index)
            ),
        };
        let _ = writeln!(out, "    {:<30} = {use_}", "use");
        render_server(out, server);
        render_timers(out, &server.timers);
        previous = Some(server.index);
    }
    match &line.outbound_proxy {
        Some(proxy) => {
            let _ = writeln!(out, "  outbound proxy:");
            render_server(out, proxy);
        }
        None => {
            let _ = writeln!(out, "  outbound proxy: none");
        }
    }
    let scope = if line.outbound_proxy.is_some() {
        "outbound proxy scope"
    } else {
        "primary server scope"
    };
    let _ = writeln!(out, "  failover ({scope}):");
    render_failover(out, &line.failover);
}

fn render_server(out: &mut String, server: &ServerConfig) {
    row(
        out,
        4,
        "address",
        &server.address.value,
        &server.address.source,
    );
    let literal = server
        .address
        .value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    let port = match server.port.value {
        Some(p) => p.to_string(),
        // An IP address has no SRV records: the transport's default port.
        None if literal => {
            "0 (an IP address: the transport's default, 5060 or 5061 for TLS)".to_string()
        }
        None => "0 (SRV lookup)".to_string(),
    };
    row(out, 4, "port", port, &server.port.source);
    row(
        out,
        4,
        "transport",
        server.transport.value,
        &server.transport.source,
    );
}

fn render_timers(out: &mut String, t: &RegistrationTimers) {
    row(
        out,
        4,
        "expires",
        format!("{} s", t.expires_s.value),
        &t.expires_s.source,
    );
    row(
        out,
        4,
        "expires.overlap",
        format!("{} s", t.expires_overlap_s.value),
        &t.expires_overlap_s.source,
    );
    let retry = match t.retry_timeout_ms.value {
        0 => "0 (RFC 3261 back-off)".to_string(),
        ms => format!("{ms} ms"),
    };
    row(out, 4, "retryTimeOut", retry, &t.retry_timeout_ms.source);
    row(
        out,
        4,
        "retryMaxCount",
        t.retry_max_count.value,
        &t.retry_max_count.source,
    );
    row(
        out,
        4,
        "registerRetry.baseTimeOut",
        format!("{} s", t.register_retry_base_s.value),
        &t.register_retry_base_s.source,
    );
    row(
        out,
        4,
        "registerRetry.maxTimeOut",
        format!("{} s", t.register_retry_max_s.value),
        &t.register_retry_max_s.source,
    );
}

fn render_failover(out: &mut String, f: &FailoverSettings) {
    row(
        out,
        4,
        "reRegisterOn",
        flag(&f.re_register_on),
        &f.re_register_on.source,
    );
    row(
        out,
        4,
        "onlySignalWithRegistered",
        flag(&f.only_signal_with_registered),
        &f.only_signal_with_registered.source,
    );
    row(
        out,
        4,
        "failRegistrationOn",
        flag(&f.fail_registration_on),
        &f.fail_registration_on.source,
    );
    // reRegisterOn=0 makes every RROFO parameter below idle (design.md
    // decision 1): say so next to the values, or they read as in force.
    let idle = if f.re_register_on.get() {
        ""
    } else {
        " (ignored: reRegisterOn=0)"
    };
    let mode = if f.re_register_on.get() {
        f.failback_mode.value.to_string()
    } else {
        format!(
            "{} (ignored: reRegisterOn=0, a failed-over line tries the primary at each refresh, as newRequests)",
            f.failback_mode.value
        )
    };
    row(out, 4, "failBack.mode", mode, &f.failback_mode.source);
    let timeout = match f.failback_timeout_s.value {
        0 => format!("0 (no failback){idle}"),
        s => format!("{s} s{idle}"),
    };
    row(
        out,
        4,
        "failBack.timeout",
        timeout,
        &f.failback_timeout_s.source,
    );
    row(
        out,
        4,
        "unRegisterOnFailBack",
        flag(&f.unregister_on_failback),
        &f.unregister_on_failback.source,
    );
    row(
        out,
        4,
        "enhanced.enable",
        flag(&f.enhanced),
        &f.enhanced.source,
    );
}

fn render_fleet(out: &mut String, fleet: &FleetConfig) {
    let s = &fleet.sip;
    let _ = writeln!(out, "sip (all lines):");
    row(
        out,
        2,
        "failoverOn503Response",
        flag(&s.failover_on_503),
        &s.failover_on_503.source,
    );
    row(
        out,
        2,
        "authOptimizedInFailover",
        flag(&s.auth_optimized_in_failover),
        &s.auth_optimized_in_failover.source,
    );
    row(
        out,
        2,
        "newCallOnUnRegister",
        flag(&s.new_call_on_unregister),
        &s.new_call_on_unregister.source,
    );
    row(
        out,
        2,
        "tcpFastFailover",
        flag(&s.tcp_fast_failover),
        &s.tcp_fast_failover.source,
    );
    row(
        out,
        2,
        "tcpFastFailover.timeout",
        format!("{} ms", s.tcp_fast_failover_timeout_ms.value),
        &s.tcp_fast_failover_timeout_ms.source,
    );
    row(
        out,
        2,
        "lineSeize.retries",
        s.line_seize_retries.value,
        &s.line_seize_retries.source,
    );
    let p = &fleet.pacing;
    let _ = writeln!(out, "register pacing (all lines):");
    let limit = |n: u32, unit: &str| match n {
        0 => "0 (no limit)".to_string(),
        n => format!("{n}{unit}"),
    };
    row(
        out,
        2,
        "sipfleet.register.rate",
        limit(p.rate.value, "/s"),
        &p.rate.source,
    );
    row(
        out,
        2,
        "sipfleet.register.window",
        limit(p.window.value, " per flow"),
        &p.window.source,
    );
    let spread = match p.refresh_spread_pct.value {
        0 => "0 (Poly's refresh point exactly)".to_string(),
        n => format!("{n} %"),
    };
    row(
        out,
        2,
        "sipfleet.register.refreshSpread",
        spread,
        &p.refresh_spread_pct.source,
    );
    let k = &fleet.keepalive;
    let _ = writeln!(out, "keep-alive:");
    row(
        out,
        2,
        "tcp.sip.tls.enable",
        flag(&k.tls_enable),
        &k.tls_enable.source,
    );
    row(
        out,
        2,
        "tcp.noResponseTransmitInterval",
        format!("{} s", k.tcp_no_response_interval_s.value),
        &k.tcp_no_response_interval_s.source,
    );
    row(
        out,
        2,
        "tcp.idleTransmitInterval",
        format!("{} s", k.tcp_idle_interval_s.value),
        &k.tcp_idle_interval_s.source,
    );
    row(
        out,
        2,
        "tcp.sip.persistentConnection",
        flag(&k.tcp_persistent_connection),
        &k.tcp_persistent_connection.source,
    );
    let nat = match k.nat_interval_s.value {
        0 => "0 (off)".to_string(),
        s => format!("{s} s"),
    };
    row(
        out,
        2,
        "nat.keepalive.interval",
        nat,
        &k.nat_interval_s.source,
    );
    row(
        out,
        2,
        "nat.keepalive.udp.payload",
        format!("{:?}", String::from_utf8_lossy(&k.nat_udp_payload.value)),
        &k.nat_udp_payload.source,
    );
    row(
        out,
        2,
        "nat.keepalive.tcp.payload",
        format!("{:?}", String::from_utf8_lossy(&k.nat_tcp_payload.value)),
        &k.nat_tcp_payload.source,
    );
    let d = &fleet.dns;
    let _ = writeln!(out, "dns:");
    for (name, server) in [("dns.server", &d.server), ("dns.altServer", &d.alt_server)] {
        match server {
            Some(s) => row(out, 2, name, s.value, &s.source),
            None => row(out, 2, name, "(system resolver)", &ValueSource::Default),
        }
    }
    row(
        out,
        2,
        "cache.A.networkOverride",
        flag(&d.a_network_override),
        &d.a_network_override.source,
    );
    row(
        out,
        2,
        "cache.dynamicRestore.enable",
        flag(&d.dynamic_restore),
        &d.dynamic_restore.source,
    );
    row(
        out,
        2,
        "cache.dynamicRestore.ttl",
        format!("{} s", d.dynamic_restore_ttl_s.value),
        &d.dynamic_restore_ttl_s.source,
    );
    for a in &d.static_a {
        let _ = writeln!(
            out,
            "  static A {}: {} -> {} (ttl {} s)",
            a.index, a.name, a.address, a.ttl_s
        );
    }
    for s in &d.static_srv {
        let _ = writeln!(
            out,
            "  static SRV {}: {} -> {}:{} priority {} weight {} (ttl {} s)",
            s.index, s.name, s.target, s.port, s.priority, s.weight, s.ttl_s
        );
    }
    for n in &d.static_naptr {
        let _ = writeln!(
            out,
            "  static NAPTR {}: {} order {} preference {} flags {:?} service {:?} regexp {:?} -> {} (ttl {} s)",
            n.index, n.name, n.order, n.preference, n.flags, n.service, n.regexp, n.replacement, n.ttl_s
        );
    }
}
