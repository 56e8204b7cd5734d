//! The lines of a load run, generated instead of written: a user range
//! (`--users 20000..`) or a CSV file (`--users-csv`, `user,password[,domain]`),
//! sliced for this shard (`--shard I/N`), and a [`FleetConfig`] built from
//! them and a base configuration in memory.
//!
//! The base configuration's `reg.1.*` keys are a template: each applies to
//! every generated line, with `{user}` and `{index}` replaced in its value
//! (`{index}` is the line's 1-based position in the whole load, across
//! shards, so a value made unique with it stays unique when N processes
//! split the load). Every other key is fleet-wide and applies as written
//! (DNS, pacing, timers, `voIpProt.server.*`). A base configuration with
//! keys for another line (`reg.2.*`) is refused: a load has one kind of
//! line, and silently dropping those keys would hide a mistake.
//!
//! Lines are numbered `reg.1` .. `reg.n` in each process (the event
//! stream's `line`); the configuration builder sees generated parameters
//! exactly as if they had been written in a file, so every value is
//! checked against the guide's ranges, and an error names the CSV row or
//! the template's line it came from.

use std::io::Read;
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use sipfleet_protocol::config::{
    ConfigBuilder, ConfigErrors, FleetConfig, Location, ParsedSource, RawParam,
};

/// Lines of one process at most (`reg.x` goes to 100,000).
pub const MAX_LINES: u64 = sipfleet_protocol::config::schema::MAX_LINES as u64;

/// Bad input about the lines: one line of text each, exit 2.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinesError {
    #[error("--users {0:?}: expected START.. , START..END or START..=END (user numbers)")]
    BadRange(String),
    #[error("--users {range}: empty range")]
    EmptyRange { range: String },
    #[error("--lines {lines} is more than the {available} users of --users {range}")]
    RangeTooSmall {
        lines: u64,
        available: u64,
        range: String,
    },
    #[error("--lines must be at least 1")]
    NoLines,
    #[error("--users START.. needs --lines N (how many users from START)")]
    OpenRangeWithoutLines,
    #[error("give the users: --users START.. (with --lines N) or --users-csv FILE")]
    NoUsers,
    #[error("{path}: row {row}: {message}")]
    Csv {
        path: String,
        row: u64,
        message: String,
    },
    #[error("{path}: cannot read: {message}")]
    CsvUnreadable { path: String, message: String },
    #[error("{path}: no user rows")]
    CsvEmpty { path: String },
    #[error("--lines {lines} is more than the {rows} rows of {path}")]
    CsvTooSmall { lines: u64, rows: u64, path: String },
    #[error("--shard {0:?}: expected I/N with 0 <= I < N (0-based index)")]
    BadShard(String),
    #[error("--shards {shards} needs the shard index: --shard I/{shards}, or JOB_COMPLETION_INDEX in the environment ({reason})")]
    NoShardIndex { shards: u32, reason: String },
    #[error("shard {index}/{count} has no lines: {total} lines over {count} shards")]
    EmptyShard { index: u32, count: u32, total: u64 },
    #[error("{total} lines in one process: at most {MAX_LINES} (split the load with --shard)")]
    TooManyLines { total: u64 },
    #[error("{what} {value:?}: {message}")]
    BadPattern {
        what: String,
        value: String,
        message: String,
    },
    #[error("{location}: {key}: a load's base configuration describes one line, reg.1 (its keys apply to every line); remove the keys of reg.{line}")]
    OtherLine {
        key: String,
        line: String,
        location: String,
    },
    #[error("--server {0:?}: expected HOST or HOST:PORT")]
    BadServer(String),
}

/// `--users`: numbered users, `START..` (open: `--lines` says how many),
/// `START..END` (END excluded) or `START..=END`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRange {
    pub text: String,
    pub start: u64,
    /// Exclusive; `None` when open.
    pub end: Option<u64>,
}

impl FromStr for UserRange {
    type Err = LinesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LinesError::BadRange(s.to_string());
        let (a, b) = s.trim().split_once("..").ok_or_else(bad)?;
        let start: u64 = a.parse().map_err(|_| bad())?;
        let end = if b.is_empty() {
            None
        } else if let Some(last) = b.strip_prefix('=') {
            let last: u64 = last.parse().map_err(|_| bad())?;
            Some(last.checked_add(1).ok_or_else(bad)?)
        } else {
            Some(b.parse().map_err(|_| bad())?)
        };
        if end.is_some_and(|e| e <= start) {
            return Err(LinesError::EmptyRange {
                range: s.to_string(),
            });
        }
        Ok(UserRange {
            text: s.to_string(),
            start,
            end,
        })
    }
}

/// `--shard I/N`: this process runs slice `index` (0-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// This shard's slice of `total` positions: the first `total % count`
    /// shards take one more, so sizes differ by at most one.
    pub fn slice(self, total: u64) -> Range<u64> {
        let count = u64::from(self.count.max(1));
        let index = u64::from(self.index).min(count - 1);
        let (base, extra) = (total / count, total % count);
        let start = index * base + index.min(extra);
        let len = base + u64::from(index < extra);
        start..start + len
    }

    /// `--shards N` with the index from `JOB_COMPLETION_INDEX` (a
    /// Kubernetes indexed Job sets it in each pod).
    pub fn from_env(count: u32, env: Option<&str>) -> Result<Shard, LinesError> {
        let no_index = |reason: String| LinesError::NoShardIndex {
            shards: count,
            reason,
        };
        let text = env.ok_or_else(|| no_index("JOB_COMPLETION_INDEX is not set".into()))?;
        let index: u32 = text
            .trim()
            .parse()
            .map_err(|_| no_index(format!("JOB_COMPLETION_INDEX={text:?} is not a number")))?;
        Shard::new(index, count).ok_or_else(|| LinesError::BadShard(format!("{index}/{count}")))
    }

    fn new(index: u32, count: u32) -> Option<Shard> {
        (count > 0 && index < count).then_some(Shard { index, count })
    }
}

impl FromStr for Shard {
    type Err = LinesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LinesError::BadShard(s.to_string());
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (i, n) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Shard::new(i, n).ok_or_else(bad)
    }
}

/// One generated line before it becomes configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineSpec {
    /// `{user}`: the number, or the CSV row's user.
    pub user: String,
    /// From the CSV row; otherwise the pattern or template applies.
    pub password: Option<String>,
    /// From the CSV row; otherwise `--domain` or the base configuration.
    pub domain: Option<String>,
    /// `{index}`: 1-based position in the whole load.
    pub position: u64,
    /// Where the line came from, for configuration errors.
    pub location: Location,
}

/// Where the users come from.
pub enum Users {
    Range(UserRange),
    Csv(PathBuf),
}

/// This shard's lines: `lines` of them from `users` (all of a closed range
/// or of the CSV when `lines` is not given), sliced for `shard`.
pub fn plan(
    users: &Users,
    lines: Option<u64>,
    shard: Shard,
) -> Result<(Vec<LineSpec>, u64), LinesError> {
    if lines == Some(0) {
        return Err(LinesError::NoLines);
    }
    match users {
        Users::Range(range) => {
            let available = range.end.map(|e| e - range.start);
            let total = match (lines, available) {
                (Some(n), Some(a)) if n > a => {
                    return Err(LinesError::RangeTooSmall {
                        lines: n,
                        available: a,
                        range: range.text.clone(),
                    })
                }
                (Some(n), _) => n,
                (None, Some(a)) => a,
                (None, None) => return Err(LinesError::OpenRangeWithoutLines),
            };
            if range.start.checked_add(total).is_none() {
                return Err(LinesError::BadRange(range.text.clone()));
            }
            let slice = checked_slice(shard, total)?;
            let slice_start = slice.start;
            let path: Arc<str> = format!("--users {}", range.text).into();
            let specs = slice
                .map(|pos| LineSpec {
                    user: (range.start + pos).to_string(),
                    password: None,
                    domain: None,
                    position: pos + 1,
                    location: Location::File {
                        path: path.clone(),
                        line: u32::try_from(pos - slice_start + 1).unwrap_or(u32::MAX),
                    },
                })
                .collect();
            Ok((specs, total))
        }
        Users::Csv(path) => {
            let name = path.display().to_string();
            let file = std::fs::File::open(path).map_err(|e| LinesError::CsvUnreadable {
                path: name.clone(),
                message: e.to_string(),
            })?;
            let rows = read_csv(file, &name)?;
            let available = rows.len() as u64;
            if available == 0 {
                return Err(LinesError::CsvEmpty { path: name });
            }
            let total = match lines {
                Some(n) if n > available => {
                    return Err(LinesError::CsvTooSmall {
                        lines: n,
                        rows: available,
                        path: name,
                    })
                }
                Some(n) => n,
                None => available,
            };
            let slice = checked_slice(shard, total)?;
            let specs = rows
                .into_iter()
                .enumerate()
                .skip(slice.start as usize)
                .take((slice.end - slice.start) as usize)
                .map(|(pos, mut spec)| {
                    spec.position = pos as u64 + 1;
                    spec
                })
                .collect();
            Ok((specs, total))
        }
    }
}

fn checked_slice(shard: Shard, total: u64) -> Result<Range<u64>, LinesError> {
    let slice = shard.slice(total);
    if slice.is_empty() {
        return Err(LinesError::EmptyShard {
            index: shard.index,
            count: shard.count,
            total,
        });
    }
    if slice.end - slice.start > MAX_LINES {
        return Err(LinesError::TooManyLines {
            total: slice.end - slice.start,
        });
    }
    Ok(slice)
}

/// The rows of a users CSV: `user,password[,domain]`, `#` comments and
/// blank lines skipped, fields trimmed, quoting as in RFC 4180 (a password
/// may hold a comma). A first row `user,...` is a header. An empty
/// password or domain leaves the pattern's or the base configuration's.
/// Every error names its row (1-based, as an editor shows it).
pub fn read_csv(mut input: impl Read, path: &str) -> Result<Vec<LineSpec>, LinesError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| LinesError::CsvUnreadable {
            path: path.to_string(),
            message: e.to_string(),
        })?;
    // `#` comment lines become blank lines, which the reader skips: every
    // byte stays where it was, so a row's offset gives the line an editor
    // shows.
    let mut text = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line.trim_ascii_start().starts_with(b"#") {
            text.push(b'\n');
        } else {
            text.extend_from_slice(line);
        }
    }
    // Counted from the byte offset: the reader counts no blank line.
    let row_at = |pos: Option<&csv::Position>, fallback: usize| -> u64 {
        match pos {
            Some(p) => {
                let at = usize::try_from(p.byte()).map_or(text.len(), |b| b.min(text.len()));
                // A record's offset is where the blank lines before it begin.
                let blank = text[at..]
                    .iter()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .count();
                1 + text[..at + blank].iter().filter(|b| **b == b'\n').count() as u64
            }
            None => fallback as u64 + 1,
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(&text[..]);
    let path_arc: Arc<str> = path.into();
    let mut out = Vec::new();
    // user@domain → the row that has it: two lines on one AOR would steal
    // each other's binding.
    let mut seen: std::collections::HashMap<(String, Option<String>), u64> =
        std::collections::HashMap::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| LinesError::Csv {
            path: path.to_string(),
            row: row_at(e.position(), n),
            message: csv_error_text(&e),
        })?;
        let row = row_at(record.position(), n);
        let err = |message: String| LinesError::Csv {
            path: path.to_string(),
            row,
            message,
        };
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue;
        }
        if record.iter().any(|f| f.contains(['\n', '\r'])) {
            return Err(err(
                "a field runs over the end of its line: a quote is not closed".into(),
            ));
        }
        let names = ["user", "password", "domain"];
        if out.is_empty()
            && seen.is_empty()
            && record
                .iter()
                .any(|f| names.iter().any(|n| f.trim().eq_ignore_ascii_case(n)))
        {
            let in_order = record
                .iter()
                .zip(names)
                .all(|(f, n)| f.trim().eq_ignore_ascii_case(n));
            if !in_order {
                return Err(err(
                    "a header must be user,password[,domain], in that order".into(),
                ));
            }
            continue;
        }
        if !(2..=3).contains(&record.len()) {
            return Err(err(format!(
                "{} fields; expected user,password[,domain]",
                record.len()
            )));
        }
        let user = record.get(0).unwrap_or_default().trim();
        if user.is_empty() || user.contains(char::is_whitespace) {
            return Err(err(format!(
                "user {user:?}: must be non-empty without spaces"
            )));
        }
        // Fields are trimmed (`1003, pw3` is common); a password with
        // spaces at its ends cannot be given here.
        let password = record
            .get(1)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let domain = record
            .get(2)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if let Some(d) = &domain {
            if d.contains(char::is_whitespace) {
                return Err(err(format!("domain {d:?}: must not contain spaces")));
            }
        }
        if let Some(first) = seen.insert((user.to_string(), domain.clone()), row) {
            return Err(err(format!(
                "user {user:?} again (first on row {first}): two lines on one address would take each other's binding"
            )));
        }
        out.push(LineSpec {
            user: user.to_string(),
            password,
            domain,
            position: 0,
            location: Location::File {
                path: path_arc.clone(),
                line: u32::try_from(row).unwrap_or(u32::MAX),
            },
        });
    }
    Ok(out)
}

fn csv_error_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

/// A value with `{user}` and `{index}` in it, checked once and filled in
/// for each line. `{{` and `}}` stand for literal braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern(Vec<Piece>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    User,
    Index,
}

impl Pattern {
    /// `what` names the value in the error (`--password-pattern`, a key).
    pub fn parse(value: &str, what: &str) -> Result<Pattern, LinesError> {
        let bad = |message: String| LinesError::BadPattern {
            what: what.to_string(),
            value: value.to_string(),
            message,
        };
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(bad("'{' without '}' (write {{ for a brace)".into()))
                            }
                        }
                    }
                    let piece = match name.as_str() {
                        "user" => Piece::User,
                        "index" => Piece::Index,
                        other => {
                            return Err(bad(format!(
                                "unknown placeholder {{{other}}}: {{user}} and {{index}} are known (write {{{{ for a brace)"
                            )))
                        }
                    };
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(piece);
                }
                '}' => return Err(bad("'}' without '{' (write }} for a brace)".into())),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Pattern(pieces))
    }

    pub fn fill(&self, user: &str, index: u64) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::User => out.push_str(user),
                Piece::Index => out.push_str(&index.to_string()),
            }
        }
        out
    }
}

/// The command line's say over every line, over the base configuration.
#[derive(Clone, Debug, Default)]
pub struct LineOverrides {
    pub password_pattern: Option<String>,
    /// `reg.x.server.1.address`: the registrar domain (AOR and
    /// Request-URI), resolved with NAPTR/SRV/A like a phone's.
    pub domain: Option<String>,
    /// `reg.x.outboundProxy.address` (and `.port`): every request goes
    /// there; the domain stays the AOR's.
    pub server: Option<String>,
    /// The Poly transport setting (`UDPOnly`, `TCPOnly`, `TLS`,
    /// `DNSnaptr`, `TCPpreferred`) of server 1 and of the proxy.
    pub transport: Option<&'static str>,
    /// `sipfleet.register.rate`.
    pub rate: Option<u32>,
}

/// The `--transport` value as the Poly setting: `udp`, `tcp`, `tls`,
/// `naptr` or the Poly names themselves, any case.
pub fn transport_setting(text: &str) -> Result<&'static str, String> {
    let known = [
        ("udp", "UDPOnly"),
        ("udponly", "UDPOnly"),
        ("tcp", "TCPOnly"),
        ("tcponly", "TCPOnly"),
        ("tls", "TLS"),
        ("naptr", "DNSnaptr"),
        ("dnsnaptr", "DNSnaptr"),
        ("tcppreferred", "TCPpreferred"),
    ];
    let lower = text.trim().to_ascii_lowercase();
    known
        .iter()
        .find(|(k, _)| *k == lower)
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("unknown transport {text:?}: udp, tcp, tls, naptr or tcppreferred"))
}

/// One `reg.1.*` key of the base configuration, to repeat on every line.
struct TemplateKey {
    /// What follows `reg.1.`.
    rest: String,
    value: Pattern,
    location: Location,
}

/// The base configuration, split: the line template and the fleet-wide
/// keys (in order), and the errors of reading it.
pub struct Base {
    template: Vec<TemplateKey>,
    fleet: Vec<RawParam>,
    errors: Vec<sipfleet_protocol::config::ConfigError>,
}

impl Base {
    /// Reads the base files (in order) and the `SIPFLEET__*` environment
    /// overrides, as `sipfleet run` does.
    pub fn load(paths: &[PathBuf]) -> Result<Base, LinesError> {
        let mut sources: Vec<ParsedSource> = paths
            .iter()
            .map(|p| sipfleet::config_files::read_file(p))
            .collect();
        let mut env = ParsedSource::default();
        match sipfleet::config_files::env_params(None) {
            Ok(params) => env.params = params,
            Err(e) => env.errors.push(e),
        }
        sources.push(env);
        Base::from_sources(sources)
    }

    pub fn from_sources(sources: Vec<ParsedSource>) -> Result<Base, LinesError> {
        let mut base = Base {
            template: Vec::new(),
            fleet: Vec::new(),
            errors: Vec::new(),
        };
        for source in sources {
            base.errors.extend(source.errors);
            for p in source.params {
                match line_key(&p.key) {
                    Some(("1", rest)) => {
                        let value =
                            Pattern::parse(&p.value, &format!("{} at {}", p.key, p.location))?;
                        base.template.push(TemplateKey {
                            rest: rest.to_string(),
                            value,
                            location: p.location,
                        });
                    }
                    Some((line, _)) => {
                        return Err(LinesError::OtherLine {
                            key: p.key.clone(),
                            line: line.to_string(),
                            location: p.location.to_string(),
                        })
                    }
                    None => base.fleet.push(p),
                }
            }
        }
        Ok(base)
    }
}

/// `reg.N.rest` as `(N, rest)`, any case.
fn line_key(key: &str) -> Option<(&str, &str)> {
    let rest = key
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("reg."))
        .map(|_| &key[4..])?;
    let (line, rest) = rest.split_once('.')?;
    (!line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())).then_some((line, rest))
}

/// `--server HOST[:PORT]` (an IPv6 literal in brackets).
pub fn split_server(text: &str) -> Result<(String, Option<u16>), LinesError> {
    let bad = || LinesError::BadServer(text.to_string());
    let text = text.trim();
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err(bad());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host.to_string(), Some(port.parse().map_err(|_| bad())?))),
            None if after.is_empty() => Ok((host.to_string(), None)),
            None => Err(bad()),
        };
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Ok((text.to_string(), None)),
        Some((host, port)) if !host.is_empty() => {
            Ok((host.to_string(), Some(port.parse().map_err(|_| bad())?)))
        }
        Some(_) => Err(bad()),
        None => Ok((text.to_string(), None)),
    }
}

/// The fleet: every line of `specs` as `reg.1..reg.n`, the template and
/// the overrides applied, the base's fleet-wide keys as they are.
pub fn fleet_config(
    base: Base,
    specs: &[LineSpec],
    overrides: &LineOverrides,
) -> Result<Result<FleetConfig, ConfigErrors>, LinesError> {
    // Read as `--password-pattern:12: reg.12.auth.password=...`: the flag
    // and the line it was applied to, like a file and its line.
    let cli = |what: &str, x: usize| Location::File {
        path: what.into(),
        line: u32::try_from(x).unwrap_or(u32::MAX),
    };
    let password = overrides
        .password_pattern
        .as_deref()
        .map(|p| Pattern::parse(p, "--password-pattern"))
        .transpose()?;
    let server = overrides.server.as_deref().map(split_server).transpose()?;
    let mut builder = ConfigBuilder::new();
    for e in base.errors {
        builder.add_error(e);
    }
    builder.add_params(base.fleet);
    if let Some(rate) = overrides.rate {
        builder.add_params([RawParam {
            key: "sipfleet.register.rate".into(),
            value: rate.to_string(),
            location: cli("--rate", 0),
        }]);
    }
    let user_pattern = Pattern(vec![Piece::User]);
    for (i, spec) in specs.iter().enumerate() {
        let x = i + 1;
        let (user, pos) = (spec.user.as_str(), spec.position);
        let mut params = Vec::with_capacity(base.template.len() + 8);
        let mut set = |rest: &str, value: String, location: Location| {
            params.push(RawParam {
                key: format!("reg.{x}.{rest}"),
                value,
                location,
            })
        };
        set(
            "address",
            user_pattern.fill(user, pos),
            spec.location.clone(),
        );
        for t in &base.template {
            set(&t.rest, t.value.fill(user, pos), t.location.clone());
        }
        if let Some(p) = &password {
            set(
                "auth.password",
                p.fill(user, pos),
                cli("--password-pattern", x),
            );
        }
        if let Some(d) = &overrides.domain {
            set("server.1.address", d.clone(), cli("--domain", x));
        }
        if let Some((host, port)) = &server {
            set("outboundProxy.address", host.clone(), cli("--server", x));
            if let Some(port) = port {
                set("outboundProxy.port", port.to_string(), cli("--server", x));
            }
        }
        if let Some(t) = overrides.transport {
            set("server.1.transport", t.to_string(), cli("--transport", x));
            if server.is_some() {
                set(
                    "outboundProxy.transport",
                    t.to_string(),
                    cli("--transport", x),
                );
            }
        }
        if let Some(p) = &spec.password {
            set("auth.password", p.clone(), spec.location.clone());
        }
        if let Some(d) = &spec.domain {
            set("server.1.address", d.clone(), spec.location.clone());
        }
        builder.add_params(params);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::config::parse_lines;

    #[test]
    fn shards_cover_the_range_exactly_once() {
        for total in [1u64, 2, 3, 7, 50, 199, 200, 201, 10_000] {
            for count in 1..=17u32 {
                let mut next = 0;
                let mut sizes = Vec::new();
                for index in 0..count {
                    let s = Shard { index, count }.slice(total);
                    assert_eq!(s.start, next, "total {total} shard {index}/{count}");
                    next = s.end;
                    sizes.push(s.end - s.start);
                }
                assert_eq!(next, total, "total {total} over {count}");
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{sizes:?}");
                // The first `total % count` shards take one more.
                let extra = (total % u64::from(count)) as usize;
                assert!(sizes[..extra].iter().all(|s| *s == sizes[0]), "{sizes:?}");
            }
        }
        assert_eq!(Shard { index: 0, count: 3 }.slice(10), 0..4);
        assert_eq!(Shard { index: 1, count: 3 }.slice(10), 4..7);
        assert_eq!(Shard { index: 2, count: 3 }.slice(10), 7..10);
    }

    #[test]
    fn shard_and_range_syntax() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("x/2".parse::<Shard>().is_err());
        assert_eq!(
            Shard::from_env(4, Some("3")),
            Ok(Shard { index: 3, count: 4 })
        );
        assert!(matches!(
            Shard::from_env(4, None),
            Err(LinesError::NoShardIndex { .. })
        ));
        assert!(Shard::from_env(4, Some("4")).is_err());
        let r: UserRange = "20000..".parse().unwrap();
        assert_eq!((r.start, r.end), (20000, None));
        let r: UserRange = "20000..=20009".parse().unwrap();
        assert_eq!(r.end, Some(20010));
        let r: UserRange = "20000..20010".parse().unwrap();
        assert_eq!(r.end, Some(20010));
        assert!(matches!(
            "5..5".parse::<UserRange>(),
            Err(LinesError::EmptyRange { .. })
        ));
        assert!("abc".parse::<UserRange>().is_err());
        assert!("1-5".parse::<UserRange>().is_err());
    }

    #[test]
    fn a_range_is_planned_and_sliced() {
        let users = Users::Range("20000..".parse().unwrap());
        let (all, total) = plan(&users, Some(10), Shard::WHOLE).unwrap();
        assert_eq!(total, 10);
        assert_eq!(all.first().unwrap().user, "20000");
        assert_eq!(all.last().unwrap().user, "20009");
        let (s, _) = plan(&users, Some(10), Shard { index: 1, count: 3 }).unwrap();
        let got: Vec<_> = s.iter().map(|l| (l.user.as_str(), l.position)).collect();
        assert_eq!(got, [("20004", 5), ("20005", 6), ("20006", 7)]);
        assert_eq!(
            plan(&users, Some(0), Shard::WHOLE),
            Err(LinesError::NoLines)
        );
        assert_eq!(
            plan(&users, None, Shard::WHOLE),
            Err(LinesError::OpenRangeWithoutLines)
        );
        assert!(matches!(
            plan(&users, Some(2), Shard { index: 2, count: 3 }),
            Err(LinesError::EmptyShard { .. })
        ));
        let closed = Users::Range("1000..=1009".parse().unwrap());
        assert_eq!(plan(&closed, None, Shard::WHOLE).unwrap().1, 10);
        assert!(matches!(
            plan(&closed, Some(11), Shard::WHOLE),
            Err(LinesError::RangeTooSmall { .. })
        ));
    }

    #[test]
    fn csv_rows_parse_and_errors_name_the_row() {
        let text = "user,password,domain\n# a comment\n1001,pw1001\n\n1002,\"p,w\",other.test\n1003, pw3 ,\n";
        let rows = read_csv(text.as_bytes(), "u.csv").unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.user.as_str(), r.password.as_deref(), r.domain.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("1001", Some("pw1001"), None),
                ("1002", Some("p,w"), Some("other.test")),
                ("1003", Some("pw3"), None),
            ]
        );
        assert_eq!(
            rows[1].location,
            Location::File {
                path: "u.csv".into(),
                line: 5
            }
        );
        let err = read_csv("1001,a\n1002\n".as_bytes(), "u.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "u.csv: row 2: 1 fields; expected user,password[,domain]"
        );
        let err = read_csv("1001,a\n1002,b,c,d\n".as_bytes(), "u.csv").unwrap_err();
        assert!(
            err.to_string().starts_with("u.csv: row 2: 4 fields"),
            "{err}"
        );
        let err = read_csv("1001,a\n\"1 2\",b\n".as_bytes(), "u.csv").unwrap_err();
        assert!(err.to_string().starts_with("u.csv: row 2: user"), "{err}");
        let err = read_csv(&b"1001,a\n1002,\xff\n"[..], "u.csv").unwrap_err();
        assert_eq!(err.to_string(), "u.csv: row 2: not UTF-8 text");
        // The same user twice, a header in another order, an open quote.
        let err = read_csv("1001,a\n1002,b\n1001,c\n".as_bytes(), "u.csv").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("u.csv: row 3: user \"1001\" again (first on row 1)"),
            "{err}"
        );
        assert!(read_csv("1001,a\n1001,b,other.test\n".as_bytes(), "u.csv").is_ok());
        let err = read_csv("password,user\npw1,1001\n".as_bytes(), "u.csv").unwrap_err();
        assert!(
            err.to_string().contains("a header must be user,password"),
            "{err}"
        );
        let err = read_csv("1001,\"pw1\n1002,pw2\n".as_bytes(), "u.csv").unwrap_err();
        assert!(err.to_string().contains("a quote is not closed"), "{err}");
    }

    #[test]
    fn csv_plan_slices_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.csv");
        std::fs::write(&path, "1001,a\n1002,b\n1003,c\n1004,d\n1005,e\n").unwrap();
        let users = Users::Csv(path.clone());
        let (s, total) = plan(&users, None, Shard { index: 1, count: 2 }).unwrap();
        assert_eq!(total, 5);
        let got: Vec<_> = s.iter().map(|l| (l.user.as_str(), l.position)).collect();
        assert_eq!(got, [("1004", 4), ("1005", 5)]);
        assert!(matches!(
            plan(&users, Some(6), Shard::WHOLE),
            Err(LinesError::CsvTooSmall { .. })
        ));
        assert!(matches!(
            plan(&Users::Csv(dir.path().join("none.csv")), None, Shard::WHOLE),
            Err(LinesError::CsvUnreadable { .. })
        ));
    }

    #[test]
    fn patterns_substitute_user_and_index() {
        let p = Pattern::parse("pw{user}-{index}{{x}}", "t").unwrap();
        assert_eq!(p.fill("20001", 2), "pw20001-2{x}");
        assert!(Pattern::parse("pw{usr}", "t")
            .unwrap_err()
            .to_string()
            .contains("unknown placeholder {usr}"));
        assert!(Pattern::parse("pw{user", "t").is_err());
        assert!(Pattern::parse("pw}", "t").is_err());
        assert_eq!(Pattern::parse("plain", "t").unwrap().fill("u", 1), "plain");
    }

    #[test]
    fn server_and_transport_arguments() {
        assert_eq!(split_server("sbc.test").unwrap(), ("sbc.test".into(), None));
        assert_eq!(
            split_server("127.0.0.1:5080").unwrap(),
            ("127.0.0.1".into(), Some(5080))
        );
        assert_eq!(
            split_server("[::1]:5060").unwrap(),
            ("::1".into(), Some(5060))
        );
        assert!(split_server("host:x").is_err());
        assert!(split_server(":5060").is_err());
        assert_eq!(transport_setting("UDP"), Ok("UDPOnly"));
        assert_eq!(transport_setting("TCPpreferred"), Ok("TCPpreferred"));
        assert!(transport_setting("sctp").unwrap_err().contains("sctp"));
    }

    fn base(text: &str) -> Result<Base, LinesError> {
        Base::from_sources(vec![parse_lines(text, "base.cfg")])
    }

    #[test]
    fn the_template_applies_to_every_line_and_the_flags_win() {
        let b = base(
            "reg.1.auth.password=\"base{user}\"\nreg.1.displayName=\"Line {index} ({user})\"\n\
             voIpProt.server.1.address=\"lab.test\"\nvoIpProt.server.1.transport=\"TCPOnly\"\n\
             sipfleet.register.rate=\"50\"\n",
        )
        .unwrap();
        let users = Users::Range("20000..".parse().unwrap());
        let (specs, _) = plan(&users, Some(6), Shard { index: 1, count: 2 }).unwrap();
        let overrides = LineOverrides {
            password_pattern: Some("pw{user}".into()),
            transport: Some("UDPOnly"),
            rate: Some(300),
            ..Default::default()
        };
        let config = fleet_config(b, &specs, &overrides).unwrap().unwrap();
        assert_eq!(config.lines.len(), 3);
        assert_eq!(config.pacing.rate.get(), 300);
        let l = &config.lines[0];
        assert_eq!(l.index, 1);
        assert_eq!(*l.address, "20003");
        assert_eq!(*l.display_name, "Line 4 (20003)");
        assert_eq!(l.auth_password.value.expose(), "pw20003");
        assert_eq!(l.servers[0].address.value.as_str(), "lab.test");
        assert_eq!(l.servers[0].transport.get().as_str(), "UDPOnly");
        assert_eq!(*config.lines[2].address, "20005");
    }

    #[test]
    fn csv_rows_override_password_and_domain() {
        let b = base("voIpProt.server.1.address=\"lab.test\"\n").unwrap();
        let specs = read_csv("1001,secret,other.test\n1002,,\n".as_bytes(), "u.csv").unwrap();
        let overrides = LineOverrides {
            password_pattern: Some("pw{user}".into()),
            domain: Some("dom.test".into()),
            ..Default::default()
        };
        let config = fleet_config(b, &specs, &overrides).unwrap().unwrap();
        assert_eq!(config.lines[0].auth_password.value.expose(), "secret");
        assert_eq!(
            config.lines[0].servers[0].address.value.as_str(),
            "other.test"
        );
        assert_eq!(config.lines[1].auth_password.value.expose(), "pw1002");
        assert_eq!(
            config.lines[1].servers[0].address.value.as_str(),
            "dom.test"
        );
    }

    #[test]
    fn other_lines_in_the_base_and_bad_values_are_refused() {
        let err = base("reg.1.address=\"x\"\nreg.2.address=\"y\"\n")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "base.cfg:2: reg.2.address: a load's base configuration describes one line, reg.1 (its keys apply to every line); remove the keys of reg.2"
        );
        let err = base("reg.1.displayName=\"{nope}\"\n").err().unwrap();
        assert!(err.to_string().contains("unknown placeholder"), "{err}");
        // A value out of range is the builder's error, naming the CSV row.
        let b = base("voIpProt.server.1.address=\"lab.test\"\n").unwrap();
        let long = "p".repeat(300);
        let specs = read_csv(format!("1001,a\n1002,{long}\n").as_bytes(), "u.csv").unwrap();
        let errors = fleet_config(b, &specs, &LineOverrides::default())
            .unwrap()
            .unwrap_err();
        assert!(
            errors
                .to_string()
                .contains("error: u.csv:2: reg.2.auth.password"),
            "{errors}"
        );
    }
}
