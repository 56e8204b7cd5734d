//! The line actor: one per `reg.x`. It drives the sans-IO
//! [`Registration`] machine with real time, real flows and real DNS.
//!
//! What it does, and nothing more:
//! * asks the [`Resolver`] for the route list of each of the line's servers
//!   (or of its outbound proxy) and listens for route-set changes; the
//!   protocol's [`ServerRoutes`] puts them in one list, server 1's routes
//!   first (the sticky-route rule lives in the machine);
//! * turns each `SendRegister` into bytes ([`RegisterRequests`]) on the flow
//!   of its route, acquired from the [`FlowManager`] (flows are shared by all
//!   lines on a route);
//! * feeds responses, ICMP / refused / connect-timeout failures and lost
//!   flows back into the machine;
//! * sleeps until the machine's `poll_timeout()` — one timer per line, none
//!   when idle beyond the next deadline;
//! * reports every machine event to the fleet's [`EventSink`];
//! * runs the line's calls (`calls.rs`), subscriptions (`subscriptions.rs`)
//!   and emergency line seizes next to the registration, and feeds them the
//!   registration's events: a call holds failback while it is up, a new
//!   registrar re-creates the subscriptions there (the guide's rules).
//!
//! Every machine is sans-IO; `Line::drain` runs their outputs until none
//! is left, then sleeps until the earliest deadline of any of them.
//!
//! Time is read through `tokio::time::Instant::now()` so that a paused tokio
//! clock drives the actor in tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sipfleet_protocol::auth::DigestClient;
use sipfleet_protocol::dns::DnsNote;
use sipfleet_protocol::dns::{ResolveTarget, RouteSet};
use sipfleet_protocol::flow_failure::{
    registration_error_of_flow_loss, registration_error_of_route_failure,
};
use sipfleet_protocol::group_failback::GroupCommand;
use sipfleet_protocol::message::{Message as SipMessage, Method};
use sipfleet_protocol::register_request::{LineIdentity, RegisterRequests};
use sipfleet_protocol::registration::{
    EventKind, FailReason, Output, Phase, Registration, RegistrationSettings, SendRegister,
    TransportError,
};
use sipfleet_protocol::resources::SocketBudget;
use sipfleet_protocol::route::{Route, RouteSource};
use sipfleet_protocol::servers::ServerRoutes;
use sipfleet_transport::flow::FlowKey;
use slog::Logger;
use tokio::sync::oneshot;

use crate::connection::{
    Acquire, Connection, Detach, FlowLost, FlowManager, Inbound, LineEndpoints, LocalAddr, Release,
    RouteFailure, SendMessage,
};
use crate::coordinator::{FailbackCoordinator, Group, Join, Leave, LineCalls, LineFailedBack};
use crate::events::{DnsEvent, DnsEventKind};
use crate::events::{EventSink, LineEvent};
use crate::resolver::{DnsReport, Resolve, Resolver, RouteSetChanged, Subscribe, SubscribeReports};

mod calls;
mod media;
mod pacing;
mod send;
mod subscriptions;

pub use calls::{Answer, CallCommandError, CallInfo, Emergency, Hangup, Hold, PlaceCall, Resume};
pub use media::BindError;
pub use subscriptions::LineFeatures;

/// How long to wait before asking DNS again when a line has no routes at all;
/// doubles up to [`RESOLVE_RETRY_MAX`].
const RESOLVE_RETRY_MIN: Duration = Duration::from_secs(2);
const RESOLVE_RETRY_MAX: Duration = Duration::from_secs(60);

/// Everything a line needs, already resolved from the configuration.
#[derive(Clone, Debug)]
pub struct LineSetup {
    /// `x` of `reg.x`; also the line's id among the users of a flow.
    pub index: u32,
    pub identity: LineIdentity,
    pub digest: DigestClient,
    pub settings: RegistrationSettings,
    /// Where requests go, in walk order: the outbound proxy alone, or every
    /// server (`reg.x.server.y`) in `y` order. Never empty.
    pub targets: Vec<ResolveTarget>,
    /// Seeds the back-off randomisation and Call-IDs; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Calls and subscriptions of the line.
    pub features: LineFeatures,
    /// The line's `+sip.instance` URN (RFC 5626), stable per line and
    /// device; `None` sends no instance.
    pub instance: Option<String>,
}

/// The services a line talks to, shared by the fleet.
#[derive(Clone)]
pub struct LineServices {
    pub resolver: Addr<Resolver>,
    pub flows: Addr<FlowManager>,
    pub events: EventSink,
    pub log: Logger,
    /// The fleet's coordinator, for lines with enhanced failover.
    pub coordinator: Option<Addr<FailbackCoordinator>>,
    /// The fleet's media sockets (`sipfleet.sockets.max`): every RTP bind
    /// takes a permit here.
    pub sockets: SocketBudget,
    /// The fleet's REGISTER pacer (`sipfleet.register.*`), when it paces.
    pub pacer: Option<Addr<crate::pacer::FleetPacer>>,
}

/// Un-REGISTER and stop. Resolves when the un-REGISTER got its answer or
/// failed, or after `timeout`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    pub timeout: Duration,
}

/// A snapshot of the line for status displays and the control API.
#[derive(Message)]
#[rtype(result = "LineStatus")]
pub struct GetStatus;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineStatus {
    pub index: u32,
    pub phase: Phase,
    pub registered_route: Option<Route>,
    pub primary: Option<Route>,
    pub call_id: String,
    pub routes: Vec<Route>,
    /// The line's calls that have not ended.
    pub calls: Vec<CallInfo>,
}

/// Whether a call the line does not run itself (an embedding
/// application's) is up on the line. The registration (or, with enhanced
/// failover, the coordinator) hears whether this or any of the line's own
/// calls is active: a line in a call does not fail back (with enhanced
/// failover, no line of the fleet does).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallsActive(pub bool);

struct Flow {
    conn: Addr<Connection>,
    local: Option<SocketAddr>,
}

pub struct Line {
    setup: LineSetup,
    services: LineServices,
    machine: Registration,
    requests: RegisterRequests,
    flows: HashMap<FlowKey, Flow>,
    timer: Option<SpawnHandle>,
    /// The route lists of the line's targets, combined.
    servers: ServerRoutes,
    /// Per target: the wait before asking again after a failed resolution.
    resolve_retry: Vec<Duration>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// Call-IDs and seeds of calls and subscriptions.
    ids: StdRng,
    calls: calls::CallTable,
    subs: Vec<sipfleet_protocol::subscription::Subscription>,
    /// Dialogs announced to connections: (Call-ID, our tag) on a flow.
    dialogs: HashMap<(String, String), FlowKey>,
    /// INVITE and ACK branches sent, by Call-ID, released with the dialog.
    branches: HashMap<String, Vec<(FlowKey, String)>>,
    /// `CallsActive` from outside the line.
    external_calls: bool,
    /// What the registration (or coordinator) last heard about calls.
    reported_active: bool,
    /// The registrar the calls last heard of.
    registrar: Option<Route>,
    /// The 20 ms media clock, running while a call sends RTP.
    media_timer: Option<SpawnHandle>,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Line {
    pub fn new(setup: LineSetup, services: LineServices) -> Self {
        let mut rng = match setup.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let mut ids = StdRng::seed_from_u64(rng.next_u64());
        let index = setup.index;
        let call_ids = move || format!("{:016x}{:04x}@sipfleet", ids.random::<u64>(), index);
        let machine = Registration::new(
            setup.settings.clone(),
            Box::new(StdRng::seed_from_u64(rng.next_u64())),
            Box::new(call_ids),
        );
        let mut requests =
            RegisterRequests::new(setup.identity.clone(), setup.digest.clone(), rng.next_u64());
        if let Some(urn) = &setup.instance {
            requests = requests.with_instance(urn.clone());
        }
        let mut ids = StdRng::seed_from_u64(rng.next_u64());
        let subs = subscriptions::build(&setup, &mut ids);
        let servers = ServerRoutes::new(setup.targets.clone());
        let resolve_retry = vec![RESOLVE_RETRY_MIN; setup.targets.len()];
        Line {
            setup,
            services,
            machine,
            requests,
            flows: HashMap::new(),
            timer: None,
            servers,
            resolve_retry,
            stop_waiters: Vec::new(),
            ids,
            calls: calls::CallTable::default(),
            subs,
            dialogs: HashMap::new(),
            branches: HashMap::new(),
            external_calls: false,
            reported_active: false,
            registrar: None,
            media_timer: None,
        }
    }

    fn line_id(&self) -> u64 {
        self.setup.index.into()
    }

    /// The coordinator, when this line takes part in enhanced failover.
    fn group(&self) -> Option<&Addr<FailbackCoordinator>> {
        self.services
            .coordinator
            .as_ref()
            .filter(|_| self.setup.settings.enhanced_failover)
    }

    /// Resolves every target of the line.
    fn resolve(&mut self, ctx: &mut Context<Self>) {
        for i in 0..self.setup.targets.len() {
            self.resolve_one(i, ctx);
        }
    }

    fn resolve_one(&mut self, i: usize, ctx: &mut Context<Self>) {
        let Some(target) = self.setup.targets.get(i).cloned() else {
            return;
        };
        let request = self.services.resolver.send(Resolve {
            target: target.clone(),
        });
        ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
            match result {
                Ok(Ok(set)) => {
                    if let Some(retry) = act.resolve_retry.get_mut(i) {
                        *retry = RESOLVE_RETRY_MIN;
                    }
                    act.route_set(&target, &set, ctx);
                }
                Ok(Err(e)) => act.resolve_failed(i, &target, e.to_string(), ctx),
                Err(e) => act.resolve_failed(i, &target, e.to_string(), ctx),
            };
        }));
    }

    fn resolve_failed(
        &mut self,
        i: usize,
        target: &ResolveTarget,
        reason: String,
        ctx: &mut Context<Self>,
    ) {
        let Some(retry) = self.resolve_retry.get_mut(i) else {
            return;
        };
        let wait = *retry;
        *retry = (wait * 2).min(RESOLVE_RETRY_MAX);
        slog::warn!(self.services.log, "no routes for line";
            "line" => self.setup.index, "target" => &target.name,
            "error" => reason, "retry_in_ms" => wait.as_millis() as u64);
        ctx.run_later(wait, move |act, ctx| act.resolve_one(i, ctx));
        if self.servers.failed(target) {
            self.apply_routes(ctx);
        }
    }

    /// A target's routes, first resolved or changed by a refresh.
    fn route_set(&mut self, target: &ResolveTarget, set: &RouteSet, ctx: &mut Context<Self>) {
        if self.servers.resolved(target, set) {
            self.apply_routes(ctx);
        }
    }

    /// Hands the combined route list of every target to the registration.
    fn apply_routes(&mut self, ctx: &mut Context<Self>) {
        let routes = self.servers.routes();
        if routes.is_empty() {
            return;
        }
        let now = now();
        let ttl = self
            .servers
            .expires()
            .map(|e| e.saturating_duration_since(now));
        self.machine.handle_routes(now, routes, ttl);
        self.drain(ctx);
    }

    /// Runs every output of every machine until none is left (one output
    /// may cause others: a registration event moves subscriptions, a line
    /// seize places a call, a call ending releases failback), then sleeps
    /// until the earliest deadline of any of them.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        loop {
            let mut progressed = self.drain_registration(ctx);
            progressed |= self.drain_calls(ctx);
            progressed |= self.drain_subscriptions(ctx);
            progressed |= self.report_calls_active();
            if !progressed {
                break;
            }
        }
        self.calls.reap();
        self.forget_dead_dialogs();
        self.run_retries(ctx);
        self.update_media_clock(ctx);
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let deadline = [
            self.machine.poll_timeout(),
            self.calls.poll_timeout(),
            self.subs.iter().filter_map(|s| s.poll_timeout()).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(deadline) = deadline {
            let delay = deadline.saturating_duration_since(now());
            self.timer = Some(ctx.run_later(delay, |act, ctx| {
                act.timer = None;
                act.handle_timeout(now());
                act.drain(ctx);
            }));
        }
        if self.machine.phase() == Phase::Stopped {
            for waiter in self.stop_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Starts the media clock when a call has RTP to send, stops it when
    /// none has: no timer for a line without media.
    fn update_media_clock(&mut self, ctx: &mut Context<Self>) {
        match (self.calls.wants_media(), self.media_timer.is_some()) {
            (true, false) => {
                self.media_timer = Some(ctx.run_interval(media::PTIME, |act, _| {
                    act.calls.send_media();
                }));
            }
            (false, true) => {
                if let Some(t) = self.media_timer.take() {
                    ctx.cancel_future(t);
                }
            }
            _ => {}
        }
    }

    /// Runs the timers of every machine that are due at `now`.
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
    }

    /// The registration's outputs; its events drive the subscriptions.
    fn drain_registration(&mut self, ctx: &mut Context<Self>) -> bool {
        let mut progressed = false;
        while let Some(output) = self.machine.poll_output() {
            progressed = true;
            match output {
                Output::Send(send) => self.send_register(send, ctx),
                slot @ (Output::RequestSlot(_) | Output::SlotDone) => self.pace(slot, ctx),
                Output::Event(event) => {
                    match &event.kind {
                        EventKind::Registered { .. } => {
                            if let Some(route) = &event.route {
                                self.release_flows_except(Some(FlowKey::of(route)));
                                self.registered_on(route);
                            }
                        }
                        EventKind::SubscriptionsInvalidated { reason } => {
                            self.invalidate_subscriptions(*reason)
                        }
                        EventKind::RegistrationFailed { status, reason } => {
                            self.log_failure(*status, *reason, event.route.as_ref())
                        }
                        EventKind::Failback { .. } => {
                            if let Some(group) = self.group() {
                                group.do_send(LineFailedBack {
                                    line: self.setup.index,
                                });
                            }
                        }
                        _ => {}
                    }
                    self.emit(event);
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

    /// A denial the operator must act on (wrong password, a challenge the
    /// line cannot answer, a registrar that loops) is a WARN on the log,
    /// once per attempt, so once per back-off round. Never the password.
    fn log_failure(&self, status: Option<u16>, reason: FailReason, route: Option<&Route>) {
        let route = route.map(|r| r.to_string()).unwrap_or_default();
        let log = &self.services.log;
        let line = self.setup.index;
        let user = self.setup.digest.username();
        match reason {
            FailReason::CredentialsRejected => slog::warn!(log,
                "registration refused: the registrar rejected the credentials (check reg.x.auth.userId and reg.x.auth.password)";
                "line" => line, "user" => user, "status" => status, "route" => route),
            FailReason::RoutesExhausted | FailReason::Denied => slog::info!(log,
                "registration failed"; "line" => line, "reason" => reason.as_str(),
                "status" => status, "route" => route),
            _ => slog::warn!(log, "registration failed";
                "line" => line, "reason" => reason.as_str(), "status" => status, "route" => route),
        }
    }

    fn emit(&self, event: impl Into<crate::events::LineEventBody>) {
        self.services.events.emit(LineEvent {
            at: now(),
            line: self.setup.index,
            event: event.into(),
        });
    }

    /// Tells the registration (or, with enhanced failover, the coordinator)
    /// when the line's calls start or all end. Returns whether it did.
    fn report_calls_active(&mut self) -> bool {
        let active = self.external_calls || self.calls.any_active();
        if active == self.reported_active {
            return false;
        }
        self.reported_active = active;
        match self.group() {
            // The coordinator answers with the fleet-wide state (Group).
            Some(group) => group.do_send(LineCalls {
                line: self.setup.index,
                active,
            }),
            None => self.machine.handle_calls_active(now(), active),
        }
        true
    }

    fn send_register(&mut self, send: SendRegister, ctx: &mut Context<Self>) {
        let route = send.route.clone();
        self.with_flow(&route, ctx, move |act, conn, local, ctx| {
            act.transmit(&send, conn, local, ctx)
        });
    }

    /// Runs `then` with the connection and local address of `route`'s flow:
    /// at once when the line holds it, otherwise once it is acquired (and
    /// remembered). A flow that cannot be opened reports itself on the line's
    /// endpoints as a `RouteFailure` (the connection tells every user), so
    /// here it is only logged.
    pub(super) fn with_flow<F>(&mut self, route: &Route, ctx: &mut Context<Self>, then: F)
    where
        F: FnOnce(&mut Self, Addr<Connection>, SocketAddr, &mut Context<Self>) + 'static,
    {
        let key = FlowKey::of(route);
        if let Some(Flow {
            conn,
            local: Some(local),
        }) = self.flows.get(&key)
        {
            let (conn, local) = (conn.clone(), *local);
            then(self, conn, local, ctx);
            return;
        }
        let route = route.clone();
        let fut = self.acquire(&route, ctx);
        ctx.spawn(
            fut.into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok((conn, local)) => {
                        act.flows.insert(
                            key,
                            Flow {
                                conn: conn.clone(),
                                local: Some(local),
                            },
                        );
                        then(act, conn, local, ctx);
                    }
                    Err(reason) => slog::debug!(act.services.log, "flow not usable";
                "line" => act.setup.index, "route" => route.to_string(), "reason" => reason),
                }),
        );
    }

    /// Acquires the connection for `route` and waits until its flow is open.
    fn acquire(
        &mut self,
        route: &Route,
        ctx: &mut Context<Self>,
    ) -> impl std::future::Future<Output = Result<(Addr<Connection>, SocketAddr), String>> {
        let key = FlowKey::of(route);
        let existing = self.flows.get(&key).map(|f| f.conn.clone());
        let acquire = Acquire {
            route: route.clone(),
            line: self.line_id(),
            contact_user: Some(self.requests.identity().user().to_string()),
            endpoints: LineEndpoints::of(&ctx.address()),
        };
        let manager = self.services.flows.clone();
        async move {
            let conn = match existing {
                Some(conn) => conn,
                None => manager.send(acquire).await.map_err(|e| e.to_string())?,
            };
            let local = conn
                .send(LocalAddr)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok((conn, local))
        }
    }

    /// Sends `send` on `conn`. A REGISTER that cannot be built is reported
    /// to the machine, which ends the attempt at once: nothing would ever
    /// answer a request that never left.
    fn transmit(
        &mut self,
        send: &SendRegister,
        conn: Addr<Connection>,
        local: SocketAddr,
        ctx: &mut Context<Self>,
    ) {
        let built = self
            .requests
            .build_request(send, local)
            .map(SipMessage::Request)
            .map_err(|e| e.to_string());
        match built {
            Ok(message) => conn.do_send(SendMessage {
                line: self.line_id(),
                message,
            }),
            Err(error) => {
                slog::warn!(self.services.log, "cannot build REGISTER";
                    "line" => self.setup.index, "error" => error);
                self.machine.handle_send_failed(now(), send.transaction);
                self.drain(ctx);
            }
        }
    }

    /// Lets go of every flow but `keep` and those the line's calls still
    /// use: flows are shared, so the manager closes one only when its last
    /// line lets go.
    fn release_flows_except(&mut self, keep: Option<FlowKey>) {
        let line = self.line_id();
        let in_use = self.calls.flows_in_use();
        let drop_keys: Vec<FlowKey> = self
            .flows
            .keys()
            .filter(|k| Some(**k) != keep && !in_use.contains(k))
            .copied()
            .collect();
        for key in drop_keys {
            self.flows.remove(&key);
            self.services.flows.do_send(Release { key, line });
        }
    }

    /// A connection that failed or was lost is forgotten, so the next send
    /// opens a fresh flow.
    fn forget_flow(&mut self, key: FlowKey) {
        if let Some(flow) = self.flows.remove(&key) {
            flow.conn.do_send(Detach {
                line: self.line_id(),
            });
        }
    }

    fn route_of(&self, key: FlowKey) -> Option<Route> {
        self.machine
            .routes()
            .iter()
            .find(|r| FlowKey::of(r) == key)
            .cloned()
    }
}

impl Actor for Line {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(group) = self.group() {
            group.do_send(Join {
                line: self.setup.index,
                recipient: ctx.address().recipient(),
            });
        }
        let mut subscribed: Vec<&ResolveTarget> = Vec::new();
        for target in &self.setup.targets {
            if subscribed.contains(&target) {
                continue;
            }
            subscribed.push(target);
            self.services.resolver.do_send(Subscribe {
                target: Some(target.clone()),
                recipient: ctx.address().recipient(),
            });
            self.services.resolver.do_send(SubscribeReports {
                target: Some(target.clone()),
                recipient: ctx.address().recipient(),
            });
        }
        self.machine.start(now());
        self.drain(ctx);
        self.resolve(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(group) = self.group() {
            group.do_send(Leave {
                line: self.setup.index,
            });
        }
        self.release_flows_except(None);
        self.leave_pacer();
    }
}

impl Handler<Inbound> for Line {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Self::Context) {
        match &msg.message {
            SipMessage::Response(response) => {
                let is_register = response
                    .headers()
                    .cseq()
                    .is_ok_and(|c| c.method == Method::Register);
                if !is_register {
                    self.handle_dialog_response(&msg.message);
                    self.drain(ctx);
                    return;
                }
                match self.requests.read_response(response) {
                    Ok(read) => {
                        self.machine.handle_response(now(), read.response);
                        self.drain(ctx);
                    }
                    Err(e) => slog::warn!(self.services.log, "REGISTER response dropped";
                        "line" => self.setup.index, "error" => e.to_string()),
                }
            }
            SipMessage::Request(_) => {
                self.handle_request(msg.flow, msg.message);
                self.drain(ctx);
            }
        }
    }
}

impl Handler<RouteFailure> for Line {
    type Result = ();

    fn handle(&mut self, msg: RouteFailure, ctx: &mut Self::Context) {
        self.forget_flow(msg.flow);
        let Some(route) = self.route_of(msg.flow) else {
            return;
        };
        let error = registration_error_of_route_failure(&msg.kind);
        if let TransportError::Tls { detail } = &error {
            // A certificate problem needs an operator, not patience.
            slog::warn!(self.services.log, "route failed: TLS handshake";
                "line" => self.setup.index, "route" => route.to_string(), "detail" => detail);
        } else {
            slog::info!(self.services.log, "route failed";
                "line" => self.setup.index, "route" => route.to_string(), "kind" => msg.kind.to_string());
        }
        let now = now();
        self.machine.handle_transport_error(now, &route, error);
        self.calls.handle_transport_error(now, &route);
        self.drain(ctx);
    }
}

impl Handler<FlowLost> for Line {
    type Result = ();

    fn handle(&mut self, msg: FlowLost, ctx: &mut Self::Context) {
        self.forget_flow(msg.flow);
        let Some(error) = registration_error_of_flow_loss(&msg.kind) else {
            return;
        };
        let Some(route) = self.route_of(msg.flow) else {
            return;
        };
        slog::info!(self.services.log, "flow lost";
            "line" => self.setup.index, "route" => route.to_string(), "kind" => msg.kind.to_string());
        let now = now();
        self.machine.handle_transport_error(now, &route, error);
        self.calls.handle_transport_error(now, &route);
        self.drain(ctx);
    }
}

impl Handler<RouteSetChanged> for Line {
    type Result = ();

    fn handle(&mut self, msg: RouteSetChanged, ctx: &mut Self::Context) {
        if self.servers.contains(&msg.target) {
            self.route_set(&msg.target, &msg.current, ctx);
        }
    }
}

/// DNS trouble becomes the line's `dns_failed` / `dns_restored` events; a
/// route set served from a restored cache is applied, so the line's routes
/// say `source: restored`.
impl Handler<DnsReport> for Line {
    type Result = ();

    fn handle(&mut self, msg: DnsReport, ctx: &mut Self::Context) {
        if !self.servers.contains(&msg.target) {
            return;
        }
        let call_id = self.machine.call_id().to_string();
        for note in &msg.notes {
            let (kind, error) = match note {
                DnsNote::Failed { error, .. } => (DnsEventKind::Failed, error),
                DnsNote::Restored { error, ttl, .. } => {
                    (DnsEventKind::Restored { ttl: *ttl }, error)
                }
            };
            let query = note.query();
            slog::warn!(self.services.log, "DNS query failed";
                "line" => self.setup.index, "name" => &query.name,
                "type" => query.rtype.as_str(), "error" => error.to_string(),
                "restored" => matches!(kind, DnsEventKind::Restored { .. }));
            self.emit(DnsEvent {
                kind,
                name: query.name.clone(),
                query_type: query.rtype.as_str(),
                error: error.to_string(),
                call_id: call_id.clone(),
            });
        }
        if let Some(error) = &msg.failed {
            self.emit(DnsEvent {
                kind: DnsEventKind::Failed,
                name: msg.target.name.clone(),
                query_type: "routes",
                error: error.to_string(),
                call_id,
            });
        }
        let restored = msg.current.as_ref().filter(|set| {
            set.entries
                .iter()
                .any(|e| e.route.source == RouteSource::Restored)
        });
        if let Some(set) = restored {
            self.route_set(&msg.target, set, ctx);
        }
    }
}

impl Handler<CallsActive> for Line {
    type Result = ();

    fn handle(&mut self, msg: CallsActive, ctx: &mut Self::Context) {
        self.external_calls = msg.0;
        self.drain(ctx);
    }
}

impl Handler<Group> for Line {
    type Result = ();

    fn handle(&mut self, Group(command): Group, ctx: &mut Self::Context) {
        match command {
            GroupCommand::CallsActive { any_active, .. } => {
                self.machine.handle_calls_active(now(), any_active)
            }
            GroupCommand::Failback { .. } => self.machine.request_failback(now()),
        }
        self.drain(ctx);
    }
}

impl Handler<GetStatus> for Line {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(LineStatus {
            index: self.setup.index,
            phase: self.machine.phase(),
            registered_route: self.machine.registered_route().cloned(),
            primary: self.machine.primary().cloned(),
            call_id: self.machine.call_id().to_string(),
            routes: self.machine.routes().to_vec(),
            calls: self.calls.info(),
        })
    }
}

impl Handler<Shutdown> for Line {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.stop_waiters.push(tx);
        // Calls end and subscriptions are withdrawn before the binding goes.
        self.calls.hangup_all(now());
        for sub in &mut self.subs {
            sub.unsubscribe(now());
        }
        self.machine.shutdown(now());
        self.drain(ctx);
        let wait = async move {
            let _ = tokio::time::timeout(msg.timeout, rx).await;
        };
        Box::pin(wait.into_actor(self).map(|_, act, ctx| {
            // An un-REGISTER still unanswered is reported as unconfirmed.
            act.machine.shutdown_timed_out(now());
            act.drain(ctx);
            ctx.stop()
        }))
    }
}
