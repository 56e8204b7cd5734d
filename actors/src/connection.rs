//! Connection actors: one per flow, shared by every line on that route, and
//! the [`FlowManager`] that creates them on demand and closes them when no line
//! uses them any more.
//!
//! A line [`Acquire`]s a flow from the manager (which attaches it to the
//! connection), sends through the returned connection with [`SendMessage`],
//! and receives typed messages on the [`LineEndpoints`] it gave:
//!
//! * [`Inbound`] — a message the flow's router assigned to this line (Via
//!   branch of its requests, its dialogs, the user part of its Contact).
//!   Unroutable requests are answered by the connection itself (481, 404).
//! * [`RouteFailure`] — ICMP error, refused connect, connect timeout, TLS
//!   handshake failure: the guide's triggers for an immediate failover.
//! * [`FlowLost`] — FIN, RST, keep-alive loss, idle close, garbage on the
//!   stream: a registration loss with back-off, not a failover.
//!
//! Failures go to every line on the flow: each line knows whether it had a
//! request outstanding there. After a route failure or loss the connection
//! stays in that terminal state (late-attaching lines are told at once) until
//! its lines release it; the manager forgets it immediately, so the next
//! `Acquire` for the same route opens a fresh flow.
//!
//! ```text
//!  line: OpenFlow{route}                      Release (last line) / Close
//!        |                                         ^
//!        v                                         |
//!   Acquire --> [Connecting] --connect/TLS ok--> [Open] --FIN/RST/keep-alive
//!   (manager      |   (UDP: open at once,          |  ^        lost/garbage--> [Lost]
//!    creates      |    one shared SIP port)        |  |                          |
//!    or joins)    |                         Inbound/SendMessage               FlowLost
//!                 |                         (router: Via branch,             to every
//!                 +--ICMP/refused/timeout/   dialog, Contact user)           line; manager
//!                    TLS handshake---------> [Failed] --RouteFailure to      forgets it
//!                                                        every line; manager forgets it
//!  A line that Detaches or Releases a Failed/Lost flow lets it end; the
//!  next OpenFlow for the route opens a fresh one.
//! ```
//!
//! Time stamps come from `tokio::time::Instant::now()`, so a paused tokio
//! clock drives the tests.

use crate::trace::{Direction, Trace, TraceRecord};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use actix::prelude::*;
use bytes::Bytes;
use sipfleet_protocol::message::{Message as SipMessage, Method};
use sipfleet_protocol::route::{Route, Transport};
use sipfleet_protocol::router::{Routed, Router};
use sipfleet_transport::error::{FlowLostKind, RouteFailureKind};
use sipfleet_transport::flow::{Flow, FlowConfig, FlowEvent, FlowKey, FlowSender};
use tokio::time::Instant;

/// Identifies a line (a `reg.x`) among the users of a flow.
pub type LineId = u64;

// ---------------------------------------------------------------------------
// Messages to lines

/// A SIP message from the far end, routed to the line that owns it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Inbound {
    /// The flow it arrived on.
    pub flow: FlowKey,
    /// The message.
    pub message: SipMessage,
    /// When it arrived.
    pub at: Instant,
}

/// The route of this flow failed: fail over now.
#[derive(Message, Clone, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RouteFailure {
    /// The flow whose route failed.
    pub flow: FlowKey,
    /// How it failed.
    pub kind: RouteFailureKind,
    /// When.
    pub at: Instant,
}

/// The flow went away after it was up: registration loss with back-off.
#[derive(Message, Clone, Debug, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct FlowLost {
    /// The flow that went away.
    pub flow: FlowKey,
    /// How it went.
    pub kind: FlowLostKind,
    /// When.
    pub at: Instant,
}

/// What a flow tells one of its lines, as one message: a connection keeps
/// one recipient per line (not three), which counts at 10,000 lines a flow.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum FlowNotice {
    /// A message for the line.
    Inbound(Inbound),
    /// The flow's route failed.
    RouteFailure(RouteFailure),
    /// The flow was lost after it was up.
    FlowLost(FlowLost),
}

/// Where a line receives what its flows report.
#[derive(Clone, Debug)]
pub struct LineEndpoints(Recipient<FlowNotice>);

impl LineEndpoints {
    /// The endpoints of the actor at `addr`.
    pub fn of<A>(addr: &Addr<A>) -> Self
    where
        A: Actor + Handler<FlowNotice>,
        A::Context: actix::dev::ToEnvelope<A, FlowNotice>,
    {
        LineEndpoints(addr.clone().recipient())
    }

    fn inbound(&self, msg: Inbound) {
        self.0.do_send(FlowNotice::Inbound(msg));
    }

    fn route_failure(&self, msg: RouteFailure) {
        self.0.do_send(FlowNotice::RouteFailure(msg));
    }

    fn flow_lost(&self, msg: FlowLost) {
        self.0.do_send(FlowNotice::FlowLost(msg));
    }
}

// ---------------------------------------------------------------------------
// Messages to a connection

/// Why a message could not be sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("route failed: {0}")]
    /// The route failed before or while sending.
    RouteFailed(RouteFailureKind),
    #[error("flow lost: {0}")]
    /// The flow was lost.
    Lost(FlowLostKind),
    #[error("flow closed")]
    /// The flow was closed from our side.
    Closed,
}

/// Adds a line to the flow's users. `contact_user` is the user part of the
/// line's Contact: out-of-dialog requests for it are delivered to the line.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Attach {
    /// The line.
    pub line: LineId,
    /// The user part of the line's Contact.
    pub contact_user: Option<String>,
    /// Where the line hears what the flow reports.
    pub endpoints: LineEndpoints,
}

/// Removes a line and everything it registered in the router.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Detach {
    /// The line.
    pub line: LineId,
}

/// Sends a message over the flow. For a request, responses with its top Via
/// branch are routed back to `line` (non-INVITE until the final response,
/// INVITE until [`TransactionDone`]). Answers the flow's local address.
#[derive(Message, Debug)]
#[rtype(result = "Result<SocketAddr, ConnectionError>")]
pub struct SendMessage {
    /// The line that sends it (responses go back to it).
    pub line: LineId,
    /// The message.
    pub message: SipMessage,
}

/// The flow's local address (for Via sent-by and Contact), once it is up.
#[derive(Message, Debug)]
#[rtype(result = "Result<SocketAddr, ConnectionError>")]
pub struct LocalAddr;

/// Routes in-dialog requests with this Call-ID and our tag to `line`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RegisterDialog {
    /// The line that owns the dialog.
    pub line: LineId,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// Our tag in the dialog.
    pub local_tag: String,
}

#[derive(Message, Debug)]
#[rtype(result = "()")]
/// Stops routing the dialog's in-dialog requests (it ended).
pub struct UnregisterDialog {
    /// The dialog's Call-ID.
    pub call_id: String,
    /// Our tag in the dialog.
    pub local_tag: String,
}

/// The client transaction with this branch is over.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct TransactionDone {
    /// The transaction's top Via branch.
    pub branch: String,
}

/// Closes the flow from our side; no `FlowLost` follows.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Close;

/// A connection ended (route failure or loss): its manager forgets it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ConnectionEnded {
    /// The flow.
    pub key: FlowKey,
    /// The connection's id (a newer connection for the same key stays).
    pub id: u64,
}

/// A line detached from a connection directly: its manager updates the count.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct LineLeft {
    /// The flow.
    pub key: FlowKey,
    /// The connection's id.
    pub id: u64,
    /// The line that left.
    pub line: LineId,
}

/// An event from the flow's task.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct FromFlow(FlowEvent);

// ---------------------------------------------------------------------------
// Connection

enum State {
    Connecting,
    Up(FlowSender),
    Failed(RouteFailureKind),
    Lost(FlowLostKind),
}

/// One flow and its users. See the module docs.
pub struct Connection {
    id: u64,
    route: Route,
    config: FlowConfig,
    state: State,
    users: HashMap<LineId, LineEndpoints>,
    router: Router<LineId>,
    manager: Option<Addr<FlowManager>>,
    /// Messages nobody takes (unparseable, stray, answered here) are logged
    /// at debug: they are what a trace of a misbehaving peer is made of.
    log: slog::Logger,
    /// The message trace (`--trace`), if one is written.
    trace: Option<Trace>,
}

impl Connection {
    /// A connection that opens a flow to `route` when started. `manager`, if
    /// any, is told when the connection ends by failure or loss and when a
    /// line detaches; without one, the connection stops when its last line
    /// detaches.
    pub fn new(
        id: u64,
        route: Route,
        config: FlowConfig,
        manager: Option<Addr<FlowManager>>,
    ) -> Self {
        Connection {
            id,
            route,
            config,
            state: State::Connecting,
            log: slog::Logger::root(slog::Discard, slog::o!()),
            users: HashMap::new(),
            router: Router::new(),
            manager,
            trace: None,
        }
    }

    /// Puts every message sent and received on this flow into `trace`.
    pub fn with_trace(mut self, trace: Option<Trace>) -> Self {
        self.trace = trace;
        self
    }

    fn trace(&self, direction: Direction, bytes: &Bytes) {
        let (Some(trace), State::Up(sender)) = (&self.trace, &self.state) else {
            return;
        };
        trace.record(TraceRecord {
            wall: std::time::SystemTime::now(),
            at: crate::now(),
            direction,
            transport: self.route.transport,
            local: sender.local_addr(),
            remote: self.route.addr,
            bytes: bytes.clone(),
        });
    }

    fn key(&self) -> FlowKey {
        FlowKey::of(&self.route)
    }

    fn ended(&mut self) {
        if let Some(manager) = self.manager.take() {
            manager.do_send(ConnectionEnded {
                key: self.key(),
                id: self.id,
            });
        }
    }

    fn fail(&mut self, kind: RouteFailureKind) {
        let msg = RouteFailure {
            flow: self.key(),
            kind: kind.clone(),
            at: Instant::now(),
        };
        if matches!(self.state, State::Connecting) {
            // Opening failed: every user waits for this flow.
            for user in self.users.values() {
                user.route_failure(msg.clone());
            }
        } else {
            // An ICMP error on an open UDP flow concerns the lines with a
            // request out on it; the others meet their own when they next
            // send. (Telling every line of a 10,000-line flow about every
            // ICMP error is 10,000² messages in a failover wave.)
            for line in self.router.owners_awaiting_answers() {
                if let Some(user) = self.users.get(&line) {
                    user.route_failure(msg.clone());
                }
            }
        }
        // Opening failed: the flow is unusable. (A UDP ICMP error on an open
        // flow keeps the flow: the far end may come back.)
        if matches!(self.state, State::Connecting) {
            self.state = State::Failed(kind);
            self.ended();
        }
    }

    fn lose(&mut self, kind: FlowLostKind) {
        let msg = FlowLost {
            flow: self.key(),
            kind: kind.clone(),
            at: Instant::now(),
        };
        for user in self.users.values() {
            user.flow_lost(msg.clone());
        }
        self.state = State::Lost(kind);
        self.ended();
    }

    /// Logs through `log` (the fleet's), tagged with this flow's route.
    pub fn with_log(mut self, log: &slog::Logger) -> Self {
        self.log = log.new(slog::o!("flow" => self.id, "route" => self.route.to_string()));
        self
    }

    fn inbound(&mut self, bytes: Bytes) {
        self.trace(Direction::Received, &bytes);
        let message = match SipMessage::parse(bytes) {
            Ok(message) => message,
            Err(e) => {
                // Unparseable datagram or framed message: the framing is
                // intact, so drop this one message (RFC 3261 18.3 allows
                // discarding).
                slog::debug!(self.log, "unparseable message dropped"; "error" => e.to_string());
                return;
            }
        };
        match self.router.route(&message) {
            Routed::Deliver(line) => {
                if let SipMessage::Response(response) = &message {
                    let h = response.headers();
                    let non_invite = h.cseq().is_ok_and(|c| c.method != Method::Invite);
                    if response.status().is_final() && non_invite {
                        if let Some(branch) = h.top_via().ok().and_then(|v| v.branch()) {
                            self.router.remove_transaction(branch);
                        }
                    }
                }
                if let Some(user) = self.users.get(&line) {
                    user.inbound(Inbound {
                        flow: self.key(),
                        message,
                        at: Instant::now(),
                    });
                }
            }
            Routed::Reject(answer) => {
                slog::debug!(self.log, "request no line owns answered";
                    "status" => answer.status().as_u16(), "call_id" => call_id_of(&message));
                let bytes = answer.to_bytes();
                self.trace(Direction::Sent, &bytes);
                if let State::Up(sender) = &self.state {
                    let _ = sender.send(bytes);
                }
            }
            Routed::Drop(reason) => {
                slog::debug!(self.log, "message dropped"; "reason" => ?reason,
                    "call_id" => call_id_of(&message));
            }
        }
    }

    fn not_up(&self) -> ConnectionError {
        match &self.state {
            State::Failed(kind) => ConnectionError::RouteFailed(kind.clone()),
            State::Lost(kind) => ConnectionError::Lost(kind.clone()),
            State::Connecting | State::Up(_) => ConnectionError::Closed,
        }
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let route = self.route.clone();
        let config = self.config.clone();
        let open = async move { Flow::open(&route, &config).await };
        // `wait`: messages (Attach, SendMessage) queue until the flow is open
        // or has failed, so each sees a settled state.
        ctx.wait(open.into_actor(self).map(|result, act, ctx| match result {
            Ok(flow) => {
                act.state = State::Up(flow.sender);
                let mut events = flow.events;
                let weak = ctx.address().downgrade();
                actix::spawn(async move {
                    while let Some(event) = events.recv().await {
                        let Some(addr) = weak.upgrade() else { break };
                        addr.do_send(FromFlow(event));
                    }
                });
            }
            Err(kind) => act.fail(kind),
        }));
    }
}

impl Handler<FromFlow> for Connection {
    type Result = ();

    fn handle(&mut self, FromFlow(event): FromFlow, _: &mut Self::Context) {
        match event {
            FlowEvent::Message(bytes) => self.inbound(bytes),
            FlowEvent::RouteFailure(kind) => self.fail(kind),
            FlowEvent::Lost(kind) => self.lose(kind),
        }
    }
}

impl Handler<Attach> for Connection {
    type Result = ();

    fn handle(&mut self, msg: Attach, _: &mut Self::Context) {
        let now = Instant::now();
        match &self.state {
            State::Failed(kind) => msg.endpoints.route_failure(RouteFailure {
                flow: self.key(),
                kind: kind.clone(),
                at: now,
            }),
            State::Lost(kind) => msg.endpoints.flow_lost(FlowLost {
                flow: self.key(),
                kind: kind.clone(),
                at: now,
            }),
            State::Connecting | State::Up(_) => {}
        }
        if let Some(user) = &msg.contact_user {
            self.router.add_line(user, msg.line);
        }
        self.users.insert(msg.line, msg.endpoints);
    }
}

impl Handler<Detach> for Connection {
    type Result = ();

    fn handle(&mut self, msg: Detach, ctx: &mut Self::Context) {
        self.users.remove(&msg.line);
        self.router.remove_owner(msg.line);
        match &self.manager {
            // The manager keeps the count and decides when to close, so a
            // line may leave through `Release` or straight through `Detach`.
            Some(manager) => manager.do_send(LineLeft {
                key: self.key(),
                id: self.id,
                line: msg.line,
            }),
            None if self.users.is_empty() => ctx.stop(),
            None => {}
        }
        if self.users.is_empty() && !matches!(self.state, State::Up(_)) {
            ctx.stop();
        }
    }
}

impl Handler<SendMessage> for Connection {
    type Result = Result<SocketAddr, ConnectionError>;

    fn handle(&mut self, msg: SendMessage, _: &mut Self::Context) -> Self::Result {
        let State::Up(sender) = &self.state else {
            return Err(self.not_up());
        };
        if let SipMessage::Request(request) = &msg.message {
            if let Some(branch) = request.headers().top_via().ok().and_then(|v| v.branch()) {
                self.router.add_transaction(branch, msg.line);
            }
        }
        let local = sender.local_addr();
        let bytes = msg.message.to_bytes();
        let sent = sender.send(bytes.clone());
        self.trace(Direction::Sent, &bytes);
        sent.map_err(|_| ConnectionError::Closed)?;
        Ok(local)
    }
}

impl Handler<LocalAddr> for Connection {
    type Result = Result<SocketAddr, ConnectionError>;

    fn handle(&mut self, _: LocalAddr, _: &mut Self::Context) -> Self::Result {
        match &self.state {
            State::Up(sender) => Ok(sender.local_addr()),
            _ => Err(self.not_up()),
        }
    }
}

impl Handler<RegisterDialog> for Connection {
    type Result = ();

    fn handle(&mut self, msg: RegisterDialog, _: &mut Self::Context) {
        self.router
            .add_dialog(&msg.call_id, &msg.local_tag, msg.line);
    }
}

impl Handler<UnregisterDialog> for Connection {
    type Result = ();

    fn handle(&mut self, msg: UnregisterDialog, _: &mut Self::Context) {
        self.router.remove_dialog(&msg.call_id, &msg.local_tag);
    }
}

impl Handler<TransactionDone> for Connection {
    type Result = ();

    fn handle(&mut self, msg: TransactionDone, _: &mut Self::Context) {
        self.router.remove_transaction(&msg.branch);
    }
}

impl Handler<Close> for Connection {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Self::Context) {
        if let State::Up(sender) = &self.state {
            sender.close();
        }
        ctx.stop();
    }
}

// ---------------------------------------------------------------------------
// FlowManager

/// Gets the connection for `route`, opening it if needed, and attaches `line`.
#[derive(Message, Debug)]
#[rtype(result = "Addr<Connection>")]
pub struct Acquire {
    /// The route to reach.
    pub route: Route,
    /// The line that uses it.
    pub line: LineId,
    /// The user part of the line's Contact.
    pub contact_user: Option<String>,
    /// Where the line hears what the flow reports.
    pub endpoints: LineEndpoints,
}

/// `line` no longer uses the flow `key`; the last user closes it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Release {
    /// The flow.
    pub key: FlowKey,
    /// The line.
    pub line: LineId,
}

/// How many flows are open, and how many lines use `key` (for tests and
/// status output).
#[derive(Message, Debug)]
#[rtype(result = "(usize, usize)")]
pub struct FlowUsage {
    /// The flow whose users are counted.
    pub key: FlowKey,
}

/// Open flows by transport (the metrics' `sipfleet_flows`).
#[derive(Message, Debug)]
#[rtype(result = "Vec<(Transport, usize)>")]
pub struct FlowCounts;

struct Entry {
    id: u64,
    addr: Addr<Connection>,
    users: HashSet<LineId>,
}

/// Owns the table of open flows, keyed by (transport, remote address), with
/// the set of lines using each.
pub struct FlowManager {
    config: FlowConfig,
    flows: HashMap<FlowKey, Entry>,
    next_id: u64,
    log: slog::Logger,
    trace: Option<Trace>,
}

impl FlowManager {
    /// A manager opening flows with `config` (TLS client, keep-alive, the SIP port).
    pub fn new(config: FlowConfig) -> Self {
        FlowManager {
            config,
            flows: HashMap::new(),
            next_id: 0,
            log: slog::Logger::root(slog::Discard, slog::o!()),
            trace: None,
        }
    }

    /// Every connection it opens traces its messages into `trace`.
    pub fn with_trace(mut self, trace: Option<Trace>) -> Self {
        self.trace = trace;
        self
    }

    /// Every connection it opens logs through `log`.
    pub fn with_log(mut self, log: slog::Logger) -> Self {
        self.log = log;
        self
    }
}

impl Actor for FlowManager {
    type Context = Context<Self>;
}

impl Handler<Acquire> for FlowManager {
    type Result = MessageResult<Acquire>;

    fn handle(&mut self, msg: Acquire, ctx: &mut Self::Context) -> Self::Result {
        let key = FlowKey::of(&msg.route);
        let entry = match self.flows.get_mut(&key) {
            Some(entry) => entry,
            None => {
                self.next_id += 1;
                let id = self.next_id;
                let connection = Connection::new(
                    id,
                    msg.route.clone(),
                    self.config.clone(),
                    Some(ctx.address()),
                )
                .with_log(&self.log)
                .with_trace(self.trace.clone());
                let entry = Entry {
                    id,
                    addr: connection.start(),
                    users: HashSet::new(),
                };
                self.flows.entry(key).or_insert(entry)
            }
        };
        entry.users.insert(msg.line);
        entry.addr.do_send(Attach {
            line: msg.line,
            contact_user: msg.contact_user,
            endpoints: msg.endpoints,
        });
        MessageResult(entry.addr.clone())
    }
}

impl Handler<Release> for FlowManager {
    type Result = ();

    fn handle(&mut self, msg: Release, _: &mut Self::Context) {
        let Some(entry) = self.flows.get_mut(&msg.key) else {
            return;
        };
        entry.users.remove(&msg.line);
        entry.addr.do_send(Detach { line: msg.line });
        if entry.users.is_empty() {
            entry.addr.do_send(Close);
            self.flows.remove(&msg.key);
        }
    }
}

impl Handler<LineLeft> for FlowManager {
    type Result = ();

    fn handle(&mut self, msg: LineLeft, _: &mut Self::Context) {
        let Some(entry) = self.flows.get_mut(&msg.key) else {
            return;
        };
        if entry.id != msg.id {
            return;
        }
        entry.users.remove(&msg.line);
        if entry.users.is_empty() {
            entry.addr.do_send(Close);
            self.flows.remove(&msg.key);
        }
    }
}

impl Handler<ConnectionEnded> for FlowManager {
    type Result = ();

    fn handle(&mut self, msg: ConnectionEnded, _: &mut Self::Context) {
        if self.flows.get(&msg.key).is_some_and(|e| e.id == msg.id) {
            self.flows.remove(&msg.key);
        }
    }
}

impl Handler<FlowUsage> for FlowManager {
    type Result = MessageResult<FlowUsage>;

    fn handle(&mut self, msg: FlowUsage, _: &mut Self::Context) -> Self::Result {
        let users = self.flows.get(&msg.key).map_or(0, |e| e.users.len());
        MessageResult((self.flows.len(), users))
    }
}

impl Handler<FlowCounts> for FlowManager {
    type Result = MessageResult<FlowCounts>;

    fn handle(&mut self, _: FlowCounts, _: &mut Self::Context) -> Self::Result {
        let mut counts: Vec<(Transport, usize)> = Vec::new();
        for key in self.flows.keys() {
            match counts.iter_mut().find(|(t, _)| *t == key.transport) {
                Some((_, n)) => *n += 1,
                None => counts.push((key.transport, 1)),
            }
        }
        MessageResult(counts)
    }
}

/// The Call-ID of a message for a log line ("" if it has none).
fn call_id_of(message: &SipMessage) -> String {
    message
        .headers()
        .call_id()
        .map(str::to_owned)
        .unwrap_or_default()
}
