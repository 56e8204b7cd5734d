//! `sipfleet load merge`: one summary from the summaries of the shards of
//! one run (`--shards N`, one process or pod each), as if one process had
//! run every line.
//!
//! What is exact: every count and map adds up; the latency histogram is
//! the sum of the shards' HdrHistograms, so its percentiles are those of
//! the whole run. What is approximate: a timeline bucket carries no
//! histogram, so a merged bucket's p99 is the largest of the shards' p99
//! (an upper bound of the true p99) and its p50 the shards' p50 weighted
//! by their REGISTERs (exact when the shards saw the same distribution,
//! which sharding lines of one run makes likely). Thresholds are emptied:
//! the caller evaluates them again on the merged figures.

use std::collections::BTreeMap;

use super::histogram::{self, HistogramError};
use super::summary::*;
use super::thresholds::interval_ms;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: no summary given")]
    Empty,
    #[error("summary #{position}: schema {found:?}, this sipfleet merges {SCHEMA:?}")]
    Schema { position: usize, found: String },
    #[error("shards {missing:?} of {count} are missing: a merge of part of a run would count fewer lines than ran (--partial merges a part knowingly)")]
    Incomplete { missing: Vec<u32>, count: u32 },
    #[error("summary #{position} lists no shard")]
    NoShard { position: usize },
    #[error("summary #{position}: shard {index} of {count}, but another summary is one of {expected} shards: these are not shards of one run")]
    ShardCount {
        position: usize,
        index: u32,
        count: u32,
        expected: u32,
    },
    #[error("summary #{position}: shard index {index} is out of range for {count} shards")]
    ShardRange {
        position: usize,
        index: u32,
        count: u32,
    },
    #[error("shard {index} appears twice (summaries #{first} and #{second}): the same shard merged twice would count its lines twice")]
    Overlap {
        index: u32,
        first: usize,
        second: usize,
    },
    #[error("summary #{position}: stats interval {found} ms, another has {expected} ms: timelines of different intervals do not add up")]
    Interval {
        position: usize,
        found: u64,
        expected: u64,
    },
    #[error("summary #{position}: {source}")]
    Histogram {
        position: usize,
        source: HistogramError,
    },
}

/// Merges the shard summaries of one run. The result does not depend on
/// the order of `summaries`: they are sorted by shard first. Positions in
/// errors are 1-based, in the order given.
pub fn merge(summaries: Vec<Summary>) -> Result<Summary, MergeError> {
    merge_with(summaries, true)
}

/// [`merge`] of part of a run's shards (`sipfleet load merge --partial`):
/// merges of parts merge again into the whole, and a run whose shard was
/// lost can still be read, knowingly.
pub fn merge_part(summaries: Vec<Summary>) -> Result<Summary, MergeError> {
    merge_with(summaries, false)
}

fn merge_with(summaries: Vec<Summary>, complete: bool) -> Result<Summary, MergeError> {
    if summaries.is_empty() {
        return Err(MergeError::Empty);
    }
    check_shards(&summaries, complete)?;
    let interval = check_interval(&summaries)?;

    let mut latency = histogram::new_histogram();
    for (i, s) in summaries.iter().enumerate() {
        let h =
            histogram::decode(&s.register_latency_ms).map_err(|source| MergeError::Histogram {
                position: i + 1,
                source,
            })?;
        histogram::add(&mut latency, &h).map_err(|source| MergeError::Histogram {
            position: i + 1,
            source,
        })?;
    }

    let mut sorted = summaries;
    sorted.sort_by_key(|s| s.shards.iter().map(|sh| sh.index).min());

    let mut shards: Vec<ShardInfo> = sorted.iter().flat_map(|s| s.shards.clone()).collect();
    shards.sort_by_key(|s| s.index);

    Ok(Summary {
        schema: SCHEMA.to_string(),
        started_unix_ms: sorted.iter().map(|s| s.started_unix_ms).min().unwrap_or(0),
        duration_ms: sorted.iter().map(|s| s.duration_ms).max().unwrap_or(0),
        requested_duration_ms: sorted.iter().filter_map(|s| s.requested_duration_ms).max(),
        interrupted: sorted.iter().any(|s| s.interrupted),
        shards,
        lines: merge_lines(&sorted),
        registrations: merge_registrations(&sorted),
        register_latency_ms: histogram::encode(&latency),
        failovers: merge_moves(sorted.iter().map(|s| &s.failovers)),
        failbacks: merge_moves(sorted.iter().map(|s| &s.failbacks)),
        calls: merge_calls(&sorted),
        timeline: merge_timeline(&sorted),
        faults: merge_faults(&sorted, interval),
        thresholds: Vec::new(),
    })
}

fn check_shards(summaries: &[Summary], complete: bool) -> Result<(), MergeError> {
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    let mut expected: Option<u32> = None;
    for (i, s) in summaries.iter().enumerate() {
        let position = i + 1;
        if s.schema != SCHEMA {
            return Err(MergeError::Schema {
                position,
                found: s.schema.clone(),
            });
        }
        if s.shards.is_empty() {
            return Err(MergeError::NoShard { position });
        }
        for sh in &s.shards {
            let count = *expected.get_or_insert(sh.count);
            if sh.count != count {
                return Err(MergeError::ShardCount {
                    position,
                    index: sh.index,
                    count: sh.count,
                    expected: count,
                });
            }
            if sh.index >= sh.count {
                return Err(MergeError::ShardRange {
                    position,
                    index: sh.index,
                    count: sh.count,
                });
            }
            if let Some(first) = seen.insert(sh.index, position) {
                return Err(MergeError::Overlap {
                    index: sh.index,
                    first,
                    second: position,
                });
            }
        }
    }
    // A missing shard would pass for a run of fewer lines: every count,
    // ratio and threshold of the merge would be wrong without a word.
    let count = expected.unwrap_or(0);
    let missing: Vec<u32> = (0..count).filter(|i| !seen.contains_key(i)).collect();
    if complete && !missing.is_empty() {
        return Err(MergeError::Incomplete { missing, count });
    }
    Ok(())
}

/// The stats interval shared by every summary with a timeline.
fn check_interval(summaries: &[Summary]) -> Result<u64, MergeError> {
    let mut expected: Option<u64> = None;
    for (i, s) in summaries.iter().enumerate() {
        if s.timeline.is_empty() {
            continue;
        }
        let found = interval_ms(s);
        match expected {
            None => expected = Some(found),
            Some(e) if e != found => {
                return Err(MergeError::Interval {
                    position: i + 1,
                    found,
                    expected: e,
                })
            }
            Some(_) => {}
        }
    }
    Ok(expected.unwrap_or(1000))
}

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

fn merge_lines(ss: &[Summary]) -> LineCounts {
    let mut out = LineCounts::default();
    for s in ss {
        let l = &s.lines;
        out.configured += l.configured;
        out.ever_registered += l.ever_registered;
        out.registered_at_end += l.registered_at_end;
        out.never_registered += l.never_registered;
        out.backing_off_at_end += l.backing_off_at_end;
        add_map(
            &mut out.registered_by_sbc_at_end,
            &l.registered_by_sbc_at_end,
        );
    }
    out
}

/// REGISTERs per registration is a ratio: the merged one is the shards'
/// weighted by their `registered` events (their REGISTERs over their
/// registrations, added up), NaN when nothing registered anywhere.
fn merge_registrations(ss: &[Summary]) -> RegistrationStats {
    let mut out = RegistrationStats::default();
    let mut registers = 0.0;
    for s in ss {
        let r = &s.registrations;
        add_map(&mut out.registers_by_purpose, &r.registers_by_purpose);
        add_map(&mut out.failures_by_reason, &r.failures_by_reason);
        out.registered += r.registered;
        out.retransmissions += r.retransmissions;
        out.backoffs += r.backoffs;
        add_map(&mut out.backoffs_by_reason, &r.backoffs_by_reason);
        add_map(&mut out.dns_failures, &r.dns_failures);
        if r.registered > 0 {
            registers += r.registers_per_registration * r.registered as f64;
        }
    }
    out.registers_per_registration = if out.registered == 0 {
        f64::NAN
    } else {
        registers / out.registered as f64
    };
    out
}

fn merge_moves<'a>(lists: impl Iterator<Item = &'a Vec<MoveCount>>) -> Vec<MoveCount> {
    let mut by: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for m in lists.flatten() {
        *by.entry((m.reason.clone(), m.from.clone(), m.to.clone()))
            .or_default() += m.count;
    }
    by.into_iter()
        .map(|((reason, from, to), count)| MoveCount {
            reason,
            from,
            to,
            count,
        })
        .collect()
}

fn merge_calls(ss: &[Summary]) -> CallStats {
    let mut out = CallStats::default();
    for s in ss {
        let c = &s.calls;
        out.attempted += c.attempted;
        out.answered += c.answered;
        out.failed += c.failed;
        out.completed += c.completed;
        out.dropped += c.dropped;
        add_map(&mut out.ended_by_reason, &c.ended_by_reason);
    }
    out
}

/// Bucket by bucket on `t_ms`: counts, per-SBC gauges and rates add (a
/// shard whose timeline is shorter simply adds nothing to the later
/// buckets); latencies as the module doc says.
fn merge_timeline(ss: &[Summary]) -> Vec<TimelinePoint> {
    let mut buckets: BTreeMap<u64, Vec<&TimelinePoint>> = BTreeMap::new();
    for p in ss.iter().flat_map(|s| &s.timeline) {
        buckets.entry(p.t_ms).or_default().push(p);
    }
    buckets
        .into_iter()
        .map(|(t_ms, points)| {
            let mut out = TimelinePoint {
                t_ms,
                ..Default::default()
            };
            for p in &points {
                add_map(&mut out.registered_by_sbc, &p.registered_by_sbc);
                out.registered += p.registered;
                out.backing_off += p.backing_off;
                out.registers += p.registers;
                if p.register_rate.is_finite() {
                    out.register_rate += p.register_rate;
                }
                out.failovers += p.failovers;
                out.failbacks += p.failbacks;
                out.calls_up += p.calls_up;
            }
            (out.latency_p50_ms, out.latency_p99_ms) = bucket_latency(&points);
            out
        })
        .collect()
}

/// p99: the largest shard p99. p50: the shards' p50 weighted by their
/// REGISTERs in the bucket (all equally if none counted any), over the
/// shards where some attempt ended (a 0/0 pair means none did).
fn bucket_latency(points: &[&TimelinePoint]) -> (u64, u64) {
    let with: Vec<&&TimelinePoint> = points
        .iter()
        .filter(|p| p.latency_p50_ms > 0 || p.latency_p99_ms > 0)
        .collect();
    let p99 = with.iter().map(|p| p.latency_p99_ms).max().unwrap_or(0);
    let weighted = |weight: fn(&TimelinePoint) -> u128| {
        let total: u128 = with.iter().map(|p| weight(p)).sum();
        let sum: u128 = with
            .iter()
            .map(|p| u128::from(p.latency_p50_ms) * weight(p))
            .sum();
        (sum + total / 2).checked_div(total).map(|v| v as u64)
    };
    let p50 = weighted(|p| u128::from(p.registers))
        .or_else(|| weighted(|_| 1))
        .unwrap_or(0);
    (p50, p99)
}

/// Union sorted by time; the shards' entries of one wave become one
/// entry (first start, last end, lines added) as the recorder chains
/// moves into an entry: same kind, reason, from and to, each starting at
/// most one stats interval after the entry so far ended.
fn merge_faults(ss: &[Summary], interval: u64) -> Vec<FaultEntry> {
    let mut all: Vec<&FaultEntry> = ss.iter().flat_map(|s| &s.faults).collect();
    all.sort_by(|a, b| {
        (
            a.t_ms,
            &a.kind,
            &a.reason,
            &a.from,
            &a.to,
            a.last_t_ms,
            a.lines,
        )
            .cmp(&(
                b.t_ms,
                &b.kind,
                &b.reason,
                &b.from,
                &b.to,
                b.last_t_ms,
                b.lines,
            ))
    });
    let mut out: Vec<FaultEntry> = Vec::new();
    // Per key, the index in `out` of its latest wave.
    let mut open: BTreeMap<(&str, &str, &str, &str), usize> = BTreeMap::new();
    for f in all {
        let key = (
            f.kind.as_str(),
            f.reason.as_str(),
            f.from.as_str(),
            f.to.as_str(),
        );
        match open.get(&key).copied() {
            Some(i) if f.t_ms <= out[i].last_t_ms.saturating_add(interval) => {
                let w = &mut out[i];
                w.lines += f.lines;
                w.last_t_ms = w.last_t_ms.max(f.last_t_ms).max(f.t_ms);
            }
            _ => {
                open.insert(key, out.len());
                let mut w = f.clone();
                w.last_t_ms = w.last_t_ms.max(w.t_ms);
                out.push(w);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
