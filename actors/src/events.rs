//! The event stream: every state change of every line as one typed
//! [`LineEvent`], rendered as a JSON object per line for `sipfleet run --events
//! json` or as a structured slog record.
//!
//! The JSON schema (documented in the README) is stable and flat so that tests
//! and dashboards can read it with `jq`:
//! `{"t_ms", "line", "event", "route": {"transport","host","address"} | null,
//! "call_id", ...}` plus the fields of each event kind.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::Message;
use serde_json::{json, Map, Value};
use sipfleet_protocol::registration::{Event, EventKind, InvalidationReason};
use sipfleet_protocol::route::Route;

/// One event of one line, stamped with the time it happened.
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct LineEvent {
    pub at: Instant,
    /// `reg.x` index of the line.
    pub line: u32,
    pub event: Event,
}

/// JSON form of a route: transport, host name and socket address.
pub fn route_json(route: &Route) -> Value {
    json!({
        "transport": route.transport.as_str(),
        "host": route.host,
        "address": route.addr.to_string(),
        "source": route.source.as_str(),
    })
}

/// The JSON object for `event`, with `t_ms` counted from `start`.
pub fn event_json(event: &LineEvent, start: Instant) -> Value {
    let mut obj = Map::new();
    let t_ms = event.at.saturating_duration_since(start).as_millis() as u64;
    obj.insert("t_ms".into(), t_ms.into());
    obj.insert("line".into(), event.line.into());
    obj.insert("event".into(), event.event.kind.name().into());
    obj.insert(
        "route".into(),
        event.event.route.as_ref().map_or(Value::Null, route_json),
    );
    obj.insert("call_id".into(), event.event.call_id.clone().into());
    match &event.event.kind {
        EventKind::Registering {
            cseq,
            expires,
            purpose,
        } => {
            obj.insert("cseq".into(), (*cseq).into());
            obj.insert("expires".into(), (*expires).into());
            obj.insert("purpose".into(), purpose.as_str().into());
        }
        EventKind::Registered { expires, primary } => {
            obj.insert("expires".into(), expires.as_secs().into());
            obj.insert("primary".into(), (*primary).into());
        }
        EventKind::RouteFailed { reason } => {
            obj.insert("reason".into(), reason.as_str().into());
        }
        EventKind::Failover { from } | EventKind::Failback { from } => {
            obj.insert("from".into(), route_json(from));
        }
        EventKind::Backoff { wait, failures } => {
            obj.insert("wait_ms".into(), (wait.as_millis() as u64).into());
            obj.insert("failures".into(), (*failures).into());
        }
        EventKind::Unregistered { reason } => {
            obj.insert("reason".into(), reason.as_str().into());
        }
        EventKind::RegistrationFailed { status } => {
            obj.insert("status".into(), status.map_or(Value::Null, Value::from));
        }
        EventKind::SubscriptionsInvalidated { reason } => {
            obj.insert("reason".into(), invalidation_reason(*reason).into());
        }
    }
    Value::Object(obj)
}

fn invalidation_reason(reason: InvalidationReason) -> &'static str {
    match reason {
        InvalidationReason::FailoverStarted => "failover_started",
        InvalidationReason::NewRegistrar => "new_registrar",
        InvalidationReason::Unregistered => "unregistered",
    }
}

/// One human-readable line for `event`: time, line, event, route and the
/// details that matter, aligned for a terminal.
pub fn event_text(event: &LineEvent, start: Instant) -> String {
    let v = event_json(event, start);
    let t = event.at.saturating_duration_since(start).as_secs_f64();
    let route = event
        .event
        .route
        .as_ref()
        .map(|r| format!("{} {} ({})", r.transport, r.addr, r.host))
        .unwrap_or_else(|| "-".into());
    let mut details = Vec::new();
    if let Value::Object(map) = &v {
        for (k, val) in map {
            if matches!(k.as_str(), "t_ms" | "line" | "event" | "route" | "call_id") {
                continue;
            }
            let shown = match val {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("address")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                other => other.to_string(),
            };
            details.push(format!("{k}={shown}"));
        }
    }
    format!(
        "{t:9.3}s  line {:<3} {:<25} {:<45} {}",
        event.line,
        event.event.kind.name(),
        route,
        details.join(" ")
    )
}

/// Where line events go. Cheap to clone; shared by every line of a fleet.
#[derive(Clone)]
pub enum EventSink {
    /// One JSON object per line on a writer (stdout for `--events json`).
    Json {
        start: Instant,
        out: Arc<Mutex<Box<dyn Write + Send>>>,
    },
    /// One aligned human-readable line per event (the live demo).
    Text {
        start: Instant,
        out: Arc<Mutex<Box<dyn Write + Send>>>,
    },
    /// Structured log records.
    Log(slog::Logger),
    /// Collected in memory (tests, embedding applications polling events).
    Memory(Arc<Mutex<Vec<LineEvent>>>),
}

impl EventSink {
    pub fn json_stdout(start: Instant) -> Self {
        EventSink::Json {
            start,
            out: Arc::new(Mutex::new(Box::new(std::io::stdout()))),
        }
    }

    pub fn text_stdout(start: Instant) -> Self {
        EventSink::Text {
            start,
            out: Arc::new(Mutex::new(Box::new(std::io::stdout()))),
        }
    }

    pub fn emit(&self, event: LineEvent) {
        match self {
            EventSink::Text { start, out } => {
                let line = event_text(&event, *start);
                if let Ok(mut w) = out.lock() {
                    let _ = writeln!(w, "{line}");
                    let _ = w.flush();
                }
            }
            EventSink::Json { start, out } => {
                let line = event_json(&event, *start).to_string();
                if let Ok(mut w) = out.lock() {
                    // A closed stdout (reader went away) must not stop the
                    // fleet: events are observability, not control.
                    let _ = writeln!(w, "{line}");
                    let _ = w.flush();
                }
            }
            EventSink::Log(log) => {
                let route = event
                    .event
                    .route
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                slog::info!(log, "{}", event.event.kind.name();
                    "line" => event.line,
                    "route" => route,
                    "call_id" => &event.event.call_id,
                    "detail" => format!("{:?}", event.event.kind));
            }
            EventSink::Memory(store) => {
                if let Ok(mut v) = store.lock() {
                    v.push(event);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::registration::{Purpose, RouteFailReason};
    use sipfleet_protocol::route::{RouteSource, Transport};
    use std::time::Duration;

    fn route() -> Route {
        Route {
            transport: Transport::Udp,
            host: "sbc1.lab".into(),
            addr: "127.0.0.11:5060".parse().unwrap(),
            group: 0,
            priority: 10,
            weight: 0,
            source: RouteSource::Network,
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let start = Instant::now();
        let ev = LineEvent {
            at: start + Duration::from_millis(3500),
            line: 2,
            event: Event {
                kind: EventKind::RouteFailed {
                    reason: RouteFailReason::Timeout,
                },
                route: Some(route()),
                call_id: "c1".into(),
            },
        };
        let v = event_json(&ev, start);
        assert_eq!(v["t_ms"], 3500);
        assert_eq!(v["line"], 2);
        assert_eq!(v["event"], "route_failed");
        assert_eq!(v["reason"], "timeout");
        assert_eq!(v["route"]["transport"], "udp");
        assert_eq!(v["route"]["host"], "sbc1.lab");
        assert_eq!(v["route"]["address"], "127.0.0.11:5060");
        assert_eq!(v["call_id"], "c1");
    }

    #[test]
    fn backoff_and_registering_carry_their_details() {
        let start = Instant::now();
        let backoff = LineEvent {
            at: start,
            line: 1,
            event: Event {
                kind: EventKind::Backoff {
                    wait: Duration::from_millis(7321),
                    failures: 1,
                },
                route: None,
                call_id: "c".into(),
            },
        };
        let v = event_json(&backoff, start);
        assert_eq!(v["wait_ms"], 7321);
        assert_eq!(v["route"], Value::Null);
        let reg = LineEvent {
            at: start,
            line: 1,
            event: Event {
                kind: EventKind::Registering {
                    cseq: 3,
                    expires: 0,
                    purpose: Purpose::Unregister,
                },
                route: Some(route()),
                call_id: "c".into(),
            },
        };
        let v = event_json(&reg, start);
        assert_eq!(v["event"], "registering");
        assert_eq!(v["expires"], 0);
        assert_eq!(v["purpose"], "unregister");
    }

    #[test]
    fn text_shows_time_line_event_route_and_details() {
        let start = Instant::now();
        let ev = LineEvent {
            at: start + Duration::from_millis(15281),
            line: 1,
            event: Event {
                kind: EventKind::RouteFailed {
                    reason: RouteFailReason::Icmp,
                },
                route: Some(route()),
                call_id: "c1".into(),
            },
        };
        let text = event_text(&ev, start);
        assert!(text.starts_with("   15.281s  line 1"), "{text}");
        assert!(text.contains("route_failed"), "{text}");
        assert!(text.contains("udp 127.0.0.11:5060 (sbc1.lab)"), "{text}");
        assert!(text.ends_with("reason=icmp"), "{text}");
    }

    #[test]
    fn memory_sink_collects() {
        let store = Arc::new(Mutex::new(Vec::new()));
        let sink = EventSink::Memory(store.clone());
        sink.emit(LineEvent {
            at: Instant::now(),
            line: 1,
            event: Event {
                kind: EventKind::RegistrationFailed { status: Some(403) },
                route: Some(route()),
                call_id: "c".into(),
            },
        });
        assert_eq!(store.lock().unwrap().len(), 1);
    }
}
