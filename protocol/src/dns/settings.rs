//! Glue from the parsed configuration (`config::DnsSettings`) to the DNS
//! cache's own plain types, so the resolver does not depend on how the
//! configuration records where each value came from.

use std::time::Duration;

use crate::config::DnsSettings;

use super::cache::{RestorePolicy, StaticA, StaticCache, StaticNaptr, StaticSrv};

impl StaticCache {
    /// `dns.cache.A/SRV/NAPTR.x.*` and `dns.cache.A.networkOverride`.
    pub fn from_settings(settings: &DnsSettings) -> Self {
        StaticCache {
            a: settings
                .static_a
                .iter()
                .map(|e| StaticA {
                    name: e.name.clone(),
                    ttl_s: e.ttl_s,
                    addr: e.address,
                })
                .collect(),
            srv: settings
                .static_srv
                .iter()
                .map(|e| StaticSrv {
                    name: e.name.clone(),
                    ttl_s: e.ttl_s,
                    priority: e.priority,
                    weight: e.weight,
                    port: e.port,
                    target: e.target.clone(),
                })
                .collect(),
            naptr: settings
                .static_naptr
                .iter()
                .map(|e| StaticNaptr {
                    name: e.name.clone(),
                    ttl_s: e.ttl_s,
                    order: e.order,
                    preference: e.preference,
                    flags: e.flags.clone(),
                    service: e.service.clone(),
                    regexp: e.regexp.clone(),
                    replacement: e.replacement.clone(),
                })
                .collect(),
            a_network_override: settings.a_network_override.get(),
        }
    }
}

impl RestorePolicy {
    /// `dns.cache.dynamicRestore.enable` and `.ttl` (ranges already checked by
    /// the configuration layer).
    pub fn from_settings(settings: &DnsSettings) -> Self {
        RestorePolicy {
            enabled: settings.dynamic_restore.get(),
            ttl: Duration::from_secs(u64::from(settings.dynamic_restore_ttl_s.get())),
        }
    }
}
