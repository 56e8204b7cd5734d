//! The [`Call`] state machine: construction, getters, commands, timers and
//! outputs (quinn-proto layout). Responses to our requests are handled in
//! `uac.rs`, requests from the peer in `uas.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::dialog::{Dialog, HeldChallenge, IdGen};
use super::{
    CallDirection, CallError, CallEvent, CallEventKind, CallOutput, CallSettings, EndReason,
    Transmit,
};
use crate::auth::DigestClient;
use crate::message::{HeaderName, Message, Method, Request, Response};
use crate::register_request::LineIdentity;
use crate::route::Route;
use crate::sdp::{LocalMedia, RemoteMedia};
use crate::transaction::{ClientTransaction, TimeoutAction};

/// What the line knows when placing a call.
#[derive(Clone, Debug)]
pub struct OutgoingCall {
    /// The callee, a SIP URI (`sip:1002@example.com`).
    pub target: String,
    /// The SBC route the INVITE goes to first.
    pub route: Route,
    /// Local address of the flow to that route (Via, Contact).
    pub local: SocketAddr,
    /// Where we receive RTP.
    pub rtp: SocketAddr,
    /// No other route is left to fail over to (RFC intervals up to 32 s).
    pub last_route: bool,
}

/// An INVITE received by the line that no call accepts.
#[derive(Clone, Debug)]
pub struct IncomingCall<'a> {
    pub invite: &'a Request,
    /// The route (SBC flow) it came from; answers and requests go back there.
    pub route: Route,
    pub local: SocketAddr,
}

/// Coarse state of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// Outgoing INVITE sent, no provisional response yet.
    Calling,
    /// Outgoing INVITE got a provisional response.
    Ringing,
    /// Incoming INVITE, ringing, not answered.
    Incoming,
    /// We sent 200 and wait for the ACK.
    Answering,
    Established,
    /// CANCEL sent, waiting for the INVITE's 487.
    Cancelling,
    /// BYE sent, waiting for its response.
    Terminating,
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    Initial,
    Hold,
    Resume,
}

/// Our INVITE (initial or re-INVITE) transaction.
pub(super) struct InviteTx {
    pub(super) request: Request,
    pub(super) tx: ClientTransaction,
    pub(super) cseq: u32,
    pub(super) purpose: Purpose,
    pub(super) answered_challenge: bool,
    pub(super) provisional: bool,
}

/// Our BYE or CANCEL transaction.
pub(super) struct NonInviteTx {
    pub(super) request: Request,
    pub(super) tx: ClientTransaction,
    pub(super) cseq: u32,
    pub(super) answered_challenge: bool,
}

/// 2xx retransmission of a server INVITE transaction (RFC 3261 13.3.1.4).
pub(super) struct Retransmit {
    pub(super) next: Instant,
    pub(super) interval: Duration,
    /// Timer H: 64*T1 after the first 2xx.
    pub(super) give_up: Instant,
}

/// An INVITE we received (initial or re-INVITE).
pub(super) struct ServerInvite {
    pub(super) request: Request,
    pub(super) branch: String,
    pub(super) cseq: u32,
    pub(super) initial: bool,
    /// The last response sent, repeated on a retransmitted INVITE.
    pub(super) last: Option<Response>,
    /// 2xx retransmission (any transport), or Timer G for a 300-699 over
    /// UDP (RFC 3261 17.2.1), until the ACK or Timer H.
    pub(super) retransmit: Option<Retransmit>,
    /// The final response sent was 300-699: its ACK ends nothing.
    pub(super) rejected: bool,
}

/// One call of a line. See the module docs of [`super`].
pub struct Call {
    pub(super) settings: CallSettings,
    pub(super) identity: LineIdentity,
    pub(super) digest: Option<DigestClient>,
    pub(super) ids: IdGen,
    pub(super) direction: CallDirection,
    pub(super) state: CallState,
    pub(super) dialog: Dialog,
    pub(super) media: LocalMedia,
    pub(super) remote_media: Option<RemoteMedia>,
    /// We put the call on hold.
    pub(super) local_hold: bool,
    /// The peer put the call on hold.
    pub(super) remote_hold: bool,
    pub(super) invite: Option<InviteTx>,
    pub(super) server: Option<ServerInvite>,
    pub(super) bye: Option<NonInviteTx>,
    pub(super) cancel: Option<NonInviteTx>,
    /// `hangup` before any provisional response: CANCEL when one arrives.
    pub(super) cancel_pending: bool,
    /// No final response to the cancelled INVITE by then: the call is over.
    pub(super) cancel_deadline: Option<Instant>,
    /// Hang up as soon as our 2xx is acknowledged.
    pub(super) bye_after_ack: bool,
    /// The reason reported when the BYE in flight completes.
    pub(super) bye_reason: EndReason,
    /// ACK sent for the last 2xx (repeated on a retransmitted 2xx), by CSeq.
    pub(super) ack_2xx: Option<(u32, Request)>,
    /// ACK sent for the last 300-699 (repeated on a retransmitted final).
    pub(super) ack_final: Option<(u32, Request)>,
    pub(super) challenge: Option<HeldChallenge>,
    /// Branch of the INVITE that created an incoming call.
    pub(super) initial_branch: Option<String>,
    /// `sipfleet.call.ringTimeout`: an incoming call still ringing then is
    /// refused with 480.
    pub(super) ring_until: Option<Instant>,
    /// The SDP offer of the initial INVITE, repeated by every retry.
    pub(super) initial_offer: Option<Bytes>,
    /// The INVITE's initial route was chosen: the 32 s budget starts here.
    pub(super) walk_started: Instant,
    /// The route that holds the line's registration, as last reported.
    pub(super) registrar: Option<Route>,
    pub(super) outputs: VecDeque<CallOutput>,
    pub(super) ended: Option<(EndReason, Option<u16>)>,
    /// The `now` of the input being handled: [`Self::end`] dates the
    /// late-2xx window from it.
    pub(super) clock: Instant,
    /// An outgoing call that ended stays until then, so that a 2xx to its
    /// INVITE (an answer that crossed the CANCEL, came after Timer B, or
    /// from a second fork) still gets its ACK and a BYE (RFC 3261
    /// 13.2.2.4). 64*T1 after the end of an unanswered call, or after the
    /// first 2xx of an answered one (RFC 6026 Timer M).
    pub(super) late_2xx_until: Option<Instant>,
    /// Dialogs ended by [`Self::end_other_fork`]: remote tag, CSeq and the
    /// ACK sent, repeated for a retransmitted 2xx without a second BYE.
    pub(super) ended_forks: Vec<(String, u32, Request)>,
    /// The BYEs of those dialogs, retransmitted (Timer E) until answered or
    /// Timer F, like the call's own.
    pub(super) fork_byes: Vec<NonInviteTx>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("call_id", &self.dialog.call_id)
            .field("direction", &self.direction)
            .field("state", &self.state)
            .field("route", &self.dialog.route)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// Places a call: builds and queues the INVITE with an SDP offer.
    /// `call_id` is the caller's (unique per line); `seed` feeds tags and
    /// branches.
    pub fn outgoing(
        settings: CallSettings,
        identity: LineIdentity,
        digest: Option<DigestClient>,
        params: OutgoingCall,
        call_id: String,
        seed: u64,
        now: Instant,
    ) -> Result<Call, CallError> {
        crate::message::Uri::parse(&params.target).map_err(|reason| CallError::BadUri {
            uri: params.target.clone(),
            reason: reason.to_string(),
        })?;
        let mut ids = IdGen::new(seed);
        let tag = ids.tag();
        let dialog = Dialog::uac(
            &identity,
            call_id,
            tag,
            &params.target,
            params.route.clone(),
            params.local,
            0,
        );
        let media = LocalMedia::new(params.rtp, ids.next_u64() >> 1);
        let mut call = Call::base(
            settings,
            identity,
            digest,
            ids,
            CallDirection::Outgoing,
            dialog,
            media,
            now,
        );
        call.state = CallState::Calling;
        call.emit(CallEventKind::Started {
            direction: CallDirection::Outgoing,
            remote: params.target,
        });
        call.send_invite(now, Purpose::Initial, params.last_route, false)?;
        Ok(call)
    }

    /// Takes an incoming INVITE: queues 100 Trying and 180 Ringing; the
    /// call rings until [`Self::answer`] (at once when
    /// [`Self::auto_answer_due`]), the caller's CANCEL, [`Self::hangup`] or
    /// the ring timeout. No media port is needed before the answer. An
    /// INVITE without Call-ID, From, To, CSeq or Contact is an error: answer
    /// it 400 and drop it. An offer we cannot answer gets 488 and a call
    /// that has already ended.
    pub fn incoming(
        settings: CallSettings,
        identity: LineIdentity,
        digest: Option<DigestClient>,
        params: IncomingCall<'_>,
        seed: u64,
        now: Instant,
    ) -> Result<Call, CallError> {
        let req = params.invite;
        if *req.method() != Method::Invite {
            return Err(CallError::BadInvite(format!(
                "{} is not INVITE",
                req.method()
            )));
        }
        let branch = req
            .headers()
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
            .ok_or_else(|| CallError::BadInvite("no Via branch".into()))?;
        let mut ids = IdGen::new(seed);
        let tag = ids.tag();
        let dialog = Dialog::uas(&identity, req, tag, params.route, params.local)
            .map_err(|e| CallError::BadInvite(e.to_string()))?;
        if req
            .headers()
            .to()
            .map_err(|e| CallError::BadInvite(e.to_string()))?
            .tag()
            .is_some()
        {
            return Err(CallError::BadInvite("To already has a tag".into()));
        }
        let remote = dialog.remote_uri.clone();
        let cseq = dialog.remote_cseq.unwrap_or(0);
        // The port is the one bound at answer time (`answer`).
        let media = LocalMedia::new(SocketAddr::new(params.local.ip(), 0), ids.next_u64() >> 1);
        let mut call = Call::base(
            settings,
            identity,
            digest,
            ids,
            CallDirection::Incoming,
            dialog,
            media,
            now,
        );
        call.state = CallState::Incoming;
        call.initial_branch = Some(branch.clone());
        call.server = Some(ServerInvite {
            request: req.clone(),
            branch,
            cseq,
            initial: true,
            last: None,
            retransmit: None,
            rejected: false,
        });
        call.emit(CallEventKind::Started {
            direction: CallDirection::Incoming,
            remote,
        });
        call.respond_invite(100, None);
        // No SIP extension is supported (no 100rel, no timer): RFC 3261
        // 8.2.2.3 answers a Require with 420 and Unsupported.
        let required: Vec<String> = req.headers().require().map(str::to_owned).collect();
        if !required.is_empty() {
            call.respond_invite_with(420, &[(HeaderName::Unsupported, required.join(", "))]);
            call.reject_sent(now);
            call.end(EndReason::Rejected, Some(420));
            return Ok(call);
        }
        if !req.body().is_empty() {
            match RemoteMedia::parse(req.body()).and_then(|m| m.common_codec().map(|_| m)) {
                Ok(m) => call.remote_media = Some(m),
                Err(_) => {
                    call.respond_invite(488, None);
                    call.reject_sent(now);
                    call.end(EndReason::Rejected, Some(488));
                    return Ok(call);
                }
            }
        }
        call.respond_invite(180, None);
        call.emit(CallEventKind::Ringing);
        call.ring_until = call.settings.ring_timeout.map(|t| now + t);
        Ok(call)
    }

    #[allow(clippy::too_many_arguments)]
    fn base(
        settings: CallSettings,
        identity: LineIdentity,
        digest: Option<DigestClient>,
        ids: IdGen,
        direction: CallDirection,
        dialog: Dialog,
        media: LocalMedia,
        now: Instant,
    ) -> Call {
        Call {
            registrar: Some(dialog.route.clone()),
            settings,
            identity,
            digest,
            ids,
            direction,
            state: CallState::Calling,
            dialog,
            media,
            remote_media: None,
            local_hold: false,
            remote_hold: false,
            invite: None,
            server: None,
            bye: None,
            cancel: None,
            cancel_pending: false,
            cancel_deadline: None,
            bye_after_ack: false,
            bye_reason: EndReason::LocalHangup,
            ack_2xx: None,
            ack_final: None,
            challenge: None,
            initial_branch: None,
            ring_until: None,
            initial_offer: None,
            walk_started: now,
            clock: now,
            late_2xx_until: None,
            ended_forks: Vec::new(),
            fork_byes: Vec::new(),
            outputs: VecDeque::new(),
            ended: None,
        }
    }

    // ----- getters -----

    pub fn state(&self) -> CallState {
        self.state
    }

    pub fn direction(&self) -> CallDirection {
        self.direction
    }

    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    /// The SBC route the call's requests go to.
    pub fn route(&self) -> &Route {
        &self.dialog.route
    }

    pub fn dialog(&self) -> &Dialog {
        &self.dialog
    }

    /// The peer's RTP address and direction, once its SDP was read.
    pub fn remote_media(&self) -> Option<&RemoteMedia> {
        self.remote_media.as_ref()
    }

    /// The call has not ended: ringing, answering, established or hanging
    /// up. A line with an active call does not fail back.
    pub fn is_active(&self) -> bool {
        self.state != CallState::Ended
    }

    pub fn is_held(&self) -> bool {
        self.local_hold
    }

    /// Why and with which final status the call ended.
    pub fn end_reason(&self) -> Option<(EndReason, Option<u16>)> {
        self.ended
    }

    /// Whether `msg` belongs to this call (same Call-ID). Dialog tags are
    /// checked by [`Self::handle_message`], which answers 481 on mismatch.
    pub fn accepts(&self, msg: &Message) -> bool {
        msg.headers()
            .call_id()
            .is_ok_and(|id| id == self.dialog.call_id)
    }

    /// Whether the call may send its next request while `registered` holds
    /// the line's registration: with `onlySignalWithRegistered` only to that
    /// SBC.
    pub fn may_signal_via(&self, registered: Option<&Route>) -> bool {
        !self.settings.only_signal_with_registered
            || registered.is_some_and(|r| r.same_destination(&self.dialog.route))
    }

    // ----- outputs -----

    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.outputs.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let server = self
            .server
            .as_ref()
            .and_then(|s| s.retransmit.as_ref())
            .map(|r| r.next.min(r.give_up));
        if self.state == CallState::Ended {
            // Only a rejection waiting for its ACK (Timer G/H), the window
            // for a late 2xx and the BYEs of forks ended late.
            return [server, self.late_2xx_until, self.fork_bye_timeout()]
                .into_iter()
                .flatten()
                .min();
        }
        let invite = self.invite.as_ref().and_then(|t| t.tx.poll_timeout());
        let bye = self.bye.as_ref().and_then(|t| t.tx.poll_timeout());
        let cancel = self.cancel.as_ref().and_then(|t| t.tx.poll_timeout());
        let forks = self.fork_bye_timeout();
        let ring = self
            .ring_until
            .filter(|_| self.state == CallState::Incoming);
        [
            invite,
            bye,
            cancel,
            server,
            self.cancel_deadline,
            forks,
            ring,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- inputs: commands -----

    /// Answers a ringing incoming call: 200 with the SDP answer (or an offer
    /// when the INVITE had none) naming `rtp`, the media port the line bound
    /// for it now, retransmitted until the ACK.
    pub fn answer(&mut self, now: Instant, rtp: SocketAddr) -> Result<(), CallError> {
        self.clock = now;
        if self.state != CallState::Incoming {
            return Err(self.wrong_state("answer"));
        }
        if !self.gate() {
            return Ok(());
        }
        self.ring_until = None;
        self.media.rtp = rtp;
        let offer = self
            .server
            .as_ref()
            .filter(|s| !s.request.body().is_empty())
            .and(self.remote_media.clone());
        let body = self.local_description(offer.as_ref());
        self.respond_invite(200, Some(body));
        self.start_2xx_retransmit(now);
        self.state = CallState::Answering;
        self.emit(CallEventKind::Answered);
        Ok(())
    }

    /// Ends the call the way its state requires: CANCEL (ringing outgoing),
    /// 603 (ringing incoming), BYE (answered).
    pub fn hangup(&mut self, now: Instant) -> Result<(), CallError> {
        self.clock = now;
        match self.state {
            CallState::Calling => {
                self.cancel_pending = true;
                Ok(())
            }
            CallState::Ringing => {
                self.send_cancel(now);
                Ok(())
            }
            CallState::Incoming => {
                self.respond_invite(603, None);
                self.reject_sent(now);
                self.end(EndReason::Declined, Some(603));
                Ok(())
            }
            CallState::Answering => {
                self.bye_after_ack = true;
                Ok(())
            }
            CallState::Established => {
                self.send_bye(now, EndReason::LocalHangup);
                Ok(())
            }
            CallState::Cancelling | CallState::Terminating | CallState::Ended => {
                Err(self.wrong_state("hangup"))
            }
        }
    }

    /// Puts an established call on hold: re-INVITE with `a=sendonly`.
    pub fn hold(&mut self, now: Instant) -> Result<(), CallError> {
        self.clock = now;
        self.reinvite(now, Purpose::Hold, "hold")
    }

    /// Takes the call off hold: re-INVITE with `a=sendrecv`.
    pub fn resume(&mut self, now: Instant) -> Result<(), CallError> {
        self.clock = now;
        self.reinvite(now, Purpose::Resume, "resume")
    }

    /// The guide's Call-ID rule: sends the INVITE again on `route` (failover
    /// after [`CallEventKind::RouteFailed`], or failback) with the same
    /// Call-ID and From tag, a new branch and CSeq + 1. Only before any
    /// provisional response. Past the 32 s Timer B budget of the first
    /// INVITE (without enhanced failover) the call ends instead (timeout).
    pub fn retry_on_route(
        &mut self,
        now: Instant,
        route: Route,
        local: SocketAddr,
        last_route: bool,
    ) -> Result<(), CallError> {
        self.clock = now;
        let started = self.invite.as_ref().is_none_or(|i| !i.provisional);
        if self.state != CallState::Calling || !started {
            return Err(self.wrong_state("retry_on_route"));
        }
        if self.cancel_pending {
            // Hung up before anyone answered: nothing to retry.
            self.invite = None;
            self.end(EndReason::Cancelled, None);
            return Ok(());
        }
        let budget_end = self.walk_started + self.settings.policy.timers.timer_b();
        if !self.settings.policy.enhanced_failover && now >= budget_end {
            // Timer B ended the walk: no route may be tried any more.
            self.invite = None;
            self.emit(CallEventKind::RouteFailed { budget_over: true });
            self.end(EndReason::Timeout, None);
            return Ok(());
        }
        self.dialog.contact = super::dialog::contact_for(&self.identity, local, route.transport);
        self.dialog.route = route;
        self.dialog.local = local;
        let with_credentials = self.challenge.is_some();
        self.send_invite(now, Purpose::Initial, last_route, with_credentials)
    }

    /// No route is left for the INVITE after a
    /// [`CallEventKind::RouteFailed`]: the call ends (timeout).
    pub fn give_up(&mut self, now: Instant) {
        self.clock = now;
        if self.state == CallState::Calling {
            self.invite = None;
            self.end(EndReason::Timeout, None);
        }
    }

    /// The route that now holds the line's registration (`None`: none).
    /// With `onlySignalWithRegistered`, the next request this call needs to
    /// send to another SBC ends the call instead (`registrar_changed`).
    pub fn handle_registrar(&mut self, registered: Option<&Route>) {
        self.registrar = registered.cloned();
    }

    /// Transport trouble on `route` (ICMP, refused, flow lost).
    pub fn handle_transport_error(&mut self, now: Instant, route: &Route) {
        self.clock = now;
        if !route.same_destination(&self.dialog.route) {
            return;
        }
        match self.state {
            CallState::Calling if self.invite.as_ref().is_some_and(|i| !i.provisional) => {
                self.invite = None;
                self.emit(CallEventKind::RouteFailed { budget_over: false });
            }
            CallState::Ended | CallState::Established | CallState::Incoming => {}
            _ => self.end(EndReason::TransportError, None),
        }
    }

    // ----- inputs: network and time -----

    /// A message the line matched to this call ([`Self::accepts`]).
    pub fn handle_message(&mut self, now: Instant, msg: &Message) {
        self.clock = now;
        match msg {
            Message::Request(req) => self.handle_request(now, req),
            Message::Response(resp) => self.handle_response(now, resp),
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = now;
        if self.state == CallState::Ended {
            if self.late_2xx_until.is_some_and(|t| now >= t) {
                self.late_2xx_until = None;
                self.ended_forks.clear();
            }
            self.fork_bye_timeouts(now);
            self.server_timeout(now);
            return;
        }
        self.fork_bye_timeouts(now);
        if let Some(inv) = &mut self.invite {
            match inv.tx.handle_timeout(now) {
                Some(TimeoutAction::Retransmit) => {
                    let req = inv.request.clone();
                    self.send(req);
                }
                Some(TimeoutAction::TimedOut(why)) => self.invite_timed_out(now, why),
                None => {}
            }
        }
        if let Some(bye) = &mut self.bye {
            match bye.tx.handle_timeout(now) {
                Some(TimeoutAction::Retransmit) => {
                    let req = bye.request.clone();
                    self.send(req);
                }
                Some(TimeoutAction::TimedOut(_)) => {
                    self.bye = None;
                    let reason = self.bye_reason;
                    self.end(reason, None);
                }
                None => {}
            }
        }
        if let Some(cancel) = &mut self.cancel {
            if let Some(TimeoutAction::Retransmit) = cancel.tx.handle_timeout(now) {
                let req = cancel.request.clone();
                self.send(req);
            }
        }
        if self.cancel_deadline.is_some_and(|t| now >= t) {
            self.cancel_deadline = None;
            self.invite = None;
            self.end(EndReason::Cancelled, None);
        }
        self.ring_timeout(now);
        self.server_timeout(now);
    }

    fn fork_bye_timeout(&self) -> Option<Instant> {
        self.fork_byes
            .iter()
            .filter_map(|b| b.tx.poll_timeout())
            .min()
    }

    fn fork_bye_timeouts(&mut self, now: Instant) {
        let mut resend = Vec::new();
        self.fork_byes
            .retain_mut(|b| match b.tx.handle_timeout(now) {
                Some(TimeoutAction::Retransmit) => {
                    resend.push(b.request.clone());
                    true
                }
                Some(TimeoutAction::TimedOut(_)) => false,
                None => true,
            });
        for req in resend {
            self.send(req);
        }
    }

    fn server_timeout(&mut self, now: Instant) {
        let t2 = self.settings.policy.timers.t2;
        let Some(server) = &mut self.server else {
            return;
        };
        let Some(r) = &mut server.retransmit else {
            return;
        };
        if now >= r.give_up {
            // Timer H: the 2xx was never acknowledged (for a rejection,
            // nothing more to do).
            let initial = server.initial;
            let rejected = server.rejected;
            self.server = None;
            if !rejected && (initial || self.state == CallState::Established) {
                self.send_bye(now, EndReason::NoAck);
            }
        } else if now >= r.next {
            r.interval = (r.interval * 2).min(t2);
            r.next = now + r.interval;
            if let Some(resp) = server.last.clone() {
                self.send(resp);
            }
        }
    }

    // ----- helpers shared by uac.rs and uas.rs -----

    pub(super) fn wrong_state(&self, command: &'static str) -> CallError {
        CallError::WrongState {
            command,
            state: self.state,
        }
    }

    pub(super) fn emit(&mut self, kind: CallEventKind) {
        self.outputs.push_back(CallOutput::Event(CallEvent {
            kind,
            call_id: self.dialog.call_id.clone(),
            route: self.dialog.route.clone(),
        }));
    }

    pub(super) fn send(&mut self, message: impl Into<Message>) {
        self.outputs.push_back(CallOutput::Send(Transmit {
            route: self.dialog.route.clone(),
            message: message.into(),
        }));
    }

    pub(super) fn end(&mut self, reason: EndReason, status: Option<u16>) {
        if self.state == CallState::Ended {
            return;
        }
        self.state = CallState::Ended;
        self.ended = Some((reason, status));
        // A call that was answered already holds Timer M from its 2xx.
        if self.direction == CallDirection::Outgoing && self.ack_2xx.is_none() {
            self.late_2xx_until = Some(self.clock + self.settings.policy.timers.timer_b());
        }
        self.late_2xx_until = self.late_2xx_until.filter(|t| *t > self.clock);
        self.invite = None;
        self.bye = None;
        self.cancel = None;
        self.cancel_deadline = None;
        if let Some(s) = &mut self.server {
            if !s.rejected {
                s.retransmit = None;
            }
        }
        self.emit(CallEventKind::Ended { reason, status });
    }

    /// `onlySignalWithRegistered`: may a request go out now? If not, the
    /// call ends (`registrar_changed`) and nothing is sent.
    pub(super) fn gate(&mut self) -> bool {
        if self.may_signal_via(self.registrar.as_ref()) {
            return true;
        }
        self.end(EndReason::RegistrarChanged, None);
        false
    }
}
