//! `--report FILE.html`: one standalone HTML page for a summary, to read a
//! run (or a merge) at a glance and to attach to a ticket. Nothing is
//! fetched: inline CSS, SVG plots drawn by `plotters` into the page, no
//! script, no web font, so it opens offline and archives as one file.
//!
//! Every string that comes from the summary (SBC addresses, reasons,
//! threshold expressions) is escaped here; plotters escapes what it writes
//! into the SVG text itself.

use std::fmt::Write as _;

use super::summary::*;
use super::thresholds::{waves, Wave};

// `#[path]` so the example and the browser test, which include these
// files by path, find them too.
#[path = "report/plots.rs"]
mod plots;

/// The page for `summary`. Never fails: a plot that cannot be drawn, an
/// empty timeline or a histogram that does not decode becomes a note in
/// the page.
pub fn render_report(summary: &Summary) -> String {
    let waves = waves(summary);
    let mut html = String::with_capacity(256 * 1024);
    html.push_str(HEAD);
    header(&mut html, summary);
    figures(&mut html, summary);
    thresholds(&mut html, summary);
    html.push_str("<h2>Over time</h2>\n");
    if summary.timeline.is_empty() {
        html.push_str(
            "<p class=\"note\" id=\"no-timeline\">No data: this summary has no timeline \
             (the run ended before its first stats interval).</p>\n",
        );
    } else {
        plot(
            &mut html,
            "plot-registered",
            "Registered lines per SBC",
            plots::registered(summary, &waves),
        );
        plot(
            &mut html,
            "plot-rate",
            "REGISTER rate",
            plots::register_rate(summary, &waves),
        );
        plot(
            &mut html,
            "plot-latency",
            "Registration latency per interval",
            plots::latency(summary, &waves),
        );
        html.push_str(
            "<p class=\"note\">Shaded bands: failover (red) and failback (green) waves, \
             from the first line moving to the last. In a merged summary the per-interval \
             latencies are approximate (p99: the largest shard's; p50: weighted by REGISTERs).</p>\n",
        );
    }
    html.push_str("<h2>Registration latency</h2>\n");
    plot(
        &mut html,
        "plot-histogram",
        "Registration latency histogram",
        plots::histogram(summary),
    );
    tables(&mut html, summary, &waves);
    html.push_str("</body>\n</html>\n");
    html
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sipfleet load report</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px auto; max-width: 1220px; color: #1d2733; background: #fff; padding: 0 12px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #d8dee6; padding-bottom: 4px; }
.meta { color: #56616e; font-size: 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; margin-top: 16px; }
.card { border: 1px solid #d8dee6; border-radius: 6px; padding: 10px 12px; background: #f7f9fb; }
.card .label { font-size: 12px; color: #56616e; text-transform: uppercase; letter-spacing: .03em; }
.card .value { font-size: 22px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; }
.card .sub { font-size: 12px; color: #56616e; margin-top: 2px; }
table { border-collapse: collapse; font-size: 14px; margin: 6px 0 14px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d8dee6; padding: 4px 10px; text-align: left; }
th { background: #eef2f6; }
td.num { text-align: right; }
tr.pass td { background: #e3f4e6; }
tr.fail td { background: #fbe3e3; }
.pass .verdict { color: #19692c; font-weight: 600; }
.fail .verdict { color: #a4161a; font-weight: 600; }
.plot { margin: 8px 0 14px; }
.plot svg { width: 100%; height: auto; display: block; }
.note { color: #56616e; font-size: 13px; }
.tables { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
</style>
</head>
<body>
"#;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn header(html: &mut String, s: &Summary) {
    let shards = match s.shards.as_slice() {
        [] => String::new(),
        [one] if one.count == 1 => format!(
            ", users {}..{}",
            escape(&one.first_user),
            escape(&one.last_user)
        ),
        many => {
            let count = many.first().map_or(0, |sh| sh.count);
            let indexes: Vec<String> = many.iter().map(|sh| sh.index.to_string()).collect();
            format!(", shards {} of {count}", indexes.join(", "))
        }
    };
    let _ = writeln!(
        html,
        "<h1>sipfleet load report</h1>\n<p class=\"meta\">Started {} UTC, ran {}{shards}. Schema {}.</p>",
        utc(s.started_unix_ms),
        duration(s.duration_ms),
        escape(&s.schema),
    );
}

fn figures(html: &mut String, s: &Summary) {
    let l = &s.lines;
    let lat = &s.register_latency_ms;
    let moved = |m: &[MoveCount]| m.iter().map(|m| m.count).sum::<u64>();
    let registers: u64 = s.registrations.registers_by_purpose.values().sum();
    let failures: u64 = s.registrations.failures_by_reason.values().sum();
    let cards = [
        (
            "Lines",
            l.configured.to_string(),
            format!("{} never registered", l.never_registered),
        ),
        (
            "Registered at end",
            percent(l.registered_at_end, l.configured),
            format!(
                "{} lines; ever: {}",
                l.registered_at_end,
                percent(l.ever_registered, l.configured)
            ),
        ),
        (
            "REGISTERs per registration",
            number(s.registrations.registers_per_registration, 2),
            format!(
                "{registers} REGISTERs, {} retransmitted",
                s.registrations.retransmissions
            ),
        ),
        (
            "Latency p50 / p99",
            format!("{} / {} ms", lat.p50, lat.p99),
            format!("max {} ms over {} registrations", lat.max, lat.count),
        ),
        (
            "Failovers / failbacks",
            format!("{} / {}", moved(&s.failovers), moved(&s.failbacks)),
            format!("{} registration failures", failures),
        ),
        (
            "Calls",
            format!("{} / {}", s.calls.answered, s.calls.attempted),
            format!("answered / attempted; {} failed", s.calls.failed),
        ),
    ];
    html.push_str("<div class=\"cards\" id=\"figures\">\n");
    for (label, value, sub) in cards {
        let _ = writeln!(
            html,
            "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"sub\">{}</div></div>",
            escape(label),
            escape(&value),
            escape(&sub)
        );
    }
    html.push_str("</div>\n");
}

fn thresholds(html: &mut String, s: &Summary) {
    html.push_str("<h2>Thresholds</h2>\n");
    if s.thresholds.is_empty() {
        html.push_str("<p class=\"note\">No threshold was given (<code>--threshold</code>).</p>\n");
        return;
    }
    let failed = s.thresholds.iter().filter(|t| !t.passed).count();
    let _ = writeln!(
        html,
        "<p>{} of {} passed.</p>\n<table id=\"thresholds\"><tr><th>Threshold</th><th>Value</th><th>Result</th><th>Note</th></tr>",
        s.thresholds.len() - failed,
        s.thresholds.len()
    );
    for t in &s.thresholds {
        let (class, verdict) = if t.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            html,
            "<tr class=\"{class}\"><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"verdict\">{verdict}</td><td>{}</td></tr>",
            escape(&t.expr),
            number(t.value, 4),
            escape(t.note.as_deref().unwrap_or(""))
        );
    }
    html.push_str("</table>\n");
}

fn plot(html: &mut String, id: &str, title: &str, svg: Result<String, String>) {
    match svg {
        Ok(svg) => {
            let _ = writeln!(html, "<div class=\"plot\" id=\"{id}\">\n{svg}\n</div>");
        }
        Err(why) => {
            let _ = writeln!(
                html,
                "<p class=\"note\" id=\"{id}\">{}: {}</p>",
                escape(title),
                escape(&why)
            );
        }
    }
}

const MAX_ROWS: usize = 200;

fn tables(html: &mut String, s: &Summary, waves: &[Wave]) {
    html.push_str("<h2>Faults</h2>\n");
    if waves.is_empty() {
        html.push_str("<p class=\"note\">No failover or failback during the run.</p>\n");
    } else {
        html.push_str(
            "<table id=\"waves\"><tr><th>Start</th><th>End</th><th>Took</th><th>Kind</th>\
             <th>From</th><th>To</th><th>Reasons</th><th>Lines</th></tr>\n",
        );
        for w in waves {
            let to: Vec<String> = w.to.iter().map(|t| escape(t)).collect();
            let reasons: Vec<String> = w
                .reasons
                .iter()
                .map(|(r, n)| format!("{} {n}", escape(r)))
                .collect();
            let _ = writeln!(
                html,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                seconds(w.start_ms),
                seconds(w.end_ms),
                duration(w.end_ms - w.start_ms),
                escape(&w.kind),
                escape(&w.from),
                to.join(", "),
                reasons.join(", "),
                w.lines
            );
        }
        html.push_str("</table>\n");
    }

    html.push_str("<div class=\"tables\">\n<div>\n<h3>Moves by reason and SBC</h3>\n");
    let moves: Vec<(&str, &MoveCount)> = s
        .failovers
        .iter()
        .map(|m| ("failover", m))
        .chain(s.failbacks.iter().map(|m| ("failback", m)))
        .collect();
    if moves.is_empty() {
        html.push_str("<p class=\"note\">None.</p>\n");
    } else {
        html.push_str("<table id=\"moves\"><tr><th>Kind</th><th>Reason</th><th>From</th><th>To</th><th>Lines</th></tr>\n");
        for (kind, m) in moves {
            let _ = writeln!(
                html,
                "<tr><td>{kind}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                escape(&m.reason),
                escape(&m.from),
                escape(&m.to),
                m.count
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</div>\n");
    count_table(
        html,
        "REGISTERs by purpose",
        &s.registrations.registers_by_purpose,
    );
    count_table(
        html,
        "Registration failures by reason",
        &s.registrations.failures_by_reason,
    );
    count_table(
        html,
        "Back-offs by reason",
        &s.registrations.backoffs_by_reason,
    );
    count_table(html, "DNS failures by query", &s.registrations.dns_failures);
    count_table(
        html,
        "Registered lines per SBC at the end",
        &s.lines.registered_by_sbc_at_end,
    );
    count_table(html, "Calls ended by reason", &s.calls.ended_by_reason);
    html.push_str("</div>\n");

    let _ = writeln!(
        html,
        "<h3>Fault timeline</h3>\n<p class=\"note\">{} entries as recorded: moves of one kind and reason between the same SBCs, each within one stats interval of the previous{}.</p>",
        s.faults.len(),
        if s.faults.len() > MAX_ROWS {
            format!("; the first {MAX_ROWS} shown")
        } else {
            String::new()
        }
    );
    if !s.faults.is_empty() {
        html.push_str("<table id=\"faults\"><tr><th>At</th><th>Until</th><th>Kind</th><th>Reason</th><th>From</th><th>To</th><th>Lines</th></tr>\n");
        for f in s.faults.iter().take(MAX_ROWS) {
            let _ = writeln!(
                html,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                seconds(f.t_ms),
                seconds(f.last_t_ms.max(f.t_ms)),
                escape(&f.kind),
                escape(&f.reason),
                escape(&f.from),
                escape(&f.to),
                f.lines
            );
        }
        html.push_str("</table>\n");
    }
}

fn count_table(html: &mut String, title: &str, counts: &std::collections::BTreeMap<String, u64>) {
    let _ = writeln!(html, "<div>\n<h3>{}</h3>", escape(title));
    if counts.is_empty() {
        html.push_str("<p class=\"note\">None.</p>\n");
    } else {
        html.push_str("<table>\n");
        for (k, v) in counts {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"num\">{v}</td></tr>",
                escape(k)
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</div>\n");
}

/// `n / d` as a percentage, "n/a" when `d` is 0.
fn percent(n: u64, d: u64) -> String {
    if d == 0 {
        "n/a".into()
    } else {
        format!("{:.2} %", n as f64 * 100.0 / d as f64)
    }
}

/// A float for people: "n/a" for NaN (a ratio over nothing).
fn number(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// Milliseconds from the start as seconds with one decimal.
fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..=119 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", s / 60, s % 60),
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time in ms (proleptic Gregorian, after
/// H. Hinnant's days-to-civil), to avoid a date crate for one line.
fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
#[path = "report/tests.rs"]
mod tests;
