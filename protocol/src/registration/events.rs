//! What goes in and out of a [`Registration`](super::Registration): abstract,
//! typed, and independent of the SIP message model. The line actor turns a
//! [`SendRegister`] into a REGISTER with the message module and turns received
//! responses and transport errors into [`RegisterResponse`] and
//! [`TransportError`].

use std::time::Duration;

use serde::Serialize;

use crate::json_fields::{duration_ms, duration_secs};
use crate::route::Route;

/// Send a REGISTER. A `retransmission` repeats the transaction's previous copy
/// byte for byte (same branch, same CSeq); otherwise this is a new transaction
/// with a new branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRegister {
    /// The route (flow) to send it on.
    pub route: Route,
    /// The registration's Call-ID.
    pub call_id: String,
    /// The request's CSeq.
    pub cseq: u32,
    /// Identifies the client transaction; a new value means a new branch.
    pub transaction: u64,
    /// The `Expires` to request, seconds; 0 removes the binding.
    pub expires: u32,
    /// A retransmission of the transaction's last copy (UDP Timer E).
    pub retransmission: bool,
    /// Answer the last 401/407 challenge with an Authorization header.
    pub with_credentials: bool,
}

/// One output of the state machine, drained with
/// [`Registration::poll_output`](super::Registration::poll_output) in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this REGISTER.
    Send(SendRegister),
    /// Something happened (the event stream).
    Event(Event),
    /// Paced lines only ([`RegistrationSettings::paced`]): a new REGISTER
    /// exchange waits for the fleet's pacer. Answer with
    /// [`Registration::handle_slot_granted`] and the request's ticket; the
    /// REGISTER (and every timer of its transaction) starts then.
    ///
    /// [`RegistrationSettings::paced`]: super::RegistrationSettings::paced
    /// [`Registration::handle_slot_granted`]: super::Registration::handle_slot_granted
    RequestSlot(SlotRequest),
    /// The exchange that asked for (or held) the last slot is over: the
    /// pacer may give its place in the flow's window to another line. Each
    /// [`Output::RequestSlot`] is followed by exactly one `SlotDone`, before
    /// the next `RequestSlot`.
    SlotDone,
}

/// A paced line asks to start a new REGISTER exchange on `route`'s flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRequest {
    /// The route whose flow the exchange goes on.
    pub route: Route,
    /// Echoed in the grant: a grant for an older request (the line moved on
    /// while the grant was on its way) is ignored.
    pub ticket: u64,
    /// What the exchange is for (never [`Purpose::Authenticate`] or
    /// [`Purpose::MinExpires`]: those follow-ups belong to the exchange that
    /// holds the slot).
    pub purpose: Purpose,
}

/// A final or provisional response matched to one of our REGISTER
/// transactions by the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterResponse {
    /// CSeq of the request this answers; stale answers are ignored.
    pub cseq: u32,
    /// The response's status code.
    pub status: u16,
    /// The expiry granted for our Contact (Contact `expires` or `Expires`).
    pub expires: Option<Duration>,
    /// The `Retry-After` of a 503, if any.
    pub retry_after: Option<Duration>,
    /// The Min-Expires of a 423 (Interval Too Brief).
    pub min_expires: Option<Duration>,
    /// The `stale` flag of a 401/407 challenge.
    pub stale: bool,
    /// A 2xx that lists Contacts, none of them the one this line sent: the
    /// registrar did not take our binding (RFC 3261 10.2.4), whatever else
    /// it lists.
    pub binding_missing: bool,
    /// A 401/407 whose challenges the line cannot answer (not Digest, an
    /// unknown algorithm or qop, no realm or nonce, malformed), with why.
    pub unusable_challenge: Option<String>,
}

impl RegisterResponse {
    /// A response with only a CSeq and a status.
    pub fn new(cseq: u32, status: u16) -> Self {
        RegisterResponse {
            cseq,
            status,
            expires: None,
            retry_after: None,
            min_expires: None,
            stale: false,
            binding_missing: false,
            unusable_challenge: None,
        }
    }
}

/// Transport trouble reported for a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// An ICMP error for a request: immediate failover.
    Icmp,
    /// A TCP connect refused (RST to SYN): immediate failover.
    Refused,
    /// The TLS handshake failed (certificate not trusted, wrong name, ...):
    /// immediate failover like a refused connect, but reported apart, with
    /// the verification error, because it is a configuration problem to fix
    /// rather than an SBC that is down.
    Tls {
        /// The verification error.
        detail: String,
    },
    /// An established stream closed by the far end (FIN or RST): registration
    /// loss, back-off.
    FlowLost,
    /// Keep-alives unanswered: registration loss, back-off.
    KeepAliveLost,
}

/// Why a route was marked failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteFailReason {
    /// ICMP unreachable for a request.
    Icmp,
    /// TCP connect refused.
    Refused,
    /// The TLS handshake failed (the event's `detail` says why).
    Tls,
    /// No answer within the route's schedule or the 32 s budget.
    Timeout,
    /// 503 with `failoverOn503Response=1`.
    #[serde(rename = "503")]
    ServiceUnavailable,
    /// An open stream closed by the far end.
    FlowLost,
    /// Keep-alives unanswered.
    #[serde(rename = "keepalive_lost")]
    KeepAliveLost,
    /// A DNS refresh no longer lists the route.
    #[serde(rename = "dns_removed")]
    RemovedFromDns,
}

impl RouteFailReason {
    /// The reason's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteFailReason::Icmp => "icmp",
            RouteFailReason::Refused => "refused",
            RouteFailReason::Tls => "tls",
            RouteFailReason::Timeout => "timeout",
            RouteFailReason::ServiceUnavailable => "503",
            RouteFailReason::FlowLost => "flow_lost",
            RouteFailReason::KeepAliveLost => "keepalive_lost",
            RouteFailReason::RemovedFromDns => "dns_removed",
        }
    }
}

/// Why a REGISTER transaction was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// First registration, or the first after a back-off.
    Initial,
    /// Refresh on the current route before the registration lapses.
    Refresh,
    /// The next route of a failover walk.
    Failover,
    /// Trying the primary again.
    Failback,
    /// Re-sent with credentials after a 401/407.
    Authenticate,
    /// Re-sent with a longer expiry after a 423 (Interval Too Brief).
    MinExpires,
    /// `Expires: 0` (shutdown or `unRegisterOnFailBack`).
    Unregister,
}

impl Purpose {
    /// Whether a request of this purpose starts a new exchange, which a paced
    /// line starts only with a grant from the fleet's pacer. A follow-up to
    /// a 401/407 or a 423 belongs to the exchange it answers: pacing it
    /// would double the latency of every authenticated registration.
    pub fn starts_exchange(self) -> bool {
        !matches!(self, Purpose::Authenticate | Purpose::MinExpires)
    }

    /// The purpose's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Initial => "initial",
            Purpose::Refresh => "refresh",
            Purpose::Failover => "failover",
            Purpose::Failback => "failback",
            Purpose::Authenticate => "authenticate",
            Purpose::MinExpires => "min_expires",
            Purpose::Unregister => "unregister",
        }
    }
}

/// Why the line is no longer registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnregisterReason {
    /// `failRegistrationOn=1`: the binding is dropped silently when failover
    /// begins.
    FailoverStarted,
    /// A denial (403, ...), or 503 without failover.
    Rejected,
    /// The flow holding the binding was lost.
    FlowLost,
    /// The flow's keep-alives went unanswered.
    #[serde(rename = "keepalive_lost")]
    KeepAliveLost,
    /// `failRegistrationOn=0` kept the old binding through a failover until it
    /// lapsed.
    Expired,
    /// `Expires: 0` sent before failing back (`unRegisterOnFailBack=1`).
    Failback,
    /// Shutdown: the `Expires: 0` was answered 2xx, the binding is gone.
    Shutdown,
    /// Shutdown: the `Expires: 0` got no answer, a non-2xx answer, a
    /// transport error, or could not be sent; the binding may still be at
    /// the SBC until it lapses.
    UnregisterUnconfirmed,
}

impl UnregisterReason {
    /// The loss behind a FIN/RST or keep-alive failure.
    pub(crate) fn lost(reason: RouteFailReason) -> Self {
        if reason == RouteFailReason::KeepAliveLost {
            UnregisterReason::KeepAliveLost
        } else {
            UnregisterReason::FlowLost
        }
    }

    /// The reason's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnregisterReason::FailoverStarted => "failover_started",
            UnregisterReason::Rejected => "rejected",
            UnregisterReason::FlowLost => "flow_lost",
            UnregisterReason::KeepAliveLost => "keepalive_lost",
            UnregisterReason::Expired => "expired",
            UnregisterReason::Failback => "failback",
            UnregisterReason::Shutdown => "shutdown",
            UnregisterReason::UnregisterUnconfirmed => "unregister_unconfirmed",
        }
    }
}

/// Why linked subscriptions (BLF, SCA, ...) must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidationReason {
    /// `failRegistrationOn=1`: failover began.
    FailoverStarted,
    /// A REGISTER was accepted by a different server.
    NewRegistrar,
    /// The registration ended.
    Unregistered,
}

/// A state change worth telling the world about; `name()` is the `event`
/// field of the JSON event stream, the tag of its derived `Serialize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A REGISTER transaction started (refreshes and un-REGISTERs included).
    Registering {
        /// Its CSeq.
        cseq: u32,
        /// The `Expires` asked, seconds (0: un-REGISTER).
        expires: u32,
        /// Why it was sent.
        purpose: Purpose,
    },
    /// The registrar accepted the binding on the event's route.
    Registered {
        /// Granted, whole seconds in JSON.
        #[serde(serialize_with = "duration_secs")]
        expires: Duration,
        /// Whether the route is the primary.
        primary: bool,
    },
    /// The event's route failed.
    RouteFailed {
        /// How.
        reason: RouteFailReason,
        /// What the transport said, when it says more than the reason (the
        /// TLS verification error). Absent from the JSON when `None`:
        /// no other event has `detail`.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Moving on from `from` to the event's route.
    Failover {
        /// The route left.
        from: Route,
    },
    /// Leaving `from` for the primary, the event's route.
    Failback {
        /// The route left.
        from: Route,
    },
    /// Waiting `wait` before the next attempt; `failures` counts the
    /// consecutive failures before this one.
    Backoff {
        /// How long.
        #[serde(rename = "wait_ms", serialize_with = "duration_ms")]
        wait: Duration,
        /// Consecutive failures before this one.
        failures: u32,
    },
    /// The line is no longer registered.
    Unregistered {
        /// Why.
        reason: UnregisterReason,
    },
    /// A registration attempt ended without a binding: `status` is the final
    /// response, if one ended it, and `reason` says why it is not retried.
    RegistrationFailed {
        /// The final response, if one ended it.
        status: Option<u16>,
        /// Why it is not retried.
        reason: FailReason,
    },
    /// Subscriptions tied to the registration must be re-created.
    SubscriptionsInvalidated {
        /// Why.
        reason: InvalidationReason,
    },
    /// Failback came due but waits: the event's route is the primary it
    /// will go to once `reason` clears.
    FailbackHeld {
        /// What holds it.
        reason: FailbackHeldReason,
    },
}

/// Why a registration attempt ended without a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// Every route of the walk failed, or Timer B/F ended the walk.
    RoutesExhausted,
    /// A final response that is neither success, challenge nor failover
    /// (403, 404, 3xx, 503 without failover, ...).
    Denied,
    /// A second challenge with `stale=false` from the route that challenged:
    /// the credentials were refused.
    CredentialsRejected,
    /// A challenge the line cannot answer (not Digest, unknown algorithm or
    /// qop, missing realm or nonce, malformed).
    UnsupportedChallenge,
    /// A second `stale=true` challenge in a row from one route: a registrar
    /// that never accepts its own nonces would otherwise be asked forever.
    StaleNonceLoop,
    /// A 423 that does not raise the expiry, or a second 423 in one walk
    /// (RFC 3261 10.2.8 asks for one retry).
    IntervalTooBrief,
    /// A 2xx granting 0 s.
    ZeroExpires,
    /// A 2xx listing bindings, none of them the Contact the line sent.
    BindingMissing,
    /// The line could not build the request (no challenge to answer).
    RequestNotBuilt,
}

impl FailReason {
    /// The reason's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::RoutesExhausted => "routes_exhausted",
            FailReason::Denied => "denied",
            FailReason::CredentialsRejected => "credentials_rejected",
            FailReason::UnsupportedChallenge => "unsupported_challenge",
            FailReason::StaleNonceLoop => "stale_nonce_loop",
            FailReason::IntervalTooBrief => "interval_too_brief",
            FailReason::ZeroExpires => "zero_expires",
            FailReason::BindingMissing => "binding_missing",
            FailReason::RequestNotBuilt => "request_not_built",
        }
    }
}

/// Why a due failback waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailbackHeldReason {
    /// A call is up on the line (with enhanced failover: on any line).
    CallActive,
    /// A REGISTER of the line is still in flight.
    RequestInFlight,
}

impl FailbackHeldReason {
    /// The reason's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailbackHeldReason::CallActive => "call_active",
            FailbackHeldReason::RequestInFlight => "request_in_flight",
        }
    }
}

impl EventKind {
    /// The `event` field of the JSON form.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Registering { .. } => "registering",
            EventKind::Registered { .. } => "registered",
            EventKind::RouteFailed { .. } => "route_failed",
            EventKind::Failover { .. } => "failover",
            EventKind::Failback { .. } => "failback",
            EventKind::Backoff { .. } => "backoff",
            EventKind::Unregistered { .. } => "unregistered",
            EventKind::RegistrationFailed { .. } => "registration_failed",
            EventKind::SubscriptionsInvalidated { .. } => "subscriptions_invalidated",
            EventKind::FailbackHeld { .. } => "failback_held",
        }
    }
}

/// An event with the route it concerns and the line's Call-ID at the time.
/// Its JSON form is the kind's (`event` and its fields) with `route` (or
/// `null`) and `call_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
    /// `None` only when no route is known (back-off without routes).
    pub route: Option<Route>,
    /// The line's registration Call-ID at the time.
    pub call_id: String,
}
