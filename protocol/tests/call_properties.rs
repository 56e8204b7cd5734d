//! Property tests: random and mutated inbound messages, commands and time
//! steps never make a call (or a subscription) panic, never leave a
//! deadline in the past, and everything sent re-parses to the same message.

mod call_support;

use call_support::*;
use proptest::prelude::*;
use sipfleet_protocol::call::{CallSettings, CallState};
use sipfleet_protocol::message::{HeaderName, Message, Method};
use sipfleet_protocol::registration::InvalidationReason;
use sipfleet_protocol::route::Transport;
use sipfleet_protocol::subscription::EventPackage;

#[derive(Clone, Debug)]
enum Step {
    Advance(u64),
    Command(u8),
    /// A response to the last request sent: status index, tag choice, body choice.
    Respond(u8, u8, u8),
    /// A request from the peer: method, CSeq, tag choices, branch choice, body.
    Request(u8, u32, u8, u8, u8),
    /// A generated message with bytes mutated.
    Mutated(u8, Vec<(usize, u8)>),
}

const STATUSES: &[u16] = &[
    100, 180, 183, 200, 202, 301, 401, 407, 408, 423, 481, 486, 487, 491, 500, 503, 603,
];
const METHODS: &[Method] = &[
    Method::Invite,
    Method::Ack,
    Method::Bye,
    Method::Cancel,
    Method::Options,
    Method::Info,
    Method::Notify,
    Method::Update,
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..40_000).prop_map(Step::Advance),
        (0u8..9).prop_map(Step::Command),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| Step::Respond(a, b, c)),
        (any::<u8>(), 0u32..6, any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d, e)| Step::Request(a, b, c, d, e)),
        (
            any::<u8>(),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)
        )
            .prop_map(|(a, m)| Step::Mutated(a, m)),
    ]
}

fn body(choice: u8) -> Option<String> {
    match choice % 4 {
        0 => None,
        1 => Some(peer_sdp("sendrecv", u32::from(choice))),
        2 => Some(peer_sdp("sendonly", u32::from(choice))),
        _ => Some("v=0\r\ngarbage".into()),
    }
}

fn tag(choice: u8, ours: &str) -> Option<String> {
    match choice % 3 {
        0 => None,
        1 => Some(ours.to_string()),
        _ => Some("stranger".into()),
    }
}

/// The last request the machine sent, if any.
fn last_request(seen: &[Seen]) -> Option<Message> {
    sent(seen)
        .into_iter()
        .rev()
        .find(|(_, _, m)| m.as_request().is_some())
        .map(|(_, _, m)| m)
}

fn response_to(seen: &[Seen], status: u8, t: u8, b: u8) -> Option<Message> {
    let req = last_request(seen)?;
    if request(&req).method() == &Method::Ack {
        return None;
    }
    let status = STATUSES[usize::from(status) % STATUSES.len()];
    let mut extra: Vec<(HeaderName, &str)> = vec![(HeaderName::Contact, "<sip:1002@10.0.0.2>")];
    if t.is_multiple_of(2) {
        extra.push((HeaderName::RecordRoute, "<sip:p1.example.com;lr>"));
    }
    if matches!(status, 401 | 407) {
        let name = if status == 401 {
            HeaderName::WwwAuthenticate
        } else {
            HeaderName::ProxyAuthenticate
        };
        extra.push((name, "Digest realm=\"x\", nonce=\"n\""));
    }
    let to_tag = tag(t, "bob");
    Some(respond(
        &req,
        status,
        to_tag.as_deref(),
        &extra,
        body(b).as_deref(),
    ))
}

fn peer_request(call_id: &str, local_tag: &str, m: u8, cseq: u32, t: u8, br: u8, b: u8) -> Message {
    let method = METHODS[usize::from(m) % METHODS.len()].clone();
    let mut p = PeerDialog::new(call_id);
    p.to_tag = tag(t, local_tag);
    if t % 5 == 4 {
        p.from_tag = "bob".into();
    }
    let branch = if br.is_multiple_of(2) {
        "z9hG4bKpeer1".to_string()
    } else {
        format!("z9hG4bKr{br}")
    };
    p.request_with(method, cseq, &branch, body(b).as_deref())
}

fn mutate(msg: &Message, edits: &[(usize, u8)]) -> Option<Message> {
    let mut bytes = msg.to_bytes().to_vec();
    for (at, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at % bytes.len();
        bytes[i] = *byte;
    }
    Message::parse(bytes).ok()
}

fn run_call(sim: &mut CallSim, steps: Vec<Step>) {
    let call_id = sim.call.call_id().to_string();
    for s in steps {
        let now = sim.clock.now;
        match s {
            Step::Advance(ms) => {
                let target = sim.clock.ms() + ms;
                let mut guard = 0;
                while let Some(t) = sim.call.poll_timeout() {
                    assert!(t >= sim.clock.now, "deadline in the past");
                    if t > sim.clock.at(target) {
                        break;
                    }
                    sim.clock.now = t;
                    sim.call.handle_timeout(t);
                    sim.drain();
                    if let Some(next) = sim.call.poll_timeout() {
                        assert!(next > t, "handle_timeout left its deadline due");
                    }
                    guard += 1;
                    assert!(guard < 10_000, "livelock");
                }
                sim.clock.now = sim.clock.at(target);
            }
            Step::Command(c) => {
                let _ = match c {
                    0 => sim.call.answer(now, rtp()),
                    1 => sim.call.hangup(now),
                    2 => sim.call.hold(now),
                    3 => sim.call.resume(now),
                    4 => sim.call.retry_on_route(
                        now,
                        route(2, Transport::Udp),
                        local(),
                        c.is_multiple_of(2),
                    ),
                    5 => {
                        sim.call.give_up(now);
                        Ok(())
                    }
                    6 => {
                        sim.call.handle_registrar(Some(&route(2, Transport::Udp)));
                        Ok(())
                    }
                    7 => {
                        sim.call
                            .handle_transport_error(now, &route(1, Transport::Udp));
                        Ok(())
                    }
                    _ => {
                        sim.call.handle_registrar(None);
                        Ok(())
                    }
                };
                sim.drain();
            }
            Step::Respond(st, t, b) => {
                if let Some(m) = response_to(&sim.seen, st, t, b) {
                    sim.call.handle_message(now, &m);
                    sim.drain();
                }
            }
            Step::Request(m, cseq, t, br, b) => {
                let tag = sim.call.dialog().local_tag.clone();
                let msg = peer_request(&call_id, &tag, m, cseq, t, br, b);
                sim.call.handle_message(now, &msg);
                sim.drain();
            }
            Step::Mutated(k, edits) => {
                let tag = sim.call.dialog().local_tag.clone();
                let base = if k.is_multiple_of(2) {
                    response_to(&sim.seen, k, k / 2, k / 3)
                } else {
                    Some(peer_request(&call_id, &tag, k, u32::from(k % 4), k, k, k))
                };
                if let Some(msg) = base.and_then(|m| mutate(&m, &edits)) {
                    if sim.call.accepts(&msg) {
                        sim.call.handle_message(now, &msg);
                        sim.drain();
                    }
                }
            }
        }
        assert_eq!(sim.call.is_active(), sim.call.state() != CallState::Ended);
    }
    if !sim.call.is_active() {
        // An ended call keeps at most a rejection's Timer G/H: gone 32 s on.
        let end = sim.clock.ms() + 32_000;
        sim.run_until(end);
        assert_eq!(sim.call.poll_timeout(), None);
    }
}

fn only_signal(on: bool) -> CallSettings {
    CallSettings {
        only_signal_with_registered: on,
        ..settings()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn outgoing_calls_survive_arbitrary_input(
        steps in proptest::collection::vec(step(), 0..40),
        last in any::<bool>(),
        tcp in any::<bool>(),
        gate in any::<bool>(),
    ) {
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        let mut sim = CallSim::outgoing(only_signal(gate), transport, last);
        run_call(&mut sim, steps);
    }

    #[test]
    fn incoming_calls_survive_arbitrary_input(
        steps in proptest::collection::vec(step(), 0..40),
        with_sdp in any::<bool>(),
        auto in any::<bool>(),
    ) {
        let mut peer = PeerDialog::new("in-prop@peer");
        let sdp = peer_sdp("sendrecv", 1);
        let invite = peer.request(Method::Invite, with_sdp.then_some(sdp.as_str()));
        let settings = CallSettings { auto_answer: auto, ..settings() };
        let mut sim = CallSim::incoming(settings, &invite);
        run_call(&mut sim, steps);
    }

    #[test]
    fn arbitrary_bytes_as_an_incoming_invite_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        // Pure garbage, and a valid INVITE with bytes changed.
        let mut peer = PeerDialog::new("garbage@peer");
        let invite = peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 1)));
        for candidate in [Message::parse(bytes).ok(), mutate(&invite, &edits)].into_iter().flatten() {
            if let Some(req) = candidate.as_request() {
                let clock = Clock::new();
                let _ = sipfleet_protocol::call::Call::incoming(
                    settings(),
                    identity(),
                    None,
                    sipfleet_protocol::call::IncomingCall {
                        invite: req,
                        route: route(1, Transport::Udp),
                        local: local(),
                    },
                    1,
                    clock.now,
                );
            }
        }
    }

    #[test]
    fn subscriptions_survive_arbitrary_input(
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        let mut sim = SubSim::new(EventPackage::Dialog, "sip:1002@example.com");
        sim.input(|s, now| s.registered_on(now, &route(1, Transport::Udp), local()));
        for s in steps {
            let now = sim.clock.now;
            match s {
                Step::Advance(ms) => {
                    // `run_until` asserts that no deadline is left in the past.
                    let t = sim.clock.ms() + ms * 100;
                    sim.run_until(t);
                }
                Step::Command(c) => {
                    match c % 4 {
                        0 => sim.sub.invalidate(InvalidationReason::NewRegistrar),
                        1 => sim.sub.registered_on(now, &route(1 + c % 3, Transport::Udp), local()),
                        2 => sim.sub.unsubscribe(now),
                        _ => sim.sub.invalidate(InvalidationReason::FailoverStarted),
                    }
                    sim.drain();
                }
                Step::Respond(st, t, b) => {
                    if let Some(m) = response_to(&sim.seen, st, t, b) {
                        sim.sub.handle_message(now, &m);
                        sim.drain();
                    }
                }
                Step::Request(_, _, t, _, _) | Step::Mutated(t, _) => {
                    let cseq = cseq_of(&s);
                    let Some(sub) = last_request(&sim.seen) else { continue };
                    let states = ["active;expires=60", "pending", "terminated;reason=timeout",
                        "terminated;reason=rejected", "terminated;reason=probation;retry-after=5", "bogus"];
                    let state = states[usize::from(t) % states.len()];
                    let event = if t.is_multiple_of(7) { "presence" } else { "dialog" };
                    let tag = if t.is_multiple_of(2) { "notifier" } else { "other" };
                    let mut n = notify(&sub, tag, cseq, event, state, None);
                    if let Step::Mutated(_, edits) = &s {
                        match mutate(&n, edits) { Some(m) => n = m, None => continue }
                    }
                    if sim.sub.accepts(&n) {
                        sim.sub.handle_message(now, &n);
                        sim.drain();
                    }
                }
            }
        }
    }
}

fn cseq_of(s: &Step) -> u32 {
    match s {
        Step::Request(_, c, ..) => *c,
        _ => 0,
    }
}
