//! The command line's logger: human-readable slog records on stderr, so
//! stdout stays free for machine output (`--events json`, `--json`).
//! `SIPFLEET_LOG=debug|info|warning|error` sets the level (default info).

use slog::Drain;

/// The logger of `sipfleet run`: every record also carries `t_ms`, the
/// milliseconds since `start`, which is time 0 of the event stream
/// (`t_ms` of `--events json`) and of the message trace (`t=`): the three
/// outputs read on one clock.
pub fn stderr_logger_since(start: std::time::Instant) -> slog::Logger {
    with_t_ms(stderr_logger(), start)
}

/// The logger of `sipfleet load`: warnings and errors only unless
/// `SIPFLEET_LOG` says otherwise, so thousands of lines' routine records
/// do not drown the progress lines.
pub fn quiet_stderr_logger_since(start: std::time::Instant) -> slog::Logger {
    with_t_ms(stderr_logger_at(slog::Level::Warning), start)
}

fn with_t_ms(log: slog::Logger, start: std::time::Instant) -> slog::Logger {
    log.new(slog::o!("t_ms" => slog::FnValue(move |_| {
        start.elapsed().as_millis() as u64
    })))
}

pub fn stderr_logger() -> slog::Logger {
    stderr_logger_at(slog::Level::Info)
}

/// `SIPFLEET_LOG`'s level, else `default`.
fn stderr_logger_at(default: slog::Level) -> slog::Logger {
    let level = match std::env::var("SIPFLEET_LOG").as_deref() {
        Ok("trace") => slog::Level::Trace,
        Ok("debug") => slog::Level::Debug,
        Ok("warning") | Ok("warn") => slog::Level::Warning,
        Ok("error") => slog::Level::Error,
        Ok("info") => slog::Level::Info,
        _ => default,
    };
    let decorator = slog_term::TermDecorator::new().stderr().build();
    // A closed stderr must not panic the logger's thread: records that
    // cannot be written are dropped.
    let drain = slog_term::FullFormat::new(decorator).build().ignore_res();
    let drain = slog_async::Async::new(drain).build().fuse();
    let drain = drain.filter_level(level).fuse();
    slog::Logger::root(drain, slog::o!())
}
