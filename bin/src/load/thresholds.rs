//! `--threshold METRIC OP NUMBER`: pass/fail criteria checked against a
//! run's (or a merge's) summary, so a load run can gate CI.
//!
//! Grammar: a metric name, a comparison among `<`, `<=`, `>`, `>=`, `==`,
//! `!=`, then a number (anything `f64::from_str` reads), with any spaces
//! between them: `registered_ratio>=0.999`, `p99_register_ms < 2000`.
//! A metric without a value (a ratio over zero calls, say) is NaN, and a
//! NaN fails every comparison, `!=` included, with a note saying so: a
//! criterion that could not be checked must not pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::summary::{FaultEntry, Summary, ThresholdResult};

/// Every metric a threshold can name, with what it measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// `lines.registered_at_end / lines.configured`: the share of lines
    /// registered when the run ended.
    RegisteredRatio,
    /// `lines.ever_registered / lines.configured`: the share of lines that
    /// registered at least once.
    EverRegisteredRatio,
    /// Registration latency percentiles and maximum (ms), read from the
    /// merged HdrHistogram.
    P50RegisterMs,
    P90RegisterMs,
    P99RegisterMs,
    MaxRegisterMs,
    /// REGISTER transactions started per `registered` event: 2 for a
    /// digest challenge on every registration, higher with retries.
    RegistersPerRegistration,
    /// Lines moved to another SBC, all reasons (sum of `failovers`).
    Failovers,
    /// Lines moved back to a preferred SBC (sum of `failbacks`).
    Failbacks,
    /// The longest failover wave, in ms: see [`failover_ms_max`].
    FailoverMsMax,
    /// `registration_failed` events, all reasons.
    RegistrationFailures,
    /// `calls.failed / calls.attempted` (NaN without any call).
    CallsFailedRatio,
    /// Calls answered.
    CallsAnswered,
    /// REGISTER retransmissions (UDP Timer E).
    Retransmissions,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::RegisteredRatio,
        Metric::EverRegisteredRatio,
        Metric::P50RegisterMs,
        Metric::P90RegisterMs,
        Metric::P99RegisterMs,
        Metric::MaxRegisterMs,
        Metric::RegistersPerRegistration,
        Metric::Failovers,
        Metric::Failbacks,
        Metric::FailoverMsMax,
        Metric::RegistrationFailures,
        Metric::CallsFailedRatio,
        Metric::CallsAnswered,
        Metric::Retransmissions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::RegisteredRatio => "registered_ratio",
            Metric::EverRegisteredRatio => "ever_registered_ratio",
            Metric::P50RegisterMs => "p50_register_ms",
            Metric::P90RegisterMs => "p90_register_ms",
            Metric::P99RegisterMs => "p99_register_ms",
            Metric::MaxRegisterMs => "max_register_ms",
            Metric::RegistersPerRegistration => "registers_per_registration",
            Metric::Failovers => "failovers",
            Metric::Failbacks => "failbacks",
            Metric::FailoverMsMax => "failover_ms_max",
            Metric::RegistrationFailures => "registration_failures",
            Metric::CallsFailedRatio => "calls_failed_ratio",
            Metric::CallsAnswered => "calls_answered",
            Metric::Retransmissions => "retransmissions",
        }
    }

    /// The metric's value in `s`; NaN when it has none.
    pub fn value(self, s: &Summary) -> f64 {
        let lat = &s.register_latency_ms;
        match self {
            Metric::RegisteredRatio => ratio(s.lines.registered_at_end, s.lines.configured),
            Metric::EverRegisteredRatio => ratio(s.lines.ever_registered, s.lines.configured),
            // No registration, no latency: NaN fails the threshold instead
            // of a 0 ms that would pass any bound.
            Metric::P50RegisterMs => sampled(lat.count, lat.p50),
            Metric::P90RegisterMs => sampled(lat.count, lat.p90),
            Metric::P99RegisterMs => sampled(lat.count, lat.p99),
            Metric::MaxRegisterMs => sampled(lat.count, lat.max),
            Metric::RegistersPerRegistration => s.registrations.registers_per_registration,
            Metric::Failovers => s.failovers.iter().map(|m| m.count).sum::<u64>() as f64,
            Metric::Failbacks => s.failbacks.iter().map(|m| m.count).sum::<u64>() as f64,
            Metric::FailoverMsMax => failover_ms_max(s) as f64,
            Metric::RegistrationFailures => {
                s.registrations.failures_by_reason.values().sum::<u64>() as f64
            }
            // Failed before the answer, or dropped after it (a failover
            // that tore the call down): both are calls the users lost.
            Metric::CallsFailedRatio => ratio(s.calls.failed + s.calls.dropped, s.calls.attempted),
            Metric::CallsAnswered => s.calls.answered as f64,
            Metric::Retransmissions => s.registrations.retransmissions as f64,
        }
    }
}

/// `value` of a histogram with `count` samples; NaN without any.
fn sampled(count: u64, value: u64) -> f64 {
    if count == 0 {
        f64::NAN
    } else {
        value as f64
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 {
        f64::NAN
    } else {
        n as f64 / d as f64
    }
}

/// The stats interval of a summary: the first timeline point ends the
/// first interval; 1 s (the runner's default) without a timeline.
pub fn interval_ms(s: &Summary) -> u64 {
    s.timeline
        .first()
        .map(|p| p.t_ms)
        .filter(|&t| t > 0)
        .unwrap_or(1000)
}

/// One fault of one SBC as the summary shows it: the `faults` entries of
/// one kind (`failover` or `failback`) that leave the same SBC, whatever
/// the reason or the SBC they went to (one dead SBC sends lines away by
/// ICMP, by timeout and by 503 at once), chained while each entry starts
/// no later than one stats interval after the wave so far ended
/// (`last_t_ms`; an entry without it ended when it started). So a wave
/// that the recorder split across intervals is one wave, and an SBC
/// failing twice, minutes apart, makes two.
#[derive(Clone, Debug, PartialEq)]
pub struct Wave {
    pub kind: String,
    pub from: String,
    /// Where its lines went.
    pub to: BTreeSet<String>,
    /// Lines moved, by reason.
    pub reasons: BTreeMap<String, u64>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub lines: u64,
}

/// The waves of `s`, by start time.
pub fn waves(s: &Summary) -> Vec<Wave> {
    let gap = interval_ms(s);
    let mut entries: Vec<&FaultEntry> = s.faults.iter().collect();
    entries.sort_by(|a, b| (&a.kind, &a.from, a.t_ms).cmp(&(&b.kind, &b.from, b.t_ms)));
    let mut out: Vec<Wave> = Vec::new();
    for f in entries {
        let end = f.last_t_ms.max(f.t_ms);
        match out.last_mut() {
            Some(w)
                if w.kind == f.kind
                    && w.from == f.from
                    && f.t_ms <= w.end_ms.saturating_add(gap) =>
            {
                w.end_ms = w.end_ms.max(end);
                w.lines += f.lines;
                w.to.insert(f.to.clone());
                *w.reasons.entry(f.reason.clone()).or_default() += f.lines;
            }
            _ => out.push(Wave {
                kind: f.kind.clone(),
                from: f.from.clone(),
                to: BTreeSet::from([f.to.clone()]),
                reasons: BTreeMap::from([(f.reason.clone(), f.lines)]),
                start_ms: f.t_ms,
                end_ms: end,
                lines: f.lines,
            }),
        }
    }
    out.sort_by_key(|w| w.start_ms);
    out
}

/// The longest failover [`Wave`], in milliseconds: from the first line
/// of a wave leaving an SBC to the last one. 0 without any failover.
pub fn failover_ms_max(s: &Summary) -> u64 {
    waves(s)
        .iter()
        .filter(|w| w.kind == "failover")
        .map(|w| w.end_ms - w.start_ms)
        .max()
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Longest first, so `<=` is not read as `<` followed by `=0.5`.
    const SPELLINGS: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    /// False whenever either side is NaN (IEEE comparison; `!=` is
    /// special-cased since NaN != x is true in IEEE).
    fn holds(self, a: f64, b: f64) -> bool {
        if a.is_nan() || b.is_nan() {
            return false;
        }
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = Op::SPELLINGS
            .iter()
            .find(|(_, op)| op == self)
            .map_or("?", |(s, _)| *s);
        f.write_str(s)
    }
}

/// A parsed `--threshold`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As given, trimmed: what the result reports.
    pub expr: String,
    pub metric: Metric,
    pub op: Op,
    pub bound: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThresholdError {
    #[error("threshold {expr:?}: expected METRIC OP NUMBER with OP one of < <= > >= == != (metrics: {})", metric_list())]
    NoOperator { expr: String },
    #[error(
        "threshold {expr:?}: unknown metric {metric:?} (metrics: {})",
        metric_list()
    )]
    UnknownMetric { expr: String, metric: String },
    #[error(
        "threshold {expr:?}: {number:?} is not a number (metric {metric}; metrics: {})",
        metric_list()
    )]
    BadNumber {
        expr: String,
        metric: String,
        number: String,
    },
}

fn metric_list() -> String {
    Metric::ALL
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expr = s.trim().to_string();
        let (at, spelling, op) = Op::SPELLINGS
            .iter()
            .filter_map(|(sp, op)| expr.find(sp).map(|i| (i, *sp, *op)))
            // The leftmost operator; at one position the longest spelling
            // (listed first, and `min_by_key` keeps the first minimum).
            .min_by_key(|(i, _, _)| *i)
            .ok_or_else(|| ThresholdError::NoOperator { expr: expr.clone() })?;
        let name = expr[..at].trim();
        let number = expr[at + spelling.len()..].trim();
        let metric = Metric::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| ThresholdError::UnknownMetric {
                expr: expr.clone(),
                metric: name.to_string(),
            })?;
        let bound = number
            .parse::<f64>()
            .ok()
            .filter(|b| !b.is_nan())
            .ok_or_else(|| ThresholdError::BadNumber {
                expr: expr.clone(),
                metric: name.to_string(),
                number: number.to_string(),
            })?;
        Ok(Threshold {
            expr,
            metric,
            op,
            bound,
        })
    }
}

/// Checks each threshold against `summary`, in the order given.
pub fn evaluate(thresholds: &[Threshold], summary: &Summary) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let value = t.metric.value(summary);
            let passed = t.op.holds(value, t.bound);
            let note = value.is_nan().then(|| {
                format!(
                    "{} has no value in this run (0/0), so {} {} {} cannot hold",
                    t.metric.name(),
                    t.metric.name(),
                    t.op,
                    t.bound
                )
            });
            ThresholdResult {
                expr: t.expr.clone(),
                value,
                passed,
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::summary::*;
    use super::*;

    fn summary() -> Summary {
        Summary {
            schema: SCHEMA.into(),
            started_unix_ms: 0,
            duration_ms: 300_000,
            requested_duration_ms: None,
            interrupted: false,
            shards: vec![],
            lines: LineCounts {
                configured: 1000,
                ever_registered: 1000,
                registered_at_end: 990,
                never_registered: 0,
                backing_off_at_end: 10,
                registered_by_sbc_at_end: BTreeMap::new(),
            },
            registrations: RegistrationStats {
                registers_by_purpose: BTreeMap::new(),
                registered: 2000,
                registers_per_registration: 2.1,
                retransmissions: 7,
                failures_by_reason: BTreeMap::from([("timeout".into(), 3), ("503".into(), 2)]),
                backoffs: 5,
                ..RegistrationStats::default()
            },
            register_latency_ms: Histogram {
                count: 10,
                p50: 40,
                p90: 90,
                p99: 120,
                max: 300,
                ..Default::default()
            },
            failovers: vec![mv("icmp", "a", "b", 600), mv("timeout", "a", "b", 400)],
            failbacks: vec![mv("failback", "b", "a", 1000)],
            calls: CallStats::default(),
            timeline: vec![TimelinePoint {
                t_ms: 1000,
                ..Default::default()
            }],
            faults: vec![
                fault(60_000, 61_500, "failover", "icmp", "a"),
                // Starts within one interval of the icmp entry's end: the
                // same wave, which so lasts 60.0 .. 63.0 s.
                fault(62_000, 63_000, "failover", "timeout", "a"),
                fault(180_000, 189_000, "failback", "failback", "b"),
                // Another SBC, another wave (2 s).
                fault(62_000, 64_000, "failover", "timeout", "c"),
                // The same SBC much later: a second wave (0.5 s).
                fault(250_000, 250_500, "failover", "icmp", "a"),
            ],
            thresholds: vec![],
        }
    }

    fn mv(reason: &str, from: &str, to: &str, count: u64) -> MoveCount {
        MoveCount {
            reason: reason.into(),
            from: from.into(),
            to: to.into(),
            count,
        }
    }

    fn fault(t_ms: u64, last_t_ms: u64, kind: &str, reason: &str, from: &str) -> FaultEntry {
        FaultEntry {
            t_ms,
            last_t_ms,
            kind: kind.into(),
            reason: reason.into(),
            from: from.into(),
            to: "b".into(),
            lines: 10,
        }
    }

    fn check(expr: &str) -> ThresholdResult {
        let t: Threshold = expr.parse().unwrap();
        evaluate(&[t], &summary()).remove(0)
    }

    #[test]
    fn parses_every_operator_with_or_without_spaces() {
        for (text, op) in [
            ("failovers<1", Op::Lt),
            ("failovers <= 1", Op::Le),
            (" failovers>1 ", Op::Gt),
            ("failovers >=1", Op::Ge),
            ("failovers== 1", Op::Eq),
            ("failovers != 1e0", Op::Ne),
        ] {
            let t: Threshold = text.parse().unwrap();
            assert_eq!(
                (t.metric, t.op, t.bound),
                (Metric::Failovers, op, 1.0),
                "{text}"
            );
            assert_eq!(t.expr, text.trim());
        }
        let t: Threshold = "registered_ratio>=-0.5".parse().unwrap();
        assert_eq!(t.bound, -0.5);
    }

    #[test]
    fn every_metric_name_parses_back() {
        for m in Metric::ALL {
            let t: Threshold = format!("{} < 1", m.name()).parse().unwrap();
            assert_eq!(t.metric, m);
        }
    }

    #[test]
    fn errors_name_the_problem_and_list_the_metrics() {
        let e = "registred_ratio >= 0.9".parse::<Threshold>().unwrap_err();
        assert!(
            matches!(e, ThresholdError::UnknownMetric { ref metric, .. } if metric == "registred_ratio")
        );
        let msg = e.to_string();
        assert!(msg.contains("unknown metric \"registred_ratio\""), "{msg}");
        for m in Metric::ALL {
            assert!(msg.contains(m.name()), "{msg}");
        }
        let e = "failovers < lots".parse::<Threshold>().unwrap_err();
        assert!(e.to_string().contains("\"lots\" is not a number"), "{e}");
        assert!(e.to_string().contains("retransmissions"), "{e}");
        for bad in [
            "failovers < ",
            "failovers < NaN",
            "failovers < 1 2",
            "failovers<=<1",
        ] {
            assert!(
                matches!(
                    bad.parse::<Threshold>(),
                    Err(ThresholdError::BadNumber { .. })
                ),
                "{bad}"
            );
        }
        let e = "failovers 3".parse::<Threshold>().unwrap_err();
        assert!(matches!(e, ThresholdError::NoOperator { .. }));
        assert!(e.to_string().contains("calls_answered"), "{e}");
        assert!(matches!(
            " < 3".parse::<Threshold>(),
            Err(ThresholdError::UnknownMetric { .. })
        ));
    }

    #[test]
    fn metrics_read_the_summary() {
        let s = summary();
        let v = |m: Metric| m.value(&s);
        assert_eq!(v(Metric::RegisteredRatio), 0.99);
        assert_eq!(v(Metric::EverRegisteredRatio), 1.0);
        assert_eq!(v(Metric::P50RegisterMs), 40.0);
        assert_eq!(v(Metric::P90RegisterMs), 90.0);
        assert_eq!(v(Metric::P99RegisterMs), 120.0);
        assert_eq!(v(Metric::MaxRegisterMs), 300.0);
        assert_eq!(v(Metric::RegistersPerRegistration), 2.1);
        assert_eq!(v(Metric::Failovers), 1000.0);
        assert_eq!(v(Metric::Failbacks), 1000.0);
        assert_eq!(v(Metric::FailoverMsMax), 3000.0);
        assert_eq!(v(Metric::RegistrationFailures), 5.0);
        assert!(v(Metric::CallsFailedRatio).is_nan());
        assert_eq!(v(Metric::CallsAnswered), 0.0);
        assert_eq!(v(Metric::Retransmissions), 7.0);
    }

    #[test]
    fn failover_ms_max_is_zero_without_failovers_and_splits_distant_waves() {
        let mut s = summary();
        s.faults.retain(|f| f.kind == "failback");
        assert_eq!(failover_ms_max(&s), 0);
        let mut s = summary();
        // 2 s after the wave's end with a 1 s interval: a separate wave.
        s.faults[1].t_ms = 63_600;
        s.faults[1].last_t_ms = 66_000;
        assert_eq!(failover_ms_max(&s), 2400);
        // A 5 s interval chains them again: 60.0 .. 66.0.
        s.timeline[0].t_ms = 5000;
        assert_eq!(failover_ms_max(&s), 6000);
        // Older summaries without last_t_ms: instantaneous entries.
        for f in &mut s.faults {
            f.last_t_ms = 0;
        }
        assert_eq!(failover_ms_max(&s), 3600);
    }

    #[test]
    fn waves_group_one_sbc_fault_across_reasons() {
        let w = waves(&summary());
        let got: Vec<(&str, &str, u64, u64, u64)> = w
            .iter()
            .map(|w| {
                (
                    w.kind.as_str(),
                    w.from.as_str(),
                    w.start_ms,
                    w.end_ms,
                    w.lines,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("failover", "a", 60_000, 63_000, 20),
                ("failover", "c", 62_000, 64_000, 10),
                ("failback", "b", 180_000, 189_000, 10),
                ("failover", "a", 250_000, 250_500, 10),
            ]
        );
        assert_eq!(
            w[0].reasons,
            BTreeMap::from([("icmp".into(), 10), ("timeout".into(), 10)])
        );
    }

    #[test]
    fn comparisons_pass_and_fail() {
        assert!(check("registered_ratio >= 0.99").passed);
        assert!(!check("registered_ratio > 0.99").passed);
        assert!(check("p99_register_ms < 2000").passed);
        assert!(!check("p99_register_ms <= 119").passed);
        assert!(check("failovers == 1000").passed);
        assert!(!check("failovers != 1000").passed);
        assert!(check("registration_failures != 0").passed);
        let r = check("failover_ms_max<=3000");
        assert_eq!((r.value, r.passed, r.note), (3000.0, true, None));
        assert_eq!(r.expr, "failover_ms_max<=3000");
    }

    #[test]
    fn nan_fails_every_comparison_and_says_so() {
        for op in ["<", "<=", ">", ">=", "==", "!="] {
            let r = check(&format!("calls_failed_ratio {op} 0.01"));
            assert!(r.value.is_nan());
            assert!(!r.passed, "{op}");
            let note = r.note.unwrap();
            assert!(note.contains("calls_failed_ratio has no value"), "{note}");
        }
        let mut s = summary();
        s.lines.configured = 0;
        let r = evaluate(&["registered_ratio >= 0".parse().unwrap()], &s);
        assert!(!r[0].passed);
    }

    #[test]
    fn latency_bounds_fail_when_nothing_registered() {
        let mut s = summary();
        s.register_latency_ms =
            super::super::histogram::encode(&super::super::histogram::new_histogram());
        for metric in [
            "p50_register_ms",
            "p90_register_ms",
            "p99_register_ms",
            "max_register_ms",
        ] {
            let r = evaluate(&[format!("{metric} < 200").parse().unwrap()], &s);
            assert!(r[0].value.is_nan(), "{metric}");
            assert!(
                !r[0].passed,
                "{metric}: no registration cannot pass a latency bound"
            );
        }
    }

    #[test]
    fn results_keep_the_order_given() {
        let ts: Vec<Threshold> = [
            "failovers > 0",
            "calls_answered > 0",
            "retransmissions < 10",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        let r = evaluate(&ts, &summary());
        let got: Vec<(&str, bool)> = r.iter().map(|r| (r.expr.as_str(), r.passed)).collect();
        assert_eq!(
            got,
            [
                ("failovers > 0", true),
                ("calls_answered > 0", false),
                ("retransmissions < 10", true)
            ]
        );
    }

    #[test]
    fn nan_value_survives_the_json_round_trip() {
        let mut s = summary();
        s.thresholds = evaluate(&["calls_failed_ratio < 0.1".parse().unwrap()], &s);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"value\":null"), "{json}");
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert!(back.thresholds[0].value.is_nan());
        assert!(back.thresholds[0].note.is_some());
    }
}
