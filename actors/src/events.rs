//! The event stream: every state change of every line as one typed
//! [`LineEvent`], rendered as a JSON object per line for `sipfleet run --events
//! json` or as a structured slog record.
//!
//! The JSON schema (documented in the README) is stable and flat so that tests
//! and dashboards can read it with `jq`:
//! `{"t_ms", "line", "event", "route": {"transport","host","address"} | null,
//! "call_id", ...}` plus the fields of each event kind. Registration, call,
//! subscription and line-seize events share the common fields, so one
//! stream tells a line's whole story.
//!
//! The JSON is the events' derived `Serialize` (protocol events derive it
//! where they are defined; call events through a remote derive here), so
//! the schema is written once, as attributes on the types;
//! `tests/event_json_golden.rs` holds it to the stream as it was.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::Message;
use serde::Serialize;
use serde_json::Value;
pub use sipfleet_protocol::line::events::{DnsEvent, DnsEventKind, LineEventBody, ResourceEvent};
use sipfleet_protocol::registration::{Event, EventKind, RouteFailReason};

use crate::hub::EventHub;
use crate::output_thread::{Output, OutputThread, Render};

/// One event of one line, stamped with the time it happened.
#[derive(Clone, Debug, Message)]
#[rtype(result = "()")]
pub struct LineEvent {
    /// When it happened (the actors' clock, tokio's).
    pub at: Instant,
    /// `reg.x` index of the line.
    pub line: u32,
    /// What happened.
    pub event: LineEventBody,
}

/// The JSON object of one event: `t_ms` and `line`, then the body's own
/// fields (`event`, `route`, `call_id` and the kind's).
#[derive(Serialize)]
struct JsonEvent<'a> {
    t_ms: u64,
    line: u32,
    #[serde(flatten)]
    event: &'a LineEventBody,
}

impl<'a> JsonEvent<'a> {
    fn of(event: &'a LineEvent, start: Instant) -> Self {
        JsonEvent {
            t_ms: event.at.saturating_duration_since(start).as_millis() as u64,
            line: event.line,
            event: &event.event,
        }
    }
}

/// The JSON object for `event`, with `t_ms` counted from `start`, as a
/// value (the log form reads its fields; the stream serializes directly).
pub fn event_json(event: &LineEvent, start: Instant) -> Value {
    let json = JsonEvent::of(event, start);
    // Every field is a string, a number, a bool, null or an object with
    // string keys: nothing serde_json refuses.
    serde_json::to_value(json).unwrap_or(Value::Null)
}

/// One human-readable line for `event`: time, line, event, route and the
/// details that matter, aligned for a terminal.
pub fn event_text(event: &LineEvent, start: Instant) -> String {
    let v = event_json(event, start);
    let t = event.at.saturating_duration_since(start).as_secs_f64();
    let route = event
        .event
        .route()
        .map(|r| format!("{} {} ({})", r.transport, r.addr, r.host))
        .unwrap_or_else(|| "-".into());
    format!(
        "{t:9.3}s  line {:<3} {:<25} {:<45} {}",
        event.line,
        event.event.name(),
        route,
        details_text(&v)
    )
}

/// The event's own fields as `key=value` words (routes by address): what
/// `--events text` and the log records show after the common fields.
fn details_text(v: &Value) -> String {
    let mut details = Vec::new();
    if let Value::Object(map) = v {
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
    details.join(" ")
}

/// Where line events go. Cheap to clone; shared by every line of a fleet.
#[derive(Clone)]
pub enum EventSink {
    /// One JSON object per line on a writer (stdout for `--events json`),
    /// rendered and written by a thread of its own ([`OutputThread`]).
    Json(OutputThread<LineEvent>),
    /// One aligned human-readable line per event (the live demo), likewise.
    Text(OutputThread<LineEvent>),
    /// Structured log records.
    Log(slog::Logger),
    /// Collected in memory, for tests: at most [`MEMORY_SINK_CAPACITY`]
    /// events are kept (see there). Applications subscribe instead
    /// (`Fleet::subscribe`, `Fleet::subscribe_recipient`).
    Memory(Arc<Mutex<Vec<LineEvent>>>),
    /// Sent on a channel: an embedding application awaits its events
    /// without sharing a lock with the fleet ([`EventSink::channel`]).
    Channel(tokio::sync::mpsc::UnboundedSender<LineEvent>),
    /// A fleet's hub: its observers, subscribers, then the application's
    /// sink ([`EventHub`]). `Fleet::start` wraps the sink it is given in
    /// one.
    Hub(Arc<EventHub>),
}

/// The most events [`EventSink::Memory`] keeps: 4,194,304, enough for the
/// whole story of `examples/fleet_scale.rs` at 100,000 lines (about 15
/// events a line over its four phases). When the store is full the oldest
/// quarter goes at once (so a full store costs no more than a ring per
/// event), and the newest events stay in order at the end of the `Vec`.
pub const MEMORY_SINK_CAPACITY: usize = 1 << 22;

/// Appends `event`, first dropping the oldest quarter of `store` when it
/// holds `capacity` events.
fn push_bounded(store: &mut Vec<LineEvent>, event: LineEvent, capacity: usize) {
    let capacity = capacity.max(1);
    if store.len() >= capacity {
        store.drain(..capacity.div_ceil(4).min(store.len()));
    }
    store.push(event);
}

impl EventSink {
    /// `--events json` on `out`: one object per line, `t_ms` from `start`.
    /// The objects are serialized straight into the writer's buffer.
    pub fn json(out: Box<dyn Write + Send>, start: Instant) -> std::io::Result<Self> {
        let render: Render<LineEvent> = Box::new(move |event, w| {
            serde_json::to_writer(&mut *w, &JsonEvent::of(event, start))?;
            w.write_all(b"\n")
        });
        Ok(EventSink::Json(OutputThread::spawn(
            "sipfleet-events",
            vec![Output::new(out, render)],
        )?))
    }

    /// `--events text` on `out`.
    pub fn text(out: Box<dyn Write + Send>, start: Instant) -> std::io::Result<Self> {
        let render: Render<LineEvent> =
            Box::new(move |event, w| writeln!(w, "{}", event_text(event, start)));
        Ok(EventSink::Text(OutputThread::spawn(
            "sipfleet-events",
            vec![Output::new(out, render)],
        )?))
    }

    /// `--events json` on stdout.
    pub fn json_stdout(start: Instant) -> std::io::Result<Self> {
        Self::json(Box::new(std::io::stdout()), start)
    }

    /// `--events text` on stdout.
    pub fn text_stdout(start: Instant) -> std::io::Result<Self> {
        Self::text(Box::new(std::io::stdout()), start)
    }

    /// A sink whose events arrive on the returned receiver, in order.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<LineEvent>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (EventSink::Channel(tx), rx)
    }

    /// Hands `event` to the sink (never blocks on a writer: the written
    /// forms queue for their thread).
    pub fn emit(&self, event: LineEvent) {
        match self {
            // A closed stdout (reader went away) must not stop the fleet:
            // events are observability, not control.
            EventSink::Json(out) | EventSink::Text(out) => out.send(event),
            EventSink::Log(log) => {
                let route = event
                    .event
                    .route()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                let (name, call_id) = (event.event.name(), event.event.call_id());
                // The same fields as `--events text`, not Rust debug output.
                let detail = details_text(&event_json(&event, event.at));
                // A certificate that does not verify needs an operator: WARN.
                if is_tls_failure(&event.event) {
                    slog::warn!(log, "{}", name;
                        "line" => event.line, "route" => route, "call_id" => call_id,
                        "fields" => detail);
                } else {
                    slog::info!(log, "{}", name;
                        "line" => event.line, "route" => route, "call_id" => call_id,
                        "fields" => detail);
                }
            }
            EventSink::Memory(store) => {
                if let Ok(mut v) = store.lock() {
                    push_bounded(&mut v, event, MEMORY_SINK_CAPACITY);
                }
            }
            EventSink::Hub(hub) => hub.emit(event),
            EventSink::Channel(tx) => {
                // A receiver that went away wants no more events.
                let _ = tx.send(event);
            }
        }
    }

    /// Waits until every event emitted so far is written (the written
    /// forms); at once for the others.
    pub fn flush(&self) {
        match self {
            EventSink::Json(out) | EventSink::Text(out) => out.flush(),
            EventSink::Hub(hub) => hub.sink().flush(),
            _ => {}
        }
    }
}

/// A registration's route failed in the TLS handshake.
fn is_tls_failure(body: &LineEventBody) -> bool {
    matches!(
        body,
        LineEventBody::Registration(Event {
            kind: EventKind::RouteFailed {
                reason: RouteFailReason::Tls,
                ..
            },
            ..
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::registration::{InvalidationReason, Purpose};
    use sipfleet_protocol::route::Route;
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
                    detail: None,
                },
                route: Some(route()),
                call_id: "c1".into(),
            }
            .into(),
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
        assert!(
            v.get("detail").is_none(),
            "no detail unless the transport gave one"
        );
    }

    #[test]
    fn a_tls_failure_carries_the_verification_error() {
        let start = Instant::now();
        let ev = LineEvent {
            at: start + Duration::from_millis(12),
            line: 1,
            event: Event {
                kind: EventKind::RouteFailed {
                    reason: RouteFailReason::Tls,
                    detail: Some("certificate verify failed (self-signed certificate)".into()),
                },
                route: Some(route()),
                call_id: "c1".into(),
            }
            .into(),
        };
        let v = event_json(&ev, start);
        assert_eq!(v["reason"], "tls");
        assert_eq!(
            v["detail"],
            "certificate verify failed (self-signed certificate)"
        );
        let text = event_text(&ev, start);
        assert!(text.contains("reason=tls"), "{text}");
        assert!(
            text.contains("detail=certificate verify failed (self-signed certificate)"),
            "{text}"
        );
        assert!(is_tls_failure(&ev.event));
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
            }
            .into(),
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
            }
            .into(),
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
                    detail: None,
                },
                route: Some(route()),
                call_id: "c1".into(),
            }
            .into(),
        };
        let text = event_text(&ev, start);
        assert!(text.starts_with("   15.281s  line 1"), "{text}");
        assert!(text.contains("route_failed"), "{text}");
        assert!(text.contains("udp 127.0.0.11:5060 (sbc1.lab)"), "{text}");
        assert!(text.ends_with("reason=icmp"), "{text}");
    }

    #[test]
    fn call_subscription_and_seize_events_carry_their_fields() {
        use sipfleet_protocol::call::{CallEvent, CallEventKind, EndReason};
        use sipfleet_protocol::line_seize::{LineSeizeEvent, LineSeizeOutcome};
        use sipfleet_protocol::subscription::{
            EventPackage, SubscriptionEvent, SubscriptionEventKind,
        };
        let start = Instant::now();
        let at = |body: LineEventBody| LineEvent {
            at: start + Duration::from_millis(10),
            line: 3,
            event: body,
        };
        let ended = event_json(
            &at(CallEvent {
                kind: CallEventKind::Ended {
                    reason: EndReason::Rejected,
                    status: Some(603),
                },
                call_id: "call-1".into(),
                route: route(),
            }
            .into()),
            start,
        );
        assert_eq!(ended["event"], "call_ended");
        assert_eq!(ended["reason"], "rejected");
        assert_eq!(ended["status"], 603);
        assert_eq!(ended["call_id"], "call-1");
        assert_eq!(ended["route"]["host"], "sbc1.lab");
        let established = event_json(
            &at(CallEvent {
                kind: CallEventKind::Established { remote_rtp: None },
                call_id: "call-1".into(),
                route: route(),
            }
            .into()),
            start,
        );
        assert_eq!(established["remote_rtp"], Value::Null);
        let notify = event_json(
            &at(SubscriptionEvent {
                kind: SubscriptionEventKind::Notified {
                    state: "active".into(),
                    content_type: Some("application/simple-message-summary".into()),
                    body: bytes::Bytes::from_static(b"Messages-Waiting: yes\r\n"),
                },
                package: EventPackage::MessageSummary,
                call_id: "sub-1".into(),
                route: Some(route()),
            }
            .into()),
            start,
        );
        assert_eq!(notify["event"], "subscription_notify");
        assert_eq!(notify["package"], "message-summary");
        assert_eq!(notify["state"], "active");
        assert_eq!(notify["body"], "Messages-Waiting: yes\r\n");
        let invalidated = event_json(
            &at(SubscriptionEvent {
                kind: SubscriptionEventKind::Invalidated {
                    reason: InvalidationReason::NewRegistrar,
                },
                package: EventPackage::Dialog,
                call_id: "sub-2".into(),
                route: Some(route()),
            }
            .into()),
            start,
        );
        assert_eq!(invalidated["event"], "subscription_invalidated");
        assert_eq!(invalidated["reason"], "new_registrar");
        let seize = event_json(
            &at(LineSeizeEvent {
                outcome: LineSeizeOutcome::Refused { status: 489 },
                call_id: "seize-1".into(),
                route: route(),
            }
            .into()),
            start,
        );
        assert_eq!(seize["event"], "line_seize_failed");
        assert_eq!(seize["outcome"], "refused");
        assert_eq!(seize["status"], 489);
        assert_eq!(seize["t_ms"], 10);
    }

    /// Records the level of every log record.
    struct Levels(Arc<Mutex<Vec<slog::Level>>>);

    impl slog::Drain for Levels {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            if let Ok(mut v) = self.0.lock() {
                v.push(r.level());
            }
            Ok(())
        }
    }

    #[test]
    fn the_log_sink_warns_of_a_tls_failure() {
        let levels = Arc::new(Mutex::new(Vec::new()));
        let sink = EventSink::Log(slog::Logger::root(Levels(levels.clone()), slog::o!()));
        for (reason, detail) in [
            (RouteFailReason::Refused, None),
            (
                RouteFailReason::Tls,
                Some("certificate verify failed".to_string()),
            ),
        ] {
            sink.emit(LineEvent {
                at: Instant::now(),
                line: 1,
                event: Event {
                    kind: EventKind::RouteFailed { reason, detail },
                    route: Some(route()),
                    call_id: "c".into(),
                }
                .into(),
            });
        }
        assert_eq!(
            *levels.lock().unwrap(),
            [slog::Level::Info, slog::Level::Warning]
        );
    }

    /// Records each record's `fields` value.
    struct Fields(Arc<Mutex<Vec<String>>>);

    impl slog::Drain for Fields {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            struct Grab(String);
            impl slog::Serializer for Grab {
                fn emit_arguments(
                    &mut self,
                    key: slog::Key,
                    val: &std::fmt::Arguments,
                ) -> slog::Result {
                    if key == "fields" {
                        self.0 = val.to_string();
                    }
                    Ok(())
                }
            }
            let mut g = Grab(String::new());
            let _ = slog::KV::serialize(&r.kv(), r, &mut g);
            if let Ok(mut v) = self.0.lock() {
                v.push(g.0);
            }
            Ok(())
        }
    }

    /// `--events log` shows the fields `--events text` shows, not Rust
    /// debug structures.
    #[test]
    fn the_log_sink_shows_readable_fields() {
        let fields = Arc::new(Mutex::new(Vec::new()));
        let sink = EventSink::Log(slog::Logger::root(Fields(fields.clone()), slog::o!()));
        sink.emit(LineEvent {
            at: Instant::now(),
            line: 1,
            event: Event {
                kind: EventKind::Backoff {
                    wait: std::time::Duration::from_millis(6629),
                    failures: 2,
                },
                route: Some(route()),
                call_id: "c".into(),
            }
            .into(),
        });
        let got = fields.lock().unwrap().clone();
        assert_eq!(got, ["failures=2 wait_ms=6629"]);
    }

    #[test]
    fn memory_sink_collects() {
        let store = Arc::new(Mutex::new(Vec::new()));
        let sink = EventSink::Memory(store.clone());
        sink.emit(LineEvent {
            at: Instant::now(),
            line: 1,
            event: Event {
                kind: EventKind::RegistrationFailed {
                    status: Some(403),
                    reason: sipfleet_protocol::registration::FailReason::Denied,
                },
                route: Some(route()),
                call_id: "c".into(),
            }
            .into(),
        });
        assert_eq!(store.lock().unwrap().len(), 1);
        let events = store.lock().unwrap();
        let json = event_json(&events[0], events[0].at);
        assert_eq!(json["status"], 403);
        assert_eq!(json["reason"], "denied");
    }

    /// The memory sink is bounded: a full store drops its oldest quarter
    /// and keeps the newest events in order.
    #[test]
    fn memory_sink_keeps_the_newest_events_within_its_capacity() {
        let ev = |line| LineEvent {
            at: Instant::now(),
            line,
            event: Event {
                kind: EventKind::Backoff {
                    wait: Duration::from_millis(1),
                    failures: 0,
                },
                route: None,
                call_id: "c".into(),
            }
            .into(),
        };
        let mut store = Vec::new();
        for line in 0..8 {
            push_bounded(&mut store, ev(line), 8);
        }
        assert_eq!(store.len(), 8);
        push_bounded(&mut store, ev(8), 8);
        let lines: Vec<u32> = store.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8]);
        for line in 9..100 {
            push_bounded(&mut store, ev(line), 8);
            assert!(store.len() <= 8);
            assert_eq!(store.last().map(|e| e.line), Some(line));
        }
        let lines: Vec<u32> = store.iter().map(|e| e.line).collect();
        assert!(lines.windows(2).all(|w| w[1] == w[0] + 1), "{lines:?}");
        // A capacity of 0 still keeps the newest event.
        let mut one = Vec::new();
        push_bounded(&mut one, ev(1), 0);
        push_bounded(&mut one, ev(2), 0);
        assert_eq!(one.iter().map(|e| e.line).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn resource_exhausted_names_the_ceiling_and_the_refused_call() {
        let start = Instant::now();
        let event = LineEvent {
            at: start + Duration::from_millis(42),
            line: 2,
            event: ResourceEvent {
                resource: "sockets",
                max: 768,
                open: 768,
                refused: "incoming_call",
                error: "exhausted".into(),
                call_id: "flood-1".into(),
                route: route(),
            }
            .into(),
        };
        let v = event_json(&event, start);
        assert_eq!(v["event"], "resource_exhausted");
        assert_eq!(v["resource"], "sockets");
        assert_eq!(v["max"], 768);
        assert_eq!(v["open"], 768);
        assert_eq!(v["refused"], "incoming_call");
        assert_eq!(v["call_id"], "flood-1");
        assert_eq!(v["route"]["host"], "sbc1.lab");
        assert!(event_text(&event, start).contains("resource_exhausted"));
    }
}
