//! `sipfleet load`: a headless load client. N generated lines (a user
//! range or a CSV, a base configuration as template) run as N Poly phones
//! on the fleet engine as it is (failover, failback, back-off, pacing),
//! with live progress, a stats file per interval, a JSON summary, an HTML
//! report and pass/fail thresholds for CI. `--shard I/N` runs one slice of
//! the users so N processes (pods) split one load; `sipfleet load merge`
//! adds their summaries up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::output::report;

pub mod histogram;
pub mod lines;
pub mod merge;
pub mod progress;
pub mod recorder;
pub mod report;
mod run;
pub mod stats_file;
pub mod summary;
pub mod thresholds;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LoadArgs {
    #[command(subcommand)]
    pub command: Option<LoadCommand>,
    #[command(flatten)]
    pub run: RunLoadArgs,
}

#[derive(clap::Subcommand)]
pub enum LoadCommand {
    /// Merge the summaries of the shards of one run into one summary.
    Merge(MergeArgs),
}

#[derive(clap::Args)]
pub struct RunLoadArgs {
    /// Base configuration files: `reg.1.*` keys apply to every line
    /// (`{user}`, `{index}` replaced), other keys to the fleet.
    #[arg(long = "config", short = 'c', num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// How many lines (of the whole load, before sharding).
    #[arg(long)]
    pub lines: Option<u64>,
    /// Numbered users: START.. (with --lines), START..END or START..=END.
    #[arg(long, conflicts_with = "users_csv")]
    pub users: Option<String>,
    /// Users from a CSV file: user,password[,domain] per row.
    #[arg(long, value_name = "FILE")]
    pub users_csv: Option<PathBuf>,
    /// Each line's password, `{user}` and `{index}` replaced: 'pw{user}'.
    #[arg(long, value_name = "PATTERN")]
    pub password_pattern: Option<String>,
    /// The registrar domain (reg.x.server.1.address): AOR and Request-URI.
    #[arg(long)]
    pub domain: Option<String>,
    /// Send every request to this outbound proxy, HOST[:PORT].
    #[arg(long, value_name = "ADDR")]
    pub server: Option<String>,
    /// udp, tcp, tls, naptr or tcppreferred.
    #[arg(long, value_parser = lines::transport_setting)]
    pub transport: Option<&'static str>,
    /// New REGISTER exchanges per second, fleet-wide (sipfleet.register.rate): R or R/s.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<u32>,
    /// Run this long (90, 90s, 5m, 1h), then un-REGISTER and exit.
    #[arg(long, value_parser = parse_span)]
    pub duration: Option<Duration>,
    /// Calls each line places per hour (a Poisson process).
    #[arg(long, value_name = "C", default_value_t = 0.0, value_parser = parse_calls)]
    pub calls_per_line_per_hour: f64,
    /// How long each call lasts from being placed.
    #[arg(long, value_name = "S", value_parser = parse_span, default_value = "30s")]
    pub hold: Duration,
    /// Where the calls go: sip:9001@DOMAIN.
    #[arg(long, value_name = "URI")]
    pub call_to: Option<String>,
    /// One row per interval: FILE.csv or FILE.jsonl.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// The stats interval (timeline, stats file, progress).
    #[arg(long, value_parser = parse_interval, default_value = "1s")]
    pub interval: Duration,
    /// Write the summary (JSON, schema sipfleet.load.summary/1).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the HTML report.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// A pass/fail criterion checked at the end: 'registered_ratio>=0.999'.
    /// Any failure exits 2.
    #[arg(long, value_name = "EXPR")]
    pub threshold: Vec<String>,
    /// Run slice I (0-based) of N of the users.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<String>,
    /// Run one of N slices, the index from JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// DNS server when the configuration sets no tcpIpApp.dns.server.
    #[arg(long)]
    pub dns: Option<std::net::SocketAddr>,
    /// Extra trusted CA certificate (PEM) for TLS routes.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Local UDP port of every line; 0 picks one at start.
    #[arg(long, default_value_t = 0)]
    pub sip_port: u16,
    /// Seed for every random choice (back-off, Call-IDs, call times).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Longest wait for the un-REGISTERs at the end, in milliseconds
    /// (default: 5000 plus the time the pacing needs for them).
    #[arg(long)]
    pub shutdown_timeout_ms: Option<u64>,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' summaries (JSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged summary here (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Write the HTML report of the merged summary.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// A pass/fail criterion on the merged summary; any failure exits 2.
    #[arg(long, value_name = "EXPR")]
    pub threshold: Vec<String>,
    /// Merge even when shards of the run are missing (a merge of merges,
    /// or a run whose shard was lost); without it, a missing shard is an
    /// error, since the merge would count fewer lines than ran.
    #[arg(long)]
    pub partial: bool,
}

pub fn run(args: LoadArgs) -> ExitCode {
    match args.command {
        Some(LoadCommand::Merge(m)) => merge_command(m),
        None => run::run(args.run),
    }
}

/// The thresholds, parsed before anything runs: a typo is a usage error,
/// not a failed run an hour later.
fn parse_thresholds(exprs: &[String]) -> Result<Vec<thresholds::Threshold>, String> {
    exprs
        .iter()
        .map(|e| {
            e.parse::<thresholds::Threshold>()
                .map_err(|err| format!("--threshold {e:?}: {err}"))
        })
        .collect()
}

/// Evaluates the thresholds into the summary; each failure is one line on
/// stderr. False when any failed.
fn check_thresholds(
    list: &[thresholds::Threshold],
    summary: &mut summary::Summary,
    who: &str,
) -> bool {
    summary.thresholds = thresholds::evaluate(list, summary);
    let mut ok = true;
    for r in &summary.thresholds {
        if !r.passed {
            ok = false;
            let note = r
                .note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            report(&format!(
                "{who}: threshold failed: {} (value {}){note}",
                r.expr, r.value
            ));
        }
    }
    ok
}

/// Refuses, before a run, output paths that could not be written at its
/// end (a missing directory, a directory, the same file twice): an hour's
/// results must not be lost to a typo.
pub(crate) fn check_output_paths(paths: &[(&str, Option<&PathBuf>)]) -> Result<(), String> {
    let given: Vec<(&str, &PathBuf)> = paths
        .iter()
        .filter_map(|(flag, p)| p.map(|p| (*flag, p)))
        .collect();
    for (i, (flag, path)) in given.iter().enumerate() {
        if path.is_dir() {
            return Err(format!("{flag} {}: is a directory", path.display()));
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(format!(
                "{flag} {}: no directory {}",
                path.display(),
                parent.display()
            ));
        }
        if let Some((other, _)) = given[..i].iter().find(|(_, p)| p == path) {
            return Err(format!(
                "{other} and {flag} name the same file {}: give each its own",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Writes the summary (pretty JSON) and the report, when asked.
fn write_outputs(
    summary: &summary::Summary,
    summary_path: Option<&PathBuf>,
    report_path: Option<&PathBuf>,
) -> Result<(), String> {
    if let Some(path) = summary_path {
        let json = serde_json::to_string_pretty(summary)
            .map_err(|e| format!("cannot serialize the summary: {e}"))?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("cannot write the summary to {}: {e}", path.display()))?;
    }
    if let Some(path) = report_path {
        std::fs::write(path, report::render_report(summary))
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))?;
    }
    Ok(())
}

fn merge_command(args: MergeArgs) -> ExitCode {
    const WHO: &str = "sipfleet load merge";
    let list = match parse_thresholds(&args.threshold) {
        Ok(list) => list,
        Err(e) => {
            report(&format!("{WHO}: {e}"));
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check_output_paths(&[
        ("--summary", args.summary.as_ref()),
        ("--report", args.report.as_ref()),
    ]) {
        report(&format!("{WHO}: {e}"));
        return ExitCode::from(2);
    }
    let mut summaries = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let read = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<summary::Summary>(&text)
                    .map_err(|e| format!("not a load summary: {e}"))
            });
        match read {
            Ok(s) => summaries.push(s),
            Err(e) => {
                report(&format!("{WHO}: {}: {e}", path.display()));
                return ExitCode::from(2);
            }
        }
    }
    let merged = if args.partial {
        merge::merge_part(summaries)
    } else {
        merge::merge(summaries)
    };
    let mut merged = match merged {
        Ok(m) => m,
        Err(e) => {
            report(&format!("{WHO}: {e}"));
            return ExitCode::from(2);
        }
    };
    let passed = check_thresholds(&list, &mut merged, WHO);
    if let Err(e) = write_outputs(&merged, args.summary.as_ref(), args.report.as_ref()) {
        report(&format!("{WHO}: {e}"));
        return ExitCode::from(2);
    }
    if args.summary.is_none() {
        let json = serde_json::to_string_pretty(&merged).unwrap_or_default();
        let written = crate::output::stdout(&(json + "\n"));
        return crate::output::finish(
            written,
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            },
        );
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// A time span: seconds (`90`, `0.5`) or with a unit (`250ms`, `90s`,
/// `5m`, `1h`); at most a year.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: a number of seconds, or with ms, s, m or h"
            ))
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: a number of seconds, or with ms, s, m or h"))?;
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=366.0 * 86_400.0).contains(&secs) {
        return Err(format!("{text:?}: must be 0 to a year"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--interval`: a span of at least 10 ms (a timeline point per event
/// loop turn would measure the recorder, not the fleet).
fn parse_interval(text: &str) -> Result<Duration, String> {
    let span = parse_span(text)?;
    if span < Duration::from_millis(10) {
        return Err(format!("{text:?}: at least 10ms"));
    }
    Ok(span)
}

/// `--rate R` or `R/s`: sipfleet.register.rate (0 to 1,000,000; 0: unpaced).
fn parse_rate(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let number = t.strip_suffix("/s").unwrap_or(t);
    number
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|r| *r <= 1_000_000)
        .ok_or_else(|| format!("{text:?}: REGISTER exchanges per second, 0 to 1000000 (R or R/s)"))
}

fn parse_calls(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && (0.0..=3_600_000.0).contains(c))
        .ok_or_else(|| format!("{text:?}: calls per line per hour, 0 to 3600000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_rates_and_calls() {
        assert_eq!(parse_span("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_span("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_span("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_span("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_span("-1").is_err());
        assert!(parse_span("5d").is_err());
        assert!(parse_span("x").is_err());
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_interval("0").is_err());
        assert_eq!(parse_rate("500/s"), Ok(500));
        assert_eq!(parse_rate("0"), Ok(0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("2000000").is_err());
        assert_eq!(parse_calls("2.5"), Ok(2.5));
        assert!(parse_calls("NaN").is_err());
        assert!(parse_calls("-1").is_err());
    }
}
