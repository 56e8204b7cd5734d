//! The typed configuration the rest of sipfleet uses.
//!
//! Each effective value is a [`Sourced`]: the value plus where it came from
//! (the guide's default, a global key, or a per-line key, with file and line),
//! which `sipfleet config check` prints and which makes "why does line 7 use
//! 600 s?" answerable. Durations keep the guide's units in the field name
//! (`_ms`, `_s`).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;

use super::error::{ConfigWarning, Location};
use crate::auth::{DigestClient, Secret};
use crate::route::Transport;

/// The `transport` parameter of a server or outbound proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportSetting {
    /// `DNSnaptr` (default): NAPTR decides, then SRV, then A.
    DnsNaptr,
    /// `TLS`: TLS over TCP only.
    Tls,
    /// `TCPOnly`: TCP only.
    TcpOnly,
    /// `TCPpreferred`: TCP, and UDP when TCP fails. The route list holds the
    /// TCP routes first, then the UDP routes, each as its own service record
    /// so a failover walk finishes TCP before it tries UDP.
    TcpPreferred,
    /// `UDPOnly`: UDP only.
    UdpOnly,
}

impl TransportSetting {
    /// Case-insensitive, as the guide spells it both `dnsNaptr` and `DNSNaptr`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "dnsnaptr" => Some(TransportSetting::DnsNaptr),
            "tls" => Some(TransportSetting::Tls),
            "tcponly" => Some(TransportSetting::TcpOnly),
            "tcppreferred" => Some(TransportSetting::TcpPreferred),
            "udponly" => Some(TransportSetting::UdpOnly),
            _ => None,
        }
    }

    /// The setting as the guide spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportSetting::DnsNaptr => "DNSnaptr",
            TransportSetting::Tls => "TLS",
            TransportSetting::TcpOnly => "TCPOnly",
            TransportSetting::TcpPreferred => "TCPpreferred",
            TransportSetting::UdpOnly => "UDPOnly",
        }
    }

    /// The transports this setting uses, in order of preference, each
    /// looked up as its own service record; empty when NAPTR decides.
    pub fn transports(self) -> &'static [Transport] {
        match self {
            TransportSetting::DnsNaptr => &[],
            TransportSetting::Tls => &[Transport::Tls],
            TransportSetting::TcpOnly => &[Transport::Tcp],
            TransportSetting::TcpPreferred => &[Transport::Tcp, Transport::Udp],
            TransportSetting::UdpOnly => &[Transport::Udp],
        }
    }

    /// The one transport to use, or `None` when NAPTR decides or when two
    /// are tried in turn (`TCPpreferred`).
    pub fn fixed(self) -> Option<Transport> {
        match self.transports() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

impl fmt::Display for TransportSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `failOver.failBack.mode`. How the modes apply (and what `reRegisterOn=0`
/// means) is design decision 1, implemented in `registration`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FailbackMode {
    /// Try the primary again `failBack.timeout` seconds after registering on a
    /// non-primary route (the guide's default).
    #[default]
    Duration,
    /// Every new request, registration refreshes included, tries the primary
    /// first.
    NewRequests,
    /// Try the primary again after the DNS TTL of the current route.
    DnsTtl,
    /// Try the primary at each registration refresh.
    Registration,
}

impl FailbackMode {
    /// Case-insensitive; the guide also writes `newRequest`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "duration" => Some(FailbackMode::Duration),
            "newrequests" | "newrequest" => Some(FailbackMode::NewRequests),
            "dnsttl" => Some(FailbackMode::DnsTtl),
            "registration" => Some(FailbackMode::Registration),
            _ => None,
        }
    }

    /// The mode as the guide spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailbackMode::Duration => "duration",
            FailbackMode::NewRequests => "newRequests",
            FailbackMode::DnsTtl => "DNSTTL",
            FailbackMode::Registration => "registration",
        }
    }
}

impl fmt::Display for FailbackMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key and place that set a value. Shared (`Arc`) because one global key
/// feeds every line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAt {
    /// Canonical key, e.g. `voIpProt.server.1.retryMaxCount`.
    pub key: String,
    /// The file and line, or the environment variable, that set it.
    pub location: Location,
}

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// Nothing set it: the guide's default.
    Default,
    /// A key shared by all lines (`voIpProt.*`, `tcpIpApp.*`, `nat.*`, `dns.*`).
    Global(Arc<SetAt>),
    /// A per-line key (`reg.x.*`).
    Line(Arc<SetAt>),
}

impl fmt::Display for ValueSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueSource::Default => f.write_str("default"),
            ValueSource::Global(s) => write!(f, "global {} @ {}", s.key, s.location),
            ValueSource::Line(s) => write!(f, "per-line {} @ {}", s.key, s.location),
        }
    }
}

/// An effective value and its source. Derefs to the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value in force.
    pub value: T,
    /// Where it came from.
    pub source: ValueSource,
}

impl<T> Deref for Sourced<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Copy> Sourced<T> {
    /// The value (a copy).
    pub fn get(&self) -> T {
        self.value
    }
}

/// The whole configuration of a fleet of lines.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// Configured lines (those with a non-empty `reg.x.address`), by index.
    pub lines: Vec<LineConfig>,
    /// `voIpProt.SIP.*` settings.
    pub sip: SipSettings,
    /// Keep-alive settings of the flows.
    pub keepalive: KeepaliveSettings,
    /// DNS servers and the static / restored cache.
    pub dns: DnsSettings,
    /// Process resources (`sipfleet.sockets.max`).
    pub resources: ResourceSettings,
    /// How the fleet paces its REGISTERs (`sipfleet.register.*`).
    pub pacing: RegisterPacing,
    /// Unknown keys and other non-fatal findings, in source order.
    pub warnings: Vec<ConfigWarning>,
}

/// One line, `reg.x`.
#[derive(Clone, Debug)]
pub struct LineConfig {
    /// `x` in `reg.x.*`.
    pub index: u32,
    /// `reg.x.address`: the user part or AOR.
    pub address: Sourced<String>,
    /// `reg.x.displayName`.
    pub display_name: Sourced<String>,
    /// `reg.x.auth.userId`; empty means "use the address".
    pub auth_user_id: Sourced<String>,
    /// `reg.x.auth.password`; `Debug` prints `***`.
    pub auth_password: Sourced<Secret>,
    /// The registrars `y = 1..`, in index order; never empty.
    pub servers: Vec<ServerConfig>,
    /// `reg.x.outboundProxy.*` over `voIpProt.SIP.outboundProxy.*`, when an
    /// address is set at either scope.
    pub outbound_proxy: Option<ServerConfig>,
    /// The registration timers of the primary (lowest-index) server scope.
    pub registration: RegistrationTimers,
    /// The failover settings in force: the outbound proxy's scope when an
    /// outbound proxy is configured, the primary server's scope otherwise.
    pub failover: FailoverSettings,
    /// Calls and subscriptions of the line (sipfleet's own keys).
    pub features: LineFeatures,
}

/// sipfleet's per-line call and subscription keys (not Poly parameters;
/// all off by default).
#[derive(Clone, Debug)]
pub struct LineFeatures {
    /// `reg.x.autoAnswer`: answer incoming calls at once (load tests).
    pub auto_answer: Sourced<bool>,
    /// `reg.x.subscribe.mwi`: MWI (`message-summary`) on the line's AOR.
    pub subscribe_mwi: Sourced<bool>,
    /// `reg.x.subscribe.sca`: SCA (`call-info`) on the line's AOR.
    pub subscribe_sca: Sourced<bool>,
    /// `reg.x.subscribe.blf`: comma-separated extensions (or SIP URIs)
    /// watched with BLF (`dialog`).
    pub subscribe_blf: Sourced<String>,
    /// `reg.x.callsPerLineKey` over `call.callsPerLineKey` (Poly; 1 to 24,
    /// default 24): calls the line holds at once; a new INVITE above gets
    /// 486 Busy Here.
    pub calls_per_line: Sourced<u32>,
    /// `sipfleet.call.ringTimeout`, seconds (0 to 3600, default 60; 0:
    /// ring until the caller gives up): an unanswered incoming call then
    /// gets 480.
    pub ring_timeout_s: Sourced<u32>,
}

/// What the fleet may take from the process (sipfleet's own keys).
#[derive(Clone, Debug)]
pub struct ResourceSettings {
    /// `sipfleet.sockets.max` (0 to 1000000, default 0: the open-file limit
    /// less a reserve for flows and DNS, see
    /// [`crate::resources::default_socket_max`]): media sockets open at
    /// once across the fleet.
    pub sockets_max: Sourced<u32>,
}

/// How the fleet starts REGISTER exchanges (sipfleet's own keys, fleet-wide;
/// ranges, defaults and why in the schema table). A Poly phone has a handful
/// of lines and nothing to pace; a fleet of thousands must not register,
/// fail over or refresh in one burst.
#[derive(Clone, Debug)]
pub struct RegisterPacing {
    /// `sipfleet.register.rate`: exchanges started per second, fleet-wide;
    /// 0: no limit.
    pub rate: Sourced<u32>,
    /// `sipfleet.register.window`: exchanges in flight per flow; 0: no
    /// limit.
    pub window: Sourced<u32>,
    /// `sipfleet.register.refreshSpread`: percent of the granted expiry a
    /// refresh may come early, drawn per refresh; 0: Poly's point.
    pub refresh_spread_pct: Sourced<u32>,
}

impl LineFeatures {
    /// `sipfleet.call.ringTimeout` as the call machine takes it
    /// ([`crate::call::CallSettings::ring_timeout`]): `None` for 0.
    pub fn ring_timeout(&self) -> Option<std::time::Duration> {
        match self.ring_timeout_s.get() {
            0 => None,
            s => Some(std::time::Duration::from_secs(s.into())),
        }
    }
}

impl FleetConfig {
    /// The line `reg.index`, if configured.
    pub fn line(&self, index: u32) -> Option<&LineConfig> {
        self.lines
            .binary_search_by_key(&index, |l| l.index)
            .ok()
            .map(|i| &self.lines[i])
    }
}

impl LineConfig {
    /// The digest user name: `reg.x.auth.userId`, or the address when unset.
    /// `reg.x.auth.userId`, or the user part of `reg.x.address` when unset.
    pub fn auth_username(&self) -> &str {
        let id = self.auth_user_id.value.trim();
        if !id.is_empty() {
            return id;
        }
        let address = self.address.value.trim();
        let address = address.strip_prefix("sip:").unwrap_or(address);
        address.split('@').next().unwrap_or(address)
    }

    /// A digest client holding this line's credentials.
    pub fn digest_client(&self) -> DigestClient {
        DigestClient::new(self.auth_username(), self.auth_password.value.clone())
    }

    /// Where requests go first: the outbound proxy when set, else the servers.
    pub fn first_hops(&self) -> Vec<&ServerConfig> {
        match &self.outbound_proxy {
            Some(p) => vec![p],
            None => self.servers.iter().collect(),
        }
    }
}

/// A registrar or outbound proxy of a line, after scoping.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `y` for `server.y`; 0 for the outbound proxy.
    pub index: u32,
    /// `server.y.address`: a domain, host name or IP literal.
    pub address: Sourced<String>,
    /// `None` (configured 0 or empty): look up SRV.
    pub port: Sourced<Option<u16>>,
    /// `server.y.transport`.
    pub transport: Sourced<TransportSetting>,
    /// The server's own timers; for the outbound proxy, the line's
    /// (primary server scope), as Poly has no proxy-scoped timers.
    pub timers: RegistrationTimers,
    /// The server's failover settings.
    pub failover: FailoverSettings,
}

/// Timers from `voIpProt.server.y.*` / `reg.x.server.y.*`.
#[derive(Clone, Debug)]
pub struct RegistrationTimers {
    /// `expires`, seconds (10 to 2^31-1, default 3600).
    pub expires_s: Sourced<u32>,
    /// `expires.overlap`, seconds (5 to 65535, default 60): refresh this long
    /// before the granted expiry, at half of it when half is shorter.
    pub expires_overlap_s: Sourced<u32>,
    /// `retryTimeOut`, ms (0 to 65535, default 0 = RFC 3261 back-off).
    pub retry_timeout_ms: Sourced<u32>,
    /// `retryMaxCount` (0 to 65535, default 3).
    pub retry_max_count: Sourced<u32>,
    /// `registerRetry.baseTimeOut`, seconds (10 to 120, default 60).
    pub register_retry_base_s: Sourced<u32>,
    /// `registerRetry.maxTimeOut`, seconds (60 to 1800, default 60).
    pub register_retry_max_s: Sourced<u32>,
}

/// The guide's RROFO table for one scope.
#[derive(Clone, Debug)]
pub struct FailoverSettings {
    /// `failOver.reRegisterOn` (default 0).
    pub re_register_on: Sourced<bool>,
    /// `failOver.onlySignalWithRegistered` (default 1).
    pub only_signal_with_registered: Sourced<bool>,
    /// `failOver.failRegistrationOn` (default 1).
    pub fail_registration_on: Sourced<bool>,
    /// `failOver.failBack.mode` (default duration).
    pub failback_mode: Sourced<FailbackMode>,
    /// `failOver.failBack.timeout`, seconds (0 or 60 to 65535, default 3600;
    /// 0 = no failback until the current route fails).
    pub failback_timeout_s: Sourced<u32>,
    /// `failOver.unRegisterOnFailBack` (default 0).
    pub unregister_on_failback: Sourced<bool>,
    /// `voIpProt.SIP.outboundProxy.failOver.enhanced.enable` (default 0):
    /// fleet-wide, repeated here for convenience.
    pub enhanced: Sourced<bool>,
}

/// `voIpProt.SIP.*` settings shared by all lines.
#[derive(Clone, Debug)]
pub struct SipSettings {
    /// `failoverOn503Response` (default 1).
    pub failover_on_503: Sourced<bool>,
    /// `authOptimizedInFailover` (default 0).
    pub auth_optimized_in_failover: Sourced<bool>,
    /// `newCallOnUnRegister` (default 1).
    pub new_call_on_unregister: Sourced<bool>,
    /// `tcpFastFailover` (default 0).
    pub tcp_fast_failover: Sourced<bool>,
    /// `tcpFastFailover.timeout`, ms (2000 to 5000, default 5000).
    pub tcp_fast_failover_timeout_ms: Sourced<u32>,
    /// `lineSeize.retries` (3 to 10, default 10).
    pub line_seize_retries: Sourced<u32>,
    /// `outboundProxy.failOver.enhanced.enable` (default 0).
    pub enhanced_failover: Sourced<bool>,
}

/// Keep-alive settings (`tcpIpApp.keepalive.*`, `nat.keepalive.*`).
#[derive(Clone, Debug)]
pub struct KeepaliveSettings {
    /// `tcpIpApp.keepalive.tcp.sip.tls.enable` (default 0).
    pub tls_enable: Sourced<bool>,
    /// `...tcp.noResponseTransmitInterval`, seconds (5 to 120, default 20).
    pub tcp_no_response_interval_s: Sourced<u32>,
    /// `...tcp.idleTransmitInterval`, seconds (10 to 7200, default 30).
    pub tcp_idle_interval_s: Sourced<u32>,
    /// `...tcp.sip.persistentConnection.enable` (default 0).
    pub tcp_persistent_connection: Sourced<bool>,
    /// `nat.keepalive.interval`, seconds (0 = off, up to 3600).
    pub nat_interval_s: Sourced<u32>,
    /// `nat.keepalive.udp.payload`, with `\r`, `\n`, `\t`, `\\` decoded.
    pub nat_udp_payload: Sourced<Vec<u8>>,
    /// `nat.keepalive.tcp.payload`, decoded likewise.
    pub nat_tcp_payload: Sourced<Vec<u8>>,
}

/// DNS servers and the static / restored cache settings.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    /// `tcpIpApp.dns.server` (port 53 unless written `ip:port`).
    pub server: Option<Sourced<SocketAddr>>,
    /// `tcpIpApp.dns.altServer`.
    pub alt_server: Option<Sourced<SocketAddr>>,
    /// `dns.cache.A.networkOverride`: consult static A entries before the network.
    pub a_network_override: Sourced<bool>,
    /// `dns.cache.dynamicRestore.enable` (default 0).
    pub dynamic_restore: Sourced<bool>,
    /// `dns.cache.dynamicRestore.ttl`, seconds (90 to 600, default 120).
    pub dynamic_restore_ttl_s: Sourced<u32>,
    /// `dns.cache.A.x.*` entries.
    pub static_a: Vec<StaticA>,
    /// `dns.cache.SRV.x.*` entries.
    pub static_srv: Vec<StaticSrv>,
    /// `dns.cache.NAPTR.x.*` entries.
    pub static_naptr: Vec<StaticNaptr>,
}

/// `dns.cache.A.x.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticA {
    /// `x`.
    pub index: u32,
    /// The name.
    pub name: String,
    /// TTL, seconds.
    pub ttl_s: u32,
    /// The IPv4 address.
    pub address: Ipv4Addr,
}

/// `dns.cache.SRV.x.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticSrv {
    /// `x`.
    pub index: u32,
    /// e.g. `_sip._udp.example.com`.
    pub name: String,
    /// TTL, seconds.
    pub ttl_s: u32,
    /// SRV priority.
    pub priority: u16,
    /// SRV weight.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host.
    pub target: String,
}

/// `dns.cache.NAPTR.x.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticNaptr {
    /// `x`.
    pub index: u32,
    /// The name.
    pub name: String,
    /// TTL, seconds.
    pub ttl_s: u32,
    /// NAPTR order.
    pub order: u16,
    /// NAPTR preference.
    pub preference: u16,
    /// NAPTR flags (`s`, `a`, ...).
    pub flags: String,
    /// e.g. `SIP+D2U`.
    pub service: String,
    /// NAPTR regexp field.
    pub regexp: String,
    /// e.g. `_sip._udp.example.com`.
    pub replacement: String,
}
