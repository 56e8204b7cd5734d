//! The vocabulary shared by the resolution plan, the cache and the code that puts
//! queries on the wire: queries, answers and classified failures.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::route::RouteSource;

use super::normalize_name;

/// The record types the guide's resolution uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    Naptr,
    Srv,
    A,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Naptr => "NAPTR",
            RecordType::Srv => "SRV",
            RecordType::A => "A",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One DNS question. The name is normalised (lower case, no root dot) so that
/// equal questions coalesce and hit the same cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    pub name: String,
    pub rtype: RecordType,
}

impl Query {
    pub fn new(name: &str, rtype: RecordType) -> Self {
        Query {
            name: normalize_name(name),
            rtype,
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.rtype, self.name)
    }
}

/// An A record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ARecord {
    pub addr: Ipv4Addr,
    pub ttl_s: u32,
}

/// An SRV record (RFC 2782).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Normalised target host name; `""` is RFC 2782's "." (service not offered).
    pub target: String,
    pub ttl_s: u32,
}

/// A NAPTR record (RFC 3403), as RFC 3263 uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NaptrRecord {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    pub regexp: String,
    /// Normalised replacement name (the SRV name for flag `s`).
    pub replacement: String,
    pub ttl_s: u32,
}

/// The records of one positive answer, in the order the server gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    A(Vec<ARecord>),
    Srv(Vec<SrvRecord>),
    Naptr(Vec<NaptrRecord>),
}

impl Answer {
    pub fn rtype(&self) -> RecordType {
        match self {
            Answer::A(_) => RecordType::A,
            Answer::Srv(_) => RecordType::Srv,
            Answer::Naptr(_) => RecordType::Naptr,
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Answer::A(v) => v.is_empty(),
            Answer::Srv(v) => v.is_empty(),
            Answer::Naptr(v) => v.is_empty(),
        }
    }

    /// The smallest TTL of the set: the whole answer expires with its first record.
    pub fn min_ttl_s(&self) -> u32 {
        let ttls: Vec<u32> = match self {
            Answer::A(v) => v.iter().map(|r| r.ttl_s).collect(),
            Answer::Srv(v) => v.iter().map(|r| r.ttl_s).collect(),
            Answer::Naptr(v) => v.iter().map(|r| r.ttl_s).collect(),
        };
        ttls.into_iter().min().unwrap_or(0)
    }
}

/// Why a query produced no answer, classified the way the guide's dynamic cache
/// restore needs: silence or unreachability may be restored, a server's negative
/// or error answer may not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryFailure {
    /// No response within the resolver's timeout and attempts.
    #[error("no response (timeout)")]
    Timeout,
    /// The transport said the server does not exist or cannot be reached
    /// (ICMP unreachable, connection refused, no route).
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// NXDOMAIN: the name does not exist.
    #[error("name does not exist (NXDOMAIN)")]
    NxDomain,
    /// The name exists but has no records of this type (NODATA / empty answer).
    #[error("no records of this type")]
    NoRecords,
    /// An error response code (SERVFAIL, FORMERR, NOTIMP, REFUSED, ...), by name.
    #[error("error response {0}")]
    ErrorResponse(String),
    /// The response could not be decoded.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Anything else the resolver library reported.
    #[error("{0}")]
    Other(String),
}

impl QueryFailure {
    /// Whether the guide allows dynamic cache restore for this failure: only when
    /// the server "fails to respond in any way" or the transport says it is
    /// unreachable.
    pub fn is_restorable(&self) -> bool {
        matches!(self, QueryFailure::Timeout | QueryFailure::Unreachable(_))
    }

    /// A negative answer (name or records do not exist).
    pub fn is_negative(&self) -> bool {
        matches!(self, QueryFailure::NxDomain | QueryFailure::NoRecords)
    }
}

/// An answer usable by a resolution: from the network, the static cache or a
/// restore, with the instant it stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub answer: Answer,
    pub source: RouteSource,
    pub expires: Instant,
}
