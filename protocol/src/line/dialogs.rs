//! Which dialogs and INVITE branches of the line each flow's router must
//! know.
//!
//! A connection routes an in-dialog request (one with a To tag) by Call-ID
//! and *our* tag, and a late response by Call-ID and From tag. Rather than
//! asking each machine for its tag, the tag is read from what the machine
//! sends: the From tag of our requests, the To tag of our responses. The
//! first message of a dialog on a flow announces it, before the message
//! itself, so an answer can never beat the route.
//!
//! A connection forgets a non-INVITE transaction at its final response but
//! keeps INVITE (and ACK) branches until told: they are recorded per
//! Call-ID and released with the dialog, so a load run of many calls does
//! not grow the routers.

use std::collections::{HashMap, HashSet};

use crate::message::{Message, Method};
use crate::route::FlowKey;

use super::io::Output;

/// Dialogs announced to flows and INVITE/ACK branches sent on them.
#[derive(Debug, Default)]
pub(super) struct DialogBook {
    /// (Call-ID, our tag) → the flow that knows it.
    dialogs: HashMap<(String, String), FlowKey>,
    /// Call-ID → INVITE and ACK branches sent, with their flow.
    branches: HashMap<String, Vec<(FlowKey, String)>>,
}

/// Call-ID and our tag of a message we send.
fn dialog_key(message: &Message) -> Option<(String, String)> {
    let h = message.headers();
    let call_id = h.call_id().ok()?.to_owned();
    let tag = match message {
        Message::Request(_) => h.from().ok()?.tag()?.to_owned(),
        Message::Response(_) => h.to().ok()?.tag()?.to_owned(),
    };
    Some((call_id, tag))
}

impl DialogBook {
    /// Records what `message`, about to go on `flow`, tells the flow's
    /// router; answers the announcement to make first, if any.
    pub(super) fn note_sent(&mut self, flow: FlowKey, message: &Message) -> Option<Output> {
        let dialog = dialog_key(message)?;
        if let Message::Request(req) = message {
            if matches!(req.method(), Method::Invite | Method::Ack) {
                if let Some(branch) = req.headers().top_via().ok().and_then(|v| v.branch()) {
                    self.branches
                        .entry(dialog.0.clone())
                        .or_default()
                        .push((flow, branch.to_owned()));
                }
            }
        }
        if self.dialogs.get(&dialog) == Some(&flow) {
            return None;
        }
        self.dialogs.insert(dialog.clone(), flow);
        Some(Output::AnnounceDialog {
            flow,
            call_id: dialog.0,
            local_tag: dialog.1,
        })
    }

    /// Takes every dialog and branch whose Call-ID is not in `live` out of
    /// the routers: their late requests get the router's 481.
    pub(super) fn forget_dead(&mut self, live: &HashSet<String>, out: &mut Vec<Output>) {
        let dead_branches: Vec<String> = self
            .branches
            .keys()
            .filter(|call_id| !live.contains(*call_id))
            .cloned()
            .collect();
        for call_id in dead_branches {
            for (flow, branch) in self.branches.remove(&call_id).unwrap_or_default() {
                out.push(Output::TransactionDone { flow, branch });
            }
        }
        let dead: Vec<(String, String)> = self
            .dialogs
            .keys()
            .filter(|(call_id, _)| !live.contains(call_id))
            .cloned()
            .collect();
        for dialog in dead {
            if let Some(flow) = self.dialogs.remove(&dialog) {
                out.push(Output::ForgetDialog {
                    flow,
                    call_id: dialog.0,
                    local_tag: dialog.1,
                });
            }
        }
    }
}
