//! A fleet: every configured line with the process-wide services they share
//! (one resolver, one flow manager, one REGISTER pacer), started from a [`FleetConfig`] in one
//! call and shut down in one call. This is the library entry point for an
//! embedding application (a softphone backend, a PBX gateway) and what
//! `sipfleet run` uses.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use rand::{RngCore, SeedableRng};
use sipfleet_protocol::config::{DnsSettings, FleetConfig, LineConfig, ServerConfig};
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
use crate::hub::{EventHub, EventObserver};
use crate::line::{GetStatus, Line, LineServices, LineSetup, LineStatus, Shutdown};
use crate::metrics::FleetMetrics;
use crate::pacer::FleetPacer;
use crate::resolver::{Resolver, ResolverConfig};
use crate::views::LineViews;

/// How a fleet runs, beyond the Poly configuration.
#[derive(Clone)]
pub struct FleetOptions {
    /// Where the lines' events go besides the fleet's subscribers (JSON,
    /// text, slog, memory, a channel).
    pub events: EventSink,
    /// The fleet's diagnostics (never a password).
    pub log: Logger,
    /// Extra trusted CA (PEM) for TLS routes, e.g. the lab's CA.
    pub ca_file: Option<PathBuf>,
    /// DNS servers when the configuration names none
    /// (`tcpIpApp.dns.server`); empty means `/etc/resolv.conf`.
    pub dns_servers: Vec<SocketAddr>,
    /// Seeds every random choice (back-off, Call-IDs, SRV weights) for
    /// reproducible runs; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// The `User-Agent` of every request.
    pub user_agent: String,
    /// The local UDP port of every UDP flow (a phone's SIP port), so a
    /// line's Contact stays the same across failover and failback; `0`
    /// picks an ephemeral port once, at start, for the life of the fleet.
    pub sip_port: u16,
    /// The message trace (`--trace`, `--pcap`), if any.
    pub trace: Option<crate::trace::Trace>,
}
/// Why a fleet (or one of its lines) cannot start.

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("TLS setup: {0}")]
    /// The TLS client cannot be set up (the CA file).
    Tls(#[from] TlsSetupError),
    #[error("DNS setup: {0}")]
    /// The DNS client cannot be set up.
    Dns(#[from] DnsConfigError),
    #[error("line {index}: {source}")]
    /// A line's configuration cannot make a line.
    Line {
        /// `reg.x` of the line.
        index: u32,
        #[source]
        /// What is missing.
        source: LineConfigError,
    },
    #[error("cannot bind the SIP port (UDP {port}): {source}")]
    /// The SIP port cannot be bound.
    SipPort {
        /// The port asked for (`0`: any).
        port: u16,
        /// What the bind said.
        source: std::io::Error,
    },
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

mod control;
mod error;
pub mod json;

pub use control::{configured_server, routes_target, CallSummary, LineDetail, RouteRow, Routes};
pub use error::ControlError;

/// The running fleet. Every method takes `&self`: an application (or the
/// HTTP adapter) shares one `Fleet` (in an `Arc`) between its tasks; the
/// line table is behind a lock never held across an `await`.
pub struct Fleet {
    lines: Mutex<BTreeMap<u32, Addr<Line>>>,
    sip_port: u16,
    /// The resolver every line asks (also `routes`).
    pub resolver: Addr<Resolver>,
    /// The flow table every line acquires its flows from.
    pub flows: Addr<FlowManager>,
    /// The REGISTER pacer, when `sipfleet.register.rate` or `.window` is
    /// set (`GetPacerStatus` says how many lines wait and how many
    /// exchanges are in flight).
    pub pacer: Option<Addr<FleetPacer>>,
    /// What a line added at run time is built with.
    base: LineBase,
    services: LineServices,
    hub: Arc<EventHub>,
    metrics: Arc<FleetMetrics>,
}

/// What every line of a fleet is built with besides its own `reg.x`: the
/// fleet-wide settings of the configuration the fleet started with, and
/// the identity and seed of the process.
struct LineBase {
    /// The fleet-wide settings (its `lines` left empty: each line is built
    /// from its own [`LineConfig`]).
    config: FleetConfig,
    user_agent: String,
    device: String,
    seed: u64,
    /// Each distinct server and outbound proxy address of the lines, for
    /// `routes` (the transport and port a name is configured with).
    servers: Mutex<Vec<ServerConfig>>,
}

impl LineBase {
    fn remember_servers(&self, line: &LineConfig) {
        let Ok(mut known) = self.servers.lock() else {
            return;
        };
        for server in line.servers.iter().chain(line.outbound_proxy.iter()) {
            let name = &server.address.value;
            if !known
                .iter()
                .any(|k| k.address.value.eq_ignore_ascii_case(name))
            {
                known.push(server.clone());
            }
        }
    }

    fn server(&self, name: &str) -> Option<ServerConfig> {
        self.servers.lock().ok().and_then(|known| {
            known
                .iter()
                .find(|s| s.address.value.eq_ignore_ascii_case(name))
                .cloned()
        })
    }

    fn setup(&self, line: &LineConfig) -> Result<LineSetup, FleetError> {
        LineSetup::from_config(
            line,
            &self.config,
            &self.user_agent,
            &self.device,
            Some(self.seed),
        )
        .map_err(|source| FleetError::Line {
            index: line.index,
            source,
        })
    }
}

impl Fleet {
    /// Starts the services and every line. Must run inside an actix system.
    pub fn start(config: &FleetConfig, options: FleetOptions) -> Result<Fleet, FleetError> {
        let base = LineBase {
            // The fleet-wide settings only: a fleet of 100,000 lines does
            // not keep a second copy of every line's configuration.
            config: FleetConfig {
                lines: Vec::new(),
                sip: config.sip.clone(),
                keepalive: config.keepalive.clone(),
                dns: config.dns.clone(),
                resources: config.resources.clone(),
                pacing: config.pacing.clone(),
                warnings: Vec::new(),
            },
            user_agent: options.user_agent.clone(),
            device: device_id(),
            // One draw from the OS for the whole fleet (not one per line);
            // each line mixes in its index.
            seed: options
                .seed
                .unwrap_or_else(|| rand::rngs::StdRng::from_os_rng().next_u64()),
            servers: Mutex::new(Vec::new()),
        };
        for line in &config.lines {
            base.remember_servers(line);
        }
        let setups = config
            .lines
            .iter()
            .map(|line| base.setup(line))
            .collect::<Result<Vec<_>, _>>()?;
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
        // Always there, so that a line added later with enhanced failover
        // has its group; lines without it never talk to it.
        let coordinator = Some(FailbackCoordinator::new().start());
        let pacing = sipfleet_protocol::line_setup::pacing_settings(&config.pacing);
        if let Some(rate) = pacing.map(|p| p.rate).filter(|r| *r > 0) {
            warn_if_refreshes_outrun(&options.log, &setups, rate);
        }
        let pacer = pacing.map(|settings| FleetPacer::new(settings).start());
        let metrics = Arc::new(FleetMetrics::new(Arc::new(LineViews::default())));
        let hub = Arc::new(EventHub::new(
            options.events.clone(),
            vec![metrics.clone() as Arc<dyn EventObserver>],
        ));
        let services = LineServices {
            resolver: resolver.clone(),
            flows: flows.clone(),
            events: EventSink::Hub(hub.clone()),
            log: options.log.clone(),
            coordinator,
            sockets: SocketBudget::new(socket_max(
                config.resources.sockets_max.get(),
                open_file_limit(),
            )),
            // One pacer for every line, so the rate is the fleet's.
            pacer: pacer.clone(),
        };
        let fleet = Fleet {
            lines: Mutex::new(BTreeMap::new()),
            sip_port,
            resolver,
            flows,
            pacer,
            base,
            services,
            hub,
            metrics,
        };
        for setup in setups {
            fleet.start_line(setup);
        }
        Ok(fleet)
    }

    /// Starts the line of `setup` with the fleet's services, in the table.
    fn start_line(&self, setup: LineSetup) -> u32 {
        let index = setup.index;
        self.metrics.views().add_line(index);
        let addr = Line::new(setup, self.services.clone()).start();
        self.table().insert(index, addr);
        index
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Addr<Line>>> {
        // A panic while the lock was held cannot leave the map half-changed
        // (each change is one insert or remove): go on with it.
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The local UDP port every UDP flow binds (IPv4; IPv6 uses the same
    /// number when it is free).
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// The lines' actors in index order (a snapshot: lines added or removed
    /// later are not in it). Messages of [`crate::line`] go to them.
    pub fn lines(&self) -> Vec<Addr<Line>> {
        self.table().values().cloned().collect()
    }

    /// The actor of line `reg.index`.
    pub fn line(&self, index: u32) -> Result<Addr<Line>, ControlError> {
        self.table()
            .get(&index)
            .cloned()
            .ok_or(ControlError::UnknownLine(index))
    }

    /// The `reg.x` indexes of the lines, in order.
    pub fn line_indexes(&self) -> Vec<u32> {
        self.table().keys().copied().collect()
    }

    /// Every line's status, in index order.
    pub async fn status(&self) -> Vec<LineStatus> {
        join_all(self.lines().iter().map(|l| l.send(GetStatus)))
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    }

    /// Un-registers every line (in parallel, each bounded by `timeout`) and
    /// stops them.
    pub async fn shutdown(&self, timeout: Duration) {
        join_all(self.lines().iter().map(|l| l.send(Shutdown { timeout }))).await;
    }
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

    /// The HTTP adapter shares one fleet between its workers' threads
    /// (`Arc<Fleet>`): the fleet must be `Send + Sync`, and so must what its
    /// control API answers; a subscription moves to the task that reads it.
    #[test]
    fn a_fleet_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Fleet>();
        shared::<ControlError>();
        shared::<LineDetail>();
        shared::<CallSummary>();
        shared::<Routes>();
        // A stream moves into the task that reads it (a WebSocket's).
        fn sent<T: Send>() {}
        sent::<crate::hub::EventStream>();
    }

    /// The control API's futures are `Send` too: an adapter may await them
    /// on any runtime's task. Compiled, never run.
    #[allow(dead_code)]
    fn control_futures_are_send(fleet: &Fleet) {
        fn send<T: Send>(_: T) {}
        send(fleet.status());
        send(fleet.line_details());
        send(fleet.line_detail(1));
        send(fleet.calls());
        send(fleet.place_call(1, "sip:x@y"));
        send(fleet.hangup("id"));
        send(fleet.remove_line(1, Duration::from_secs(1)));
        send(fleet.register_now(1));
        send(fleet.routes("x", None, None));
        send(fleet.metrics_text());
        send(fleet.shutdown(Duration::from_secs(1)));
    }

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
        let base = LineBase {
            config: config.clone(),
            user_agent: options.user_agent.clone(),
            device: "d".into(),
            seed: 1,
            servers: Mutex::new(Vec::new()),
        };
        let Err(err) = base.setup(&config.lines[0]) else {
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
