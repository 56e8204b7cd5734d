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
    let shown = stderr_drain_at(slog::Level::Warning);
    let log = slog::Logger::root(
        FirstOfEachKind::new(shown, LOAD_RECORDS_OF_A_KIND).fuse(),
        slog::o!(),
    );
    with_t_ms(log, start)
}

/// Records of one kind (one message) `sipfleet load` shows; the lines'
/// summary counts the rest. 10,000 lines whose SBC refuses them would
/// otherwise write 10,000 warnings a round over the progress lines.
const LOAD_RECORDS_OF_A_KIND: u64 = 5;

/// A drain that passes the first `limit` records of each message (and says
/// when it stops), then drops that message's records.
struct FirstOfEachKind<D> {
    inner: D,
    limit: u64,
    seen: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl<D> FirstOfEachKind<D> {
    fn new(inner: D, limit: u64) -> Self {
        FirstOfEachKind {
            inner,
            limit,
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// How many records of `message` came before this one.
    fn count(&self, message: String) -> u64 {
        let Ok(mut seen) = self.seen.lock() else {
            return 0;
        };
        let n = seen.entry(message).or_insert(0);
        *n += 1;
        *n - 1
    }
}

impl<D: slog::Drain<Ok = (), Err = slog::Never>> slog::Drain for FirstOfEachKind<D> {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let before = self.count(format!("{}", record.msg()));
        if before < self.limit {
            self.inner.log(record, values)?;
        }
        if before + 1 == self.limit {
            let note = format!(
                "{} (more records like this one are not shown)",
                record.msg()
            );
            let args = format_args!("{note}");
            let rs = slog::RecordStatic {
                location: record.location(),
                tag: record.tag(),
                level: record.level(),
            };
            self.inner.log(
                &slog::Record::new(&rs, &args, slog::BorrowedKV(&())),
                values,
            )?;
        }
        Ok(())
    }
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
    slog::Logger::root(stderr_drain_at(default), slog::o!())
}

/// The stderr drain at `SIPFLEET_LOG`'s level, else `default`.
fn stderr_drain_at(
    default: slog::Level,
) -> impl slog::Drain<Ok = (), Err = slog::Never> + Send + Sync + 'static {
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
    drain.filter_level(level).fuse()
}
