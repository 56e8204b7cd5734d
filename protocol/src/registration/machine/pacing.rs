//! A paced line's place at the fleet's pacer ([`crate::pacing`]): a new
//! exchange asks for a slot and waits in `Admitting`; the grant starts it;
//! the slot goes back when the exchange ends, whichever way. See the module
//! docs of [`crate::registration`] ("Pacing and refresh spread").

use std::time::Instant;

use super::{Goal, Registration, State};
use crate::registration::events::{Output, Purpose, SlotRequest};
use crate::route::Route;

/// A new exchange a paced line will start when the pacer grants it: what
/// `send_attempt` would have sent at once.
pub(super) struct Pending {
    pub(super) route: Route,
    pub(super) goal: Goal,
    pub(super) purpose: Purpose,
    pub(super) ticket: u64,
    /// When the line asked: the wait is not counted in a walk's budget.
    pub(super) asked: Instant,
}

/// The line's place at the fleet's pacer (paced lines only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    /// Neither asked for nor held.
    Free,
    /// Asked for: the line is `Admitting`.
    Waiting,
    /// Granted: the exchange runs (`Registering`) until it ends.
    Held,
}

impl Registration {
    /// The fleet's pacer granted the slot asked for with `ticket`
    /// ([`Output::RequestSlot`]): the exchange starts now, and with it every
    /// timer of its transaction. The walk's 32 s budget does not count the
    /// wait: a new walk's budget starts now, and a failover's is moved on by
    /// the time it waited, so a failover wave queued at the pacer still
    /// gets the guide's 32 s of trying, not what the queue left of it. A
    /// grant for an older request, or one that arrives when nothing waits,
    /// is ignored.
    pub fn handle_slot_granted(&mut self, now: Instant, ticket: u64) {
        if matches!(&self.state, State::Admitting(p) if p.ticket == ticket) {
            if let State::Admitting(pending) = std::mem::replace(&mut self.state, State::NotStarted)
            {
                let Pending {
                    route,
                    mut goal,
                    purpose,
                    asked,
                    ..
                } = *pending;
                if let Goal::Register(walk) = &mut goal {
                    walk.started += now.saturating_duration_since(asked);
                }
                self.slot = Slot::Held;
                self.start_attempt(now, route, goal, purpose);
            }
        }
        self.settle_slot();
    }

    /// Asks the pacer to start a new exchange on `route`; it starts in
    /// [`Self::handle_slot_granted`].
    pub(super) fn request_slot(
        &mut self,
        now: Instant,
        route: Route,
        goal: Goal,
        purpose: Purpose,
    ) {
        self.release_slot();
        self.slot_ticket += 1;
        self.slot = Slot::Waiting;
        self.outputs.push_back(Output::RequestSlot(SlotRequest {
            route: route.clone(),
            ticket: self.slot_ticket,
            purpose,
        }));
        self.state = State::Admitting(Box::new(Pending {
            route,
            goal,
            purpose,
            ticket: self.slot_ticket,
            asked: now,
        }));
    }

    /// Gives the slot asked for or held back to the pacer, if any.
    pub(super) fn release_slot(&mut self) {
        if self.slot != Slot::Free {
            self.slot = Slot::Free;
            self.outputs.push_back(Output::SlotDone);
        }
    }

    /// After every input: a slot is kept while its exchange waits
    /// (`Admitting`) or runs (`Registering`, follow-ups included), and given
    /// back as soon as the exchange ended, whichever way it ended.
    pub(super) fn settle_slot(&mut self) {
        let keep = matches!(
            (self.slot, &self.state),
            (Slot::Free, _)
                | (Slot::Waiting, State::Admitting(_))
                | (Slot::Held, State::Registering(_))
        );
        if !keep {
            self.release_slot();
        }
    }
}
