//! The lab's DNS data: a small zone model rendered into dnsmasq options.
//!
//! Names are absolute without the trailing dot (`_sip._udp.lab.sipfleet.test`).
//! Every answer carries the zone's TTL (dnsmasq's `local-ttl`).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::mode::Transport;

/// One DNS record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    A {
        name: String,
        addr: Ipv4Addr,
    },
    Srv {
        name: String,
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Naptr {
        name: String,
        order: u16,
        preference: u16,
        /// Usually `S` (next lookup is SRV).
        flags: String,
        /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
        service: String,
        /// Usually empty.
        regexp: String,
        replacement: String,
    },
}

impl Record {
    /// The owner name of the record.
    pub fn name(&self) -> &str {
        match self {
            Record::A { name, .. } | Record::Srv { name, .. } | Record::Naptr { name, .. } => name,
        }
    }

    /// An A record.
    pub fn a(name: impl Into<String>, addr: Ipv4Addr) -> Record {
        Record::A {
            name: name.into(),
            addr,
        }
    }

    /// An SRV record.
    pub fn srv(
        name: impl Into<String>,
        priority: u16,
        weight: u16,
        port: u16,
        target: impl Into<String>,
    ) -> Record {
        Record::Srv {
            name: name.into(),
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    /// A NAPTR record with flag `S` and an empty regexp.
    pub fn naptr(
        name: impl Into<String>,
        order: u16,
        preference: u16,
        service: impl Into<String>,
        replacement: impl Into<String>,
    ) -> Record {
        Record::Naptr {
            name: name.into(),
            order,
            preference,
            flags: "S".into(),
            service: service.into(),
            regexp: String::new(),
            replacement: replacement.into(),
        }
    }

    /// The dnsmasq option line that serves this record.
    fn dnsmasq_line(&self) -> String {
        match self {
            Record::A { name, addr } => format!("host-record={name},{addr}"),
            Record::Srv {
                name,
                priority,
                weight,
                port,
                target,
            } => format!("srv-host={name},{target},{port},{priority},{weight}"),
            Record::Naptr {
                name,
                order,
                preference,
                flags,
                service,
                regexp,
                replacement,
            } => format!(
                "naptr-record={name},{order},{preference},{flags},{service},{regexp},{replacement}"
            ),
        }
    }
}

/// The SRV owner name for `transport` under `base`, as RFC 3263 names it.
pub fn srv_name(transport: Transport, base: &str) -> String {
    match transport {
        Transport::Udp => format!("_sip._udp.{base}"),
        Transport::Tcp => format!("_sip._tcp.{base}"),
        Transport::Tls => format!("_sips._tcp.{base}"),
    }
}

/// The NAPTR service field for `transport`.
pub fn naptr_service(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "SIP+D2U",
        Transport::Tcp => "SIP+D2T",
        Transport::Tls => "SIPS+D2T",
    }
}

/// A zone: the authoritative domain, the TTL of every answer and the records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub domain: String,
    pub ttl: u32,
    pub records: Vec<Record>,
}

impl Zone {
    /// An empty zone: every name in `domain` is NXDOMAIN.
    pub fn new(domain: impl Into<String>, ttl: u32) -> Zone {
        Zone {
            domain: domain.into(),
            ttl,
            records: Vec::new(),
        }
    }

    /// Adds a record (builder style).
    pub fn with(mut self, r: Record) -> Zone {
        self.records.push(r);
        self
    }

    /// Adds a record.
    pub fn push(&mut self, r: Record) {
        self.records.push(r);
    }

    /// Removes every record matching `pred`; returns how many were removed.
    pub fn remove(&mut self, pred: impl Fn(&Record) -> bool) -> usize {
        let before = self.records.len();
        self.records.retain(|r| !pred(r));
        before - self.records.len()
    }

    /// Removes every record named `name`; returns how many were removed.
    pub fn remove_name(&mut self, name: &str) -> usize {
        self.remove(|r| r.name() == name)
    }

    /// The dnsmasq options serving this zone (without the server options).
    pub(crate) fn dnsmasq_lines(&self) -> Vec<String> {
        self.records.iter().map(Record::dnsmasq_line).collect()
    }

    /// Every distinct owner name, in first-seen order.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.records {
            if !out.iter().any(|n| n == r.name()) {
                out.push(r.name().to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_as_dnsmasq_options() {
        let z = Zone::new("d.test", 5)
            .with(Record::a("sbc1.d.test", Ipv4Addr::new(127, 0, 0, 11)))
            .with(Record::srv("_sip._udp.d.test", 10, 50, 5060, "sbc1.d.test"))
            .with(Record::naptr(
                "d.test",
                10,
                20,
                "SIP+D2U",
                "_sip._udp.d.test",
            ));
        assert_eq!(
            z.dnsmasq_lines(),
            [
                "host-record=sbc1.d.test,127.0.0.11",
                "srv-host=_sip._udp.d.test,sbc1.d.test,5060,10,50",
                "naptr-record=d.test,10,20,S,SIP+D2U,,_sip._udp.d.test",
            ]
        );
        assert_eq!(z.names(), ["sbc1.d.test", "_sip._udp.d.test", "d.test"]);
    }

    #[test]
    fn remove_reports_how_many_records_went() {
        let mut z = Zone::new("d", 1)
            .with(Record::srv("_sip._udp.d", 1, 1, 5060, "a.d"))
            .with(Record::srv("_sip._udp.d", 2, 1, 5060, "b.d"));
        assert_eq!(
            z.remove(|r| matches!(r, Record::Srv { target, .. } if target == "a.d")),
            1
        );
        assert_eq!(z.remove_name("_sip._udp.d"), 1);
        assert!(z.records.is_empty());
    }
}
