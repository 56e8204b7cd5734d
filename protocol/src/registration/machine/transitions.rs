//! The transitions behind the inputs of [`Registration`]: walks, failover,
//! back-off, failback, authentication and the sticky route. Kept apart from
//! the public surface in `machine.rs` so each file reads in one sitting.

use std::time::{Duration, Instant};

use super::{
    AfterUnregister, Attempt, Binding, Failure, Goal, Registration, State, Timer, TimerTable,
};
use crate::registration::events::{
    Event, EventKind, FailReason, FailbackHeldReason, InvalidationReason, Output, Purpose,
    RegisterResponse, RouteFailReason, UnregisterReason,
};
use crate::registration::failback::{failback_delay, refresh_spread, refresh_tries_primary};
use crate::registration::walk::{find, primary_of, Walk};
use crate::route::Route;
use crate::servers::server_of;
use crate::transaction::{ClientTransaction, RequestKind, WalkPosition};

impl Registration {
    pub(super) fn emit(&mut self, route: Option<&Route>, kind: EventKind) {
        self.outputs.push_back(Output::Event(Event {
            kind,
            route: route.cloned(),
            call_id: self.call_id.clone(),
        }));
    }

    pub(super) fn take_attempt(&mut self) -> Option<Attempt> {
        match std::mem::replace(&mut self.state, State::NotStarted) {
            State::Registering(attempt) => Some(*attempt),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Sends a new request on `route`: at once, or, when the line is paced
    /// and the request starts a new exchange, once the fleet's pacer grants
    /// it (see `pacing.rs`).
    pub(super) fn send_attempt(
        &mut self,
        now: Instant,
        route: Route,
        goal: Goal,
        purpose: Purpose,
    ) {
        if self.settings.paced && purpose.starts_exchange() {
            self.request_slot(now, route, goal, purpose);
        } else {
            self.start_attempt(now, route, goal, purpose);
        }
    }

    /// Starts a new transaction (new CSeq, new branch) on `route`.
    pub(super) fn start_attempt(
        &mut self,
        now: Instant,
        route: Route,
        goal: Goal,
        purpose: Purpose,
    ) {
        let (position, expires) = match &goal {
            Goal::Register(walk) => (
                WalkPosition {
                    walk_started: walk.started,
                    last_route: walk.is_last(&self.routes, &route),
                },
                self.settings.expires_for(&route, self.expires),
            ),
            // An un-REGISTER never fails over: its own schedule only.
            Goal::Unregister { .. } => (
                WalkPosition {
                    walk_started: now,
                    last_route: false,
                },
                0,
            ),
        };
        self.cseq = self.cseq.wrapping_add(1);
        self.next_transaction += 1;
        let attempt = Attempt {
            tx: ClientTransaction::start(
                RequestKind::NonInvite,
                route.transport,
                &self.settings.policy_for(&self.policy, &route),
                position,
                now,
            ),
            route,
            cseq: self.cseq,
            transaction: self.next_transaction,
            expires,
            with_credentials: self.has_credentials,
            goal,
        };
        let kind = EventKind::Registering {
            cseq: attempt.cseq,
            expires,
            purpose,
        };
        self.emit(Some(&attempt.route), kind);
        let send = attempt.send(&self.call_id, false);
        self.outputs.push_back(Output::Send(send));
        self.state = State::Registering(Box::new(attempt));
    }

    /// A walk from the top of the whole route list.
    pub(super) fn begin_initial(&mut self, now: Instant) {
        match self.routes.first().cloned() {
            Some(first) => {
                let walk = Walk::new(first.group, now, self.settings.enhanced_failover);
                self.send_attempt(now, first, Goal::Register(walk), Purpose::Initial);
            }
            None => self.state = State::WaitingForRoutes,
        }
    }

    pub(super) fn attempt_failed(&mut self, now: Instant, attempt: Attempt, failure: Failure) {
        match attempt.goal {
            Goal::Unregister { after, .. } => {
                self.unregister_done(now, after, false, Some(attempt.route))
            }
            Goal::Register(walk) => self.route_failed(now, attempt.route, walk, failure),
        }
    }

    /// `failed` failed: mark it, then fail over along the walk or give up.
    pub(super) fn route_failed(
        &mut self,
        now: Instant,
        failed: Route,
        mut walk: Walk,
        failure: Failure,
    ) {
        self.emit(
            Some(&failed),
            EventKind::RouteFailed {
                reason: failure.reason,
                detail: failure.detail.clone(),
            },
        );
        let was_last = walk.is_last(&self.routes, &failed);
        walk.mark_failed(&failed);
        self.failover_started();
        let timer_b = self.policy.timers.timer_b();
        if failure.reason == RouteFailReason::Timeout
            && !failure.budget_over
            && failed.transport.is_reliable()
            && now >= walk.started + timer_b
        {
            // A TCP/TLS route waited out its own Timer B/F (design.md
            // decision 3): the next route gets a fresh budget.
            walk.started = now;
        }
        let budget_end = walk.started + timer_b;
        let budget_over =
            failure.budget_over || (!self.policy.enhanced_failover && now >= budget_end);
        match walk.next(&self.routes).cloned() {
            Some(next) if !budget_over => {
                self.emit(Some(&next), EventKind::Failover { from: failed });
                self.send_attempt(now, next, Goal::Register(walk), Purpose::Failover);
            }
            _ => {
                let status = failure.status;
                let reason = FailReason::RoutesExhausted;
                self.emit(
                    Some(&failed),
                    EventKind::RegistrationFailed { status, reason },
                );
                // Retry-After counts on the last route only (decision 4).
                let retry_after = failure.retry_after.filter(|_| was_last);
                // Back-off starts once the 32 s period has elapsed (decision 5).
                let starts = if retry_after.is_some() || self.policy.enhanced_failover {
                    now
                } else {
                    now.max(budget_end)
                };
                self.enter_backoff(now, starts, retry_after, Some(failed));
            }
        }
    }

    /// `failRegistrationOn=1`: failover begins, so the binding goes silently.
    pub(super) fn failover_started(&mut self) {
        if self.settings.effective_fail_registration_on() && self.binding.is_some() {
            self.abandon_binding(UnregisterReason::FailoverStarted);
        }
    }

    /// Drops the binding without an `Expires: 0`: the registrar keeps it
    /// until it lapses, and shutdown removes it (see `abandoned`).
    pub(super) fn abandon_binding(&mut self, reason: UnregisterReason) {
        if let Some(binding) = &self.binding {
            self.abandoned = Some(Binding {
                route: binding.route.clone(),
                expires_at: binding.expires_at,
            });
        }
        self.drop_binding(reason);
    }

    pub(super) fn drop_binding(&mut self, reason: UnregisterReason) {
        let Some(binding) = self.binding.take() else {
            return;
        };
        self.timers.stop(Timer::Refresh);
        self.timers.stop(Timer::Expiry);
        self.timers.stop(Timer::Failback);
        self.failback_pending = false;
        self.emit(Some(&binding.route), EventKind::Unregistered { reason });
        let invalidation = if reason == UnregisterReason::FailoverStarted {
            InvalidationReason::FailoverStarted
        } else {
            InvalidationReason::Unregistered
        };
        self.emit(
            Some(&binding.route),
            EventKind::SubscriptionsInvalidated {
                reason: invalidation,
            },
        );
    }

    /// A registration loss: wait a randomized back-off, then start over.
    pub(super) fn enter_backoff(
        &mut self,
        now: Instant,
        starts: Instant,
        retry_after: Option<Duration>,
        route: Option<Route>,
    ) {
        let failures = self.backoff.failures();
        let wait = match retry_after {
            Some(wait) => {
                self.backoff.count_failure();
                wait
            }
            None => self.backoff.next_wait(&mut *self.rng),
        };
        self.failback_pending = false;
        self.timers.stop(Timer::Refresh);
        self.timers.stop(Timer::Failback);
        let announced = starts <= now;
        if announced {
            self.emit(route.as_ref(), EventKind::Backoff { wait, failures });
        }
        self.state = State::BackingOff {
            starts,
            wait,
            failures,
            announced,
            route,
        };
    }

    pub(super) fn rejected(
        &mut self,
        now: Instant,
        route: Route,
        status: Option<u16>,
        retry_after: Option<Duration>,
        reason: FailReason,
    ) {
        self.emit(
            Some(&route),
            EventKind::RegistrationFailed { status, reason },
        );
        self.drop_binding(UnregisterReason::Rejected);
        self.enter_backoff(now, now, retry_after, Some(route));
    }

    /// FIN/RST or keep-alive loss: registration loss, not failover.
    pub(super) fn lost(&mut self, now: Instant, route: Route, reason: RouteFailReason) {
        self.emit(
            Some(&route),
            EventKind::RouteFailed {
                reason,
                detail: None,
            },
        );
        self.drop_binding(UnregisterReason::lost(reason));
        self.enter_backoff(now, now, None, Some(route));
    }

    pub(super) fn registered(
        &mut self,
        now: Instant,
        route: Route,
        requested: u32,
        response: &RegisterResponse,
    ) {
        let asked = Duration::from_secs(requested.into());
        if response.binding_missing {
            // The registrar lists bindings, none of them ours: whatever it
            // did, it holds no binding we can refresh.
            let reason = FailReason::BindingMissing;
            self.rejected(now, route, Some(response.status), None, reason);
            return;
        }
        // A registrar may shorten the expiry, never lengthen it: a grant of
        // 2^32 s must not put the refresh a century away.
        let granted = response.expires.map_or(asked, |g| g.min(asked));
        if granted.is_zero() {
            // A 2xx that grants nothing leaves us without a binding.
            let reason = FailReason::ZeroExpires;
            self.rejected(now, route, Some(response.status), None, reason);
            return;
        }
        let route = find(&self.routes, &route).cloned().unwrap_or(route);
        let primary = primary_of(&self.routes, &route).unwrap_or_else(|| route.clone());
        let previous = self.binding.take().map(|b| b.route);
        let moved = !matches!(&previous, Some(p) if p.same_destination(&route));
        if let Some(previous) = previous.filter(|p| !p.same_destination(&route)) {
            self.emit(
                Some(&previous),
                EventKind::SubscriptionsInvalidated {
                    reason: InvalidationReason::NewRegistrar,
                },
            );
        }
        self.binding = Some(Binding {
            route: route.clone(),
            expires_at: now + granted,
        });
        let on_primary = route.same_destination(&primary);
        self.primary = Some(primary);
        self.backoff.reset();
        let overlap = Duration::from_secs(self.settings.expires_overlap_s.into());
        let spread = self.settings.refresh_spread_pct;
        let refresh = refresh_spread(granted, overlap, spread, &mut *self.rng);
        self.timers.set(Timer::Refresh, now + refresh);
        self.timers.set(Timer::Expiry, now + granted);
        self.state = State::Registered;
        self.emit(
            Some(&route),
            EventKind::Registered {
                expires: granted,
                primary: on_primary,
            },
        );
        if on_primary || moved {
            // A failback that came due belonged to the previous route.
            self.failback_pending = false;
        }
        if on_primary {
            self.timers.stop(Timer::Failback);
        } else if moved {
            match failback_delay(&self.settings, self.dns_ttl) {
                Some(delay) => self.timers.set(Timer::Failback, now + delay),
                None => self.timers.stop(Timer::Failback),
            }
        }
        if self.failback_pending && !self.calls_active {
            self.failback(now);
        }
    }

    /// A 401/407 to a REGISTER of a walk.
    pub(super) fn challenged(
        &mut self,
        now: Instant,
        route: Route,
        mut walk: Walk,
        response: &RegisterResponse,
    ) {
        let status = Some(response.status);
        if response.unusable_challenge.is_some() {
            // Nothing can answer it: waiting would only end in a timeout.
            let reason = FailReason::UnsupportedChallenge;
            self.rejected(now, route, status, None, reason);
            return;
        }
        let repeated = walk
            .challenged_by
            .as_ref()
            .is_some_and(|c| c.same_destination(&route));
        if repeated && !response.stale {
            // Our credentials were refused: a denial.
            let reason = FailReason::CredentialsRejected;
            self.rejected(now, route, status, None, reason);
            return;
        }
        if repeated && walk.stale_retried {
            // stale=true twice in a row: a registrar that never takes its
            // own nonces; one retry is all a stale nonce deserves.
            let reason = FailReason::StaleNonceLoop;
            self.rejected(now, route, status, None, reason);
            return;
        }
        walk.stale_retried = repeated && response.stale;
        self.has_credentials = true;
        walk.challenged_by = Some(route.clone());
        // authOptimizedInFailover=0: a challenge met while failing over sends
        // the new request to the walk's primary; a walk that has not failed
        // over (first request, refresh) answers where it was challenged.
        let restart_at = walk
            .head(&self.routes)
            .filter(|head| {
                walk.has_failures()
                    && !head.same_destination(&route)
                    && !self.settings.auth_optimized_in_failover
            })
            .cloned();
        match restart_at {
            Some(head) => {
                walk.restart(now);
                self.send_attempt(now, head, Goal::Register(walk), Purpose::Authenticate);
            }
            None => {
                // A new request: it gets a fresh 32 s budget.
                walk.started = now;
                self.send_attempt(now, route, Goal::Register(walk), Purpose::Authenticate);
            }
        }
    }

    /// The un-REGISTER is over; `confirmed` when it was answered 2xx.
    pub(super) fn unregister_done(
        &mut self,
        now: Instant,
        after: AfterUnregister,
        confirmed: bool,
        route: Option<Route>,
    ) {
        match after {
            AfterUnregister::Stop => {
                if let Some(route) = route {
                    self.shutdown_unregistered(&route, confirmed);
                }
                self.next_shutdown_unregister(now);
            }
            AfterUnregister::Failback => {
                self.drop_binding(UnregisterReason::Failback);
                match self.primary.clone() {
                    Some(primary) => self.failback_walk(now, primary),
                    None => self.begin_initial(now),
                }
            }
        }
    }

    /// The shutdown's next `Expires: 0`, or the stop when none is left.
    pub(super) fn next_shutdown_unregister(&mut self, now: Instant) {
        match self.shutdown_queue.pop_front() {
            Some(route) => self.send_attempt(
                now,
                route,
                Goal::unregister(AfterUnregister::Stop),
                Purpose::Unregister,
            ),
            None => self.stop(),
        }
    }

    /// Reports the end of the shutdown's `Expires: 0` to `route`: the
    /// binding in force if it is there, else a binding the route may hold
    /// (given up silently, or from a REGISTER never answered).
    pub(super) fn shutdown_unregistered(&mut self, route: &Route, confirmed: bool) {
        let reason = if confirmed {
            UnregisterReason::Shutdown
        } else {
            UnregisterReason::UnregisterUnconfirmed
        };
        if self
            .registered_route()
            .is_some_and(|r| r.same_destination(route))
        {
            self.drop_binding(reason);
        } else {
            self.emit(Some(route), EventKind::Unregistered { reason });
        }
    }

    pub(super) fn stop(&mut self) {
        self.state = State::Stopped;
        self.timers = TimerTable::default();
    }

    /// Goes back to the primary, if the line is failed over.
    pub(super) fn failback(&mut self, now: Instant) {
        let (Some(current), Some(primary)) =
            (self.registered_route().cloned(), self.primary.clone())
        else {
            return;
        };
        if current.same_destination(&primary) {
            return;
        }
        self.failback_pending = false;
        self.timers.stop(Timer::Failback);
        self.timers.stop(Timer::Refresh);
        self.emit(
            Some(&primary),
            EventKind::Failback {
                from: current.clone(),
            },
        );
        if self.settings.effective_unregister_on_failback() {
            self.send_attempt(
                now,
                current,
                Goal::unregister(AfterUnregister::Failback),
                Purpose::Unregister,
            );
        } else {
            if self.settings.re_register_on {
                // unRegisterOnFailBack=0: "the registration is terminated
                // silently". Without RROFO a failback is only a refresh that
                // tries the primary first, and the binding stands meanwhile.
                self.abandon_binding(UnregisterReason::Failback);
            }
            self.failback_walk(now, primary);
        }
    }

    pub(super) fn failback_walk(&mut self, now: Instant, primary: Route) {
        let walk = Walk::new(primary.group, now, self.settings.enhanced_failover);
        self.send_attempt(now, primary, Goal::Register(walk), Purpose::Failback);
    }

    pub(super) fn failback_due(&mut self, now: Instant) {
        match self.state {
            State::Registered if !self.calls_active => self.failback(now),
            State::Registered | State::Registering(_) | State::Admitting(_)
                if self.binding.is_some() =>
            {
                let reason = if self.calls_active {
                    FailbackHeldReason::CallActive
                } else {
                    FailbackHeldReason::RequestInFlight
                };
                self.hold_failback(reason);
            }
            _ => {}
        }
    }

    /// Failback is due but must wait; reported once per wait.
    fn hold_failback(&mut self, reason: FailbackHeldReason) {
        if !self.failback_pending {
            let primary = self.primary.clone();
            self.emit(primary.as_ref(), EventKind::FailbackHeld { reason });
        }
        self.failback_pending = true;
    }

    pub(super) fn refresh_due(&mut self, now: Instant) {
        if !matches!(self.state, State::Registered) {
            return;
        }
        let Some(current) = self.registered_route().cloned() else {
            return;
        };
        if self.is_failed_over() && refresh_tries_primary(&self.settings) {
            if !self.calls_active {
                self.failback(now);
                return;
            }
            self.hold_failback(FailbackHeldReason::CallActive);
        }
        let walk = Walk::new(current.group, now, self.settings.enhanced_failover);
        self.send_attempt(now, current, Goal::Register(walk), Purpose::Refresh);
    }

    pub(super) fn binding_lapsed(&mut self, now: Instant) {
        self.drop_binding(UnregisterReason::Expired);
        if matches!(self.state, State::Registered) {
            self.begin_initial(now);
        }
    }

    /// A DNS refresh while registered: the current route is sticky unless the
    /// refresh dropped it (design.md decision 7).
    pub(super) fn sticky_route(&mut self, now: Instant) {
        let Some(current) = self.registered_route().cloned() else {
            return;
        };
        if let Some(updated) = find(&self.routes, &current).cloned() {
            if let Some(binding) = &mut self.binding {
                binding.route = updated.clone();
            }
            // The primary survives a refresh that still lists it, unless an
            // earlier configured server's routes have appeared (its name did
            // not resolve before): then that server's top is the primary.
            let earlier_server = |p: &Route| {
                self.routes
                    .first()
                    .is_some_and(|top| server_of(top.group) < server_of(p.group))
            };
            let was_failed_over = self.is_failed_over();
            self.primary = match self.primary.as_ref().and_then(|p| find(&self.routes, p)) {
                Some(primary) if !earlier_server(primary) => Some(primary.clone()),
                _ => primary_of(&self.routes, &updated),
            };
            if self.is_failed_over() && !was_failed_over {
                // Failed over by the new list: failBack.* runs from now.
                if let Some(delay) = failback_delay(&self.settings, self.dns_ttl) {
                    self.timers.set(Timer::Failback, now + delay);
                }
            }
            return;
        }
        self.emit(
            Some(&current),
            EventKind::RouteFailed {
                reason: RouteFailReason::RemovedFromDns,
                detail: None,
            },
        );
        self.failover_started();
        match self.routes.first().cloned() {
            Some(first) => {
                self.emit(Some(&first), EventKind::Failover { from: current });
                let walk = Walk::new(first.group, now, self.settings.enhanced_failover);
                self.send_attempt(now, first, Goal::Register(walk), Purpose::Failover);
            }
            None => self.state = State::WaitingForRoutes,
        }
    }
}
