//! Inbound routing for a flow shared by many lines: which owner gets a
//! message, or which answer the far end gets when nobody owns it.
//!
//! Pure table logic (no I/O), generic over the owner id, so the connection
//! actor stays thin and the rules are unit-tested:
//!
//! | inbound                                   | key                          | unknown →        |
//! |-------------------------------------------|------------------------------|------------------|
//! | response                                  | top Via branch, then Call-ID + From tag (2xx retransmissions after the transaction ended) | dropped (RFC 3261 18.1.2) |
//! | request with a To tag (in-dialog)         | Call-ID + To tag (our tag)   | 481 (ACK: dropped) |
//! | request without To tag (INVITE, NOTIFY, OPTIONS, MESSAGE, CANCEL, ...) | user part of the Request-URI (the line's Contact) | 404 (ACK: dropped) |
//! | unparseable identity headers              | —                            | 400 (responses, ACK: dropped) |

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::message::{Message, Method, Request, Response, StatusCode};

/// Where an inbound message goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Routed<K> {
    /// Deliver to this owner.
    Deliver(K),
    /// Nobody owns this request: send this answer back over the flow.
    Reject(Response),
    /// Nothing to do (stray response, unroutable ACK).
    Drop(DropReason),
}

/// Why a message was dropped without answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A response matching no transaction or dialog.
    StrayResponse,
    /// An ACK nobody expects; ACK is never answered.
    UnmatchedAck,
    /// A response whose Via, Call-ID or tags cannot be read.
    MalformedResponse,
}

/// The routing tables of one flow.
#[derive(Clone, Debug)]
pub struct Router<K> {
    /// Client transactions: Via branch of a request we sent.
    transactions: HashMap<String, K>,
    /// Dialogs: (Call-ID, our tag).
    dialogs: HashMap<(String, String), K>,
    /// Lines: user part of the Contact they registered.
    lines: HashMap<String, K>,
    /// What each owner registered, so that an owner leaving the flow costs
    /// its own entries, not a scan of every table (10,000 lines leaving a
    /// failed SBC's flow would otherwise cost 10,000 scans of 10,000).
    owned: HashMap<K, Owned>,
    /// Owners with at least one branch in `transactions`.
    awaiting: HashSet<K>,
}

/// The keys one owner registered (a few: one Contact user, its open
/// transactions and dialogs).
#[derive(Clone, Debug, Default)]
struct Owned {
    branches: Vec<String>,
    dialogs: Vec<(String, String)>,
    users: Vec<String>,
}

fn note<T: PartialEq>(list: &mut Vec<T>, key: T) {
    if !list.contains(&key) {
        // One entry is the usual case (one Contact user, one transaction
        // out): no spare capacity for each of 10,000 lines.
        list.reserve_exact(1);
        list.push(key);
    }
}

impl<K> Default for Router<K> {
    fn default() -> Self {
        Router {
            transactions: HashMap::new(),
            dialogs: HashMap::new(),
            lines: HashMap::new(),
            owned: HashMap::new(),
            awaiting: HashSet::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> Router<K> {
    /// A router that knows no transaction or dialog yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Out-of-dialog requests for `contact_user` go to `owner`.
    pub fn add_line(&mut self, contact_user: &str, owner: K) {
        self.lines.insert(contact_user.to_owned(), owner);
        note(
            &mut self.owned.entry(owner).or_default().users,
            contact_user.to_owned(),
        );
    }

    /// Responses with this top Via branch go to `owner`.
    pub fn add_transaction(&mut self, branch: &str, owner: K) {
        self.transactions.insert(branch.to_owned(), owner);
        note(
            &mut self.owned.entry(owner).or_default().branches,
            branch.to_owned(),
        );
        self.awaiting.insert(owner);
    }

    /// Forgets the client transaction with Via `branch` (it terminated).
    pub fn remove_transaction(&mut self, branch: &str) {
        if let Some(owner) = self.transactions.remove(branch) {
            if let Some(owned) = self.owned.get_mut(&owner) {
                owned.branches.retain(|b| b != branch);
                if owned.branches.is_empty() {
                    self.awaiting.remove(&owner);
                }
            }
        }
    }

    /// In-dialog requests (and late responses) with this Call-ID and our tag
    /// go to `owner`.
    pub fn add_dialog(&mut self, call_id: &str, local_tag: &str, owner: K) {
        let key = (call_id.to_owned(), local_tag.to_owned());
        self.dialogs.insert(key.clone(), owner);
        note(&mut self.owned.entry(owner).or_default().dialogs, key);
    }

    /// Forgets the dialog with `call_id` and our `local_tag` (it ended).
    pub fn remove_dialog(&mut self, call_id: &str, local_tag: &str) {
        let key = (call_id.to_owned(), local_tag.to_owned());
        if let Some(owner) = self.dialogs.remove(&key) {
            if let Some(owned) = self.owned.get_mut(&owner) {
                owned.dialogs.retain(|d| *d != key);
            }
        }
    }

    /// Forgets everything `owner` registered (the line left the flow); an
    /// entry another owner took over since stays.
    pub fn remove_owner(&mut self, owner: K) {
        self.awaiting.remove(&owner);
        let Some(owned) = self.owned.remove(&owner) else {
            return;
        };
        for branch in owned.branches {
            if self.transactions.get(&branch) == Some(&owner) {
                self.transactions.remove(&branch);
            }
        }
        for dialog in owned.dialogs {
            if self.dialogs.get(&dialog) == Some(&owner) {
                self.dialogs.remove(&dialog);
            }
        }
        for user in owned.users {
            if self.lines.get(&user) == Some(&owner) {
                self.lines.remove(&user);
            }
        }
    }

    /// Owners with a client transaction still waiting for its answer on
    /// this flow (the ones an ICMP error on the flow concerns).
    pub fn owners_awaiting_answers(&self) -> impl Iterator<Item = K> + '_ {
        self.awaiting.iter().copied()
    }

    /// Number of table entries (transactions, dialogs, lines).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.transactions.len(),
            self.dialogs.len(),
            self.lines.len(),
        )
    }

    /// Decides where `message` goes.
    pub fn route(&self, message: &Message) -> Routed<K> {
        match message {
            Message::Response(response) => self.route_response(response),
            Message::Request(request) => self.route_request(request),
        }
    }

    fn route_response(&self, response: &Response) -> Routed<K> {
        let h = response.headers();
        let Ok(via) = h.top_via() else {
            return Routed::Drop(DropReason::MalformedResponse);
        };
        if let Some(owner) = via.branch().and_then(|b| self.transactions.get(b)) {
            return Routed::Deliver(*owner);
        }
        let (Ok(call_id), Ok(from)) = (h.call_id(), h.from()) else {
            return Routed::Drop(DropReason::MalformedResponse);
        };
        match from.tag().and_then(|tag| self.dialog(call_id, tag)) {
            Some(owner) => Routed::Deliver(owner),
            None => Routed::Drop(DropReason::StrayResponse),
        }
    }

    fn route_request(&self, request: &Request) -> Routed<K> {
        let is_ack = *request.method() == Method::Ack;
        let h = request.headers();
        let (Ok(call_id), Ok(to)) = (h.call_id(), h.to()) else {
            return reject_or_drop(request, 400, is_ack);
        };
        if let Some(tag) = to.tag() {
            return match self.dialog(call_id, tag) {
                Some(owner) => Routed::Deliver(owner),
                None => reject_or_drop(request, 481, is_ack),
            };
        }
        let user = request
            .uri()
            .ok()
            .and_then(|uri| uri.user().map(str::to_owned));
        match user.and_then(|u| self.lines.get(&u).copied()) {
            Some(owner) => Routed::Deliver(owner),
            None => reject_or_drop(request, 404, is_ack),
        }
    }

    fn dialog(&self, call_id: &str, tag: &str) -> Option<K> {
        // The owned lookup key costs two small allocations, little next to
        // parsing the message.
        self.dialogs
            .get(&(call_id.to_owned(), tag.to_owned()))
            .copied()
    }
}

fn reject_or_drop<K>(request: &Request, code: u16, is_ack: bool) -> Routed<K> {
    if is_ack {
        return Routed::Drop(DropReason::UnmatchedAck);
    }
    let Some(status) = StatusCode::new(code) else {
        return Routed::Drop(DropReason::UnmatchedAck);
    };
    Routed::Reject(Response::for_request(
        request,
        status,
        Some(&answer_tag(request)),
    ))
}

/// A To tag for our stateless answers: derived from the request, so a
/// retransmitted request gets the identical answer.
fn answer_tag(request: &Request) -> String {
    let h = request.headers();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    h.call_id().unwrap_or_default().hash(&mut hasher);
    h.top_via()
        .ok()
        .and_then(|v| v.branch())
        .unwrap_or_default()
        .hash(&mut hasher);
    format!("sf{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests;
