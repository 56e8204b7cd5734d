//! What the control API shows of each line beyond the line's own
//! snapshot, kept from the event stream (an [`EventObserver`] of the
//! fleet's hub): the expiry granted, the last failure, the subscriptions,
//! the state a line is in for readiness and the metrics, and which line
//! holds each call (so a call is found by its Call-ID alone).
//!
//! Why from events and not from the lines: the events are the lines'
//! public account of themselves already, so nothing in the lines changes,
//! and the whole fleet's picture is one lock away, not one message per
//! line (a readiness probe on 100,000 lines stays cheap).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sipfleet_protocol::call::{CallDirection, CallEventKind};
use sipfleet_protocol::registration::{EventKind, Purpose};
use sipfleet_protocol::route::Route;
use sipfleet_protocol::subscription::SubscriptionEventKind;

use crate::events::{LineEvent, LineEventBody};
use crate::hub::EventObserver;

/// Where a line's registration stands, as its events tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// Added, no REGISTER yet (resolving, or waiting for the pacer).
    Starting,
    /// A REGISTER exchange is under way, and no binding holds.
    Registering,
    /// Bound on a registrar (a refresh under way included).
    Registered,
    /// Waiting after a failure before trying again.
    BackingOff,
    /// The registration gave up (`registration_failed`) until its next try.
    Failed,
    /// Un-REGISTERing (shutdown or removal).
    Unregistering,
    /// Not registered: the binding was removed or lost.
    Unregistered,
}

impl LineState {
    /// Every state, for metrics that show zeros too.
    pub const ALL: [LineState; 7] = [
        LineState::Starting,
        LineState::Registering,
        LineState::Registered,
        LineState::BackingOff,
        LineState::Failed,
        LineState::Unregistering,
        LineState::Unregistered,
    ];

    /// The state's name (metrics labels, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            LineState::Starting => "starting",
            LineState::Registering => "registering",
            LineState::Registered => "registered",
            LineState::BackingOff => "backing_off",
            LineState::Failed => "failed",
            LineState::Unregistering => "unregistering",
            LineState::Unregistered => "unregistered",
        }
    }
}

/// The last thing that went wrong on a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The event that told it (`route_failed`, `registration_failed`,
    /// `unregistered`, `dns_failed`).
    pub event: &'static str,
    /// Its `reason` (or DNS error).
    pub reason: String,
    /// The final response, when one ended it.
    pub status: Option<u16>,
    /// The route it happened on.
    pub route: Option<Route>,
    /// When.
    #[serde(skip)]
    pub at: Instant,
}

/// One subscription of a line, by its dialog's Call-ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubscriptionView {
    /// The event package (`dialog`, `message-summary`, `call-info`,
    /// `line-seize`).
    pub package: &'static str,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// The last event about it (`subscribed`, `subscription_refreshed`,
    /// `subscription_notify`, `subscription_invalidated`,
    /// `subscription_terminated`, `subscription_failed`).
    pub last_event: &'static str,
    /// The expiry last granted, seconds.
    pub expires: Option<u64>,
    /// The notifier's last Subscription-State.
    pub notify_state: Option<String>,
}

/// What the events told of one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineView {
    /// Where the registration stands.
    pub state: LineState,
    /// The expiry last granted (seconds), while registered.
    pub expires: Option<u64>,
    /// The registrar that holds the binding, while registered.
    pub registrar: Option<Route>,
    /// The last failure, if any.
    pub last_failure: Option<Failure>,
    /// The line's subscriptions, by Call-ID.
    pub subscriptions: Vec<SubscriptionView>,
    /// When the REGISTER exchange under way started (registration latency).
    #[serde(skip)]
    pub exchange_started: Option<Instant>,
}

impl Default for LineView {
    fn default() -> Self {
        LineView {
            state: LineState::Starting,
            expires: None,
            registrar: None,
            last_failure: None,
            subscriptions: Vec::new(),
            exchange_started: None,
        }
    }
}

/// One call as the events tell it: its line, direction, remote and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallView {
    /// `reg.x` of the line that holds it.
    pub line: u32,
    /// Outgoing or incoming.
    pub direction: CallDirection,
    /// When it started (call set-up latency).
    pub started: Instant,
    /// Its state as its last event tells it: `calling`, `incoming`,
    /// `ringing`, `answering`, `established`, `held`.
    pub state: &'static str,
}

/// What happened to a line that the metrics count, beyond the event
/// itself: figures the views derive from the line's story.
#[derive(Debug, Default, PartialEq)]
pub struct Derived {
    /// The REGISTER exchange that just ended with a binding took this long.
    pub registration_latency: Option<Duration>,
    /// The outgoing call just answered took this long from its INVITE.
    pub call_setup: Option<Duration>,
    /// The reason behind a failover, failback or back-off: the line's last
    /// failure's reason (`dns_failed` for DNS trouble).
    pub failure_reason: Option<String>,
}

#[derive(Default)]
struct Tables {
    lines: BTreeMap<u32, LineView>,
    calls: HashMap<String, CallView>,
}

/// Every line's [`LineView`] and every call's line, kept from the events.
#[derive(Default)]
pub struct LineViews {
    tables: Mutex<Tables>,
}

impl LineViews {
    /// A line was added: it shows as [`LineState::Starting`] until its
    /// first event.
    pub fn add_line(&self, line: u32) {
        if let Ok(mut t) = self.tables.lock() {
            t.lines.entry(line).or_default();
        }
    }

    /// A line was removed: its view and its calls go.
    pub fn remove_line(&self, line: u32) {
        if let Ok(mut t) = self.tables.lock() {
            t.lines.remove(&line);
            t.calls.retain(|_, c| c.line != line);
        }
    }

    /// The view of `line`, if it is in the fleet.
    pub fn line(&self, line: u32) -> Option<LineView> {
        self.tables.lock().ok()?.lines.get(&line).cloned()
    }

    /// Every line's view, by index.
    pub fn lines(&self) -> BTreeMap<u32, LineView> {
        self.tables
            .lock()
            .map(|t| t.lines.clone())
            .unwrap_or_default()
    }

    /// The line that holds the call `call_id`, while it is up.
    pub fn line_of_call(&self, call_id: &str) -> Option<u32> {
        self.tables.lock().ok()?.calls.get(call_id).map(|c| c.line)
    }

    /// Calls up, by state (see [`CallView::state`]).
    pub fn calls_by_state(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        if let Ok(t) = self.tables.lock() {
            for call in t.calls.values() {
                *counts.entry(call.state).or_default() += 1;
            }
        }
        counts
    }

    /// Lines by state, every state present (zeros included).
    pub fn count_by_state(&self) -> BTreeMap<LineState, usize> {
        let mut counts: BTreeMap<LineState, usize> =
            LineState::ALL.iter().map(|s| (*s, 0)).collect();
        if let Ok(t) = self.tables.lock() {
            for view in t.lines.values() {
                *counts.entry(view.state).or_default() += 1;
            }
        }
        counts
    }

    /// Registered lines per registrar (`transport host address`).
    pub fn count_by_registrar(&self) -> BTreeMap<(String, String, String), usize> {
        let mut counts = BTreeMap::new();
        if let Ok(t) = self.tables.lock() {
            for route in t.lines.values().filter_map(|v| v.registrar.as_ref()) {
                let key = (
                    route.transport.as_str().to_owned(),
                    route.host.clone(),
                    route.addr.to_string(),
                );
                *counts.entry(key).or_default() += 1;
            }
        }
        counts
    }

    /// Takes in one event; answers what the metrics derive from it.
    pub fn apply(&self, event: &LineEvent) -> Derived {
        let Ok(mut t) = self.tables.lock() else {
            return Derived::default();
        };
        let Tables { lines, calls } = &mut *t;
        let mut derived = Derived::default();
        if let LineEventBody::Call(c) = &event.event {
            apply_call(calls, event, c, &mut derived);
        }
        // A line the fleet no longer holds (removed) keeps no view.
        let Some(view) = lines.get_mut(&event.line) else {
            return derived;
        };
        match &event.event {
            LineEventBody::Registration(e) => {
                apply_registration(view, event.at, e, &mut derived);
            }
            LineEventBody::Subscription(s) => {
                let pos = view
                    .subscriptions
                    .iter()
                    .position(|v| v.call_id == s.call_id);
                let sub = match pos {
                    Some(i) => &mut view.subscriptions[i],
                    None => {
                        view.subscriptions.push(SubscriptionView {
                            package: s.package.as_str(),
                            call_id: s.call_id.clone(),
                            last_event: s.kind.name(),
                            expires: None,
                            notify_state: None,
                        });
                        let last = view.subscriptions.len() - 1;
                        &mut view.subscriptions[last]
                    }
                };
                sub.last_event = s.kind.name();
                match &s.kind {
                    SubscriptionEventKind::Subscribed { expires }
                    | SubscriptionEventKind::Refreshed { expires } => {
                        sub.expires = Some(expires.as_secs());
                    }
                    SubscriptionEventKind::Notified { state, .. } => {
                        sub.notify_state = Some(state.clone());
                    }
                    _ => sub.expires = None,
                }
            }
            LineEventBody::Dns(d) => {
                view.last_failure = Some(Failure {
                    event: event.event.name(),
                    reason: d.error.clone(),
                    status: None,
                    route: None,
                    at: event.at,
                });
            }
            _ => {}
        }
        derived
    }
}

fn apply_registration(
    view: &mut LineView,
    at: Instant,
    e: &sipfleet_protocol::registration::Event,
    derived: &mut Derived,
) {
    let failure = |reason: &str, status| Failure {
        event: e.kind.name(),
        reason: reason.to_owned(),
        status,
        route: e.route.clone(),
        at,
    };
    match &e.kind {
        EventKind::Registering { purpose, .. } => {
            if purpose.starts_exchange() && *purpose != Purpose::Unregister {
                view.exchange_started = Some(at);
            }
            view.state = match purpose {
                Purpose::Unregister => LineState::Unregistering,
                // A refresh (or its challenge) keeps the binding.
                _ if view.state == LineState::Registered => LineState::Registered,
                _ => LineState::Registering,
            };
        }
        EventKind::Registered { expires, .. } => {
            view.state = LineState::Registered;
            view.expires = Some(expires.as_secs());
            view.registrar = e.route.clone();
            derived.registration_latency = view
                .exchange_started
                .take()
                .map(|s| at.saturating_duration_since(s));
        }
        EventKind::RouteFailed { reason, .. } => {
            view.last_failure = Some(failure(reason.as_str(), None));
        }
        EventKind::Failover { .. } => {
            // The binding (if any) is dropped or left to lapse: the line is
            // looking for a registrar.
            if view.state != LineState::Registered {
                view.state = LineState::Registering;
            }
            derived.failure_reason = last_reason(view);
        }
        EventKind::Failback { .. } | EventKind::FailbackHeld { .. } => {
            derived.failure_reason = last_reason(view);
        }
        EventKind::Backoff { .. } => {
            view.state = LineState::BackingOff;
            view.exchange_started = None;
            derived.failure_reason = last_reason(view);
        }
        EventKind::Unregistered { reason } => {
            view.state = LineState::Unregistered;
            view.expires = None;
            view.registrar = None;
            if !matches!(
                reason,
                sipfleet_protocol::registration::UnregisterReason::Shutdown
            ) {
                view.last_failure = Some(failure(reason.as_str(), None));
            }
        }
        EventKind::RegistrationFailed { status, reason } => {
            view.state = LineState::Failed;
            view.exchange_started = None;
            view.last_failure = Some(failure(reason.as_str(), *status));
        }
        EventKind::SubscriptionsInvalidated { .. } => {}
    }
}

/// The line's last failure as a metrics label: a reason from a fixed set
/// (a DNS failure by its event name, not its free-text error, so the
/// label's values stay few).
fn last_reason(view: &LineView) -> Option<String> {
    view.last_failure.as_ref().map(|f| match f.event {
        "dns_failed" | "dns_restored" => f.event.to_owned(),
        _ => f.reason.clone(),
    })
}

fn set_state(calls: &mut HashMap<String, CallView>, call_id: &str, state: &'static str) {
    if let Some(call) = calls.get_mut(call_id) {
        call.state = state;
    }
}

fn apply_call(
    calls: &mut HashMap<String, CallView>,
    event: &LineEvent,
    c: &sipfleet_protocol::call::CallEvent,
    derived: &mut Derived,
) {
    match &c.kind {
        CallEventKind::Started { direction, .. } => {
            calls.insert(
                c.call_id.clone(),
                CallView {
                    line: event.line,
                    direction: *direction,
                    started: event.at,
                    state: match direction {
                        CallDirection::Outgoing => "calling",
                        CallDirection::Incoming => "incoming",
                    },
                },
            );
        }
        CallEventKind::Ringing => set_state(calls, &c.call_id, "ringing"),
        CallEventKind::Established { .. } | CallEventKind::Resumed { .. } => {
            set_state(calls, &c.call_id, "established")
        }
        CallEventKind::Held { .. } => set_state(calls, &c.call_id, "held"),
        CallEventKind::Answered => {
            set_state(calls, &c.call_id, "answering");
            if let Some(call) = calls
                .get(&c.call_id)
                .filter(|v| v.direction == CallDirection::Outgoing)
            {
                derived.call_setup = Some(event.at.saturating_duration_since(call.started));
            }
        }
        CallEventKind::Ended { .. } => {
            calls.remove(&c.call_id);
        }
        _ => {}
    }
}

impl EventObserver for LineViews {
    fn observe(&self, event: &LineEvent) {
        self.apply(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipfleet_protocol::registration::{Event, UnregisterReason};
    use sipfleet_protocol::route::{RouteSource, Transport};
    use sipfleet_protocol::subscription::{EventPackage, SubscriptionEvent};

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

    fn reg(views: &LineViews, kind: EventKind) -> Derived {
        views.apply(&LineEvent {
            at: Instant::now(),
            line: 1,
            event: Event {
                kind,
                route: Some(route()),
                call_id: "r".into(),
            }
            .into(),
        })
    }

    fn sub(views: &LineViews, call_id: &str, kind: SubscriptionEventKind) {
        views.apply(&LineEvent {
            at: Instant::now(),
            line: 1,
            event: SubscriptionEvent {
                kind,
                package: EventPackage::MessageSummary,
                call_id: call_id.into(),
                route: Some(route()),
            }
            .into(),
        });
    }

    fn registering(purpose: Purpose) -> EventKind {
        EventKind::Registering {
            cseq: 1,
            expires: 60,
            purpose,
        }
    }

    #[test]
    fn a_refresh_keeps_the_line_registered_and_an_unregister_shows() {
        let views = LineViews::default();
        views.add_line(1);
        assert_eq!(views.line(1).unwrap().state, LineState::Starting);
        reg(&views, registering(Purpose::Initial));
        assert_eq!(views.line(1).unwrap().state, LineState::Registering);
        reg(
            &views,
            EventKind::Registered {
                expires: Duration::from_secs(60),
                primary: true,
            },
        );
        let v = views.line(1).unwrap();
        assert_eq!((v.state, v.expires), (LineState::Registered, Some(60)));
        assert_eq!(v.registrar, Some(route()));
        // A refresh and its challenge: still bound.
        reg(&views, registering(Purpose::Refresh));
        reg(&views, registering(Purpose::Authenticate));
        assert_eq!(views.line(1).unwrap().state, LineState::Registered);
        reg(&views, registering(Purpose::Unregister));
        assert_eq!(views.line(1).unwrap().state, LineState::Unregistering);
        reg(
            &views,
            EventKind::Unregistered {
                reason: UnregisterReason::Shutdown,
            },
        );
        let v = views.line(1).unwrap();
        assert_eq!(
            (v.state, v.expires, v.registrar),
            (LineState::Unregistered, None, None)
        );
        assert_eq!(v.last_failure, None, "a shutdown is no failure");
        // Events of a line the fleet no longer holds leave no view.
        views.remove_line(1);
        reg(&views, registering(Purpose::Initial));
        assert_eq!(views.line(1), None);
        assert_eq!(views.count_by_state().values().sum::<usize>(), 0);
    }

    #[test]
    fn a_dns_failure_is_a_label_of_a_fixed_set_and_its_error_is_shown() {
        let views = LineViews::default();
        views.add_line(1);
        views.apply(&LineEvent {
            at: Instant::now(),
            line: 1,
            event: crate::events::DnsEvent {
                kind: crate::events::DnsEventKind::Failed,
                name: "lab.test".into(),
                query_type: "SRV",
                error: "no response (timeout) from 127.0.0.2:5300".into(),
                call_id: "r".into(),
            }
            .into(),
        });
        let failure = views.line(1).unwrap().last_failure.unwrap();
        assert_eq!(failure.reason, "no response (timeout) from 127.0.0.2:5300");
        let derived = reg(
            &views,
            EventKind::Backoff {
                wait: Duration::from_secs(5),
                failures: 1,
            },
        );
        assert_eq!(derived.failure_reason.as_deref(), Some("dns_failed"));
    }

    #[test]
    fn subscriptions_are_kept_by_call_id_with_their_last_event() {
        let views = LineViews::default();
        views.add_line(1);
        sub(
            &views,
            "s1",
            SubscriptionEventKind::Subscribed {
                expires: Duration::from_secs(300),
            },
        );
        sub(
            &views,
            "s1",
            SubscriptionEventKind::Notified {
                state: "active".into(),
                content_type: None,
                body: Default::default(),
            },
        );
        sub(
            &views,
            "s2",
            SubscriptionEventKind::Failed {
                status: Some(489),
                retry_in: Duration::from_secs(30),
            },
        );
        let subs = views.line(1).unwrap().subscriptions;
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].package, "message-summary");
        assert_eq!(subs[0].last_event, "subscription_notify");
        assert_eq!(subs[0].expires, Some(300));
        assert_eq!(subs[0].notify_state.as_deref(), Some("active"));
        assert_eq!(
            (subs[1].last_event, subs[1].expires),
            ("subscription_failed", None)
        );
    }
}
