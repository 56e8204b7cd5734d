//! Routes: the places a request can be sent to.
//!
//! Shared vocabulary between `dns` (which builds ordered route lists from
//! NAPTR/SRV/A answers and the static cache) and `registration` (which walks them
//! on failover and failback). A route list is ordered by the guide's "selection
//! order"; routes that came from the same service record share a `group`, because
//! the guide's failover walk finishes a service record before moving to the next.

use std::fmt;
use std::net::SocketAddr;

use serde::Serialize;

/// The SIP transport a route uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// Lower-case name, as used in `Via` (upper-cased there), JSON events and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The port assumed when neither configuration nor SRV gives one.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }

    /// Reliable transports do not retransmit requests (RFC 3261 17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the address of a route came from, so a user can tell a live DNS answer
/// from a fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSource {
    /// A live answer from a DNS server.
    Network,
    /// `dns.cache.*` static entries.
    #[serde(rename = "static")]
    StaticCache,
    /// A previous network answer reused by `dns.cache.dynamicRestore`.
    Restored,
    /// An IP literal in the configuration: no DNS involved.
    Literal,
}

impl RouteSource {
    /// The source's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteSource::Network => "network",
            RouteSource::StaticCache => "static",
            RouteSource::Restored => "restored",
            RouteSource::Literal => "literal",
        }
    }
}

/// One destination: a transport and a socket address, with what DNS said of it.
///
/// Its JSON form (the `route` of the event stream) is `transport`, `host`,
/// `address` (ip:port) and `source`; the selection details stay out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    /// `udp`, `tcp` or `tls`.
    pub transport: Transport,
    /// The host name the address was resolved from (SRV target, or the configured
    /// address). TLS verifies the server certificate against this name.
    pub host: String,
    /// The IP address and port (`address` in JSON).
    #[serde(rename = "address")]
    pub addr: SocketAddr,
    /// Index of the service record (NAPTR entry, or the single SRV/A set) this
    /// route belongs to, in selection order: 0 is the best-ranked record.
    #[serde(skip)]
    pub group: usize,
    /// SRV priority (lower is preferred); 0 when no SRV record was involved.
    #[serde(skip)]
    pub priority: u16,
    /// SRV weight; 0 when no SRV record was involved.
    #[serde(skip)]
    pub weight: u16,
    /// Where the address came from (network, static cache, restored, literal).
    pub source: RouteSource,
}

impl Route {
    /// Two routes are the same destination when transport and address match;
    /// DNS details (priority, TTL, source) may change between refreshes.
    pub fn same_destination(&self, other: &Route) -> bool {
        self.transport == other.transport && self.addr == other.addr
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} ({})", self.transport, self.addr, self.host)
    }
}

/// Identity of a flow: what lines share (one transport connection or one
/// UDP destination). Lines name flows by it; the transport owns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The flow's transport.
    pub transport: Transport,
    /// The peer's address.
    pub remote: SocketAddr,
}

impl FlowKey {
    /// The flow of `route`.
    pub fn of(route: &Route) -> Self {
        FlowKey {
            transport: route.transport,
            remote: route.addr,
        }
    }
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.remote)
    }
}
