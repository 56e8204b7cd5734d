//! The load run itself: checks every input before anything starts (a bad
//! threshold, CSV row or pattern is exit 2 with one line saying why), then
//! starts the fleet with its events on a channel, records them, closes an
//! interval every `--interval` (stats file, progress), places calls, and at
//! the end (`--duration`, SIGINT, SIGTERM, SIGHUP) takes the "at end"
//! figures, un-REGISTERs every line as `sipfleet run` does, and writes the
//! summary and the report.

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::Addr;
use rand::{Rng, SeedableRng};
use sipfleet_actors::events::{EventSink, LineEvent};
use sipfleet_actors::fleet::{Fleet, FleetOptions};
use sipfleet_actors::line::{Hangup, Line, PlaceCall};
use tokio::sync::{mpsc, oneshot};

use super::lines::{self, Base, LineOverrides, Shard, Users};
use super::progress::Progress;
use super::recorder::Recorder;
use super::stats_file::StatsFile;
use super::summary::ShardInfo;
use super::{check_thresholds, parse_thresholds, write_outputs, RunLoadArgs};
use crate::cmd_run::{default_shutdown_timeout, wait_for_stop_cause, StopCause};
use crate::logging;
use crate::output::report;

const WHO: &str = "sipfleet load";

/// Everything checked and built before the fleet starts.
struct Plan {
    config: sipfleet_protocol::config::FleetConfig,
    shard: ShardInfo,
    thresholds: Vec<super::thresholds::Threshold>,
    call_to: Option<String>,
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    report(&format!("{WHO}: {message}"));
    ExitCode::from(2)
}

fn prepare(args: &RunLoadArgs) -> Result<Plan, ExitCode> {
    let thresholds = parse_thresholds(&args.threshold).map_err(usage)?;
    if let Some(path) = &args.stats {
        StatsFile::check(path).map_err(usage)?;
    }
    super::check_output_paths(&[
        ("--stats", args.stats.as_ref()),
        ("--summary", args.summary.as_ref()),
        ("--report", args.report.as_ref()),
    ])
    .map_err(usage)?;
    let shard = match (&args.shard, args.shards) {
        (Some(text), _) => text.parse::<Shard>().map_err(usage)?,
        (None, Some(count)) => {
            let env = std::env::var("JOB_COMPLETION_INDEX").ok();
            Shard::from_env(count, env.as_deref()).map_err(usage)?
        }
        (None, None) => Shard::WHOLE,
    };
    let users = match (&args.users, &args.users_csv) {
        (Some(range), _) => Users::Range(range.parse().map_err(usage)?),
        (None, Some(path)) => Users::Csv(path.clone()),
        (None, None) => return Err(usage(lines::LinesError::NoUsers)),
    };
    let call_to = if args.calls_per_line_per_hour > 0.0 {
        let uri = args.call_to.as_deref().ok_or_else(|| {
            usage("--calls-per-line-per-hour needs --call-to URI (sip:9001@DOMAIN)")
        })?;
        Some(crate::run_commands::target_uri(uri).map_err(|e| usage(format!("--call-to: {e}")))?)
    } else {
        None
    };
    let (specs, _total) = lines::plan(&users, args.lines, shard).map_err(usage)?;
    let base = Base::load(&args.config).map_err(usage)?;
    let overrides = LineOverrides {
        password_pattern: args.password_pattern.clone(),
        domain: args.domain.clone(),
        server: args.server.clone(),
        transport: args.transport,
        rate: args.rate,
    };
    let config = match lines::fleet_config(base, &specs, &overrides).map_err(usage)? {
        Ok(config) => config,
        Err(errors) => return Err(usage(config_error_line(&errors))),
    };
    let shard = ShardInfo {
        index: shard.index,
        count: shard.count,
        first_user: specs.first().map(|s| s.user.clone()).unwrap_or_default(),
        last_user: specs.last().map(|s| s.user.clone()).unwrap_or_default(),
        lines: specs.len() as u64,
    };
    Ok(Plan {
        config,
        shard,
        thresholds,
        call_to,
    })
}

/// One line for the configuration's errors: the first, and how many
/// more (a bad template value is one error per generated line: 10,000
/// lines of the same message help nobody).
fn config_error_line(errors: &sipfleet_protocol::config::ConfigErrors) -> String {
    match errors.errors.split_first() {
        Some((first, [])) => first.to_string(),
        Some((first, rest)) => format!("{first} (and {} more configuration errors)", rest.len()),
        None => errors.to_string(),
    }
}

/// What the monitor task is asked to do by the run.
enum Control {
    /// Take the "at end" figures (after every event so far).
    MarkEnd(oneshot::Sender<()>),
    /// Close the last interval and stop.
    Finish(oneshot::Sender<()>),
}

pub fn run(args: RunLoadArgs) -> ExitCode {
    let plan = match prepare(&args) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let mut stats = match args.stats.as_deref().map(StatsFile::create).transpose() {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let start = Instant::now();
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let log = logging::quiet_stderr_logger_since(start);
    for warning in &plan.config.warnings {
        slog::warn!(log, "configuration"; "warning" => warning.to_string());
    }
    let n = plan.config.lines.len();
    let (events, mut rx) = EventSink::channel();
    let options = FleetOptions {
        events,
        log: log.clone(),
        ca_file: args.ca_file.clone(),
        dns_servers: args.dns.into_iter().collect(),
        seed: args.seed,
        user_agent: format!("sipfleet-load/{}", env!("CARGO_PKG_VERSION")),
        sip_port: args.sip_port,
        trace: None,
    };
    let shutdown_timeout = match args.shutdown_timeout_ms {
        Some(ms) => Duration::from_millis(ms),
        None => default_shutdown_timeout(n, plan.config.pacing.rate.get()),
    };
    let interval = args.interval.max(Duration::from_millis(10));
    let recorder = Rc::new(RefCell::new(Recorder::new(start, interval, n)));
    let progress = Progress::new(n as u64);
    let calls = plan.call_to.clone().map(|to| CallPlan {
        to,
        per_second: args.calls_per_line_per_hour * n as f64 / 3600.0,
        hold: args.hold,
        seed: args.seed,
    });
    let config = plan.config;
    let system = actix::System::new();
    let result = system.block_on(async {
        let stop = wait_for_stop_cause(args.duration);
        let fleet = Fleet::start(&config, options)?;
        drop(config);
        slog::info!(log, "load started"; "lines" => n, "sip_port" => fleet.sip_port());
        let (ctl_tx, mut ctl_rx) = mpsc::unbounded_channel::<Control>();
        let monitor = {
            let recorder = recorder.clone();
            let progress = &progress;
            let stats = &mut stats;
            async move {
                let mut ticker = tokio::time::interval_at((start + interval).into(), interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        biased;
                        control = ctl_rx.recv() => {
                            drain(&mut rx, &recorder);
                            match control {
                                Some(Control::MarkEnd(done)) => {
                                    recorder.borrow_mut().mark_end();
                                    let _ = done.send(());
                                }
                                Some(Control::Finish(done)) => {
                                    let now = Instant::now();
                                    let t_ms = recorder.borrow().interval_end_ms(now);
                                    close(&recorder, now, t_ms, progress, stats);
                                    let _ = done.send(());
                                    break;
                                }
                                None => break,
                            }
                        }
                        tick = ticker.tick() => {
                            drain(&mut rx, &recorder);
                            let t_ms = tick.into_std().saturating_duration_since(start).as_millis() as u64;
                            close(&recorder, Instant::now(), t_ms, progress, stats);
                        }
                        Some(event) = rx.recv() => recorder.borrow_mut().record(&event),
                    }
                }
            }
        };
        let caller = calls.map(|plan| {
            actix::spawn(place_calls(plan, fleet.lines().to_vec(), recorder.clone()))
        });
        let run = async {
            let cause = stop.await;
            if let Some(caller) = &caller {
                caller.abort();
            }
            let retransmissions: u64 = fleet
                .status()
                .await
                .iter()
                .map(|s| u64::from(s.register_retransmissions))
                .sum();
            let (done, wait) = oneshot::channel();
            let _ = ctl_tx.send(Control::MarkEnd(done));
            let _ = wait.await;
            progress.stopping(shutdown_timeout);
            slog::info!(log, "stopping: un-registering every line";
                "timeout_ms" => shutdown_timeout.as_millis() as u64);
            fleet.shutdown(shutdown_timeout).await;
            let (done, wait) = oneshot::channel();
            let _ = ctl_tx.send(Control::Finish(done));
            let _ = wait.await;
            (retransmissions, cause)
        };
        let (_, (retransmissions, cause)) = tokio::join!(monitor, run);
        Ok::<_, sipfleet_actors::fleet::FleetError>((retransmissions, cause))
    });
    progress.finish();
    let (retransmissions, cause) = match result {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let end = Instant::now();
    let mut summary = recorder
        .borrow()
        .summary(started_unix_ms, end, plan.shard, retransmissions);
    summary.requested_duration_ms = args.duration.map(|d| d.as_millis() as u64);
    // Without --duration a signal is how a run ends; with one, a signal
    // cut it short.
    summary.interrupted = cause == StopCause::Signal && args.duration.is_some();
    let passed = check_thresholds(&plan.thresholds, &mut summary, WHO);
    report(&final_line(&summary));
    if let Err(e) = write_outputs(&summary, args.summary.as_ref(), args.report.as_ref()) {
        return usage(e);
    }
    if !passed {
        ExitCode::from(2)
    } else if summary.interrupted {
        report(&format!(
            "{WHO}: interrupted by a signal before --duration: the summary covers {:.1} s of {:.1} s (exit {EXIT_INTERRUPTED})",
            summary.duration_ms as f64 / 1000.0,
            summary.requested_duration_ms.unwrap_or(0) as f64 / 1000.0
        ));
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Exit status of a run a signal ended before its `--duration`: not a
/// pass (a preempted shard must not look like one), not a usage error.
pub const EXIT_INTERRUPTED: u8 = 3;

/// Records every event already on the channel: the fleet runs on this
/// thread, so everything stamped before now is there.
fn drain(rx: &mut mpsc::UnboundedReceiver<LineEvent>, recorder: &RefCell<Recorder>) {
    let mut r = recorder.borrow_mut();
    while let Ok(event) = rx.try_recv() {
        r.record(&event);
    }
}

fn close(
    recorder: &RefCell<Recorder>,
    now: Instant,
    t_ms: u64,
    progress: &Progress,
    stats: &mut Option<StatsFile>,
) {
    let (point, extra) = {
        let mut r = recorder.borrow_mut();
        (r.close_interval(now, t_ms), r.extra())
    };
    progress.update(&point, extra);
    if let Some(file) = stats {
        if let Err(e) = file.write(&point) {
            // The run goes on: the summary still has the timeline.
            report(&format!("{WHO}: {e}; no more stats rows"));
            *stats = None;
        }
    }
}

fn final_line(s: &super::summary::Summary) -> String {
    let l = &s.lines;
    let r = &s.registrations;
    format!(
        "{WHO}: {} lines: {} registered at the end, {} ever, {} never; {} registrations, {} REGISTERs each; latency {}; failovers {} failbacks {}; calls {} attempted {} answered {} failed {} dropped",
        l.configured,
        l.registered_at_end,
        l.ever_registered,
        l.never_registered,
        r.registered,
        if r.registers_per_registration.is_nan() {
            "-".to_string()
        } else {
            format!("{:.2}", r.registers_per_registration)
        },
        latency_text(&s.register_latency_ms),
        s.failovers.iter().map(|m| m.count).sum::<u64>(),
        s.failbacks.iter().map(|m| m.count).sum::<u64>(),
        s.calls.attempted,
        s.calls.answered,
        s.calls.failed,
        s.calls.dropped
    )
}

/// `p50 N ms p99 N ms max N ms`, or `-` without a sample (a 0 ms would
/// read as a fast registrar).
fn latency_text(h: &super::summary::Histogram) -> String {
    if h.count == 0 {
        return "-".into();
    }
    format!("p50 {} ms p99 {} ms max {} ms", h.p50, h.p99, h.max)
}

struct CallPlan {
    to: String,
    /// Calls per second over the whole fleet.
    per_second: f64,
    hold: Duration,
    seed: Option<u64>,
}

/// Calls as a Poisson process: each line at C per hour is the fleet at
/// N·C per hour with each call on a line drawn uniformly (the sum of
/// independent Poisson processes), so one timer serves every line. A line
/// that is not registered when its call comes cannot place it, like a
/// phone without service: counted as a failed call (`not_placed`).
async fn place_calls(plan: CallPlan, lines: Vec<Addr<Line>>, recorder: Rc<RefCell<Recorder>>) {
    if lines.is_empty() || plan.per_second <= 0.0 {
        return;
    }
    let mut rng = match plan.seed {
        Some(seed) => rand::rngs::SmallRng::seed_from_u64(seed ^ 0x6c6f_6164),
        None => rand::rngs::SmallRng::from_os_rng(),
    };
    loop {
        let u: f64 = rng.random();
        let wait = -(1.0 - u).ln() / plan.per_second;
        tokio::time::sleep(Duration::from_secs_f64(wait.min(86_400.0))).await;
        let i = rng.random_range(0..lines.len());
        if !recorder.borrow().is_registered(i) {
            recorder.borrow_mut().call_not_placed();
            continue;
        }
        let line = lines[i].clone();
        let (to, hold, recorder) = (plan.to.clone(), plan.hold, recorder.clone());
        actix::spawn(async move {
            match line.send(PlaceCall { target: to }).await {
                Ok(Ok(_)) => {
                    tokio::time::sleep(hold).await;
                    // Gone already (ended by the far end, or the line
                    // stopped): nothing to hang up.
                    let _ = line.send(Hangup).await;
                }
                _ => recorder.borrow_mut().call_not_placed(),
            }
        });
    }
}
