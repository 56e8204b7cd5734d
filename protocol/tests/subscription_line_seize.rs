//! Emergency dialing on a shared line: the line-seize SUBSCRIBE is retried
//! up to `lineSeize.retries` times within 32 s, and the emergency INVITE is
//! sent when the seize succeeds, fails, or runs out of time. Virtual time,
//! to the ms; the INVITE is built by a real `Call` when the seize says so.

mod call_support;

use call_support::*;
use sipfleet_protocol::call::{Call, CallOutput, OutgoingCall};
use sipfleet_protocol::line_seize::{LineSeize, LineSeizeOutput, LineSeizeSettings};
use sipfleet_protocol::message::{HeaderName, Message, Method};
use sipfleet_protocol::route::Transport;

struct Emergency {
    clock: Clock,
    seize: LineSeize,
    call: Option<Call>,
    /// `"<ms> <what>"` of SUBSCRIBEs, events and the INVITE.
    log: Vec<String>,
    last_subscribe: Option<Message>,
    transport: Transport,
}

impl Emergency {
    fn start(retries: u32, transport: Transport) -> Self {
        let clock = Clock::new();
        let seize = LineSeize::start(
            LineSeizeSettings {
                retries,
                user_agent: "sipfleet/test".into(),
                ..LineSeizeSettings::default()
            },
            &identity(),
            Some(digest()),
            route(1, transport),
            local(),
            "seize-1@test".into(),
            5,
            clock.now,
        );
        let mut e = Emergency {
            clock,
            seize,
            call: None,
            log: Vec::new(),
            last_subscribe: None,
            transport,
        };
        e.drain();
        e
    }

    fn drain(&mut self) {
        let at = self.clock.ms();
        while let Some(out) = self.seize.poll_output() {
            match out {
                LineSeizeOutput::Send(t) => {
                    let msg = round_trip(&t.message);
                    let cseq = msg.headers().cseq().unwrap();
                    match &msg {
                        Message::Request(r) => {
                            assert_eq!(r.method(), &Method::Subscribe);
                            assert_eq!(msg.headers().get(HeaderName::Event), Some("line-seize"));
                            self.log.push(format!("{at} SUBSCRIBE {}", cseq.seq));
                            self.last_subscribe = Some(msg.clone());
                        }
                        Message::Response(r) => self
                            .log
                            .push(format!("{at} {} {cseq}", r.status().as_u16())),
                    }
                }
                LineSeizeOutput::Event(e) => {
                    self.log
                        .push(format!("{at} {} {}", e.name(), e.outcome.as_str()));
                }
                LineSeizeOutput::PlaceCall { seized } => {
                    let mut call = Call::outgoing(
                        settings(),
                        identity(),
                        None,
                        OutgoingCall {
                            target: "sip:911@example.com".into(),
                            route: route(1, self.transport),
                            local: local(),
                            rtp: rtp(),
                            last_route: true,
                        },
                        "emergency-1@test".into(),
                        3,
                        self.clock.now,
                    )
                    .unwrap();
                    while let Some(o) = call.poll_output() {
                        if let CallOutput::Send(t) = o {
                            let msg = round_trip(&t.message);
                            assert_eq!(request(&msg).method(), &Method::Invite);
                            self.log.push(format!("{at} INVITE seized={seized}"));
                        }
                    }
                    self.call = Some(call);
                }
            }
        }
    }

    fn run_until(&mut self, ms: u64) {
        let end = self.clock.at(ms);
        while let Some(t) = self.seize.poll_timeout() {
            assert!(t >= self.clock.now);
            if t > end {
                break;
            }
            self.clock.now = t;
            self.seize.handle_timeout(t);
            self.drain();
        }
        self.clock.now = end;
    }

    fn deliver(&mut self, msg: &Message) {
        assert!(self.seize.accepts(msg));
        self.seize.handle_message(self.clock.now, msg);
        self.drain();
    }
}

#[test]
fn silent_sbc_ten_retries_then_the_invite_at_32_s() {
    let mut e = Emergency::start(10, Transport::Udp);
    e.run_until(60_000);
    assert_eq!(
        e.log,
        vec![
            "0 SUBSCRIBE 1",
            "500 SUBSCRIBE 1",
            "1500 SUBSCRIBE 1",
            "3500 SUBSCRIBE 1",
            "7500 SUBSCRIBE 1",
            "11500 SUBSCRIBE 1",
            "15500 SUBSCRIBE 1",
            "19500 SUBSCRIBE 1",
            "23500 SUBSCRIBE 1",
            "27500 SUBSCRIBE 1",
            "31500 SUBSCRIBE 1",
            "32000 line_seize_failed timeout",
            "32000 INVITE seized=false",
        ]
    );
    assert_eq!(e.seize.deadline(), e.clock.at(32_000));
}

#[test]
fn silent_sbc_three_retries_sends_the_invite_earlier() {
    let mut e = Emergency::start(3, Transport::Udp);
    e.run_until(60_000);
    assert_eq!(
        e.log,
        vec![
            "0 SUBSCRIBE 1",
            "500 SUBSCRIBE 1",
            "1500 SUBSCRIBE 1",
            "3500 SUBSCRIBE 1",
            "7500 line_seize_failed timeout",
            "7500 INVITE seized=false",
        ]
    );
}

#[test]
fn retries_outside_3_to_10_are_clamped() {
    let mut low = Emergency::start(0, Transport::Udp);
    low.run_until(60_000);
    assert_eq!(low.log.last().unwrap(), "7500 INVITE seized=false");
    let mut high = Emergency::start(50, Transport::Udp);
    high.run_until(60_000);
    assert_eq!(high.log.last().unwrap(), "32000 INVITE seized=false");
    assert_eq!(high.log.len(), 13);
}

#[test]
fn over_tcp_one_copy_and_the_same_give_up_time() {
    let mut e = Emergency::start(10, Transport::Tcp);
    e.run_until(60_000);
    assert_eq!(
        e.log,
        vec![
            "0 SUBSCRIBE 1",
            "32000 line_seize_failed timeout",
            "32000 INVITE seized=false",
        ]
    );
    let mut e = Emergency::start(3, Transport::Tcp);
    e.run_until(60_000);
    assert_eq!(e.log.last().unwrap(), "7500 INVITE seized=false");
}

#[test]
fn a_seized_line_sends_the_invite_at_once_and_answers_notifies() {
    let mut e = Emergency::start(10, Transport::Udp);
    e.run_until(800);
    let sub = e.last_subscribe.clone().unwrap();
    e.deliver(&respond(
        &sub,
        200,
        Some("sca"),
        &[(HeaderName::Expires, "15")],
        None,
    ));
    e.run_until(60_000);
    assert_eq!(
        e.log,
        vec![
            "0 SUBSCRIBE 1",
            "500 SUBSCRIBE 1",
            "800 line_seized seized",
            "800 INVITE seized=true",
        ]
    );
    e.deliver(&notify(
        &sub,
        "sca",
        1,
        "line-seize",
        "active;expires=15",
        None,
    ));
    assert_eq!(e.log.last().unwrap(), "60000 200 1 NOTIFY");
}

#[test]
fn a_refused_seize_sends_the_invite_at_once() {
    let mut e = Emergency::start(10, Transport::Udp);
    e.run_until(2_000);
    let sub = e.last_subscribe.clone().unwrap();
    e.deliver(&respond(&sub, 403, Some("sca"), &[], None));
    assert_eq!(
        &e.log[e.log.len() - 2..],
        ["2000 line_seize_failed refused", "2000 INVITE seized=false"]
    );
    assert_eq!(e.seize.poll_timeout(), None);
}

#[test]
fn a_challenge_is_answered_within_the_same_32_s() {
    let mut e = Emergency::start(10, Transport::Udp);
    e.run_until(1_000);
    let sub = e.last_subscribe.clone().unwrap();
    e.deliver(&respond(
        &sub,
        407,
        Some("p"),
        &[(
            HeaderName::ProxyAuthenticate,
            "Digest realm=\"example.com\", nonce=\"n\", qop=\"auth\"",
        )],
        None,
    ));
    let again = e.last_subscribe.clone().unwrap();
    assert_eq!(again.headers().cseq().unwrap().seq, 2);
    assert!(again
        .headers()
        .get(HeaderName::ProxyAuthorization)
        .is_some());
    e.run_until(60_000);
    let tail: Vec<_> = e.log.iter().skip(2).cloned().collect();
    assert_eq!(
        tail,
        vec![
            "1000 SUBSCRIBE 2",
            "1500 SUBSCRIBE 2",
            "2500 SUBSCRIBE 2",
            "4500 SUBSCRIBE 2",
            "8500 SUBSCRIBE 2",
            "12500 SUBSCRIBE 2",
            "16500 SUBSCRIBE 2",
            "20500 SUBSCRIBE 2",
            "24500 SUBSCRIBE 2",
            "28500 SUBSCRIBE 2",
            "32000 line_seize_failed timeout",
            "32000 INVITE seized=false",
        ]
    );
}

#[test]
fn a_transport_error_sends_the_invite_at_once() {
    let mut e = Emergency::start(10, Transport::Udp);
    e.clock.now = e.clock.at(100);
    e.seize.handle_transport_error(&route(1, Transport::Udp));
    e.drain();
    assert_eq!(
        &e.log[1..],
        [
            "100 line_seize_failed transport_error",
            "100 INVITE seized=false"
        ]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const STATUSES: &[u16] = &[100, 180, 200, 202, 401, 403, 407, 481, 486, 500, 503, 603];

    proptest! {
        /// Whatever the SBC answers, and whenever, the emergency INVITE is
        /// released exactly once, no later than 32 s after the first
        /// SUBSCRIBE.
        #[test]
        fn the_invite_is_always_released_once_within_32_s(
            retries in 0u32..15,
            tcp in any::<bool>(),
            answers in proptest::collection::vec((0u64..40_000, any::<u8>(), any::<bool>()), 0..8),
        ) {
            let transport = if tcp { Transport::Tcp } else { Transport::Udp };
            let mut e = Emergency::start(retries, transport);
            let mut answers = answers;
            answers.sort_by_key(|a| a.0);
            for (at, status, stale) in answers {
                e.run_until(at);
                let Some(sub) = e.last_subscribe.clone() else { continue };
                let status = STATUSES[usize::from(status) % STATUSES.len()];
                let challenge = if stale {
                    "Digest realm=\"x\", nonce=\"n\", stale=true"
                } else {
                    "Digest realm=\"x\", nonce=\"n\""
                };
                let extra: Vec<(HeaderName, &str)> = match status {
                    401 => vec![(HeaderName::WwwAuthenticate, challenge)],
                    407 => vec![(HeaderName::ProxyAuthenticate, challenge)],
                    _ => vec![],
                };
                e.deliver(&respond(&sub, status, Some("sca"), &extra, None));
            }
            e.run_until(100_000);
            let invites: Vec<_> = e.log.iter().filter(|l| l.contains("INVITE")).collect();
            prop_assert_eq!(invites.len(), 1, "{:?}", e.log);
            let at: u64 = invites[0].split(' ').next().unwrap().parse().unwrap();
            prop_assert!(at <= 32_000, "{:?}", e.log);
            prop_assert_eq!(e.seize.poll_timeout(), None);
        }
    }
}

#[test]
fn a_provisional_after_a_challenge_cannot_push_the_invite_past_32_s() {
    let mut e = Emergency::start(0, Transport::Udp);
    let sub = e.last_subscribe.clone().unwrap();
    e.deliver(&respond(&sub, 100, None, &[], None));
    e.run_until(7_257);
    let sub = e.last_subscribe.clone().unwrap();
    e.deliver(&respond(
        &sub,
        401,
        Some("p"),
        &[(
            HeaderName::WwwAuthenticate,
            "Digest realm=\"x\", nonce=\"n\"",
        )],
        None,
    ));
    let again = e.last_subscribe.clone().unwrap();
    e.deliver(&respond(&again, 100, None, &[], None));
    e.run_until(60_000);
    assert_eq!(
        &e.log[e.log.len() - 2..],
        [
            "32000 line_seize_failed timeout",
            "32000 INVITE seized=false"
        ]
    );
}
