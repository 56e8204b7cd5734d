//! The line's calls and emergency line seizes: the commands
//! ([`Command`]), inbound dispatch by Call-ID, and the rules the call
//! machine leaves to the line:
//!
//! * an outgoing call goes via the route that holds the registration;
//! * after `call_route_failed` (`budget_over: false`) the INVITE is sent
//!   again on the next route of the registration's route list with the
//!   same Call-ID ([`Call::retry_on_route`], the guide's Call-ID rule), or
//!   the call gives up when no route is left or `onlySignalWithRegistered`
//!   forbids another SBC ([`routes::next_invite_route`]);
//! * the registrar in force is fed to every call
//!   ([`Call::handle_registrar`]) so that, with `onlySignalWithRegistered`,
//!   a call whose SBC lost the registration ends when it next needs to
//!   signal; requests from another SBC are not answered
//!   ([`routes::accepts_request_from`]);
//! * whether any call is active feeds failback (a call holds it);
//! * an emergency call on a shared line seizes the line first
//!   ([`LineSeize`]) and places the INVITE when the seize succeeds, fails
//!   or runs out of time (32 s at most); a line without a registration
//!   still tries its primary route: an emergency call is never refused for
//!   want of a binding.
//!
//! Media: the SDP names a port the driver binds ([`MediaPorts`]) when the
//! INVITE goes out or the call is answered (a ringing call holds none), and
//! closes when the call ends. No port to be had: the call is refused (503,
//! `call_ended reason=resource_limit`) or the command fails, with a
//! `resource_exhausted` event.
//!
//! Limits: an INVITE above `callsPerLineKey` gets the stateless 486
//! ([`refuse_incoming`]); a call command above it is refused. Emergency
//! calls are never refused for the limit.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use crate::call::{
    line_has_room, refuse_incoming, Call, CallDirection, CallError, CallEventKind, CallOutput,
    CallSettings, CallState, IncomingCall, OutgoingCall,
};
use crate::line_seize::{LineSeize, LineSeizeOutput, LineSeizeSettings};
use crate::message::{Message, Request, Response, StatusCode, Uri};
use crate::route::{FlowKey, Route};

use super::events::{LineEventBody, ResourceEvent};
use super::incoming::{self, Dispatch};
use super::io::{Diagnostic, Output};
use super::machine::{Line, Pending};
use super::media::{destination, BindError, MediaPorts, RtpStream};
use super::routes;
use super::status::CallInfo;

/// What the application asks of a line's calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Call `target` (a SIP URI) via the registered SBC.
    Call {
        /// The SIP URI to call.
        target: String,
    },
    /// Seize the shared line, then call `target` whatever the seize's
    /// outcome (within 32 s).
    Emergency {
        /// The emergency number's SIP URI.
        target: String,
    },
    /// Answer the oldest ringing incoming call.
    Answer,
    /// Hold the newest established call that is not on hold.
    Hold,
    /// Resume the newest call on hold.
    Resume,
    /// End the newest call: CANCEL, 603 or BYE as its state requires.
    Hangup,
    /// Act on the call with this Call-ID, whatever the line's other calls
    /// (the control API: every call is addressed by its id; the commands
    /// above pick "the newest" for a person typing on stdin).
    OnCall {
        /// The call's Call-ID, as [`Command::Call`] answered it or its
        /// `call_started` event named it.
        call_id: String,
        /// What to do to it.
        action: CallAction,
    },
}

/// What [`Command::OnCall`] does to its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallAction {
    /// Answer it (it must be ringing: an incoming call not yet answered).
    Answer,
    /// Hold it: re-INVITE `a=sendonly` (it must be established).
    Hold,
    /// Resume it: re-INVITE `a=sendrecv` (it must be established).
    Resume,
    /// End it: CANCEL, 603 or BYE as its state requires.
    Hangup,
}

impl CallAction {
    /// The action's name in errors and the control API (`answer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CallAction::Answer => "answer",
            CallAction::Hold => "hold",
            CallAction::Resume => "resume",
            CallAction::Hangup => "hangup",
        }
    }
}

/// Why a call command could not apply. Nothing changed on the line.
#[derive(Debug, thiserror::Error)]
pub enum CallCommandError {
    /// The line holds no registration to call through.
    #[error("line is not registered: no route to call through")]
    NotRegistered,
    /// No call of the line suits the command (named: `answer`, `hold`,
    /// ...): the stdin commands' "newest call" found none.
    #[error("no call on the line to {0}")]
    NoCall(&'static str),
    /// [`Command::OnCall`] named a Call-ID that is not one of the line's
    /// calls (never was, or has ended and been forgotten).
    #[error("no call with Call-ID {0:?} on the line")]
    UnknownCall(String),
    /// No media port could be bound for the call.
    #[error("no local UDP port for media: {0}")]
    Media(#[source] BindError),
    /// The line holds `callsPerLineKey` calls already.
    #[error("the line holds {0} calls already (callsPerLineKey)")]
    LineBusy(u32),
    /// The call machine refused (a bad URI, the call's state).
    #[error(transparent)]
    Call(#[from] CallError),
}

pub(super) struct CallSlot {
    pub(super) call: Call,
    /// The silent stream from the port our SDP names; `None` until the
    /// INVITE is sent or the call answered, and again once it ended.
    media: Option<RtpStream>,
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
    calls: Vec<CallSlot>,
    seizes: Vec<Seizing>,
    /// Calls whose INVITE must go to the next route.
    retries: Vec<String>,
    /// Calls whose INVITE failed on its route while only the registered
    /// SBC may carry it (`reRegisterOn=1` with `onlySignalWithRegistered`):
    /// they go on where the line registers next ([`Line::registration_moved_on`]).
    awaiting_registration: Vec<String>,
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
    pub(super) fn reap(&mut self, media: &mut dyn MediaPorts) {
        for slot in &mut self.calls {
            if !slot.call.is_active() && slot.media.take().is_some() {
                media.release(slot.call.call_id());
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

    /// Whether a call or seize of the table has this Call-ID.
    pub(super) fn has_call_id(&self, call_id: &str) -> bool {
        self.calls.iter().any(|s| s.call.call_id() == call_id)
            || self.seizes.iter().any(|s| s.seize.call_id() == call_id)
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

    pub(super) fn info(&self, media: &dyn MediaPorts) -> Vec<CallInfo> {
        self.calls
            .iter()
            .filter(|s| s.call.is_active())
            .map(|s| CallInfo {
                call_id: s.call.call_id().to_owned(),
                direction: s.call.direction(),
                state: s.call.state(),
                held: s.call.is_held(),
                remote: s.call.dialog().remote_uri.clone(),
                route: s.call.route().clone(),
                rtp_sent: s.media.as_ref().map_or(0, RtpStream::sent),
                rtp_received: if s.media.is_some() {
                    media.received(s.call.call_id())
                } else {
                    0
                },
            })
            .collect()
    }

    /// Some call has media to send.
    pub(super) fn wants_media(&self) -> bool {
        self.calls
            .iter()
            .any(|s| s.media.is_some() && destination(&s.call).is_some())
    }

    /// One packet for every call with media to send.
    pub(super) fn media_packets(&mut self) -> Vec<(String, SocketAddr, Vec<u8>)> {
        let mut packets = Vec::new();
        for slot in &mut self.calls {
            let (Some(stream), Some((to, pt))) = (&mut slot.media, destination(&slot.call)) else {
                continue;
            };
            packets.push((
                slot.call.call_id().to_owned(),
                to,
                stream.packet(pt).to_vec(),
            ));
        }
        packets
    }

    pub(super) fn hangup_all(&mut self, now: Instant) {
        for slot in &mut self.calls {
            if slot.call.is_active() {
                let _ = slot.call.hangup(now);
            }
        }
    }

    pub(super) fn give_up(&mut self, now: Instant, call_id: &str) {
        if let Some(slot) = self.calls.iter_mut().find(|s| s.call.call_id() == call_id) {
            slot.call.give_up(now);
        }
    }

    pub(super) fn retry_on_route(
        &mut self,
        now: Instant,
        call_id: &str,
        route: Route,
        local: SocketAddr,
        last: bool,
    ) -> Result<(), String> {
        let Some(slot) = self.calls.iter_mut().find(|s| s.call.call_id() == call_id) else {
            return Ok(());
        };
        slot.call
            .retry_on_route(now, route, local, last)
            .map_err(|e| e.to_string())
    }

    /// Hands `msg` to the call or seize with its Call-ID.
    pub(super) fn dispatch(&mut self, now: Instant, msg: &Message) -> bool {
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
    Send(crate::call::Transmit),
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
            .local_of(FlowKey::of(&route))
            .ok_or(CallCommandError::NotRegistered)?;
        Ok((route, local))
    }

    /// Whether no route after `route` may carry the INVITE.
    fn is_last_route(&self, route: &Route) -> bool {
        routes::is_last_invite_route(&self.setup.settings, self.machine.routes(), route)
    }

    /// Runs a call command; answers the Call-ID it concerns.
    pub fn command(&mut self, now: Instant, command: Command) -> Result<String, CallCommandError> {
        let result = match command {
            Command::Call { target } => self.place_call(now, target),
            Command::Emergency { target } => self.emergency(now, target),
            Command::Answer => {
                // The oldest ringing call is answered first.
                match self
                    .calls
                    .calls
                    .iter()
                    .position(|s| s.call.state() == CallState::Incoming)
                {
                    Some(i) => self.answer_call(now, i),
                    None => Err(CallCommandError::NoCall("answer")),
                }
            }
            Command::Hold => self.on_newest(
                now,
                "hold",
                |c| c.state() == CallState::Established && !c.is_held(),
                Call::hold,
            ),
            Command::Resume => self.on_newest(
                now,
                "resume",
                |c| c.state() == CallState::Established && c.is_held(),
                Call::resume,
            ),
            Command::Hangup => self.on_newest(
                now,
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
            ),
            Command::OnCall { call_id, action } => self.on_call(now, &call_id, action),
        };
        self.drain(now);
        result
    }

    /// Runs `action` on the call `call_id`; its state decides whether it
    /// applies (the call machine's [`CallError::WrongState`] otherwise).
    fn on_call(
        &mut self,
        now: Instant,
        call_id: &str,
        action: CallAction,
    ) -> Result<String, CallCommandError> {
        let Some(i) = self
            .calls
            .calls
            .iter()
            .position(|s| s.call.call_id() == call_id)
        else {
            return Err(CallCommandError::UnknownCall(call_id.to_owned()));
        };
        if action == CallAction::Answer {
            return self.answer_call(now, i);
        }
        let Some(slot) = self.calls.calls.get_mut(i) else {
            return Err(CallCommandError::UnknownCall(call_id.to_owned()));
        };
        match action {
            CallAction::Hold => slot.call.hold(now)?,
            CallAction::Resume => slot.call.resume(now)?,
            CallAction::Hangup | CallAction::Answer => slot.call.hangup(now)?,
        }
        Ok(call_id.to_owned())
    }

    /// Runs `apply` on the call `pick` chooses.
    fn on_newest(
        &mut self,
        now: Instant,
        name: &'static str,
        pick: impl Fn(&Call) -> bool,
        apply: impl FnOnce(&mut Call, Instant) -> Result<(), CallError>,
    ) -> Result<String, CallCommandError> {
        let call = self
            .calls
            .newest(pick)
            .ok_or(CallCommandError::NoCall(name))?;
        apply(call, now)?;
        Ok(call.call_id().to_owned())
    }

    fn place_call(&mut self, now: Instant, target: String) -> Result<String, CallCommandError> {
        let (route, local) = self.registered_flow()?;
        let settings = self.call_settings();
        if !line_has_room(&settings, self.calls.active()) {
            return Err(CallCommandError::LineBusy(settings.calls_per_line));
        }
        let call_id = self.new_call_id();
        self.start_outgoing(now, target, route, local, call_id)
    }

    /// Via the registered SBC; a line without a registration (rejected,
    /// backing off) still tries its primary route.
    fn emergency(&mut self, now: Instant, target: String) -> Result<String, CallCommandError> {
        Uri::parse(&target).map_err(|e| CallError::BadUri {
            uri: target.clone(),
            reason: e.to_string(),
        })?;
        let call_id = self.new_call_id();
        if let Ok((route, local)) = self.registered_flow() {
            self.start_seize(now, route, local, target, call_id.clone());
            return Ok(call_id);
        }
        let route = self
            .machine
            .primary()
            .or_else(|| self.machine.routes().first())
            .cloned()
            .ok_or(CallCommandError::NotRegistered)?;
        self.send_on(
            now,
            &route.clone(),
            Pending::Seize {
                route,
                target,
                call_id: call_id.clone(),
            },
        );
        Ok(call_id)
    }

    fn start_outgoing(
        &mut self,
        now: Instant,
        target: String,
        route: Route,
        local: SocketAddr,
        call_id: String,
    ) -> Result<String, CallCommandError> {
        let rtp = self.bind_media(local, &call_id, &route, CallDirection::Outgoing)?;
        let last_route = self.is_last_route(&route);
        let seed = self.ids.random();
        let made = Call::outgoing(
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
            now,
        );
        let mut call = match made {
            Ok(call) => call,
            Err(e) => {
                self.media.release(&call_id);
                return Err(e.into());
            }
        };
        call.handle_registrar(self.machine.registered_route());
        let ssrc = self.ids.random();
        self.calls.calls.push(CallSlot {
            call,
            media: Some(RtpStream::new(ssrc)),
        });
        Ok(call_id)
    }

    /// Binds the media port of the call `call_id` on the flow whose local
    /// address is `local`. When none can be had, reports
    /// `resource_exhausted` and answers the error.
    fn bind_media(
        &mut self,
        local: SocketAddr,
        call_id: &str,
        route: &Route,
        direction: CallDirection,
    ) -> Result<SocketAddr, CallCommandError> {
        self.media.bind(call_id, local.ip()).map_err(|e| {
            let (max, open) = self.media.ceiling();
            let open = match &e {
                BindError::Exhausted(x) => x.open,
                BindError::Io(_) => open,
            };
            self.out
                .push_back(Output::Diagnostic(Diagnostic::MediaRefused {
                    call_id: call_id.to_owned(),
                    error: e.to_string(),
                }));
            self.out
                .push_back(Output::Event(LineEventBody::from(ResourceEvent {
                    resource: "sockets",
                    max,
                    open,
                    refused: match direction {
                        CallDirection::Incoming => "incoming_call",
                        CallDirection::Outgoing => "outgoing_call",
                    },
                    error: e.to_string(),
                    call_id: call_id.to_owned(),
                    route: route.clone(),
                })));
            CallCommandError::Media(e)
        })
    }

    /// Answers the ringing call `i` (the `answer` command or auto-answer):
    /// its media port is bound now; without one the call gets 503.
    fn answer_call(&mut self, now: Instant, i: usize) -> Result<String, CallCommandError> {
        let Some(slot) = self.calls.calls.get(i) else {
            return Err(CallCommandError::NoCall("answer"));
        };
        let call = &slot.call;
        if call.state() != CallState::Incoming {
            return Err(CallCommandError::Call(CallError::WrongState {
                command: "answer",
                state: call.state(),
            }));
        }
        let (id, route, local) = (
            call.call_id().to_owned(),
            call.route().clone(),
            call.dialog().local,
        );
        let bound = self.bind_media(local, &id, &route, CallDirection::Incoming);
        let ssrc = self.ids.random();
        let Some(slot) = self.calls.calls.get_mut(i) else {
            return Err(CallCommandError::NoCall("answer"));
        };
        match bound {
            Ok(rtp) => {
                slot.media = Some(RtpStream::new(ssrc));
                slot.call.answer(now, rtp)?;
                Ok(id)
            }
            Err(e) => {
                slot.call.refuse_no_media(now)?;
                Err(e)
            }
        }
    }

    /// Starts the line seize in front of an emergency call on `route`.
    pub(super) fn start_seize(
        &mut self,
        now: Instant,
        route: Route,
        local: SocketAddr,
        target: String,
        call_id: String,
    ) {
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
            now,
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

    /// Sends what calls and seizes queued, reports their events, places
    /// emergency calls whose seize is over.
    pub(super) fn drain_calls(&mut self, now: Instant) -> bool {
        let mut steps = Vec::new();
        for slot in &mut self.calls.calls {
            while let Some(out) = slot.call.poll_output() {
                match out {
                    CallOutput::Send(t) => steps.push(Step::Send(t)),
                    CallOutput::Event(e) => {
                        if e.kind == (CallEventKind::RouteFailed { budget_over: false }) {
                            if self.setup.settings.effective_only_signal_with_registered() {
                                self.calls.awaiting_registration.push(e.call_id.clone());
                            } else {
                                self.calls.retries.push(e.call_id.clone());
                            }
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
                Step::Send(t) => {
                    let route = t.route.clone();
                    self.send_on(now, &route, Pending::Transmit(t.message));
                }
                Step::Event(e) => self.out.push_back(Output::Event(e)),
                Step::Place(i) => self.place_emergency(now, i),
            }
        }
        progressed |= self.give_up_hopeless_retries(now);
        progressed
    }

    /// The seize `i` is over: the emergency INVITE goes now, on the
    /// registered route (or the seize's when the line lost its binding).
    fn place_emergency(&mut self, now: Instant, i: usize) {
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
        if let Err(e) = self.start_outgoing(now, target, route, local, call_id) {
            self.out
                .push_back(Output::Diagnostic(Diagnostic::EmergencyNotPlaced {
                    error: e.to_string(),
                }));
        }
    }

    /// Calls that cannot move to another route end now; the others are
    /// left for [`Self::run_retries`]. Returns whether any ended.
    fn give_up_hopeless_retries(&mut self, now: Instant) -> bool {
        let mut gave_up = false;
        let settings = &self.setup.settings;
        if settings.effective_only_signal_with_registered() {
            // Pinned retries go to the route the line just registered on.
            return false;
        }
        let routes = self.machine.routes();
        let calls = &mut self.calls;
        calls.retries.retain(|id| {
            let Some(slot) = calls.calls.iter_mut().find(|s| s.call.call_id() == id) else {
                return false;
            };
            if routes::next_invite_route(settings, routes, slot.call.route()).is_none() {
                slot.call.give_up(now);
                gave_up = true;
                return false;
            }
            true
        });
        gave_up
    }

    /// The line registered again (`Some(route)`), or its registration gave
    /// up (`None`: back-off or a final failure): the INVITEs waiting for
    /// it go to the new registrar with their Call-ID (the guide's
    /// `reRegisterOn=1`: "if the registration succeeds, signaling will
    /// proceed with that server"), or end.
    pub(super) fn registration_moved_on(&mut self, now: Instant, registered: Option<&Route>) {
        let waiting: Vec<String> = self.calls.awaiting_registration.drain(..).collect();
        for id in waiting {
            let Some(slot) = self.calls.calls.iter_mut().find(|s| s.call.call_id() == id) else {
                continue;
            };
            if !slot.call.awaits_route() {
                continue;
            }
            match registered {
                Some(_) => self.calls.retries.push(id),
                None => slot.call.give_up(now),
            }
        }
    }

    /// Sends each failed INVITE again on the next route (pinned to the
    /// registration: the registered route), with its Call-ID, once that
    /// route's flow is open. Returns whether any retry started.
    pub(super) fn run_retries(&mut self, now: Instant) -> bool {
        let ids: Vec<String> = self.calls.retries.drain(..).collect();
        let started = !ids.is_empty();
        for id in ids {
            let Some(slot) = self.calls.calls.iter().find(|s| s.call.call_id() == id) else {
                continue;
            };
            let next = if self.setup.settings.effective_only_signal_with_registered() {
                self.machine.registered_route().cloned()
            } else {
                let routes = self.machine.routes();
                routes::next_invite_route(&self.setup.settings, routes, slot.call.route()).cloned()
            };
            let Some(next) = next else {
                continue;
            };
            let last = self.is_last_route(&next);
            self.send_on(
                now,
                &next.clone(),
                Pending::RetryInvite {
                    call_id: id,
                    route: next,
                    last,
                },
            );
        }
        started
    }

    /// A request from the far end, delivered to this line by its flow.
    pub(super) fn handle_request(&mut self, now: Instant, flow: FlowKey, message: Message) {
        let Message::Request(request) = &message else {
            return;
        };
        let arrived_on = self.route_of(flow);
        let registered = self.machine.registered_route();
        if !routes::accepts_request_from(&self.setup.settings, registered, arrived_on.as_ref()) {
            self.out
                .push_back(Output::Diagnostic(Diagnostic::IgnoredRequest {
                    flow,
                    method: request.method().as_str().to_string(),
                }));
            return;
        }
        if self.calls.dispatch(now, &message) || self.subscription_message(now, &message) {
            return;
        }
        match incoming::dispatch(request) {
            Dispatch::NewCall => self.incoming_call(now, flow, request),
            Dispatch::Answer(answer) => self.answer_on(flow, answer),
            Dispatch::Ignore => {}
        }
    }

    /// A stateless answer on the flow the request came in on (when the
    /// line holds it).
    fn answer_on(&mut self, flow: FlowKey, response: Response) {
        if self.local_of(flow).is_some() {
            self.transmit(flow, Message::Response(response));
        }
    }

    /// An INVITE for a new call: it rings (or is answered at once with
    /// `reg.x.autoAnswer=1`).
    fn incoming_call(&mut self, now: Instant, flow: FlowKey, invite: &Request) {
        let (Some(route), Some(local)) = (self.route_of(flow), self.local_of(flow)) else {
            if let Some(status) = StatusCode::new(480) {
                self.answer_on(flow, incoming::stateless_answer(invite, status));
            }
            return;
        };
        let settings = self.call_settings();
        if let Some(busy) = refuse_incoming(&settings, self.calls.active(), invite) {
            self.out
                .push_back(Output::Diagnostic(Diagnostic::CallsPerLineReached {
                    limit: settings.calls_per_line,
                }));
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
            now,
        ) {
            Ok(mut call) => {
                call.handle_registrar(self.machine.registered_route());
                let auto = call.auto_answer_due();
                self.calls.calls.push(CallSlot { call, media: None });
                if auto {
                    // Refused (503) when no media port can be had; the
                    // event says why.
                    let _ = self.answer_call(now, self.calls.calls.len() - 1);
                }
            }
            Err(e) => {
                self.out
                    .push_back(Output::Diagnostic(Diagnostic::MalformedInvite {
                        error: e.to_string(),
                    }));
                if let Some(status) = StatusCode::new(400) {
                    self.answer_on(flow, incoming::stateless_answer(invite, status));
                }
            }
        }
    }
}
