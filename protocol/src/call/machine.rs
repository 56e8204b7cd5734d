//! The [`Call`] state machine: construction, getters, commands, timers and
//! outputs (quinn-proto layout). The state enum and the timer table are in
//! `state.rs`, responses to our requests are handled in `uac.rs`, requests
//! from the peer in `uas.rs`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::dialog::{Dialog, HeldChallenge, IdGen};
use super::state::{NonInviteTx, Purpose, ServerInvite, State, Timer, TimerTable};
use super::{
    CallDirection, CallError, CallEvent, CallEventKind, CallOutput, CallSettings, EndReason,
    Transmit,
};
use crate::auth::DigestClient;
use crate::message::{HeaderName, Message, Method, Request};
use crate::register_request::LineIdentity;
use crate::route::Route;
use crate::sdp::{LocalMedia, RemoteMedia};
use crate::transaction::TimeoutAction;

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
    /// The received INVITE.
    pub invite: &'a Request,
    /// The route (SBC flow) it came from; answers and requests go back there.
    pub route: Route,
    /// Local address of that flow, for Via and Contact.
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
    /// Answered: 2xx received (outgoing) or ACK received (incoming).
    Established,
    /// CANCEL sent, waiting for the INVITE's 487.
    Cancelling,
    /// BYE sent, waiting for its response.
    Terminating,
    /// Over: hung up, refused, cancelled or timed out; the call can be dropped.
    Ended,
}

/// One call of a line. See the module docs of [`super`].
pub struct Call {
    pub(super) settings: CallSettings,
    pub(super) identity: LineIdentity,
    pub(super) digest: Option<DigestClient>,
    pub(super) ids: IdGen,
    pub(super) direction: CallDirection,
    pub(super) state: State,
    pub(super) timers: TimerTable,
    pub(super) dialog: Dialog,
    pub(super) media: LocalMedia,
    pub(super) remote_media: Option<RemoteMedia>,
    /// We put the call on hold.
    pub(super) local_hold: bool,
    /// The peer put the call on hold.
    pub(super) remote_hold: bool,
    /// The INVITE we received that is still answered or repeated.
    pub(super) server: Option<ServerInvite>,
    /// ACK sent for the last 2xx (repeated on a retransmitted 2xx), by CSeq.
    pub(super) ack_2xx: Option<(u32, Request)>,
    /// ACK sent for the last 300-699 (repeated on a retransmitted final).
    pub(super) ack_final: Option<(u32, Request)>,
    pub(super) challenge: Option<HeldChallenge>,
    /// Branch of the INVITE that created an incoming call.
    pub(super) initial_branch: Option<String>,
    /// The SDP offer of the initial INVITE, repeated by every retry.
    pub(super) initial_offer: Option<Bytes>,
    /// The INVITE's initial route was chosen: the 32 s budget starts here.
    pub(super) walk_started: Instant,
    /// RFC 6026 Timer M: 64*T1 after the first 2xx of an answered outgoing
    /// call. [`Timer::LateAnswers`] runs to it once the call ended.
    pub(super) timer_m: Option<Instant>,
    /// The route that holds the line's registration, as last reported.
    pub(super) registrar: Option<Route>,
    pub(super) outputs: VecDeque<CallOutput>,
    /// Dialogs ended by [`Self::end_other_fork`]: remote tag, CSeq and the
    /// ACK sent, repeated for a retransmitted 2xx without a second BYE;
    /// kept while [`Timer::LateAnswers`] runs.
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
            .field("state", &self.state.phase())
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
            State::early(None),
            dialog,
            media,
            now,
        );
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
            State::Incoming,
            dialog,
            media,
            now,
        );
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
            call.end(now, EndReason::Rejected, Some(420));
            return Ok(call);
        }
        if !req.body().is_empty() {
            match RemoteMedia::parse(req.body()).and_then(|m| m.common_codec().map(|_| m)) {
                Ok(m) => call.remote_media = Some(m),
                Err(_) => {
                    call.respond_invite(488, None);
                    call.reject_sent(now);
                    call.end(now, EndReason::Rejected, Some(488));
                    return Ok(call);
                }
            }
        }
        call.respond_invite(180, None);
        call.emit(CallEventKind::Ringing);
        if let Some(ring) = call.settings.ring_timeout {
            call.timers.set(Timer::Ring, now + ring);
        }
        Ok(call)
    }

    #[allow(clippy::too_many_arguments)]
    fn base(
        settings: CallSettings,
        identity: LineIdentity,
        digest: Option<DigestClient>,
        ids: IdGen,
        direction: CallDirection,
        state: State,
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
            state,
            timers: TimerTable::default(),
            dialog,
            media,
            remote_media: None,
            local_hold: false,
            remote_hold: false,
            server: None,
            ack_2xx: None,
            ack_final: None,
            challenge: None,
            initial_branch: None,
            initial_offer: None,
            walk_started: now,
            timer_m: None,
            ended_forks: Vec::new(),
            fork_byes: Vec::new(),
            outputs: VecDeque::new(),
        }
    }

    // ----- getters -----

    /// The call's coarse state.
    pub fn state(&self) -> CallState {
        self.state.phase()
    }

    /// Whether we placed the call or received it.
    pub fn direction(&self) -> CallDirection {
        self.direction
    }

    /// The Call-ID of the call's dialog.
    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    /// The SBC route the call's requests go to.
    pub fn route(&self) -> &Route {
        &self.dialog.route
    }

    /// The dialog, with its tags, CSeqs and route set.
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
        !self.state.is_ended()
    }

    /// Whether the INVITE failed on its route and waits for the line to
    /// give it another ([`Self::retry_on_route`]) or end it.
    pub fn awaits_route(&self) -> bool {
        matches!(&self.state, State::Calling(early) if early.invite.is_none())
    }

    /// An INVITE waiting for its next route (the line's next route, or the
    /// SBC the line registers on next) waits no longer than the Timer B
    /// budget of its first INVITE; enhanced failover has no such budget,
    /// and the line ends the wait when the registration gives up.
    /// Timer B of the first INVITE is over: no route may be tried any more
    /// (enhanced failover has no such end).
    pub(super) fn walk_budget_over(&self, now: Instant) -> bool {
        !self.settings.policy.enhanced_failover
            && now >= self.walk_started + self.settings.policy.timers.timer_b()
    }

    fn route_wait_deadline(&self) -> Option<Instant> {
        (self.awaits_route() && !self.settings.policy.enhanced_failover)
            .then(|| self.walk_started + self.settings.policy.timers.timer_b())
    }

    /// Whether we put the call on hold.
    pub fn is_held(&self) -> bool {
        self.local_hold
    }

    /// Why and with which final status the call ended.
    pub fn end_reason(&self) -> Option<(EndReason, Option<u16>)> {
        match self.state {
            State::Ended { reason, status } => Some((reason, status)),
            _ => None,
        }
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

    /// Next message to send or event to report; call until `None`.
    pub fn poll_output(&mut self) -> Option<CallOutput> {
        self.outputs.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next: the first of the
    /// timer table, the state's transactions and the BYEs to ended forks.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.next(),
            self.state.poll_timeout(),
            self.fork_bye_timeout(),
            self.route_wait_deadline(),
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
        if !matches!(self.state, State::Incoming) {
            return Err(self.wrong_state("answer"));
        }
        if !self.gate(now) {
            return Ok(());
        }
        self.timers.stop(Timer::Ring);
        self.media.rtp = rtp;
        let offer = self
            .server
            .as_ref()
            .filter(|s| !s.request.body().is_empty())
            .and(self.remote_media.clone());
        let body = self.local_description(offer.as_ref());
        self.respond_invite(200, Some(body));
        self.start_2xx_retransmit(now);
        self.state = State::Answering {
            bye_after_ack: false,
        };
        self.emit(CallEventKind::Answered);
        Ok(())
    }

    /// Ends the call the way its state requires: CANCEL (ringing outgoing),
    /// 603 (ringing incoming), BYE (answered).
    pub fn hangup(&mut self, now: Instant) -> Result<(), CallError> {
        match &mut self.state {
            State::Calling(early) => {
                early.cancel_pending = true;
                Ok(())
            }
            State::Ringing(_) => {
                self.send_cancel(now);
                Ok(())
            }
            State::Incoming => {
                self.respond_invite(603, None);
                self.reject_sent(now);
                self.end(now, EndReason::Declined, Some(603));
                Ok(())
            }
            State::Answering { bye_after_ack } => {
                *bye_after_ack = true;
                Ok(())
            }
            State::Established(_) => {
                self.send_bye(now, EndReason::LocalHangup);
                Ok(())
            }
            State::Cancelling(_) | State::Terminating(_) | State::Ended { .. } => {
                Err(self.wrong_state("hangup"))
            }
        }
    }

    /// Puts an established call on hold: re-INVITE with `a=sendonly`.
    pub fn hold(&mut self, now: Instant) -> Result<(), CallError> {
        self.reinvite(now, Purpose::Hold, "hold")
    }

    /// Takes the call off hold: re-INVITE with `a=sendrecv`.
    pub fn resume(&mut self, now: Instant) -> Result<(), CallError> {
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
        let State::Calling(early) = &self.state else {
            return Err(self.wrong_state("retry_on_route"));
        };
        if early.invite.as_ref().is_some_and(|i| i.provisional) {
            return Err(self.wrong_state("retry_on_route"));
        }
        if early.cancel_pending {
            // Hung up before anyone answered: nothing to retry.
            self.end(now, EndReason::Cancelled, None);
            return Ok(());
        }
        if self.walk_budget_over(now) {
            // Timer B ended the walk: no route may be tried any more.
            self.state.take_invite();
            self.emit(CallEventKind::RouteFailed { budget_over: true });
            self.end(now, EndReason::Timeout, None);
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
        if matches!(self.state, State::Calling(_)) {
            self.end(now, EndReason::Timeout, None);
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
        if !route.same_destination(&self.dialog.route) {
            return;
        }
        match &mut self.state {
            State::Calling(early) if early.invite.as_ref().is_some_and(|i| !i.provisional) => {
                early.invite = None;
                self.emit(CallEventKind::RouteFailed { budget_over: false });
            }
            // Waiting for another route: nothing of the call is on this one.
            State::Calling(early) if early.invite.is_none() => {}
            State::Ended { .. } | State::Established(_) | State::Incoming => {}
            _ => self.end(now, EndReason::TransportError, None),
        }
    }

    // ----- inputs: network and time -----

    /// A message the line matched to this call ([`Self::accepts`]).
    pub fn handle_message(&mut self, now: Instant, msg: &Message) {
        match msg {
            Message::Request(req) => self.handle_request(now, req),
            Message::Response(resp) => self.handle_response(now, resp),
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.route_wait_deadline().is_some_and(|t| t <= now) {
            // Timer B ended the walk while no route was there to take it.
            self.emit(CallEventKind::RouteFailed { budget_over: true });
            self.end(now, EndReason::Timeout, None);
        }
        if self.timers.is_due(Timer::LateAnswers, now) {
            self.timers.stop(Timer::LateAnswers);
            self.ended_forks.clear();
        }
        self.fork_bye_timeouts(now);
        if let Some(inv) = self.state.invite_mut() {
            match inv.tx.handle_timeout(now) {
                Some(TimeoutAction::Retransmit) => {
                    let req = inv.request.clone();
                    self.send(req);
                }
                Some(TimeoutAction::TimedOut(why)) => self.invite_timed_out(now, why),
                None => {}
            }
        }
        if let Some(bye) = self.state.bye_mut() {
            match bye.tx.handle_timeout(now) {
                Some(TimeoutAction::Retransmit) => {
                    let req = bye.request.clone();
                    self.send(req);
                }
                Some(TimeoutAction::TimedOut(_)) => {
                    if let State::Terminating(t) = &self.state {
                        let reason = t.reason;
                        self.end(now, reason, None);
                    }
                }
                None => {}
            }
        }
        if let Some(cancel) = self.state.cancel_mut() {
            if let Some(TimeoutAction::Retransmit) = cancel.tx.handle_timeout(now) {
                let req = cancel.request.clone();
                self.send(req);
            }
        }
        if self.timers.is_due(Timer::CancelGiveUp, now) {
            self.timers.stop(Timer::CancelGiveUp);
            self.end(now, EndReason::Cancelled, None);
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

    /// The server INVITE's retransmissions (2xx, or Timer G) and Timer H.
    fn server_timeout(&mut self, now: Instant) {
        let t2 = self.settings.policy.timers.t2;
        if self.timers.is_due(Timer::AckGiveUp, now) {
            // Timer H: the 2xx was never acknowledged (for a rejection,
            // nothing more to do).
            self.stop_retransmit();
            let Some(server) = self.server.take() else {
                return;
            };
            let established = matches!(self.state, State::Established(_));
            if !server.rejected && (server.initial || established) {
                self.send_bye(now, EndReason::NoAck);
            }
        } else if self.timers.is_due(Timer::Retransmit, now) {
            let repeat = self.server.as_mut().and_then(|server| {
                let interval = server.retransmit.as_mut()?;
                *interval = (*interval * 2).min(t2);
                Some((*interval, server.last.clone()))
            });
            let Some((interval, last)) = repeat else {
                self.stop_retransmit();
                return;
            };
            self.timers.set(Timer::Retransmit, now + interval);
            if let Some(resp) = last {
                self.send(resp);
            }
        }
    }

    /// The server INVITE repeats nothing more (ACK, Timer H, end).
    pub(super) fn stop_retransmit(&mut self) {
        if let Some(server) = &mut self.server {
            server.retransmit = None;
        }
        self.timers.stop(Timer::Retransmit);
        self.timers.stop(Timer::AckGiveUp);
    }

    // ----- helpers shared by uac.rs and uas.rs -----

    pub(super) fn wrong_state(&self, command: &'static str) -> CallError {
        CallError::WrongState {
            command,
            state: self.state.phase(),
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

    /// The call ends at `now`: every transaction of the state goes with it;
    /// a rejection keeps its Timer G, an outgoing call opens the window for
    /// late answers.
    pub(super) fn end(&mut self, now: Instant, reason: EndReason, status: Option<u16>) {
        if self.state.is_ended() {
            return;
        }
        self.state = State::Ended { reason, status };
        // A call that was answered already holds Timer M from its 2xx.
        if self.direction == CallDirection::Outgoing && self.ack_2xx.is_none() {
            self.timer_m = Some(now + self.settings.policy.timers.timer_b());
        }
        if let Some(at) = self.timer_m.take().filter(|t| *t > now) {
            self.timers.set(Timer::LateAnswers, at);
        }
        self.timers.stop(Timer::Ring);
        self.timers.stop(Timer::CancelGiveUp);
        if self.server.as_ref().is_some_and(|s| !s.rejected) {
            self.stop_retransmit();
        }
        self.emit(CallEventKind::Ended { reason, status });
    }

    /// `onlySignalWithRegistered`: may a request go out now? If not, the
    /// call ends (`registrar_changed`) and nothing is sent.
    pub(super) fn gate(&mut self, now: Instant) -> bool {
        if self.may_signal_via(self.registrar.as_ref()) {
            return true;
        }
        self.end(now, EndReason::RegistrarChanged, None);
        false
    }
}
