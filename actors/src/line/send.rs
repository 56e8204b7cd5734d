//! Sending the messages of calls, subscriptions and line seizes on the
//! line's flows, and keeping the flows' routers told which dialogs are the
//! line's.
//!
//! A connection routes an in-dialog request (one with a To tag) by Call-ID
//! and *our* tag, and a late response by Call-ID and From tag. Rather than
//! asking each machine for its tag, the tag is read from what the machine
//! sends: the From tag of our requests, the To tag of our responses. The
//! first message of a dialog on a flow announces it ([`RegisterDialog`]),
//! before the message itself, so an answer can never beat the route.
//!
//! A connection forgets a non-INVITE transaction at its final response but
//! keeps INVITE (and ACK) branches until told: they are recorded per
//! Call-ID and released ([`TransactionDone`]) with the dialog, so a load
//! run of many calls does not grow the routers.

use std::collections::HashSet;

use actix::prelude::*;
use sipfleet_protocol::call::Transmit;
use sipfleet_protocol::message::{Message as SipMessage, Method};
use sipfleet_transport::flow::FlowKey;

use super::Line;
use crate::connection::{RegisterDialog, SendMessage, TransactionDone, UnregisterDialog};

/// Call-ID and our tag of a message we send.
fn dialog_key(message: &SipMessage) -> Option<(String, String)> {
    let h = message.headers();
    let call_id = h.call_id().ok()?.to_owned();
    let tag = match message {
        SipMessage::Request(_) => h.from().ok()?.tag()?.to_owned(),
        SipMessage::Response(_) => h.to().ok()?.tag()?.to_owned(),
    };
    Some((call_id, tag))
}

impl Line {
    /// Sends a message of a call, subscription or seize on the flow of its
    /// route, opening the flow first if the line has none there.
    pub(super) fn send_transmit(&mut self, t: Transmit, ctx: &mut Context<Self>) {
        let key = FlowKey::of(&t.route);
        let route = t.route.clone();
        let message = t.message;
        self.with_flow(&route, ctx, move |act, conn, _, _| {
            act.announce_dialog(key, &conn, &message);
            conn.do_send(SendMessage {
                line: act.line_id(),
                message,
            });
        });
    }

    fn announce_dialog(
        &mut self,
        key: FlowKey,
        conn: &Addr<crate::connection::Connection>,
        message: &SipMessage,
    ) {
        let Some(dialog) = dialog_key(message) else {
            return;
        };
        if let SipMessage::Request(req) = message {
            if matches!(req.method(), Method::Invite | Method::Ack) {
                if let Some(branch) = req.headers().top_via().ok().and_then(|v| v.branch()) {
                    self.branches
                        .entry(dialog.0.clone())
                        .or_default()
                        .push((key, branch.to_owned()));
                }
            }
        }
        if self.dialogs.get(&dialog) == Some(&key) {
            return;
        }
        conn.do_send(RegisterDialog {
            line: self.line_id(),
            call_id: dialog.0.clone(),
            local_tag: dialog.1.clone(),
        });
        self.dialogs.insert(dialog, key);
    }

    /// Takes the dialogs of ended calls and replaced subscriptions out of
    /// the flows' routers: their late requests get the router's 481.
    pub(super) fn forget_dead_dialogs(&mut self) {
        let mut live: HashSet<String> = self.calls.call_ids();
        live.extend(
            self.subs
                .iter()
                .filter_map(|s| s.call_id().map(str::to_owned)),
        );
        let dead: Vec<(String, String)> = self
            .dialogs
            .keys()
            .filter(|(call_id, _)| !live.contains(call_id))
            .cloned()
            .collect();
        let dead_branches: Vec<String> = self
            .branches
            .keys()
            .filter(|call_id| !live.contains(*call_id))
            .cloned()
            .collect();
        for call_id in dead_branches {
            for (key, branch) in self.branches.remove(&call_id).unwrap_or_default() {
                if let Some(flow) = self.flows.get(&key) {
                    flow.conn.do_send(TransactionDone { branch });
                }
            }
        }
        for dialog in dead {
            let Some(key) = self.dialogs.remove(&dialog) else {
                continue;
            };
            if let Some(flow) = self.flows.get(&key) {
                flow.conn.do_send(UnregisterDialog {
                    call_id: dialog.0,
                    local_tag: dialog.1,
                });
            }
        }
    }
}
