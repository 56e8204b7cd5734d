//! DNS resolution of a configured server address into an ordered route list,
//! following the guide's "Configuring DNS Query Behaviors" section (RFC 3263
//! NAPTR -> SRV -> A, RFC 2782 weighted order), plus the static cache and the
//! dynamic cache restore policy.
//!
//! Everything here is sans-IO: [`Resolution`] says which [`Query`] to make next
//! and consumes answers or failures; [`DnsCache`] decides, from `now` passed in,
//! whether a cached, restored or static answer stands in for the network. The
//! caller (the resolver actor, `sipfleet routes`) performs the queries.
//!
//! Hand-written rather than delegated to hickory's resolver logic because the
//! guide's policy (which queries for which transport setting, service records as
//! failover groups, static entries, restore only on silence) is not what a
//! general-purpose resolver does, and because hickory's cache reads the wall
//! clock; hickory is used only to put single queries on the wire.
//!
//! Scope: A records only (IPv4), as the guide's static cache
//! (`dns.cache.A.x.address` is dotted-decimal); IPv6 works as an IP literal.
//! NAPTR records other than flag `s` with a SIP service are ignored.

mod cache;
mod order;
mod plan;
mod records;
mod report;
mod settings;

pub use cache::{DnsCache, RestorePolicy, StaticA, StaticCache, StaticNaptr, StaticSrv};
pub use order::{naptr_transport, order_naptr, order_srv};
pub use plan::{Resolution, ResolveError, RouteEntry, RouteSet};
pub use records::{
    ARecord, Answer, NaptrRecord, Query, QueryFailure, RecordType, Resolved, SrvRecord,
};
pub use report::{note_for, DnsNote};

use std::fmt;

/// Maximum number of addresses taken from one A answer ("lists of up to four
/// addresses" in the guide).
pub const MAX_ADDRESSES_PER_A: usize = 4;

/// The configured transport of a server (`voIpProt.server.x.transport`), which
/// decides what kind of DNS query is made first. The configuration's type is
/// used as is, so a parsed `ServerConfig` feeds a [`ResolveTarget`] directly.
pub use crate::config::TransportSetting;

/// What a line asks to have resolved: the configured address, transport setting
/// and port (0 = "no explicit port", which means SRV).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResolveTarget {
    /// Host name or IP literal of the server (`reg.x.server.y.address`).
    pub name: String,
    /// The server's transport setting (`reg.x.server.y.transport`).
    pub transport_setting: TransportSetting,
    /// Explicit port (`reg.x.server.y.port`); 0 means look it up with SRV.
    pub port: u16,
}

impl ResolveTarget {
    /// A target for `name`; `port` 0 means no explicit port.
    pub fn new(name: impl Into<String>, transport_setting: TransportSetting, port: u16) -> Self {
        ResolveTarget {
            name: name.into(),
            transport_setting,
            port,
        }
    }
}

impl fmt::Display for ResolveTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, port {})",
            self.name, self.transport_setting, self.port
        )
    }
}

/// DNS names compare case-insensitively and with or without the root dot.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
