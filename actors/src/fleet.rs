//! A fleet: every configured line with the process-wide services they share
//! (one resolver, one flow manager, one REGISTER pacer), started from a [`FleetConfig`] in one
//! call and shut down in one call. This is the library entry point for an
//! embedding application (a softphone backend, a PBX gateway) and what
//! `sipfleet run` uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use rand::{RngCore, SeedableRng};
use sipfleet_protocol::config::{DnsSettings, FleetConfig};
use sipfleet_protocol::dns::{RestorePolicy, StaticCache};
use sipfleet_protocol::resources::{socket_max, SocketBudget};
use sipfleet_transport::dns::{DnsClientConfig, DnsConfigError};
use sipfleet_transport::flow::FlowConfig;
use sipfleet_transport::tls::{TlsClient, TlsSettings, TlsSetupError};
use sipfleet_transport::udp_port::UdpLocalPort;
use slog::Logger;

use crate::connection::FlowManager;
use crate::coordinator::FailbackCoordinator;
use crate::events::EventSink;
use crate::line::{GetStatus, Line, LineServices, LineSetup, LineStatus, Shutdown};
use crate::pacer::FleetPacer;
use crate::resolver::{Resolver, ResolverConfig};

/// How a fleet runs, beyond the Poly configuration.
#[derive(Clone)]
pub struct FleetOptions {
    pub events: EventSink,
    pub log: Logger,
    /// Extra trusted CA (PEM) for TLS routes, e.g. the lab's CA.
    pub ca_file: Option<PathBuf>,
    /// DNS servers when the configuration names none
    /// (`tcpIpApp.dns.server`); empty means `/etc/resolv.conf`.
    pub dns_servers: Vec<SocketAddr>,
    /// Seeds every random choice (back-off, Call-IDs, SRV weights) for
    /// reproducible runs; `None` seeds from the OS.
    pub seed: Option<u64>,
    pub user_agent: String,
    /// The local UDP port of every UDP flow (a phone's SIP port), so a
    /// line's Contact stays the same across failover and failback; `0`
    /// picks an ephemeral port once, at start, for the life of the fleet.
    pub sip_port: u16,
    /// The message trace (`--trace`, `--pcap`), if any.
    pub trace: Option<crate::trace::Trace>,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("TLS setup: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("DNS setup: {0}")]
    Dns(#[from] DnsConfigError),
    #[error("line {index}: {source}")]
    Line {
        index: u32,
        #[source]
        source: LineConfigError,
    },
    #[error("cannot bind the SIP port (UDP {port}): {source}")]
    SipPort { port: u16, source: std::io::Error },
}

pub use sipfleet_protocol::line::LineConfigError;

/// Says so, once at start, when the lines' refreshes alone need more
/// exchanges per second than the pacer grants: they would queue past their
/// bindings' expiry and lines would drop out of registration in turn.
fn warn_if_refreshes_outrun(log: &Logger, setups: &[LineSetup], rate: u32) {
    let demand = sipfleet_protocol::pacing::refresh_demand_per_s(
        setups
            .iter()
            .map(|s| (s.settings.expires_s, s.settings.expires_overlap_s)),
    );
    if demand > f64::from(rate) {
        slog::warn!(log, "refreshes need more than sipfleet.register.rate: lines will lapse";
            "refreshes_per_s" => format!("{demand:.0}"),
            "rate" => rate,
            "lines" => setups.len(),
            "hint" => "raise sipfleet.register.rate or the lines' expires");
    }
}

/// The running fleet.
pub struct Fleet {
    lines: Vec<Addr<Line>>,
    sip_port: u16,
    pub resolver: Addr<Resolver>,
    pub flows: Addr<FlowManager>,
    /// The REGISTER pacer, when `sipfleet.register.rate` or `.window` is
    /// set (`GetPacerStatus` says how many lines wait and how many
    /// exchanges are in flight).
    pub pacer: Option<Addr<FleetPacer>>,
}

impl Fleet {
    /// Starts the services and every line. Must run inside an actix system.
    pub fn start(config: &FleetConfig, options: FleetOptions) -> Result<Fleet, FleetError> {
        let setups = line_setups(config, &options)?;
        let tls = TlsClient::new(&TlsSettings {
            ca_file: options.ca_file.clone(),
            only_ca_file: false,
        })?;
        let mut flow_config = FlowConfig::new(tls);
        flow_config.keepalive = keepalive_settings(&config.keepalive);
        flow_config.udp_port =
            UdpLocalPort::reserve(options.sip_port).map_err(|source| FleetError::SipPort {
                port: options.sip_port,
                source,
            })?;
        let sip_port = flow_config.udp_port.port();
        let resolver = Resolver::new(resolver_config(&config.dns, &options))?.start();
        let flows = FlowManager::new(flow_config)
            .with_log(options.log.clone())
            .with_trace(options.trace.clone())
            .start();
        let coordinator = setups
            .iter()
            .any(|s| s.settings.enhanced_failover)
            .then(|| FailbackCoordinator::new().start());
        let pacing = sipfleet_protocol::line_setup::pacing_settings(&config.pacing);
        if let Some(rate) = pacing.map(|p| p.rate).filter(|r| *r > 0) {
            warn_if_refreshes_outrun(&options.log, &setups, rate);
        }
        let pacer = pacing.map(|settings| FleetPacer::new(settings).start());
        let services = LineServices {
            resolver: resolver.clone(),
            flows: flows.clone(),
            events: options.events.clone(),
            log: options.log.clone(),
            coordinator,
            sockets: SocketBudget::new(socket_max(
                config.resources.sockets_max.get(),
                open_file_limit(),
            )),
            // One pacer for every line, so the rate is the fleet's.
            pacer: pacer.clone(),
        };
        let lines = setups
            .into_iter()
            .map(|setup| Line::new(setup, services.clone()).start())
            .collect();
        Ok(Fleet {
            lines,
            sip_port,
            resolver,
            flows,
            pacer,
        })
    }

    /// The local UDP port every UDP flow binds (IPv4; IPv6 uses the same
    /// number when it is free).
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    pub fn lines(&self) -> &[Addr<Line>] {
        &self.lines
    }

    /// Every line's status, in configuration order.
    pub async fn status(&self) -> Vec<LineStatus> {
        join_all(self.lines.iter().map(|l| l.send(GetStatus)))
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    }

    /// Un-registers every line (in parallel, each bounded by `timeout`) and
    /// stops them.
    pub async fn shutdown(&self, timeout: Duration) {
        join_all(self.lines.iter().map(|l| l.send(Shutdown { timeout }))).await;
    }
}

fn line_setups(config: &FleetConfig, options: &FleetOptions) -> Result<Vec<LineSetup>, FleetError> {
    let device = device_id();
    // One draw from the OS for the whole fleet (not one per line); each
    // line mixes in its index.
    let seed = options
        .seed
        .unwrap_or_else(|| rand::rngs::StdRng::from_os_rng().next_u64());
    config
        .lines
        .iter()
        .map(|line| {
            LineSetup::from_config(line, config, &options.user_agent, &device, Some(seed)).map_err(
                |source| FleetError::Line {
                    index: line.index,
                    source,
                },
            )
        })
        .collect()
}

/// The process's soft `RLIMIT_NOFILE` ("Max open files" in
/// `/proc/self/limits`); 1024, the usual default, when it cannot be read.
/// `unlimited` counts as a million.
pub fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_open_file_limit(&text))
        .unwrap_or(1024)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
    {
        "unlimited" => Some(1_000_000),
        soft => soft.parse().ok(),
    }
}

/// What tells this device from others for the lines' `+sip.instance`:
/// the machine id (systemd's `/etc/machine-id`, stable across reboots), else
/// the host name, else a constant (lines then differ by AOR and index only).
fn device_id() -> String {
    [
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/etc/hostname",
    ]
    .iter()
    .find_map(|path| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .unwrap_or_else(|| "sipfleet".to_string())
}

/// The transport's keep-alive schedule (see
/// [`sipfleet_protocol::line_setup::keepalive_settings`]).
pub use sipfleet_protocol::line_setup::keepalive_settings;

/// The resolver's servers, static cache and restore policy from `dns.*` and
/// `tcpIpApp.dns.*`.
pub fn resolver_config(dns: &DnsSettings, options: &FleetOptions) -> ResolverConfig {
    let mut servers: Vec<SocketAddr> = [&dns.server, &dns.alt_server]
        .into_iter()
        .flatten()
        .map(|s| s.value)
        .collect();
    if servers.is_empty() {
        servers = options.dns_servers.clone();
    }
    if servers.is_empty() {
        servers = sipfleet_transport::dns::system_servers();
    }
    ResolverConfig {
        client: DnsClientConfig::new(servers),
        statics: StaticCache::from_settings(dns),
        restore: RestorePolicy::from_settings(dns),
        seed: options.seed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             63429                63429                processes\n\
                    Max open files            300                  1048576              files\n";
        assert_eq!(parse_open_file_limit(text), Some(300));
        assert_eq!(
            parse_open_file_limit("Max open files  unlimited  unlimited  files\n"),
            Some(1_000_000)
        );
        assert_eq!(parse_open_file_limit("nothing"), None);
        assert!(open_file_limit() > 0);
    }

    #[test]
    fn a_line_without_a_server_is_a_typed_error_that_names_the_key() {
        use sipfleet_protocol::config::{parse_lines, ConfigBuilder};
        use std::error::Error;
        let mut b = ConfigBuilder::new();
        b.add_source(parse_lines(
            "reg.2.address=\"1002\"\nreg.2.server.1.address=\"sbc.test\"\n",
            "t.cfg",
        ));
        let mut config = b.build().expect("valid");
        // Validation refuses a line without a server in a file; a
        // configuration built in code can still lack one.
        config.lines[0].servers.clear();
        let options = FleetOptions {
            events: EventSink::Memory(Default::default()),
            log: Logger::root(slog::Discard, slog::o!()),
            ca_file: None,
            dns_servers: Vec::new(),
            seed: Some(1),
            user_agent: "t".into(),
            sip_port: 0,
            trace: None,
        };
        let Err(err) = line_setups(&config, &options) else {
            panic!("a line without a server must not start");
        };
        assert!(
            matches!(
                err,
                FleetError::Line {
                    index: 2,
                    source: LineConfigError::NoRegistrar { line: 2 }
                        | LineConfigError::NoServer { line: 2 }
                }
            ),
            "{err:?}"
        );
        assert!(err.source().is_some());
        let text = err.to_string();
        assert!(
            text.starts_with("line 2: no ")
                && text
                    .ends_with(" configured (reg.2.server.1.address or voIpProt.server.1.address)"),
            "{text}"
        );
    }
}
