//! Requests from the peer (retransmitted INVITE, re-INVITE, ACK, CANCEL,
//! BYE, others): the UAS half of [`Call`].

use std::time::Instant;

use super::machine::Call;
use super::state::{ServerInvite, State, Timer};
use super::{CallError, CallEventKind, EndReason};
use crate::message::{Method, Request, Response, StatusCode};
use crate::sdp::RemoteMedia;

impl Call {
    /// `reg.x.autoAnswer`: the line answers this ringing call at once
    /// (binding its media port, then [`Self::answer`]).
    pub fn auto_answer_due(&self) -> bool {
        self.settings.auto_answer && matches!(self.state, State::Incoming)
    }

    /// The line could not get a media port to answer this ringing call
    /// (`sipfleet.sockets.max` reached, or the bind failed): 503 Service
    /// Unavailable, and the call ends (`resource_limit`).
    pub fn refuse_no_media(&mut self, now: Instant) -> Result<(), CallError> {
        if !matches!(self.state, State::Incoming) {
            return Err(self.wrong_state("refuse_no_media"));
        }
        self.respond_invite(503, None);
        self.reject_sent(now);
        self.end(now, EndReason::ResourceLimit, Some(503));
        Ok(())
    }

    /// `sipfleet.call.ringTimeout` over: a call still ringing gets 480
    /// Temporarily Unavailable (RFC 3261 21.4.18) and ends (`ring_timeout`).
    pub(super) fn ring_timeout(&mut self, now: Instant) {
        if !matches!(self.state, State::Incoming) || !self.timers.is_due(Timer::Ring, now) {
            return;
        }
        self.timers.stop(Timer::Ring);
        self.respond_invite(480, None);
        self.reject_sent(now);
        self.end(now, EndReason::RingTimeout, Some(480));
    }

    pub(super) fn handle_request(&mut self, now: Instant, req: &Request) {
        let branch = req
            .headers()
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned));
        let unconfirmed =
            self.direction == super::CallDirection::Outgoing && self.dialog.remote_tag.is_none();
        let gone = self.state.is_ended()
            && !matches!(req.method(), Method::Ack | Method::Bye | Method::Invite);
        if *req.method() != Method::Ack && (unconfirmed || gone) {
            // No dialog yet (our INVITE is unanswered), or no more: 481.
            let resp = Response::for_request(
                req,
                StatusCode::CALL_DOES_NOT_EXIST,
                Some(&self.dialog.local_tag),
            );
            self.send(resp);
            return;
        }
        match req.method() {
            Method::Invite => self.on_invite(now, req, branch),
            Method::Ack => self.on_ack(now, req),
            Method::Cancel => self.on_cancel(now, req, branch),
            Method::Bye => self.on_bye(now, req),
            Method::Options | Method::Info => {
                if self.in_dialog(req) {
                    self.reply(req, StatusCode::OK);
                }
            }
            _ => {
                if self.in_dialog(req) {
                    self.reply(req, StatusCode::new(501).unwrap_or(StatusCode::BAD_REQUEST));
                }
            }
        }
    }

    /// Answers `req` (not the server INVITE) with `status` in this dialog.
    fn reply(&mut self, req: &Request, status: StatusCode) {
        let resp = self.dialog.response(req, status);
        self.send(resp);
    }

    /// Checks tags and CSeq of an in-dialog request; answers 481/500 and
    /// returns false when it does not belong.
    fn in_dialog(&mut self, req: &Request) -> bool {
        match self.dialog.check_incoming(req) {
            Ok(()) => true,
            Err(refusal) => {
                if let Some(code) = StatusCode::new(refusal.status()) {
                    let resp = Response::for_request(req, code, Some(&self.dialog.local_tag));
                    self.send(resp);
                }
                false
            }
        }
    }

    fn on_invite(&mut self, now: Instant, req: &Request, branch: Option<String>) {
        // A retransmission repeats our last response (RFC 3261 17.2.1).
        if let Some(server) = &self.server {
            if branch.is_some() && branch.as_deref() == Some(server.branch.as_str()) {
                if let Some(last) = server.last.clone() {
                    self.send(last);
                }
                return;
            }
        }
        let has_to_tag = req.headers().to().is_ok_and(|t| t.tag().is_some());
        if !has_to_tag && branch.is_some() && branch == self.initial_branch {
            // A late copy of the initial INVITE after its transaction ended
            // (RFC 6026 Accepted state): absorbed.
            return;
        }
        if !has_to_tag {
            // The same INVITE by another path (RFC 3261 8.2.2.2).
            if let Some(code) = StatusCode::new(482) {
                self.send(Response::for_request(
                    req,
                    code,
                    Some(&self.dialog.local_tag),
                ));
            }
            return;
        }
        if self.state.is_ended() {
            if let Some(code) = StatusCode::new(481) {
                self.reply(req, code);
            }
            return;
        }
        if !self.in_dialog(req) {
            return;
        }
        if self.state.invite().is_some() {
            // Glare with our own re-INVITE (RFC 3261 14.2).
            if let Some(code) = StatusCode::new(491) {
                self.reply(req, code);
            }
            return;
        }
        if !matches!(self.state, State::Established(_)) || self.server.is_some() {
            self.reply(req, StatusCode::SERVER_INTERNAL_ERROR);
            return;
        }
        let offer = if req.body().is_empty() {
            None
        } else {
            match RemoteMedia::parse(req.body()) {
                Ok(m) if m.common_codec().is_ok() => Some(m),
                _ => {
                    if let Some(code) = StatusCode::new(488) {
                        self.reply(req, code);
                    }
                    return;
                }
            }
        };
        // A target refresh (RFC 3261 12.2.2).
        if let Some(c) = req.headers().contacts().next().and_then(Result::ok) {
            self.dialog.remote_target = c.uri().as_str().to_owned();
        }
        self.server = Some(ServerInvite {
            request: req.clone(),
            branch: branch.unwrap_or_default(),
            cseq: req.headers().cseq().map(|c| c.seq).unwrap_or(0),
            initial: false,
            last: None,
            retransmit: None,
            rejected: false,
        });
        let body = self.local_description(offer.as_ref());
        self.respond_invite(200, Some(body));
        self.start_2xx_retransmit(now);
        if let Some(m) = offer {
            self.remote_media_changed(m);
        }
    }

    /// The peer's new description: report hold and resume.
    fn remote_media_changed(&mut self, media: RemoteMedia) {
        let hold = media.direction.is_hold();
        self.remote_media = Some(media);
        if hold != self.remote_hold {
            self.remote_hold = hold;
            self.emit(if hold {
                CallEventKind::Held { by_remote: true }
            } else {
                CallEventKind::Resumed { by_remote: true }
            });
        }
    }

    fn on_ack(&mut self, now: Instant, req: &Request) {
        let seq = req.headers().cseq().map(|c| c.seq).ok();
        let Some(server) = &self.server else {
            return;
        };
        if server.rejected {
            // The ACK for our 300-699 (hop by hop, To may be untagged):
            // Timer G stops.
            if seq == Some(server.cseq) {
                self.stop_retransmit();
            }
            return;
        }
        let answered = server.retransmit.is_some();
        if seq != Some(server.cseq) || !answered || self.dialog.check_incoming(req).is_err() {
            // A stray ACK: absorbed.
            return;
        }
        let initial = server.initial;
        self.stop_retransmit();
        self.server = None;
        if !req.body().is_empty() {
            // The answer to the offer we put in our 2xx.
            if let Ok(m) = RemoteMedia::parse(req.body()) {
                self.remote_media_changed(m);
            }
        }
        if let (true, State::Answering { bye_after_ack }) = (initial, &self.state) {
            let bye_after_ack = *bye_after_ack;
            self.state = State::established(None);
            let remote_rtp = self.remote_media.as_ref().map(|m| m.rtp);
            self.emit(CallEventKind::Established { remote_rtp });
            if bye_after_ack {
                self.send_bye(now, EndReason::LocalHangup);
            }
        }
    }

    fn on_cancel(&mut self, now: Instant, req: &Request, branch: Option<String>) {
        let matches = self.server.as_ref().is_some_and(|s| {
            s.initial && branch.is_some() && branch.as_deref() == Some(s.branch.as_str())
        });
        if !matches {
            let resp = Response::for_request(
                req,
                StatusCode::CALL_DOES_NOT_EXIST,
                Some(&self.dialog.local_tag),
            );
            self.send(resp);
            return;
        }
        // RFC 3261 9.2: 200 to the CANCEL; 487 to the INVITE if it has no
        // final response yet.
        self.reply(req, StatusCode::OK);
        if matches!(self.state, State::Incoming) {
            self.respond_invite(487, None);
            self.reject_sent(now);
            self.end(now, EndReason::RemoteCancelled, Some(487));
        }
    }

    fn on_bye(&mut self, now: Instant, req: &Request) {
        let remote_ended = matches!(
            self.state,
            State::Ended {
                reason: EndReason::RemoteHangup,
                ..
            }
        );
        if remote_ended {
            // A retransmitted BYE gets its 200 again.
            self.reply(req, StatusCode::OK);
            return;
        }
        if matches!(self.state, State::Incoming | State::Ended { .. }) {
            let resp = Response::for_request(
                req,
                StatusCode::CALL_DOES_NOT_EXIST,
                Some(&self.dialog.local_tag),
            );
            self.send(resp);
            return;
        }
        if !self.in_dialog(req) {
            return;
        }
        self.reply(req, StatusCode::OK);
        self.end(now, EndReason::RemoteHangup, None);
    }
}
