//! `sipfleet run --config FILE... [--events json] [--sip-port N] [--trace FILE]`:
//! keeps every configured line registered until SIGINT/SIGTERM/SIGHUP (or
//! `--duration`), then un-registers every line within a bounded wait and
//! exits 0. Every UDP flow binds the one `--sip-port` (default: an
//! ephemeral port chosen at start), so a line's Contact survives failover
//! like a phone's. A configuration without any line is refused (exit 2):
//! it would run forever doing nothing.
//!
//! While it runs, it reads one call command per line on stdin (see
//! [`crate::run_commands`]): `call LINE URI`, `emergency LINE URI`,
//! `answer LINE`, `hold LINE`, `resume LINE`, `hangup LINE`. A command
//! that is malformed or cannot apply gets one error line on stderr and
//! changes nothing; so does an input line that is not UTF-8 or is too long;
//! end of input just stops the reading.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sipfleet_actors::events::EventSink;
use sipfleet_actors::fleet::{Fleet, FleetOptions};
use sipfleet_actors::trace::{Trace, TraceFormat};

use crate::api;
use crate::cmd_config::NO_LINES;
use crate::logging;
use crate::output::report;
use crate::run_commands;

/// The longest `--duration`: 100 years.
const MAX_DURATION_S: f64 = 100.0 * 365.0 * 86_400.0;

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
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
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
    /// Serve the control API (HTTP, JSON) on this address, e.g.
    /// 127.0.0.1:8080; an address that is not loopback needs --token-file.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// File holding the API's bearer token (16 characters or more): every
    /// request but /healthz must send `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub token_file: Option<PathBuf>,
    /// Longest wait for the un-REGISTERs at shutdown, in milliseconds
    /// (default: 5000, plus the time the fleet's pacing needs to send one
    /// un-REGISTER per line).
    #[arg(long)]
    pub shutdown_timeout_ms: Option<u64>,
}

/// What stops `run` once it started.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Fleet(#[from] sipfleet_actors::fleet::FleetError),
    #[error(transparent)]
    Listen(#[from] api::ListenError),
}

/// The shutdown wait when none is given: 5 s, plus the lines' un-REGISTERs
/// at the fleet's `sipfleet.register.rate` (10,000 lines at 2,000/s need
/// 5 s just to leave), so a large fleet is not cut off half way.
pub(crate) fn default_shutdown_timeout(lines: usize, rate: u32) -> Duration {
    let base = Duration::from_secs(5);
    if rate == 0 {
        return base;
    }
    base + Duration::from_secs_f64(lines as f64 / f64::from(rate))
}

pub fn run(args: RunArgs) -> ExitCode {
    let config = match sipfleet::config_files::load(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            for line in errors.to_string().lines() {
                report(line);
            }
            return ExitCode::from(2);
        }
    };
    if config.lines.is_empty() {
        report(&format!("sipfleet run: {NO_LINES}"));
        return ExitCode::from(2);
    }
    let start = Instant::now();
    let log = logging::stderr_logger_since(start);
    for warning in &config.warnings {
        slog::warn!(log, "configuration"; "warning" => warning.to_string());
    }
    let events = match args.events {
        EventFormat::Json => EventSink::json_stdout(start),
        EventFormat::Text => EventSink::text_stdout(start),
        EventFormat::Log => Ok(EventSink::Log(log.clone())),
    };
    let events = match events {
        Ok(events) => events,
        Err(e) => {
            report(&format!("sipfleet run: cannot start the event writer: {e}"));
            return ExitCode::from(2);
        }
    };
    let event_stream = events.clone();
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
            report(&format!("sipfleet run: {e}"));
            return ExitCode::from(2);
        }
    }
    let trace = options.trace.clone();
    let listen = match args
        .listen
        .map(|addr| api::ListenConfig::new(addr, args.token_file.as_deref()))
        .transpose()
    {
        Ok(listen) => listen,
        Err(e) => {
            report(&format!("sipfleet run: {e}"));
            return ExitCode::from(2);
        }
    };
    let duration = args.duration;
    let config_paths = args.config.clone();
    let shutdown_timeout = match args.shutdown_timeout_ms {
        Some(ms) => Duration::from_millis(ms),
        None => default_shutdown_timeout(config.lines.len(), config.pacing.rate.get()),
    };
    let system = actix::System::new();
    let result = system.block_on(async move {
        let stop = wait_for_stop(duration);
        let fleet = std::sync::Arc::new(Fleet::start(&config, options)?);
        slog::info!(log, "fleet started"; "lines" => fleet.lines().len(),
            "sip_port" => fleet.sip_port());
        let lines = run_commands::LineMap::new(fleet.clone());
        // The lines hold what they need: the parsed configuration (about
        // 2 KB a line, with every key's source) goes.
        drop(config);
        let listener = match listen {
            Some(listen) => {
                let listener = api::Listener::start(
                    listen,
                    api::State::new(
                        fleet.clone(),
                        api::EventLog::start(&fleet, start),
                        config_paths.clone(),
                    ),
                )?;
                slog::info!(log, "control API listening"; "address" => %listener.addr);
                Some(listener)
            }
            None => None,
        };
        let commands = actix::spawn(run_commands::serve_stdin(lines, log.clone()));
        stop.await;
        commands.abort();
        if let Some(listener) = &listener {
            listener.stop().await;
        }
        slog::info!(log, "stopping: un-registering every line";
            "timeout_ms" => shutdown_timeout.as_millis() as u64);
        fleet.shutdown(shutdown_timeout).await;
        Ok::<_, RunError>(())
    });
    // Every event is on stdout before the process exits.
    event_stream.flush();
    if let Some(trace) = &trace {
        trace.flush();
        for failure in trace.failures() {
            report(&format!(
                "sipfleet run: the message trace stopped: {failure}"
            ));
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&format!("sipfleet run: {e}"));
            ExitCode::from(2)
        }
    }
}

/// The trace writer for `--trace` and `--pcap`, if either is given.
fn open_trace(args: &RunArgs, start: Instant) -> Result<Option<Trace>, String> {
    // Two outputs on one stream would make both unreadable.
    let stdout_events = matches!(args.events, EventFormat::Json | EventFormat::Text);
    let is_stdout = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if is_stdout(&args.pcap) || (stdout_events && is_stdout(&args.trace)) {
        return Err(
            "stdout carries one output: --pcap - needs stdout to itself, and --trace - \
             needs --events log (the events then go to stderr)"
                .into(),
        );
    }
    if let (Some(t), Some(p)) = (&args.trace, &args.pcap) {
        if t == p {
            return Err(format!(
                "--trace and --pcap name the same file {}: give each its own",
                t.display()
            ));
        }
    }
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

/// `--duration`: seconds, finite, 0 to 100 years; anything else is a usage
/// error (exit 2).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    if !secs.is_finite() || !(0.0..=MAX_DURATION_S).contains(&secs) {
        return Err(format!("must be 0 to {MAX_DURATION_S} seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Resolves on SIGINT, SIGTERM, SIGHUP or when `duration` has passed. A
/// hang-up (the terminal or the SSH session went away) stops the fleet
/// the way SIGTERM does, so no binding is left at the SBC.
pub(crate) fn wait_for_stop(duration: Option<Duration>) -> impl std::future::Future<Output = ()> {
    let stop = wait_for_stop_cause(duration);
    async move {
        stop.await;
    }
}

/// What ended the wait of [`wait_for_stop_cause`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopCause {
    /// `--duration` passed.
    Duration,
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
}

/// [`wait_for_stop`], telling what stopped it. After the first signal, a
/// second one ends the process at once (exit 130): someone who presses
/// Ctrl-C twice does not want to wait for the un-REGISTERs.
pub(crate) fn wait_for_stop_cause(
    duration: Option<Duration>,
) -> impl std::future::Future<Output = StopCause> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed now, before the fleet starts: a signal that comes while the
    // lines start must stop them too, not kill the process (SIGHUP's and
    // SIGTERM's default) with bindings left at the SBC.
    let mut listeners: Vec<_> = [
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::interrupt(),
    ]
    .into_iter()
    .filter_map(|kind| signal(kind).ok())
    .collect();
    async move {
        let timer = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let cause = tokio::select! {
            _ = timer => StopCause::Duration,
            _ = any_signal(&mut listeners) => StopCause::Signal,
        };
        tokio::spawn(async move {
            any_signal(&mut listeners).await;
            crate::output::report(
                "sipfleet: another signal while stopping: exiting without waiting for the un-REGISTERs",
            );
            std::process::exit(130);
        });
        cause
    }
}

/// Resolves when any of `listeners` receives its signal (never without one).
async fn any_signal(listeners: &mut [tokio::signal::unix::Signal]) {
    if listeners.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for s in listeners.iter_mut() {
            if s.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::default_shutdown_timeout;
    use std::time::Duration;

    #[test]
    fn the_default_shutdown_wait_covers_the_paced_unregisters() {
        assert_eq!(
            default_shutdown_timeout(2, 2000),
            Duration::from_millis(5001)
        );
        assert_eq!(
            default_shutdown_timeout(10_000, 2000),
            Duration::from_secs(10)
        );
        assert_eq!(
            default_shutdown_timeout(100_000, 2000),
            Duration::from_secs(55)
        );
        assert_eq!(default_shutdown_timeout(100_000, 0), Duration::from_secs(5));
    }
}
