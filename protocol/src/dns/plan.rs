//! The resolution plan for one configured address: which queries to make, in
//! which order, and how their answers become the ordered route list.
//!
//! ```text
//!  transport setting / port        first query        if it fails
//!  ---------------------------     -----------        -----------
//!  any, IP literal address         none               -
//!  any, explicit port P            A name             no routes
//!  TLS, port 0                     SRV _sips._tcp     A name, port 5061
//!  TCPOnly, port 0                 SRV _sip._tcp      A name, port 5060
//!  UDPOnly, port 0                 SRV _sip._udp      A name, port 5060
//!  TCPpreferred, port 0            SRV _sip._tcp,     A name, port 5060, TCP
//!                                  SRV _sip._udp      then UDP
//!  dnsNaptr, port 0                NAPTR name         SRV _sip._udp, _sip._tcp,
//!                                                     _sips._tcp, then A name 5060/UDP
//! ```
//!
//! `TCPpreferred` ("TCP, UDP when TCP fails") makes two service records of
//! one name: every TCP route first (group 0), then every UDP route (group
//! 1), so the registration's walk, which finishes a record before the next,
//! tries UDP only after every TCP route failed. With an explicit port (or an
//! IP literal) both records hold the same addresses; with port 0 each comes
//! from its own SRV query. As for the single transports, the A fallback is
//! made only when neither SRV query got an answer: a domain that publishes
//! `_sip._udp` but not `_sip._tcp` offers no TCP.
//!
//! NAPTR records (flag `s`, services SIP+D2U / SIP+D2T / SIPS+D2T) are ranked by
//! order and preference; each becomes one service record (`Route::group`) whose
//! SRV answer is ranked by priority and RFC 2782 weight; each SRV target's A
//! answer gives up to four addresses. The failover walk of the registration
//! engine uses the groups.
//!
//! Use: `new`, then repeatedly `poll_query` and feed each outcome to
//! `handle_result` until `is_done`, then `finish`. Queries are returned once each
//! even when several records point at the same name.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rand::RngCore;

use crate::route::{Route, RouteSource, Transport};

use super::order::{order_naptr, order_srv};
use super::records::{Answer, Query, QueryFailure, RecordType, Resolved, SrvRecord};
use super::{normalize_name, ResolveTarget, TransportSetting, MAX_ADDRESSES_PER_A};

/// One route with the DNS details that produced it (for the failover walk,
/// refresh decisions and `sipfleet routes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// The route itself: destination, transport and failover group.
    pub route: Route,
    /// The guide's "Selection Order" (1-based): routes of the same service record
    /// with the same SRV priority and weight share a number.
    pub selection_order: usize,
    /// NAPTR order and preference of the service record, if NAPTR was used.
    pub naptr: Option<(u16, u16)>,
    /// The SRV name queried for this route, if SRV was used.
    pub srv_name: Option<String>,
    /// When the shortest-lived record behind this route expires (`None`: an IP
    /// literal, which never expires).
    pub expires: Option<Instant>,
}

/// The ordered route list for one target, in selection order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSet {
    /// The server the routes were resolved for.
    pub target: ResolveTarget,
    /// The routes, in selection order.
    pub entries: Vec<RouteEntry>,
    /// When the first record behind the set expires: the time to refresh it.
    pub expires: Option<Instant>,
}

impl RouteSet {
    /// The routes in selection order.
    pub fn routes(&self) -> Vec<Route> {
        self.entries.iter().map(|e| e.route.clone()).collect()
    }

    /// Whether `route`'s destination is still in this set (the guide's sticky
    /// route rule: a refresh that keeps the current address changes nothing).
    pub fn contains_destination(&self, route: &Route) -> bool {
        self.entries.iter().any(|e| e.route.same_destination(route))
    }

    /// Same destinations in the same order and groups (DNS details such as TTL may
    /// differ): when this is false, subscribers are told the set changed.
    pub fn same_routes(&self, other: &RouteSet) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.route.same_destination(&b.route) && a.route.group == b.route.group)
    }
}

/// Why a target produced no route.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The target's address is empty, so there is nothing to resolve.
    #[error("empty server address")]
    EmptyName,
    /// No query gave a usable route for the target.
    #[error("no route for {target}: {}", describe(.failures))]
    NoRoutes {
        /// The server that gave nothing.
        target: ResolveTarget,
        /// Every query that failed, with its classified failure.
        failures: Vec<(Query, QueryFailure)>,
    },
}

fn describe(failures: &[(Query, QueryFailure)]) -> String {
    if failures.is_empty() {
        return "no usable records".to_string();
    }
    let parts: Vec<String> = failures.iter().map(|(q, f)| format!("{q}: {f}")).collect();
    parts.join("; ")
}

/// One service record being resolved.
#[derive(Debug)]
struct Group {
    transport: Transport,
    naptr: Option<(u16, u16)>,
    source: RouteSource,
    expires: Option<Instant>,
    kind: GroupKind,
}

#[derive(Debug)]
enum GroupKind {
    /// A query on `name`, every address on `port`.
    Direct { name: String, port: u16 },
    /// SRV query on `name`; `None` until answered, then the ordered records.
    Srv {
        name: String,
        records: Option<Vec<SrvRecord>>,
        srv_source: RouteSource,
        srv_expires: Option<Instant>,
    },
    /// An IP literal.
    Literal { addr: SocketAddr },
}

/// The sans-IO resolution of one [`ResolveTarget`].
#[derive(Debug)]
pub struct Resolution {
    target: ResolveTarget,
    groups: Vec<Group>,
    to_send: VecDeque<Query>,
    asked: HashSet<Query>,
    outstanding: HashSet<Query>,
    addresses: HashMap<String, Resolved>,
    failures: Vec<(Query, QueryFailure)>,
    /// Transports and port of the A query made when no SRV record is found,
    /// one service record each.
    srv_fallback: Vec<(Transport, u16)>,
    /// Some SRV query got a positive answer (even one whose only target is
    /// ".", RFC 2782's "not offered here"): no A fallback then.
    srv_answered: bool,
}

impl Resolution {
    /// Plan the first queries for `target`.
    pub fn new(target: ResolveTarget) -> Self {
        let mut plan = Resolution {
            target: target.clone(),
            groups: Vec::new(),
            to_send: VecDeque::new(),
            asked: HashSet::new(),
            outstanding: HashSet::new(),
            addresses: HashMap::new(),
            failures: Vec::new(),
            srv_fallback: Vec::new(),
            srv_answered: false,
        };
        let name = normalize_name(target.name.trim());
        if name.is_empty() {
            return plan;
        }
        // dnsNaptr without NAPTR (an IP literal or an explicit port): UDP.
        let transports = match target.transport_setting.transports() {
            [] => &[Transport::Udp][..],
            some => some,
        };
        if let Some(ip) = parse_ip(&name) {
            for &transport in transports {
                let port = if target.port == 0 {
                    transport.default_port()
                } else {
                    target.port
                };
                plan.push_group(
                    transport,
                    None,
                    RouteSource::Literal,
                    None,
                    GroupKind::Literal {
                        addr: SocketAddr::new(ip, port),
                    },
                );
            }
        } else if target.port != 0 {
            for &transport in transports {
                plan.push_direct(transport, name.clone(), target.port);
            }
        } else if target.transport_setting == TransportSetting::DnsNaptr {
            plan.ask(Query::new(&name, RecordType::Naptr));
        } else {
            for &transport in transports {
                plan.srv_fallback
                    .push((transport, transport.default_port()));
                plan.push_srv(
                    transport,
                    srv_name(transport, &name),
                    None,
                    RouteSource::Network,
                    None,
                );
            }
        }
        plan
    }

    /// The server this resolution is for.
    pub fn target(&self) -> &ResolveTarget {
        &self.target
    }

    /// The next query to make, if any. Each query is returned once.
    pub fn poll_query(&mut self) -> Option<Query> {
        let query = self.to_send.pop_front()?;
        self.outstanding.insert(query.clone());
        Some(query)
    }

    /// No query left to make or wait for: call [`Resolution::finish`].
    pub fn is_done(&self) -> bool {
        self.to_send.is_empty() && self.outstanding.is_empty()
    }

    /// Feed the outcome of `query` (from the network through the cache, or from
    /// the cache alone). `rng` orders SRV records of equal priority.
    pub fn handle_result(
        &mut self,
        query: &Query,
        result: Result<Resolved, QueryFailure>,
        rng: &mut dyn RngCore,
    ) {
        if !self.outstanding.remove(query) {
            return;
        }
        let resolved = match result {
            Ok(r) if r.answer.rtype() == query.rtype && !r.answer.is_empty() => Ok(r),
            Ok(_) => Err(QueryFailure::NoRecords),
            Err(f) => Err(f),
        };
        if let Err(failure) = &resolved {
            self.failures.push((query.clone(), failure.clone()));
        }
        match query.rtype {
            RecordType::Naptr => self.handle_naptr(query, resolved.ok()),
            RecordType::Srv => self.handle_srv(query, resolved.ok(), rng),
            RecordType::A => {
                if let Ok(r) = resolved {
                    self.addresses.insert(query.name.clone(), r);
                }
            }
        }
        self.maybe_fall_back_to_a();
    }

    fn handle_naptr(&mut self, query: &Query, resolved: Option<Resolved>) {
        let usable = match &resolved {
            Some(Resolved {
                answer: Answer::Naptr(records),
                ..
            }) => order_naptr(records),
            _ => Vec::new(),
        };
        if let (Some(r), false) = (&resolved, usable.is_empty()) {
            for (record, transport) in usable {
                let naptr = Some((record.order, record.preference));
                self.push_srv(
                    transport,
                    record.replacement,
                    naptr,
                    r.source,
                    Some(r.expires),
                );
            }
            return;
        }
        // RFC 3263 4.1: no usable NAPTR, so ask SRV for each supported transport
        // (UDP first, the guide's default transport), then A on 5060/UDP.
        self.srv_fallback = vec![(Transport::Udp, Transport::Udp.default_port())];
        for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            self.push_srv(
                transport,
                srv_name(transport, &query.name),
                None,
                RouteSource::Network,
                None,
            );
        }
    }

    fn handle_srv(&mut self, query: &Query, resolved: Option<Resolved>, rng: &mut dyn RngCore) {
        self.srv_answered |= resolved.is_some();
        let (records, source, expires) = match resolved {
            Some(Resolved {
                answer: Answer::Srv(records),
                source,
                expires,
            }) => (order_srv(&records, rng), source, Some(expires)),
            _ => (Vec::new(), RouteSource::Network, None),
        };
        let mut targets = Vec::new();
        for group in &mut self.groups {
            if let GroupKind::Srv {
                name,
                records: slot @ None,
                srv_source,
                srv_expires,
            } = &mut group.kind
            {
                if *name == query.name {
                    targets.extend(records.iter().map(|r| r.target.clone()));
                    *slot = Some(records.clone());
                    *srv_source = source;
                    *srv_expires = expires;
                }
            }
        }
        for target in targets {
            if parse_ip(&target).is_none() {
                self.ask(Query::new(&target, RecordType::A));
            }
        }
    }

    fn maybe_fall_back_to_a(&mut self) {
        if self.srv_fallback.is_empty() {
            return;
        }
        let mut pending = false;
        let mut found = self.srv_answered;
        for group in &self.groups {
            if let GroupKind::Srv { records, .. } = &group.kind {
                pending |= records.is_none();
                found |= records.as_ref().is_some_and(|r| !r.is_empty());
            }
        }
        let naptr_pending = self
            .outstanding
            .iter()
            .any(|q| q.rtype == RecordType::Naptr);
        if pending || naptr_pending {
            return;
        }
        let fallback = std::mem::take(&mut self.srv_fallback);
        if !found {
            let name = normalize_name(&self.target.name);
            for (transport, port) in fallback {
                self.push_direct(transport, name.clone(), port);
            }
        }
    }

    fn ask(&mut self, query: Query) {
        if self.asked.insert(query.clone()) {
            self.to_send.push_back(query);
        }
    }

    fn push_group(
        &mut self,
        transport: Transport,
        naptr: Option<(u16, u16)>,
        source: RouteSource,
        expires: Option<Instant>,
        kind: GroupKind,
    ) {
        self.groups.push(Group {
            transport,
            naptr,
            source,
            expires,
            kind,
        });
    }

    fn push_direct(&mut self, transport: Transport, name: String, port: u16) {
        self.ask(Query::new(&name, RecordType::A));
        self.push_group(
            transport,
            None,
            RouteSource::Network,
            None,
            GroupKind::Direct { name, port },
        );
    }

    fn push_srv(
        &mut self,
        transport: Transport,
        name: String,
        naptr: Option<(u16, u16)>,
        source: RouteSource,
        expires: Option<Instant>,
    ) {
        self.ask(Query::new(&name, RecordType::Srv));
        let kind = GroupKind::Srv {
            name,
            records: None,
            srv_source: RouteSource::Network,
            srv_expires: None,
        };
        self.push_group(transport, naptr, source, expires, kind);
    }

    /// Build the route set from everything answered so far.
    pub fn finish(self) -> Result<RouteSet, ResolveError> {
        if normalize_name(self.target.name.trim()).is_empty() {
            return Err(ResolveError::EmptyName);
        }
        let mut entries: Vec<RouteEntry> = Vec::new();
        let mut group_index = 0;
        for group in &self.groups {
            let before = entries.len();
            for candidate in self.candidates(group) {
                let route = Route {
                    transport: group.transport,
                    host: candidate.host,
                    addr: candidate.addr,
                    group: group_index,
                    priority: candidate.priority,
                    weight: candidate.weight,
                    source: candidate.source,
                };
                if entries.iter().any(|e| e.route.same_destination(&route)) {
                    continue;
                }
                let selection_order = match entries.last() {
                    None => 1,
                    Some(prev)
                        if prev.route.group == route.group
                            && prev.route.priority == route.priority
                            && prev.route.weight == route.weight =>
                    {
                        prev.selection_order
                    }
                    Some(prev) => prev.selection_order + 1,
                };
                entries.push(RouteEntry {
                    route,
                    selection_order,
                    naptr: group.naptr,
                    srv_name: candidate.srv_name,
                    expires: candidate.expires,
                });
            }
            if entries.len() > before {
                group_index += 1;
            }
        }
        if entries.is_empty() {
            return Err(ResolveError::NoRoutes {
                target: self.target,
                failures: self.failures,
            });
        }
        let expires = entries.iter().filter_map(|e| e.expires).min();
        Ok(RouteSet {
            target: self.target,
            entries,
            expires,
        })
    }

    fn candidates(&self, group: &Group) -> Vec<Candidate> {
        let base = Candidate {
            host: String::new(),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            priority: 0,
            weight: 0,
            source: group.source,
            srv_name: None,
            expires: group.expires,
        };
        match &group.kind {
            GroupKind::Literal { addr } => {
                vec![Candidate {
                    host: addr.ip().to_string(),
                    addr: *addr,
                    ..base
                }]
            }
            GroupKind::Direct { name, port } => self.addresses_of(name, *port, base),
            GroupKind::Srv {
                name,
                records,
                srv_source,
                srv_expires,
            } => {
                let base = Candidate {
                    srv_name: Some(name.clone()),
                    source: worse(base.source, *srv_source),
                    expires: earlier(base.expires, *srv_expires),
                    ..base
                };
                let mut out = Vec::new();
                for srv in records.iter().flatten() {
                    let base = Candidate {
                        priority: srv.priority,
                        weight: srv.weight,
                        ..base.clone()
                    };
                    match parse_ip(&srv.target) {
                        Some(ip) => out.push(Candidate {
                            host: srv.target.clone(),
                            addr: SocketAddr::new(ip, srv.port),
                            ..base
                        }),
                        None => out.extend(self.addresses_of(&srv.target, srv.port, base)),
                    }
                }
                out
            }
        }
    }

    fn addresses_of(&self, name: &str, port: u16, base: Candidate) -> Vec<Candidate> {
        let Some(Resolved {
            answer: Answer::A(records),
            source,
            expires,
        }) = self.addresses.get(name)
        else {
            return Vec::new();
        };
        records
            .iter()
            .take(MAX_ADDRESSES_PER_A)
            .map(|r| Candidate {
                host: name.to_string(),
                addr: SocketAddr::new(IpAddr::V4(r.addr), port),
                source: worse(base.source, *source),
                expires: earlier(base.expires, Some(*expires)),
                ..base.clone()
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
struct Candidate {
    host: String,
    addr: SocketAddr,
    priority: u16,
    weight: u16,
    source: RouteSource,
    srv_name: Option<String>,
    expires: Option<Instant>,
}

/// The SRV owner name for a transport (RFC 3263 4.2).
fn srv_name(transport: Transport, domain: &str) -> String {
    match transport {
        Transport::Udp => format!("_sip._udp.{domain}"),
        Transport::Tcp => format!("_sip._tcp.{domain}"),
        Transport::Tls => format!("_sips._tcp.{domain}"),
    }
}

fn parse_ip(name: &str) -> Option<IpAddr> {
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The less trustworthy of two sources: a route is only as live as the least
/// live answer behind it.
fn worse(a: RouteSource, b: RouteSource) -> RouteSource {
    let rank = |s: RouteSource| match s {
        RouteSource::Network | RouteSource::Literal => 0,
        RouteSource::Restored => 1,
        RouteSource::StaticCache => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
