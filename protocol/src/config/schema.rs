//! The parameter table: every key sipfleet understands, with the guide's range
//! and default, and the matching of written keys against it.
//!
//! Keys are matched case-insensitively because the guide itself spells the same
//! parameter several ways (`tcpIpApp.Keepalive` / `tcpIpApp.keepalive`,
//! `voIpProt.server.X`), and environment variables arrive lower-cased. The
//! canonical spelling below is what the rest of the program and the output use.
//! In templates, a segment `x` is a line or cache-entry index and `y` a server
//! index; written keys carry decimal numbers there.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use super::model::{FailbackMode, TransportSetting};

/// Highest line index `reg.x` (Poly phones go to 34; load tests need many more).
pub const MAX_LINES: u32 = 100_000;
/// Highest server index `voIpProt.server.y` / `reg.x.server.y`.
pub const MAX_SERVERS: u32 = 8;
/// Highest static DNS cache entry index (the guide: x = 1 to 18).
pub const MAX_CACHE_ENTRIES: u32 = 18;

/// The kind of value a key takes, which decides validation and the range text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `0` or `1`.
    Bool,
    /// A decimal integer inside one of the inclusive ranges.
    Int(&'static [(u32, u32)]),
    /// `0` to `65535`; `0` or empty means "not set, use SRV".
    Port,
    /// `DNSnaptr`, `TLS`, `TCPOnly`, `TCPpreferred` or `UDPOnly`.
    Transport,
    /// `failOver.failBack.mode`: `duration`, `newRequests`, `DNSTTL` or `registration`.
    FailbackMode,
    /// Free text up to the given length.
    Text(usize),
    /// Free text that must never be printed.
    Secret,
    /// A host name or IP literal (no whitespace).
    Host,
    /// A dotted-decimal IPv4 address.
    Ipv4,
    /// An IP address with an optional `:port` (`[v6]:port` for IPv6).
    DnsServer,
}

/// A validated value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A `0`/`1` flag.
    Bool(bool),
    /// An integer within the spec's ranges.
    Int(u32),
    /// A port; `None` for `0` or empty, meaning use SRV.
    Port(Option<u16>),
    /// A transport setting.
    Transport(TransportSetting),
    /// A failback mode.
    FailbackMode(FailbackMode),
    /// Free text, a host or a secret.
    Text(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// A DNS server address; port 53 when none was written.
    DnsServer(SocketAddr),
}

impl Kind {
    /// The allowed values, for error messages.
    pub fn allowed(self) -> String {
        match self {
            Kind::Bool => "0 or 1".into(),
            Kind::Int(ranges) => ranges
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a} to {b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" or "),
            Kind::Port => "0 to 65535 (0 or empty: look up SRV)".into(),
            Kind::Transport => "DNSnaptr, TLS, TCPOnly, TCPpreferred or UDPOnly".into(),
            Kind::FailbackMode => "duration, newRequests, DNSTTL or registration".into(),
            Kind::Text(max) => format!("text of at most {max} characters"),
            Kind::Secret => "text of at most 255 characters".into(),
            Kind::Host => "a host name or IP address without spaces".into(),
            Kind::Ipv4 => "a dotted-decimal IPv4 address".into(),
            Kind::DnsServer => "an IP address with an optional :port".into(),
        }
    }

    /// Validates `raw` (already trimmed by the caller for non-text kinds).
    /// Empty means the default for every kind but text.
    pub fn parse(self, raw: &str, default: &str) -> Option<Value> {
        let raw = match self {
            Kind::Text(_) | Kind::Secret => raw,
            _ => match raw.trim() {
                "" => default,
                v => v,
            },
        };
        match self {
            Kind::Bool => match raw {
                "0" => Some(Value::Bool(false)),
                "1" => Some(Value::Bool(true)),
                _ => None,
            },
            Kind::Int(ranges) => {
                let n = parse_decimal(raw)?;
                ranges
                    .iter()
                    .any(|&(a, b)| (a..=b).contains(&n))
                    .then_some(Value::Int(n))
            }
            Kind::Port => match parse_decimal(raw)? {
                0 => Some(Value::Port(None)),
                n => u16::try_from(n).ok().map(|p| Value::Port(Some(p))),
            },
            Kind::Transport => TransportSetting::parse(raw).map(Value::Transport),
            Kind::FailbackMode => FailbackMode::parse(raw).map(Value::FailbackMode),
            Kind::Text(max) => (raw.chars().count() <= max).then(|| Value::Text(raw.to_string())),
            Kind::Secret => (raw.chars().count() <= 255).then(|| Value::Text(raw.to_string())),
            Kind::Host => (raw.len() <= 255
                && !raw.chars().any(|c| c.is_whitespace() || c.is_control()))
            .then(|| Value::Text(raw.to_string())),
            Kind::Ipv4 => match raw {
                "" => Some(Value::Text(String::new())),
                _ => raw.parse().ok().map(Value::Ipv4),
            },
            Kind::DnsServer => match raw {
                "" => Some(Value::Text(String::new())),
                _ => parse_dns_server(raw).map(Value::DnsServer),
            },
        }
    }
}

/// Digits only: `+5`, `5.0` and `0x10` are not decimal configuration values.
fn parse_decimal(raw: &str) -> Option<u32> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn parse_dns_server(raw: &str) -> Option<SocketAddr> {
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Some(addr);
    }
    let ip: IpAddr = raw
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, 53))
}

/// One parameter family.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Canonical spelling with `x` / `y` placeholders.
    pub template: &'static str,
    /// The form of the value the key accepts.
    pub kind: Kind,
    /// The guide's default, as it would be written.
    pub default: &'static str,
}

const U16: &[(u32, u32)] = &[(0, 65535)];
const EXPIRES: &[(u32, u32)] = &[(10, 2_147_483_647)];
const OVERLAP: &[(u32, u32)] = &[(5, 65535)];
const BASE: &[(u32, u32)] = &[(10, 120)];
const MAXT: &[(u32, u32)] = &[(60, 1800)];
const FAILBACK_TIMEOUT: &[(u32, u32)] = &[(0, 0), (60, 65535)];
/// Poly's `call.callsPerLineKey` range.
const CALLS_PER_LINE: &[(u32, u32)] = &[(1, 24)];

/// `sipfleet.register.rate`: new REGISTER exchanges started per second,
/// fleet-wide (initial registrations, refreshes, failovers, failbacks and
/// the un-REGISTERs of a shutdown alike; a credentials follow-up is part of
/// its exchange, retransmissions are never paced); 0: no rate limit.
/// Default 2000/s, measured with `examples/fleet_scale.rs` (10,000 lines
/// over UDP, one lab Kamailio per phase, this 2-core machine): unpaced, the
/// start burst cost 2.64 REGISTERs per line and 18,291 UDP receive-buffer
/// errors (5.0 s to the last line); at 2000/s (window 200) exactly 2.00 and
/// no error in any phase (5.4 s); at 4000/s and 8000/s the start took
/// 2.9 and 2.6 s but the later waves overflowed buffers again (27-111
/// errors a phase). The first 20 go at once (`crate::pacing::BURST_SPAN`),
/// so a phone-sized fleet never waits.
const REGISTER_RATE: &[(u32, u32)] = &[(0, 1_000_000)];
/// `sipfleet.register.window`: REGISTER exchanges in flight at once per
/// flow (one transport and SBC address); 0: no window. Default 200: about
/// 130 KB of REGISTERs outstanding at one SBC, inside a Linux UDP receive
/// buffer (208 KB by default). On its own (no rate) it already took the
/// 10,000-line start above to 2.00 REGISTERs per line (29 buffer errors,
/// 4.0 s): an SBC that answers slowly gets fewer new requests, whatever the
/// rate says, and one slow or silent SBC holds its own lines, not the
/// others' (each flow has its own window).
const REGISTER_WINDOW: &[(u32, u32)] = &[(0, 100_000)];
/// `sipfleet.register.refreshSpread`: percent of the granted expiry by
/// which each refresh may come earlier than Poly's `expires.overlap` point,
/// drawn anew per refresh and never before half the expiry
/// (`crate::registration` has the rule). Default 10: with 3600 s granted,
/// refreshes of lines registered together spread over 6 minutes
/// (3180-3540 s), at the cost of refreshing 5 % more often on average; 0:
/// Poly's point exactly. At most 50: the refresh never comes before half.
const REFRESH_SPREAD: &[(u32, u32)] = &[(0, 50)];

#[rustfmt::skip]
macro_rules! server_family {
    ($p:literal) => {
        [
            Spec { template: concat!($p, "address"), kind: Kind::Host, default: "" },
            Spec { template: concat!($p, "port"), kind: Kind::Port, default: "0" },
            Spec { template: concat!($p, "transport"), kind: Kind::Transport, default: "DNSnaptr" },
            Spec { template: concat!($p, "expires"), kind: Kind::Int(EXPIRES), default: "3600" },
            Spec { template: concat!($p, "expires.overlap"), kind: Kind::Int(OVERLAP), default: "60" },
            Spec { template: concat!($p, "retryTimeOut"), kind: Kind::Int(U16), default: "0" },
            Spec { template: concat!($p, "retryMaxCount"), kind: Kind::Int(U16), default: "3" },
            Spec { template: concat!($p, "registerRetry.baseTimeOut"), kind: Kind::Int(BASE), default: "60" },
            Spec { template: concat!($p, "registerRetry.maxTimeOut"), kind: Kind::Int(MAXT), default: "60" },
        ]
    };
}

#[rustfmt::skip]
macro_rules! proxy_family {
    ($p:literal) => {
        [
            Spec { template: concat!($p, "address"), kind: Kind::Host, default: "" },
            Spec { template: concat!($p, "port"), kind: Kind::Port, default: "0" },
            Spec { template: concat!($p, "transport"), kind: Kind::Transport, default: "DNSnaptr" },
        ]
    };
}

#[rustfmt::skip]
macro_rules! failover_family {
    ($p:literal) => {
        [
            Spec { template: concat!($p, "failOver.reRegisterOn"), kind: Kind::Bool, default: "0" },
            Spec { template: concat!($p, "failOver.onlySignalWithRegistered"), kind: Kind::Bool, default: "1" },
            Spec { template: concat!($p, "failOver.failRegistrationOn"), kind: Kind::Bool, default: "1" },
            Spec { template: concat!($p, "failOver.failBack.mode"), kind: Kind::FailbackMode, default: "duration" },
            Spec { template: concat!($p, "failOver.failBack.timeout"), kind: Kind::Int(FAILBACK_TIMEOUT), default: "3600" },
            Spec { template: concat!($p, "failOver.unRegisterOnFailBack"), kind: Kind::Bool, default: "0" },
        ]
    };
}

#[rustfmt::skip]
const OTHER: &[Spec] = &[
    Spec { template: "reg.x.address", kind: Kind::Text(255), default: "" },
    Spec { template: "reg.x.displayName", kind: Kind::Text(255), default: "" },
    Spec { template: "reg.x.auth.userId", kind: Kind::Text(255), default: "" },
    Spec { template: "reg.x.auth.password", kind: Kind::Secret, default: "" },
    Spec { template: "reg.x.autoAnswer", kind: Kind::Bool, default: "0" },
    Spec { template: "reg.x.subscribe.mwi", kind: Kind::Bool, default: "0" },
    Spec { template: "reg.x.subscribe.sca", kind: Kind::Bool, default: "0" },
    Spec { template: "reg.x.subscribe.blf", kind: Kind::Text(1024), default: "" },
    Spec { template: "reg.x.callsPerLineKey", kind: Kind::Int(CALLS_PER_LINE), default: "24" },
    Spec { template: "call.callsPerLineKey", kind: Kind::Int(CALLS_PER_LINE), default: "24" },
    Spec { template: "sipfleet.call.ringTimeout", kind: Kind::Int(&[(0, 3600)]), default: "60" },
    Spec { template: "sipfleet.sockets.max", kind: Kind::Int(&[(0, 1_000_000)]), default: "0" },
    Spec { template: "sipfleet.register.rate", kind: Kind::Int(REGISTER_RATE), default: "2000" },
    Spec { template: "sipfleet.register.window", kind: Kind::Int(REGISTER_WINDOW), default: "200" },
    Spec { template: "sipfleet.register.refreshSpread", kind: Kind::Int(REFRESH_SPREAD), default: "10" },
    Spec { template: "voIpProt.SIP.failoverOn503Response", kind: Kind::Bool, default: "1" },
    Spec { template: "voIpProt.SIP.authOptimizedInFailover", kind: Kind::Bool, default: "0" },
    Spec { template: "voIpProt.SIP.newCallOnUnRegister", kind: Kind::Bool, default: "1" },
    Spec { template: "voIpProt.SIP.tcpFastFailover", kind: Kind::Bool, default: "0" },
    Spec { template: "voIpProt.SIP.tcpFastFailover.timeout", kind: Kind::Int(&[(2000, 5000)]), default: "5000" },
    Spec { template: "voIpProt.SIP.lineSeize.retries", kind: Kind::Int(&[(3, 10)]), default: "10" },
    Spec { template: "voIpProt.SIP.outboundProxy.failOver.enhanced.enable", kind: Kind::Bool, default: "0" },
    Spec { template: "tcpIpApp.keepalive.tcp.sip.tls.enable", kind: Kind::Bool, default: "0" },
    Spec { template: "tcpIpApp.keepalive.tcp.noResponseTransmitInterval", kind: Kind::Int(&[(5, 120)]), default: "20" },
    Spec { template: "tcpIpApp.keepalive.tcp.idleTransmitInterval", kind: Kind::Int(&[(10, 7200)]), default: "30" },
    Spec { template: "tcpIpApp.keepalive.tcp.sip.persistentConnection.enable", kind: Kind::Bool, default: "0" },
    Spec { template: "nat.keepalive.interval", kind: Kind::Int(&[(0, 3600)]), default: "0" },
    Spec { template: "nat.keepalive.udp.payload", kind: Kind::Text(255), default: "\\r\\n\\r\\n" },
    Spec { template: "nat.keepalive.tcp.payload", kind: Kind::Text(255), default: "\\r\\n\\r\\n" },
    Spec { template: "tcpIpApp.dns.server", kind: Kind::DnsServer, default: "" },
    Spec { template: "tcpIpApp.dns.altServer", kind: Kind::DnsServer, default: "" },
    Spec { template: "dns.cache.A.networkOverride", kind: Kind::Bool, default: "0" },
    Spec { template: "dns.cache.dynamicRestore.enable", kind: Kind::Bool, default: "0" },
    Spec { template: "dns.cache.dynamicRestore.ttl", kind: Kind::Int(&[(90, 600)]), default: "120" },
    Spec { template: "dns.cache.A.x.name", kind: Kind::Host, default: "" },
    Spec { template: "dns.cache.A.x.ttl", kind: Kind::Int(U16), default: "300" },
    Spec { template: "dns.cache.A.x.address", kind: Kind::Ipv4, default: "" },
    Spec { template: "dns.cache.SRV.x.name", kind: Kind::Host, default: "" },
    Spec { template: "dns.cache.SRV.x.ttl", kind: Kind::Int(U16), default: "300" },
    Spec { template: "dns.cache.SRV.x.priority", kind: Kind::Int(U16), default: "0" },
    Spec { template: "dns.cache.SRV.x.weight", kind: Kind::Int(U16), default: "0" },
    Spec { template: "dns.cache.SRV.x.port", kind: Kind::Int(U16), default: "0" },
    Spec { template: "dns.cache.SRV.x.target", kind: Kind::Host, default: "" },
    Spec { template: "dns.cache.NAPTR.x.name", kind: Kind::Host, default: "" },
    Spec { template: "dns.cache.NAPTR.x.ttl", kind: Kind::Int(U16), default: "300" },
    Spec { template: "dns.cache.NAPTR.x.order", kind: Kind::Int(U16), default: "0" },
    Spec { template: "dns.cache.NAPTR.x.preference", kind: Kind::Int(U16), default: "0" },
    Spec { template: "dns.cache.NAPTR.x.flags", kind: Kind::Text(255), default: "" },
    Spec { template: "dns.cache.NAPTR.x.service", kind: Kind::Text(255), default: "" },
    Spec { template: "dns.cache.NAPTR.x.regexp", kind: Kind::Text(255), default: "" },
    Spec { template: "dns.cache.NAPTR.x.replacement", kind: Kind::Host, default: "" },
];

/// All parameters, built once.
pub fn specs() -> &'static [Spec] {
    static SPECS: OnceLock<Vec<Spec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let mut v = Vec::new();
        v.extend(server_family!("voIpProt.server.y."));
        v.extend(server_family!("reg.x.server.y."));
        v.extend(proxy_family!("voIpProt.SIP.outboundProxy."));
        v.extend(proxy_family!("reg.x.outboundProxy."));
        v.extend(failover_family!("voIpProt.server.y."));
        v.extend(failover_family!("reg.x.server.y."));
        v.extend(failover_family!("voIpProt.SIP.outboundProxy."));
        v.extend(failover_family!("reg.x.outboundProxy."));
        v.extend_from_slice(OTHER);
        v
    })
}

/// Lower-cased template with `#` for each placeholder -> index into `specs()`.
fn shapes() -> &'static FxHashMap<String, usize> {
    static SHAPES: OnceLock<FxHashMap<String, usize>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        specs()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let shape = s
                    .template
                    .split('.')
                    .map(|seg| {
                        if seg == "x" || seg == "y" {
                            "#".to_string()
                        } else {
                            seg.to_ascii_lowercase()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(".");
                (shape, i)
            })
            .collect()
    })
}

/// The index of a template in `specs()`; panics only on a typo in this crate.
pub(crate) fn spec_id(template: &str) -> usize {
    static IDS: OnceLock<FxHashMap<&'static str, usize>> = OnceLock::new();
    let ids = IDS.get_or_init(|| {
        specs()
            .iter()
            .enumerate()
            .map(|(i, s)| (s.template, i))
            .collect()
    });
    match ids.get(template) {
        Some(&i) => i,
        None => unreachable!("unknown parameter template {template}"),
    }
}

/// A written key recognised as a known parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMatch {
    /// Index of the matched parameter in the schema table.
    pub spec: usize,
    /// The `x` and `y` indices in template order (0 when absent).
    pub x: u32,
    /// The `y` index (server or entry number), 0 when the template has none.
    pub y: u32,
    /// The key in its canonical spelling, with the indices filled in.
    pub canonical: String,
}

/// Why a key did not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMismatch {
    /// No parameter has this shape; the key is reported as unknown.
    Unknown,
    /// Known shape, but an index outside the allowed range.
    Index {
        /// The index as written.
        index: u64,
        /// The allowed range, for the message.
        allowed: String,
    },
}

/// Matches a written key case-insensitively against the table.
pub fn match_key(key: &str) -> Result<KeyMatch, KeyMismatch> {
    let mut indices = [0u64; 2];
    let mut count = 0;
    let mut shape = String::with_capacity(key.len());
    for (i, seg) in key.split('.').enumerate() {
        if i > 0 {
            shape.push('.');
        }
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            if count == indices.len() {
                return Err(KeyMismatch::Unknown);
            }
            indices[count] = seg.parse().unwrap_or(u64::MAX);
            count += 1;
            shape.push('#');
        } else {
            shape.extend(seg.chars().map(|c| c.to_ascii_lowercase()));
        }
    }
    let &spec = shapes().get(&shape).ok_or(KeyMismatch::Unknown)?;
    let template = specs()[spec].template;
    let mut canonical = String::with_capacity(key.len());
    let (mut x, mut y) = (0, 0);
    let mut next = indices.iter();
    for (i, seg) in template.split('.').enumerate() {
        if i > 0 {
            canonical.push('.');
        }
        let max = match seg {
            "x" if template.starts_with("reg.") => MAX_LINES,
            "x" => MAX_CACHE_ENTRIES,
            "y" => MAX_SERVERS,
            _ => {
                canonical.push_str(seg);
                continue;
            }
        };
        let index = next.next().copied().unwrap_or(0);
        if index == 0 || index > u64::from(max) {
            return Err(KeyMismatch::Index {
                index,
                allowed: format!("1 to {max}"),
            });
        }
        // `index <= max`, which fits in u32
        let index = index as u32;
        canonical.push_str(&index.to_string());
        if seg == "x" {
            x = index;
        } else {
            y = index;
        }
    }
    Ok(KeyMatch {
        spec,
        x,
        y,
        canonical,
    })
}

/// Renders a template with its indices, e.g. `reg.x.server.y.port` -> `reg.2.server.1.port`.
pub fn render(template: &str, x: u32, y: u32) -> String {
    template
        .split('.')
        .map(|seg| match seg {
            "x" => x.to_string(),
            "y" => y.to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}
