//! The call's state as an enum whose busy variants carry the transactions
//! they run (as h2's stream state and the registration's `State` do), and
//! the table of the call's own timers (quinn-proto's `TimerTable`). The
//! diagram is in the module docs of [`super`].

use std::time::{Duration, Instant};

use super::{CallState, EndReason};
use crate::message::{Request, Response};
use crate::transaction::ClientTransaction;

/// Where the call is, with the data of the transactions that state runs.
/// The server INVITE transaction (figure 7) is not here: it outlives the
/// dialog state it started in (a rejection is repeated by Timer G after
/// the call ended, a retransmitted INVITE gets the last response again),
/// so it lives beside the state in `Call::server`.
pub(super) enum State {
    /// Figure 5 Calling: our INVITE is out, no provisional response yet.
    Calling(Box<Early>),
    /// Figure 5 Proceeding: a 180/183 came.
    Ringing(Box<Early>),
    /// CANCEL sent (9.1); the INVITE waits for its 487 (Timer::CancelGiveUp).
    Cancelling(Box<Cancelling>),
    /// An incoming INVITE rings (Timer::Ring).
    Incoming,
    /// We sent 200 and wait for the ACK.
    Answering {
        /// Hang up as soon as the 2xx is acknowledged.
        bye_after_ack: bool,
    },
    /// The dialog is confirmed.
    Established(Box<InDialog>),
    /// BYE sent, waiting for its response.
    Terminating(Box<Terminating>),
    Ended {
        reason: EndReason,
        /// The final response that ended it, if any.
        status: Option<u16>,
    },
}

/// The initial INVITE before any final response.
pub(super) struct Early {
    /// `None` between a route failure and the line's `retry_on_route` or
    /// `give_up`.
    pub(super) invite: Option<InviteTx>,
    /// `hangup` before any provisional response: CANCEL when one arrives.
    pub(super) cancel_pending: bool,
}

pub(super) struct Cancelling {
    /// The INVITE being cancelled, until its final response.
    pub(super) invite: Option<InviteTx>,
    pub(super) cancel: NonInviteTx,
}

pub(super) struct InDialog {
    /// Our re-INVITE (hold, resume) in progress.
    pub(super) reinvite: Option<InviteTx>,
}

pub(super) struct Terminating {
    pub(super) bye: NonInviteTx,
    /// The reason reported when the BYE completes.
    pub(super) reason: EndReason,
    /// A re-INVITE still running when the BYE went out.
    pub(super) reinvite: Option<InviteTx>,
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

/// An INVITE we received (initial or re-INVITE): the server transaction
/// of RFC 3261 figure 7 (and RFC 6026's Accepted state for a 2xx).
pub(super) struct ServerInvite {
    pub(super) request: Request,
    pub(super) branch: String,
    pub(super) cseq: u32,
    pub(super) initial: bool,
    /// The last response sent, repeated on a retransmitted INVITE.
    pub(super) last: Option<Response>,
    /// The current interval of the 2xx retransmission (any transport), or
    /// of Timer G for a 300-699 over UDP (RFC 3261 17.2.1), until the ACK
    /// or Timer H; `None` when nothing is repeated.
    pub(super) retransmit: Option<Duration>,
    /// The final response sent was 300-699: its ACK ends nothing.
    pub(super) rejected: bool,
}

impl State {
    pub(super) fn early(invite: Option<InviteTx>) -> State {
        State::Calling(Box::new(Early {
            invite,
            cancel_pending: false,
        }))
    }

    pub(super) fn established(reinvite: Option<InviteTx>) -> State {
        State::Established(Box::new(InDialog { reinvite }))
    }

    pub(super) fn phase(&self) -> CallState {
        match self {
            State::Calling(_) => CallState::Calling,
            State::Ringing(_) => CallState::Ringing,
            State::Cancelling(_) => CallState::Cancelling,
            State::Incoming => CallState::Incoming,
            State::Answering { .. } => CallState::Answering,
            State::Established(_) => CallState::Established,
            State::Terminating(_) => CallState::Terminating,
            State::Ended { .. } => CallState::Ended,
        }
    }

    /// Figure 5: Calling moves to Proceeding on a 1xx other than 100.
    /// Whether it did.
    pub(super) fn calling_to_ringing(&mut self) -> bool {
        if !matches!(self, State::Calling(_)) {
            return false;
        }
        if let State::Calling(early) = std::mem::replace(self, State::Incoming) {
            *self = State::Ringing(early);
        }
        true
    }

    pub(super) fn is_ended(&self) -> bool {
        matches!(self, State::Ended { .. })
    }

    /// The slot of our INVITE transaction in the states that run one.
    fn invite_slot(&mut self) -> Option<&mut Option<InviteTx>> {
        match self {
            State::Calling(e) | State::Ringing(e) => Some(&mut e.invite),
            State::Cancelling(c) => Some(&mut c.invite),
            State::Established(d) => Some(&mut d.reinvite),
            State::Terminating(t) => Some(&mut t.reinvite),
            State::Incoming | State::Answering { .. } | State::Ended { .. } => None,
        }
    }

    /// Our INVITE or re-INVITE in progress.
    pub(super) fn invite(&self) -> Option<&InviteTx> {
        match self {
            State::Calling(e) | State::Ringing(e) => e.invite.as_ref(),
            State::Cancelling(c) => c.invite.as_ref(),
            State::Established(d) => d.reinvite.as_ref(),
            State::Terminating(t) => t.reinvite.as_ref(),
            State::Incoming | State::Answering { .. } | State::Ended { .. } => None,
        }
    }

    pub(super) fn invite_mut(&mut self) -> Option<&mut InviteTx> {
        self.invite_slot().and_then(Option::as_mut)
    }

    pub(super) fn take_invite(&mut self) -> Option<InviteTx> {
        self.invite_slot().and_then(Option::take)
    }

    /// Starts `invite` in the current state (only the states above run one).
    pub(super) fn put_invite(&mut self, invite: InviteTx) {
        if let Some(slot) = self.invite_slot() {
            *slot = Some(invite);
        }
    }

    pub(super) fn cancel_pending(&self) -> bool {
        matches!(self, State::Calling(e) if e.cancel_pending)
    }

    pub(super) fn bye_mut(&mut self) -> Option<&mut NonInviteTx> {
        match self {
            State::Terminating(t) => Some(&mut t.bye),
            _ => None,
        }
    }

    pub(super) fn cancel_mut(&mut self) -> Option<&mut NonInviteTx> {
        match self {
            State::Cancelling(c) => Some(&mut c.cancel),
            _ => None,
        }
    }

    /// The transactions' own next deadline (Timer A/B, E/F).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let invite = self.invite().and_then(|i| i.tx.poll_timeout());
        let other = match self {
            State::Cancelling(c) => c.cancel.tx.poll_timeout(),
            State::Terminating(t) => t.bye.tx.poll_timeout(),
            _ => None,
        };
        [invite, other].into_iter().flatten().min()
    }
}

/// The call's own timers; those of its client transactions live in them.
#[derive(Clone, Copy, Debug)]
pub(super) enum Timer {
    /// `sipfleet.call.ringTimeout`: a call still ringing gets 480.
    Ring,
    /// 64*T1 after our CANCEL: no final response to the INVITE, call over.
    CancelGiveUp,
    /// The next repetition of our 2xx (13.3.1.4) or, over UDP, of our
    /// 300-699 (Timer G, 17.2.1).
    Retransmit,
    /// Timer H: no ACK for our final response in 64*T1.
    AckGiveUp,
    /// After the end of an outgoing call: the window for late 2xx (64*T1
    /// after the end, or RFC 6026 Timer M after the first 2xx).
    LateAnswers,
}

#[derive(Default)]
pub(super) struct TimerTable([Option<Instant>; 5]);

impl TimerTable {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer as usize]
    }

    /// Whether `timer` is set and due at `now`.
    pub(super) fn is_due(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now >= at)
    }

    pub(super) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}
