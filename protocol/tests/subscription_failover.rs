//! The glue a line needs, proven in virtual time with the real machines:
//! the registration's events drive the subscriptions (invalidated when a
//! new SBC accepts the REGISTER, or at failover start with
//! `failRegistrationOn=1`; re-created there at once), and a call's
//! `is_active()` holds failback until the call ends.

mod call_support;

use std::time::Duration;

use call_support::*;
use rand::{rngs::StdRng, SeedableRng};
use sipfleet_protocol::call::{Call, CallOutput, OutgoingCall};
use sipfleet_protocol::message::HeaderName;
use sipfleet_protocol::registration::{
    EventKind, FailbackMode, Output, RegisterResponse, Registration, RegistrationSettings,
    SendRegister, TransportError,
};
use sipfleet_protocol::route::{Route, Transport};
use sipfleet_protocol::subscription::{EventPackage, SubscriptionOutput};

struct Line {
    sim: SubSim,
    reg: Registration,
    call: Option<Call>,
    last_register: Option<SendRegister>,
    log: Vec<String>,
}

fn r(n: u8) -> Route {
    route(n, Transport::Udp)
}

impl Line {
    fn new(settings: RegistrationSettings) -> Self {
        let mut n = 0;
        let reg = Registration::new(
            settings,
            Box::new(StdRng::seed_from_u64(1)),
            Box::new(move || {
                n += 1;
                format!("reg-{n}")
            }),
        );
        Line {
            sim: SubSim::new(EventPackage::Dialog, "sip:1002@example.com"),
            reg,
            call: None,
            last_register: None,
            log: Vec::new(),
        }
    }

    fn ms(&self) -> u64 {
        self.sim.clock.ms()
    }

    /// Drains every machine, feeding registration events to the
    /// subscription the way the line actor must.
    fn pump(&mut self) {
        let now = self.sim.clock.now;
        let ms = self.ms();
        while let Some(out) = self.reg.poll_output() {
            match out {
                Output::Send(s) => {
                    self.log.push(format!("{ms} REGISTER {}", s.route.host));
                    self.last_register = Some(s);
                }
                // Not paced: a line alone never asks for a slot.
                Output::RequestSlot(_) | Output::SlotDone => {}
                Output::Event(e) => {
                    let host = e.route.as_ref().map(|r| r.host.clone()).unwrap_or_default();
                    match &e.kind {
                        EventKind::SubscriptionsInvalidated { reason } => {
                            self.log.push(format!("{ms} invalidated {host} {reason:?}"));
                            self.sim.sub.invalidate(*reason);
                        }
                        EventKind::Registered { .. } => {
                            self.log.push(format!("{ms} registered {host}"));
                            if let Some(route) = &e.route {
                                self.sim.sub.registered_on(now, route, local());
                            }
                        }
                        EventKind::Failback { .. } => {
                            self.log.push(format!("{ms} failback {host}"))
                        }
                        _ => {}
                    }
                }
            }
        }
        while let Some(out) = self.sim.sub.poll_output() {
            if let SubscriptionOutput::Send(t) = out {
                let msg = round_trip(&t.message);
                if msg.as_request().is_some() {
                    self.log.push(format!("{ms} SUBSCRIBE {}", t.route.host));
                }
                self.sim.seen.push(Seen::Sent {
                    at: ms,
                    route: t.route,
                    msg: Box::new(msg),
                });
            }
        }
        if let Some(call) = &mut self.call {
            while let Some(out) = call.poll_output() {
                if let CallOutput::Send(t) = out {
                    let msg = round_trip(&t.message);
                    let what = msg
                        .as_request()
                        .map(|r| r.method().to_string())
                        .unwrap_or_default();
                    self.log.push(format!("{ms} {what} {}", t.route.host));
                    self.sim.seen.push(Seen::Sent {
                        at: ms,
                        route: t.route,
                        msg: Box::new(msg),
                    });
                }
            }
        }
    }

    /// The registrar on the last REGISTER's route answers 200.
    fn register_ok(&mut self) {
        let s = self.last_register.clone().unwrap();
        let ok = RegisterResponse {
            expires: Some(Duration::from_secs(3600)),
            ..RegisterResponse::new(s.cseq, 200)
        };
        self.reg.handle_response(self.sim.clock.now, ok);
        self.pump();
    }

    /// The notifier answers the last SUBSCRIBE 200.
    fn subscribe_ok(&mut self) {
        let sub = self.sim.last_sent();
        let ok = respond(&sub, 200, Some("n"), &[(HeaderName::Expires, "3600")], None);
        self.sim.sub.handle_message(self.sim.clock.now, &ok);
        self.pump();
    }

    fn advance(&mut self, ms: u64) {
        let end = self.sim.clock.at(ms);
        loop {
            let next = [
                self.reg.poll_timeout(),
                self.sim.sub.poll_timeout(),
                self.call.as_ref().and_then(Call::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    self.sim.clock.now = t;
                    self.reg.handle_timeout(t);
                    self.sim.sub.handle_timeout(t);
                    if let Some(c) = &mut self.call {
                        c.handle_timeout(t);
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.sim.clock.now = end;
    }

    fn start(&mut self) {
        self.reg
            .handle_routes(self.sim.clock.now, vec![r(1), r(2)], None);
        self.reg.start(self.sim.clock.now);
        self.pump();
        self.register_ok();
        self.subscribe_ok();
    }

    fn sent_to(&self, route: &Route, after_ms: u64) -> usize {
        sent(&self.sim.seen)
            .iter()
            .filter(|(at, to, m)| *at >= after_ms && to == route && m.as_request().is_some())
            .count()
    }
}

#[test]
fn a_register_accepted_by_a_new_sbc_moves_the_subscription_there_at_once() {
    let mut line = Line::new(RegistrationSettings::default());
    line.start();
    line.log.clear();
    line.sim.clock.now = line.sim.clock.at(60_000);
    // SBC 1 answers with ICMP: the line fails over to SBC 2.
    line.reg
        .handle_transport_error(line.sim.clock.now, &r(1), TransportError::Icmp);
    line.pump();
    line.register_ok();
    assert_eq!(
        line.log,
        vec![
            "60000 REGISTER sbc2.example.com",
            "60000 invalidated sbc1.example.com NewRegistrar",
            "60000 registered sbc2.example.com",
            "60000 SUBSCRIBE sbc2.example.com",
        ]
    );
    assert_eq!(line.sent_to(&r(1), 60_000), 0, "nothing for the old SBC");
}

#[test]
fn fail_registration_on_invalidates_at_failover_start() {
    let mut line = Line::new(RegistrationSettings {
        re_register_on: true,
        fail_registration_on: true,
        ..RegistrationSettings::default()
    });
    line.start();
    line.log.clear();
    line.sim.clock.now = line.sim.clock.at(60_000);
    line.reg
        .handle_transport_error(line.sim.clock.now, &r(1), TransportError::Icmp);
    line.pump();
    assert_eq!(
        line.log,
        vec![
            "60000 invalidated sbc1.example.com FailoverStarted",
            "60000 REGISTER sbc2.example.com",
        ]
    );
    line.sim.clock.now = line.sim.clock.at(60_040);
    line.register_ok();
    assert_eq!(
        &line.log[2..],
        [
            "60040 registered sbc2.example.com",
            "60040 SUBSCRIBE sbc2.example.com"
        ]
    );
}

#[test]
fn a_call_holds_failback_and_failback_moves_the_subscription_home_after_it() {
    let settings = RegistrationSettings {
        re_register_on: true,
        fail_registration_on: false,
        failback_mode: FailbackMode::Duration,
        failback_timeout_s: 60,
        ..RegistrationSettings::default()
    };
    let mut line = Line::new(settings);
    line.start();
    line.reg
        .handle_transport_error(line.sim.clock.now, &r(1), TransportError::Icmp);
    line.pump();
    line.register_ok();
    line.subscribe_ok();
    // A call on SBC 2, answered.
    let now = line.sim.clock.now;
    let mut call = Call::outgoing(
        settings_for_calls(),
        identity(),
        None,
        OutgoingCall {
            target: "sip:1002@example.com".into(),
            route: r(2),
            local: local(),
            rtp: rtp(),
            last_route: true,
        },
        "call-9@test".into(),
        4,
        now,
    )
    .unwrap();
    let invite = std::iter::from_fn(|| call.poll_output())
        .find_map(|o| match o {
            CallOutput::Send(t) => Some(t.message),
            CallOutput::Event(_) => None,
        })
        .unwrap();
    call.handle_message(
        now,
        &respond(
            &invite,
            200,
            Some("b"),
            &[(HeaderName::Contact, "<sip:1002@10.0.0.2>")],
            None,
        ),
    );
    line.call = Some(call);
    line.pump();
    line.reg.handle_calls_active(now, true);
    line.log.clear();
    // The failback timer (60 s) passes during the call: nothing moves.
    line.advance(200_000);
    assert!(line.reg.is_failback_pending());
    assert!(
        !line.log.iter().any(|l| l.contains("REGISTER sbc1")),
        "{:?}",
        line.log
    );
    // The call ends at 200 s: failback at once.
    let now = line.sim.clock.now;
    let call = line.call.as_mut().unwrap();
    call.hangup(now).unwrap();
    let bye = std::iter::from_fn(|| call.poll_output())
        .find_map(|o| match o {
            CallOutput::Send(t) => Some(t.message),
            CallOutput::Event(_) => None,
        })
        .unwrap();
    call.handle_message(now, &respond(&bye, 200, Some("b"), &[], None));
    assert!(!call.is_active());
    line.reg.handle_calls_active(now, false);
    line.pump();
    line.register_ok();
    // RROFO failback drops the binding on SBC 2 silently (and with it the
    // subscription), then registers and subscribes on SBC 1.
    assert_eq!(
        line.log,
        vec![
            "200000 failback sbc1.example.com",
            "200000 invalidated sbc2.example.com Unregistered",
            "200000 REGISTER sbc1.example.com",
            "200000 registered sbc1.example.com",
            "200000 SUBSCRIBE sbc1.example.com",
        ]
    );
}

fn settings_for_calls() -> sipfleet_protocol::call::CallSettings {
    settings()
}
