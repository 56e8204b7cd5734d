//! Responses to the call's own requests (INVITE, re-INVITE, BYE, CANCEL)
//! and the INVITE's route timeouts: the UAC half of [`Call`].

use std::time::Instant;

use super::dialog::read_challenge;
use super::machine::Call;
use super::state::{NonInviteTx, Purpose, State, Timer};
use super::{CallDirection, CallEventKind, EndReason};
use crate::message::{HeaderName, Method, Request, Response};
use crate::sdp::RemoteMedia;
use crate::transaction::TimedOut;

impl Call {
    pub(super) fn handle_response(&mut self, now: Instant, resp: &Response) {
        let Ok(cseq) = resp.headers().cseq() else {
            return;
        };
        let status = resp.status().as_u16();
        match cseq.method {
            Method::Invite => {
                let current = self.state.invite().is_some_and(|i| i.cseq == cseq.seq);
                if current {
                    self.invite_response(now, resp, status);
                } else if (200..300).contains(&status) && !self.is_acked_2xx(resp, cseq.seq) {
                    self.end_other_fork(now, resp, cseq.seq);
                } else if status >= 200 {
                    self.repeat_ack(cseq.seq, status);
                }
            }
            Method::Bye if self.is_fork_bye(resp) => self.fork_bye_response(now, resp, status),
            Method::Bye => self.bye_response(now, cseq.seq, resp, status),
            Method::Cancel => {
                if let Some(c) = self.state.cancel_mut() {
                    if c.cseq == cseq.seq && status >= 200 {
                        c.tx.handle_final(now, status);
                    }
                }
            }
            _ => {}
        }
    }

    /// A retransmission of the 2xx the call acknowledged (same CSeq, same
    /// To tag). Any other 2xx to one of our INVITEs comes from another fork,
    /// or from an attempt the call abandoned (a route retry, a CANCEL, a
    /// timeout): it gets its own ACK and BYE.
    fn is_acked_2xx(&self, resp: &Response, seq: u32) -> bool {
        let tag = resp.headers().to().ok().and_then(|t| t.tag());
        self.ack_2xx.as_ref().is_some_and(|(s, _)| *s == seq)
            && tag == self.dialog.remote_tag.as_deref()
    }

    /// RFC 3261 13.2.2.4: a second fork that answered gets an ACK and a BYE
    /// in its own dialog; the call keeps the first (or stays ended).
    /// A retransmission of that fork's 2xx (our ACK was lost) gets the
    /// same ACK again, and no second BYE.
    fn end_other_fork(&mut self, now: Instant, resp: &Response, seq: u32) {
        let tag = resp.headers().to().ok().and_then(|t| t.tag());
        if let Some((_, _, ack)) = self
            .ended_forks
            .iter()
            .find(|(t, s, _)| *s == seq && Some(t.as_str()) == tag)
        {
            let ack = ack.clone();
            self.send(ack);
            return;
        }
        let mut fork = self.dialog.clone();
        fork.remote_tag = None;
        fork.update_from_response(resp, true);
        let ack_branch = self.ids.branch();
        let bye_branch = self.ids.branch();
        let ua = self.settings.user_agent.clone();
        if let Ok(ack) = fork.request(Method::Ack, seq, &ack_branch, &ua) {
            if let Some(tag) = tag {
                self.ended_forks.push((tag.to_owned(), seq, ack.clone()));
            }
            self.send(ack);
        }
        let bye_seq = seq.saturating_add(1);
        if let Ok(bye) = fork.request(Method::Bye, bye_seq, &bye_branch, &ua) {
            self.fork_byes.push(NonInviteTx {
                request: bye.clone(),
                tx: self.non_invite_tx(now),
                cseq: bye_seq,
                answered_challenge: false,
            });
            self.send(bye);
        }
    }

    /// The response's branch is that of a BYE sent to a fork.
    fn is_fork_bye(&self, resp: &Response) -> bool {
        let branch = resp.headers().branch().ok().flatten();
        branch.is_some()
            && self
                .fork_byes
                .iter()
                .any(|b| request_branch(&b.request) == branch)
    }

    /// Any final response ends a fork's BYE (there is no call to report it
    /// to); a provisional one stops its retransmissions (Timer E to T2).
    fn fork_bye_response(&mut self, now: Instant, resp: &Response, status: u16) {
        let branch = resp.headers().branch().ok().flatten();
        if status >= 200 {
            self.fork_byes
                .retain(|b| request_branch(&b.request) != branch);
        } else if let Some(b) = self
            .fork_byes
            .iter_mut()
            .find(|b| request_branch(&b.request) == branch)
        {
            b.tx.handle_provisional(now);
        }
    }

    /// A retransmitted final response to an INVITE already answered gets
    /// the same ACK again (RFC 3261 13.2.2.4, 17.1.1.2).
    fn repeat_ack(&mut self, seq: u32, status: u16) {
        let ack = if status < 300 {
            self.ack_2xx.as_ref()
        } else {
            self.ack_final.as_ref()
        };
        if let Some((_, req)) = ack.filter(|(s, _)| *s == seq) {
            let req = req.clone();
            self.send(req);
        }
    }

    fn invite_response(&mut self, now: Instant, resp: &Response, status: u16) {
        let Some(inv) = self.state.invite_mut() else {
            return;
        };
        if status < 200 {
            inv.tx.handle_provisional(now);
            inv.provisional = true;
            if inv.purpose != Purpose::Initial {
                return;
            }
            if self.state.cancel_pending() {
                self.send_cancel(now);
            } else if status != 100 && self.state.calling_to_ringing() {
                self.emit(CallEventKind::Ringing);
            }
            return;
        }
        inv.tx.handle_final(now, status);
        let purpose = inv.purpose;
        let cseq = inv.cseq;
        if status < 300 {
            self.invite_succeeded(now, resp, purpose, cseq);
        } else {
            self.invite_failed(now, resp, status);
        }
    }

    fn invite_succeeded(&mut self, now: Instant, resp: &Response, purpose: Purpose, cseq: u32) {
        self.state.take_invite();
        let initial = purpose == Purpose::Initial;
        self.dialog.update_from_response(resp, initial);
        if !resp.body().is_empty() {
            if let Ok(m) = RemoteMedia::parse(resp.body()) {
                self.remote_media = Some(m);
            }
        }
        let branch = self.ids.branch();
        if let Ok(mut ack) =
            self.dialog
                .request(Method::Ack, cseq, &branch, &self.settings.user_agent)
        {
            if self.challenge.is_some() {
                self.add_credentials(&mut ack);
            }
            self.ack_2xx = Some((cseq, ack.clone()));
            self.send(ack);
        }
        match purpose {
            Purpose::Initial => {
                self.timer_m = Some(now + self.settings.policy.timers.timer_b());
                let cancelled =
                    self.state.cancel_pending() || matches!(self.state, State::Cancelling(_));
                self.timers.stop(Timer::CancelGiveUp);
                self.state = State::established(None);
                self.emit(CallEventKind::Answered);
                let remote_rtp = self.remote_media.as_ref().map(|m| m.rtp);
                self.emit(CallEventKind::Established { remote_rtp });
                if cancelled {
                    // The 2xx crossed our CANCEL: the call is up, end it.
                    self.send_bye(now, EndReason::Cancelled);
                }
            }
            Purpose::Hold => {
                self.local_hold = true;
                self.emit(CallEventKind::Held { by_remote: false });
            }
            Purpose::Resume => {
                self.local_hold = false;
                self.emit(CallEventKind::Resumed { by_remote: false });
            }
        }
    }

    fn invite_failed(&mut self, now: Instant, resp: &Response, status: u16) {
        let Some(inv) = self.state.take_invite() else {
            return;
        };
        let ack = non_2xx_ack(&inv.request, resp, inv.cseq);
        if let Some(ack) = ack {
            self.ack_final = Some((inv.cseq, ack.clone()));
            self.send(ack);
        }
        if matches!(status, 401 | 407) {
            let challenge = read_challenge(resp);
            let stale = challenge.as_ref().is_some_and(|(_, c)| c.stale);
            if challenge.is_some() && self.digest.is_some() && (!inv.answered_challenge || stale) {
                self.challenge = challenge;
                // Same Call-ID and From tag, CSeq + 1, new branch; a fresh
                // 32 s budget on the route that challenged.
                self.walk_started = now;
                let last_route = true;
                if self
                    .send_invite(now, inv.purpose, last_route, true)
                    .is_err()
                {
                    self.end(now, EndReason::AuthFailed, Some(status));
                }
                return;
            }
            if inv.purpose == Purpose::Initial {
                self.end(now, EndReason::AuthFailed, Some(status));
                return;
            }
        }
        match inv.purpose {
            Purpose::Initial => {
                let cancelling = matches!(self.state, State::Cancelling(_));
                let reason = if cancelling && status == 487 {
                    EndReason::Cancelled
                } else {
                    EndReason::Rejected
                };
                self.end(now, reason, Some(status));
            }
            _ if matches!(status, 481 | 408) => {
                self.end(now, EndReason::DialogGone, Some(status));
            }
            _ => self.emit(CallEventKind::ReinviteFailed { status }),
        }
    }

    fn bye_response(&mut self, now: Instant, seq: u32, resp: &Response, status: u16) {
        let Some(bye) = self.state.bye_mut() else {
            return;
        };
        if bye.cseq != seq || status < 200 {
            if bye.cseq == seq {
                bye.tx.handle_provisional(now);
            }
            return;
        }
        bye.tx.handle_final(now, status);
        let answered = bye.answered_challenge;
        let State::Terminating(terminating) = &self.state else {
            return;
        };
        let reason = terminating.reason;
        if matches!(status, 401 | 407) && !answered && self.digest.is_some() {
            if let Some(challenge) = read_challenge(resp) {
                self.challenge = Some(challenge);
                let reinvite = self.state.take_invite();
                self.state = State::established(reinvite);
                self.send_bye(now, reason);
                if let Some(b) = self.state.bye_mut() {
                    b.answered_challenge = true;
                }
                return;
            }
        }
        self.end(now, reason, Some(status));
    }

    /// The INVITE's route gave up (Timer A schedule or Timer B).
    pub(super) fn invite_timed_out(&mut self, now: Instant, why: TimedOut) {
        let calling = matches!(self.state, State::Calling(_));
        let Some(inv) = self.state.take_invite() else {
            return;
        };
        match inv.purpose {
            Purpose::Initial if self.state.cancel_pending() => {
                self.end(now, EndReason::Cancelled, None);
            }
            Purpose::Initial
                if why == TimedOut::Route && calling && !self.walk_budget_over(now) =>
            {
                self.emit(CallEventKind::RouteFailed { budget_over: false });
            }
            Purpose::Initial => {
                if calling {
                    self.emit(CallEventKind::RouteFailed { budget_over: true });
                }
                self.end(now, EndReason::Timeout, None);
            }
            // A re-INVITE without answer: the dialog is gone (RFC 3261
            // 12.2.1.2 treats a 408 like a 481); say goodbye.
            _ => {
                let established = matches!(self.state, State::Established(_));
                if self.direction == CallDirection::Incoming || established {
                    self.send_bye(now, EndReason::Timeout);
                } else {
                    self.end(now, EndReason::Timeout, None);
                }
            }
        }
    }
}

/// The ACK for a 300-699 (RFC 3261 17.1.1.3): the INVITE's Request-URI,
/// top Via (same branch), Route, From, Call-ID and CSeq number; the
/// response's To.
fn non_2xx_ack(invite: &Request, resp: &Response, cseq: u32) -> Option<Request> {
    let src = invite.headers();
    let mut ack = Request::new(Method::Ack, invite.uri_str()).ok()?;
    let h = ack.headers_mut();
    h.push(HeaderName::Via, src.get(HeaderName::Via)?);
    h.push(HeaderName::MaxForwards, "70");
    for r in src.get_all(HeaderName::Route) {
        h.push(HeaderName::Route, r);
    }
    h.push(HeaderName::From, src.get(HeaderName::From)?);
    h.push(HeaderName::To, resp.headers().get(HeaderName::To)?);
    h.push(HeaderName::CallId, src.get(HeaderName::CallId)?);
    h.push(HeaderName::CSeq, format!("{cseq} ACK"));
    Some(ack)
}

fn request_branch(req: &Request) -> Option<&str> {
    req.headers().branch().ok().flatten()
}
