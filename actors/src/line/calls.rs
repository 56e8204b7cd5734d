//! The line's calls and emergency line seizes: the commands of the library
//! API ([`PlaceCall`], [`Answer`], [`Hold`], [`Resume`], [`Hangup`],
//! [`Emergency`]), inbound dispatch by Call-ID, and the rules the call
//! machine leaves to the line:
//!
//! * an outgoing call goes via the route that holds the registration;
//! * after `call_route_failed` (`budget_over: false`) the INVITE is sent
//!   again on the next route of the registration's route list with the
//!   same Call-ID ([`Call::retry_on_route`], the guide's Call-ID rule), or
//!   the call gives up when no route is left or `onlySignalWithRegistered`
//!   forbids another SBC;
//! * the registrar in force is fed to every call
//!   ([`Call::handle_registrar`]) so that, with `onlySignalWithRegistered`,
//!   a call whose SBC lost the registration ends when it next needs to
//!   signal;
//! * whether any call is active feeds failback (in `mod.rs`);
//! * an emergency call on a shared line seizes the line first
//!   ([`LineSeize`]) and places the INVITE when the seize succeeds, fails
//!   or runs out of time (32 s at most).
//!
//! Media: the SDP offer/answer names a real local UDP port, bound when the
//! INVITE goes out (outgoing) or when the call is answered (incoming: a
//! ringing call holds no socket), under the fleet's `sipfleet.sockets.max`,
//! and closed when the call ends; an established call sends 20 ms packets
//! of silence there ([`super::media`]). No port to be had: the call is
//! refused (503, `call_ended reason=resource_limit`) or `PlaceCall` fails,
//! with a `resource_exhausted` event.
//!
//! Limits: an INVITE above `callsPerLineKey` gets the protocol's stateless
//! 486 ([`refuse_incoming`]); `PlaceCall` above it is refused.
//! Emergency calls are never refused for the limit.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use actix::prelude::*;
use rand::Rng;
use sipfleet_protocol::call::{
    line_has_room, refuse_incoming, Call, CallDirection, CallError, CallEventKind, CallOutput,
    CallSettings, CallState, IncomingCall, OutgoingCall, Transmit,
};
use sipfleet_protocol::line::incoming::{self, Dispatch};
use sipfleet_protocol::line::routes;
use sipfleet_protocol::line_seize::{LineSeize, LineSeizeOutput, LineSeizeSettings};
use sipfleet_protocol::message::{Message as SipMessage, Request, Response, StatusCode, Uri};
use sipfleet_protocol::route::Route;
use sipfleet_transport::flow::FlowKey;

use super::media::{BindError, SilentRtp};
use super::{now, Flow, Line};
use crate::connection::SendMessage;
use crate::events::LineEventBody;

/// Why a call command could not apply. Nothing changed on the line.
#[derive(Debug, thiserror::Error)]
pub enum CallCommandError {
    #[error("line is not registered: no route to call through")]
    NotRegistered,
    #[error("no call on the line to {0}")]
    NoCall(&'static str),
    #[error("no local UDP port for media: {0}")]
    Media(#[source] BindError),
    #[error("the line holds {0} calls already (callsPerLineKey)")]
    LineBusy(u32),
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Places a call to `target` (a SIP URI); answers its Call-ID.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct PlaceCall {
    pub target: String,
}

/// Seizes the shared line, then calls `target` whatever the seize's
/// outcome (within 32 s); answers the emergency INVITE's Call-ID.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Emergency {
    pub target: String,
}

/// Answers the oldest ringing incoming call.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Answer;

/// Holds the newest established call that is not on hold.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Hold;

/// Resumes the newest call on hold.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Resume;

/// Ends the newest call: CANCEL, 603 or BYE as its state requires.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<String, CallCommandError>")]
pub struct Hangup;

/// A call of the line, for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    pub call_id: String,
    pub direction: CallDirection,
    pub state: CallState,
    pub held: bool,
    /// RTP packets (20 ms of silence each) sent so far.
    pub rtp_sent: u64,
    /// Datagrams received on the call's media port so far.
    pub rtp_received: u64,
}

pub(super) struct CallSlot {
    pub(super) call: Call,
    /// The media port named in our SDP: bound when the INVITE is sent or
    /// the call answered, closed when the call ends.
    pub(super) rtp: Option<SilentRtp>,
}

struct Seizing {
    seize: LineSeize,
    target: String,
    /// The emergency INVITE's Call-ID, reserved when the seize starts.
    call_id: String,
    route: Route,
    local: SocketAddr,
    placed: bool,
}

/// Every call and seize of one line.
#[derive(Default)]
pub(super) struct CallTable {
    pub(super) calls: Vec<CallSlot>,
    seizes: Vec<Seizing>,
    /// Calls whose INVITE must go to the next route.
    retries: Vec<String>,
}

impl CallTable {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.iter().filter_map(|s| s.call.poll_timeout());
        let seizes = self.seizes.iter().filter_map(|s| s.seize.poll_timeout());
        calls.chain(seizes).min()
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        for slot in &mut self.calls {
            if slot.call.poll_timeout().is_some_and(|t| t <= now) {
                slot.call.handle_timeout(now);
            }
        }
        for s in &mut self.seizes {
            if s.seize.poll_timeout().is_some_and(|t| t <= now) {
                s.seize.handle_timeout(now);
            }
        }
    }

    pub(super) fn handle_registrar(&mut self, registrar: Option<&Route>) {
        for slot in &mut self.calls {
            slot.call.handle_registrar(registrar);
        }
    }

    pub(super) fn handle_transport_error(&mut self, now: Instant, route: &Route) {
        for slot in &mut self.calls {
            slot.call.handle_transport_error(now, route);
        }
        for s in &mut self.seizes {
            s.seize.handle_transport_error(route);
        }
    }

    /// A call is up, or an emergency call is about to be placed.
    pub(super) fn any_active(&self) -> bool {
        self.calls.iter().any(|s| s.call.is_active()) || self.seizes.iter().any(|s| !s.placed)
    }

    /// Closes the media ports of ended calls, drops ended calls with no
    /// timer left, and seizes whose emergency call has ended.
    pub(super) fn reap(&mut self) {
        for slot in &mut self.calls {
            if !slot.call.is_active() {
                slot.rtp = None;
            }
        }
        self.calls
            .retain(|s| s.call.is_active() || s.call.poll_timeout().is_some());
        let live: HashSet<String> = self.call_ids();
        self.seizes
            .retain(|s| !s.placed || s.seize.poll_timeout().is_some() || live.contains(&s.call_id));
    }

    /// Call-IDs of every dialog the table still owns.
    pub(super) fn call_ids(&self) -> HashSet<String> {
        let calls = self.calls.iter().map(|s| s.call.call_id().to_owned());
        let seizes = self.seizes.iter().map(|s| s.seize.call_id().to_owned());
        calls.chain(seizes).collect()
    }

    /// Calls that count against `callsPerLineKey`: every one not ended.
    fn active(&self) -> usize {
        self.calls.iter().filter(|s| s.call.is_active()).count()
    }

    /// Flows that active calls and seizes signal on.
    pub(super) fn flows_in_use(&self) -> HashSet<FlowKey> {
        let calls = self
            .calls
            .iter()
            .filter(|s| s.call.is_active())
            .map(|s| FlowKey::of(s.call.route()));
        let seizes = self.seizes.iter().map(|s| FlowKey::of(&s.route));
        calls.chain(seizes).collect()
    }

    pub(super) fn info(&self) -> Vec<CallInfo> {
        self.calls
            .iter()
            .filter(|s| s.call.is_active())
            .map(|s| CallInfo {
                call_id: s.call.call_id().to_owned(),
                direction: s.call.direction(),
                state: s.call.state(),
                held: s.call.is_held(),
                rtp_sent: s.rtp.as_ref().map_or(0, SilentRtp::sent),
                rtp_received: s.rtp.as_ref().map_or(0, SilentRtp::received),
            })
            .collect()
    }

    /// Some call has media to send.
    pub(super) fn wants_media(&self) -> bool {
        self.calls
            .iter()
            .any(|s| super::media::destination(&s.call).is_some())
    }

    /// One packet for every call with media to send.
    pub(super) fn send_media(&mut self) {
        for slot in &mut self.calls {
            if let Some(rtp) = &mut slot.rtp {
                rtp.tick(&slot.call);
            }
        }
    }

    pub(super) fn hangup_all(&mut self, now: Instant) {
        for slot in &mut self.calls {
            if slot.call.is_active() {
                let _ = slot.call.hangup(now);
            }
        }
    }

    /// Hands `msg` to the call or seize with its Call-ID.
    fn dispatch(&mut self, now: Instant, msg: &SipMessage) -> bool {
        if let Some(slot) = self.calls.iter_mut().find(|s| s.call.accepts(msg)) {
            slot.call.handle_message(now, msg);
            return true;
        }
        if let Some(s) = self.seizes.iter_mut().find(|s| s.seize.accepts(msg)) {
            s.seize.handle_message(now, msg);
            return true;
        }
        false
    }

    /// The newest call `pick` accepts.
    fn newest(&mut self, pick: impl Fn(&Call) -> bool) -> Option<&mut Call> {
        self.calls
            .iter_mut()
            .rev()
            .map(|s| &mut s.call)
            .find(|c| pick(c))
    }
}

/// What a drain of the calls found to do, in order.
enum Step {
    Send(Transmit),
    Event(LineEventBody),
    Place(usize),
}

impl Line {
    fn call_settings(&self) -> CallSettings {
        CallSettings {
            policy: self.setup.settings.retry_policy(),
            auto_answer: self.setup.features.auto_answer,
            only_signal_with_registered: self
                .setup
                .settings
                .effective_only_signal_with_registered(),
            user_agent: self.setup.identity.user_agent.clone(),
            ring_timeout: self.setup.features.ring_timeout,
            calls_per_line: self.setup.features.calls_per_line,
        }
    }

    fn new_call_id(&mut self) -> String {
        format!(
            "{:016x}{:04x}c@sipfleet",
            self.ids.random::<u64>(),
            self.setup.index
        )
    }

    /// The registered route and the local address of its flow.
    fn registered_flow(&self) -> Result<(Route, SocketAddr), CallCommandError> {
        let route = self
            .machine
            .registered_route()
            .cloned()
            .ok_or(CallCommandError::NotRegistered)?;
        let local = self
            .flows
            .get(&FlowKey::of(&route))
            .and_then(|f| f.local)
            .ok_or(CallCommandError::NotRegistered)?;
        Ok((route, local))
    }

    /// Whether no route after `route` may carry the INVITE.
    fn is_last_route(&self, route: &Route) -> bool {
        routes::is_last_invite_route(&self.setup.settings, self.machine.routes(), route)
    }

    fn start_outgoing(
        &mut self,
        target: String,
        route: Route,
        local: SocketAddr,
        call_id: String,
    ) -> Result<String, CallCommandError> {
        let (socket, rtp) = self.bind_rtp(local, &call_id, &route, CallDirection::Outgoing)?;
        let last_route = self.is_last_route(&route);
        let seed = self.ids.random();
        let mut call = Call::outgoing(
            self.call_settings(),
            self.setup.identity.clone(),
            Some(self.setup.digest.clone()),
            OutgoingCall {
                target,
                route,
                local,
                rtp,
                last_route,
            },
            call_id.clone(),
            seed,
            now(),
        )?;
        call.handle_registrar(self.machine.registered_route());
        self.calls.calls.push(CallSlot {
            call,
            rtp: Some(socket),
        });
        Ok(call_id)
    }

    /// Sends what calls and seizes queued, reports their events, places
    /// emergency calls whose seize is over.
    pub(super) fn drain_calls(&mut self, ctx: &mut Context<Self>) -> bool {
        let mut steps = Vec::new();
        for slot in &mut self.calls.calls {
            while let Some(out) = slot.call.poll_output() {
                match out {
                    CallOutput::Send(t) => steps.push(Step::Send(t)),
                    CallOutput::Event(e) => {
                        if e.kind == (CallEventKind::RouteFailed { budget_over: false }) {
                            self.calls.retries.push(e.call_id.clone());
                        }
                        steps.push(Step::Event(e.into()));
                    }
                }
            }
        }
        for (i, s) in self.calls.seizes.iter_mut().enumerate() {
            while let Some(out) = s.seize.poll_output() {
                match out {
                    LineSeizeOutput::Send(t) => steps.push(Step::Send(t)),
                    LineSeizeOutput::Event(e) => steps.push(Step::Event(e.into())),
                    LineSeizeOutput::PlaceCall { .. } => steps.push(Step::Place(i)),
                }
            }
        }
        let mut progressed = !steps.is_empty();
        for step in steps {
            match step {
                Step::Send(t) => self.send_transmit(t, ctx),
                Step::Event(e) => self.emit(e),
                Step::Place(i) => self.place_emergency(i),
            }
        }
        progressed |= self.give_up_hopeless_retries();
        progressed
    }

    /// The seize `i` is over: the emergency INVITE goes now, on the
    /// registered route (or the seize's when the line lost its binding).
    fn place_emergency(&mut self, i: usize) {
        let Some(s) = self.calls.seizes.get_mut(i) else {
            return;
        };
        if s.placed {
            return;
        }
        s.placed = true;
        let (target, call_id) = (s.target.clone(), s.call_id.clone());
        let fallback = (s.route.clone(), s.local);
        let (route, local) = self.registered_flow().unwrap_or(fallback);
        if let Err(e) = self.start_outgoing(target, route, local, call_id) {
            slog::error!(self.services.log, "emergency call not placed";
                "line" => self.setup.index, "error" => e.to_string());
        }
    }

    /// Calls that cannot move to another route end now; the others are
    /// left for [`Self::run_retries`]. Returns whether any ended.
    fn give_up_hopeless_retries(&mut self) -> bool {
        let mut gave_up = false;
        let settings = &self.setup.settings;
        let routes = self.machine.routes();
        let calls = &mut self.calls;
        calls.retries.retain(|id| {
            let Some(slot) = calls.calls.iter_mut().find(|s| s.call.call_id() == id) else {
                return false;
            };
            if routes::next_invite_route(settings, routes, slot.call.route()).is_none() {
                slot.call.give_up(now());
                gave_up = true;
                return false;
            }
            true
        });
        gave_up
    }

    /// Sends each failed INVITE again on the next route, with its Call-ID,
    /// once that route's flow is open.
    pub(super) fn run_retries(&mut self, ctx: &mut Context<Self>) {
        let ids: Vec<String> = self.calls.retries.drain(..).collect();
        for id in ids {
            let Some(slot) = self.calls.calls.iter().find(|s| s.call.call_id() == id) else {
                continue;
            };
            let routes = self.machine.routes();
            let Some(next) =
                routes::next_invite_route(&self.setup.settings, routes, slot.call.route()).cloned()
            else {
                continue;
            };
            let last = self.is_last_route(&next);
            let key = FlowKey::of(&next);
            let fut = self.acquire(&next, ctx);
            ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| {
                let Some(slot) = act.calls.calls.iter_mut().find(|s| s.call.call_id() == id) else {
                    return;
                };
                match result {
                    Ok((conn, local)) => {
                        act.flows.insert(
                            key,
                            Flow {
                                conn,
                                local: Some(local),
                            },
                        );
                        if let Err(e) = slot.call.retry_on_route(now(), next, local, last) {
                            slog::debug!(act.services.log, "INVITE not retried";
                                "call_id" => &id, "error" => e.to_string());
                        }
                    }
                    Err(_) => slot.call.give_up(now()),
                }
                act.drain(ctx);
            }));
        }
    }

    /// A response that is not a REGISTER's: to a call, seize or
    /// subscription, by Call-ID. Strays are dropped.
    pub(super) fn handle_dialog_response(&mut self, msg: &SipMessage) {
        if !self.calls.dispatch(now(), msg) {
            self.subscription_message(msg);
        }
    }

    /// A request from the far end, delivered to this line by its flow.
    pub(super) fn handle_request(&mut self, flow: FlowKey, message: SipMessage) {
        let SipMessage::Request(request) = &message else {
            return;
        };
        let arrived_on = self.route_of(flow);
        let registered = self.machine.registered_route();
        if !routes::accepts_request_from(&self.setup.settings, registered, arrived_on.as_ref()) {
            slog::info!(self.services.log, "ignored request from an SBC without our registration";
                "line" => self.setup.index, "flow" => flow.to_string(),
                "method" => request.method().as_str().to_string());
            return;
        }
        if self.calls.dispatch(now(), &message) || self.subscription_message(&message) {
            return;
        }
        match incoming::dispatch(request) {
            Dispatch::NewCall => self.incoming_call(flow, request),
            Dispatch::Answer(answer) => self.answer_on(flow, answer),
            Dispatch::Ignore => {}
        }
    }

    fn answer_on(&self, flow: FlowKey, response: Response) {
        if let Some(f) = self.flows.get(&flow) {
            f.conn.do_send(SendMessage {
                line: self.line_id(),
                message: SipMessage::Response(response),
            });
        }
    }

    /// An INVITE for a new call: it rings (or is answered at once with
    /// `reg.x.autoAnswer=1`).
    fn incoming_call(&mut self, flow: FlowKey, invite: &Request) {
        let local = self.flows.get(&flow).and_then(|f| f.local);
        let (Some(route), Some(local)) = (self.route_of(flow), local) else {
            if let Some(status) = StatusCode::new(480) {
                self.answer_on(flow, incoming::stateless_answer(invite, status));
            }
            return;
        };
        let settings = self.call_settings();
        if let Some(busy) = refuse_incoming(&settings, self.calls.active(), invite) {
            slog::debug!(self.services.log, "INVITE refused: callsPerLineKey reached";
                "line" => self.setup.index, "limit" => settings.calls_per_line);
            self.answer_on(flow, busy);
            return;
        }
        let seed = self.ids.random();
        match Call::incoming(
            settings,
            self.setup.identity.clone(),
            Some(self.setup.digest.clone()),
            IncomingCall {
                invite,
                route,
                local,
            },
            seed,
            now(),
        ) {
            Ok(mut call) => {
                call.handle_registrar(self.machine.registered_route());
                let auto = call.auto_answer_due();
                self.calls.calls.push(CallSlot { call, rtp: None });
                if auto {
                    // Refused (503) when no media port can be had; the
                    // event says why.
                    let _ = self.answer_call(self.calls.calls.len() - 1);
                }
            }
            Err(e) => {
                slog::info!(self.services.log, "malformed INVITE";
                    "line" => self.setup.index, "error" => e.to_string());
                if let Some(status) = StatusCode::new(400) {
                    self.answer_on(flow, incoming::stateless_answer(invite, status));
                }
            }
        }
    }
}

impl Handler<PlaceCall> for Line {
    type Result = Result<String, CallCommandError>;

    fn handle(&mut self, msg: PlaceCall, ctx: &mut Self::Context) -> Self::Result {
        let (route, local) = self.registered_flow()?;
        let settings = self.call_settings();
        if !line_has_room(&settings, self.calls.active()) {
            return Err(CallCommandError::LineBusy(settings.calls_per_line));
        }
        let call_id = self.new_call_id();
        let result = self.start_outgoing(msg.target, route, local, call_id);
        self.drain(ctx);
        result
    }
}

impl Line {
    /// Starts the line seize in front of an emergency call on `route`.
    fn start_seize(&mut self, route: Route, local: SocketAddr, target: String, call_id: String) {
        let settings = LineSeizeSettings {
            retries: self.setup.features.line_seize_retries,
            timers: self.setup.settings.retry_policy().timers,
            user_agent: self.setup.identity.user_agent.clone(),
            ..LineSeizeSettings::default()
        };
        let seize_id = self.new_call_id();
        let seed = self.ids.random();
        let seize = LineSeize::start(
            settings,
            &self.setup.identity,
            Some(self.setup.digest.clone()),
            route.clone(),
            local,
            seize_id,
            seed,
            now(),
        );
        self.calls.seizes.push(Seizing {
            seize,
            target,
            call_id,
            route,
            local,
            placed: false,
        });
    }
}

impl Handler<Emergency> for Line {
    type Result = Result<String, CallCommandError>;

    /// Via the registered SBC; a line without a registration (rejected,
    /// backing off) still tries its primary route: an emergency call is
    /// never refused for want of a binding.
    fn handle(&mut self, msg: Emergency, ctx: &mut Self::Context) -> Self::Result {
        Uri::parse(&msg.target).map_err(|e| CallError::BadUri {
            uri: msg.target.clone(),
            reason: e.to_string(),
        })?;
        let call_id = self.new_call_id();
        if let Ok((route, local)) = self.registered_flow() {
            self.start_seize(route, local, msg.target, call_id.clone());
            self.drain(ctx);
            return Ok(call_id);
        }
        let route = self
            .machine
            .primary()
            .or_else(|| self.machine.routes().first())
            .cloned()
            .ok_or(CallCommandError::NotRegistered)?;
        let (target, id) = (msg.target, call_id.clone());
        let primary = route.clone();
        self.with_flow(&route, ctx, move |act, _, local, ctx| {
            act.start_seize(primary, local, target, id);
            act.drain(ctx);
        });
        Ok(call_id)
    }
}

/// Runs `apply` on the call `pick` chooses, then drains.
fn command(
    line: &mut Line,
    ctx: &mut Context<Line>,
    name: &'static str,
    pick: impl Fn(&Call) -> bool,
    apply: impl FnOnce(&mut Call, Instant) -> Result<(), CallError>,
) -> Result<String, CallCommandError> {
    let call = line
        .calls
        .newest(pick)
        .ok_or(CallCommandError::NoCall(name))?;
    apply(call, now())?;
    let id = call.call_id().to_owned();
    line.drain(ctx);
    Ok(id)
}

impl Handler<Answer> for Line {
    type Result = Result<String, CallCommandError>;

    fn handle(&mut self, _: Answer, ctx: &mut Self::Context) -> Self::Result {
        // The oldest ringing call is answered first.
        let i = self
            .calls
            .calls
            .iter()
            .position(|s| s.call.state() == CallState::Incoming)
            .ok_or(CallCommandError::NoCall("answer"))?;
        let result = self.answer_call(i);
        self.drain(ctx);
        result
    }
}

impl Handler<Hold> for Line {
    type Result = Result<String, CallCommandError>;

    fn handle(&mut self, _: Hold, ctx: &mut Self::Context) -> Self::Result {
        command(
            self,
            ctx,
            "hold",
            |c| c.state() == CallState::Established && !c.is_held(),
            Call::hold,
        )
    }
}

impl Handler<Resume> for Line {
    type Result = Result<String, CallCommandError>;

    fn handle(&mut self, _: Resume, ctx: &mut Self::Context) -> Self::Result {
        command(
            self,
            ctx,
            "resume",
            |c| c.state() == CallState::Established && c.is_held(),
            Call::resume,
        )
    }
}

impl Handler<Hangup> for Line {
    type Result = Result<String, CallCommandError>;

    fn handle(&mut self, _: Hangup, ctx: &mut Self::Context) -> Self::Result {
        command(
            self,
            ctx,
            "hang up",
            |c| {
                matches!(
                    c.state(),
                    CallState::Calling
                        | CallState::Ringing
                        | CallState::Incoming
                        | CallState::Answering
                        | CallState::Established
                )
            },
            Call::hangup,
        )
    }
}
