//! Layering sources and resolving the scoping rules into a [`FleetConfig`].
//!
//! Sources are added in order; a later assignment of the same parameter
//! replaces an earlier one (files in the order given, then the environment).
//! Every assignment is validated as it is added, so errors in values that a
//! later file overrides are still reported. Resolution then applies the
//! design's scoping: `reg.x.server.y.*` over `voIpProt.server.y.*`,
//! `reg.x.outboundProxy.*` over `voIpProt.SIP.outboundProxy.*`, else the
//! guide's default.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::error::{ConfigError, ConfigErrors, ConfigWarning, Location};
use super::model::*;
use super::schema::{
    match_key, render, spec_id, specs, KeyMismatch, Kind, Value, MAX_CACHE_ENTRIES,
};
use super::source::{ParsedSource, RawParam};
use crate::auth::Secret;

struct Entry {
    value: Value,
    set_at: Arc<SetAt>,
}

/// Collects parameters from any number of sources, then builds the typed
/// configuration with [`ConfigBuilder::build`].
pub struct ConfigBuilder {
    /// Keys shared by all lines, by (spec, x, y).
    globals: FxHashMap<(usize, u32, u32), Entry>,
    /// `reg.x.*` keys per line `x`, as (spec, y, entry) in first-set order: a
    /// line has a handful of keys, so a short scan beats one big table with
    /// 100,000 lines' worth of entries (cache misses).
    per_line: BTreeMap<u32, Vec<(usize, u32, Entry)>>,
    defaults: Vec<Value>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigBuilder {
    /// An empty builder, with every parameter at the guide's default.
    pub fn new() -> Self {
        let defaults = specs()
            .iter()
            .map(|s| match s.kind.parse(s.default, s.default) {
                Some(v) => v,
                None => unreachable!("default of {} is invalid", s.template),
            })
            .collect();
        ConfigBuilder {
            globals: FxHashMap::default(),
            per_line: BTreeMap::new(),
            defaults,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Adds a parsed file: its syntax errors and its parameters.
    pub fn add_source(&mut self, source: ParsedSource) {
        self.errors.extend(source.errors);
        self.add_params(source.params);
    }

    /// Records an error found outside the parsers (an unreadable file).
    pub fn add_error(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// Adds assignments; each overrides an earlier one of the same parameter.
    pub fn add_params(&mut self, params: impl IntoIterator<Item = RawParam>) {
        for p in params {
            self.add_param(p);
        }
    }

    fn add_param(&mut self, p: RawParam) {
        let m = match match_key(&p.key) {
            Ok(m) => m,
            Err(KeyMismatch::Unknown) => {
                self.warnings.push(ConfigWarning {
                    key: p.key,
                    message: "unknown key, ignored".into(),
                    location: p.location,
                });
                return;
            }
            Err(KeyMismatch::Index { index, allowed }) => {
                self.errors.push(ConfigError::Index {
                    key: p.key,
                    index,
                    allowed,
                    location: p.location,
                });
                return;
            }
        };
        let spec = specs()[m.spec];
        let Some(value) = spec.kind.parse(&p.value, spec.default) else {
            let value = if spec.kind == Kind::Secret {
                "***".into()
            } else {
                p.value
            };
            self.errors.push(ConfigError::Value {
                key: m.canonical,
                value,
                allowed: spec.kind.allowed(),
                location: p.location,
            });
            return;
        };
        let set_at = Arc::new(SetAt {
            key: m.canonical,
            location: p.location,
        });
        let entry = Entry { value, set_at };
        let old = if is_line_spec(m.spec) {
            let entries = self.per_line.entry(m.x).or_default();
            match entries
                .iter_mut()
                .find(|(s, y, _)| *s == m.spec && *y == m.y)
            {
                Some(slot) => Some(std::mem::replace(&mut slot.2, entry)),
                None => {
                    entries.push((m.spec, m.y, entry));
                    None
                }
            }
        } else {
            self.globals.insert((m.spec, m.x, m.y), entry)
        };
        if let Some(old) = old {
            self.warn_if_same_file(&old, m.spec, m.x, m.y);
        }
    }

    /// Setting a key twice in one file is likely a mistake; across files it
    /// is what layering is for.
    fn warn_if_same_file(&mut self, old: &Entry, spec: usize, x: u32, y: u32) {
        let Some(new) = self.entry_id(spec, x, y) else {
            return;
        };
        if let (Location::File { path: a, line }, Location::File { path: b, .. }) =
            (&old.set_at.location, &new.set_at.location)
        {
            if a == b {
                let warning = ConfigWarning {
                    key: new.set_at.key.clone(),
                    message: format!("set again; overrides line {line}"),
                    location: new.set_at.location.clone(),
                };
                self.warnings.push(warning);
            }
        }
    }

    fn entry_id(&self, spec: usize, x: u32, y: u32) -> Option<&Entry> {
        if is_line_spec(spec) {
            let entries = self.per_line.get(&x)?;
            entries
                .iter()
                .find(|(s, sy, _)| *s == spec && *sy == y)
                .map(|(_, _, e)| e)
        } else {
            self.globals.get(&(spec, x, y))
        }
    }

    fn entry(&self, template: &str, x: u32, y: u32) -> Option<&Entry> {
        self.entry_id(spec_id(template), x, y)
    }

    /// The value of the first template that is set, else the default of the last.
    fn pick(&self, scopes: &[(&str, u32, u32)]) -> (&Value, ValueSource) {
        for &(template, x, y) in scopes {
            if let Some(e) = self.entry(template, x, y) {
                let source = if template.starts_with("reg.") {
                    ValueSource::Line(e.set_at.clone())
                } else {
                    ValueSource::Global(e.set_at.clone())
                };
                return (&e.value, source);
            }
        }
        let Some(&(last, _, _)) = scopes.last() else {
            unreachable!("pick needs at least one scope")
        };
        (&self.defaults[spec_id(last)], ValueSource::Default)
    }

    fn bool(&self, scopes: &[(&str, u32, u32)]) -> Sourced<bool> {
        match self.pick(scopes) {
            (Value::Bool(b), source) => Sourced { value: *b, source },
            (v, _) => unreachable!("{scopes:?} is not a bool: {v:?}"),
        }
    }

    fn int(&self, scopes: &[(&str, u32, u32)]) -> Sourced<u32> {
        match self.pick(scopes) {
            (Value::Int(n), source) => Sourced { value: *n, source },
            (v, _) => unreachable!("{scopes:?} is not an integer: {v:?}"),
        }
    }

    fn text(&self, scopes: &[(&str, u32, u32)]) -> Sourced<String> {
        match self.pick(scopes) {
            (Value::Text(s), source) => Sourced {
                value: s.clone(),
                source,
            },
            (v, _) => unreachable!("{scopes:?} is not text: {v:?}"),
        }
    }

    fn port(&self, scopes: &[(&str, u32, u32)]) -> Sourced<Option<u16>> {
        match self.pick(scopes) {
            (Value::Port(p), source) => Sourced { value: *p, source },
            (v, _) => unreachable!("{scopes:?} is not a port: {v:?}"),
        }
    }

    fn transport(&self, scopes: &[(&str, u32, u32)]) -> Sourced<TransportSetting> {
        match self.pick(scopes) {
            (Value::Transport(t), source) => Sourced { value: *t, source },
            (v, _) => unreachable!("{scopes:?} is not a transport: {v:?}"),
        }
    }

    fn mode(&self, scopes: &[(&str, u32, u32)]) -> Sourced<FailbackMode> {
        match self.pick(scopes) {
            (Value::FailbackMode(m), source) => Sourced { value: *m, source },
            (v, _) => unreachable!("{scopes:?} is not a failback mode: {v:?}"),
        }
    }

    fn dns_server(&self, template: &str) -> Option<Sourced<SocketAddr>> {
        match self.pick(&[(template, 0, 0)]) {
            (Value::DnsServer(a), source) => Some(Sourced { value: *a, source }),
            _ => None,
        }
    }

    fn is_set_nonempty(&self, template: &str, x: u32, y: u32) -> bool {
        matches!(self.entry(template, x, y), Some(Entry { value: Value::Text(s), .. }) if !s.is_empty())
    }

    /// Applies scoping and builds the typed configuration, or returns every
    /// error found (with the warnings).
    pub fn build(mut self) -> Result<FleetConfig, ConfigErrors> {
        let max_y = super::schema::MAX_SERVERS;
        let global_servers: Vec<u32> = (1..=max_y)
            .filter(|&y| self.is_set_nonempty("voIpProt.server.y.address", 0, y))
            .collect();
        let enhanced = self.bool(&[("voIpProt.SIP.outboundProxy.failOver.enhanced.enable", 0, 0)]);

        let mut lines = Vec::new();
        let mut late_errors = Vec::new();
        let mut late_warnings = Vec::new();
        for (&x, entries) in &self.per_line {
            let Some((_, _, first)) = entries.first() else {
                continue;
            };
            let first = &first.set_at.location;
            if !self.is_set_nonempty("reg.x.address", x, 0) {
                late_warnings.push(ConfigWarning {
                    key: format!("reg.{x}"),
                    message: format!(
                        "reg.{x}.* is set but reg.{x}.address is empty: line {x} is not configured"
                    ),
                    location: first.clone(),
                });
                continue;
            }
            let mut ys: Vec<u32> = global_servers.clone();
            ys.extend(
                (1..=max_y).filter(|&y| self.is_set_nonempty("reg.x.server.y.address", x, y)),
            );
            ys.sort_unstable();
            ys.dedup();
            let servers: Vec<ServerConfig> =
                ys.iter().map(|&y| self.server(x, y, &enhanced)).collect();
            let Some(primary) = servers.first() else {
                late_errors.push(ConfigError::Incomplete {
                    key: format!("reg.{x}"),
                    message: format!(
                        "line {x} has no registrar: set voIpProt.server.1.address or reg.{x}.server.1.address"
                    ),
                    location: self.entry("reg.x.address", x, 0).map(|e| e.set_at.location.clone()),
                });
                continue;
            };
            let registration = primary.timers.clone();
            let outbound_proxy = (self.is_set_nonempty("reg.x.outboundProxy.address", x, 0)
                || self.is_set_nonempty("voIpProt.SIP.outboundProxy.address", 0, 0))
            .then(|| self.outbound_proxy(x, &registration, &enhanced));
            let failover = match &outbound_proxy {
                Some(p) => p.failover.clone(),
                None => primary.failover.clone(),
            };
            let password = self.text(&[("reg.x.auth.password", x, 0)]);
            lines.push(LineConfig {
                index: x,
                address: self.text(&[("reg.x.address", x, 0)]),
                display_name: self.text(&[("reg.x.displayName", x, 0)]),
                auth_user_id: self.text(&[("reg.x.auth.userId", x, 0)]),
                auth_password: Sourced {
                    value: Secret::new(password.value),
                    source: password.source,
                },
                servers,
                outbound_proxy,
                registration,
                failover,
                features: LineFeatures {
                    auto_answer: self.bool(&[("reg.x.autoAnswer", x, 0)]),
                    subscribe_mwi: self.bool(&[("reg.x.subscribe.mwi", x, 0)]),
                    subscribe_sca: self.bool(&[("reg.x.subscribe.sca", x, 0)]),
                    subscribe_blf: self.text(&[("reg.x.subscribe.blf", x, 0)]),
                    calls_per_line: self.int(&[
                        ("reg.x.callsPerLineKey", x, 0),
                        ("call.callsPerLineKey", 0, 0),
                    ]),
                    ring_timeout_s: self.int(&[("sipfleet.call.ringTimeout", 0, 0)]),
                },
            });
        }

        let dns = self.dns(&mut late_errors, &mut late_warnings);
        let sip = self.sip(enhanced);
        let keepalive = self.keepalive();
        self.errors.extend(late_errors);
        self.warnings.extend(late_warnings);
        if !self.errors.is_empty() {
            return Err(ConfigErrors {
                errors: self.errors,
                warnings: self.warnings,
            });
        }
        Ok(FleetConfig {
            lines,
            sip,
            keepalive,
            dns,
            resources: ResourceSettings {
                sockets_max: self.int(&[("sipfleet.sockets.max", 0, 0)]),
            },
            pacing: RegisterPacing {
                rate: self.int(&[("sipfleet.register.rate", 0, 0)]),
                window: self.int(&[("sipfleet.register.window", 0, 0)]),
                refresh_spread_pct: self.int(&[("sipfleet.register.refreshSpread", 0, 0)]),
            },
            warnings: self.warnings,
        })
    }

    fn server(&self, x: u32, y: u32, enhanced: &Sourced<bool>) -> ServerConfig {
        macro_rules! get {
            ($f:ident, $field:literal) => {
                self.$f(&[
                    (concat!("reg.x.server.y.", $field), x, y),
                    (concat!("voIpProt.server.y.", $field), 0, y),
                ])
            };
        }
        ServerConfig {
            index: y,
            address: get!(text, "address"),
            port: get!(port, "port"),
            transport: get!(transport, "transport"),
            timers: RegistrationTimers {
                expires_s: get!(int, "expires"),
                expires_overlap_s: get!(int, "expires.overlap"),
                retry_timeout_ms: get!(int, "retryTimeOut"),
                retry_max_count: get!(int, "retryMaxCount"),
                register_retry_base_s: get!(int, "registerRetry.baseTimeOut"),
                register_retry_max_s: get!(int, "registerRetry.maxTimeOut"),
            },
            failover: FailoverSettings {
                re_register_on: get!(bool, "failOver.reRegisterOn"),
                only_signal_with_registered: get!(bool, "failOver.onlySignalWithRegistered"),
                fail_registration_on: get!(bool, "failOver.failRegistrationOn"),
                failback_mode: get!(mode, "failOver.failBack.mode"),
                failback_timeout_s: get!(int, "failOver.failBack.timeout"),
                unregister_on_failback: get!(bool, "failOver.unRegisterOnFailBack"),
                enhanced: enhanced.clone(),
            },
        }
    }

    fn outbound_proxy(
        &self,
        x: u32,
        timers: &RegistrationTimers,
        enhanced: &Sourced<bool>,
    ) -> ServerConfig {
        macro_rules! get {
            ($f:ident, $field:literal) => {
                self.$f(&[
                    (concat!("reg.x.outboundProxy.", $field), x, 0),
                    (concat!("voIpProt.SIP.outboundProxy.", $field), 0, 0),
                ])
            };
        }
        ServerConfig {
            index: 0,
            address: get!(text, "address"),
            port: get!(port, "port"),
            transport: get!(transport, "transport"),
            timers: timers.clone(),
            failover: FailoverSettings {
                re_register_on: get!(bool, "failOver.reRegisterOn"),
                only_signal_with_registered: get!(bool, "failOver.onlySignalWithRegistered"),
                fail_registration_on: get!(bool, "failOver.failRegistrationOn"),
                failback_mode: get!(mode, "failOver.failBack.mode"),
                failback_timeout_s: get!(int, "failOver.failBack.timeout"),
                unregister_on_failback: get!(bool, "failOver.unRegisterOnFailBack"),
                enhanced: enhanced.clone(),
            },
        }
    }

    fn sip(&self, enhanced: Sourced<bool>) -> SipSettings {
        let g = |t| [(t, 0, 0)];
        SipSettings {
            failover_on_503: self.bool(&g("voIpProt.SIP.failoverOn503Response")),
            auth_optimized_in_failover: self.bool(&g("voIpProt.SIP.authOptimizedInFailover")),
            new_call_on_unregister: self.bool(&g("voIpProt.SIP.newCallOnUnRegister")),
            tcp_fast_failover: self.bool(&g("voIpProt.SIP.tcpFastFailover")),
            tcp_fast_failover_timeout_ms: self.int(&g("voIpProt.SIP.tcpFastFailover.timeout")),
            line_seize_retries: self.int(&g("voIpProt.SIP.lineSeize.retries")),
            enhanced_failover: enhanced,
        }
    }

    fn keepalive(&self) -> KeepaliveSettings {
        let g = |t| [(t, 0, 0)];
        let payload = |t| {
            let s = self.text(&g(t));
            Sourced {
                value: decode_escapes(&s.value),
                source: s.source,
            }
        };
        KeepaliveSettings {
            tls_enable: self.bool(&g("tcpIpApp.keepalive.tcp.sip.tls.enable")),
            tcp_no_response_interval_s: self
                .int(&g("tcpIpApp.keepalive.tcp.noResponseTransmitInterval")),
            tcp_idle_interval_s: self.int(&g("tcpIpApp.keepalive.tcp.idleTransmitInterval")),
            tcp_persistent_connection: self
                .bool(&g("tcpIpApp.keepalive.tcp.sip.persistentConnection.enable")),
            nat_interval_s: self.int(&g("nat.keepalive.interval")),
            nat_udp_payload: payload("nat.keepalive.udp.payload"),
            nat_tcp_payload: payload("nat.keepalive.tcp.payload"),
        }
    }

    fn dns(&self, errors: &mut Vec<ConfigError>, warnings: &mut Vec<ConfigWarning>) -> DnsSettings {
        let mut static_a = Vec::new();
        let mut static_srv = Vec::new();
        let mut static_naptr = Vec::new();
        for x in 1..=MAX_CACHE_ENTRIES {
            let int = |t: &str| self.int(&[(t, x, 0)]).value;
            let text = |t: &str| self.text(&[(t, x, 0)]).value;
            let u16_of = |t: &str| u16::try_from(int(t)).unwrap_or(u16::MAX);
            if let Some(name) = self.entry_name(x, "A", warnings) {
                match self.entry("dns.cache.A.x.address", x, 0) {
                    Some(Entry {
                        value: Value::Ipv4(address),
                        ..
                    }) => static_a.push(StaticA {
                        index: x,
                        name: name.0,
                        ttl_s: int("dns.cache.A.x.ttl"),
                        address: *address,
                    }),
                    _ => errors.push(incomplete(
                        &render("dns.cache.A.x.address", x, 0),
                        "is required when the name is set",
                        name.1,
                    )),
                }
            }
            if let Some(name) = self.entry_name(x, "SRV", warnings) {
                let target = text("dns.cache.SRV.x.target");
                if target.is_empty() {
                    errors.push(incomplete(
                        &render("dns.cache.SRV.x.target", x, 0),
                        "is required when the name is set",
                        name.1,
                    ));
                } else {
                    static_srv.push(StaticSrv {
                        index: x,
                        name: name.0,
                        ttl_s: int("dns.cache.SRV.x.ttl"),
                        priority: u16_of("dns.cache.SRV.x.priority"),
                        weight: u16_of("dns.cache.SRV.x.weight"),
                        port: u16_of("dns.cache.SRV.x.port"),
                        target,
                    });
                }
            }
            if let Some(name) = self.entry_name(x, "NAPTR", warnings) {
                let replacement = text("dns.cache.NAPTR.x.replacement");
                if replacement.is_empty() {
                    errors.push(incomplete(
                        &render("dns.cache.NAPTR.x.replacement", x, 0),
                        "is required when the name is set",
                        name.1,
                    ));
                } else {
                    static_naptr.push(StaticNaptr {
                        index: x,
                        name: name.0,
                        ttl_s: int("dns.cache.NAPTR.x.ttl"),
                        order: u16_of("dns.cache.NAPTR.x.order"),
                        preference: u16_of("dns.cache.NAPTR.x.preference"),
                        flags: text("dns.cache.NAPTR.x.flags"),
                        service: text("dns.cache.NAPTR.x.service"),
                        regexp: text("dns.cache.NAPTR.x.regexp"),
                        replacement,
                    });
                }
            }
        }
        DnsSettings {
            server: self.dns_server("tcpIpApp.dns.server"),
            alt_server: self.dns_server("tcpIpApp.dns.altServer"),
            a_network_override: self.bool(&[("dns.cache.A.networkOverride", 0, 0)]),
            dynamic_restore: self.bool(&[("dns.cache.dynamicRestore.enable", 0, 0)]),
            dynamic_restore_ttl_s: self.int(&[("dns.cache.dynamicRestore.ttl", 0, 0)]),
            static_a,
            static_srv,
            static_naptr,
        }
    }

    /// The name of static cache entry `x` of `kind` with its location, or
    /// `None` (warning when other fields of the entry are set without a name).
    fn entry_name(
        &self,
        x: u32,
        kind: &str,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Option<(String, Location)> {
        let prefix = format!("dns.cache.{kind}.x.");
        let name_template = format!("{prefix}name");
        if let Some(Entry {
            value: Value::Text(name),
            set_at,
        }) = self.entry(&name_template, x, 0)
        {
            if !name.is_empty() {
                return Some((name.clone(), set_at.location.clone()));
            }
        }
        let orphan = specs()
            .iter()
            .filter(|s| s.template.starts_with(&prefix) && s.template != name_template)
            .find_map(|s| self.entry(s.template, x, 0));
        if let Some(e) = orphan {
            warnings.push(ConfigWarning {
                key: e.set_at.key.clone(),
                message: format!("ignored: dns.cache.{kind}.{x}.name is not set"),
                location: e.set_at.location.clone(),
            });
        }
        None
    }
}

fn is_line_spec(spec: usize) -> bool {
    specs()[spec].template.starts_with("reg.")
}

fn incomplete(key: &str, message: &str, location: Location) -> ConfigError {
    ConfigError::Incomplete {
        key: key.to_string(),
        message: message.to_string(),
        location: Some(location),
    }
}

/// Decodes `\r`, `\n`, `\t` and `\\` in keep-alive payloads, as the guide
/// writes the default `\r\n\r\n`; other backslashes stay.
pub fn decode_escapes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let decoded = match chars.peek() {
                Some('r') => Some(b'\r'),
                Some('n') => Some(b'\n'),
                Some('t') => Some(b'\t'),
                Some('\\') => Some(b'\\'),
                _ => None,
            };
            if let Some(b) = decoded {
                chars.next();
                out.push(b);
                continue;
            }
        }
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out
}
