//! The line actor: drives one sans-IO [`sipfleet_protocol::line::Line`]
//! (one `reg.x`) with real time, real flows and real DNS. Every SIP and
//! guide rule is in the protocol line; this actor only
//!
//! * subscribes to the [`Resolver`] for the line's targets and turns its
//!   answers and reports into inputs; resolves when the line asks;
//! * acquires the flows the line asks for from the [`FlowManager`] (flows
//!   are shared by all lines on a route), keeps their connections, and
//!   carries messages, dialog announcements and releases to them;
//! * turns what connections report (inbound messages, route failures, lost
//!   flows) into inputs;
//! * keeps one timer, re-armed only when the line's deadline moves;
//! * stamps events with the time and hands them to the fleet's
//!   [`EventSink`]; logs diagnostics at the level they deserve;
//! * carries the coordinator's messages (enhanced failover) both ways;
//! * owns the media sockets ([`MediaSockets`]) the line binds through
//!   [`MediaPorts`](sipfleet_protocol::line::MediaPorts).
//!
//! Time is read through `tokio::time::Instant::now()` so that a paused
//! tokio clock drives the actor in tests.

use std::collections::HashMap;

use actix::prelude::*;
use sipfleet_protocol::line::{self as proto, Input, Output};
use sipfleet_protocol::resources::SocketBudget;
use sipfleet_protocol::route::{FlowKey, Route};
use sipfleet_transport::media::MediaSockets;
use slog::Logger;
use tokio::sync::oneshot;

use crate::connection::{
    Acquire, Connection, Detach, FlowManager, FlowNotice, LineEndpoints, LocalAddr, RegisterDialog,
    Release, SendMessage, TransactionDone, UnregisterDialog,
};
use crate::coordinator::{FailbackCoordinator, Group, Join, Leave, LineCalls, LineFailedBack};
use crate::events::{EventSink, LineEvent, LineEventBody};
use crate::now;
use crate::pacer::{AskSlot, FleetPacer, ReleaseSlot, SlotGranted};
use crate::resolver::{DnsReport, Resolve, Resolver, RouteSetChanged, Subscribe, SubscribeReports};

mod commands;
mod log;

pub use commands::{Answer, Emergency, Hangup, Hold, OnCall, PlaceCall, RegisterNow, Resume};

pub use proto::{
    BindError, CallAction, CallCommandError, CallInfo, LineFeatures, LineSetup, LineStatus,
};

/// The services a line talks to, shared by the fleet.
#[derive(Clone)]
pub struct LineServices {
    /// The fleet's resolver.
    pub resolver: Addr<Resolver>,
    /// The fleet's flow table.
    pub flows: Addr<FlowManager>,
    /// Where the line's events go.
    pub events: EventSink,
    /// The fleet's diagnostics.
    pub log: Logger,
    /// The fleet's coordinator, for lines with enhanced failover.
    pub coordinator: Option<Addr<FailbackCoordinator>>,
    /// The fleet's media sockets (`sipfleet.sockets.max`): every RTP bind
    /// takes a permit here.
    pub sockets: SocketBudget,
    /// The fleet's REGISTER pacer (`sipfleet.register.*`), when it paces.
    pub pacer: Option<Addr<FleetPacer>>,
}

/// Un-REGISTER and stop. Resolves when the un-REGISTER got its answer or
/// failed, or after `timeout`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// How long the un-REGISTER may take before the line stops anyway.
    pub timeout: std::time::Duration,
}

/// A snapshot of the line for status displays and the control API.
#[derive(Message)]
#[rtype(result = "LineStatus")]
pub struct GetStatus;

/// Whether a call the line does not run itself (an embedding
/// application's) is up on the line. The registration (or, with enhanced
/// failover, the coordinator) hears whether this or any of the line's own
/// calls is active: a line in a call does not fail back (with enhanced
/// failover, no line of the fleet does).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CallsActive(pub bool);

/// The actor of one line; see the module docs.
pub struct Line {
    line: proto::Line,
    services: LineServices,
    /// Connections of the flows the line holds.
    conns: HashMap<FlowKey, Addr<Connection>>,
    sockets: MediaSockets,
    timer: Option<SpawnHandle>,
    stop_waiters: Vec<oneshot::Sender<()>>,
}

impl Line {
    /// A line for `setup` on the fleet's `services`; it starts (resolves,
    /// registers) when the actor starts.
    pub fn new(setup: LineSetup, services: LineServices) -> Self {
        let sockets = MediaSockets::new(services.sockets.clone());
        let grouped = services.coordinator.is_some();
        Line {
            line: proto::Line::new(setup, grouped, Box::new(sockets.clone())),
            services,
            conns: HashMap::new(),
            sockets,
            timer: None,
            stop_waiters: Vec::new(),
        }
    }

    fn index(&self) -> u32 {
        self.line.setup().index
    }

    fn line_id(&self) -> u64 {
        self.index().into()
    }

    /// The coordinator, when this line takes part in enhanced failover.
    fn group(&self) -> Option<&Addr<FailbackCoordinator>> {
        self.services
            .coordinator
            .as_ref()
            .filter(|_| self.line.is_grouped())
    }

    fn input(&mut self, input: Input, ctx: &mut Context<Self>) {
        self.line.handle_input(now(), input);
        self.drain(ctx);
    }

    /// Carries out every output of the line.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        while let Some(output) = self.line.poll_output() {
            match output {
                Output::OpenFlow { route } => self.open_flow(route, ctx),
                Output::Transmit { flow, message } => {
                    if let Some(conn) = self.conns.get(&flow) {
                        conn.do_send(SendMessage {
                            line: self.line_id(),
                            message,
                        });
                    }
                }
                Output::AnnounceDialog {
                    flow,
                    call_id,
                    local_tag,
                } => {
                    if let Some(conn) = self.conns.get(&flow) {
                        conn.do_send(RegisterDialog {
                            line: self.line_id(),
                            call_id,
                            local_tag,
                        });
                    }
                }
                Output::ForgetDialog {
                    flow,
                    call_id,
                    local_tag,
                } => {
                    if let Some(conn) = self.conns.get(&flow) {
                        conn.do_send(UnregisterDialog { call_id, local_tag });
                    }
                }
                Output::TransactionDone { flow, branch } => {
                    if let Some(conn) = self.conns.get(&flow) {
                        conn.do_send(TransactionDone { branch });
                    }
                }
                Output::ReleaseFlow { flow } => {
                    self.conns.remove(&flow);
                    self.services.flows.do_send(Release {
                        key: flow,
                        line: self.line_id(),
                    });
                }
                Output::DetachFlow { flow } => {
                    if let Some(conn) = self.conns.remove(&flow) {
                        conn.do_send(Detach {
                            line: self.line_id(),
                        });
                    }
                }
                Output::Resolve { index, target } => {
                    let request = self.services.resolver.send(Resolve { target });
                    ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
                        let input = match result {
                            Ok(Ok(set)) => Input::Resolved { index, set },
                            Ok(Err(e)) => Input::ResolveFailed {
                                index,
                                error: e.to_string(),
                            },
                            Err(e) => Input::ResolveFailed {
                                index,
                                error: e.to_string(),
                            },
                        };
                        act.input(input, ctx);
                    }));
                }
                Output::Media {
                    call_id,
                    to,
                    packet,
                } => self.sockets.send(&call_id, to, &packet),
                Output::Event(event) => self.emit(event),
                Output::Diagnostic(d) => log::diagnostic(
                    &self.services.log,
                    self.index(),
                    self.line.setup().digest.username(),
                    &d,
                ),
                Output::GroupCallsActive(active) => {
                    if let Some(group) = self.group() {
                        // The coordinator answers with the fleet-wide state.
                        group.do_send(LineCalls {
                            line: self.index(),
                            active,
                        });
                    }
                }
                Output::RequestSlot { flow, ticket } => match &self.services.pacer {
                    Some(pacer) => pacer.do_send(AskSlot {
                        line: self.index(),
                        flow,
                        ticket,
                        recipient: ctx.address().recipient(),
                    }),
                    // A paced line without a pacer (built by hand): nothing
                    // to pace it against.
                    None => self.line.handle_input(now(), Input::SlotGranted { ticket }),
                },
                Output::SlotDone => {
                    if let Some(pacer) = &self.services.pacer {
                        pacer.do_send(ReleaseSlot { line: self.index() });
                    }
                }
                Output::GroupFailedBack => {
                    if let Some(group) = self.group() {
                        group.do_send(LineFailedBack { line: self.index() });
                    }
                }
                Output::Timeout(at) => {
                    if let Some(timer) = self.timer.take() {
                        ctx.cancel_future(timer);
                    }
                    let delay = at.saturating_duration_since(now());
                    self.timer = Some(ctx.run_later(delay, |act, ctx| {
                        act.timer = None;
                        act.input(Input::Timeout, ctx);
                    }));
                }
            }
        }
        if self.line.is_stopped() {
            for waiter in self.stop_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Acquires the connection for `route`, waits until its flow is open
    /// and tells the line. A flow that cannot be opened also reports itself
    /// on the line's endpoints as a `RouteFailure` (the connection tells
    /// every user).
    fn open_flow(&mut self, route: Route, ctx: &mut Context<Self>) {
        let flow = FlowKey::of(&route);
        let existing = self.conns.get(&flow).cloned();
        let acquire = Acquire {
            route,
            line: self.line_id(),
            contact_user: Some(self.line.setup().identity.user().to_string()),
            endpoints: LineEndpoints::of(&ctx.address()),
        };
        let manager = self.services.flows.clone();
        let opened = async move {
            let conn = match existing {
                Some(conn) => conn,
                None => manager.send(acquire).await.map_err(|e| e.to_string())?,
            };
            let local = conn
                .send(LocalAddr)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((conn, local))
        };
        ctx.spawn(opened.into_actor(self).map(move |result, act, ctx| {
            let input = match result {
                Ok((conn, local)) => {
                    act.conns.insert(flow, conn);
                    Input::FlowOpened { flow, local }
                }
                Err(reason) => Input::FlowUnavailable { flow, reason },
            };
            act.input(input, ctx);
        }));
    }

    fn emit(&self, event: LineEventBody) {
        if let LineEventBody::Dns(e) = &event {
            if e.query_type != "routes" {
                slog::warn!(self.services.log, "DNS query failed";
                    "line" => self.index(), "name" => &e.name, "type" => e.query_type,
                    "error" => &e.error, "restored" => e.kind != crate::events::DnsEventKind::Failed);
            }
        }
        self.services.events.emit(LineEvent {
            at: now(),
            line: self.index(),
            event,
        });
    }
}

impl Actor for Line {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(group) = self.group() {
            group.do_send(Join {
                line: self.index(),
                recipient: ctx.address().recipient(),
            });
        }
        let mut subscribed = Vec::new();
        for target in &self.line.setup().targets {
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
        self.line.start(now());
        self.drain(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(group) = self.group() {
            group.do_send(Leave { line: self.index() });
        }
        // Whatever the line held or asked for at the pacer goes back.
        if let Some(pacer) = &self.services.pacer {
            pacer.do_send(ReleaseSlot { line: self.index() });
        }
        for flow in self.line.flows().collect::<Vec<_>>() {
            self.services.flows.do_send(Release {
                key: flow,
                line: self.line_id(),
            });
        }
    }
}

impl Handler<FlowNotice> for Line {
    type Result = ();

    fn handle(&mut self, msg: FlowNotice, ctx: &mut Self::Context) {
        let input = match msg {
            FlowNotice::Inbound(m) => Input::Received {
                flow: m.flow,
                message: m.message,
            },
            FlowNotice::RouteFailure(m) => Input::RouteFailed {
                flow: m.flow,
                kind: m.kind,
            },
            FlowNotice::FlowLost(m) => Input::FlowLost {
                flow: m.flow,
                kind: m.kind,
            },
        };
        self.input(input, ctx);
    }
}

impl Handler<RouteSetChanged> for Line {
    type Result = ();

    fn handle(&mut self, msg: RouteSetChanged, ctx: &mut Self::Context) {
        self.input(
            Input::RouteSetChanged {
                target: msg.target,
                set: msg.current,
            },
            ctx,
        );
    }
}

/// DNS trouble becomes the line's `dns_failed` / `dns_restored` events.
impl Handler<DnsReport> for Line {
    type Result = ();

    fn handle(&mut self, msg: DnsReport, ctx: &mut Self::Context) {
        self.input(
            Input::DnsReport {
                target: msg.target,
                notes: msg.notes,
                failed: msg.failed.map(|e| e.to_string()),
                current: msg.current,
            },
            ctx,
        );
    }
}

impl Handler<SlotGranted> for Line {
    type Result = ();

    fn handle(&mut self, msg: SlotGranted, ctx: &mut Self::Context) {
        self.input(Input::SlotGranted { ticket: msg.ticket }, ctx);
    }
}

impl Handler<CallsActive> for Line {
    type Result = ();

    fn handle(&mut self, msg: CallsActive, ctx: &mut Self::Context) {
        self.input(Input::ExternalCalls(msg.0), ctx);
    }
}

impl Handler<Group> for Line {
    type Result = ();

    fn handle(&mut self, Group(command): Group, ctx: &mut Self::Context) {
        self.input(Input::Group(command), ctx);
    }
}

impl Handler<GetStatus> for Line {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.line.status())
    }
}

impl Handler<Shutdown> for Line {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.stop_waiters.push(tx);
        self.input(Input::Shutdown, ctx);
        let wait = async move {
            let _ = tokio::time::timeout(msg.timeout, rx).await;
        };
        Box::pin(wait.into_actor(self).map(|_, act, ctx| {
            // An un-REGISTER still unanswered is reported as unconfirmed.
            act.input(Input::ShutdownTimedOut, ctx);
            ctx.stop()
        }))
    }
}
