//! DNS queries on the wire, one question at a time, through hickory-resolver.
//!
//! Only the transport job lives here: send a NAPTR, SRV or A question to the
//! configured servers (`tcpIpApp.dns.server` / `altServer`, optional `:port`) and
//! classify what came back the way `protocol::dns` needs it: silence or an
//! unreachable server (restorable), a negative answer, an error answer. Which
//! questions to ask, caching and ordering are the protocol core's job, so
//! hickory's own cache is disabled (`cache_size = 0`): it reads the wall clock,
//! and our cache must follow the caller's `now`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
    ServerOrderingStrategy,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType as WireType};
use hickory_resolver::TokioResolver;
use sipfleet_protocol::dns::{
    normalize_name, ARecord, Answer, NaptrRecord, Query, QueryFailure, RecordType, SrvRecord,
};

/// The DNS port when `tcpIpApp.dns.server` names none.
pub const DNS_PORT: u16 = 53;

/// Where and how to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsClientConfig {
    /// `tcpIpApp.dns.server` then `tcpIpApp.dns.altServer`, tried in this order.
    pub servers: Vec<SocketAddr>,
    /// Time to wait for one answer from one server.
    pub timeout: Duration,
    /// Tries of each query, the first one included, before it counts as
    /// unanswered (hickory's `attempts` counts retries only). Every try waits
    /// up to `timeout`, for all servers together: hickory asks the configured
    /// servers in parallel within that deadline.
    pub attempts: usize,
}

impl DnsClientConfig {
    /// `servers` in order (the first is asked first), 2 s per attempt, two
    /// attempts: a phone's resolver defaults.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        DnsClientConfig {
            servers,
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }
}

/// A configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsConfigError {
    /// `tcpIpApp.dns.server` (or `--dns`) is not an IP address with an
    /// optional port; the value as given.
    #[error("invalid DNS server {0:?}: expected an IP address with an optional :port")]
    InvalidServer(String),
    /// Neither the configuration nor `/etc/resolv.conf` names a server.
    #[error("no DNS server configured")]
    NoServer,
    /// hickory refused the resolver built from the settings; its reason.
    #[error("cannot build the resolver: {0}")]
    Build(String),
}

/// Parse `tcpIpApp.dns.server` style values: `192.0.2.53`, `192.0.2.53:5353`,
/// `::1`, `[::1]:5353`.
pub fn parse_server(value: &str) -> Result<SocketAddr, DnsConfigError> {
    let value = value.trim();
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    value
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| DnsConfigError::InvalidServer(value.to_string()))
}

/// `nameserver` lines of `/etc/resolv.conf` (port 53), for when the
/// configuration names no DNS server. Read by hand because hickory's
/// `system-config` feature would also bring system options (search domains,
/// ndots) that the guide's resolution must not use. A missing or odd file
/// gives none: IP-literal servers still work, named ones report the missing
/// DNS server.
pub fn system_servers() -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string("/etc/resolv.conf") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| parse_server(v.trim()).ok())
        .collect()
}

/// Sends single questions to the configured DNS servers.
#[derive(Clone)]
pub struct DnsClient {
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsClient").finish_non_exhaustive()
    }
}

impl DnsClient {
    /// Must be called inside a tokio runtime (hickory spawns its I/O there).
    pub fn new(config: &DnsClientConfig) -> Result<Self, DnsConfigError> {
        if config.servers.is_empty() {
            return Err(DnsConfigError::NoServer);
        }
        let name_servers = config
            .servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut options = ResolverOpts::default();
        options.cache_size = 0;
        options.timeout = config.timeout;
        options.attempts = config.attempts.max(1) - 1;
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        options.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
        options.edns_payload_len = 1232;
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(options)
        .build()
        .map_err(|e| DnsConfigError::Build(e.to_string()))?;
        Ok(DnsClient { resolver })
    }

    /// Ask one question. Records of other types in the answer (CNAME chains)
    /// are skipped; an answer without records of the asked type is
    /// [`QueryFailure::NoRecords`].
    pub async fn query(&self, query: &Query) -> Result<Answer, QueryFailure> {
        let wire_type = match query.rtype {
            RecordType::A => WireType::A,
            RecordType::Srv => WireType::SRV,
            RecordType::Naptr => WireType::NAPTR,
        };
        // Fully qualified, so no search domain is appended.
        let fqdn = format!("{}.", query.name);
        let lookup = self
            .resolver
            .lookup(fqdn.as_str(), wire_type)
            .await
            .map_err(|e| classify(&e))?;
        let records = lookup.answers();
        let answer = match query.rtype {
            RecordType::A => Answer::A(
                records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(ARecord {
                            addr: a.0,
                            ttl_s: r.ttl,
                        }),
                        _ => None,
                    })
                    .collect(),
            ),
            RecordType::Srv => Answer::Srv(
                records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(s) => Some(SrvRecord {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: normalize_name(&s.target.to_ascii()),
                            ttl_s: r.ttl,
                        }),
                        _ => None,
                    })
                    .collect(),
            ),
            RecordType::Naptr => Answer::Naptr(
                records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NAPTR(n) => Some(NaptrRecord {
                            order: n.order,
                            preference: n.preference,
                            flags: String::from_utf8_lossy(&n.flags).into_owned(),
                            services: String::from_utf8_lossy(&n.services).into_owned(),
                            regexp: String::from_utf8_lossy(&n.regexp).into_owned(),
                            replacement: normalize_name(&n.replacement.to_ascii()),
                            ttl_s: r.ttl,
                        }),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        if answer.is_empty() {
            return Err(QueryFailure::NoRecords);
        }
        Ok(answer)
    }
}

/// Map hickory's error onto the guide's three kinds of failure. Bytes that
/// cannot be matched to the query (wrong ID, too short) are not an answer, so
/// they end as a timeout like silence; a matched reply with a broken body is
/// [`QueryFailure::Malformed`], which is not restorable.
pub fn classify(error: &NetError) -> QueryFailure {
    match error {
        NetError::Timeout => QueryFailure::Timeout,
        NetError::Io(e) => QueryFailure::Unreachable(e.to_string()),
        NetError::NoConnections => QueryFailure::Unreachable(error.to_string()),
        NetError::Dns(DnsError::NoRecordsFound(no))
            if no.response_code == ResponseCode::NXDomain =>
        {
            QueryFailure::NxDomain
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => QueryFailure::NoRecords,
        NetError::Dns(DnsError::ResponseCode(code)) => {
            QueryFailure::ErrorResponse(code.to_string())
        }
        NetError::Proto(e) => QueryFailure::Malformed(e.to_string()),
        other => QueryFailure::Other(other.to_string()),
    }
}
