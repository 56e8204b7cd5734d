//! The fleet's metrics registry, in the Prometheus text exposition
//! (`prometheus-client`). Everything here is derived from the event
//! stream: [`FleetMetrics`] is one observer of the fleet's hub, fed every
//! event synchronously (it can never lag or miss one), so nothing on the
//! lines' hot path changes. Gauges (lines by state and registrar, calls by
//! state, flows) are set from the [`LineViews`] and the flow table when
//! the exposition is rendered.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sipfleet_lines` | gauge | `state` (starting, registering, registered, backing_off, failed, unregistering, unregistered) |
//! | `sipfleet_lines_per_registrar` | gauge | `transport`, `host`, `address` |
//! | `sipfleet_calls` | gauge | `state` (calling, incoming, ringing, answering, established, held) |
//! | `sipfleet_flows` | gauge | `transport` |
//! | `sipfleet_events_total` | counter | `event` (every event kind of the stream) |
//! | `sipfleet_route_failures_total` | counter | `reason`, `transport` |
//! | `sipfleet_failovers_total` / `_failbacks_total` / `_backoffs_total` | counter | `reason`: the line's last failure (`route_failed`/`registration_failed`/`unregistered` reason, or `dns_failed`), `none` |
//! | `sipfleet_register_transactions_total` | counter | `purpose` (initial, refresh, failover, failback, authenticate, min_expires, unregister) |
//! | `sipfleet_invite_transactions_total` | counter | `kind`: initial (an outgoing call's first INVITE), retry (the same Call-ID on the next route), reinvite (our hold/resume) |
//! | `sipfleet_subscribe_transactions_total` | counter | `package`, `outcome` (accepted, failed) |
//! | `sipfleet_calls_started_total` / `_calls_ended_total` | counter | `direction` / `reason` |
//! | `sipfleet_dns_failures_total` | counter | `query_type`, `event` (dns_failed, dns_restored) |
//! | `sipfleet_registration_latency_seconds` | histogram | from the `registering` that starts an exchange to its `registered` (challenge included) |
//! | `sipfleet_call_setup_seconds` | histogram | an outgoing call's `call_started` to `call_answered` |
//!
//! Not available from the events, so not here: retransmissions (no event
//! tells them), DNS queries and cache hits (the resolver counts neither),
//! non-2xx response times.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sipfleet_protocol::call::CallEventKind;
use sipfleet_protocol::registration::EventKind;
use sipfleet_protocol::route::Transport;
use sipfleet_protocol::subscription::SubscriptionEventKind;

use crate::events::{LineEvent, LineEventBody};
use crate::hub::EventObserver;
use crate::resolver::DnsStats;
use crate::views::LineViews;

type Labels = Vec<(&'static str, String)>;

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// Seconds, 5 ms to about 82 s (15 buckets, doubling): a registration
/// over a live SBC takes milliseconds, a walk over dead ones tens of
/// seconds.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

struct Counters {
    events: Family<Labels, Counter>,
    route_failures: Family<Labels, Counter>,
    failovers: Family<Labels, Counter>,
    failbacks: Family<Labels, Counter>,
    backoffs: Family<Labels, Counter>,
    registers: Family<Labels, Counter>,
    invites: Family<Labels, Counter>,
    subscribes: Family<Labels, Counter>,
    calls_started: Family<Labels, Counter>,
    calls_ended: Family<Labels, Counter>,
    dns: Family<Labels, Counter>,
    dns_queries: Family<Labels, Counter>,
    dns_cache_hits: Family<Labels, Counter>,
    dns_query_failures: Family<Labels, Counter>,
    registration_latency: Histogram,
    call_setup: Histogram,
}

struct Gauges {
    lines: Family<Labels, Gauge>,
    per_registrar: Family<Labels, Gauge>,
    calls: Family<Labels, Gauge>,
    flows: Family<Labels, Gauge>,
}

/// The metrics of one fleet; see the module docs.
pub struct FleetMetrics {
    views: Arc<LineViews>,
    counters: Counters,
    gauges: Gauges,
    /// The registry is only read to render; the lock keeps two renders
    /// from setting the gauges under each other.
    registry: Mutex<Registry>,
    /// The resolver's figures at the last render: the counters grow by the
    /// difference (the resolver counts; these only expose).
    dns_seen: Mutex<DnsStats>,
}

impl FleetMetrics {
    /// Metrics over `views` (which this observer keeps up to date: feed
    /// the events here, not to `views` too).
    pub fn new(views: Arc<LineViews>) -> Self {
        let counters = Counters {
            events: Family::default(),
            route_failures: Family::default(),
            failovers: Family::default(),
            failbacks: Family::default(),
            backoffs: Family::default(),
            registers: Family::default(),
            invites: Family::default(),
            subscribes: Family::default(),
            calls_started: Family::default(),
            calls_ended: Family::default(),
            dns: Family::default(),
            dns_queries: Family::default(),
            dns_cache_hits: Family::default(),
            dns_query_failures: Family::default(),
            registration_latency: latency_buckets(),
            call_setup: latency_buckets(),
        };
        let gauges = Gauges {
            lines: Family::default(),
            per_registrar: Family::default(),
            calls: Family::default(),
            flows: Family::default(),
        };
        let mut r = Registry::with_prefix("sipfleet");
        let c = &counters;
        let g = &gauges;
        r.register("lines", "Lines by registration state", g.lines.clone());
        r.register(
            "lines_per_registrar",
            "Registered lines per registrar",
            g.per_registrar.clone(),
        );
        r.register("calls", "Calls up, by state", g.calls.clone());
        r.register("flows", "Open flows by transport", g.flows.clone());
        r.register("events", "Events by kind", c.events.clone());
        r.register(
            "route_failures",
            "Route failures by reason and transport",
            c.route_failures.clone(),
        );
        r.register(
            "failovers",
            "Failovers by the line's last failure",
            c.failovers.clone(),
        );
        r.register(
            "failbacks",
            "Failbacks to the primary by the line's last failure",
            c.failbacks.clone(),
        );
        r.register(
            "backoffs",
            "Back-offs by the line's last failure",
            c.backoffs.clone(),
        );
        r.register(
            "register_transactions",
            "REGISTER transactions started, by purpose",
            c.registers.clone(),
        );
        r.register(
            "invite_transactions",
            "INVITE transactions started, by kind",
            c.invites.clone(),
        );
        r.register(
            "subscribe_transactions",
            "SUBSCRIBE transactions answered, by package and outcome",
            c.subscribes.clone(),
        );
        r.register(
            "calls_started",
            "Calls started by direction",
            c.calls_started.clone(),
        );
        r.register(
            "calls_ended",
            "Calls ended by reason",
            c.calls_ended.clone(),
        );
        r.register("dns_failures", "DNS trouble by query type", c.dns.clone());
        r.register(
            "dns_queries",
            "DNS questions sent to a server, by record type",
            c.dns_queries.clone(),
        );
        r.register(
            "dns_cache_hits",
            "DNS questions answered from the cache (live, static or restored), by record type",
            c.dns_cache_hits.clone(),
        );
        r.register(
            "dns_query_failures",
            "DNS questions the network did not answer with records, by record type",
            c.dns_query_failures.clone(),
        );
        r.register(
            "registration_latency_seconds",
            "From the REGISTER that starts an exchange to the binding",
            c.registration_latency.clone(),
        );
        r.register(
            "call_setup_seconds",
            "From an outgoing call's INVITE to its answer",
            c.call_setup.clone(),
        );
        FleetMetrics {
            views,
            counters,
            gauges,
            registry: Mutex::new(r),
            dns_seen: Mutex::new(DnsStats::default()),
        }
    }

    /// The views these metrics keep.
    pub fn views(&self) -> &Arc<LineViews> {
        &self.views
    }

    /// The exposition, with `flows` (open flows per transport, from the
    /// flow table) as `sipfleet_flows` and the resolver's `dns` figures as
    /// `sipfleet_dns_queries`, `_cache_hits` and `_query_failures`.
    pub fn render(&self, flows: &[(Transport, usize)], dns: &DnsStats) -> String {
        let Ok(registry) = self.registry.lock() else {
            return String::new();
        };
        if let Ok(mut guard) = self.dns_seen.lock() {
            let seen = &mut *guard;
            let c = &self.counters;
            for (family, now, before) in [
                (&c.dns_queries, &dns.queries, &mut seen.queries),
                (&c.dns_cache_hits, &dns.cache_hits, &mut seen.cache_hits),
                (&c.dns_query_failures, &dns.failures, &mut seen.failures),
            ] {
                for (rtype, n) in now {
                    let old = before.insert(rtype, *n).unwrap_or(0);
                    family
                        .get_or_create(&labels([("type", rtype)]))
                        .inc_by(n.saturating_sub(old));
                }
            }
        }
        let g = &self.gauges;
        g.lines.clear();
        for (state, n) in self.views.count_by_state() {
            set(&g.lines, labels([("state", state.as_str())]), n);
        }
        g.per_registrar.clear();
        for ((transport, host, address), n) in self.views.count_by_registrar() {
            let l = labels([
                ("transport", &transport),
                ("host", &host),
                ("address", &address),
            ]);
            set(&g.per_registrar, l, n);
        }
        g.calls.clear();
        for (state, n) in self.views.calls_by_state() {
            set(&g.calls, labels([("state", state)]), n);
        }
        g.flows.clear();
        for t in [Transport::Udp, Transport::Tcp, Transport::Tls] {
            let n = flows.iter().filter(|(f, _)| *f == t).map(|(_, n)| n).sum();
            set(&g.flows, labels([("transport", t.as_str())]), n);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }

    fn count(&self, event: &LineEvent) {
        let derived = self.views.apply(event);
        let c = &self.counters;
        inc(&c.events, labels([("event", event.event.name())]));
        let reason = derived.failure_reason.as_deref().unwrap_or("none");
        if let Some(d) = derived.registration_latency {
            c.registration_latency.observe(d.as_secs_f64());
        }
        if let Some(d) = derived.call_setup {
            c.call_setup.observe(d.as_secs_f64());
        }
        match &event.event {
            LineEventBody::Registration(e) => match &e.kind {
                EventKind::Registering { purpose, .. } => {
                    inc(&c.registers, labels([("purpose", purpose.as_str())]));
                }
                EventKind::RouteFailed { reason, .. } => {
                    let transport = e.route.as_ref().map_or("", |r| r.transport.as_str());
                    inc(
                        &c.route_failures,
                        labels([("reason", reason.as_str()), ("transport", transport)]),
                    );
                }
                EventKind::Failover { .. } => inc(&c.failovers, labels([("reason", reason)])),
                EventKind::Failback { .. } => inc(&c.failbacks, labels([("reason", reason)])),
                EventKind::Backoff { .. } => inc(&c.backoffs, labels([("reason", reason)])),
                _ => {}
            },
            LineEventBody::Call(e) => match &e.kind {
                CallEventKind::Started { direction, .. } => {
                    inc(
                        &c.calls_started,
                        labels([("direction", direction.as_str())]),
                    );
                    if *direction == sipfleet_protocol::call::CallDirection::Outgoing {
                        inc(&c.invites, labels([("kind", "initial")]));
                    }
                }
                CallEventKind::RouteFailed { budget_over: false } => {
                    inc(&c.invites, labels([("kind", "retry")]));
                }
                CallEventKind::Held { by_remote: false }
                | CallEventKind::Resumed { by_remote: false }
                | CallEventKind::ReinviteFailed { .. } => {
                    inc(&c.invites, labels([("kind", "reinvite")]));
                }
                CallEventKind::Ended { reason, .. } => {
                    inc(&c.calls_ended, labels([("reason", reason.as_str())]));
                }
                _ => {}
            },
            LineEventBody::Subscription(s) => {
                let outcome = match s.kind {
                    SubscriptionEventKind::Subscribed { .. }
                    | SubscriptionEventKind::Refreshed { .. } => "accepted",
                    SubscriptionEventKind::Failed { .. } => "failed",
                    _ => return,
                };
                inc(
                    &c.subscribes,
                    labels([("package", s.package.as_str()), ("outcome", outcome)]),
                );
            }
            LineEventBody::Dns(d) => {
                inc(
                    &c.dns,
                    labels([("query_type", d.query_type), ("event", event.event.name())]),
                );
            }
            LineEventBody::LineSeize(_) | LineEventBody::Resource(_) => {}
        }
    }
}

fn inc(family: &Family<Labels, Counter>, l: Labels) {
    family.get_or_create(&l).inc();
}

fn set(family: &Family<Labels, Gauge>, l: Labels, n: usize) {
    family
        .get_or_create(&l)
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

impl EventObserver for FleetMetrics {
    fn observe(&self, event: &LineEvent) {
        self.count(event);
    }
}

#[cfg(test)]
mod tests {
    /// What a resolver reports after a few resolutions.
    fn dns_stats() -> super::DnsStats {
        let mut s = super::DnsStats::default();
        s.queries.insert("SRV", 2);
        s.cache_hits.insert("A", 5);
        s.failures.insert("NAPTR", 1);
        s
    }

    use super::*;
    use sipfleet_protocol::call::{CallDirection, CallEvent, EndReason};
    use sipfleet_protocol::registration::{Event, Purpose, RouteFailReason};
    use sipfleet_protocol::route::{Route, RouteSource};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    fn route(n: u8) -> Route {
        Route {
            transport: Transport::Udp,
            host: format!("sbc{n}.lab"),
            addr: format!("127.0.0.1{n}:5060").parse().unwrap(),
            group: 0,
            priority: 10,
            weight: 0,
            source: RouteSource::Network,
        }
    }

    struct Feed {
        metrics: FleetMetrics,
        start: Instant,
    }

    impl Feed {
        fn new(lines: &[u32]) -> Self {
            let views = Arc::new(LineViews::default());
            for l in lines {
                views.add_line(*l);
            }
            Feed {
                metrics: FleetMetrics::new(views),
                start: Instant::now(),
            }
        }

        fn reg(&self, ms: u64, line: u32, kind: EventKind, sbc: u8) {
            self.body(
                ms,
                line,
                Event {
                    kind,
                    route: Some(route(sbc)),
                    call_id: "r".into(),
                }
                .into(),
            );
        }

        fn call(&self, ms: u64, line: u32, kind: CallEventKind, id: &str) {
            self.body(
                ms,
                line,
                CallEvent {
                    kind,
                    call_id: id.into(),
                    route: route(1),
                }
                .into(),
            );
        }

        fn body(&self, ms: u64, line: u32, event: LineEventBody) {
            self.metrics.observe(&LineEvent {
                at: self.start + Duration::from_millis(ms),
                line,
                event,
            });
        }
    }

    fn registering(purpose: Purpose) -> EventKind {
        EventKind::Registering {
            cseq: 1,
            expires: 3600,
            purpose,
        }
    }

    fn registered() -> EventKind {
        EventKind::Registered {
            expires: Duration::from_secs(3600),
            primary: true,
        }
    }

    /// The exposition as `name{labels}` -> value, a sample per line (the
    /// text format: `# HELP`/`# TYPE`/`# EOF` lines, then samples).
    fn parse(text: &str) -> HashMap<String, f64> {
        assert!(text.ends_with("# EOF\n"), "{text}");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (key, value) = l.rsplit_once(' ').expect("name value");
                (key.to_owned(), value.parse().expect("a number"))
            })
            .collect()
    }

    #[test]
    fn counters_gauges_and_histograms_follow_the_events() {
        let feed = Feed::new(&[1, 2, 3]);
        // Line 1 registers on SBC 1 in 120 ms (challenge included).
        feed.reg(0, 1, registering(Purpose::Initial), 1);
        feed.reg(40, 1, registering(Purpose::Authenticate), 1);
        feed.reg(120, 1, registered(), 1);
        // Line 2: SBC 1 times out, failover to SBC 2, registered there in
        // 3.6 s from its first REGISTER.
        feed.reg(0, 2, registering(Purpose::Initial), 1);
        feed.reg(
            3_500,
            2,
            EventKind::RouteFailed {
                reason: RouteFailReason::Timeout,
                detail: None,
            },
            1,
        );
        feed.reg(3_500, 2, EventKind::Failover { from: route(1) }, 2);
        feed.reg(3_500, 2, registering(Purpose::Failover), 2);
        feed.reg(3_600, 2, registered(), 2);
        // Line 3 is still starting. Line 1 places a call, answered in
        // 250 ms, and a second one, ringing.
        feed.call(
            1_000,
            1,
            CallEventKind::Started {
                direction: CallDirection::Outgoing,
                remote: "sip:2000@lab".into(),
            },
            "c1",
        );
        feed.call(1_250, 1, CallEventKind::Answered, "c1");
        feed.call(
            1_260,
            1,
            CallEventKind::Established { remote_rtp: None },
            "c1",
        );
        feed.call(
            2_000,
            1,
            CallEventKind::Started {
                direction: CallDirection::Outgoing,
                remote: "sip:3000@lab".into(),
            },
            "c2",
        );
        feed.call(2_100, 1, CallEventKind::Ringing, "c2");

        let m = parse(
            &feed
                .metrics
                .render(&[(Transport::Udp, 2), (Transport::Tls, 1)], &dns_stats()),
        );
        let get = |k: &str| m.get(k).copied().unwrap_or_else(|| panic!("{k} in {m:#?}"));
        assert_eq!(get(r#"sipfleet_lines{state="registered"}"#), 2.0);
        assert_eq!(get(r#"sipfleet_lines{state="starting"}"#), 1.0);
        assert_eq!(get(r#"sipfleet_lines{state="backing_off"}"#), 0.0);
        assert_eq!(
            get(
                r#"sipfleet_lines_per_registrar{transport="udp",host="sbc1.lab",address="127.0.0.11:5060"}"#
            ),
            1.0
        );
        assert_eq!(
            get(
                r#"sipfleet_lines_per_registrar{transport="udp",host="sbc2.lab",address="127.0.0.12:5060"}"#
            ),
            1.0
        );
        assert_eq!(get(r#"sipfleet_failovers_total{reason="timeout"}"#), 1.0);
        assert_eq!(
            get(r#"sipfleet_route_failures_total{reason="timeout",transport="udp"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sipfleet_register_transactions_total{purpose="initial"}"#),
            2.0
        );
        assert_eq!(
            get(r#"sipfleet_register_transactions_total{purpose="authenticate"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sipfleet_register_transactions_total{purpose="failover"}"#),
            1.0
        );
        assert_eq!(get(r#"sipfleet_events_total{event="registered"}"#), 2.0);
        assert_eq!(
            get(r#"sipfleet_invite_transactions_total{kind="initial"}"#),
            2.0
        );
        assert_eq!(get(r#"sipfleet_calls{state="established"}"#), 1.0);
        assert_eq!(get(r#"sipfleet_calls{state="ringing"}"#), 1.0);
        assert_eq!(get(r#"sipfleet_flows{transport="udp"}"#), 2.0);
        assert_eq!(get(r#"sipfleet_flows{transport="tcp"}"#), 0.0);
        assert_eq!(get(r#"sipfleet_flows{transport="tls"}"#), 1.0);
        assert_eq!(get(r#"sipfleet_dns_queries_total{type="SRV"}"#), 2.0);
        assert_eq!(get(r#"sipfleet_dns_cache_hits_total{type="A"}"#), 5.0);
        assert_eq!(
            get(r#"sipfleet_dns_query_failures_total{type="NAPTR"}"#),
            1.0
        );
        // A later render shows the resolver's new totals, not their sum.
        let mut later = dns_stats();
        later.queries.insert("SRV", 3);
        let m = parse(&feed.metrics.render(&[], &later));
        assert_eq!(m[r#"sipfleet_dns_queries_total{type="SRV"}"#], 3.0);
        assert_eq!(m[r#"sipfleet_dns_cache_hits_total{type="A"}"#], 5.0);
        // Latencies: 0.12 s and 3.6 s (from the failover's REGISTER the
        // exchange restarts: 0.1 s). Buckets double from 5 ms.
        assert_eq!(get("sipfleet_registration_latency_seconds_count"), 2.0);
        let sum = get("sipfleet_registration_latency_seconds_sum");
        assert!((sum - 0.22).abs() < 1e-9, "{sum}");
        assert_eq!(
            get(r#"sipfleet_registration_latency_seconds_bucket{le="0.08"}"#),
            0.0
        );
        assert_eq!(
            get(r#"sipfleet_registration_latency_seconds_bucket{le="0.16"}"#),
            2.0
        );
        assert_eq!(get("sipfleet_call_setup_seconds_count"), 1.0);
        assert!((get("sipfleet_call_setup_seconds_sum") - 0.25).abs() < 1e-9);

        // The calls end; line 2 loses SBC 2 and backs off; line 1 is
        // removed: the gauges follow.
        feed.call(
            5_000,
            1,
            CallEventKind::Ended {
                reason: EndReason::LocalHangup,
                status: None,
            },
            "c1",
        );
        feed.call(
            5_000,
            1,
            CallEventKind::Ended {
                reason: EndReason::Cancelled,
                status: None,
            },
            "c2",
        );
        feed.reg(
            6_000,
            2,
            EventKind::RouteFailed {
                reason: RouteFailReason::Icmp,
                detail: None,
            },
            2,
        );
        feed.reg(
            6_000,
            2,
            EventKind::Unregistered {
                reason: sipfleet_protocol::registration::UnregisterReason::FlowLost,
            },
            2,
        );
        feed.reg(
            6_000,
            2,
            EventKind::Backoff {
                wait: Duration::from_secs(5),
                failures: 1,
            },
            2,
        );
        feed.metrics.views().remove_line(1);
        let m = parse(&feed.metrics.render(&[], &DnsStats::default()));
        let get = |k: &str| m.get(k).copied().unwrap_or_else(|| panic!("{k} in {m:#?}"));
        assert_eq!(get(r#"sipfleet_lines{state="registered"}"#), 0.0);
        assert_eq!(get(r#"sipfleet_lines{state="backing_off"}"#), 1.0);
        assert_eq!(get(r#"sipfleet_lines{state="starting"}"#), 1.0);
        assert_eq!(get(r#"sipfleet_backoffs_total{reason="flow_lost"}"#), 1.0);
        assert_eq!(
            get(r#"sipfleet_calls_ended_total{reason="local_hangup"}"#),
            1.0
        );
        assert!(
            !m.keys()
                .any(|k| k.starts_with("sipfleet_lines_per_registrar")
                    || k.starts_with("sipfleet_calls{")),
            "no registrar holds a line, no call is up: {m:#?}"
        );
        let view = feed.metrics.views().line(2).expect("line 2");
        let failure = view.last_failure.expect("a failure");
        assert_eq!(
            (failure.event, failure.reason.as_str()),
            ("unregistered", "flow_lost")
        );
        assert_eq!(view.expires, None);
    }
}
