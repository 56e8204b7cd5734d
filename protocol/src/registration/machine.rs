//! The per-line registration state machine: inputs (`start`, `handle_*`,
//! `shutdown`), outputs (`poll_output`, `poll_timeout`) and getters, in the
//! quinn-proto layout. See the module docs of [`super`] for the state diagram.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use rand::RngCore;

use super::backoff::Backoff;
use super::events::{
    EventKind, FailReason, Output, Purpose, RegisterResponse, RouteFailReason, SendRegister,
    TransportError, UnregisterReason,
};
use super::settings::RegistrationSettings;
use super::walk::Walk;
use crate::route::Route;
use crate::transaction::{ClientTransaction, RetryPolicy, TimedOut, TimeoutAction};

mod pacing;
mod transitions;

use pacing::{Pending, Slot};

/// Source of new Call-IDs, injected so tests can predict them.
pub trait CallIdGenerator {
    /// A Call-ID never returned before.
    fn next_call_id(&mut self) -> String;
}

impl<F: FnMut() -> String> CallIdGenerator for F {
    fn next_call_id(&mut self) -> String {
        self()
    }
}

/// Coarse state of a line, for display and for callers that gate on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `start` not called yet.
    NotStarted,
    /// Started, but the route list is empty.
    WaitingForRoutes,
    /// A REGISTER (or un-REGISTER) transaction is running.
    Registering,
    /// A paced line's new REGISTER (or un-REGISTER) exchange waits for a
    /// grant from the fleet's pacer; nothing is on the wire yet.
    AwaitingSlot,
    /// Bound; waiting for the refresh or failback time.
    Registered,
    /// Waiting after a registration loss.
    BackingOff,
    /// Shut down.
    Stopped,
}

enum State {
    NotStarted,
    WaitingForRoutes,
    /// Boxed: most lines sit idle in `Registered`, so the idle state stays small.
    Registering(Box<Attempt>),
    /// A new exchange waits for the pacer's grant (paced lines only).
    Admitting(Box<Pending>),
    Registered,
    BackingOff {
        starts: Instant,
        wait: Duration,
        failures: u32,
        announced: bool,
        route: Option<Route>,
    },
    Stopped,
}

/// One REGISTER transaction on one route.
struct Attempt {
    route: Route,
    tx: ClientTransaction,
    cseq: u32,
    transaction: u64,
    expires: u32,
    with_credentials: bool,
    goal: Goal,
}

enum Goal {
    /// Obtain a binding, failing over along the walk.
    Register(Walk),
    /// Remove the binding on the attempt's route, then go on.
    Unregister {
        after: AfterUnregister,
        /// Challenges answered so far: the first always, a second only when
        /// it says `stale=true`, never a third (no endless 401 loop).
        challenges: u8,
    },
}

impl Goal {
    fn unregister(after: AfterUnregister) -> Self {
        Goal::Unregister {
            after,
            challenges: 0,
        }
    }
}

#[derive(Clone, Copy)]
enum AfterUnregister {
    Failback,
    Stop,
}

/// Why a route failed, and what the failure carries.
struct Failure {
    reason: RouteFailReason,
    /// Timer B/F ended the walk, whatever routes are left.
    budget_over: bool,
    /// A 503's Retry-After.
    retry_after: Option<Duration>,
    /// The final response that failed the route.
    status: Option<u16>,
    /// The transport's own words (TLS verification error).
    detail: Option<String>,
}

impl Failure {
    fn of(reason: RouteFailReason) -> Self {
        Failure {
            reason,
            budget_over: false,
            retry_after: None,
            status: None,
            detail: None,
        }
    }

    fn timeout(why: TimedOut) -> Self {
        Failure {
            budget_over: why == TimedOut::Budget,
            ..Failure::of(RouteFailReason::Timeout)
        }
    }

    fn unavailable(retry_after: Option<Duration>) -> Self {
        Failure {
            retry_after,
            status: Some(503),
            ..Failure::of(RouteFailReason::ServiceUnavailable)
        }
    }
}

/// The binding the registrar holds for us.
struct Binding {
    route: Route,
    expires_at: Instant,
}

/// Timers of a line besides the running transaction's and the back-off.
#[derive(Clone, Copy)]
enum Timer {
    /// Refresh the binding before it lapses.
    Refresh,
    /// `failBack.timeout` / DNS TTL after registering on a non-primary.
    Failback,
    /// The binding lapses (kept through a failover by `failRegistrationOn=0`).
    Expiry,
}

#[derive(Default)]
struct TimerTable([Option<Instant>; 3]);

impl TimerTable {
    fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Takes one timer due at `now`: a lapse before a failback before a
    /// refresh, so a refresh never runs on a binding that just lapsed.
    fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        [Timer::Expiry, Timer::Failback, Timer::Refresh]
            .into_iter()
            .find(|&t| self.0[t as usize].is_some_and(|at| at <= now))
            .inspect(|&t| self.stop(t))
    }
}

/// One line's registration: failover, failback, back-off and Call-ID rules.
pub struct Registration {
    settings: RegistrationSettings,
    policy: RetryPolicy,
    routes: Vec<Route>,
    dns_ttl: Option<Duration>,
    state: State,
    binding: Option<Binding>,
    primary: Option<Route>,
    timers: TimerTable,
    backoff: Backoff,
    call_id: String,
    /// The expiry to request: `expires_s`, raised by a 423's Min-Expires.
    expires: u32,
    cseq: u32,
    next_transaction: u64,
    /// A 401/407 was answered under the current Call-ID: later requests
    /// carry credentials.
    has_credentials: bool,
    calls_active: bool,
    /// Failback came due while it could not run (call active, refresh in
    /// flight): run it at the first chance.
    failback_pending: bool,
    /// A binding the line gave up without an `Expires: 0` (failover with
    /// `failRegistrationOn=1`, failback with `unRegisterOnFailBack=0`): the
    /// registrar still holds it until it lapses, so shutdown removes it too.
    abandoned: Option<Binding>,
    /// Routes still to un-REGISTER at shutdown, after the one in flight.
    shutdown_queue: VecDeque<Route>,
    /// Paced lines: the slot asked for or held at the fleet's pacer.
    slot: Slot,
    /// The ticket of the last slot request.
    slot_ticket: u64,
    rng: Box<dyn RngCore + Send>,
    call_ids: Box<dyn CallIdGenerator + Send>,
    outputs: VecDeque<Output>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("phase", &self.phase())
            .field("call_id", &self.call_id)
            .field("registered_route", &self.registered_route())
            .field("primary", &self.primary)
            .field("routes", &self.routes.len())
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// A machine for one line, not yet registering.
    pub fn new(
        settings: RegistrationSettings,
        rng: Box<dyn RngCore + Send>,
        mut call_ids: Box<dyn CallIdGenerator + Send>,
    ) -> Self {
        let backoff = Backoff::new(
            Duration::from_secs(settings.register_retry_base_s.into()),
            Duration::from_secs(settings.register_retry_max_s.into()),
        );
        Registration {
            policy: settings.retry_policy(),
            expires: settings.expires_s,
            settings,
            routes: Vec::new(),
            dns_ttl: None,
            state: State::NotStarted,
            binding: None,
            primary: None,
            timers: TimerTable::default(),
            backoff,
            call_id: call_ids.next_call_id(),
            cseq: 0,
            next_transaction: 0,
            has_credentials: false,
            calls_active: false,
            failback_pending: false,
            abandoned: None,
            shutdown_queue: VecDeque::new(),
            slot: Slot::Free,
            slot_ticket: 0,
            rng,
            call_ids,
            outputs: VecDeque::new(),
        }
    }

    // ----- getters -----

    /// Where the registration stands.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::NotStarted => Phase::NotStarted,
            State::WaitingForRoutes => Phase::WaitingForRoutes,
            State::Registering(_) => Phase::Registering,
            State::Admitting(_) => Phase::AwaitingSlot,
            State::Registered => Phase::Registered,
            State::BackingOff { .. } => Phase::BackingOff,
            State::Stopped => Phase::Stopped,
        }
    }

    /// The settings it registers with.
    pub fn settings(&self) -> &RegistrationSettings {
        &self.settings
    }

    /// Call-ID of the line's REGISTERs; a new one is drawn after a failure when
    /// `voIpProt.SIP.newCallOnUnRegister` is set.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The routes it walks, in failover order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route of the binding in force, if any. It stays set during a
    /// refresh or failback walk, and through a failover when
    /// `failRegistrationOn` is off, until the binding lapses.
    pub fn registered_route(&self) -> Option<&Route> {
        self.binding.as_ref().map(|b| &b.route)
    }

    /// When the binding in force lapses unless refreshed.
    pub fn registered_until(&self) -> Option<Instant> {
        self.binding.as_ref().map(|b| b.expires_at)
    }

    /// The top route of the service record the line registered in.
    pub fn primary(&self) -> Option<&Route> {
        self.primary.as_ref()
    }

    /// Registered on a route other than the primary (the guide's failover state).
    pub fn is_failed_over(&self) -> bool {
        match (&self.binding, &self.primary) {
            (Some(b), Some(p)) => !b.route.same_destination(p),
            _ => false,
        }
    }

    /// A failback came due but waits for the calls to end (or for a refresh
    /// in flight).
    pub fn is_failback_pending(&self) -> bool {
        self.failback_pending
    }

    /// Whether other requests of this line may use `route`: with
    /// `reRegisterOn=1` and `onlySignalWithRegistered=1`, only the route
    /// holding the registration.
    pub fn may_signal_via(&self, route: &Route) -> bool {
        !self.settings.effective_only_signal_with_registered()
            || self
                .registered_route()
                .is_some_and(|r| r.same_destination(route))
    }

    // ----- outputs -----

    /// The next send or event, in the order they happened.
    pub fn poll_output(&mut self) -> Option<Output> {
        let next = self.outputs.pop_front();
        if next.is_none() && self.outputs.capacity() > 0 {
            // An idle line of a large fleet keeps no empty queue.
            self.outputs = VecDeque::new();
        }
        next
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Registering(attempt) => attempt.tx.poll_timeout(),
            State::BackingOff {
                starts,
                wait,
                announced,
                ..
            } => Some(if *announced { *starts + *wait } else { *starts }),
            _ => None,
        };
        [state, self.timers.next()].into_iter().flatten().min()
    }

    // ----- inputs -----

    /// Starts registering, from the top of the route list.
    pub fn start(&mut self, now: Instant) {
        if matches!(self.state, State::NotStarted) {
            self.begin_initial(now);
        }
        self.settle_slot();
    }

    /// A new route list (first resolution or a DNS refresh) and the TTL of
    /// the record behind it, used by `failBack.mode=DNSTTL`.
    pub fn handle_routes(&mut self, now: Instant, mut routes: Vec<Route>, ttl: Option<Duration>) {
        // Kept for the life of the line: no spare capacity in 10,000 lines.
        routes.shrink_to_fit();
        self.routes = routes;
        self.dns_ttl = ttl;
        match self.state {
            State::WaitingForRoutes => self.begin_initial(now),
            State::Registered => self.sticky_route(now),
            _ => {}
        }
        self.settle_slot();
    }

    /// Runs every timer due at `now`. Call again while `poll_timeout() <= now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Registering(attempt) = &mut self.state {
            match attempt.tx.handle_timeout(now) {
                Some(TimeoutAction::Retransmit) => {
                    let send = attempt.send(&self.call_id, true);
                    self.outputs.push_back(Output::Send(send));
                }
                Some(TimeoutAction::TimedOut(why)) => {
                    if let Some(attempt) = self.take_attempt() {
                        self.attempt_failed(now, attempt, Failure::timeout(why));
                    }
                }
                None => {}
            }
        }
        if let State::BackingOff {
            starts,
            wait,
            failures,
            announced,
            ref route,
        } = self.state
        {
            if !announced && now >= starts {
                let route = route.clone();
                self.emit(route.as_ref(), EventKind::Backoff { wait, failures });
                if let State::BackingOff { announced, .. } = &mut self.state {
                    *announced = true;
                }
            } else if announced && now >= starts + wait {
                if self.settings.new_call_on_unregister {
                    self.call_id = self.call_ids.next_call_id();
                    self.has_credentials = false;
                }
                self.begin_initial(now);
            }
        }
        while let Some(timer) = self.timers.take_expired(now) {
            match timer {
                Timer::Expiry => self.binding_lapsed(now),
                Timer::Failback => self.failback_due(now),
                Timer::Refresh => self.refresh_due(now),
            }
        }
        self.settle_slot();
    }

    /// A response the line matched to one of our REGISTER transactions.
    pub fn handle_response(&mut self, now: Instant, response: RegisterResponse) {
        self.response(now, response);
        self.settle_slot();
    }

    fn response(&mut self, now: Instant, response: RegisterResponse) {
        let State::Registering(attempt) = &mut self.state else {
            return;
        };
        if response.cseq != attempt.cseq {
            return;
        }
        if response.status < 200 {
            attempt.tx.handle_provisional(now);
            return;
        }
        attempt.tx.handle_final(now, response.status);
        let Some(attempt) = self.take_attempt() else {
            return;
        };
        let status = response.status;
        match (attempt.goal, status) {
            (Goal::Unregister { after, challenges }, 401 | 407)
                if response.unusable_challenge.is_none()
                    && (challenges == 0 || (challenges == 1 && response.stale)) =>
            {
                self.has_credentials = true;
                let goal = Goal::Unregister {
                    after,
                    challenges: challenges + 1,
                };
                self.send_attempt(now, attempt.route, goal, Purpose::Authenticate);
            }
            (Goal::Unregister { after, .. }, _) => {
                let confirmed = (200..=299).contains(&status);
                self.unregister_done(now, after, confirmed, Some(attempt.route))
            }
            (Goal::Register(_), 200..=299) => {
                self.registered(now, attempt.route, attempt.expires, &response)
            }
            (Goal::Register(walk), 401 | 407) => {
                self.challenged(now, attempt.route, walk, &response)
            }
            (Goal::Register(mut walk), 423)
                if !walk.interval_retried && raises(response.min_expires, attempt.expires) =>
            {
                // RFC 3261 10.2.8: ask again for at least Min-Expires, from
                // now on; once per walk, so a rising Min-Expires cannot loop.
                self.expires = response.min_expires.map_or(attempt.expires, |m| {
                    u32::try_from(m.as_secs()).unwrap_or(u32::MAX)
                });
                walk.interval_retried = true;
                walk.started = now;
                self.send_attempt(
                    now,
                    attempt.route,
                    Goal::Register(walk),
                    Purpose::MinExpires,
                );
            }
            (Goal::Register(_), 423) => {
                let reason = FailReason::IntervalTooBrief;
                self.rejected(now, attempt.route, Some(status), None, reason);
            }
            (Goal::Register(walk), 503) if self.settings.failover_on_503 => {
                let route = attempt.route;
                self.route_failed(now, route, walk, Failure::unavailable(response.retry_after));
            }
            (Goal::Register(_), _) => {
                let retry_after = response.retry_after.filter(|_| status == 503);
                let reason = FailReason::Denied;
                self.rejected(now, attempt.route, Some(status), retry_after, reason);
            }
        }
    }

    /// The request of `transaction` could not be built (the line has no
    /// challenge to answer, a URI it cannot write): nothing was sent, so
    /// waiting for an answer would only turn into a timeout 32 s later. A
    /// registration ends as a denial at once; an un-REGISTER is given up.
    pub fn handle_send_failed(&mut self, now: Instant, transaction: u64) {
        self.send_failed(now, transaction);
        self.settle_slot();
    }

    fn send_failed(&mut self, now: Instant, transaction: u64) {
        let State::Registering(attempt) = &self.state else {
            return;
        };
        if attempt.transaction != transaction {
            return;
        }
        let Some(attempt) = self.take_attempt() else {
            return;
        };
        match attempt.goal {
            Goal::Unregister { after, .. } => {
                self.unregister_done(now, after, false, Some(attempt.route))
            }
            Goal::Register(_) => {
                let reason = FailReason::RequestNotBuilt;
                self.rejected(now, attempt.route, None, None, reason);
            }
        }
    }

    /// Transport trouble on `route`.
    pub fn handle_transport_error(&mut self, now: Instant, route: &Route, error: TransportError) {
        self.transport_error(now, route, error);
        self.settle_slot();
    }

    fn transport_error(&mut self, now: Instant, route: &Route, error: TransportError) {
        let (reason, detail) = match error {
            TransportError::Icmp => (RouteFailReason::Icmp, None),
            TransportError::Refused => (RouteFailReason::Refused, None),
            TransportError::Tls { detail } => (RouteFailReason::Tls, Some(detail)),
            TransportError::FlowLost => (RouteFailReason::FlowLost, None),
            TransportError::KeepAliveLost => (RouteFailReason::KeepAliveLost, None),
        };
        let failover = matches!(
            reason,
            RouteFailReason::Icmp | RouteFailReason::Refused | RouteFailReason::Tls
        );
        let failure = Failure {
            detail: detail.clone(),
            ..Failure::of(reason)
        };
        let on_binding = self
            .registered_route()
            .is_some_and(|r| r.same_destination(route));
        match &self.state {
            State::Registering(a) if a.route.same_destination(route) => {
                let Some(attempt) = self.take_attempt() else {
                    return;
                };
                match attempt.goal {
                    Goal::Unregister { after, .. } => {
                        self.unregister_done(now, after, false, Some(attempt.route))
                    }
                    Goal::Register(_) if !failover => self.lost(now, attempt.route, reason),
                    Goal::Register(_) => self.attempt_failed(now, attempt, failure),
                }
            }
            // An exchange waiting for its slot on that route fails as if it
            // had been sent: the line learns nothing better by waiting.
            State::Admitting(p) if p.route.same_destination(route) => {
                let State::Admitting(pending) =
                    std::mem::replace(&mut self.state, State::NotStarted)
                else {
                    return;
                };
                let Pending { route, goal, .. } = *pending;
                match goal {
                    Goal::Unregister { after, .. } => {
                        self.unregister_done(now, after, false, Some(route))
                    }
                    Goal::Register(_) if !failover => self.lost(now, route, reason),
                    Goal::Register(walk) => self.route_failed(now, route, walk, failure),
                }
            }
            State::Registered if on_binding => {
                let current = route.clone();
                if failover {
                    let walk = Walk::new(current.group, now, self.settings.enhanced_failover);
                    self.route_failed(now, current, walk, failure);
                } else {
                    self.lost(now, current, reason);
                }
            }
            // A binding kept through a walk on another route loses its flow:
            // the binding is gone, the walk goes on.
            _ if on_binding && !failover => {
                self.emit(Some(route), EventKind::RouteFailed { reason, detail });
                self.drop_binding(UnregisterReason::lost(reason));
            }
            _ => {}
        }
    }

    /// Whether a call blocks failback: this line's own calls, or with enhanced
    /// failover any line's (the fleet coordinator tells every line).
    pub fn handle_calls_active(&mut self, now: Instant, active: bool) {
        self.calls_active = active;
        if !active && self.failback_pending && matches!(self.state, State::Registered) {
            self.failback(now);
        }
        self.settle_slot();
    }

    /// Fails back now if the line is failed over, as if its failback time had
    /// come: the fleet coordinator's group failback with enhanced failover.
    /// A call still blocks it until [`Self::handle_calls_active`] says the
    /// calls are over.
    pub fn request_failback(&mut self, now: Instant) {
        if self.is_failed_over() {
            self.failback_due(now);
        }
        self.settle_slot();
    }

    /// Registers again at once, whatever the timers say (an operator's
    /// "re-register now"): a bound line refreshes now, with a refresh's
    /// rules (a failed-over line whose refresh tries the primary fails
    /// back, unless a call holds it); a line backing off ends its wait now.
    /// Answers whether an exchange started: not while one is under way,
    /// waits for the pacer, or before routes or after shutdown.
    pub fn register_now(&mut self, now: Instant) -> bool {
        let started = match self.state {
            State::Registered => {
                self.timers.stop(Timer::Refresh);
                self.refresh_due(now);
                true
            }
            State::BackingOff { .. } => {
                if self.settings.new_call_on_unregister {
                    self.call_id = self.call_ids.next_call_id();
                    self.has_credentials = false;
                }
                self.begin_initial(now);
                true
            }
            _ => false,
        };
        self.settle_slot();
        started
    }

    /// Removes the binding (`Expires: 0` on the registered route) and stops.
    /// A REGISTER still unanswered may yet create a binding at its route, so
    /// without a binding that route gets the `Expires: 0` instead.
    ///
    /// A paced line's un-REGISTERs wait for the pacer like any new exchange:
    /// a hundred thousand lines stopping at once must not flood their SBCs
    /// either, and a caller's shutdown timeout bounds the wait
    /// ([`Self::shutdown_timed_out`] reports the ones still waiting as
    /// unconfirmed: their bindings lapse at the SBC).
    pub fn shutdown(&mut self, now: Instant) {
        self.begin_shutdown(now);
        self.settle_slot();
    }

    fn begin_shutdown(&mut self, now: Instant) {
        if matches!(self.state, State::Stopped) {
            return;
        }
        let in_flight = match &self.state {
            State::Registering(a) if matches!(a.goal, Goal::Register(_)) => Some(a.route.clone()),
            _ => None,
        };
        self.state = State::NotStarted;
        self.failback_pending = false;
        self.timers.stop(Timer::Refresh);
        self.timers.stop(Timer::Failback);
        // Every registrar that may hold a binding of the line: the binding in
        // force first (its registrar answers), then one given up silently
        // that has not lapsed, then the route of a REGISTER still unanswered
        // (it may yet create one).
        let abandoned = self
            .abandoned
            .take()
            .filter(|b| b.expires_at > now)
            .map(|b| b.route);
        let mut targets: Vec<Route> = Vec::new();
        for route in [self.registered_route().cloned(), abandoned, in_flight]
            .into_iter()
            .flatten()
        {
            if !targets.iter().any(|t| t.same_destination(&route)) {
                targets.push(route);
            }
        }
        self.shutdown_queue = targets.into_iter().collect();
        self.next_shutdown_unregister(now);
    }

    /// The caller stopped waiting for the shutdown's un-REGISTER (its
    /// shutdown timeout, shorter than a TCP Timer B): one still unanswered
    /// ends now as `unregister_unconfirmed`. A no-op otherwise.
    pub fn shutdown_timed_out(&mut self, now: Instant) {
        self.shutdown_over(now);
        self.settle_slot();
    }

    fn shutdown_over(&mut self, _now: Instant) {
        if let State::Admitting(p) = &self.state {
            if matches!(
                p.goal,
                Goal::Unregister {
                    after: AfterUnregister::Stop,
                    ..
                }
            ) {
                // Never sent: the binding stays at the SBC until it lapses.
                let mut routes = vec![p.route.clone()];
                routes.extend(self.shutdown_queue.drain(..));
                for route in routes {
                    self.shutdown_unregistered(&route, false);
                }
                self.stop();
            }
            return;
        }
        let State::Registering(a) = &self.state else {
            return;
        };
        if !matches!(
            a.goal,
            Goal::Unregister {
                after: AfterUnregister::Stop,
                ..
            }
        ) {
            return;
        }
        if let Some(attempt) = self.take_attempt() {
            if let Goal::Unregister { .. } = attempt.goal {
                // Nothing more will be waited for: the rest of the queue is
                // unconfirmed too.
                let mut routes = vec![attempt.route];
                routes.extend(self.shutdown_queue.drain(..));
                for route in routes {
                    self.shutdown_unregistered(&route, false);
                }
                self.stop();
            }
        }
    }
}

/// Whether a 423's Min-Expires asks for more than `requested` seconds.
fn raises(min_expires: Option<Duration>, requested: u32) -> bool {
    min_expires.is_some_and(|m| m.as_secs() > u64::from(requested))
}

impl Attempt {
    fn send(&self, call_id: &str, retransmission: bool) -> SendRegister {
        SendRegister {
            route: self.route.clone(),
            call_id: call_id.to_owned(),
            cseq: self.cseq,
            transaction: self.transaction,
            expires: self.expires,
            retransmission,
            with_credentials: self.with_credentials,
        }
    }
}
