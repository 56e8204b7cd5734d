//! `sipfleet routes NAME`: resolve a server address the way a line would (same
//! resolver actor, cache, static entries and restore policy) and print its route
//! list in the guide's selection order, as a table or as JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::output;
use std::time::Duration;

use actix::Actor;
use serde::Serialize;
use sipfleet_actors::resolver::{Resolve, Resolver, ResolverConfig};
use sipfleet_protocol::config::FleetConfig;
use sipfleet_protocol::dns::{
    ResolveTarget, RestorePolicy, RouteSet, StaticCache, TransportSetting,
};
use sipfleet_transport::dns::{parse_server, DnsClientConfig};

#[derive(clap::Args)]
pub struct RoutesArgs {
    /// The name to resolve (a domain, a host name or an IP address).
    pub name: String,
    /// Transport setting: dnsNaptr (default), TLS, TCPOnly, TCPpreferred or
    /// UDPOnly. Without it, the setting of a configured server with this
    /// address is used.
    #[arg(long, value_parser = parse_transport)]
    pub transport: Option<TransportSetting>,
    /// Port; 0 (default) means SRV, any other value an A query only.
    #[arg(long)]
    pub port: Option<u16>,
    /// DNS server as IP[:PORT]; repeat for alternates. Overrides the
    /// configuration's tcpIpApp.dns.server / altServer and /etc/resolv.conf.
    #[arg(long = "dns", value_parser = parse_dns)]
    pub dns: Vec<SocketAddr>,
    /// Configuration files (key="value" or Poly XML), later ones override:
    /// DNS servers, static cache and dynamic restore come from here.
    #[arg(long = "config")]
    pub config: Vec<PathBuf>,
    /// Seconds to wait for one DNS answer.
    #[arg(long, default_value_t = 2)]
    pub timeout: u64,
    /// Seed for the RFC 2782 weighted order (default: random, like a phone).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_transport(s: &str) -> Result<TransportSetting, String> {
    TransportSetting::parse(s).ok_or_else(|| {
        format!("unknown transport {s:?} (dnsNaptr, TLS, TCPOnly, TCPpreferred, UDPOnly)")
    })
}

fn parse_dns(s: &str) -> Result<SocketAddr, String> {
    parse_server(s).map_err(|e| e.to_string())
}

pub fn run(args: RoutesArgs) -> ExitCode {
    match execute(&args) {
        Ok(output) => output::finish(output::stdout(&format!("{output}\n")), ExitCode::SUCCESS),
        Err(message) if args.json => {
            let text = format!(
                "{}\n",
                serde_json::json!({ "error": output::clip(&message) })
            );
            output::finish(output::stdout(&text), ExitCode::FAILURE)
        }
        Err(message) => {
            output::report(&format!("sipfleet routes: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn execute(args: &RoutesArgs) -> Result<String, String> {
    let fleet = if args.config.is_empty() {
        None
    } else {
        Some(sipfleet::config_files::load(&args.config).map_err(|e| e.to_string())?)
    };
    let target = target_of(args, fleet.as_ref());
    let config = resolver_config(args, fleet.as_ref())?;
    let system = actix_rt::System::new();
    let (set, now) = system.block_on(async {
        let resolver = Resolver::new(config).map_err(|e| e.to_string())?.start();
        let set = resolver
            .send(Resolve {
                target: target.clone(),
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((set, tokio_now()))
    })?;
    let rows = rows(&set, now);
    if args.json {
        let doc = JsonOutput {
            name: &target.name,
            transport_setting: target.transport_setting.as_str(),
            port: target.port,
            routes: rows,
        };
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
    } else {
        Ok(table(&target, &rows))
    }
}

pub(crate) fn tokio_now() -> std::time::Instant {
    actix_rt::time::Instant::now().into_std()
}

/// NAME with `--transport`/`--port`, or else the settings of the first
/// configured server or outbound proxy with that address.
fn target_of(args: &RoutesArgs, fleet: Option<&FleetConfig>) -> ResolveTarget {
    let configured = fleet.and_then(|f| {
        f.lines
            .iter()
            .flat_map(|l| l.servers.iter().chain(l.outbound_proxy.iter()))
            .find(|s| s.address.value.eq_ignore_ascii_case(&args.name))
    });
    let transport = args
        .transport
        .or(configured.map(|s| s.transport.get()))
        .unwrap_or(TransportSetting::DnsNaptr);
    let port = args
        .port
        .or(configured.and_then(|s| s.port.get()))
        .unwrap_or(0);
    ResolveTarget::new(args.name.clone(), transport, port)
}

fn resolver_config(
    args: &RoutesArgs,
    fleet: Option<&FleetConfig>,
) -> Result<ResolverConfig, String> {
    let mut servers = args.dns.clone();
    if servers.is_empty() {
        if let Some(dns) = fleet.map(|f| &f.dns) {
            servers.extend(
                dns.server
                    .iter()
                    .chain(dns.alt_server.iter())
                    .map(|s| s.value),
            );
        }
    }
    if servers.is_empty() {
        servers = sipfleet_transport::dns::system_servers();
    }
    if servers.is_empty() {
        return Err("no DNS server: pass --dns IP[:PORT] or set tcpIpApp.dns.server".into());
    }
    Ok(ResolverConfig {
        client: DnsClientConfig {
            servers,
            timeout: Duration::from_secs(args.timeout.max(1)),
            attempts: 2,
        },
        statics: fleet
            .map(|f| StaticCache::from_settings(&f.dns))
            .unwrap_or_default(),
        restore: fleet
            .map(|f| RestorePolicy::from_settings(&f.dns))
            .unwrap_or_default(),
        seed: args.seed,
    })
}

/// The JSON document of `--json`, and of the control API's `/v1/routes`.
#[derive(Serialize)]
pub(crate) struct JsonOutput<'a> {
    pub name: &'a str,
    pub transport_setting: &'a str,
    pub port: u16,
    pub routes: Vec<Row>,
}

/// One line of the table / one JSON route.
#[derive(Serialize)]
pub(crate) struct Row {
    selection_order: usize,
    group: usize,
    transport: &'static str,
    naptr_order: Option<u16>,
    naptr_preference: Option<u16>,
    srv_name: Option<String>,
    priority: u16,
    weight: u16,
    target: String,
    address: String,
    port: u16,
    /// Seconds until the shortest-lived record behind the route expires
    /// (`null` for an IP literal).
    ttl_left_s: Option<u64>,
    source: &'static str,
}

pub(crate) fn rows(set: &RouteSet, now: std::time::Instant) -> Vec<Row> {
    set.entries
        .iter()
        .map(|e| Row {
            selection_order: e.selection_order,
            group: e.route.group,
            transport: e.route.transport.as_str(),
            naptr_order: e.naptr.map(|n| n.0),
            naptr_preference: e.naptr.map(|n| n.1),
            srv_name: e.srv_name.clone(),
            priority: e.route.priority,
            weight: e.route.weight,
            target: e.route.host.clone(),
            address: e.route.addr.ip().to_string(),
            port: e.route.addr.port(),
            ttl_left_s: e
                .expires
                .map(|t| ceil_secs(t.saturating_duration_since(now))),
            source: e.route.source.as_str(),
        })
        .collect()
}

/// Whole seconds left, rounded up: a record with 300 s to live shows 300.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn table(target: &ResolveTarget, rows: &[Row]) -> String {
    let header = [
        "SEL",
        "GROUP",
        "TRANSPORT",
        "NAPTR",
        "SRV",
        "PRI",
        "WEIGHT",
        "TARGET",
        "ADDRESS",
        "PORT",
        "TTL",
        "SOURCE",
    ];
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.selection_order.to_string(),
                r.group.to_string(),
                r.transport.to_string(),
                match (r.naptr_order, r.naptr_preference) {
                    (Some(o), Some(p)) => format!("{o}/{p}"),
                    _ => dash(),
                },
                r.srv_name.clone().unwrap_or_else(dash),
                r.priority.to_string(),
                r.weight.to_string(),
                r.target.clone(),
                r.address.clone(),
                r.port.to_string(),
                r.ttl_left_s.map(|t| t.to_string()).unwrap_or_else(dash),
                r.source.to_string(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cols: Vec<&str>| {
        let padded: Vec<String> = cols
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = format!(
        "{} ({}, port {}): {} route(s) in selection order\n",
        target.name,
        target.transport_setting.as_str(),
        target.port,
        rows.len()
    );
    out.push_str(&line(header.to_vec()));
    for c in &cells {
        out.push('\n');
        out.push_str(&line(c.iter().map(String::as_str).collect()));
    }
    out
}
