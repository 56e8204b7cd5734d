//! Outgoing calls: INVITE with an SDP offer, ringing, 2xx and its ACK
//! through the route set, non-2xx ACK, 401/407, CANCEL, BYE, and the
//! guide's Call-ID rule across route retries. Virtual time, to the ms.

mod call_support;

use call_support::*;
use sipfleet_protocol::call::{CallState, EndReason};
use sipfleet_protocol::message::{HeaderName, Message, Method};
use sipfleet_protocol::route::Transport;
use sipfleet_protocol::sdp::{Direction, RemoteMedia};

const CHALLENGE: &str = "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"";

fn ringing_then_ok(sim: &mut CallSim) -> sipfleet_protocol::message::Message {
    let invite = sim.last_sent();
    sim.deliver(&respond(&invite, 180, Some("bob"), &[], None));
    let ok = respond(
        &invite,
        200,
        Some("bob"),
        &[
            (HeaderName::RecordRoute, "<sip:p2.example.com;lr>"),
            (HeaderName::RecordRoute, "<sip:p1.example.com;lr>"),
            (HeaderName::Contact, "<sip:1002@10.0.0.2:5070>"),
        ],
        Some(&peer_sdp("sendrecv", 1)),
    );
    sim.deliver(&ok);
    ok
}

#[test]
fn invite_offer_ringing_answer_and_ack_through_the_reversed_route_set() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, false);
    let invite = sim.last_sent();
    let req = request(&invite);
    assert_eq!(req.method(), &Method::Invite);
    assert_eq!(req.uri_str(), "sip:1002@example.com");
    let h = req.headers();
    assert_eq!(h.call_id().unwrap(), "call-1@test");
    assert_eq!(h.cseq().unwrap().seq, 1);
    assert!(h.from().unwrap().tag().is_some());
    assert_eq!(h.to().unwrap().tag(), None);
    assert_eq!(h.get(HeaderName::ContentType), Some("application/sdp"));
    let offer = RemoteMedia::parse(req.body()).unwrap();
    assert_eq!(offer.rtp, rtp());
    assert_eq!(offer.payloads, vec![0, 8]);
    assert_eq!(offer.direction, Direction::SendRecv);
    assert_eq!(sim.call.state(), CallState::Calling);

    sim.clock.now = sim.clock.at(200);
    let ok = ringing_then_ok(&mut sim);
    assert_eq!(sim.call.state(), CallState::Established);
    let ack = sim.last_sent();
    let ack_req = request(&ack);
    assert_eq!(ack_req.method(), &Method::Ack);
    // RFC 3261 12.1.2 / 12.2.1.1: remote target, Record-Route reversed.
    assert_eq!(ack_req.uri_str(), "sip:1002@10.0.0.2:5070");
    let routes: Vec<_> = ack_req.headers().get_all(HeaderName::Route).collect();
    assert_eq!(
        routes,
        vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    );
    assert_eq!(ack_req.headers().cseq().unwrap().seq, 1);
    assert_eq!(ack_req.headers().to().unwrap().tag(), Some("bob"));
    assert_ne!(
        branch(&ack),
        branch(&invite),
        "2xx ACK is a new transaction"
    );
    assert_eq!(
        sim.call.remote_media().unwrap().rtp,
        "10.0.0.2:6000".parse().unwrap()
    );
    assert_eq!(
        events(&sim.seen),
        vec![
            "0 call_started",
            "200 call_ringing",
            "200 call_answered",
            "200 call_established",
        ]
    );
    // A retransmitted 2xx gets the same ACK again, nothing else.
    let before = sent(&sim.seen).len();
    sim.deliver(&ok);
    let all = sent(&sim.seen);
    assert_eq!(all.len(), before + 1);
    assert_eq!(all[before].2, ack);
    assert!(sim.call.is_active());
}

#[test]
fn udp_invite_retransmits_with_timer_a_and_the_route_fails_at_3_5_s() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, false);
    sim.run_until(10_000);
    assert_eq!(
        wire(&sim.seen),
        vec![
            "0 INVITE 1 INVITE",
            "500 INVITE 1 INVITE",
            "1500 INVITE 1 INVITE"
        ]
    );
    assert_eq!(
        events(&sim.seen),
        vec!["0 call_started", "3500 call_route_failed budget_over=false"]
    );
    assert!(sim.call.awaits_route());
    assert_eq!(
        sim.call.poll_timeout(),
        Some(sim.clock.at(32_000)),
        "waiting for the line's next route, at most until Timer B"
    );
    assert!(sim.call.is_active());
}

#[test]
fn retry_on_route_keeps_call_id_and_from_tag_and_timer_b_ends_at_32_s() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, false);
    let first = sim.last_sent();
    sim.run_until(3_500);
    sim.take();
    sim.input(|c, now| {
        c.retry_on_route(now, route(2, Transport::Udp), local(), true)
            .unwrap()
    });
    let second = sim.last_sent();
    let (a, b) = (first.headers(), second.headers());
    assert_eq!(a.call_id().unwrap(), b.call_id().unwrap());
    assert_eq!(a.from().unwrap().tag(), b.from().unwrap().tag());
    assert_eq!(b.cseq().unwrap().seq, 2);
    assert_ne!(branch(&first), branch(&second));
    assert_eq!(request(&first).body(), request(&second).body());
    assert_eq!(sent(&sim.seen)[0].1, route(2, Transport::Udp));
    // Last route: Timer A doubles (0.5, 1, 2, 4, 8 s) until Timer B, 32 s
    // after the first INVITE of the call.
    sim.run_until(40_000);
    assert_eq!(
        wire(&sim.seen),
        vec![
            "3500 INVITE 2 INVITE",
            "4000 INVITE 2 INVITE",
            "5000 INVITE 2 INVITE",
            "7000 INVITE 2 INVITE",
            "11000 INVITE 2 INVITE",
            "19000 INVITE 2 INVITE",
        ]
    );
    assert_eq!(
        events(&sim.seen),
        vec![
            "32000 call_route_failed budget_over=true",
            "32000 call_ended timeout None"
        ]
    );
    assert!(!sim.call.is_active());
}

#[test]
fn tcp_invite_is_sent_once_and_a_refused_flow_fails_the_route() {
    let mut sim = CallSim::outgoing(settings(), Transport::Tcp, false);
    sim.input(|c, now| c.handle_transport_error(now, &route(1, Transport::Tcp)));
    assert_eq!(
        events(&sim.seen),
        vec!["0 call_started", "0 call_route_failed budget_over=false"]
    );
    sim.input(|c, now| {
        c.retry_on_route(now, route(2, Transport::Tcp), local(), true)
            .unwrap()
    });
    sim.run_until(31_999);
    assert_eq!(
        wire(&sim.seen),
        vec!["0 INVITE 1 INVITE", "0 INVITE 2 INVITE"]
    );
    sim.run_until(32_000);
    assert_eq!(sim.call.end_reason(), Some((EndReason::Timeout, None)));
}

#[test]
fn a_486_is_acked_in_the_invite_transaction_and_ends_the_call() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.clock.now = sim.clock.at(300);
    let busy = respond(&invite, 486, Some("bob"), &[], None);
    sim.deliver(&busy);
    let ack = sim.last_sent();
    let r = request(&ack);
    assert_eq!(r.method(), &Method::Ack);
    assert_eq!(r.uri_str(), request(&invite).uri_str());
    assert_eq!(branch(&ack), branch(&invite), "same transaction");
    assert_eq!(r.headers().to().unwrap().tag(), Some("bob"));
    assert_eq!(r.headers().cseq().unwrap().to_string(), "1 ACK");
    assert_eq!(
        events(&sim.seen).last().unwrap(),
        "300 call_ended rejected Some(486)"
    );
    // The retransmitted 486 is acknowledged again; the only deadline left
    // is the window for a late 2xx from another fork, 64*T1 after the end.
    sim.call.handle_message(sim.clock.now, &busy);
    sim.drain();
    assert_eq!(sim.last_sent(), ack);
    assert_eq!(sim.call.poll_timeout(), Some(sim.clock.at(32_300)));
}

#[test]
fn a_407_is_acked_then_the_invite_is_resent_with_credentials() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.clock.now = sim.clock.at(100);
    let challenge = respond(
        &invite,
        407,
        Some("proxy"),
        &[(HeaderName::ProxyAuthenticate, CHALLENGE)],
        None,
    );
    sim.deliver(&challenge);
    let out = sent(&sim.seen);
    let (ack, again) = (&out[out.len() - 2].2, &out[out.len() - 1].2);
    assert_eq!(request(ack).method(), &Method::Ack);
    assert_eq!(branch(ack), branch(&invite));
    let r = request(again);
    assert_eq!(r.method(), &Method::Invite);
    assert_eq!(r.headers().call_id().unwrap(), "call-1@test");
    assert_eq!(
        r.headers().from().unwrap().tag(),
        invite.headers().from().unwrap().tag()
    );
    assert_eq!(r.headers().cseq().unwrap().seq, 2);
    assert_ne!(branch(again), branch(&invite));
    let auth = r.headers().get(HeaderName::ProxyAuthorization).unwrap();
    assert!(auth.starts_with("Digest username=\"1001\""), "{auth}");
    assert!(auth.contains("uri=\"sip:1002@example.com\""), "{auth}");
    // A second, non-stale challenge ends the call.
    let again_msg = again.clone();
    sim.deliver(&respond(
        &again_msg,
        407,
        Some("proxy"),
        &[(HeaderName::ProxyAuthenticate, CHALLENGE)],
        None,
    ));
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::AuthFailed, Some(407)))
    );
    assert_eq!(request(&sim.last_sent()).method(), &Method::Ack);
}

/// An outgoing call that rings (180 at 0 ms) and is hung up at 2,000 ms:
/// the call, its INVITE and the CANCEL sent.
fn cancelled_while_ringing() -> (CallSim, Message, Message) {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.deliver(&respond(&invite, 180, Some("bob"), &[], None));
    sim.clock.now = sim.clock.at(2_000);
    sim.input(|c, now| c.hangup(now).unwrap());
    let cancel = sim.last_sent();
    (sim, invite, cancel)
}

#[test]
fn cancel_of_a_ringing_call_then_487_and_its_ack() {
    let (mut sim, invite, cancel) = cancelled_while_ringing();
    let r = request(&cancel);
    assert_eq!(r.method(), &Method::Cancel);
    assert_eq!(r.uri_str(), request(&invite).uri_str());
    assert_eq!(branch(&cancel), branch(&invite));
    assert_eq!(r.headers().cseq().unwrap().to_string(), "1 CANCEL");
    assert_eq!(r.headers().to().unwrap().tag(), None);
    assert_eq!(sim.call.state(), CallState::Cancelling);
    sim.clock.now = sim.clock.at(2_050);
    sim.deliver(&respond(&cancel, 200, Some("bob"), &[], None));
    sim.deliver(&respond(&invite, 487, Some("bob"), &[], None));
    assert_eq!(request(&sim.last_sent()).method(), &Method::Ack);
    assert_eq!(
        events(&sim.seen),
        vec![
            "0 call_started",
            "0 call_ringing",
            "2050 call_ended cancelled Some(487)"
        ]
    );
}

#[test]
fn hangup_before_any_provisional_waits_for_one_then_cancels() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.input(|c, now| c.hangup(now).unwrap());
    assert_eq!(wire(&sim.seen), vec!["0 INVITE 1 INVITE"]);
    sim.clock.now = sim.clock.at(400);
    sim.deliver(&respond(&invite, 100, None, &[], None));
    assert_eq!(request(&sim.last_sent()).method(), &Method::Cancel);
    // No 487 ever: the call is over 64*T1 after the CANCEL.
    sim.run_until(32_399);
    assert!(sim.call.is_active());
    sim.run_until(32_400);
    assert_eq!(sim.call.end_reason(), Some((EndReason::Cancelled, None)));
}

#[test]
fn a_2xx_that_crosses_the_cancel_is_acked_then_byed() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.deliver(&respond(&invite, 180, Some("bob"), &[], None));
    sim.input(|c, now| c.hangup(now).unwrap());
    sim.deliver(&respond(
        &invite,
        200,
        Some("bob"),
        &[(HeaderName::Contact, "<sip:1002@10.0.0.2:5070>")],
        Some(&peer_sdp("sendrecv", 1)),
    ));
    let w = wire(&sim.seen);
    assert_eq!(&w[w.len() - 2..], ["0 ACK 1 ACK", "0 BYE 2 BYE"]);
    let bye = sim.last_sent();
    sim.deliver(&respond(&bye, 200, Some("bob"), &[], None));
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::Cancelled, Some(200)))
    );
}

#[test]
fn local_bye_follows_the_route_set_and_times_out_after_timer_f() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    ringing_then_ok(&mut sim);
    sim.take();
    sim.clock.now = sim.clock.at(10_000);
    sim.input(|c, now| c.hangup(now).unwrap());
    let bye = sim.last_sent();
    let r = request(&bye);
    assert_eq!(r.method(), &Method::Bye);
    assert_eq!(r.uri_str(), "sip:1002@10.0.0.2:5070");
    assert_eq!(r.headers().get_all(HeaderName::Route).count(), 2);
    assert_eq!(r.headers().cseq().unwrap().seq, 2);
    assert_eq!(sim.call.state(), CallState::Terminating);
    assert!(sim.call.is_active());
    // Timer E: 0.5, 1, 2, 4, 4 ... s; Timer F at 32 s.
    sim.run_until(50_000);
    assert_eq!(
        wire(&sim.seen),
        vec![
            "10000 BYE 2 BYE",
            "10500 BYE 2 BYE",
            "11500 BYE 2 BYE",
            "13500 BYE 2 BYE",
            "17500 BYE 2 BYE",
            "21500 BYE 2 BYE",
            "25500 BYE 2 BYE",
            "29500 BYE 2 BYE",
            "33500 BYE 2 BYE",
            "37500 BYE 2 BYE",
            "41500 BYE 2 BYE",
        ]
    );
    assert_eq!(
        events(&sim.seen),
        vec!["42000 call_ended local_hangup None"]
    );
}

#[test]
fn local_bye_answered_200_ends_the_call() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    ringing_then_ok(&mut sim);
    sim.input(|c, now| c.hangup(now).unwrap());
    let bye = sim.last_sent();
    sim.clock.now = sim.clock.at(40);
    sim.deliver(&respond(&bye, 200, Some("bob"), &[], None));
    assert_eq!(
        events(&sim.seen).last().unwrap(),
        "40 call_ended local_hangup Some(200)"
    );
    assert!(!sim.call.is_active());
    // Timer M of the 2xx (64*T1 from 0 ms) still catches other forks.
    assert_eq!(sim.call.poll_timeout(), Some(sim.clock.at(32_000)));
    sim.run_until(32_000);
    assert_eq!(sim.call.poll_timeout(), None);
}

#[test]
fn a_401_to_bye_is_answered_with_credentials_once() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    ringing_then_ok(&mut sim);
    sim.input(|c, now| c.hangup(now).unwrap());
    let bye = sim.last_sent();
    sim.deliver(&respond(
        &bye,
        401,
        Some("bob"),
        &[(HeaderName::WwwAuthenticate, CHALLENGE)],
        None,
    ));
    let again = sim.last_sent();
    assert_eq!(again.headers().cseq().unwrap().to_string(), "3 BYE");
    assert!(again.headers().get(HeaderName::Authorization).is_some());
    sim.deliver(&respond(&again, 200, Some("bob"), &[], None));
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::LocalHangup, Some(200)))
    );
}

#[test]
fn a_call_left_waiting_for_a_route_ends_when_timer_b_runs_out() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, false);
    sim.run_until(31_999);
    sim.take();
    sim.run_until(32_001);
    assert!(sent(&sim.seen).is_empty());
    assert_eq!(
        events(&sim.seen),
        vec![
            "32000 call_route_failed budget_over=true",
            "32000 call_ended timeout None"
        ]
    );
    assert!(
        sim.call
            .retry_on_route(
                sim.clock.at(32_001),
                route(2, Transport::Udp),
                local(),
                true
            )
            .is_err(),
        "too late to try another route"
    );
}

#[test]
fn a_hangup_before_any_answer_is_not_retried_on_another_route() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, false);
    sim.input(|c, now| c.hangup(now).unwrap());
    sim.run_until(3_500);
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::Cancelled, None)),
        "the route failure ends a call nobody wants any more"
    );
    assert!(sim
        .call
        .retry_on_route(sim.clock.now, route(2, Transport::Udp), local(), true)
        .is_err());
}

#[test]
fn a_second_fork_that_answers_is_acked_and_byed_in_its_own_dialog() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    ringing_then_ok(&mut sim);
    sim.take();
    sim.deliver(&respond(
        &invite,
        200,
        Some("carol"),
        &[(HeaderName::Contact, "<sip:1003@10.0.0.3:5070>")],
        Some(&peer_sdp("sendrecv", 1)),
    ));
    let out = sent(&sim.seen);
    assert_eq!(out.len(), 2);
    let (ack, bye) = (request(&out[0].2), request(&out[1].2));
    assert_eq!(ack.method(), &Method::Ack);
    assert_eq!(bye.method(), &Method::Bye);
    for r in [ack, bye] {
        assert_eq!(r.uri_str(), "sip:1003@10.0.0.3:5070");
        assert_eq!(r.headers().to().unwrap().tag(), Some("carol"));
        assert_eq!(r.headers().call_id().unwrap(), "call-1@test");
    }
    assert_eq!(sim.call.state(), CallState::Established);
    assert_eq!(sim.call.dialog().remote_tag.as_deref(), Some("bob"));
}

#[test]
fn strict_routing_puts_the_first_route_in_the_request_uri() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.deliver(&respond(
        &invite,
        200,
        Some("bob"),
        &[
            (HeaderName::RecordRoute, "<sip:strict2.example.com>"),
            (HeaderName::RecordRoute, "<sip:strict1.example.com>"),
            (HeaderName::Contact, "<sip:1002@10.0.0.2:5070>"),
        ],
        Some(&peer_sdp("sendrecv", 1)),
    ));
    let ack = sim.last_sent();
    let r = request(&ack);
    // RFC 3261 12.2.1.1: strict router first; the remote target goes last.
    assert_eq!(r.uri_str(), "sip:strict1.example.com");
    assert_eq!(
        r.headers().get_all(HeaderName::Route).collect::<Vec<_>>(),
        vec!["<sip:strict2.example.com>", "<sip:1002@10.0.0.2:5070>"]
    );
}

#[test]
fn a_late_2xx_to_an_abandoned_attempt_is_acked_and_byed() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, false);
    let first = sim.last_sent();
    sim.run_until(3_500);
    sim.input(|c, now| {
        c.retry_on_route(now, route(2, Transport::Udp), local(), true)
            .unwrap()
    });
    sim.take();
    // SBC 1 was slow, not dead: its 2xx to CSeq 1 arrives now.
    sim.deliver(&respond(
        &first,
        200,
        Some("late"),
        &[(HeaderName::Contact, "<sip:1002@10.0.0.5>")],
        Some(&peer_sdp("sendrecv", 1)),
    ));
    assert_eq!(wire(&sim.seen), vec!["3500 ACK 1 ACK", "3500 BYE 2 BYE"]);
    assert_eq!(sim.call.state(), CallState::Calling, "CSeq 2 still rings");
}

/// An outgoing call that Timer B ended at 32 s, then a 2xx (To tag `tag`)
/// to its INVITE at that moment.
fn answered_after_timer_b(tag: &str) -> CallSim {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.run_until(32_000);
    assert!(!sim.call.is_active());
    sim.take();
    sim.deliver(&respond(
        &invite,
        200,
        Some(tag),
        &[(HeaderName::Contact, "<sip:1002@10.0.0.2>")],
        None,
    ));
    sim
}

#[test]
fn a_2xx_after_the_call_gave_up_is_acked_and_byed() {
    let sim = answered_after_timer_b("bob");
    assert_eq!(wire(&sim.seen), vec!["32000 ACK 1 ACK", "32000 BYE 2 BYE"]);
    assert!(events(&sim.seen).is_empty());
}

/// The line drops a call once it has no deadline left: an ended outgoing
/// call keeps one 64*T1 after its end, so that a late 2xx (a second fork
/// answering after the 487) still reaches it and gets its ACK and BYE. A
/// retransmission of that 2xx gets the same ACK, and no second BYE.
#[test]
fn an_ended_outgoing_call_answers_late_2xx_for_64_t1_after_its_end() {
    let (mut sim, invite, cancel) = cancelled_while_ringing();
    sim.clock.now = sim.clock.at(2_050);
    sim.deliver(&respond(&cancel, 200, Some("bob"), &[], None));
    sim.deliver(&respond(&invite, 487, Some("bob"), &[], None));
    assert!(!sim.call.is_active());
    assert_eq!(sim.call.poll_timeout(), Some(sim.clock.at(34_050)));
    sim.take();

    sim.clock.now = sim.clock.at(12_050);
    let late = respond(
        &invite,
        200,
        Some("fork2"),
        &[(HeaderName::Contact, "<sip:1002@10.0.0.7:5070>")],
        Some(&peer_sdp("sendrecv", 1)),
    );
    sim.deliver(&late);
    let seen = sim.take();
    assert_eq!(wire(&seen), vec!["12050 ACK 1 ACK", "12050 BYE 2 BYE"]);
    let first = sent(&seen);
    let ack = request(&first[0].2);
    assert_eq!(
        ack.uri_str(),
        "sip:1002@10.0.0.7:5070",
        "to the fork's Contact"
    );
    assert_eq!(ack.headers().to().unwrap().tag(), Some("fork2"));
    assert_eq!(
        request(&first[1].2).headers().to().unwrap().tag(),
        Some("fork2")
    );
    assert!(events(&seen).is_empty(), "the ended call stays ended");

    sim.clock.now = sim.clock.at(12_550);
    sim.deliver(&late);
    let again = sim.take();
    assert_eq!(wire(&again), vec!["12550 ACK 1 ACK"]);
    assert_eq!(
        branch(&sent(&again)[0].2),
        branch(&first[0].2),
        "the same ACK"
    );
    sim.deliver(&respond(&first[1].2, 200, Some("fork2"), &[], None));

    sim.run_until(34_049);
    assert!(sim.take().is_empty(), "the BYE was answered: no repeats");
    assert_eq!(sim.call.poll_timeout(), Some(sim.clock.at(34_050)));
    sim.run_until(34_050);
    assert_eq!(sim.call.poll_timeout(), None, "nothing keeps the call now");
}

/// The BYE to a fork that answered late is a transaction of its own: over
/// UDP it is repeated by Timer E (T1 doubling to T2) until a final
/// response, and given up at Timer F.
#[test]
fn the_bye_to_a_late_fork_is_retransmitted_until_answered() {
    let mut sim = answered_after_timer_b("late");
    let bye = sim.last_sent();
    sim.run_until(39_600);
    assert_eq!(
        wire(&sim.take()),
        vec![
            "32000 ACK 1 ACK",
            "32000 BYE 2 BYE",
            "32500 BYE 2 BYE",
            "33500 BYE 2 BYE",
            "35500 BYE 2 BYE",
            "39500 BYE 2 BYE",
        ]
    );
    sim.deliver(&respond(&bye, 200, Some("late"), &[], None));
    sim.run_until(100_000);
    assert!(sim.take().is_empty(), "answered: no more BYEs");
    assert_eq!(sim.call.poll_timeout(), None);
    assert!(events(&sim.seen).is_empty());
}

#[test]
fn an_unanswered_bye_to_a_late_fork_stops_at_timer_f() {
    let mut sim = answered_after_timer_b("late");
    sim.run_until(200_000);
    let w = wire(&sim.take());
    assert_eq!(w.last().map(String::as_str), Some("63500 BYE 2 BYE"));
    assert_eq!(w.iter().filter(|l| l.ends_with("BYE 2 BYE")).count(), 11);
    assert_eq!(sim.call.poll_timeout(), None, "Timer F at 64000 ended it");
}

#[test]
fn requests_before_the_dialog_is_confirmed_get_481_and_change_nothing() {
    let mut sim = CallSim::outgoing(settings(), Transport::Udp, true);
    let invite = sim.last_sent();
    sim.take();
    let mut p = PeerDialog::new("call-1@test");
    p.to_tag = invite.headers().from().unwrap().tag().map(str::to_string);
    sim.deliver(&p.request(Method::Bye, None));
    assert_eq!(wire(&sim.seen), vec!["0 481 1 BYE"]);
    assert_eq!(sim.call.dialog().remote_tag, None);
    assert_eq!(sim.call.state(), CallState::Calling);
}
