//! What a line tells the world: the events of its machines (registration,
//! calls, subscriptions, line seize), its DNS trouble and its refused
//! resources, as one [`LineEventBody`].
//!
//! The JSON form is the derived `Serialize`, written once as attributes on
//! the event types where they are defined; the actors' event sink stamps
//! each body with its time and line and writes it.

use serde::{Serialize, Serializer};

use crate::call::CallEvent;
use crate::json_fields::duration_ms;
use crate::line_seize::LineSeizeEvent;
use crate::registration::Event;
use crate::route::Route;
use crate::subscription::SubscriptionEvent;

/// What happened: the event of one of the line's machines. Serialized as
/// that event: `event`, `route`, `call_id` and the kind's fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LineEventBody {
    /// The registration's (`registering`, `registered`, `failover`, ...).
    Registration(Event),
    /// A call's (`call_started`, ..., `call_ended`).
    Call(CallEvent),
    /// A subscription's (`subscribed`, `subscription_notify`, ...).
    Subscription(SubscriptionEvent),
    /// The line seize in front of an emergency call.
    LineSeize(LineSeizeEvent),
    /// DNS trouble (`dns_failed`, `dns_restored`).
    Dns(#[serde(serialize_with = "dns_json")] DnsEvent),
    /// A refused resource (`resource_exhausted`).
    Resource(ResourceEvent),
}

/// `resource_exhausted`: the fleet-wide ceiling on media sockets
/// (`sipfleet.sockets.max`) was reached, or the bind itself failed, when a
/// call of this line needed one; that call was refused (503 to an incoming
/// call, an error to `PlaceCall`). Other lines' flows and DNS keep the
/// file descriptors held back from the ceiling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename = "resource_exhausted")]
pub struct ResourceEvent {
    /// `sockets`.
    pub resource: &'static str,
    /// The ceiling in force.
    pub max: usize,
    /// Sockets open when the call asked.
    pub open: usize,
    /// `incoming_call` or `outgoing_call`.
    pub refused: &'static str,
    /// What failed (the ceiling, or the OS error of the bind).
    pub error: String,
    /// The refused call's Call-ID.
    pub call_id: String,
    /// The refused call's SBC.
    pub route: Route,
}

impl From<ResourceEvent> for LineEventBody {
    fn from(e: ResourceEvent) -> Self {
        LineEventBody::Resource(e)
    }
}

/// DNS trouble a line met: `dns_failed` (a query failed and nothing stood
/// in, or the whole resolution produced no route) or `dns_restored`
/// (dynamic cache restore served the last good answer past its TTL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsEvent {
    /// Failed, or restored from the cache.
    #[serde(flatten)]
    pub kind: DnsEventKind,
    /// The name queried (the configured name for a whole resolution).
    pub name: String,
    /// `NAPTR`, `SRV`, `A`, or `routes` for a whole resolution.
    pub query_type: &'static str,
    /// What went wrong on the network.
    pub error: String,
    /// The line's registration Call-ID at the time.
    pub call_id: String,
}

/// Which DNS event it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event")]
pub enum DnsEventKind {
    /// The query failed and nothing stood in.
    #[serde(rename = "dns_failed")]
    Failed,
    /// Used for `ttl` before the next query goes to the network.
    #[serde(rename = "dns_restored")]
    Restored {
        /// `dns.cache.dynamicRestore.ttl`.
        #[serde(rename = "ttl_ms", serialize_with = "duration_ms")]
        ttl: std::time::Duration,
    },
}

impl From<DnsEvent> for LineEventBody {
    fn from(e: DnsEvent) -> Self {
        LineEventBody::Dns(e)
    }
}

impl From<Event> for LineEventBody {
    fn from(e: Event) -> Self {
        LineEventBody::Registration(e)
    }
}

impl From<CallEvent> for LineEventBody {
    fn from(e: CallEvent) -> Self {
        LineEventBody::Call(e)
    }
}

impl From<SubscriptionEvent> for LineEventBody {
    fn from(e: SubscriptionEvent) -> Self {
        LineEventBody::Subscription(e)
    }
}

impl From<LineSeizeEvent> for LineEventBody {
    fn from(e: LineSeizeEvent) -> Self {
        LineEventBody::LineSeize(e)
    }
}

impl LineEventBody {
    /// The `event` field of the JSON form.
    pub fn name(&self) -> &'static str {
        match self {
            LineEventBody::Registration(e) => e.kind.name(),
            LineEventBody::Call(e) => e.kind.name(),
            LineEventBody::Subscription(e) => e.kind.name(),
            LineEventBody::LineSeize(e) => e.name(),
            LineEventBody::Dns(e) => match e.kind {
                DnsEventKind::Failed => "dns_failed",
                DnsEventKind::Restored { .. } => "dns_restored",
            },
            LineEventBody::Resource(_) => "resource_exhausted",
        }
    }

    /// The route the event happened on, if any.
    pub fn route(&self) -> Option<&Route> {
        match self {
            LineEventBody::Registration(e) => e.route.as_ref(),
            LineEventBody::Call(e) => Some(&e.route),
            LineEventBody::Subscription(e) => e.route.as_ref(),
            LineEventBody::LineSeize(e) => Some(&e.route),
            LineEventBody::Dns(_) => None,
            LineEventBody::Resource(e) => Some(&e.route),
        }
    }

    /// The Call-ID of the dialog (or registration) concerned.
    pub fn call_id(&self) -> &str {
        match self {
            LineEventBody::Registration(e) => &e.call_id,
            LineEventBody::Call(e) => &e.call_id,
            LineEventBody::Subscription(e) => &e.call_id,
            LineEventBody::LineSeize(e) => &e.call_id,
            LineEventBody::Dns(e) => &e.call_id,
            LineEventBody::Resource(e) => &e.call_id,
        }
    }
}

/// A DNS event concerns no route: `route` is `null`, present like in every
/// other event.
fn dns_json<S: Serializer>(event: &DnsEvent, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct WithRoute<'a> {
        #[serde(flatten)]
        event: &'a DnsEvent,
        route: Option<&'a Route>,
    }
    WithRoute { event, route: None }.serialize(s)
}
