//! The line machine: one `reg.x` with its registration, calls, line seizes
//! and subscriptions, driven by [`Input`]s and answering [`Output`]s. See
//! the module docs of [`crate::line`] for the picture.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::dns::{DnsNote, ResolveTarget, RouteSet};
use crate::flow_failure::{
    registration_error_of_flow_loss, registration_error_of_route_failure, FlowLostKind,
    RouteFailureKind,
};
use crate::group_failback::GroupCommand;
use crate::message::{Message, Method};
use crate::register_request::RegisterRequests;
use crate::registration::{
    EventKind, Output as RegOutput, Phase, Registration, SendRegister, TransportError,
};
use crate::route::{FlowKey, Route, RouteSource};
use crate::servers::ServerRoutes;
use crate::subscription::Subscription;

use super::calls::CallTable;
use super::dialogs::DialogBook;
use super::events::{DnsEvent, DnsEventKind, LineEventBody};
use super::io::{Diagnostic, Input, Output};
use super::media::MediaPorts;
use super::setup::{self, LineSetup};
use super::status::LineStatus;

/// How long to wait before asking DNS again when a target gave no routes;
/// doubles up to [`RESOLVE_RETRY_MAX`].
pub const RESOLVE_RETRY_MIN: Duration = Duration::from_secs(2);
/// Upper bound of the DNS retry back-off after a target gave no routes.
pub const RESOLVE_RETRY_MAX: Duration = Duration::from_secs(60);

/// What a flow of the line is doing.
#[derive(Debug)]
enum FlowState {
    /// Asked for; what waits for it goes once it is open.
    Opening(Vec<Pending>),
    Open {
        local: SocketAddr,
    },
}

/// Work waiting for a flow to open.
#[derive(Debug)]
pub(super) enum Pending {
    Register(SendRegister),
    Transmit(Message),
    /// An INVITE to send again on this flow's route, same Call-ID.
    RetryInvite {
        call_id: String,
        route: Route,
        last: bool,
    },
    /// The line seize in front of an emergency call, on this route.
    Seize {
        route: Route,
        target: String,
        call_id: String,
    },
}

/// One line (`reg.x`) as a sans-IO machine.
pub struct Line {
    /// Shared, read-only: one allocation, not 368 bytes inline in every
    /// line's task.
    pub(super) setup: std::sync::Arc<LineSetup>,
    /// The fleet has a failback coordinator and the line takes part in it.
    grouped: bool,
    pub(super) machine: Registration,
    requests: RegisterRequests,
    servers: ServerRoutes,
    /// Per target: the wait before asking again after a failed resolution,
    /// and when that is.
    resolve_retry: Vec<Duration>,
    resolve_at: Vec<Option<Instant>>,
    flows: FlowTable,
    /// Call-IDs, SSRCs and seeds of calls and subscriptions.
    pub(super) ids: SmallRng,
    pub(super) calls: CallTable,
    subs: Vec<Subscription>,
    dialogs: DialogBook,
    pub(super) media: Box<dyn MediaPorts>,
    /// The next 20 ms media tick, while a call sends RTP.
    media_next: Option<Instant>,
    external_calls: bool,
    /// What the registration (or coordinator) last heard about calls.
    reported_active: bool,
    /// REGISTER retransmissions sent (UDP Timer E), for load figures.
    register_retransmissions: u32,
    /// The registrar the calls last heard of.
    registrar: Option<Route>,
    pub(super) out: VecDeque<Output>,
    /// The deadline last announced with [`Output::Timeout`].
    announced: Option<Instant>,
}

impl Line {
    /// A line for `setup`; `grouped` when the fleet runs a failback
    /// coordinator (it is used when the line's settings enable enhanced
    /// failover). Nothing happens until [`Line::start`].
    pub fn new(setup: LineSetup, grouped: bool, media: Box<dyn MediaPorts>) -> Self {
        // Small generators (32 bytes each, not ChaCha's 300): back-off
        // jitter, Call-IDs and tags need uniqueness, not secrecy.
        let mut rng = match setup.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        let mut call_id_rng = SmallRng::seed_from_u64(rng.next_u64());
        let index = setup.index;
        let call_ids =
            move || format!("{:016x}{:04x}@sipfleet", call_id_rng.random::<u64>(), index);
        let machine = Registration::new(
            setup.settings.clone(),
            Box::new(SmallRng::seed_from_u64(rng.next_u64())),
            Box::new(call_ids),
        );
        let mut requests =
            RegisterRequests::new(setup.identity.clone(), setup.digest.clone(), rng.next_u64());
        if let Some(urn) = &setup.instance {
            requests = requests.with_instance(urn.clone());
        }
        let mut ids = SmallRng::seed_from_u64(rng.next_u64());
        let subs = setup::subscriptions(&setup, &mut ids);
        let servers = ServerRoutes::new(setup.targets.clone());
        let n = setup.targets.len();
        Line {
            grouped: grouped && setup.settings.enhanced_failover,
            setup: std::sync::Arc::new(setup),
            machine,
            requests,
            servers,
            resolve_retry: vec![RESOLVE_RETRY_MIN; n],
            resolve_at: vec![None; n],
            flows: FlowTable::default(),
            ids,
            calls: CallTable::default(),
            subs,
            dialogs: DialogBook::default(),
            media,
            media_next: None,
            external_calls: false,
            reported_active: false,
            register_retransmissions: 0,
            registrar: None,
            out: VecDeque::new(),
            announced: None,
        }
    }

    /// The configuration the line was built from.
    pub fn setup(&self) -> &LineSetup {
        &self.setup
    }

    /// Whether the line reports to the fleet's failback coordinator.
    pub fn is_grouped(&self) -> bool {
        self.grouped
    }

    /// The registration's phase.
    pub fn phase(&self) -> Phase {
        self.machine.phase()
    }

    /// The shutdown is over: every binding is removed or given up.
    pub fn is_stopped(&self) -> bool {
        self.machine.phase() == Phase::Stopped
    }

    /// Whether `message`, delivered on a flow the line shares, is this
    /// line's: a response to its REGISTER or to a dialog it runs, or a
    /// request in one of its dialogs.
    pub fn accepts(&self, message: &Message) -> bool {
        let h = message.headers();
        let Ok(call_id) = h.call_id() else {
            return false;
        };
        call_id == self.machine.call_id()
            || self.calls.has_call_id(call_id)
            || self.subs.iter().any(|s| s.call_id() == Some(call_id))
    }

    /// Starts the registration and asks for every target's routes.
    pub fn start(&mut self, now: Instant) {
        self.machine.start(now);
        for (index, target) in self.setup.targets.iter().enumerate() {
            self.out.push_back(Output::Resolve {
                index,
                target: target.clone(),
            });
        }
        self.drain(now);
    }

    /// The next output; `None` when the line has nothing to do until an
    /// input or its deadline.
    pub fn poll_output(&mut self) -> Option<Output> {
        let next = self.out.pop_front();
        if next.is_none() && self.out.capacity() > 0 {
            // An idle line of a large fleet keeps no empty queue (224 bytes
            // a slot).
            self.out = VecDeque::new();
        }
        next
    }

    /// The earliest deadline of any of the line's machines.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.machine.poll_timeout(),
            self.calls.poll_timeout(),
            self.subs.iter().filter_map(|s| s.poll_timeout()).min(),
            self.resolve_at.iter().flatten().min().copied(),
            self.media_next,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one input (message, flow event, DNS answer, command) at `now`; collect the results with the poll methods.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Received { flow, message } => self.received(now, flow, message),
            Input::FlowOpened { flow, local } => self.flow_opened(now, flow, local),
            Input::FlowUnavailable { flow, reason } => self.flow_unavailable(now, flow, reason),
            Input::RouteFailed { flow, kind } => self.route_failed(now, flow, kind),
            Input::FlowLost { flow, kind } => self.flow_lost(now, flow, kind),
            Input::Resolved { index, set } => {
                if let Some(retry) = self.resolve_retry.get_mut(index) {
                    *retry = RESOLVE_RETRY_MIN;
                }
                if let Some(target) = self.setup.targets.get(index).cloned() {
                    self.route_set(now, &target, &set);
                }
            }
            Input::ResolveFailed { index, error } => self.resolve_failed(now, index, error),
            Input::RouteSetChanged { target, set } => {
                if self.servers.contains(&target) {
                    self.route_set(now, &target, &set);
                }
            }
            Input::DnsReport {
                target,
                notes,
                failed,
                current,
            } => self.dns_report(now, &target, &notes, failed, current),
            Input::SlotGranted { ticket } => self.machine.handle_slot_granted(now, ticket),
            Input::ExternalCalls(active) => self.external_calls = active,
            Input::Group(GroupCommand::CallsActive { any_active, .. }) => {
                self.machine.handle_calls_active(now, any_active)
            }
            Input::Group(GroupCommand::Failback { .. }) => self.machine.request_failback(now),
            Input::Shutdown => {
                // Calls end and subscriptions are withdrawn before the
                // binding goes.
                self.calls.hangup_all(now);
                for sub in &mut self.subs {
                    sub.unsubscribe(now);
                }
                self.machine.shutdown(now);
            }
            Input::ShutdownTimedOut => self.machine.shutdown_timed_out(now),
            Input::Timeout => self.handle_timeout(now),
        }
        self.drain(now);
    }

    /// A snapshot for status displays and the control API.
    pub fn status(&self) -> LineStatus {
        LineStatus {
            index: self.setup.index,
            phase: self.machine.phase(),
            registered_route: self.machine.registered_route().cloned(),
            primary: self.machine.primary().cloned(),
            call_id: self.machine.call_id().to_string(),
            routes: self.machine.routes().to_vec(),
            calls: self.calls.info(self.media.as_ref()),
            register_retransmissions: self.register_retransmissions,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.machine.handle_timeout(now);
        }
        self.calls.handle_timeout(now);
        for sub in &mut self.subs {
            if sub.poll_timeout().is_some_and(|t| t <= now) {
                sub.handle_timeout(now);
            }
        }
        for index in 0..self.resolve_at.len() {
            if self.resolve_at[index].is_some_and(|t| t <= now) {
                self.resolve_at[index] = None;
                if let Some(target) = self.setup.targets.get(index).cloned() {
                    self.out.push_back(Output::Resolve { index, target });
                }
            }
        }
        if self.media_next.is_some_and(|t| t <= now) {
            self.media_tick(now);
        }
    }

    /// One packet for every call with media to send; the next tick 20 ms
    /// after this one (after `now` when the driver was late).
    fn media_tick(&mut self, now: Instant) {
        for (call_id, to, packet) in self.calls.media_packets() {
            self.out.push_back(Output::Media {
                call_id,
                to,
                packet,
            });
        }
        let next = self.media_next.map_or(now, |t| t) + super::media::PTIME;
        self.media_next = Some(if next <= now {
            now + super::media::PTIME
        } else {
            next
        });
    }

    /// Runs every output of every machine until none is left (one output
    /// may cause others: a registration event moves subscriptions, a line
    /// seize places a call, a call ending releases failback), then tidies
    /// up and announces the deadline if it moved.
    pub(super) fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = self.drain_registration(now);
            progressed |= self.drain_calls(now);
            progressed |= self.drain_subscriptions(now);
            progressed |= self.report_calls_active(now);
            // A retry on an open flow sends at once: its INVITE is drained
            // on the next turn.
            progressed |= self.run_retries(now);
            if !progressed {
                break;
            }
        }
        self.calls.reap(self.media.as_mut());
        self.forget_dead_dialogs();
        self.media_next = match (self.calls.wants_media(), self.media_next) {
            (true, None) => Some(now + super::media::PTIME),
            (true, next) => next,
            (false, _) => None,
        };
        let deadline = self.poll_timeout();
        if deadline != self.announced {
            self.announced = deadline;
            if let Some(t) = deadline {
                self.out.push_back(Output::Timeout(t));
            }
        }
    }

    /// The registration's outputs; its events drive the subscriptions.
    fn drain_registration(&mut self, now: Instant) -> bool {
        let mut progressed = false;
        while let Some(output) = self.machine.poll_output() {
            progressed = true;
            match output {
                RegOutput::Send(send) => self.send_register(now, send),
                RegOutput::RequestSlot(request) => self.out.push_back(Output::RequestSlot {
                    flow: FlowKey::of(&request.route),
                    ticket: request.ticket,
                }),
                RegOutput::SlotDone => self.out.push_back(Output::SlotDone),
                RegOutput::Event(event) => {
                    match &event.kind {
                        EventKind::Registered { .. } => {
                            if let Some(route) = &event.route {
                                self.release_flows_except(Some(FlowKey::of(route)));
                                self.registered_on(now, route);
                                self.registration_moved_on(now, Some(route));
                            }
                        }
                        EventKind::Backoff { .. } => self.registration_moved_on(now, None),
                        EventKind::SubscriptionsInvalidated { reason } => {
                            for sub in &mut self.subs {
                                sub.invalidate(*reason);
                            }
                        }
                        EventKind::RegistrationFailed { status, reason } => {
                            self.registration_moved_on(now, None);
                            self.out
                                .push_back(Output::Diagnostic(Diagnostic::RegistrationFailed {
                                    status: *status,
                                    reason: *reason,
                                    route: event.route.clone(),
                                }))
                        }
                        EventKind::Failback { .. } if self.grouped => {
                            self.out.push_back(Output::GroupFailedBack)
                        }
                        _ => {}
                    }
                    self.out.push_back(Output::Event(event.into()));
                }
            }
        }
        let registrar = self.machine.registered_route().cloned();
        if registrar != self.registrar {
            self.calls.handle_registrar(registrar.as_ref());
            self.registrar = registrar;
        }
        progressed
    }

    /// The registration was accepted on `route`: every subscription lives
    /// there now (re-created at once if it lived elsewhere).
    fn registered_on(&mut self, now: Instant, route: &Route) {
        let Some(local) = self.local_of(FlowKey::of(route)) else {
            return;
        };
        for sub in &mut self.subs {
            sub.registered_on(now, route, local);
        }
    }

    /// Sends what the subscriptions queued and reports their events.
    fn drain_subscriptions(&mut self, now: Instant) -> bool {
        let mut outputs = Vec::new();
        for sub in &mut self.subs {
            outputs.extend(std::iter::from_fn(|| sub.poll_output()));
        }
        let progressed = !outputs.is_empty();
        for output in outputs {
            match output {
                crate::subscription::SubscriptionOutput::Send(t) => {
                    self.send_on(now, &t.route, Pending::Transmit(t.message))
                }
                crate::subscription::SubscriptionOutput::Event(e) => {
                    self.out.push_back(Output::Event(e.into()))
                }
            }
        }
        progressed
    }

    /// Routes a response or NOTIFY to the subscription it belongs to.
    pub(super) fn subscription_message(&mut self, now: Instant, msg: &Message) -> bool {
        match self.subs.iter_mut().find(|s| s.accepts(msg)) {
            Some(sub) => {
                sub.handle_message(now, msg);
                true
            }
            None => false,
        }
    }

    /// Tells the registration (or, with enhanced failover, the coordinator)
    /// when the line's calls start or all end. Returns whether it did.
    fn report_calls_active(&mut self, now: Instant) -> bool {
        let active = self.external_calls || self.calls.any_active();
        if active == self.reported_active {
            return false;
        }
        self.reported_active = active;
        if self.grouped {
            // The coordinator answers with the fleet-wide state (Group).
            self.out.push_back(Output::GroupCallsActive(active));
        } else {
            self.machine.handle_calls_active(now, active);
        }
        true
    }

    fn send_register(&mut self, now: Instant, send: SendRegister) {
        if send.retransmission {
            self.register_retransmissions = self.register_retransmissions.saturating_add(1);
        }
        let route = send.route.clone();
        self.send_on(now, &route, Pending::Register(send));
    }

    /// Does `work` on `route`'s flow: at once when it is open, otherwise
    /// once it is (asking for it first).
    pub(super) fn send_on(&mut self, now: Instant, route: &Route, work: Pending) {
        let key = FlowKey::of(route);
        match self.flows.get_mut(&key) {
            Some(FlowState::Open { local }) => {
                let local = *local;
                self.run_pending(now, key, local, work);
            }
            Some(FlowState::Opening(pending)) => pending.push(work),
            None => {
                self.flows.insert(key, FlowState::Opening(vec![work]));
                self.out.push_back(Output::OpenFlow {
                    route: route.clone(),
                });
            }
        }
    }

    fn flow_opened(&mut self, now: Instant, flow: FlowKey, local: SocketAddr) {
        let pending = match self.flows.insert(flow, FlowState::Open { local }) {
            Some(FlowState::Opening(pending)) => pending,
            _ => Vec::new(),
        };
        for work in pending {
            self.run_pending(now, flow, local, work);
        }
    }

    fn flow_unavailable(&mut self, now: Instant, flow: FlowKey, reason: String) {
        let Some(FlowState::Opening(pending)) = self.flows.remove(&flow) else {
            return;
        };
        self.out
            .push_back(Output::Diagnostic(Diagnostic::FlowUnusable {
                flow,
                reason,
            }));
        for work in pending {
            if let Pending::RetryInvite { call_id, .. } = work {
                self.calls.give_up(now, &call_id);
            }
        }
    }

    fn run_pending(&mut self, now: Instant, flow: FlowKey, local: SocketAddr, work: Pending) {
        match work {
            Pending::Register(send) => self.transmit_register(now, flow, &send, local),
            Pending::Transmit(message) => self.transmit(flow, message),
            Pending::RetryInvite {
                call_id,
                route,
                last,
            } => {
                if let Err(error) = self.calls.retry_on_route(now, &call_id, route, local, last) {
                    self.out
                        .push_back(Output::Diagnostic(Diagnostic::InviteNotRetried {
                            call_id,
                            error,
                        }));
                }
            }
            Pending::Seize {
                route,
                target,
                call_id,
            } => self.start_seize(now, route, local, target, call_id),
        }
    }

    /// Sends `message` on `flow`, announcing its dialog to the flow's
    /// router first.
    pub(super) fn transmit(&mut self, flow: FlowKey, message: Message) {
        if let Some(announce) = self.dialogs.note_sent(flow, &message) {
            self.out.push_back(announce);
        }
        self.out.push_back(Output::Transmit { flow, message });
    }

    /// Builds and sends a REGISTER. One that cannot be built is reported to
    /// the machine, which ends the attempt at once: nothing would ever
    /// answer a request that never left.
    fn transmit_register(
        &mut self,
        now: Instant,
        flow: FlowKey,
        send: &SendRegister,
        local: SocketAddr,
    ) {
        match self.requests.build_request(send, local) {
            Ok(request) => self.out.push_back(Output::Transmit {
                flow,
                message: Message::Request(request),
            }),
            Err(e) => {
                self.out
                    .push_back(Output::Diagnostic(Diagnostic::RegisterNotBuilt {
                        error: e.to_string(),
                    }));
                self.machine.handle_send_failed(now, send.transaction);
            }
        }
    }

    /// Our local address on `flow`, when it is open.
    pub(super) fn local_of(&self, flow: FlowKey) -> Option<SocketAddr> {
        match self.flows.get(&flow) {
            Some(FlowState::Open { local }) => Some(*local),
            _ => None,
        }
    }

    /// Lets go of every flow but `keep` and those the line's calls still
    /// use: flows are shared, so the driver closes one only when its last
    /// line lets go.
    fn release_flows_except(&mut self, keep: Option<FlowKey>) {
        let in_use = self.calls.flows_in_use();
        let drop_keys: Vec<FlowKey> = self
            .flows
            .0
            .iter()
            .map(|(k, state)| (k, state))
            .filter(|(k, state)| {
                Some(**k) != keep && !in_use.contains(k) && matches!(state, FlowState::Open { .. })
            })
            .map(|(k, _)| *k)
            .collect();
        for flow in drop_keys {
            self.flows.remove(&flow);
            self.out.push_back(Output::ReleaseFlow { flow });
        }
    }

    /// Every flow the line holds or is opening (the driver lets go of them
    /// when the line stops).
    pub fn flows(&self) -> impl Iterator<Item = FlowKey> + '_ {
        self.flows.0.iter().map(|(k, _)| *k)
    }

    /// A flow that failed or was lost is forgotten, so the next send opens
    /// a fresh one.
    fn forget_flow(&mut self, flow: FlowKey) {
        if self.flows.remove(&flow).is_some() {
            self.out.push_back(Output::DetachFlow { flow });
        }
    }

    pub(super) fn route_of(&self, key: FlowKey) -> Option<Route> {
        self.machine
            .routes()
            .iter()
            .find(|r| FlowKey::of(r) == key)
            .cloned()
    }

    fn route_failed(&mut self, now: Instant, flow: FlowKey, kind: RouteFailureKind) {
        self.forget_flow(flow);
        let Some(route) = self.route_of(flow) else {
            return;
        };
        let error = registration_error_of_route_failure(&kind);
        let tls_detail = match &error {
            TransportError::Tls { detail } => Some(detail.clone()),
            _ => None,
        };
        self.out
            .push_back(Output::Diagnostic(Diagnostic::RouteFailed {
                route: route.clone(),
                kind: kind.to_string(),
                tls_detail,
            }));
        self.machine.handle_transport_error(now, &route, error);
        self.calls.handle_transport_error(now, &route);
    }

    fn flow_lost(&mut self, now: Instant, flow: FlowKey, kind: FlowLostKind) {
        self.forget_flow(flow);
        let Some(error) = registration_error_of_flow_loss(&kind) else {
            return;
        };
        let Some(route) = self.route_of(flow) else {
            return;
        };
        self.out.push_back(Output::Diagnostic(Diagnostic::FlowLost {
            route: route.clone(),
            kind: kind.to_string(),
        }));
        self.machine.handle_transport_error(now, &route, error);
        self.calls.handle_transport_error(now, &route);
    }

    fn received(&mut self, now: Instant, flow: FlowKey, message: Message) {
        match &message {
            Message::Response(response) => {
                let is_register = response
                    .headers()
                    .cseq()
                    .is_ok_and(|c| c.method == Method::Register);
                if !is_register {
                    if !self.calls.dispatch(now, &message) {
                        self.subscription_message(now, &message);
                    }
                    return;
                }
                match self.requests.read_response(response) {
                    Ok(read) => self.machine.handle_response(now, read.response),
                    Err(e) => self.out.push_back(Output::Diagnostic(
                        Diagnostic::RegisterResponseDropped {
                            error: e.to_string(),
                        },
                    )),
                }
            }
            Message::Request(_) => self.handle_request(now, flow, message),
        }
    }

    fn resolve_failed(&mut self, now: Instant, index: usize, error: String) {
        let (Some(retry), Some(target)) = (
            self.resolve_retry.get_mut(index),
            self.setup.targets.get(index).cloned(),
        ) else {
            return;
        };
        let wait = *retry;
        *retry = (wait * 2).min(RESOLVE_RETRY_MAX);
        if let Some(at) = self.resolve_at.get_mut(index) {
            *at = Some(now + wait);
        }
        self.out.push_back(Output::Diagnostic(Diagnostic::NoRoutes {
            target: target.name.clone(),
            error,
            retry_in: wait,
        }));
        if self.servers.failed(&target) {
            self.apply_routes(now);
        }
    }

    /// A target's routes, first resolved or changed by a refresh.
    fn route_set(&mut self, now: Instant, target: &ResolveTarget, set: &RouteSet) {
        if self.servers.resolved(target, set) {
            self.apply_routes(now);
        }
    }

    /// Hands the combined route list of every target to the registration.
    fn apply_routes(&mut self, now: Instant) {
        let routes = self.servers.routes();
        if routes.is_empty() {
            return;
        }
        let ttl = self
            .servers
            .expires()
            .map(|e| e.saturating_duration_since(now));
        self.machine.handle_routes(now, routes, ttl);
    }

    /// DNS trouble becomes the line's `dns_failed` / `dns_restored` events;
    /// a route set served from a restored cache is applied, so the line's
    /// routes say `source: restored`.
    fn dns_report(
        &mut self,
        now: Instant,
        target: &ResolveTarget,
        notes: &[DnsNote],
        failed: Option<String>,
        current: Option<RouteSet>,
    ) {
        if !self.servers.contains(target) {
            return;
        }
        let call_id = self.machine.call_id().to_string();
        for note in notes {
            let (kind, error) = match note {
                DnsNote::Failed { error, .. } => (DnsEventKind::Failed, error),
                DnsNote::Restored { error, ttl, .. } => {
                    (DnsEventKind::Restored { ttl: *ttl }, error)
                }
            };
            let query = note.query();
            self.out
                .push_back(Output::Event(LineEventBody::Dns(DnsEvent {
                    kind,
                    name: query.name.clone(),
                    query_type: query.rtype.as_str(),
                    error: error.to_string(),
                    call_id: call_id.clone(),
                })));
        }
        if let Some(error) = failed {
            self.out
                .push_back(Output::Event(LineEventBody::Dns(DnsEvent {
                    kind: DnsEventKind::Failed,
                    name: target.name.clone(),
                    query_type: "routes",
                    error,
                    call_id,
                })));
        }
        let restored = current.filter(|set| {
            set.entries
                .iter()
                .any(|e| e.route.source == RouteSource::Restored)
        });
        if let Some(set) = restored {
            self.route_set(now, target, &set);
        }
    }

    /// Takes the dialogs of ended calls and replaced subscriptions out of
    /// the flows' routers.
    fn forget_dead_dialogs(&mut self) {
        let mut live: HashSet<String> = self.calls.call_ids();
        live.extend(
            self.subs
                .iter()
                .filter_map(|s| s.call_id().map(str::to_owned)),
        );
        let mut out = Vec::new();
        self.dialogs.forget_dead(&live, &mut out);
        self.out.extend(out);
    }
}

/// The flows of one line: one, sometimes two or three (during a failover
/// or a call on another SBC), so a short list, searched in place, costs
/// less than a hash table at 10,000 lines.
#[derive(Debug, Default)]
struct FlowTable(Vec<(FlowKey, FlowState)>);

impl FlowTable {
    fn get(&self, key: &FlowKey) -> Option<&FlowState> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    fn get_mut(&mut self, key: &FlowKey) -> Option<&mut FlowState> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    /// Sets `key`'s state; answers the one it replaces.
    fn insert(&mut self, key: FlowKey, state: FlowState) -> Option<FlowState> {
        match self.get_mut(&key) {
            Some(slot) => Some(std::mem::replace(slot, state)),
            None => {
                // Usually the line's only flow: no spare slots.
                self.0.reserve_exact(1);
                self.0.push((key, state));
                None
            }
        }
    }

    fn remove(&mut self, key: &FlowKey) -> Option<FlowState> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(i).1)
    }
}
