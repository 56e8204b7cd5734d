//! The line's inputs and outputs: everything a driver feeds a line and
//! everything it must carry out, as plain data.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dns::{DnsNote, ResolveTarget, RouteSet};
use crate::flow_failure::{FlowLostKind, RouteFailureKind};
use crate::group_failback::GroupCommand;
use crate::message::Message;
use crate::registration::FailReason;
use crate::route::{FlowKey, Route};

use super::events::LineEventBody;

/// What the driver tells the line.
#[derive(Debug)]
pub enum Input {
    /// A message the flow `flow` delivered to this line.
    Received {
        /// The flow it came on.
        flow: FlowKey,
        /// The message.
        message: Message,
    },
    /// A flow the line asked for ([`Output::OpenFlow`]) is open; `local`
    /// is our address on it (Via, Contact, SDP).
    FlowOpened {
        /// The flow.
        flow: FlowKey,
        /// Our address on it.
        local: SocketAddr,
    },
    /// A flow the line asked for cannot be had. How it failed reaches the
    /// line separately ([`Input::RouteFailed`]) from the flow itself.
    FlowUnavailable {
        /// The flow.
        flow: FlowKey,
        /// Why (for the log).
        reason: String,
    },
    /// The flow could not reach its destination (ICMP, refused, connect
    /// timeout, TLS handshake).
    RouteFailed {
        /// The flow.
        flow: FlowKey,
        /// How it failed.
        kind: RouteFailureKind,
    },
    /// An open flow was lost (FIN, RST, keep-alive loss).
    FlowLost {
        /// The flow.
        flow: FlowKey,
        /// How it was lost.
        kind: FlowLostKind,
    },
    /// The routes of target `index` ([`Output::Resolve`]).
    Resolved {
        /// The target's index in the line's targets.
        index: usize,
        /// Its routes.
        set: RouteSet,
    },
    /// Target `index` gave no routes; asked again later.
    ResolveFailed {
        /// The target's index in the line's targets.
        index: usize,
        /// What the resolver said.
        error: String,
    },
    /// A target's routes changed on a refresh (TTL, cache restore).
    RouteSetChanged {
        /// The target.
        target: ResolveTarget,
        /// Its routes now.
        set: RouteSet,
    },
    /// DNS trouble met resolving `target`: failed queries, a restored cache.
    DnsReport {
        /// The target.
        target: ResolveTarget,
        /// The queries worth telling.
        notes: Vec<DnsNote>,
        /// The resolution's error, when it gave no route.
        failed: Option<String>,
        /// The route set in force.
        current: Option<RouteSet>,
    },
    /// The fleet's pacer lets the REGISTER exchange asked for with `ticket`
    /// ([`Output::RequestSlot`]) start.
    SlotGranted {
        /// The ticket of [`Output::RequestSlot`].
        ticket: u64,
    },
    /// Whether a call the line does not run itself (an embedding
    /// application's) is up on the line.
    ExternalCalls(bool),
    /// The fleet's failback coordinator (enhanced failover).
    Group(GroupCommand),
    /// End calls, withdraw subscriptions, remove every binding.
    Shutdown,
    /// The shutdown's un-REGISTERs were given their time: unanswered ones
    /// are reported unconfirmed.
    ShutdownTimedOut,
    /// A deadline ([`Output::Timeout`]) may have passed. Spurious ones are
    /// no-ops: drivers need no guards.
    Timeout,
}

/// What the line asks of the driver, in order.
#[derive(Debug)]
pub enum Output {
    /// Open (or join) the flow of `route`, then answer
    /// [`Input::FlowOpened`] or [`Input::FlowUnavailable`].
    OpenFlow {
        /// The route whose flow to open.
        route: Route,
    },
    /// Send `message` on the open flow `flow`.
    Transmit {
        /// The flow.
        flow: FlowKey,
        /// The message.
        message: Message,
    },
    /// Tell `flow`'s router that the dialog (Call-ID, our tag) is this
    /// line's; comes before the message that needs it.
    AnnounceDialog {
        /// The flow.
        flow: FlowKey,
        /// The dialog's Call-ID.
        call_id: String,
        /// Our tag in it.
        local_tag: String,
    },
    /// The dialog ended: `flow`'s router forgets it.
    ForgetDialog {
        /// The flow.
        flow: FlowKey,
        /// The dialog's Call-ID.
        call_id: String,
        /// Our tag in it.
        local_tag: String,
    },
    /// `flow`'s router forgets the INVITE/ACK transaction `branch`.
    TransactionDone {
        /// The flow.
        flow: FlowKey,
        /// The transaction's top Via branch.
        branch: String,
    },
    /// The line no longer uses `flow` (the flow closes when its last line
    /// lets go).
    ReleaseFlow {
        /// The flow.
        flow: FlowKey,
    },
    /// `flow` failed or was lost: forget it; the next send opens a new one.
    DetachFlow {
        /// The flow.
        flow: FlowKey,
    },
    /// Resolve target `index`; answer [`Input::Resolved`] or
    /// [`Input::ResolveFailed`].
    Resolve {
        /// The target's index in the line's targets (echoed in the answer).
        index: usize,
        /// What to resolve.
        target: ResolveTarget,
    },
    /// Send one RTP packet from the call's media port.
    Media {
        /// The call whose port sends it.
        call_id: String,
        /// The peer's RTP address.
        to: SocketAddr,
        /// The RTP packet.
        packet: Vec<u8>,
    },
    /// Something happened on the line (the event stream).
    Event(LineEventBody),
    /// Something an operator may want in the log.
    Diagnostic(Diagnostic),
    /// Ask the fleet's pacer (`sipfleet.register.rate`, `.window`) for a
    /// slot to start a REGISTER exchange on `flow`; answer
    /// [`Input::SlotGranted`] with `ticket` (at once when nothing paces).
    RequestSlot {
        /// The flow the exchange goes on (the per-flow window).
        flow: FlowKey,
        /// Echoed in [`Input::SlotGranted`].
        ticket: u64,
    },
    /// The exchange that held (or asked for) the line's slot is over.
    SlotDone,
    /// Tell the fleet's failback coordinator whether the line's calls are
    /// up (enhanced failover: no line of the group fails back in a call).
    GroupCallsActive(bool),
    /// Tell the coordinator the line failed back (the group follows).
    GroupFailedBack,
    /// The earliest deadline moved: wake the line then with
    /// [`Input::Timeout`]. Only emitted when it changes.
    Timeout(Instant),
}

/// A log-worthy happening with no place in the event stream; the driver
/// picks the level ([`Diagnostic::is_operator_problem`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diagnostic {
    /// A target gave no routes; asked again in `retry_in`.
    NoRoutes {
        /// The target's name.
        target: String,
        /// Why.
        error: String,
        /// When it is asked again.
        retry_in: Duration,
    },
    /// A flow asked for could not be had.
    FlowUnusable {
        /// The flow.
        flow: FlowKey,
        /// Why.
        reason: String,
    },
    /// A REGISTER could not be built: the attempt ends at once.
    RegisterNotBuilt {
        /// Why.
        error: String,
    },
    /// A response to our REGISTER that is not ours or cannot be read.
    RegisterResponseDropped {
        /// Why.
        error: String,
    },
    /// The registration failed (the event says so too); `reason` tells
    /// whether the operator must act.
    RegistrationFailed {
        /// The final response, if one ended it.
        status: Option<u16>,
        /// Why it is not retried.
        reason: FailReason,
        /// The route it failed on.
        route: Option<Route>,
    },
    /// A route failed; `tls_detail` when it was the TLS handshake (a
    /// certificate problem needs an operator, not patience).
    RouteFailed {
        /// The route.
        route: Route,
        /// How it failed.
        kind: String,
        /// The TLS verification error, for a failed handshake.
        tls_detail: Option<String>,
    },
    /// An open flow was lost.
    FlowLost {
        /// The route.
        route: Route,
        /// How it was lost.
        kind: String,
    },
    /// A request from an SBC that does not hold our registration
    /// (`onlySignalWithRegistered`), dropped.
    IgnoredRequest {
        /// The flow it came on.
        flow: FlowKey,
        /// Its method.
        method: String,
    },
    /// An INVITE above `callsPerLineKey`, answered 486.
    CallsPerLineReached {
        /// `callsPerLineKey`.
        limit: u32,
    },
    /// An INVITE that could not start a call, answered 400.
    MalformedInvite {
        /// What was wrong.
        error: String,
    },
    /// A call refused for want of a media port.
    MediaRefused {
        /// The refused call.
        call_id: String,
        /// Why no port.
        error: String,
    },
    /// An emergency call that could not be placed.
    EmergencyNotPlaced {
        /// Why.
        error: String,
    },
    /// An INVITE that could not go on the next route.
    InviteNotRetried {
        /// The call.
        call_id: String,
        /// Why.
        error: String,
    },
}

impl Diagnostic {
    /// Whether an operator must act (a WARN), rather than a line working
    /// through trouble (INFO/DEBUG).
    pub fn is_operator_problem(&self) -> bool {
        match self {
            Diagnostic::NoRoutes { .. }
            | Diagnostic::RegisterNotBuilt { .. }
            | Diagnostic::RegisterResponseDropped { .. }
            | Diagnostic::MediaRefused { .. }
            | Diagnostic::EmergencyNotPlaced { .. } => true,
            Diagnostic::RegistrationFailed { reason, .. } => {
                !matches!(reason, FailReason::RoutesExhausted | FailReason::Denied)
            }
            Diagnostic::RouteFailed { tls_detail, .. } => tls_detail.is_some(),
            _ => false,
        }
    }
}
