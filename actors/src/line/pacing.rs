//! The line's side of the fleet's pacer (`crate::pacer`): the registration
//! machine's slot requests go to the pacer, its grants come back as
//! [`SlotGranted`] and feed the machine. Kept apart so the line's driver
//! only forwards two outputs and one message.

use actix::prelude::*;
use sipfleet_protocol::registration::Output;
use sipfleet_transport::flow::FlowKey;

use super::{now, Line};
use crate::pacer::{AskSlot, ReleaseSlot, SlotGranted};

impl Line {
    /// `Output::RequestSlot` and `Output::SlotDone` of the registration,
    /// passed to the fleet's pacer. A paced machine without a pacer (a line
    /// built by hand) is granted at once: nothing to pace it against.
    pub(super) fn pace(&mut self, output: Output, ctx: &mut Context<Self>) {
        match (output, &self.services.pacer) {
            (Output::RequestSlot(request), Some(pacer)) => pacer.do_send(AskSlot {
                line: self.setup.index,
                flow: FlowKey::of(&request.route),
                ticket: request.ticket,
                recipient: ctx.address().recipient(),
            }),
            (Output::RequestSlot(request), None) => {
                self.machine.handle_slot_granted(now(), request.ticket)
            }
            (Output::SlotDone, Some(pacer)) => pacer.do_send(ReleaseSlot {
                line: self.setup.index,
            }),
            _ => {}
        }
    }

    /// A line that stops gives back whatever it held at the pacer.
    pub(super) fn leave_pacer(&self) {
        if let Some(pacer) = &self.services.pacer {
            pacer.do_send(ReleaseSlot {
                line: self.setup.index,
            });
        }
    }
}

impl Handler<SlotGranted> for Line {
    type Result = ();

    fn handle(&mut self, msg: SlotGranted, ctx: &mut Self::Context) {
        self.machine.handle_slot_granted(now(), msg.ticket);
        self.drain(ctx);
    }
}
