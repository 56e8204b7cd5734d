//! `scripts/lab`: bring the demo lab (instance 0, 127.0.0.11-...) up and
//! down, show it, and switch its faults.

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sipfleet_lab::{instance, DnsMode, Lab, LabConfig, Mode, Transport, ZonePreset};

/// `println!` that returns the write error instead of panicking: a closed
/// stdout (`scripts/lab status | head -1`) ends the tool quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(Failure::Output)?
    };
}

/// Why the tool stops early.
enum Failure {
    /// A message for stderr, exit 1.
    Message(String),
    /// Writing stdout failed (a reader that went away: quiet).
    Output(std::io::Error),
}

impl From<String> for Failure {
    fn from(msg: String) -> Self {
        Failure::Message(msg)
    }
}

#[derive(Parser)]
#[command(
    name = "scripts/lab",
    about = "sipfleet's lab of SBCs and DNS on loopback"
)]
struct Cli {
    /// Lab instance (0 = the demo lab on 127.0.0.x).
    #[arg(long, default_value_t = 0)]
    instance: u32,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the lab and leave it running.
    Up {
        /// Number of SBCs.
        #[arg(long, default_value_t = 3)]
        sbcs: usize,
        /// Serve the guide's mixed-transport NAPTR example (starts 10 SBCs).
        #[arg(long)]
        mixed: bool,
        /// TTL of DNS answers, seconds.
        #[arg(long, default_value_t = 5)]
        ttl: u32,
    },
    /// Stop the lab and remove its directory.
    Down,
    /// Show SBCs, modes, DNS and paths.
    Status,
    /// Set SBC N's mode: ok, 503, 503:SECONDS, silent, dead, reject.
    Sbc { n: usize, mode: String },
    /// DNS: normal, nxdomain, nodata, silent, stop, start, show, remove NAME.
    Dns {
        action: String,
        name: Option<String>,
    },
    /// Print the requests SBC N received.
    Log { n: usize },
}

fn run(cli: Cli) -> Result<(), Failure> {
    let e = |e: sipfleet_lab::LabError| e.to_string();
    match cli.cmd {
        Cmd::Up { sbcs, mixed, ttl } => {
            let config = LabConfig {
                sbc_count: if mixed { sbcs.max(10) } else { sbcs },
                instance: Some(cli.instance),
                ttl,
                zone: if mixed {
                    ZonePreset::MixedTransport
                } else {
                    ZonePreset::Standard
                },
                ..LabConfig::default()
            };
            let lab = Lab::start(config).map_err(e)?;
            // Persisted before printing: a closed stdout must not take the
            // lab down with it.
            let attached = lab.instance();
            lab.persist().map_err(e)?;
            print_status(&Lab::attach(attached).map_err(e)?)?;
        }
        Cmd::Down => {
            Lab::attach(cli.instance).map_err(e)?.destroy().map_err(e)?;
            out!("lab {} down", cli.instance);
        }
        Cmd::Status => print_status(&Lab::attach(cli.instance).map_err(e)?)?,
        Cmd::Sbc { n, mode } => {
            let mode: Mode = mode.parse()?;
            let lab = Lab::attach(cli.instance).map_err(e)?;
            lab.set_mode(n, mode).map_err(e)?;
            out!("sbc{n}: {mode}");
        }
        Cmd::Dns { action, name } => {
            let lab = Lab::attach(cli.instance).map_err(e)?;
            let dns = lab.dns();
            match (action.as_str(), name) {
                ("normal" | "start", _) => dns.set_mode(DnsMode::Normal),
                ("nxdomain", _) => dns.set_mode(DnsMode::NxDomain),
                ("nodata", _) => dns.set_mode(DnsMode::NoData),
                ("silent", _) => dns.set_mode(DnsMode::Silent),
                ("stop", _) => dns.set_mode(DnsMode::Stopped),
                ("remove", Some(n)) => dns.remove_name(&n).map(|_| ()),
                ("show", _) => {
                    out!("{}", serde_json_zone(&dns.zone()));
                    Ok(())
                }
                (other, _) => return Err(format!("unknown dns action {other:?}").into()),
            }
            .map_err(e)?;
            out!("dns {}: {:?}", dns.addr(), dns.mode());
        }
        Cmd::Log { n } => {
            let lab = Lab::attach(cli.instance).map_err(e)?;
            for r in lab.received(n).map_err(e)? {
                out!(
                    "{} {} {} from={} call-id={} expires={} src={}",
                    r.t_ms(),
                    r.transport,
                    r.method,
                    r.from_user.as_deref().unwrap_or("-"),
                    r.call_id,
                    r.expires.map_or("-".to_string(), |x| x.to_string()),
                    r.source
                );
            }
        }
    }
    Ok(())
}

fn serde_json_zone(z: &sipfleet_lab::Zone) -> String {
    z.records
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_status(lab: &Lab) -> Result<(), Failure> {
    out!("lab {} in {}", lab.instance(), lab.dir().display());
    out!(
        "domain {} (users 1000-1999, 20000-29999, 100000-199999; password pw<user>)",
        lab.domain()
    );
    out!("CA {}", lab.ca_cert_path().display());
    out!("dns {} {:?}", lab.dns_addr(), lab.dns().mode());
    for s in lab.sbcs() {
        out!(
            "sbc{} {} {} udp/tcp {} tls {} {}",
            s.index(),
            s.host_name(),
            s.ip(),
            s.addr(Transport::Udp),
            s.addr(Transport::Tls),
            s.mode()
        );
    }
    let _ = instance::BASE_DIR;
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Output(e)) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => {
            let _ = writeln!(
                std::io::stderr(),
                "scripts/lab: cannot write the output: {e}"
            );
            ExitCode::FAILURE
        }
        Err(Failure::Message(msg)) => {
            let _ = writeln!(std::io::stderr(), "scripts/lab: {msg}");
            ExitCode::FAILURE
        }
    }
}
