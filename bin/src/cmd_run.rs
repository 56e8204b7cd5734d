//! `sipfleet run --config FILE... [--events json] [--sip-port N]`: keeps
//! every configured line registered until SIGINT/SIGTERM (or `--duration`),
//! then un-registers every line within a bounded wait and exits 0. Every
//! UDP flow binds the one `--sip-port` (default: an ephemeral port chosen
//! at start), so a line's Contact survives failover like a phone's.
//!
//! While it runs, it reads one call command per line on stdin (see
//! [`crate::run_commands`]): `call LINE URI`, `emergency LINE URI`,
//! `answer LINE`, `hold LINE`, `resume LINE`, `hangup LINE`. A command
//! that is malformed or cannot apply gets one error line on stderr and
//! changes nothing; end of input just stops the reading.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sipfleet_actors::events::EventSink;
use sipfleet_actors::fleet::{Fleet, FleetOptions};
use sipfleet_actors::trace::{Trace, TraceFormat};

use crate::logging;
use crate::run_commands;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFormat {
    /// One JSON object per line on stdout (schema in the README).
    Json,
    /// One aligned human-readable line per event on stdout.
    Text,
    /// Structured log records on stderr.
    Log,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Configuration files (key="value" lines or Poly XML); later ones override earlier ones.
    #[arg(long = "config", short = 'c', required = true, num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// How to report line events.
    #[arg(long, value_enum, default_value = "log")]
    pub events: EventFormat,
    /// Extra trusted CA certificate (PEM) for TLS routes.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// DNS server to use when the configuration sets no tcpIpApp.dns.server.
    #[arg(long)]
    pub dns: Option<SocketAddr>,
    /// Seed for every random choice (back-off, Call-IDs, SRV weights).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop by itself after this many seconds (as if SIGTERM arrived).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Local UDP port of every line (the Contact's port, kept across
    /// failover and failback); 0 picks an ephemeral port once, at start.
    #[arg(long, default_value_t = 0)]
    pub sip_port: u16,
    /// Write every SIP message sent and received, with time, direction,
    /// transport and addresses, to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write every SIP message sent and received as a pcap capture
    /// (IP/UDP packets between the flows' addresses) that Wireshark opens.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Longest wait for the un-REGISTERs at shutdown, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub shutdown_timeout_ms: u64,
}

pub fn run(args: RunArgs) -> ExitCode {
    let config = match sipfleet::config_files::load(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let log = logging::stderr_logger_since(start);
    for warning in &config.warnings {
        slog::warn!(log, "configuration"; "warning" => warning.to_string());
    }
    let events = match args.events {
        EventFormat::Json => EventSink::json_stdout(start),
        EventFormat::Text => EventSink::text_stdout(start),
        EventFormat::Log => EventSink::Log(log.clone()),
    };
    let mut options = FleetOptions {
        events,
        log: log.clone(),
        ca_file: args.ca_file.clone(),
        dns_servers: args.dns.into_iter().collect(),
        seed: args.seed,
        user_agent: format!("sipfleet/{}", env!("CARGO_PKG_VERSION")),
        sip_port: args.sip_port,
        trace: None,
    };
    match open_trace(&args, start) {
        Ok(trace) => options.trace = trace,
        Err(e) => {
            eprintln!("sipfleet run: {e}");
            return ExitCode::from(2);
        }
    }
    let trace = options.trace.clone();
    let duration = match args.duration {
        Some(d) if d.is_finite() && d >= 0.0 => Some(Duration::from_secs_f64(d)),
        Some(d) => {
            eprintln!("--duration must be a non-negative number of seconds, not {d}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let shutdown_timeout = Duration::from_millis(args.shutdown_timeout_ms);
    let system = actix::System::new();
    let result = system.block_on(async move {
        let fleet = Fleet::start(&config, options)?;
        slog::info!(log, "fleet started"; "lines" => fleet.lines().len(),
            "sip_port" => fleet.sip_port());
        let lines = run_commands::LineMap::new(&config, &fleet);
        let commands = actix::spawn(run_commands::serve_stdin(lines, log.clone()));
        wait_for_stop(duration).await;
        commands.abort();
        slog::info!(log, "stopping: un-registering every line";
            "timeout_ms" => shutdown_timeout.as_millis() as u64);
        fleet.shutdown(shutdown_timeout).await;
        Ok::<_, sipfleet_actors::fleet::FleetError>(())
    });
    if let Some(trace) = &trace {
        trace.flush();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipfleet run: {e}");
            ExitCode::from(2)
        }
    }
}

/// The trace writer for `--trace` and `--pcap`, if either is given.
fn open_trace(args: &RunArgs, start: Instant) -> Result<Option<Trace>, String> {
    let mut outputs: Vec<(Box<dyn std::io::Write + Send>, TraceFormat)> = Vec::new();
    let open = |path: &PathBuf| -> Result<Box<dyn std::io::Write + Send>, String> {
        if path.as_os_str() == "-" {
            return Ok(Box::new(std::io::stdout()));
        }
        std::fs::File::create(path)
            .map(|f| Box::new(f) as Box<dyn std::io::Write + Send>)
            .map_err(|e| format!("cannot write the trace to {}: {e}", path.display()))
    };
    if let Some(path) = &args.trace {
        outputs.push((open(path)?, TraceFormat::Text));
    }
    if let Some(path) = &args.pcap {
        outputs.push((open(path)?, TraceFormat::Pcap));
    }
    if outputs.is_empty() {
        return Ok(None);
    }
    Trace::spawn(outputs, start)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Resolves on SIGINT, SIGTERM or when `duration` has passed.
async fn wait_for_stop(duration: Option<Duration>) {
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = timer => {}
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
