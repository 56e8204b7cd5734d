//! One call of a line: the INVITE dialog usage of RFC 3261 (sections 12-15)
//! with an SDP offer/answer for one audio stream, as a sans-IO state machine.
//!
//! [`Call`] takes `now` with every input and hands back [`CallOutput`]s
//! (messages to send, each with the SBC route it goes to, and [`CallEvent`]s)
//! and its next deadline ([`Call::poll_timeout`]). Identifiers (tags,
//! branches, cnonces) come from an injected seed. Request timing reuses
//! [`crate::transaction::ClientTransaction`]: INVITE Timer A/B and the
//! non-INVITE Timer E/F of BYE and CANCEL, with the guide's overrides.
//!
//! Hand-written: the SIP stacks on crates.io (`rsipstack`, `ezk-sip`) own
//! their sockets and clocks, and none has the guide's failover rules.
//!
//! # Driving it
//!
//! The line actor creates a call with [`Call::outgoing`] (a `call LINE URI`
//! command) or [`Call::incoming`] (an INVITE whose Call-ID no call of the
//! line [`Call::accepts`]), feeds it every message with that Call-ID
//! ([`Call::handle_message`]), its timers ([`Call::handle_timeout`]),
//! commands ([`Call::answer`], [`Call::hangup`], [`Call::hold`],
//! [`Call::resume`]) and the registrar in force
//! ([`Call::handle_registrar`]); then it drains [`Call::poll_output`]. A
//! message no call accepts gets [`unknown_dialog_response`] (481).
//!
//! ```
//! use std::time::Instant;
//! use sipfleet_protocol::call::{Call, CallOutput, CallSettings, OutgoingCall};
//! use sipfleet_protocol::message::{HeaderName, Message, Response, StatusCode};
//! use sipfleet_protocol::register_request::LineIdentity;
//! use sipfleet_protocol::route::{Route, RouteSource, Transport};
//!
//! let sbc = Route {
//!     transport: Transport::Udp,
//!     host: "sbc1.example.com".into(),
//!     addr: "192.0.2.1:5060".parse().unwrap(),
//!     group: 0,
//!     priority: 10,
//!     weight: 0,
//!     source: RouteSource::Network,
//! };
//! let me = LineIdentity {
//!     address: "1001".into(),
//!     display_name: None,
//!     domain: "example.com".into(),
//!     user_agent: "sipfleet".into(),
//! };
//! let now = Instant::now();
//! let mut call = Call::outgoing(
//!     CallSettings::default(),
//!     me,
//!     None,
//!     OutgoingCall {
//!         target: "sip:1002@example.com".into(),
//!         route: sbc.clone(),
//!         local: "192.0.2.10:5060".parse().unwrap(),
//!         rtp: "192.0.2.10:40000".parse().unwrap(),
//!         last_route: true,
//!     },
//!     "a84b4c76e66710@192.0.2.10".into(),
//!     42,
//!     now,
//! )
//! .unwrap();
//! let mut invite = None;
//! while let Some(out) = call.poll_output() {
//!     match out {
//!         // Serialize with `message.to_bytes()` and send on the flow to `route`.
//!         CallOutput::Send(t) => invite = Some(t.message),
//!         // `event.kind.name()` is the JSON event name: "call_started".
//!         CallOutput::Event(event) => assert_eq!(event.kind.name(), "call_started"),
//!     }
//! }
//! // The callee answers (the SBC relays a 200 with its Contact).
//! let invite = invite.unwrap();
//! let mut ok = Response::for_request(invite.as_request().unwrap(), StatusCode::OK, Some("b0b"));
//! ok.headers_mut().push(HeaderName::Contact, "<sip:1002@198.51.100.2>");
//! call.handle_message(now, &Message::Response(ok));
//! let sent: Vec<_> = std::iter::from_fn(|| call.poll_output()).collect();
//! // The ACK goes to the remote target; the call is up and blocks failback.
//! assert!(matches!(&sent[0], CallOutput::Send(t)
//!     if t.message.as_request().unwrap().uri_str() == "sip:1002@198.51.100.2"));
//! assert!(call.is_active());
//! ```
//!
//! # States
//!
//! The call's state ([`CallState`] from [`Call::state`]) is an enum whose
//! busy variants carry the transactions they run (as h2's stream state
//! does): `Calling` and `Ringing` the INVITE, `Cancelling` the INVITE and
//! its CANCEL, `Established` a re-INVITE, `Terminating` the BYE (and a
//! re-INVITE still running). The outgoing side is RFC 3261 figure 5 (the
//! INVITE client transaction) seen from the dialog; the incoming side is
//! figure 7. Labels are the event, then the action.
//!
//! ```text
//!  OUTGOING (figure 5)                      INCOMING (figure 7)
//!
//!  outgoing(): INVITE + offer               incoming(): 100, 180
//!       |                                        |
//!       v       Timer A: INVITE again            v      ring timeout: 480
//!  +---------+  route failed: RouteFailed  +----------+ refuse_no_media(): 503
//!  | Calling |  retry_on_route(): INVITE   | Incoming | hangup(): 603
//!  +---------+  (CSeq+1, same Call-ID)     +----------+ CANCEL: 200, 487
//!   |      |                                 |          --------------> Ended
//!   |      | 1xx (not 100)                   | answer() (or autoAnswer):
//!   |      v                                 | 200 + SDP
//!   |  +---------+                           v
//!   |  | Ringing |                     +-----------+  200 again every T1..T2
//!   |  +---------+                     | Answering |  Timer H: BYE (Terminating)
//!   |    |    | hangup(): CANCEL       +-----------+
//!   |    |    | (hangup() in Calling:        |
//!   |    |    |  CANCEL at the first 1xx)    | ACK (after hangup(): BYE)
//!   |    |    v                              |
//!   |    |  +------------+  487: ACK --------|-------------------> Ended
//!   |    |  | Cancelling |  64*T1 and no final response ---------> Ended
//!   |    |  +------------+                   |
//!   |    |    | 2xx crossed the CANCEL:      |
//!   |    |    | ACK, then BYE                |
//!   | 2xx: ACK (a new transaction,           |
//!   |    |    | to the remote target)        |
//!   v    v    v                              v
//!  +-----------------------------------------------------+  hold(), resume():
//!  |                     Established                     |  re-INVITE; a peer's
//!  +-----------------------------------------------------+  re-INVITE: 200 + SDP
//!     | hangup(): BYE                            ^
//!     | re-INVITE unanswered: BYE                | 401/407 to the BYE:
//!     | no ACK to a 2xx (Timer H): BYE           | BYE with credentials
//!     v                                          |
//!  +-------------+-------------------------------+
//!  | Terminating |  final response to the BYE, or Timer F ------> Ended
//!  +-------------+
//!
//!  -> Ended also from: 3xx-6xx to the INVITE (ACK in its transaction,
//!  figure 5 Completed), Timer B or give_up() (timeout), a 401/407 that
//!  cannot be answered, a transport error (not in Calling, Incoming or
//!  Established), the peer's BYE (200), 481/408 to a re-INVITE, and a
//!  request that onlySignalWithRegistered forbids.
//!
//!  +-------+  still runs: Timer G/H of a rejection we sent, the BYEs to
//!  | Ended |  other forks, and for an outgoing call the window for a late
//!  +-------+  2xx (64*T1; RFC 6026 Timer M): it gets an ACK and a BYE.
//! ```
//!
//! An INVITE we receive (initial or re-INVITE) is a server transaction
//! (figure 7, with the Accepted state of RFC 6026) kept beside the dialog
//! state, because it outlives it: a rejection is repeated after the call
//! ended, and a retransmitted INVITE gets the last response again in every
//! state.
//!
//! ```text
//!  INVITE: 100 (and 180)
//!       |
//!       v             300-699              ACK
//!  +------------+ ----------------> +-----------+ -----> Timer G stops
//!  | Proceeding |  Timer G (UDP):   | Completed |
//!  +------------+  repeat, T1..T2   +-----------+ -----> Timer H: gone
//!       |
//!       | 2xx (answer(), a peer's re-INVITE)
//!       v
//!  +----------+  2xx again every T1..T2 (13.3.1.4)
//!  | Accepted |  ACK: done (the initial INVITE: Established)
//!  +----------+  Timer H (64*T1): BYE, `no_ack`
//! ```
//!
//! The call's own timers sit in a table indexed by a `Timer` enum (ring
//! timeout, CANCEL give-up, 2xx / Timer G retransmission, Timer H, the
//! late-2xx window); the client transactions keep theirs (Timer A/B, E/F).
//! [`Call::poll_timeout`] is the first of the table, the state's
//! transactions and the BYEs to other forks.
//!
//! # Rules (RFC 3261 unless noted)
//!
//! * The ACK for a 2xx is a new transaction (new branch, the INVITE's CSeq
//!   number) sent to the remote target through the route set, which is the
//!   2xx's Record-Route reversed (12.1.2); a retransmitted 2xx gets the same
//!   ACK again. The ACK for 300-699 belongs to the INVITE transaction: same
//!   branch, the response's To (17.1.1.3).
//! * A 2xx from another fork, or to an attempt the call abandoned (route
//!   retry, CANCEL, timeout), gets an ACK and a BYE in its own dialog
//!   (13.2.2.4); the BYE is retransmitted like any non-INVITE request, and
//!   a retransmitted 2xx of that fork gets the same ACK. An ended outgoing
//!   call keeps a deadline 64*T1 after its end (or after its first 2xx,
//!   RFC 6026 Timer M) for such late answers: keep feeding it until
//!   [`Call::poll_timeout`] is `None`. A late copy of an incoming call's
//!   INVITE is absorbed.
//! * 401/407 to an INVITE: ACK, then the INVITE again with credentials:
//!   same Call-ID and From tag, CSeq + 1, new branch (22.2). A second
//!   challenge that is not `stale` ends the call.
//! * CANCEL (9.1) only after a provisional response; it copies the INVITE's
//!   branch, Request-URI, Call-ID, From, To and CSeq number. No final
//!   response within 64*T1 after the CANCEL ends the call.
//! * The guide's Call-ID rule: [`Call::retry_on_route`] re-sends the INVITE
//!   to another route (failover or failback) with the same Call-ID and From
//!   tag, a new branch and CSeq + 1.
//! * UAS: 100 then 180 at once; answering sends 200 with the SDP answer and
//!   retransmits it every T1, doubling up to T2 (13.3.1.4), until the ACK;
//!   no ACK in 64*T1 (Timer H) sends a BYE and ends the call.
//! * An incoming call holds no media port while it rings: the line binds
//!   one when it answers ([`Call::answer`] takes it; the 180 carries no
//!   SDP). No port to be had: [`Call::refuse_no_media`] sends 503
//!   (`resource_limit`). Unanswered for `sipfleet.call.ringTimeout`
//!   (default 60 s) after the INVITE: 480 (`ring_timeout`).
//! * `callsPerLineKey` (default 24): an INVITE for a new call on a line
//!   that holds that many gets a stateless 486 ([`refuse_incoming`]).
//! * An incoming CANCEL gets 200, and the INVITE 487 (9.2). Every 300-699
//!   we send to an INVITE over UDP is repeated by Timer G (T1 doubling to
//!   T2) until its ACK or Timer H (17.2.1), even after the call ended.
//! * An INVITE with a `Require` gets 420 (no extension is supported).
//! * In-dialog requests: tags must match (else 481), CSeq must grow (else
//!   500); a re-INVITE's 2xx updates the remote target (12.2).
//! * Hold is a re-INVITE with `a=sendonly` and a new SDP version; resume
//!   with `a=sendrecv`. A 481 or 408 to it ends the call (12.2.1.2).
//! * `onlySignalWithRegistered=1`: a request of the call (hold, resume,
//!   BYE) that would go to an SBC that does not hold the registration is
//!   not sent: the call ends with reason `registrar_changed` (the guide).

mod dialog;
mod machine;
mod requests;
mod state;
mod uac;
mod uas;

pub use dialog::{
    authorize, contact_for, host_port, local_party, read_challenge, unknown_dialog_response,
    Dialog, HeldChallenge, IdGen, Refusal, Transmit,
};
pub use machine::{Call, CallState, IncomingCall, OutgoingCall};

use std::time::Duration;

use serde::Serialize;

use crate::message::{Request, Response, StatusCode};
use crate::route::Route;
use crate::transaction::RetryPolicy;

/// Per-line call settings.
#[derive(Clone, Debug)]
pub struct CallSettings {
    /// Transaction timing (T1, T2, `retryMaxCount`, ...).
    pub policy: RetryPolicy,
    /// Answer incoming calls at once (load tests).
    pub auto_answer: bool,
    /// `onlySignalWithRegistered` in force (with `reRegisterOn=1`).
    pub only_signal_with_registered: bool,
    /// The `User-Agent` of the call's requests.
    pub user_agent: String,
    /// `sipfleet.call.ringTimeout`: an incoming call still ringing this long
    /// after its INVITE is refused with 480 (`None`: it rings until the
    /// caller gives up).
    pub ring_timeout: Option<Duration>,
    /// `reg.x.callsPerLineKey` / `call.callsPerLineKey`: calls the line
    /// holds at once (ringing, answering, established, hanging up); a new
    /// INVITE above it gets 486 ([`refuse_incoming`]).
    pub calls_per_line: u32,
}

/// Poly's default `call.callsPerLineKey` (most models): 24 calls per line.
pub const DEFAULT_CALLS_PER_LINE: u32 = 24;
/// The default `sipfleet.call.ringTimeout`: 60 s.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a line that holds `active` calls may start one more
/// (`callsPerLineKey`). Emergency calls are never refused.
pub fn line_has_room(settings: &CallSettings, active: usize) -> bool {
    u32::try_from(active).is_ok_and(|n| n < settings.calls_per_line)
}

/// An INVITE for a new call on a line that holds `active` calls: `None`
/// when the line takes it ([`Call::incoming`]), else the `486 Busy Here`
/// to send. The 486 is stateless (RFC 3261 8.2.7): no call, no timer, no
/// socket is kept for it, so a flood costs nothing that lasts; a
/// retransmitted INVITE meets the same rule and gets the same answer
/// (same To tag).
pub fn refuse_incoming(
    settings: &CallSettings,
    active: usize,
    invite: &Request,
) -> Option<Response> {
    if line_has_room(settings, active) {
        return None;
    }
    Some(Response::for_request(
        invite,
        StatusCode::BUSY_HERE,
        Some(BUSY_TAG),
    ))
}

/// The To tag of stateless 486s.
const BUSY_TAG: &str = "sf-busy";

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            policy: RetryPolicy::default(),
            auto_answer: false,
            only_signal_with_registered: false,
            user_agent: "sipfleet".into(),
            ring_timeout: Some(DEFAULT_RING_TIMEOUT),
            calls_per_line: DEFAULT_CALLS_PER_LINE,
        }
    }
}

/// Who placed the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    /// We sent the INVITE.
    Outgoing,
    /// The far end sent it.
    Incoming,
}

impl CallDirection {
    /// The direction's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Outgoing => "outgoing",
            CallDirection::Incoming => "incoming",
        }
    }
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// We hung up an established call (BYE).
    LocalHangup,
    /// The peer sent BYE.
    RemoteHangup,
    /// We cancelled our ringing call (CANCEL, 487).
    Cancelled,
    /// The caller cancelled before we answered.
    RemoteCancelled,
    /// We declined an incoming call (603).
    Declined,
    /// The INVITE got a 3xx-6xx final response.
    Rejected,
    /// No final response in time (Timer B), or no route left.
    Timeout,
    /// Our 2xx was never acknowledged (Timer H).
    NoAck,
    /// A challenge could not be answered (no credentials, repeated challenge).
    AuthFailed,
    /// `onlySignalWithRegistered`: the call's SBC no longer holds the
    /// registration and the call needed to signal.
    RegistrarChanged,
    /// An in-dialog request was answered 481/408: the dialog is gone.
    DialogGone,
    /// The transport to the call's SBC failed.
    TransportError,
    /// `sipfleet.call.ringTimeout`: an incoming call rang unanswered (480).
    RingTimeout,
    /// No media socket could be had (`sipfleet.sockets.max` reached, or the
    /// bind failed): an incoming call is refused with 503.
    ResourceLimit,
}

impl EndReason {
    /// The reason's JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::LocalHangup => "local_hangup",
            EndReason::RemoteHangup => "remote_hangup",
            EndReason::Cancelled => "cancelled",
            EndReason::RemoteCancelled => "remote_cancelled",
            EndReason::Declined => "declined",
            EndReason::Rejected => "rejected",
            EndReason::Timeout => "timeout",
            EndReason::NoAck => "no_ack",
            EndReason::AuthFailed => "auth_failed",
            EndReason::RegistrarChanged => "registrar_changed",
            EndReason::DialogGone => "dialog_gone",
            EndReason::TransportError => "transport_error",
            EndReason::RingTimeout => "ring_timeout",
            EndReason::ResourceLimit => "resource_limit",
        }
    }
}

/// A state change of a call; `name()` is the `event` field of the JSON
/// event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event")]
pub enum CallEventKind {
    /// The INVITE was sent (outgoing) or received (incoming).
    #[serde(rename = "call_started")]
    Started {
        /// Who placed it.
        direction: CallDirection,
        /// The other party's URI.
        remote: String,
    },
    #[serde(rename = "call_ringing")]
    /// 180/183 received (outgoing) or sent (incoming).
    Ringing,
    #[serde(rename = "call_answered")]
    /// 2xx received (outgoing) or sent (incoming).
    Answered,
    #[serde(rename = "call_established")]
    /// ACK sent (outgoing) or received (incoming): media flows.
    Established {
        /// Where to send RTP, from the peer's SDP.
        remote_rtp: Option<std::net::SocketAddr>,
    },
    /// The call went on hold.
    #[serde(rename = "call_held")]
    Held {
        /// The far end held it (its re-INVITE), not us.
        by_remote: bool,
    },
    /// The call came off hold.
    #[serde(rename = "call_resumed")]
    Resumed {
        /// The far end resumed it, not us.
        by_remote: bool,
    },
    #[serde(rename = "call_reinvite_failed")]
    /// A hold or resume re-INVITE was refused; the call goes on as before.
    ReinviteFailed {
        /// The refusal's status.
        status: u16,
    },
    #[serde(rename = "call_route_failed")]
    /// The INVITE got no answer on its route: the line should call
    /// [`Call::retry_on_route`] with the next route, or [`Call::give_up`].
    RouteFailed {
        /// Timer B/F budget over: no more routes may be tried.
        budget_over: bool,
    },
    /// The call is over.
    #[serde(rename = "call_ended")]
    Ended {
        /// Why.
        reason: EndReason,
        /// The final response that ended it, if any.
        status: Option<u16>,
    },
}

impl CallEventKind {
    /// The `event` field of the JSON form.
    pub fn name(&self) -> &'static str {
        match self {
            CallEventKind::Started { .. } => "call_started",
            CallEventKind::Ringing => "call_ringing",
            CallEventKind::Answered => "call_answered",
            CallEventKind::Established { .. } => "call_established",
            CallEventKind::Held { .. } => "call_held",
            CallEventKind::Resumed { .. } => "call_resumed",
            CallEventKind::ReinviteFailed { .. } => "call_reinvite_failed",
            CallEventKind::RouteFailed { .. } => "call_route_failed",
            CallEventKind::Ended { .. } => "call_ended",
        }
    }
}

/// An event with the call's Call-ID and the route its dialog uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallEvent {
    /// What happened.
    #[serde(flatten)]
    pub kind: CallEventKind,
    /// The call's Call-ID.
    pub call_id: String,
    /// The SBC its dialog signals through.
    pub route: Route,
}

/// One output of a call, drained in order with [`Call::poll_output`].
#[derive(Clone, Debug, PartialEq)]
pub enum CallOutput {
    /// Send this request or response.
    Send(Transmit),
    /// Something happened (the event stream).
    Event(CallEvent),
}

/// Errors of call commands and construction; all come from the caller's
/// input (a bad URI, a command in the wrong state, a malformed INVITE),
/// never a panic.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CallError {
    /// The target is not a usable SIP URI.
    #[error("invalid target URI {uri:?}: {reason}")]
    BadUri {
        /// The target given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An incoming INVITE that cannot start a call.
    #[error("malformed INVITE: {0}")]
    BadInvite(String),
    /// The call's state does not allow the command.
    #[error("{command} is not possible while the call is {state:?}")]
    WrongState {
        /// The command (`answer`, `hold`, ...).
        command: &'static str,
        /// The call's state then.
        state: CallState,
    },
}
