//! The DNS cache: answers kept for their TTL, the guide's static cache
//! (`dns.cache.A/SRV/NAPTR.x.*`) and its dynamic cache restore
//! (`dns.cache.dynamicRestore.*`).
//!
//! Expiry is computed from each answer's smallest TTL against the `now` passed
//! in; nothing here reads a clock (hickory's own cache uses the wall clock and is
//! switched off by the transport layer).
//!
//! Precedence when a query fails: a restorable failure (silence, unreachable)
//! with restore enabled reuses the last network answer; otherwise, and for
//! negative or error answers, the static cache is consulted; otherwise the
//! failure stands. Restore is tried first because it is the most recent real
//! answer. With `dns.cache.A.networkOverride` static A entries are used before
//! the network at all.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::route::RouteSource;

use super::normalize_name;
use super::records::{
    ARecord, Answer, NaptrRecord, Query, QueryFailure, RecordType, Resolved, SrvRecord,
};

/// `dns.cache.A.x.*`: one static address for a host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticA {
    /// Owner name (`dns.cache.A.x.name`).
    pub name: String,
    /// TTL in seconds (`dns.cache.A.x.ttl`).
    pub ttl_s: u32,
    /// The address (`dns.cache.A.x.address`).
    pub addr: Ipv4Addr,
}

/// `dns.cache.SRV.x.*`: one static SRV record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticSrv {
    /// The SRV name queried, e.g. `_sip._udp.example.com` (`dns.cache.SRV.x.name`).
    pub name: String,
    /// TTL in seconds (`dns.cache.SRV.x.ttl`).
    pub ttl_s: u32,
    /// SRV priority; lower is tried first (`dns.cache.SRV.x.priority`).
    pub priority: u16,
    /// SRV weight among equal priorities (`dns.cache.SRV.x.weight`).
    pub weight: u16,
    /// Port of the target (`dns.cache.SRV.x.port`).
    pub port: u16,
    /// Target host, resolved through A (`dns.cache.SRV.x.target`).
    pub target: String,
}

/// `dns.cache.NAPTR.x.*`: one static NAPTR record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticNaptr {
    /// The domain queried (`dns.cache.NAPTR.x.name`).
    pub name: String,
    /// TTL in seconds (`dns.cache.NAPTR.x.ttl`).
    pub ttl_s: u32,
    /// NAPTR order; lower is used first (`dns.cache.NAPTR.x.order`).
    pub order: u16,
    /// NAPTR preference among equal orders (`dns.cache.NAPTR.x.preference`).
    pub preference: u16,
    /// NAPTR flags, `S` for an SRV replacement (`dns.cache.NAPTR.x.flags`).
    pub flags: String,
    /// Service field, e.g. `SIP+D2U` (`dns.cache.NAPTR.x.service`).
    pub service: String,
    /// Regular expression field, normally empty (`dns.cache.NAPTR.x.regexp`).
    pub regexp: String,
    /// The SRV name to query next (`dns.cache.NAPTR.x.replacement`).
    pub replacement: String,
}

/// The whole static cache (up to 18 entries of each type in the guide; the
/// configuration layer enforces that limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticCache {
    /// Static A records (`dns.cache.A.x`).
    pub a: Vec<StaticA>,
    /// Static SRV records (`dns.cache.SRV.x`).
    pub srv: Vec<StaticSrv>,
    /// Static NAPTR records (`dns.cache.NAPTR.x`).
    pub naptr: Vec<StaticNaptr>,
    /// `dns.cache.A.networkOverride`: consult static A entries before the network.
    pub a_network_override: bool,
}

impl StaticCache {
    /// The static entries for `query` as an answer, in configuration order.
    pub fn answer(&self, query: &Query) -> Option<Answer> {
        let matches = |name: &str| normalize_name(name) == query.name;
        let answer = match query.rtype {
            RecordType::A => Answer::A(
                self.a
                    .iter()
                    .filter(|e| matches(&e.name))
                    .map(|e| ARecord {
                        addr: e.addr,
                        ttl_s: e.ttl_s,
                    })
                    .collect(),
            ),
            RecordType::Srv => Answer::Srv(
                self.srv
                    .iter()
                    .filter(|e| matches(&e.name))
                    .map(|e| SrvRecord {
                        priority: e.priority,
                        weight: e.weight,
                        port: e.port,
                        target: normalize_name(&e.target),
                        ttl_s: e.ttl_s,
                    })
                    .collect(),
            ),
            RecordType::Naptr => Answer::Naptr(
                self.naptr
                    .iter()
                    .filter(|e| matches(&e.name))
                    .map(|e| NaptrRecord {
                        order: e.order,
                        preference: e.preference,
                        flags: e.flags.clone(),
                        services: e.service.clone(),
                        regexp: e.regexp.clone(),
                        replacement: normalize_name(&e.replacement),
                        ttl_s: e.ttl_s,
                    })
                    .collect(),
            ),
        };
        (!answer.is_empty()).then_some(answer)
    }
}

/// `dns.cache.dynamicRestore.enable` and `.ttl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestorePolicy {
    /// Whether a failed query may reuse the last good answer (`dns.cache.dynamicRestore.enable`).
    pub enabled: bool,
    /// How long a restored answer is used before the network is asked again
    /// (the guide allows 90 to 600 s, default 120 s).
    pub ttl: Duration,
}

impl Default for RestorePolicy {
    fn default() -> Self {
        RestorePolicy {
            enabled: false,
            ttl: Duration::from_secs(120),
        }
    }
}

/// Cached answers keyed by query, the last good network answer of each query,
/// and the static entries.
#[derive(Debug, Default)]
pub struct DnsCache {
    statics: StaticCache,
    restore: RestorePolicy,
    entries: HashMap<Query, Resolved>,
    last_good: HashMap<Query, Answer>,
}

impl DnsCache {
    /// A cache holding `statics`, with no network answers yet.
    pub fn new(statics: StaticCache, restore: RestorePolicy) -> Self {
        DnsCache {
            statics,
            restore,
            entries: HashMap::new(),
            last_good: HashMap::new(),
        }
    }

    /// The configured static records.
    pub fn statics(&self) -> &StaticCache {
        &self.statics
    }

    /// Whether and how long failed queries fall back to the last good answer.
    pub fn restore_policy(&self) -> RestorePolicy {
        self.restore
    }

    /// An answer that stands without asking the network: a static A entry under
    /// `networkOverride`, or a cached entry (network, restored or static) that
    /// has not expired at `now`.
    pub fn lookup(&self, query: &Query, now: Instant) -> Option<Resolved> {
        if query.rtype == RecordType::A && self.statics.a_network_override {
            if let Some(answer) = self.statics.answer(query) {
                return Some(static_resolved(answer, now));
            }
        }
        self.entries.get(query).filter(|r| r.expires > now).cloned()
    }

    /// Record the outcome of a network query made at `now` and return what the
    /// resolution should use: the answer itself, a restored answer, a static
    /// answer, or the failure.
    pub fn store(
        &mut self,
        query: &Query,
        result: Result<Answer, QueryFailure>,
        now: Instant,
    ) -> Result<Resolved, QueryFailure> {
        let failure = match result {
            Ok(answer) if !answer.is_empty() => {
                let resolved = Resolved {
                    expires: now + Duration::from_secs(u64::from(answer.min_ttl_s())),
                    answer: answer.clone(),
                    source: RouteSource::Network,
                };
                self.last_good.insert(query.clone(), answer);
                self.entries.insert(query.clone(), resolved.clone());
                return Ok(resolved);
            }
            Ok(_) => QueryFailure::NoRecords,
            Err(failure) => failure,
        };
        let fallback = self
            .restored(query, &failure, now)
            .or_else(|| self.statics.answer(query).map(|a| static_resolved(a, now)));
        match fallback {
            Some(resolved) => {
                self.entries.insert(query.clone(), resolved.clone());
                Ok(resolved)
            }
            None => {
                self.entries.remove(query);
                Err(failure)
            }
        }
    }

    fn restored(&self, query: &Query, failure: &QueryFailure, now: Instant) -> Option<Resolved> {
        if !(self.restore.enabled && failure.is_restorable()) {
            return None;
        }
        self.last_good.get(query).map(|answer| Resolved {
            answer: answer.clone(),
            source: RouteSource::Restored,
            expires: now + self.restore.ttl,
        })
    }

    /// Forget entries that expired at `now` (the last good answers stay, since
    /// restore needs them after expiry).
    pub fn purge(&mut self, now: Instant) {
        self.entries.retain(|_, r| r.expires > now);
    }
}

fn static_resolved(answer: Answer, now: Instant) -> Resolved {
    Resolved {
        expires: now + Duration::from_secs(u64::from(answer.min_ttl_s())),
        answer,
        source: RouteSource::StaticCache,
    }
}
