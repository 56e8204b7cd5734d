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
    /// NAPTR (RFC 3403): which transports and SRV names a domain offers.
    Naptr,
    /// SRV (RFC 2782): hosts and ports of a service.
    Srv,
    /// A: an IPv4 address.
    A,
}

impl RecordType {
    /// The type's name as DNS tools write it (`NAPTR`, `SRV`, `A`).
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
    /// The owner name queried.
    pub name: String,
    /// The record type asked for.
    pub rtype: RecordType,
}

impl Query {
    /// A query for `name` and `rtype`.
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
    /// The address.
    pub addr: Ipv4Addr,
    /// Time to live, seconds.
    pub ttl_s: u32,
}

/// An SRV record (RFC 2782).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share among records of equal priority.
    pub weight: u16,
    /// Port of the service on the target.
    pub port: u16,
    /// Normalised target host name; `""` is RFC 2782's "." (service not offered).
    pub target: String,
    /// Time to live, seconds.
    pub ttl_s: u32,
}

/// A NAPTR record (RFC 3403), as RFC 3263 uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Lower is used first.
    pub order: u16,
    /// Order among records of equal `order`.
    pub preference: u16,
    /// `S` when the replacement is an SRV name.
    pub flags: String,
    /// Service field, e.g. `SIP+D2T`, which names the transport.
    pub services: String,
    /// Regular expression field; unused by SIP, normally empty.
    pub regexp: String,
    /// Normalised replacement name (the SRV name for flag `s`).
    pub replacement: String,
    /// Time to live, seconds.
    pub ttl_s: u32,
}

/// The records of one positive answer, in the order the server gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A records.
    A(Vec<ARecord>),
    /// SRV records.
    Srv(Vec<SrvRecord>),
    /// NAPTR records.
    Naptr(Vec<NaptrRecord>),
}

impl Answer {
    /// The type of the records held.
    pub fn rtype(&self) -> RecordType {
        match self {
            Answer::A(_) => RecordType::A,
            Answer::Srv(_) => RecordType::Srv,
            Answer::Naptr(_) => RecordType::Naptr,
        }
    }

    /// Whether the answer holds no record (a NODATA answer).
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
    /// The records.
    pub answer: Answer,
    /// Where they came from: network, static cache or restore.
    pub source: RouteSource,
    /// When the answer stops being valid (its shortest TTL).
    pub expires: Instant,
}
