//! The summary of a load run (`sipfleet load --summary FILE.json`), and the
//! input of `sipfleet load merge` and of the HTML report.
//!
//! The schema is versioned ([`SCHEMA`]): a field may be added within a
//! version, none renamed or removed. Shard summaries merge exactly: counts
//! add up, the latency histogram is an HdrHistogram serialized (V2,
//! base64) so merged percentiles are those of one run, and the timeline is
//! bucketed on the run's own clock (`t_ms` from the start, at the stats
//! interval) so shards that started together add up bucket by bucket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema name and version written in every summary.
pub const SCHEMA: &str = "sipfleet.load.summary/1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Always [`SCHEMA`]; `merge` refuses any other.
    pub schema: String,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// From the start to the end of the shutdown.
    pub duration_ms: u64,
    /// The `--duration` asked, if one was.
    #[serde(default)]
    pub requested_duration_ms: Option<u64>,
    /// A signal ended the run before its `--duration` (a preempted pod, a
    /// Ctrl-C): its figures cover less than was asked.
    #[serde(default)]
    pub interrupted: bool,
    /// The shards this summary covers: one for a run, every merged one
    /// for a merge.
    pub shards: Vec<ShardInfo>,
    pub lines: LineCounts,
    pub registrations: RegistrationStats,
    /// From the first REGISTER of a registration attempt (initial,
    /// failover, failback) to its 2xx, in milliseconds.
    pub register_latency_ms: Histogram,
    /// Failovers counted by reason (`icmp`, `timeout`, `503`, ...), from
    /// which SBC to which.
    pub failovers: Vec<MoveCount>,
    /// Failbacks counted from which SBC to which (`reason` is `failback`).
    pub failbacks: Vec<MoveCount>,
    pub calls: CallStats,
    /// One point per stats interval: what the plots draw.
    pub timeline: Vec<TimelinePoint>,
    /// Failover/failback waves on the time axis: consecutive moves of the
    /// same kind between the same SBCs within one interval make one entry.
    pub faults: Vec<FaultEntry>,
    /// The `--threshold` results, in the order given (empty without any).
    pub thresholds: Vec<ThresholdResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardInfo {
    /// 0-based.
    pub index: u32,
    pub count: u32,
    /// First and last user of this shard's slice (inclusive).
    pub first_user: String,
    pub last_user: String,
    pub lines: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LineCounts {
    pub configured: u64,
    /// Registered at least once during the run.
    pub ever_registered: u64,
    /// Registered when the run ended (before the un-REGISTERs).
    pub registered_at_end: u64,
    /// Never registered.
    pub never_registered: u64,
    /// In back-off when the run ended.
    pub backing_off_at_end: u64,
    /// Registered lines per SBC address when the run ended.
    pub registered_by_sbc_at_end: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RegistrationStats {
    /// REGISTER transactions started (`registering` events), by purpose
    /// (`initial`, `refresh`, `authenticate`, `failover`, `failback`,
    /// `unregister`, ...).
    pub registers_by_purpose: BTreeMap<String, u64>,
    /// `registered` events.
    pub registered: u64,
    /// REGISTER transactions started, un-REGISTERs excluded (they end a
    /// binding, they do not make one) / `registered` events; NaN (`null`)
    /// without any `registered` event.
    #[serde(deserialize_with = "f64_or_null")]
    pub registers_per_registration: f64,
    /// REGISTER retransmissions (UDP Timer E), when the fleet counts them.
    pub retransmissions: u64,
    /// `registration_failed` events by reason.
    pub failures_by_reason: BTreeMap<String, u64>,
    /// `backoff` events.
    pub backoffs: u64,
    /// `backoff` events by what ended the attempt before them: a route
    /// failure (`flow_lost` for a TCP/TLS connection the SBC dropped,
    /// `keepalive_lost`, `timeout`, ...), a `registration_failed` reason,
    /// or `dns_failed`.
    #[serde(default)]
    pub backoffs_by_reason: BTreeMap<String, u64>,
    /// `dns_failed` events by query type (`NAPTR`, `SRV`, `A`, `routes`).
    #[serde(default)]
    pub dns_failures: BTreeMap<String, u64>,
}

/// A latency histogram: the HdrHistogram itself (V2 serialization, base64;
/// what merges) and the figures read from it (what people read).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Histogram {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub hdr_v2_base64: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MoveCount {
    pub reason: String,
    /// SBC address left (`host:port` as the events' `route.address`).
    pub from: String,
    pub to: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CallStats {
    pub attempted: u64,
    pub answered: u64,
    /// Ended before being answered (any reason but a local cancel at
    /// the end of the run).
    pub failed: u64,
    /// Answered calls that ended by a hangup (ours after `--hold` or at
    /// the end of the run, or the far end's).
    pub completed: u64,
    /// Answered calls that ended otherwise: torn down by a failover
    /// (`registrar_changed`), a transport error, a lost dialog, ...
    #[serde(default)]
    pub dropped: u64,
    /// Ended calls by `reason`; calls still up when the run ended and hung
    /// up by it count as `run_ended`.
    pub ended_by_reason: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// End of the interval, from the start.
    pub t_ms: u64,
    /// Registered lines per SBC at `t_ms`.
    pub registered_by_sbc: BTreeMap<String, u64>,
    /// Lines registered (any SBC), failed, in back-off at `t_ms`.
    pub registered: u64,
    pub backing_off: u64,
    /// REGISTER transactions started during the interval.
    pub registers: u64,
    /// REGISTER transactions per second over the interval.
    #[serde(deserialize_with = "f64_or_null")]
    pub register_rate: f64,
    /// Registration latency of the attempts that ended in the interval
    /// (0 when none ended).
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub failovers: u64,
    pub failbacks: u64,
    pub calls_up: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultEntry {
    /// When the first line of the wave moved.
    pub t_ms: u64,
    /// When the last line of the wave moved (added within version 1:
    /// absent in older summaries, read as 0, i.e. "same as `t_ms`").
    /// `last_t_ms - t_ms` is how long the wave took, what the
    /// `failover_ms_max` threshold reads.
    #[serde(default)]
    pub last_t_ms: u64,
    /// `failover` or `failback`.
    pub kind: String,
    /// The failover reason (`failback` for a failback).
    pub reason: String,
    pub from: String,
    pub to: String,
    pub lines: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    /// As given: `registered_ratio>=0.999`.
    pub expr: String,
    /// The metric's value at the end of the run; NaN (written `null`)
    /// when it has none, e.g. a ratio of calls without any call.
    #[serde(deserialize_with = "f64_or_null")]
    pub value: f64,
    pub passed: bool,
    /// Why it failed when the comparison itself could not be made (added
    /// within version 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// serde_json writes a NaN or infinite `f64` as `null`; read it back as
/// NaN so a summary with a 0/0 ratio is still readable by `merge` and the
/// report.
fn f64_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
