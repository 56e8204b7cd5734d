//! Line events → the timeline and the summary of a load run.
//!
//! The recorder is pure: it is fed [`LineEvent`]s (each stamped with its
//! `Instant`) and told when an interval ends, so tests drive it with
//! synthetic events and explicit times. It keeps a few bytes per line
//! (where it is registered, whether it backs off, its open attempt) and
//! fleet-wide counters, never the events themselves.
//!
//! # Registration latency
//!
//! An *attempt* opens at the first REGISTER of an exchange the line starts
//! when none is open (purpose `initial`, `failover`, `failback` or
//! `refresh`); `authenticate`/`min_expires` follow-ups and the `failover`
//! REGISTERs of the same walk belong to it. It ends at the next
//! `registered` (recorded), or at `registration_failed`, `backoff` or an
//! un-REGISTER (not recorded). The latency recorded is from the attempt's
//! first REGISTER to its 2xx, for attempts that sent an `initial`,
//! `failover` or `failback` REGISTER: a failover met at a refresh counts
//! from that refresh (the time the line was at risk), a refresh answered on
//! its own SBC is not counted (the binding never lapsed).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sipfleet_actors::events::{DnsEventKind, LineEvent, LineEventBody};
use sipfleet_protocol::call::{CallEventKind, EndReason};
use sipfleet_protocol::registration::{EventKind, Purpose};

use super::histogram;
use super::summary::{
    CallStats, FaultEntry, LineCounts, MoveCount, RegistrationStats, ShardInfo, Summary,
    TimelinePoint, SCHEMA,
};

/// What the recorder keeps of one line.
#[derive(Clone, Debug, Default)]
struct LineState {
    /// The SBC holding its binding.
    sbc: Option<SocketAddr>,
    backing_off: bool,
    ever_registered: bool,
    attempt: Option<Attempt>,
    /// Reason of the last `route_failed`: what the next `failover` is for.
    last_route_failure: Option<&'static str>,
    /// Why the line's attempt ended without a binding (a route failure or
    /// the registration's failure reason): what its next `backoff` is for.
    last_failure: Option<&'static str>,
    /// The fault entry (wave) this line last counted in, per kind
    /// (failover, failback): a line that moves twice in one wave counts
    /// once.
    waves: [Option<usize>; 2],
}

#[derive(Clone, Copy, Debug)]
struct Attempt {
    started: Instant,
    /// Sent an initial, failover or failback REGISTER: its latency counts.
    counted: bool,
}

/// A failover/failback wave being grown: its entry and its last move.
struct OpenWave {
    entry: usize,
    last: Instant,
}

type MoveKey = (&'static str, String, String, String);

pub struct Recorder {
    start: Instant,
    interval: Duration,
    lines: Vec<LineState>,
    registered: u64,
    backing_off: u64,
    by_sbc: BTreeMap<SocketAddr, u64>,
    registers_by_purpose: BTreeMap<String, u64>,
    registered_events: u64,
    failures_by_reason: BTreeMap<String, u64>,
    backoffs: u64,
    backoffs_by_reason: BTreeMap<String, u64>,
    dns_failures: BTreeMap<String, u64>,
    latency: Histogram<u64>,
    /// Attempts ended in the current interval.
    interval_latency: Histogram<u64>,
    interval_registers: u64,
    interval_failovers: u64,
    interval_failbacks: u64,
    interval_start: Instant,
    moves: BTreeMap<MoveKey, u64>,
    faults: Vec<FaultEntry>,
    open_waves: HashMap<MoveKey, OpenWave>,
    /// Calls that have not ended, by Call-ID: answered yet?
    calls: HashMap<String, bool>,
    call_stats: CallStats,
    calls_up: u64,
    /// The run is stopping: a call we cancel now is not a failure.
    stopping: bool,
    timeline: Vec<TimelinePoint>,
    at_end: Option<LineCounts>,
}

impl Recorder {
    /// A recorder for lines `reg.1..=reg.lines`, its clock starting at
    /// `start`, its timeline at `interval` (at least 1 ms).
    pub fn new(start: Instant, interval: Duration, lines: usize) -> Self {
        Recorder {
            start,
            interval: interval.max(Duration::from_millis(1)),
            lines: vec![LineState::default(); lines],
            registered: 0,
            backing_off: 0,
            by_sbc: BTreeMap::new(),
            registers_by_purpose: BTreeMap::new(),
            registered_events: 0,
            failures_by_reason: BTreeMap::new(),
            backoffs: 0,
            backoffs_by_reason: BTreeMap::new(),
            dns_failures: BTreeMap::new(),
            latency: histogram::new_histogram(),
            interval_latency: histogram::new_histogram(),
            interval_registers: 0,
            interval_failovers: 0,
            interval_failbacks: 0,
            interval_start: start,
            moves: BTreeMap::new(),
            faults: Vec::new(),
            open_waves: HashMap::new(),
            calls: HashMap::new(),
            call_stats: CallStats::default(),
            calls_up: 0,
            stopping: false,
            timeline: Vec::new(),
            at_end: None,
        }
    }

    /// The progress figures the timeline point does not carry.
    pub fn extra(&self) -> super::progress::Extra {
        super::progress::Extra {
            never_registered: self.lines.iter().filter(|l| !l.ever_registered).count() as u64,
            failures: self.failures_by_reason.values().sum(),
        }
    }

    /// Lines registered now, by index (`reg.x` is index + 1): what the
    /// call generator picks from.
    pub fn is_registered(&self, index: usize) -> bool {
        self.lines.get(index).is_some_and(|l| l.sbc.is_some())
    }

    pub fn record(&mut self, event: &LineEvent) {
        let Some(i) = (event.line as usize).checked_sub(1) else {
            return;
        };
        if i >= self.lines.len() {
            return;
        }
        match &event.event {
            LineEventBody::Registration(r) => {
                let route = r.route.as_ref().map(|r| r.addr);
                self.registration(i, event.at, &r.kind, route)
            }
            LineEventBody::Call(c) => self.call(&c.kind, &c.call_id),
            LineEventBody::Dns(d) if d.kind == DnsEventKind::Failed => {
                *self
                    .dns_failures
                    .entry(d.query_type.to_string())
                    .or_default() += 1;
                self.lines[i].last_failure = Some("dns_failed");
            }
            _ => {}
        }
    }

    fn registration(&mut self, i: usize, at: Instant, kind: &EventKind, route: Option<SocketAddr>) {
        match kind {
            EventKind::Registering { purpose, .. } => {
                *self
                    .registers_by_purpose
                    .entry(purpose.as_str().to_string())
                    .or_default() += 1;
                self.interval_registers += 1;
                self.set_backing_off(i, false);
                let line = &mut self.lines[i];
                let counted = matches!(
                    purpose,
                    Purpose::Initial | Purpose::Failover | Purpose::Failback
                );
                match (purpose, &mut line.attempt) {
                    (Purpose::Unregister, _) => line.attempt = None,
                    (_, Some(a)) => a.counted |= counted,
                    (_, None) => {
                        line.attempt = Some(Attempt {
                            started: at,
                            counted,
                        })
                    }
                }
            }
            EventKind::Registered { .. } => {
                self.registered_events += 1;
                self.set_backing_off(i, false);
                if let Some(a) = self.lines[i].attempt.take().filter(|a| a.counted) {
                    let ms = at.saturating_duration_since(a.started).as_millis() as u64;
                    self.latency.saturating_record(ms);
                    self.interval_latency.saturating_record(ms);
                }
                let line = &mut self.lines[i];
                line.ever_registered = true;
                let old = std::mem::replace(&mut line.sbc, route);
                self.leave(old);
                if let Some(sbc) = route {
                    self.registered += 1;
                    *self.by_sbc.entry(sbc).or_default() += 1;
                }
            }
            EventKind::Unregistered { .. } => {
                let old = self.lines[i].sbc.take();
                self.leave(old);
            }
            EventKind::RegistrationFailed { reason, .. } => {
                self.lines[i].last_failure = Some(reason.as_str());
                *self
                    .failures_by_reason
                    .entry(reason.as_str().to_string())
                    .or_default() += 1;
                self.lines[i].attempt = None;
            }
            EventKind::Backoff { .. } => {
                self.backoffs += 1;
                let reason = self.lines[i].last_failure.take().unwrap_or("unknown");
                *self
                    .backoffs_by_reason
                    .entry(reason.to_string())
                    .or_default() += 1;
                self.lines[i].attempt = None;
                self.set_backing_off(i, true);
            }
            EventKind::RouteFailed { reason, .. } => {
                self.lines[i].last_route_failure = Some(reason.as_str());
                self.lines[i].last_failure = Some(reason.as_str());
            }
            EventKind::Failover { from } => {
                let reason = self.lines[i].last_route_failure.unwrap_or("unknown");
                self.interval_failovers += 1;
                self.moved(i, at, "failover", reason, from.addr, route);
            }
            EventKind::Failback { from } => {
                self.interval_failbacks += 1;
                self.moved(i, at, "failback", "failback", from.addr, route);
            }
            EventKind::SubscriptionsInvalidated { .. } | EventKind::FailbackHeld { .. } => {}
        }
    }

    fn leave(&mut self, sbc: Option<SocketAddr>) {
        if let Some(sbc) = sbc {
            self.registered -= 1;
            if let Some(n) = self.by_sbc.get_mut(&sbc) {
                *n -= 1;
                if *n == 0 {
                    self.by_sbc.remove(&sbc);
                }
            }
        }
    }

    fn set_backing_off(&mut self, i: usize, on: bool) {
        let line = &mut self.lines[i];
        if line.backing_off != on {
            line.backing_off = on;
            if on {
                self.backing_off += 1;
            } else {
                self.backing_off -= 1;
            }
        }
    }

    /// One line moved: counted by reason and SBCs, and grown into the
    /// open wave of the same move when it came within one interval of
    /// that wave's last move (a wave's `lines` counts each line once).
    fn moved(
        &mut self,
        line: usize,
        at: Instant,
        kind: &'static str,
        reason: &'static str,
        from: SocketAddr,
        to: Option<SocketAddr>,
    ) {
        let to = to.map(|a| a.to_string()).unwrap_or_default();
        let key: MoveKey = (kind, reason.to_string(), from.to_string(), to);
        *self.moves.entry(key.clone()).or_default() += 1;
        let t_ms = self.t_ms(at);
        let slot = usize::from(kind == "failback");
        match self.open_waves.get_mut(&key) {
            Some(w) if at.saturating_duration_since(w.last) <= self.interval => {
                w.last = at;
                let entry = &mut self.faults[w.entry];
                entry.last_t_ms = t_ms;
                let seen = &mut self.lines[line].waves[slot];
                if *seen != Some(w.entry) {
                    *seen = Some(w.entry);
                    entry.lines += 1;
                }
            }
            _ => {
                self.faults.push(FaultEntry {
                    t_ms,
                    last_t_ms: t_ms,
                    kind: kind.to_string(),
                    reason: key.1.clone(),
                    from: key.2.clone(),
                    to: key.3.clone(),
                    lines: 1,
                });
                let entry = self.faults.len() - 1;
                self.lines[line].waves[slot] = Some(entry);
                self.open_waves.insert(key, OpenWave { entry, last: at });
            }
        }
    }

    fn call(&mut self, kind: &CallEventKind, call_id: &str) {
        match kind {
            CallEventKind::Started { .. } => {
                self.call_stats.attempted += 1;
                self.calls.insert(call_id.to_string(), false);
            }
            CallEventKind::Answered => {
                if let Some(answered) = self.calls.get_mut(call_id) {
                    if !*answered {
                        *answered = true;
                        self.call_stats.answered += 1;
                        self.calls_up += 1;
                    }
                }
            }
            CallEventKind::Ended { reason, .. } => {
                let hung_up = matches!(reason, EndReason::LocalHangup | EndReason::RemoteHangup);
                let by_run_end = self.stopping
                    && matches!(reason, EndReason::LocalHangup | EndReason::Cancelled);
                let key = if by_run_end {
                    "run_ended"
                } else {
                    reason.as_str()
                };
                *self
                    .call_stats
                    .ended_by_reason
                    .entry(key.to_string())
                    .or_default() += 1;
                match self.calls.remove(call_id) {
                    Some(true) => {
                        if hung_up {
                            self.call_stats.completed += 1;
                        } else {
                            self.call_stats.dropped += 1;
                        }
                        self.calls_up -= 1;
                    }
                    Some(false) if !(self.stopping && *reason == EndReason::Cancelled) => {
                        self.call_stats.failed += 1;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// A call the line refused to place (not registered, busy): attempted
    /// and failed, `ended_by_reason["not_placed"]`.
    pub fn call_not_placed(&mut self) {
        self.call_stats.attempted += 1;
        self.call_stats.failed += 1;
        *self
            .call_stats
            .ended_by_reason
            .entry("not_placed".into())
            .or_default() += 1;
    }

    fn t_ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_millis() as u64
    }

    /// Ends the interval at `now`: the timeline point for `t_ms` (the end
    /// of the interval on the run's clock, a multiple of the interval so
    /// that shards add up bucket by bucket). The rate is over the time
    /// since the previous point.
    pub fn close_interval(&mut self, now: Instant, t_ms: u64) -> TimelinePoint {
        let secs = now
            .saturating_duration_since(self.interval_start)
            .as_secs_f64();
        let (p50, p99) = if self.interval_latency.is_empty() {
            (0, 0)
        } else {
            (
                self.interval_latency.value_at_quantile(0.5),
                self.interval_latency.value_at_quantile(0.99),
            )
        };
        let point = TimelinePoint {
            t_ms,
            registered_by_sbc: self
                .by_sbc
                .iter()
                .map(|(a, n)| (a.to_string(), *n))
                .collect(),
            registered: self.registered,
            backing_off: self.backing_off,
            registers: self.interval_registers,
            register_rate: if secs > 0.0 {
                self.interval_registers as f64 / secs
            } else {
                0.0
            },
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            failovers: self.interval_failovers,
            failbacks: self.interval_failbacks,
            calls_up: self.calls_up,
        };
        self.interval_latency.reset();
        self.interval_registers = 0;
        self.interval_failovers = 0;
        self.interval_failbacks = 0;
        self.interval_start = now;
        self.timeline.push(point.clone());
        point
    }

    /// The end of the interval `now` falls in, on the run's clock: where a
    /// last, partial interval is put.
    pub fn interval_end_ms(&self, now: Instant) -> u64 {
        let step = self.interval.as_millis().max(1) as u64;
        let t = self.t_ms(now);
        let end = t.div_ceil(step).max(1) * step;
        match self.timeline.last() {
            Some(last) if last.t_ms >= end => last.t_ms + step,
            _ => end,
        }
    }

    /// The run is ending: lines as they are now are the summary's "at
    /// end" (before the un-REGISTERs); calls we cancel from here on are
    /// not failures.
    pub fn mark_end(&mut self) {
        self.stopping = true;
        let configured = self.lines.len() as u64;
        let ever = self.lines.iter().filter(|l| l.ever_registered).count() as u64;
        self.at_end = Some(LineCounts {
            configured,
            ever_registered: ever,
            registered_at_end: self.registered,
            never_registered: configured - ever,
            backing_off_at_end: self.backing_off,
            registered_by_sbc_at_end: self
                .by_sbc
                .iter()
                .map(|(a, n)| (a.to_string(), *n))
                .collect(),
        });
    }

    /// The summary of the run so far; `end` is when the shutdown ended.
    pub fn summary(
        &self,
        started_unix_ms: u64,
        end: Instant,
        shard: ShardInfo,
        retransmissions: u64,
    ) -> Summary {
        let lines = match &self.at_end {
            Some(l) => l.clone(),
            None => {
                let mut probe = Recorder::new(self.start, self.interval, 0);
                probe.lines = self.lines.clone();
                probe.registered = self.registered;
                probe.backing_off = self.backing_off;
                probe.by_sbc = self.by_sbc.clone();
                probe.mark_end();
                probe.at_end.unwrap_or_default()
            }
        };
        let started: u64 = self
            .registers_by_purpose
            .iter()
            .filter(|(p, _)| p.as_str() != Purpose::Unregister.as_str())
            .map(|(_, n)| n)
            .sum();
        let moves = |kind: &str| -> Vec<MoveCount> {
            self.moves
                .iter()
                .filter(|(k, _)| k.0 == kind)
                .map(|(k, n)| MoveCount {
                    reason: k.1.clone(),
                    from: k.2.clone(),
                    to: k.3.clone(),
                    count: *n,
                })
                .collect()
        };
        Summary {
            schema: SCHEMA.to_string(),
            started_unix_ms,
            duration_ms: self.t_ms(end),
            requested_duration_ms: None,
            interrupted: false,
            shards: vec![shard],
            lines,
            registrations: RegistrationStats {
                registers_by_purpose: self.registers_by_purpose.clone(),
                registered: self.registered_events,
                registers_per_registration: if self.registered_events == 0 {
                    f64::NAN
                } else {
                    started as f64 / self.registered_events as f64
                },
                retransmissions,
                failures_by_reason: self.failures_by_reason.clone(),
                backoffs: self.backoffs,
                backoffs_by_reason: self.backoffs_by_reason.clone(),
                dns_failures: self.dns_failures.clone(),
            },
            register_latency_ms: histogram::encode(&self.latency),
            failovers: moves("failover"),
            failbacks: moves("failback"),
            calls: self.call_stats.clone(),
            timeline: self.timeline.clone(),
            faults: self.faults.clone(),
            thresholds: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::call::{CallDirection, CallEvent};
    use sipfleet_protocol::registration::{Event, FailReason, RouteFailReason, UnregisterReason};
    use sipfleet_protocol::route::{Route, RouteSource, Transport};

    fn route(last: u8) -> Route {
        Route {
            transport: Transport::Udp,
            host: format!("sbc{last}.lab"),
            addr: format!("127.0.0.{last}:5060").parse().unwrap(),
            group: 0,
            priority: 10,
            weight: 0,
            source: RouteSource::Network,
        }
    }

    struct Feed {
        rec: Recorder,
        start: Instant,
    }

    impl Feed {
        fn new(lines: usize) -> Self {
            let start = Instant::now();
            Feed {
                rec: Recorder::new(start, Duration::from_secs(1), lines),
                start,
            }
        }

        fn reg(&mut self, ms: u64, line: u32, sbc: u8, kind: EventKind) {
            self.rec.record(&LineEvent {
                at: self.start + Duration::from_millis(ms),
                line,
                event: LineEventBody::Registration(Event {
                    kind,
                    route: Some(route(sbc)),
                    call_id: format!("c{line}"),
                }),
            });
        }

        fn registering(&mut self, ms: u64, line: u32, sbc: u8, purpose: Purpose) {
            let kind = EventKind::Registering {
                cseq: 1,
                expires: 60,
                purpose,
            };
            self.reg(ms, line, sbc, kind);
        }

        fn registered(&mut self, ms: u64, line: u32, sbc: u8) {
            let kind = EventKind::Registered {
                expires: Duration::from_secs(60),
                primary: sbc == 11,
            };
            self.reg(ms, line, sbc, kind);
        }

        fn call(&mut self, ms: u64, id: &str, kind: CallEventKind) {
            self.rec.record(&LineEvent {
                at: self.start + Duration::from_millis(ms),
                line: 1,
                event: LineEventBody::Call(CallEvent {
                    kind,
                    call_id: id.into(),
                    route: route(11),
                }),
            });
        }

        fn close(&mut self, ms: u64) -> TimelinePoint {
            let at = self.start + Duration::from_millis(ms);
            self.rec.close_interval(at, ms)
        }

        fn summary(&self, ms: u64) -> Summary {
            let shard = ShardInfo {
                index: 0,
                count: 1,
                first_user: "1".into(),
                last_user: "3".into(),
                lines: 3,
            };
            self.rec
                .summary(0, self.start + Duration::from_millis(ms), shard, 0)
        }
    }

    #[test]
    fn registrations_latency_and_timeline() {
        let mut f = Feed::new(3);
        for line in 1..=3 {
            f.registering(10 * u64::from(line), line, 11, Purpose::Initial);
            f.registering(10 * u64::from(line) + 5, line, 11, Purpose::Authenticate);
        }
        f.registered(40, 1, 11);
        f.registered(60, 2, 11);
        let p = f.close(1000);
        assert_eq!(p.t_ms, 1000);
        assert_eq!(p.registered, 2);
        assert_eq!(p.registers, 6);
        assert!((p.register_rate - 6.0).abs() < 1e-9);
        assert_eq!(p.registered_by_sbc["127.0.0.11:5060"], 2);
        // 30 ms and 40 ms.
        assert_eq!((p.latency_p50_ms, p.latency_p99_ms), (30, 40));
        // Line 3 fails and backs off.
        f.reg(
            1500,
            3,
            11,
            EventKind::RegistrationFailed {
                status: Some(403),
                reason: FailReason::Denied,
            },
        );
        f.reg(
            1500,
            3,
            11,
            EventKind::Backoff {
                wait: Duration::from_secs(5),
                failures: 0,
            },
        );
        // A refresh answered on its own SBC is not a latency sample.
        f.registering(1600, 1, 11, Purpose::Refresh);
        f.registered(1900, 1, 11);
        let p = f.close(2000);
        assert_eq!((p.registered, p.backing_off, p.registers), (2, 1, 1));
        assert_eq!((p.latency_p50_ms, p.latency_p99_ms), (0, 0));
        f.rec.mark_end();
        let s = f.summary(2500);
        assert_eq!(s.schema, SCHEMA);
        assert_eq!(s.duration_ms, 2500);
        assert_eq!(s.lines.configured, 3);
        assert_eq!(s.lines.ever_registered, 2);
        assert_eq!(s.lines.never_registered, 1);
        assert_eq!(s.lines.registered_at_end, 2);
        assert_eq!(s.lines.backing_off_at_end, 1);
        assert_eq!(s.registrations.registered, 3);
        assert_eq!(s.registrations.registers_by_purpose["initial"], 3);
        assert_eq!(s.registrations.registers_by_purpose["authenticate"], 3);
        assert_eq!(s.registrations.registers_by_purpose["refresh"], 1);
        assert!((s.registrations.registers_per_registration - 7.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.registrations.failures_by_reason["denied"], 1);
        assert_eq!(s.registrations.backoffs, 1);
        assert_eq!(s.registrations.backoffs_by_reason["denied"], 1);
        assert_eq!(s.register_latency_ms.count, 2);
        assert_eq!(s.register_latency_ms.max, 40);
        assert_eq!(s.timeline.len(), 2);
    }

    #[test]
    fn failover_and_failback_waves() {
        let mut f = Feed::new(3);
        for line in 1..=3 {
            f.registering(0, line, 11, Purpose::Initial);
            f.registered(20, line, 11);
        }
        // SBC 11 dies: each line's refresh meets ICMP, 400 ms apart.
        for (n, line) in (1..=3).enumerate() {
            let t = 5000 + 400 * n as u64;
            f.registering(t, line, 11, Purpose::Refresh);
            f.reg(
                t + 1,
                line,
                11,
                EventKind::RouteFailed {
                    reason: RouteFailReason::Icmp,
                    detail: None,
                },
            );
            f.reg(
                t + 1,
                line,
                11,
                EventKind::Unregistered {
                    reason: UnregisterReason::FailoverStarted,
                },
            );
            f.reg(t + 1, line, 12, EventKind::Failover { from: route(11) });
            f.registering(t + 1, line, 12, Purpose::Failover);
            f.registered(t + 21, line, 12);
        }
        let p = f.close(6000);
        assert_eq!(p.failovers, 3);
        assert_eq!(p.registered_by_sbc.get("127.0.0.11:5060"), None);
        assert_eq!(p.registered_by_sbc["127.0.0.12:5060"], 3);
        // Failback much later: two lines (line 1 twice, its first failback
        // having failed over again), then one 5 s after (a new wave).
        f.reg(19_500, 1, 11, EventKind::Failback { from: route(12) });
        f.reg(19_501, 1, 12, EventKind::Failover { from: route(11) });
        for (line, t) in [(1, 20_000), (2, 20_300), (3, 25_000)] {
            f.reg(t, line, 11, EventKind::Failback { from: route(12) });
            f.registering(t, line, 11, Purpose::Failback);
            f.registered(t + 10, line, 11);
        }
        let s = f.summary(30_000);
        assert_eq!(
            s.failovers,
            [MoveCount {
                reason: "icmp".into(),
                from: "127.0.0.11:5060".into(),
                to: "127.0.0.12:5060".into(),
                count: 4
            }]
        );
        assert_eq!(s.failbacks[0].count, 4);
        assert_eq!(s.failbacks[0].reason, "failback");
        let waves: Vec<_> = s
            .faults
            .iter()
            .map(|w| {
                (
                    w.kind.as_str(),
                    w.reason.as_str(),
                    w.t_ms,
                    w.last_t_ms,
                    w.lines,
                )
            })
            .collect();
        assert_eq!(
            waves,
            [
                ("failover", "icmp", 5001, 5801, 3),
                ("failback", "failback", 19_500, 20_300, 2),
                ("failover", "icmp", 19_501, 19_501, 1),
                ("failback", "failback", 25_000, 25_000, 1),
            ]
        );
        // Failover latency counts from the refresh that met the failure.
        assert_eq!(s.register_latency_ms.count, 3 + 3 + 3);
        assert_eq!(s.register_latency_ms.max, 21);
        assert_eq!(s.lines.registered_by_sbc_at_end["127.0.0.11:5060"], 3);
    }

    #[test]
    fn calls_are_counted_by_outcome() {
        let mut f = Feed::new(1);
        let started = || CallEventKind::Started {
            direction: CallDirection::Outgoing,
            remote: "sip:9001@lab".into(),
        };
        let ended = |reason| CallEventKind::Ended {
            reason,
            status: None,
        };
        f.call(0, "a", started());
        f.call(10, "a", CallEventKind::Answered);
        f.call(0, "b", started());
        f.call(10, "b", ended(EndReason::Rejected));
        f.call(0, "c", started());
        f.call(10, "c", CallEventKind::Answered);
        // Torn down by a failover after the answer: dropped, not completed.
        f.call(0, "e", started());
        f.call(10, "e", CallEventKind::Answered);
        assert_eq!(f.close(1000).calls_up, 3);
        f.call(1200, "e", ended(EndReason::RegistrarChanged));
        f.call(1500, "a", ended(EndReason::LocalHangup));
        f.call(1500, "d", started());
        f.rec.call_not_placed();
        f.rec.mark_end();
        // At the end: the answered call hung up, the ringing one cancelled,
        // both by the run's end.
        f.call(2000, "c", ended(EndReason::LocalHangup));
        f.call(2000, "d", ended(EndReason::Cancelled));
        let c = f.summary(2000).calls;
        assert_eq!(
            (c.attempted, c.answered, c.completed, c.dropped, c.failed),
            (6, 3, 2, 1, 2)
        );
        assert_eq!(c.ended_by_reason["local_hangup"], 1);
        assert_eq!(c.ended_by_reason["run_ended"], 2);
        assert_eq!(c.ended_by_reason["registrar_changed"], 1);
        assert_eq!(c.ended_by_reason["rejected"], 1);
        assert_eq!(c.ended_by_reason["not_placed"], 1);
    }

    #[test]
    fn a_partial_last_interval_lands_on_the_grid() {
        let mut f = Feed::new(1);
        f.close(1000);
        let now = f.start + Duration::from_millis(1200);
        assert_eq!(f.rec.interval_end_ms(now), 2000);
        let now = f.start + Duration::from_millis(1000);
        assert_eq!(f.rec.interval_end_ms(now), 2000);
    }
}
