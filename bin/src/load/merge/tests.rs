//! A synthetic run, summarized per shard and as a whole, so `merge` can be
//! checked against the summary of the whole run; the same generator writes
//! the report's sample (`bin/tests/data/load-summary-sample.json`).

use std::collections::BTreeMap;

use super::*;
use crate::load::histogram;

/// Two SBCs; `a` fails at `fail_ms` and returns at `back_ms`.
pub(crate) struct Scenario {
    pub lines: u64,
    pub first_user: u64,
    pub interval_ms: u64,
    pub buckets: u64,
    /// Initial REGISTERs spread over this long (pacing).
    pub ramp_ms: u64,
    pub fail_ms: u64,
    pub back_ms: u64,
    /// How long after `back_ms` the first line fails back.
    pub failback_delay_ms: u64,
    /// How far apart two lines' moves are in a wave.
    pub move_step_ms: u64,
    /// Timer F-like delay before lines that detect the fault by timeout move.
    pub timeout_ms: u64,
    pub a: &'static str,
    pub b: &'static str,
}

/// A deterministic pseudo-random number in [0, 1) for line `u`, stream `k`.
fn rnd(u: u64, k: u64) -> f64 {
    let mut x = u.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A skewed latency: most near `base`, a tail to `base + spread`.
fn latency(u: u64, k: u64, base: u64, spread: u64) -> u64 {
    let r = rnd(u, k) * rnd(u, k + 100) * rnd(u, k + 200);
    base + (r * spread as f64) as u64
}

enum Ev {
    Register(&'static str),
    Registered(u64),
    Failed(&'static str),
    Move {
        kind: &'static str,
        reason: &'static str,
        from: &'static str,
        to: &'static str,
    },
}

/// The end of a registration that lasts past the end of the run.
const OPEN: u64 = u64::MAX;

struct LinePlan {
    events: Vec<(u64, Ev)>,
    /// (from, to, sbc): registered on `sbc` over [from, to); `to` is
    /// [`OPEN`] when still registered at the end.
    bound: Vec<(u64, u64, &'static str)>,
    backing_off_from: Option<u64>,
    retransmissions: u64,
    call: Option<(u64, u64, bool)>,
}

impl Scenario {
    pub fn end_ms(&self) -> u64 {
        self.interval_ms * self.buckets
    }

    fn plan(&self, u: u64) -> LinePlan {
        let end = self.end_ms();
        let mut p = LinePlan {
            events: vec![],
            bound: vec![],
            backing_off_from: None,
            retransmissions: 0,
            call: None,
        };
        let t0 = (rnd(u, 1) * self.ramp_ms as f64) as u64;
        p.events.push((t0, Ev::Register("initial")));
        p.events.push((t0 + 2, Ev::Register("authenticate")));
        if u % 50 == 49 {
            let t = t0 + 40;
            p.events.push((t, Ev::Failed("403")));
            p.backing_off_from = Some(t);
            return p;
        }
        let l0 = latency(u, 2, 12, 400);
        let up = t0 + l0;
        p.events.push((up, Ev::Registered(l0)));
        let by_timeout = u.is_multiple_of(3);
        let rank = u % (self.lines.max(1));
        let (reason, moved) = if by_timeout {
            (
                "timeout",
                self.fail_ms + self.timeout_ms + rank * self.move_step_ms,
            )
        } else {
            ("icmp", self.fail_ms + rank * self.move_step_ms)
        };
        if moved >= end {
            p.bound.push((up, OPEN, self.a));
        } else {
            if by_timeout {
                p.events
                    .push((moved - self.timeout_ms, Ev::Register("refresh")));
                p.retransmissions += 10;
            }
            p.bound.push((up, moved, self.a));
            let kind = "failover";
            p.events.push((
                moved,
                Ev::Move {
                    kind,
                    reason,
                    from: self.a,
                    to: self.b,
                },
            ));
            p.events.push((moved, Ev::Register("failover")));
            p.events.push((moved + 2, Ev::Register("authenticate")));
            let l1 = latency(u, 3, 30, 900);
            p.events.push((moved + l1, Ev::Registered(l1)));
            let back = (self.back_ms + self.failback_delay_ms + rank * self.move_step_ms * 2)
                .max(moved + l1 + 1);
            if back >= end {
                p.bound.push((moved + l1, OPEN, self.b));
            } else {
                p.bound.push((moved + l1, back, self.b));
                let kind = "failback";
                let reason = "failback";
                p.events.push((
                    back,
                    Ev::Move {
                        kind,
                        reason,
                        from: self.b,
                        to: self.a,
                    },
                ));
                p.events.push((back, Ev::Register("failback")));
                p.events.push((back + 2, Ev::Register("authenticate")));
                let l2 = latency(u, 4, 15, 300);
                p.events.push((back + l2, Ev::Registered(l2)));
                p.bound.push((back + l2, OPEN, self.a));
            }
        }
        if u.is_multiple_of(20) {
            let start = end / 3 + (rnd(u, 5) * (end / 2) as f64) as u64;
            p.call = Some((start, (start + 30_000).min(end - 1), !u.is_multiple_of(400)));
        }
        p
    }

    /// The summary the recorder would write for `users` (global line
    /// numbers) as the shards `shards`.
    pub fn summary(&self, users: std::ops::Range<u64>, shards: Vec<ShardInfo>) -> Summary {
        let end = self.end_ms();
        let i = self.interval_ms;
        let mut s = Summary {
            schema: SCHEMA.into(),
            started_unix_ms: 1_780_000_000_000,
            duration_ms: end + 1_500,
            requested_duration_ms: None,
            interrupted: false,
            shards,
            lines: LineCounts::default(),
            registrations: RegistrationStats::default(),
            register_latency_ms: histogram::encode(&histogram::new_histogram()),
            failovers: vec![],
            failbacks: vec![],
            calls: CallStats::default(),
            timeline: (1..=self.buckets)
                .map(|k| TimelinePoint {
                    t_ms: k * i,
                    ..Default::default()
                })
                .collect(),
            faults: vec![],
            thresholds: vec![],
        };
        let mut all = histogram::new_histogram();
        let mut per_bucket = vec![histogram::new_histogram(); self.buckets as usize];
        let mut moves: Vec<(u64, &'static str, &'static str, &'static str, &'static str)> = vec![];
        let bucket = |t: u64| ((t / i) as usize).min(self.buckets as usize - 1);
        for u in users {
            let p = self.plan(u);
            s.lines.configured += 1;
            s.registrations.retransmissions += p.retransmissions;
            let mut ever = false;
            for (t, ev) in &p.events {
                let b = bucket(*t);
                match ev {
                    Ev::Register(purpose) => {
                        *s.registrations
                            .registers_by_purpose
                            .entry(purpose.to_string())
                            .or_default() += 1;
                        s.timeline[b].registers += 1;
                    }
                    Ev::Registered(ms) => {
                        ever = true;
                        s.registrations.registered += 1;
                        all.saturating_record(*ms);
                        per_bucket[b].saturating_record(*ms);
                    }
                    Ev::Failed(reason) => {
                        *s.registrations
                            .failures_by_reason
                            .entry(reason.to_string())
                            .or_default() += 1;
                        s.registrations.backoffs += 1;
                    }
                    Ev::Move {
                        kind,
                        reason,
                        from,
                        to,
                    } => {
                        moves.push((*t, kind, reason, from, to));
                        if *kind == "failover" {
                            s.timeline[b].failovers += 1;
                        } else {
                            s.timeline[b].failbacks += 1;
                        }
                    }
                }
            }
            if ever {
                s.lines.ever_registered += 1;
            } else {
                s.lines.never_registered += 1;
            }
            for pt in &mut s.timeline {
                let t = pt.t_ms;
                if let Some(&(_, _, sbc)) = p.bound.iter().find(|(a, b, _)| *a <= t && t < *b) {
                    *pt.registered_by_sbc.entry(sbc.to_string()).or_default() += 1;
                    pt.registered += 1;
                }
                if p.backing_off_from.is_some_and(|b| b <= t) {
                    pt.backing_off += 1;
                }
                if let Some((start, stop, true)) = p.call {
                    if start <= t && t < stop {
                        pt.calls_up += 1;
                    }
                }
            }
            if let Some(&(_, stop, sbc)) = p.bound.last() {
                if stop == OPEN {
                    s.lines.registered_at_end += 1;
                    *s.lines
                        .registered_by_sbc_at_end
                        .entry(sbc.to_string())
                        .or_default() += 1;
                }
            }
            if p.backing_off_from.is_some() {
                s.lines.backing_off_at_end += 1;
            }
            if let Some((_, _, answered)) = p.call {
                s.calls.attempted += 1;
                if answered {
                    s.calls.answered += 1;
                    s.calls.completed += 1;
                    *s.calls.ended_by_reason.entry("bye".into()).or_default() += 1;
                } else {
                    s.calls.failed += 1;
                    *s.calls.ended_by_reason.entry("486".into()).or_default() += 1;
                }
            }
        }
        let registers: u64 = s.registrations.registers_by_purpose.values().sum();
        s.registrations.registers_per_registration = if s.registrations.registered == 0 {
            f64::NAN
        } else {
            registers as f64 / s.registrations.registered as f64
        };
        s.register_latency_ms = histogram::encode(&all);
        for (pt, h) in s.timeline.iter_mut().zip(&per_bucket) {
            pt.register_rate = pt.registers as f64 * 1000.0 / i as f64;
            pt.latency_p50_ms = h.value_at_quantile(0.5);
            pt.latency_p99_ms = h.value_at_quantile(0.99);
        }
        let mut counts: BTreeMap<(&str, &str, &str, &str), u64> = BTreeMap::new();
        moves.sort();
        let mut open: BTreeMap<(&str, &str, &str, &str), usize> = BTreeMap::new();
        for (t, kind, reason, from, to) in moves {
            let key = (kind, reason, from, to);
            *counts.entry(key).or_default() += 1;
            match open.get(&key).copied() {
                Some(w) if t <= s.faults[w].last_t_ms + i => {
                    s.faults[w].lines += 1;
                    s.faults[w].last_t_ms = t;
                }
                _ => {
                    open.insert(key, s.faults.len());
                    s.faults.push(FaultEntry {
                        t_ms: t,
                        last_t_ms: t,
                        kind: kind.into(),
                        reason: reason.into(),
                        from: from.into(),
                        to: to.into(),
                        lines: 1,
                    });
                }
            }
        }
        for ((kind, reason, from, to), count) in counts {
            let m = MoveCount {
                reason: reason.into(),
                from: from.into(),
                to: to.into(),
                count,
            };
            if kind == "failover" {
                s.failovers.push(m);
            } else {
                s.failbacks.push(m);
            }
        }
        s
    }

    pub fn shard_info(&self, index: u32, count: u32) -> (ShardInfo, std::ops::Range<u64>) {
        let per = self.lines / u64::from(count);
        let first = u64::from(index) * per;
        let last = if index + 1 == count {
            self.lines
        } else {
            first + per
        };
        (
            ShardInfo {
                index,
                count,
                first_user: (self.first_user + first).to_string(),
                last_user: (self.first_user + last - 1).to_string(),
                lines: last - first,
            },
            first..last,
        )
    }

    pub fn shards(&self, count: u32) -> Vec<Summary> {
        (0..count)
            .map(|k| {
                let (info, users) = self.shard_info(k, count);
                self.summary(users, vec![info])
            })
            .collect()
    }

    pub fn whole(&self, count: u32) -> Summary {
        let infos = (0..count).map(|k| self.shard_info(k, count).0).collect();
        self.summary(0..self.lines, infos)
    }
}

/// 400 lines in 4 shards, 10 s at 1 s: each wave spreads over less than
/// one interval, so per shard and as a whole it makes one entry.
pub(crate) fn small() -> Scenario {
    Scenario {
        lines: 400,
        first_user: 20_000,
        interval_ms: 1_000,
        buckets: 10,
        ramp_ms: 1_500,
        fail_ms: 3_000,
        back_ms: 5_000,
        failback_delay_ms: 500,
        move_step_ms: 1,
        timeout_ms: 450,
        a: "127.0.0.11:5060",
        b: "127.0.0.12:5060",
    }
}

/// The report's sample: 10,000 lines, SBC 1 dies at 60 s and returns at
/// 180 s, 300 s at 1 s.
pub(crate) fn sample() -> Scenario {
    Scenario {
        lines: 10_000,
        first_user: 20_000,
        interval_ms: 1_000,
        buckets: 300,
        ramp_ms: 20_000,
        fail_ms: 60_000,
        back_ms: 180_000,
        failback_delay_ms: 5_000,
        move_step_ms: 1,
        timeout_ms: 32_000,
        a: "127.0.0.11:5060",
        b: "127.0.0.12:5060",
    }
}

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

#[test]
fn four_shards_merge_into_the_whole() {
    let sc = small();
    let shards = sc.shards(4);
    let mut whole = sc.whole(4);
    let merged = merge(shards.clone()).unwrap();

    // The scenario did what it says: every figure below is exercised.
    assert_eq!(whole.lines.configured, 400);
    assert_eq!(whole.lines.never_registered, 8);
    assert!(whole.failovers.iter().map(|m| m.count).sum::<u64>() > 300);
    assert!(whole.failbacks.iter().map(|m| m.count).sum::<u64>() > 300);
    assert_eq!(whole.faults.len(), 3, "{:?}", whole.faults);
    assert!(whole.calls.attempted > 0 && whole.calls.failed > 0);
    assert!(whole
        .timeline
        .iter()
        .any(|p| p.registered_by_sbc.len() == 2));

    // Ratios add up within float rounding.
    assert!(approx(
        merged.registrations.registers_per_registration,
        whole.registrations.registers_per_registration
    ));
    whole.registrations.registers_per_registration =
        merged.registrations.registers_per_registration;
    // Bucket latencies are approximate: p99 the largest shard's, p50
    // between the shards' smallest and largest.
    for (k, (m, w)) in merged.timeline.iter().zip(&mut whole.timeline).enumerate() {
        let p99s = shards.iter().map(|s| s.timeline[k].latency_p99_ms);
        assert_eq!(m.latency_p99_ms, p99s.max().unwrap());
        let p50s: Vec<u64> = shards
            .iter()
            .map(|s| &s.timeline[k])
            .filter(|p| p.latency_p99_ms > 0)
            .map(|p| p.latency_p50_ms)
            .collect();
        if let (Some(lo), Some(hi)) = (p50s.iter().min(), p50s.iter().max()) {
            assert!((*lo..=*hi).contains(&m.latency_p50_ms), "bucket {k}");
        }
        assert!(
            m.latency_p99_ms >= w.latency_p99_ms,
            "an upper bound, bucket {k}"
        );
        w.latency_p50_ms = m.latency_p50_ms;
        w.latency_p99_ms = m.latency_p99_ms;
    }
    // Everything else, histogram and faults included, is exact.
    assert_eq!(merged, whole);
    let h = histogram::decode(&merged.register_latency_ms).unwrap();
    assert_eq!(h.len(), whole.registrations.registered);
}

#[test]
fn merge_is_order_independent() {
    let shards = small().shards(4);
    let first = merge(shards.clone()).unwrap();
    for order in [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
        let shuffled: Vec<Summary> = order.iter().map(|&k| shards[k].clone()).collect();
        assert_eq!(merge(shuffled).unwrap(), first, "{order:?}");
    }
    // Merging merges: (0+1) + (2+3) is the same as all four at once.
    let left = merge_part(shards[..2].to_vec()).unwrap();
    let right = merge_part(shards[2..].to_vec()).unwrap();
    let mut twice = merge(vec![right, left]).unwrap();
    assert!(approx(
        twice.registrations.registers_per_registration,
        first.registrations.registers_per_registration
    ));
    twice.registrations.registers_per_registration = first.registrations.registers_per_registration;
    for (t, f) in twice.timeline.iter_mut().zip(&first.timeline) {
        assert_eq!(t.latency_p99_ms, f.latency_p99_ms);
        t.latency_p50_ms = f.latency_p50_ms;
    }
    assert_eq!(twice, first);
}

#[test]
fn refuses_what_is_not_shards_of_one_run() {
    assert!(matches!(merge(vec![]), Err(MergeError::Empty)));
    let shards = small().shards(4);

    let e = merge(vec![shards[0].clone(), shards[2].clone()]).unwrap_err();
    assert!(
        matches!(&e, MergeError::Incomplete { missing, count: 4 } if *missing == vec![1, 3]),
        "{e}"
    );

    let mut other = shards.clone();
    other[2].schema = "sipfleet.load.summary/2".into();
    let e = merge(other).unwrap_err();
    assert!(matches!(e, MergeError::Schema { position: 3, .. }), "{e}");
    assert!(e.to_string().contains("sipfleet.load.summary/2"));

    let e = merge(vec![
        shards[1].clone(),
        shards[0].clone(),
        shards[1].clone(),
    ])
    .unwrap_err();
    assert!(
        matches!(
            e,
            MergeError::Overlap {
                index: 1,
                first: 1,
                second: 3
            }
        ),
        "{e}"
    );

    let mut mixed = shards.clone();
    mixed[3].shards[0].count = 8;
    let e = merge(mixed).unwrap_err();
    assert!(
        matches!(
            e,
            MergeError::ShardCount {
                position: 4,
                count: 8,
                expected: 4,
                ..
            }
        ),
        "{e}"
    );

    let mut out_of_range = shards.clone();
    out_of_range[0].shards[0].index = 4;
    assert!(matches!(
        merge(out_of_range),
        Err(MergeError::ShardRange { index: 4, .. })
    ));

    let mut none = shards.clone();
    none[0].shards.clear();
    assert!(matches!(
        merge(none),
        Err(MergeError::NoShard { position: 1 })
    ));

    let mut bad = shards.clone();
    bad[1].register_latency_ms.hdr_v2_base64 = "%%%".into();
    let e = merge(bad).unwrap_err();
    assert!(
        matches!(e, MergeError::Histogram { position: 2, .. }),
        "{e}"
    );

    let mut slow = shards.clone();
    for p in &mut slow[0].timeline {
        p.t_ms *= 5;
    }
    assert!(matches!(
        merge(slow),
        Err(MergeError::Interval { position: 2, .. })
    ));
}

#[test]
fn merge_sets_start_duration_and_empties_thresholds() {
    let mut shards = small().shards(2);
    shards[0].started_unix_ms += 700;
    shards[1].duration_ms += 2_000;
    shards[0].thresholds.push(ThresholdResult {
        expr: "failovers > 0".into(),
        value: 1.0,
        passed: true,
        note: None,
    });
    let m = merge(shards.clone()).unwrap();
    assert_eq!(m.started_unix_ms, shards[1].started_unix_ms);
    assert_eq!(m.duration_ms, shards[1].duration_ms);
    assert!(m.thresholds.is_empty());
    assert_eq!(m.shards.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn faults_of_one_wave_merge_and_later_waves_stay_apart() {
    let f = |t_ms, last_t_ms, lines, from: &str| FaultEntry {
        t_ms,
        last_t_ms,
        kind: "failover".into(),
        reason: "icmp".into(),
        from: from.into(),
        to: "b".into(),
        lines,
    };
    let mut a = small().shards(2);
    a[0].faults = vec![f(60_000, 60_400, 10, "a"), f(90_000, 90_000, 1, "a")];
    a[1].faults = vec![
        f(60_300, 60_900, 20, "a"),
        f(60_100, 60_200, 5, "c"),
        f(61_000, 61_500, 7, "a"),
    ];
    let m = merge(a).unwrap();
    // 61.0 s is within one interval of the wave's end so far (60.9 s):
    // the same wave; 90 s is another.
    assert_eq!(
        m.faults,
        [
            f(60_000, 61_500, 37, "a"),
            f(60_100, 60_200, 5, "c"),
            f(90_000, 90_000, 1, "a"),
        ]
    );
}

#[test]
fn merged_latency_of_a_bucket_weights_p50_by_registers() {
    let p = |registers, p50, p99| TimelinePoint {
        registers,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
        ..Default::default()
    };
    let (a, b, none) = (p(300, 10, 50), p(100, 30, 400), p(50, 0, 0));
    assert_eq!(bucket_latency(&[&a, &b, &none]), (15, 400));
    assert_eq!(bucket_latency(&[&none]), (0, 0));
    assert_eq!(bucket_latency(&[&p(0, 10, 20), &p(0, 20, 30)]), (15, 30));
}

/// The report's sample: the `sample()` run with a few thresholds, one
/// failing.
fn sample_summary() -> Summary {
    let mut s = sample().whole(1);
    let ts: Vec<crate::load::thresholds::Threshold> = [
        "registered_ratio >= 0.98",
        "p99_register_ms < 500",
        "failover_ms_max <= 45000",
        "registers_per_registration <= 2.05",
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    s.thresholds = crate::load::thresholds::evaluate(&ts, &s);
    s
}

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/load-summary-sample.json"
);

/// The checked-in sample is what the generator makes (so the report's
/// tests and screenshot show a run whose figures are consistent).
#[test]
fn report_sample_is_the_generated_run() {
    let text = std::fs::read_to_string(SAMPLE).unwrap();
    let file: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(file, sample_summary(), "regenerate: write_report_sample");
    assert_eq!(file.lines.configured, 10_000);
    assert_eq!(file.timeline.len(), 300);
}

/// Writes the report's sample summary: `SIPFLEET_WRITE_SAMPLE=1 cargo test
/// -p sipfleet-cli write_report_sample -- --ignored`.
#[test]
#[ignore = "writes bin/tests/data/load-summary-sample.json"]
fn write_report_sample() {
    if std::env::var_os("SIPFLEET_WRITE_SAMPLE").is_none() {
        return;
    }
    let json = serde_json::to_string_pretty(&sample_summary()).unwrap();
    std::fs::write(SAMPLE, json + "\n").unwrap();
}
