//! `sipfleet routes NAME`: resolve a server address the way a line would (same
//! resolver actor, cache, static entries and restore policy) and print its route
//! list in the guide's selection order, as a table or as JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::output;
use std::time::Duration;

use actix::Actor;
use sipfleet_actors::fleet::{configured_server, routes_target, RouteRow, Routes};
use sipfleet_actors::resolver::{Resolve, Resolver, ResolverConfig};
use sipfleet_protocol::config::FleetConfig;
use sipfleet_protocol::dns::{ResolveTarget, RestorePolicy, StaticCache, TransportSetting};
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
    let routes = Routes::of(&set, now);
    if args.json {
        serde_json::to_string_pretty(&routes).map_err(|e| e.to_string())
    } else {
        Ok(table(&target, &routes.routes))
    }
}

fn tokio_now() -> std::time::Instant {
    actix_rt::time::Instant::now().into_std()
}

/// NAME with `--transport`/`--port`, or else the settings of the first
/// configured server or outbound proxy with that address (the library's
/// rule, which `Fleet::routes` follows too).
fn target_of(args: &RoutesArgs, fleet: Option<&FleetConfig>) -> ResolveTarget {
    let configured = fleet.and_then(|f| configured_server(f, &args.name));
    routes_target(&args.name, args.transport, args.port, configured)
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

fn table(target: &ResolveTarget, rows: &[RouteRow]) -> String {
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
