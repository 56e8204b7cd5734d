//! Emergency dialing on a shared (SCA) line: seize the line first, but never
//! let a failed seize stop the emergency call.
//!
//! The guide ("Failover and Emergency Dialing for Shared (SCA) Lines"): a
//! line-seize request for an emergency call makes several retransmissions
//! up to a maximum of 32 seconds; if all fail, or the timer expires, the
//! emergency INVITE is sent regardless. `voIpProt.SIP.lineSeize.retries`
//! (3 to 10, default 10) lowers the number of attempts.
//!
//! # Schedule (decision)
//!
//! The SUBSCRIBE (`Event: line-seize`) is retransmitted at the RFC 3261
//! non-INVITE intervals (T1 doubling up to T2: 0.5, 1, 2, 4, 4 ... s),
//! `retries` times, and given up one interval after the last copy, or at
//! 32 s (64*T1) from the first send, whichever is first. That is exactly
//! the [`ClientTransaction`] schedule of a non-last UDP route with
//! `retryMaxCount = retries + 1`, so it is reused, not re-implemented:
//!
//! | retries | sends at (s)                                           | INVITE at |
//! |---------|--------------------------------------------------------|-----------|
//! | 10      | 0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5 | 32        |
//! | 5       | 0, 0.5, 1.5, 3.5, 7.5, 11.5                            | 15.5      |
//! | 3       | 0, 0.5, 1.5, 3.5                                       | 7.5       |
//!
//! Ten retries are the most that fit in 32 s at these intervals, which is
//! why the guide's range ends at 10. Over TCP/TLS the transport retransmits,
//! so only the first copy is sent, but the INVITE waits for the same
//! give-up time. A 401/407 is answered with credentials as a new
//! transaction inside the same 32 s; any other final response, a transport
//! error or the give-up time ends the seize and releases the INVITE
//! ([`LineSeizeOutput::PlaceCall`]). A 2xx seizes the line: the INVITE goes
//! at once, and NOTIFYs of the seize dialog are answered 200.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

use crate::auth::DigestClient;
use crate::call::{authorize, read_challenge, Dialog, HeldChallenge, IdGen, Transmit};
use crate::message::{HeaderName, Message, Method, Request, Response, StatusCode};
use crate::register_request::LineIdentity;
use crate::route::{Route, Transport};
use crate::transaction::{
    ClientTransaction, RequestKind, RetryPolicy, TimeoutAction, Timers, WalkPosition,
};

/// `voIpProt.SIP.lineSeize.retries` bounds.
pub const MIN_RETRIES: u32 = 3;
/// Largest accepted `voIpProt.SIP.lineSeize.retries`.
pub const MAX_RETRIES: u32 = 10;
/// `voIpProt.SIP.lineSeize.retries` when not configured.
pub const DEFAULT_RETRIES: u32 = 10;

/// Line-seize settings.
#[derive(Clone, Debug)]
pub struct LineSeizeSettings {
    /// Retransmissions after the first SUBSCRIBE (clamped to 3..=10).
    pub retries: u32,
    /// RFC 3261 timers (T1, T2, ...) for the SUBSCRIBE's retransmissions.
    pub timers: Timers,
    /// `Expires` of the seize SUBSCRIBE, seconds.
    pub expires: u32,
    /// `User-Agent` header value.
    pub user_agent: String,
}

impl Default for LineSeizeSettings {
    fn default() -> Self {
        LineSeizeSettings {
            retries: DEFAULT_RETRIES,
            timers: Timers::default(),
            expires: 15,
            user_agent: "sipfleet".into(),
        }
    }
}

impl LineSeizeSettings {
    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            retry_timeout: Duration::ZERO,
            retry_max_count: self.retries.clamp(MIN_RETRIES, MAX_RETRIES) + 1,
            tcp_fast_failover: None,
            enhanced_failover: false,
            timers: self.timers,
        }
    }
}

/// How the seize ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineSeizeOutcome {
    /// A 2xx: the line is ours for the seize's `Expires`.
    Seized,
    /// A final response other than 2xx (or a challenge we could not answer).
    Refused {
        /// The final status received.
        status: u16,
    },
    /// No final response within the schedule.
    TimedOut,
    /// The flow failed before a final response.
    TransportError,
}

impl LineSeizeOutcome {
    /// The `outcome` value of the JSON event.
    pub fn as_str(self) -> &'static str {
        match self {
            LineSeizeOutcome::Seized => "seized",
            LineSeizeOutcome::Refused { .. } => "refused",
            LineSeizeOutcome::TimedOut => "timeout",
            LineSeizeOutcome::TransportError => "transport_error",
        }
    }
}

/// A state change; `name()` is the JSON event name. In JSON the outcome
/// is `event`, `outcome` and `status` (the refusal's, else `null`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineSeizeEvent {
    /// How the seize ended.
    #[serde(flatten, serialize_with = "outcome_fields")]
    pub outcome: LineSeizeOutcome,
    /// Call-ID of the seize SUBSCRIBE.
    pub call_id: String,
    /// The route the SUBSCRIBE was sent on.
    pub route: Route,
}

/// The JSON fields of an outcome: `event`, `outcome`, `status`.
fn outcome_fields<S: Serializer>(outcome: &LineSeizeOutcome, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Fields {
        event: &'static str,
        outcome: &'static str,
        status: Option<u16>,
    }
    let status = match *outcome {
        LineSeizeOutcome::Refused { status } => Some(status),
        _ => None,
    };
    Fields {
        event: event_name(*outcome),
        outcome: outcome.as_str(),
        status,
    }
    .serialize(s)
}

fn event_name(outcome: LineSeizeOutcome) -> &'static str {
    match outcome {
        LineSeizeOutcome::Seized => "line_seized",
        _ => "line_seize_failed",
    }
}

impl LineSeizeEvent {
    /// The JSON event name.
    pub fn name(&self) -> &'static str {
        event_name(self.outcome)
    }
}

/// One output, drained in order with [`LineSeize::poll_output`].
#[derive(Clone, Debug, PartialEq)]
pub enum LineSeizeOutput {
    /// A SUBSCRIBE to send.
    Send(Transmit),
    /// The seize ended.
    Event(LineSeizeEvent),
    /// Send the emergency INVITE now (seized or not).
    PlaceCall {
        /// Whether the line was seized; the call is placed either way.
        seized: bool,
    },
}

struct SeizeTx {
    request: Request,
    tx: ClientTransaction,
    cseq: u32,
    answered_challenge: bool,
}

/// The line seize in front of one emergency call.
pub struct LineSeize {
    settings: LineSeizeSettings,
    digest: Option<DigestClient>,
    ids: IdGen,
    dialog: Dialog,
    started: Instant,
    tx: Option<SeizeTx>,
    challenge: Option<HeldChallenge>,
    outcome: Option<LineSeizeOutcome>,
    outputs: VecDeque<LineSeizeOutput>,
}

impl std::fmt::Debug for LineSeize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineSeize")
            .field("call_id", &self.dialog.call_id)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl LineSeize {
    /// Sends the line-seize SUBSCRIBE for the line's own AOR on `route`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        settings: LineSeizeSettings,
        identity: &LineIdentity,
        digest: Option<DigestClient>,
        route: Route,
        local: SocketAddr,
        call_id: String,
        seed: u64,
        now: Instant,
    ) -> Self {
        let mut ids = IdGen::new(seed);
        let tag = ids.tag();
        let aor = identity.aor();
        let dialog = Dialog::uac(identity, call_id, tag, &aor, route, local, 0);
        let mut seize = LineSeize {
            settings,
            digest,
            ids,
            dialog,
            started: now,
            tx: None,
            challenge: None,
            outcome: None,
            outputs: VecDeque::new(),
        };
        seize.send_subscribe(now, false);
        seize
    }

    /// How the seize ended; `None` while it is still running.
    pub fn outcome(&self) -> Option<LineSeizeOutcome> {
        self.outcome
    }

    /// Call-ID of the seize SUBSCRIBE, to route responses here.
    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    /// The latest instant the emergency INVITE can be released: 64*T1
    /// after the first SUBSCRIBE.
    pub fn deadline(&self) -> Instant {
        self.started + self.settings.timers.timer_b()
    }

    /// Whether `msg` is a response to this seize's SUBSCRIBE.
    pub fn accepts(&self, msg: &Message) -> bool {
        msg.headers()
            .call_id()
            .is_ok_and(|id| id == self.dialog.call_id)
    }

    /// Next message to send or event to report; call until `None`.
    pub fn poll_output(&mut self) -> Option<LineSeizeOutput> {
        self.outputs.pop_front()
    }

    /// The next retransmission or give-up, never later than
    /// [`Self::deadline`] (a provisional response lets a non-INVITE
    /// transaction wait 64*T1 from its own start, which after a challenge
    /// would end past the seize's 32 s).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx = self.tx.as_ref()?.tx.poll_timeout();
        Some(tx.map_or(self.deadline(), |t| t.min(self.deadline())))
    }

    /// Retransmits or gives up when the transaction's timer expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.tx.is_some() && now >= self.deadline() {
            self.finish(LineSeizeOutcome::TimedOut);
            return;
        }
        let Some(t) = &mut self.tx else {
            return;
        };
        match t.tx.handle_timeout(now) {
            Some(TimeoutAction::Retransmit) if !self.dialog.route.transport.is_reliable() => {
                let req = t.request.clone();
                self.send(req);
            }
            Some(TimeoutAction::TimedOut(_)) => self.finish(LineSeizeOutcome::TimedOut),
            _ => {}
        }
    }

    /// ICMP, refused or lost flow on the seize's route: do not wait.
    pub fn handle_transport_error(&mut self, route: &Route) {
        if route.same_destination(&self.dialog.route) && self.outcome.is_none() {
            self.finish(LineSeizeOutcome::TransportError);
        }
    }

    /// Reads a response to the SUBSCRIBE (see [`Self::accepts`]).
    pub fn handle_message(&mut self, now: Instant, msg: &Message) {
        match msg {
            Message::Response(resp) => self.handle_response(now, resp),
            Message::Request(req) if *req.method() == Method::Notify => {
                let resp = match self.dialog.check_incoming(req) {
                    Ok(()) => self.dialog.response(req, StatusCode::OK),
                    Err(refusal) => Response::for_request(
                        req,
                        StatusCode::new(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST),
                        Some(&self.dialog.local_tag),
                    ),
                };
                self.send(resp);
            }
            Message::Request(_) => {}
        }
    }

    fn handle_response(&mut self, now: Instant, resp: &Response) {
        let Some(t) = &mut self.tx else {
            return;
        };
        let cseq = resp.headers().cseq().ok();
        if cseq.is_none_or(|c| c.method != Method::Subscribe || c.seq != t.cseq) {
            return;
        }
        let status = resp.status().as_u16();
        if status < 200 {
            t.tx.handle_provisional(now);
            return;
        }
        t.tx.handle_final(now, status);
        let answered = t.answered_challenge;
        self.tx = None;
        match status {
            200..=299 => {
                self.dialog.update_from_response(resp, true);
                self.finish(LineSeizeOutcome::Seized);
            }
            401 | 407 if self.digest.is_some() => {
                let challenge = read_challenge(resp);
                let stale = challenge.as_ref().is_some_and(|(_, c)| c.stale);
                if challenge.is_some() && (!answered || stale) && now < self.deadline() {
                    self.challenge = challenge;
                    self.send_subscribe(now, true);
                } else {
                    self.finish(LineSeizeOutcome::Refused { status });
                }
            }
            _ => self.finish(LineSeizeOutcome::Refused { status }),
        }
    }

    fn finish(&mut self, outcome: LineSeizeOutcome) {
        self.tx = None;
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(outcome);
        self.outputs
            .push_back(LineSeizeOutput::Event(LineSeizeEvent {
                outcome,
                call_id: self.dialog.call_id.clone(),
                route: self.dialog.route.clone(),
            }));
        self.outputs.push_back(LineSeizeOutput::PlaceCall {
            seized: outcome == LineSeizeOutcome::Seized,
        });
    }

    fn send(&mut self, message: impl Into<Message>) {
        self.outputs.push_back(LineSeizeOutput::Send(Transmit {
            route: self.dialog.route.clone(),
            message: message.into(),
        }));
    }

    fn send_subscribe(&mut self, now: Instant, with_credentials: bool) {
        let cseq = self.dialog.next_cseq();
        let branch = self.ids.branch();
        let Ok(mut req) =
            self.dialog
                .request(Method::Subscribe, cseq, &branch, &self.settings.user_agent)
        else {
            // The AOR comes from configuration; without a request there is
            // nothing to wait for.
            self.finish(LineSeizeOutcome::TransportError);
            return;
        };
        let h = req.headers_mut();
        h.push(HeaderName::Event, "line-seize");
        h.push(HeaderName::Expires, self.settings.expires.to_string());
        if with_credentials {
            if let (Some(digest), Some(challenge)) = (&mut self.digest, &self.challenge) {
                authorize(&mut req, digest, challenge, &mut self.ids);
            }
        }
        // Every transaction of the seize shares the 32 s budget that
        // started with the first SUBSCRIBE.
        let tx = ClientTransaction::start(
            RequestKind::NonInvite,
            Transport::Udp,
            &self.settings.policy(),
            WalkPosition {
                walk_started: self.started,
                last_route: false,
            },
            now,
        );
        self.tx = Some(SeizeTx {
            request: req.clone(),
            tx,
            cseq,
            answered_challenge: with_credentials,
        });
        self.send(req);
    }
}
