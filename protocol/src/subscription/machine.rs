//! The [`Subscription`] state machine. See the module docs of [`super`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    EventPackage, SubscriptionEvent, SubscriptionEventKind, SubscriptionOutput,
    SubscriptionSettings,
};
use crate::auth::DigestClient;
use crate::call::{authorize, read_challenge, Dialog, HeldChallenge, IdGen, Transmit};
use crate::message::{HeaderName, Message, Method, Request, Response, StatusCode};
use crate::register_request::LineIdentity;
use crate::registration::InvalidationReason;
use crate::route::Route;
use crate::transaction::{ClientTransaction, RequestKind, TimeoutAction, WalkPosition};

/// Coarse state of a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionState {
    /// No registration to subscribe through (not started, or invalidated).
    Idle,
    /// The initial SUBSCRIBE is in flight.
    Subscribing,
    /// Accepted with a 2xx and refreshed before it expires.
    Active,
    /// Accepted, but the notifier waits for authorization.
    Pending,
    /// A failure or a terminating NOTIFY: a new attempt is scheduled.
    Waiting,
    /// Ended for good (rejected, no resource, unsubscribed).
    Terminated,
}

struct SubscribeTx {
    request: Request,
    tx: ClientTransaction,
    cseq: u32,
    /// The first SUBSCRIBE of the dialog (not a refresh).
    initial: bool,
    answered_challenge: bool,
    expires: u32,
}

/// One subscription of a line to one resource and event package.
pub struct Subscription {
    settings: SubscriptionSettings,
    identity: LineIdentity,
    digest: Option<DigestClient>,
    package: EventPackage,
    resource: String,
    ids: IdGen,
    state: SubscriptionState,
    /// The registered route and the local address of its flow.
    flow: Option<(Route, SocketAddr)>,
    dialog: Option<Dialog>,
    tx: Option<SubscribeTx>,
    challenge: Option<HeldChallenge>,
    /// `Expires` to request, raised by a 423's Min-Expires.
    expires: u32,
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
    retry_at: Option<Instant>,
    outputs: VecDeque<SubscriptionOutput>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("package", &self.package)
            .field("resource", &self.resource)
            .field("state", &self.state)
            .field("call_id", &self.call_id())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// A subscription to `resource` (a SIP URI: the monitored extension for
    /// BLF, the line's own AOR for MWI and SCA), idle until
    /// [`Self::registered_on`].
    pub fn new(
        settings: SubscriptionSettings,
        identity: LineIdentity,
        digest: Option<DigestClient>,
        package: EventPackage,
        resource: String,
        seed: u64,
    ) -> Self {
        Subscription {
            expires: settings.expires,
            settings,
            identity,
            digest,
            package,
            resource,
            ids: IdGen::new(seed),
            state: SubscriptionState::Idle,
            flow: None,
            dialog: None,
            tx: None,
            challenge: None,
            refresh_at: None,
            expires_at: None,
            retry_at: None,
            outputs: VecDeque::new(),
        }
    }

    // ----- getters -----

    /// Where the subscription stands.
    pub fn state(&self) -> SubscriptionState {
        self.state
    }

    /// The event package subscribed to.
    pub fn package(&self) -> EventPackage {
        self.package
    }

    /// The Call-ID of the current dialog, if any.
    pub fn call_id(&self) -> Option<&str> {
        self.dialog.as_ref().map(|d| d.call_id.as_str())
    }

    /// The route the subscription lives on.
    pub fn route(&self) -> Option<&Route> {
        self.flow.as_ref().map(|(r, _)| r)
    }

    /// When the current subscription lapses unless refreshed.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// Whether `msg` belongs to this subscription's dialog (same Call-ID).
    pub fn accepts(&self, msg: &Message) -> bool {
        match (msg.headers().call_id(), self.call_id()) {
            (Ok(a), Some(b)) => a == b,
            _ => false,
        }
    }

    // ----- outputs -----

    /// Next message to send or event to report; call until `None`.
    pub fn poll_output(&mut self) -> Option<SubscriptionOutput> {
        self.outputs.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called; `None` when nothing is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tx = self.tx.as_ref().and_then(|t| t.tx.poll_timeout());
        [tx, self.refresh_at, self.expires_at, self.retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- inputs -----

    /// The line is registered on `route` (flow local address `local`):
    /// subscribe there now, unless already subscribed on that route. A
    /// subscription on another route is invalidated first.
    pub fn registered_on(&mut self, now: Instant, route: &Route, local: SocketAddr) {
        let same = self
            .flow
            .as_ref()
            .is_some_and(|(r, _)| r.same_destination(route));
        if same && self.state != SubscriptionState::Idle {
            return;
        }
        if !same && self.flow.is_some() {
            self.invalidate(InvalidationReason::NewRegistrar);
        }
        self.flow = Some((route.clone(), local));
        self.start_new(now);
    }

    /// The registration moved (or failover began with
    /// `failRegistrationOn=1`): drop the subscription without a word to the
    /// old SBC, until [`Self::registered_on`].
    pub fn invalidate(&mut self, reason: InvalidationReason) {
        let had = self.dialog.is_some() || self.retry_at.is_some();
        let route = self.route().cloned();
        let call_id = self.call_id().unwrap_or_default().to_owned();
        self.clear();
        self.flow = None;
        if self.state != SubscriptionState::Terminated {
            self.state = SubscriptionState::Idle;
        }
        if had {
            self.outputs
                .push_back(SubscriptionOutput::Event(SubscriptionEvent {
                    kind: SubscriptionEventKind::Invalidated { reason },
                    package: self.package,
                    call_id,
                    route,
                }));
        }
    }

    /// Ends the subscription: `Expires: 0` in the dialog when it is up.
    pub fn unsubscribe(&mut self, now: Instant) {
        let up = matches!(
            self.state,
            SubscriptionState::Active | SubscriptionState::Pending
        );
        if up && self.tx.is_none() {
            self.send_subscribe(now, false, 0);
        }
        self.emit(SubscriptionEventKind::Terminated {
            reason: "unsubscribed".into(),
            retry_in: None,
        });
        self.refresh_at = None;
        self.expires_at = None;
        self.retry_at = None;
        self.state = SubscriptionState::Terminated;
    }

    /// A response or NOTIFY the line matched with [`Self::accepts`].
    pub fn handle_message(&mut self, now: Instant, msg: &Message) {
        match msg {
            Message::Response(resp) => self.handle_response(now, resp),
            Message::Request(req) if *req.method() == Method::Notify => {
                self.handle_notify(now, req)
            }
            Message::Request(req) if *req.method() != Method::Ack => {
                let resp = Response::for_request(req, StatusCode::METHOD_NOT_ALLOWED, None);
                self.send(resp);
            }
            Message::Request(_) => {}
        }
    }

    /// Retransmits, refreshes or retries whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = &mut self.tx {
            match t.tx.handle_timeout(now) {
                Some(TimeoutAction::Retransmit) => {
                    let req = t.request.clone();
                    self.send(req);
                }
                Some(TimeoutAction::TimedOut(_)) => {
                    let unsubscribe = t.expires == 0;
                    self.tx = None;
                    if !unsubscribe {
                        self.failed(now, None, None);
                    }
                }
                None => {}
            }
        }
        if self.expires_at.is_some_and(|t| now >= t) {
            self.emit(SubscriptionEventKind::Terminated {
                reason: "expired".into(),
                retry_in: Some(Duration::ZERO),
            });
            self.start_new(now);
        }
        if self.refresh_at.is_some_and(|t| now >= t) {
            self.refresh_at = None;
            if self.tx.is_none() {
                let creds = self.challenge.is_some();
                self.send_subscribe(now, creds, self.expires);
            }
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            self.start_new(now);
        }
    }

    // ----- internals -----

    fn emit(&mut self, kind: SubscriptionEventKind) {
        let call_id = self.call_id().unwrap_or_default().to_owned();
        self.outputs
            .push_back(SubscriptionOutput::Event(SubscriptionEvent {
                kind,
                package: self.package,
                call_id,
                route: self.route().cloned(),
            }));
    }

    fn send(&mut self, message: impl Into<Message>) {
        if let Some((route, _)) = &self.flow {
            self.outputs.push_back(SubscriptionOutput::Send(Transmit {
                route: route.clone(),
                message: message.into(),
            }));
        }
    }

    fn clear(&mut self) {
        self.dialog = None;
        self.tx = None;
        self.refresh_at = None;
        self.expires_at = None;
        self.retry_at = None;
    }

    /// A new dialog (new Call-ID and tag) on the registered route.
    fn start_new(&mut self, now: Instant) {
        self.clear();
        let Some((route, local)) = self.flow.clone() else {
            self.state = SubscriptionState::Idle;
            return;
        };
        let call_id = format!("{:016x}@{}", self.ids.next_u64(), self.identity.domain);
        let tag = self.ids.tag();
        self.dialog = Some(Dialog::uac(
            &self.identity,
            call_id,
            tag,
            &self.resource,
            route,
            local,
            0,
        ));
        self.state = SubscriptionState::Subscribing;
        let creds = self.challenge.is_some();
        self.send_subscribe(now, creds, self.expires);
    }

    fn send_subscribe(&mut self, now: Instant, with_credentials: bool, expires: u32) {
        let Some(dialog) = &mut self.dialog else {
            return;
        };
        let initial = dialog.remote_tag.is_none();
        let cseq = dialog.next_cseq();
        let branch = self.ids.branch();
        let Ok(mut req) =
            dialog.request(Method::Subscribe, cseq, &branch, &self.settings.user_agent)
        else {
            // The resource URI is configuration; a bad one never subscribes.
            self.state = SubscriptionState::Terminated;
            return;
        };
        let h = req.headers_mut();
        h.push(HeaderName::Event, self.package.as_str());
        h.push(HeaderName::Expires, expires.to_string());
        h.push(HeaderName::Accept, self.package.accept());
        if with_credentials {
            if let (Some(digest), Some(challenge)) = (&mut self.digest, &self.challenge) {
                authorize(&mut req, digest, challenge, &mut self.ids);
            }
        }
        let tx = ClientTransaction::start(
            RequestKind::NonInvite,
            dialog.route.transport,
            &self.settings.policy,
            WalkPosition {
                walk_started: now,
                last_route: true,
            },
            now,
        );
        self.tx = Some(SubscribeTx {
            request: req.clone(),
            tx,
            cseq,
            initial,
            answered_challenge: with_credentials,
            expires,
        });
        self.send(req);
    }

    fn failed(&mut self, now: Instant, status: Option<u16>, retry_after: Option<Duration>) {
        let wait = retry_after.unwrap_or(self.settings.retry_after_failure);
        self.emit(SubscriptionEventKind::Failed {
            status,
            retry_in: wait,
        });
        self.clear();
        self.state = SubscriptionState::Waiting;
        self.retry_at = Some(now + wait);
    }

    fn handle_response(&mut self, now: Instant, resp: &Response) {
        let Ok(cseq) = resp.headers().cseq() else {
            return;
        };
        let Some(t) = &mut self.tx else {
            return;
        };
        if cseq.method != Method::Subscribe || cseq.seq != t.cseq {
            return;
        }
        let status = resp.status().as_u16();
        if status < 200 {
            t.tx.handle_provisional(now);
            return;
        }
        t.tx.handle_final(now, status);
        let Some(t) = self.tx.take() else {
            return;
        };
        if t.expires == 0 {
            // The answer to our un-SUBSCRIBE: nothing more to do.
            self.dialog = None;
            return;
        }
        match status {
            200..=299 => self.accepted(now, resp, &t),
            401 | 407 => {
                let challenge = read_challenge(resp);
                let stale = challenge.as_ref().is_some_and(|(_, c)| c.stale);
                if challenge.is_some() && self.digest.is_some() && (!t.answered_challenge || stale)
                {
                    self.challenge = challenge;
                    self.send_subscribe(now, true, t.expires);
                } else {
                    self.failed(now, Some(status), None);
                }
            }
            423 => match resp.headers().min_expires().ok().flatten() {
                Some(min) if min > t.expires => {
                    self.expires = min;
                    let creds = self.challenge.is_some();
                    self.send_subscribe(now, creds, min);
                }
                _ => self.failed(now, Some(status), None),
            },
            481 if !t.initial => {
                self.emit(SubscriptionEventKind::Terminated {
                    reason: "dialog_gone".into(),
                    retry_in: Some(Duration::ZERO),
                });
                self.start_new(now);
            }
            _ => {
                let retry_after = resp
                    .headers()
                    .retry_after()
                    .ok()
                    .flatten()
                    .map(|s| Duration::from_secs(s.into()));
                self.failed(now, Some(status), retry_after);
            }
        }
    }

    fn accepted(&mut self, now: Instant, resp: &Response, t: &SubscribeTx) {
        let granted = resp.headers().expires().ok().flatten().unwrap_or(t.expires);
        if let Some(d) = &mut self.dialog {
            d.update_from_response(resp, t.initial);
        }
        let granted = Duration::from_secs(granted.into());
        self.set_expiry(now, granted);
        if self.state != SubscriptionState::Pending {
            self.state = SubscriptionState::Active;
        }
        self.emit(if t.initial {
            SubscriptionEventKind::Subscribed { expires: granted }
        } else {
            SubscriptionEventKind::Refreshed { expires: granted }
        });
    }

    /// Expiry and refresh time: refresh at `granted - 32 s`, or at half
    /// below 64 s (the REGISTER rule).
    fn set_expiry(&mut self, now: Instant, granted: Duration) {
        let lead = if granted >= Duration::from_secs(64) {
            Duration::from_secs(32)
        } else {
            granted / 2
        };
        self.expires_at = Some(now + granted);
        self.refresh_at = Some(now + granted - lead);
    }

    fn handle_notify(&mut self, now: Instant, req: &Request) {
        let event = req
            .headers()
            .event()
            .ok()
            .flatten()
            .map(|e| e.value().to_ascii_lowercase());
        if event.as_deref() != Some(self.package.as_str()) {
            if let Some(code) = StatusCode::new(489) {
                self.send(Response::for_request(req, code, None));
            }
            return;
        }
        let Some(dialog) = &mut self.dialog else {
            self.send(Response::for_request(
                req,
                StatusCode::CALL_DOES_NOT_EXIST,
                Some("gone"),
            ));
            return;
        };
        let confirming = dialog.remote_tag.is_none();
        if let Err(refusal) = dialog.check_incoming(req) {
            let tag = dialog.local_tag.clone();
            if let Some(code) = StatusCode::new(refusal.status()) {
                self.send(Response::for_request(req, code, Some(&tag)));
            }
            return;
        }
        if confirming {
            // The NOTIFY came before the 2xx: it creates the dialog
            // (RFC 6665 4.1.2.4), its Record-Route in order.
            let h = req.headers();
            if let Some(c) = h.contacts().next().and_then(Result::ok) {
                dialog.remote_target = c.uri().as_str().to_owned();
            }
            dialog.route_set = h
                .record_routes()
                .filter_map(Result::ok)
                .map(|a| {
                    let p = a.params().as_str();
                    if p.is_empty() {
                        format!("<{}>", a.uri().as_str())
                    } else {
                        format!("<{}>;{p}", a.uri().as_str())
                    }
                })
                .collect();
        }
        let resp = dialog.response(req, StatusCode::OK);
        self.send(resp);
        let state = req.headers().subscription_state().ok().flatten();
        let (value, expires, reason, retry_after) = match &state {
            Some(s) => (
                s.value().to_ascii_lowercase(),
                s.params()
                    .value("expires")
                    .and_then(|v| v.parse::<u32>().ok()),
                s.params().value("reason").map(str::to_ascii_lowercase),
                s.params()
                    .value("retry-after")
                    .and_then(|v| v.parse::<u64>().ok()),
            ),
            None => ("active".to_owned(), None, None, None),
        };
        self.emit(SubscriptionEventKind::Notified {
            state: value.clone(),
            content_type: req
                .headers()
                .get(HeaderName::ContentType)
                .map(str::to_owned),
            body: req.body().clone(),
        });
        match value.as_str() {
            "terminated" => self.terminated(now, reason, retry_after),
            other => {
                self.state = if other == "pending" {
                    SubscriptionState::Pending
                } else {
                    SubscriptionState::Active
                };
                if let Some(secs) = expires {
                    let granted = Duration::from_secs(secs.into());
                    let shorter = self.expires_at.is_none_or(|at| now + granted < at);
                    if shorter {
                        self.set_expiry(now, granted);
                    }
                }
            }
        }
    }

    /// RFC 6665 4.1.3: what a `terminated` reason says about trying again.
    fn terminated(&mut self, now: Instant, reason: Option<String>, retry_after: Option<u64>) {
        let reason = reason.unwrap_or_default();
        let retry_in = match reason.as_str() {
            "" | "deactivated" | "timeout" => Some(Duration::ZERO),
            "probation" | "giveup" => Some(
                retry_after
                    .map(Duration::from_secs)
                    .unwrap_or(self.settings.retry_after_failure),
            ),
            _ => None,
        };
        self.emit(SubscriptionEventKind::Terminated {
            reason: if reason.is_empty() {
                "terminated".into()
            } else {
                reason
            },
            retry_in,
        });
        match retry_in {
            Some(wait) if wait.is_zero() => self.start_new(now),
            Some(wait) => {
                self.clear();
                self.state = SubscriptionState::Waiting;
                self.retry_at = Some(now + wait);
            }
            None => {
                self.clear();
                self.state = SubscriptionState::Terminated;
            }
        }
    }
}
