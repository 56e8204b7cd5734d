//! The command line's logger: human-readable slog records on stderr, so
//! stdout stays free for machine output (`--events json`, `--json`).
//! `SIPFLEET_LOG=debug|info|warning|error` sets the level (default info).

use slog::Drain;

pub fn stderr_logger() -> slog::Logger {
    let level = match std::env::var("SIPFLEET_LOG").as_deref() {
        Ok("trace") => slog::Level::Trace,
        Ok("debug") => slog::Level::Debug,
        Ok("warning") | Ok("warn") => slog::Level::Warning,
        Ok("error") => slog::Level::Error,
        _ => slog::Level::Info,
    };
    let decorator = slog_term::TermDecorator::new().stderr().build();
    // A closed stderr must not panic the logger's thread: records that
    // cannot be written are dropped.
    let drain = slog_term::CompactFormat::new(decorator)
        .build()
        .ignore_res();
    let drain = slog_async::Async::new(drain).build().fuse();
    let drain = drain.filter_level(level).fuse();
    slog::Logger::root(drain, slog::o!())
}
