//! The requests and responses a [`Call`] builds: INVITE and re-INVITE
//! (with the SDP offer), BYE, CANCEL, responses to the server INVITE and
//! the 2xx retransmission schedule.

use std::time::Instant;

use bytes::Bytes;

use super::dialog::authorize;
use super::machine::Call;
use super::state::{Cancelling, InviteTx, NonInviteTx, Purpose, State, Terminating, Timer};
use super::{CallError, EndReason};
use crate::message::{HeaderName, Method, Request};
use crate::sdp::{self, Direction, RemoteMedia};
use crate::transaction::{ClientTransaction, RequestKind, WalkPosition};

impl Call {
    /// Our SDP for a response: the answer to the peer's `offer`, or our
    /// own offer when the peer's request had none (answer comes in the ACK).
    pub(super) fn local_description(&mut self, offer: Option<&RemoteMedia>) -> Bytes {
        if let Some(offer) = offer {
            if let Ok(body) = self.media.answer(offer, self.local_hold) {
                return body;
            }
        }
        self.media.offer(if self.local_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        })
    }

    /// Sends a response to the server INVITE in progress and remembers it.
    pub(super) fn respond_invite(&mut self, status: u16, body: Option<Bytes>) {
        self.respond_invite_full(status, body, &[]);
    }

    /// [`Self::respond_invite`] with extra headers and no body.
    pub(super) fn respond_invite_with(&mut self, status: u16, extra: &[(HeaderName, String)]) {
        self.respond_invite_full(status, None, extra);
    }

    fn respond_invite_full(
        &mut self,
        status: u16,
        body: Option<Bytes>,
        extra: &[(HeaderName, String)],
    ) {
        let Some(server) = &self.server else {
            return;
        };
        let Some(code) = crate::message::StatusCode::new(status) else {
            return;
        };
        let mut resp = self.dialog.response(&server.request, code);
        for (name, value) in extra {
            resp.headers_mut().push(*name, value.clone());
        }
        if let Some(body) = body {
            resp.headers_mut()
                .push(HeaderName::ContentType, sdp::CONTENT_TYPE);
            resp.set_body(body);
        }
        if let Some(server) = &mut self.server {
            server.last = Some(resp.clone());
        }
        self.send(resp);
    }

    /// A 300-699 went to the server INVITE: over UDP, Timer G repeats it
    /// (T1 doubling to T2) until the ACK or Timer H (RFC 3261 17.2.1).
    pub(super) fn reject_sent(&mut self, now: Instant) {
        let unreliable = !self.dialog.route.transport.is_reliable();
        if let Some(server) = &mut self.server {
            server.rejected = true;
        }
        if unreliable {
            self.start_2xx_retransmit(now);
        }
    }

    pub(super) fn start_2xx_retransmit(&mut self, now: Instant) {
        let t1 = self.settings.policy.timers.t1;
        if let Some(server) = &mut self.server {
            server.retransmit = Some(t1);
            self.timers.set(Timer::Retransmit, now + t1);
            self.timers.set(Timer::AckGiveUp, now + t1 * 64);
        }
    }

    /// Builds and sends an INVITE (initial or re-INVITE) as a new
    /// transaction.
    pub(super) fn send_invite(
        &mut self,
        now: Instant,
        purpose: Purpose,
        last_route: bool,
        with_credentials: bool,
    ) -> Result<(), CallError> {
        let cseq = self.dialog.next_cseq();
        let branch = self.ids.branch();
        let mut req = self
            .dialog
            .request(Method::Invite, cseq, &branch, &self.settings.user_agent)
            .map_err(|e| CallError::BadUri {
                uri: self.dialog.remote_target.clone(),
                reason: e.to_string(),
            })?;
        let body = match (purpose, self.state.invite()) {
            // A retry of the initial INVITE repeats the same offer.
            (Purpose::Initial, Some(previous)) => previous.request.body().clone(),
            (Purpose::Initial, None) => match &self.initial_offer {
                Some(body) => body.clone(),
                None => self.media.offer(Direction::SendRecv),
            },
            (Purpose::Hold, _) => self.media.offer(Direction::SendOnly),
            (Purpose::Resume, _) => self.media.offer(Direction::SendRecv),
        };
        if purpose == Purpose::Initial {
            self.initial_offer = Some(body.clone());
        }
        let h = req.headers_mut();
        h.push(HeaderName::Allow, crate::line::incoming::ALLOW);
        h.push(HeaderName::ContentType, sdp::CONTENT_TYPE);
        req.set_body(body);
        if with_credentials {
            self.add_credentials(&mut req);
        }
        let position = match purpose {
            Purpose::Initial => WalkPosition {
                walk_started: self.walk_started,
                last_route,
            },
            _ => WalkPosition {
                walk_started: now,
                last_route: true,
            },
        };
        let tx = ClientTransaction::start(
            RequestKind::Invite,
            self.dialog.route.transport,
            &self.settings.policy,
            position,
            now,
        );
        self.state.put_invite(InviteTx {
            request: req.clone(),
            tx,
            cseq,
            purpose,
            answered_challenge: with_credentials,
            provisional: false,
        });
        self.send(req);
        Ok(())
    }

    pub(super) fn add_credentials(&mut self, req: &mut Request) {
        if let (Some(digest), Some(challenge)) = (&mut self.digest, &self.challenge) {
            authorize(req, digest, challenge, &mut self.ids);
        }
    }

    pub(super) fn reinvite(
        &mut self,
        now: Instant,
        purpose: Purpose,
        command: &'static str,
    ) -> Result<(), CallError> {
        let in_dialog = matches!(&self.state, State::Established(d) if d.reinvite.is_none());
        if !in_dialog || self.server.is_some() {
            return Err(self.wrong_state(command));
        }
        if !self.gate(now) {
            return Ok(());
        }
        let with_credentials = self.challenge.is_some();
        self.send_invite(now, purpose, true, with_credentials)
    }

    /// Sends a BYE (a new non-INVITE transaction in the dialog).
    pub(super) fn send_bye(&mut self, now: Instant, reason: EndReason) {
        if !self.gate(now) {
            return;
        }
        let cseq = self.dialog.next_cseq();
        let branch = self.ids.branch();
        let Ok(mut req) =
            self.dialog
                .request(Method::Bye, cseq, &branch, &self.settings.user_agent)
        else {
            self.end(now, reason, None);
            return;
        };
        if self.challenge.is_some() {
            self.add_credentials(&mut req);
        }
        let bye = NonInviteTx {
            request: req.clone(),
            tx: self.non_invite_tx(now),
            cseq,
            answered_challenge: false,
        };
        // A re-INVITE still running goes on beside the BYE.
        let reinvite = self.state.take_invite();
        self.state = State::Terminating(Box::new(Terminating {
            bye,
            reason,
            reinvite,
        }));
        self.send(req);
    }

    pub(super) fn non_invite_tx(&self, now: Instant) -> ClientTransaction {
        ClientTransaction::start(
            RequestKind::NonInvite,
            self.dialog.route.transport,
            &self.settings.policy,
            WalkPosition {
                walk_started: now,
                last_route: true,
            },
            now,
        )
    }

    /// CANCEL of our ringing INVITE (RFC 3261 9.1): same branch,
    /// Request-URI, Call-ID, From, To, Route and CSeq number.
    pub(super) fn send_cancel(&mut self, now: Instant) {
        if let State::Calling(early) = &mut self.state {
            early.cancel_pending = false;
        }
        let Some(inv) = self.state.invite() else {
            return;
        };
        if !self.may_signal_via(self.registrar.as_ref()) {
            self.gate(now);
            return;
        }
        let src = inv.request.headers();
        let cseq = inv.cseq;
        let Ok(mut req) = Request::new(Method::Cancel, inv.request.uri_str()) else {
            return;
        };
        let h = req.headers_mut();
        for name in [HeaderName::Via, HeaderName::MaxForwards] {
            if let Some(v) = src.get(name) {
                h.push(name, v);
            }
        }
        for r in src.get_all(HeaderName::Route) {
            h.push(HeaderName::Route, r);
        }
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
            if let Some(v) = src.get(name) {
                h.push(name, v);
            }
        }
        h.push(HeaderName::CSeq, format!("{cseq} CANCEL"));
        h.push(HeaderName::UserAgent, self.settings.user_agent.clone());
        let cancel = NonInviteTx {
            request: req.clone(),
            tx: self.non_invite_tx(now),
            cseq,
            answered_challenge: false,
        };
        let invite = self.state.take_invite();
        self.state = State::Cancelling(Box::new(Cancelling { invite, cancel }));
        self.timers.set(
            Timer::CancelGiveUp,
            now + self.settings.policy.timers.timer_b(),
        );
        self.send(req);
    }
}
