//! Hold and resume (re-INVITE with a new SDP version), in-dialog CSeq and
//! target refresh, and `onlySignalWithRegistered`: a call whose SBC no
//! longer holds the registration ends when it needs to signal.

mod call_support;

use call_support::*;
use sipfleet_protocol::call::{CallError, CallSettings, CallState, EndReason};
use sipfleet_protocol::message::{HeaderName, Message, Method};
use sipfleet_protocol::route::Transport;
use sipfleet_protocol::sdp::{Direction, RemoteMedia};

/// An outgoing call answered by the peer at 10.0.0.2:5070 behind two
/// record-routing proxies.
fn established(settings: CallSettings) -> CallSim {
    let mut sim = CallSim::outgoing(settings, Transport::Udp, true);
    let invite = sim.last_sent();
    sim.deliver(&respond(
        &invite,
        200,
        Some("bob"),
        &[
            (HeaderName::RecordRoute, "<sip:p2.example.com;lr>"),
            (HeaderName::RecordRoute, "<sip:p1.example.com;lr>"),
            (HeaderName::Contact, "<sip:1002@10.0.0.2:5070>"),
        ],
        Some(&peer_sdp("sendrecv", 1)),
    ));
    assert_eq!(sim.call.state(), CallState::Established);
    sim.take();
    sim
}

fn ok_to(sim: &CallSim, req: &Message, contact: &str, direction: &str, v: u32) -> Message {
    let _ = sim;
    respond(
        req,
        200,
        Some("bob"),
        &[(HeaderName::Contact, contact)],
        Some(&peer_sdp(direction, v)),
    )
}

#[test]
fn hold_then_resume_are_reinvites_with_growing_sdp_versions() {
    let mut sim = established(settings());
    sim.clock.now = sim.clock.at(5_000);
    sim.input(|c, now| c.hold(now).unwrap());
    let hold = sim.last_sent();
    let r = request(&hold);
    assert_eq!(r.method(), &Method::Invite);
    assert_eq!(r.uri_str(), "sip:1002@10.0.0.2:5070");
    assert_eq!(
        r.headers().get_all(HeaderName::Route).collect::<Vec<_>>(),
        vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(r.headers().cseq().unwrap().seq, 2);
    assert_eq!(r.headers().call_id().unwrap(), "call-1@test");
    assert_eq!(r.headers().to().unwrap().tag(), Some("bob"));
    let sdp = RemoteMedia::parse(r.body()).unwrap();
    assert_eq!(sdp.direction, Direction::SendOnly);
    assert_eq!(sdp.version, 2);
    sim.clock.now = sim.clock.at(5_100);
    sim.deliver(&ok_to(
        &sim,
        &hold,
        "<sip:1002@10.0.0.2:5070>",
        "recvonly",
        2,
    ));
    let ack = sim.last_sent();
    assert_eq!(ack.headers().cseq().unwrap().to_string(), "2 ACK");
    assert!(sim.call.is_held());

    sim.clock.now = sim.clock.at(9_000);
    sim.input(|c, now| c.resume(now).unwrap());
    let resume = sim.last_sent();
    let sdp = RemoteMedia::parse(request(&resume).body()).unwrap();
    assert_eq!(sdp.direction, Direction::SendRecv);
    assert_eq!(sdp.version, 3);
    assert_eq!(resume.headers().cseq().unwrap().seq, 3);
    sim.deliver(&ok_to(
        &sim,
        &resume,
        "<sip:1002@10.0.0.2:5070>",
        "sendrecv",
        3,
    ));
    assert!(!sim.call.is_held());
    assert_eq!(
        events(&sim.seen),
        vec!["5100 call_held local", "9000 call_resumed local"]
    );
}

#[test]
fn a_second_command_while_a_reinvite_is_pending_is_refused() {
    let mut sim = established(settings());
    sim.input(|c, now| c.hold(now).unwrap());
    let err = sim.call.resume(sim.clock.now).unwrap_err();
    assert_eq!(
        err,
        CallError::WrongState {
            command: "resume",
            state: CallState::Established
        }
    );
    assert_eq!(wire(&sim.seen), vec!["0 INVITE 2 INVITE"]);
}

#[test]
fn a_refused_hold_leaves_the_call_up_and_a_481_ends_it() {
    let mut sim = established(settings());
    sim.input(|c, now| c.hold(now).unwrap());
    let hold = sim.last_sent();
    sim.deliver(&respond(&hold, 491, Some("bob"), &[], None));
    assert_eq!(request(&sim.last_sent()).method(), &Method::Ack);
    assert_eq!(sim.call.state(), CallState::Established);
    assert!(!sim.call.is_held());
    sim.input(|c, now| c.hold(now).unwrap());
    let hold = sim.last_sent();
    assert_eq!(hold.headers().cseq().unwrap().seq, 3);
    sim.deliver(&respond(&hold, 481, Some("bob"), &[], None));
    assert_eq!(
        events(&sim.seen),
        vec![
            "0 call_reinvite_failed 491",
            "0 call_ended dialog_gone Some(481)"
        ]
    );
}

#[test]
fn a_reinvite_2xx_refreshes_the_remote_target() {
    let mut sim = established(settings());
    sim.input(|c, now| c.hold(now).unwrap());
    let hold = sim.last_sent();
    sim.deliver(&ok_to(
        &sim,
        &hold,
        "<sip:1002@10.0.0.9:5090>",
        "recvonly",
        2,
    ));
    sim.input(|c, now| c.hangup(now).unwrap());
    let bye = sim.last_sent();
    assert_eq!(request(&bye).uri_str(), "sip:1002@10.0.0.9:5090");
    assert_eq!(bye.headers().cseq().unwrap().seq, 3);
}

#[test]
fn an_unanswered_hold_reinvite_ends_the_dialog_with_a_bye_at_timer_b() {
    let mut sim = established(settings());
    sim.input(|c, now| c.hold(now).unwrap());
    sim.run_until(32_000);
    assert_eq!(
        wire(&sim.seen),
        vec![
            "0 INVITE 2 INVITE",
            "500 INVITE 2 INVITE",
            "1500 INVITE 2 INVITE",
            "3500 INVITE 2 INVITE",
            "7500 INVITE 2 INVITE",
            "15500 INVITE 2 INVITE",
            "31500 INVITE 2 INVITE",
            "32000 BYE 3 BYE",
        ]
    );
}

fn only_signal() -> CallSettings {
    CallSettings {
        only_signal_with_registered: true,
        ..settings()
    }
}

#[test]
fn only_signal_with_registered_ends_a_call_that_must_hold_via_another_sbc() {
    let mut sim = established(only_signal());
    let (r1, r2) = (route(1, Transport::Udp), route(2, Transport::Udp));
    assert!(sim.call.may_signal_via(Some(&r1)));
    assert!(!sim.call.may_signal_via(Some(&r2)));
    assert!(!sim.call.may_signal_via(None));
    // The registration moves to SBC 2: nothing happens until the call
    // needs to signal.
    sim.input(|c, _| c.handle_registrar(Some(&r2)));
    assert!(sim.call.is_active());
    sim.clock.now = sim.clock.at(60_000);
    sim.input(|c, now| c.hold(now).unwrap());
    assert!(sent(&sim.seen).is_empty(), "nothing goes to SBC 1");
    assert_eq!(
        events(&sim.seen),
        vec!["60000 call_ended registrar_changed None"]
    );
    assert!(!sim.call.is_active());
    assert_eq!(sim.call.poll_timeout(), None);
}

#[test]
fn only_signal_with_registered_hangup_via_another_sbc_sends_no_bye() {
    let mut sim = established(only_signal());
    sim.input(|c, _| c.handle_registrar(Some(&route(2, Transport::Udp))));
    sim.input(|c, now| c.hangup(now).unwrap());
    assert!(sent(&sim.seen).is_empty());
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::RegistrarChanged, None))
    );
}

#[test]
fn only_signal_with_registered_lets_the_call_signal_once_the_sbc_is_back() {
    let mut sim = established(only_signal());
    sim.input(|c, _| c.handle_registrar(Some(&route(2, Transport::Udp))));
    sim.input(|c, _| c.handle_registrar(Some(&route(1, Transport::Udp))));
    sim.input(|c, now| c.hold(now).unwrap());
    let sent = sent(&sim.seen);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, route(1, Transport::Udp));
}

#[test]
fn without_only_signal_with_registered_the_call_keeps_its_sbc() {
    let mut sim = established(settings());
    sim.input(|c, _| c.handle_registrar(Some(&route(2, Transport::Udp))));
    assert!(sim.call.may_signal_via(Some(&route(2, Transport::Udp))));
    sim.input(|c, now| c.hold(now).unwrap());
    let sent = sent(&sim.seen);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, route(1, Transport::Udp), "the dialog's SBC");
}
