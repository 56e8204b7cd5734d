//! Incoming calls: 100/180, answering with 2xx retransmission until the
//! ACK (T1 doubling to T2, Timer H), auto-answer, CANCEL, BYE from the
//! peer, in-dialog CSeq and tag rules, 481 for unknown dialogs.

mod call_support;

use call_support::*;
use sipfleet_protocol::call::{unknown_dialog_response, CallState, EndReason};
use sipfleet_protocol::message::{HeaderName, Message, Method};
use sipfleet_protocol::sdp::{Direction, RemoteMedia};

fn incoming(auto_answer: bool) -> (CallSim, PeerDialog, Message) {
    let mut peer = PeerDialog::new("in-1@peer");
    let invite = peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 1)));
    let sim = CallSim::incoming(
        sipfleet_protocol::call::CallSettings {
            auto_answer,
            ..settings()
        },
        &invite,
    );
    let ringing = sent(&sim.seen)
        .into_iter()
        .find(|(_, _, m)| m.as_response().is_some_and(|r| r.status().as_u16() == 180))
        .expect("180 sent");
    peer.to_tag = ringing.2.headers().to().unwrap().tag().map(str::to_string);
    (sim, peer, invite)
}

fn ack_for(peer: &mut PeerDialog) -> Message {
    peer.request_with(Method::Ack, 1, "z9hG4bKpeerack", None)
}

#[test]
fn incoming_call_sends_100_then_180_with_tag_and_contact() {
    let (sim, _, _) = incoming(false);
    assert_eq!(wire(&sim.seen), vec!["0 100 1 INVITE", "0 180 1 INVITE"]);
    let out = sent(&sim.seen);
    assert_eq!(out[0].2.headers().to().unwrap().tag(), None);
    let ringing = out[1].2.headers();
    assert!(ringing.to().unwrap().tag().is_some());
    assert_eq!(
        ringing.get(HeaderName::RecordRoute),
        Some("<sip:127.0.0.11:5060;lr>")
    );
    assert!(ringing.contacts().next().is_some());
    assert_eq!(out[1].1, route(1, sipfleet_protocol::route::Transport::Udp));
    assert_eq!(events(&sim.seen), vec!["0 call_started", "0 call_ringing"]);
    assert_eq!(sim.call.state(), CallState::Incoming);
    assert!(sim.call.is_active());
    assert_eq!(sim.call.poll_timeout(), None, "rings until answered");
}

#[test]
fn answer_retransmits_the_2xx_doubling_to_t2_until_the_ack() {
    let (mut sim, mut peer, _) = incoming(false);
    sim.take();
    sim.clock.now = sim.clock.at(1_000);
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    let ok = sim.last_sent();
    let answer = RemoteMedia::parse(ok.body()).unwrap();
    assert_eq!(answer.payloads, vec![8], "the peer's first common codec");
    assert_eq!(answer.direction, Direction::SendRecv);
    assert_eq!(answer.rtp, rtp());
    sim.run_until(13_000);
    assert_eq!(
        wire(&sim.seen),
        vec![
            "1000 200 1 INVITE",
            "1500 200 1 INVITE",
            "2500 200 1 INVITE",
            "4500 200 1 INVITE",
            "8500 200 1 INVITE",
            "12500 200 1 INVITE",
        ]
    );
    sim.deliver(&ack_for(&mut peer));
    assert_eq!(sim.call.state(), CallState::Established);
    assert_eq!(sim.call.poll_timeout(), None);
    sim.run_until(40_000);
    assert_eq!(
        events(&sim.seen),
        vec!["1000 call_answered", "13000 call_established"]
    );
    assert_eq!(wire(&sim.seen).len(), 6, "no retransmission after the ACK");
}

#[test]
fn no_ack_within_timer_h_sends_bye_and_ends_the_call() {
    let (mut sim, _, _) = incoming(false);
    sim.take();
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    sim.run_until(31_999);
    let w = wire(&sim.seen);
    assert_eq!(
        w,
        vec![
            "0 200 1 INVITE",
            "500 200 1 INVITE",
            "1500 200 1 INVITE",
            "3500 200 1 INVITE",
            "7500 200 1 INVITE",
            "11500 200 1 INVITE",
            "15500 200 1 INVITE",
            "19500 200 1 INVITE",
            "23500 200 1 INVITE",
            "27500 200 1 INVITE",
            "31500 200 1 INVITE",
        ]
    );
    sim.run_until(32_000);
    let bye = sim.last_sent();
    assert_eq!(request(&bye).method(), &Method::Bye);
    // To the peer's Contact, through its Record-Route (not reversed: UAS).
    assert_eq!(request(&bye).uri_str(), "sip:1002@10.0.0.2:5070");
    assert_eq!(
        bye.headers().get(HeaderName::Route),
        Some("<sip:127.0.0.11:5060;lr>")
    );
    assert_eq!(
        bye.headers().from().unwrap().tag(),
        sim.call.dialog().local_tag.as_str().into()
    );
    assert_eq!(bye.headers().to().unwrap().tag(), Some("peer-tag"));
    sim.deliver(&respond(&bye, 200, None, &[], None));
    assert_eq!(sim.call.end_reason(), Some((EndReason::NoAck, Some(200))));
}

#[test]
fn auto_answer_sends_the_2xx_at_once() {
    let (sim, _, _) = incoming(true);
    assert_eq!(
        wire(&sim.seen),
        vec!["0 100 1 INVITE", "0 180 1 INVITE", "0 200 1 INVITE"]
    );
    assert_eq!(sim.call.state(), CallState::Answering);
}

#[test]
fn a_retransmitted_invite_gets_the_last_response_again() {
    let (mut sim, peer, invite) = incoming(false);
    sim.take();
    sim.deliver(&invite);
    assert_eq!(wire(&sim.seen), vec!["0 180 1 INVITE"]);
    // The same request over another path (new branch, no To tag): 482.
    let merged = peer.request_with(Method::Invite, 1, "z9hG4bKother", None);
    let mut peer_no_tag = PeerDialog::new("in-1@peer");
    peer_no_tag.to_tag = None;
    let _ = merged;
    let merged = peer_no_tag.request_with(Method::Invite, 1, "z9hG4bKother", None);
    sim.deliver(&merged);
    assert_eq!(wire(&sim.seen)[1], "0 482 1 INVITE");
}

#[test]
fn incoming_cancel_gets_200_and_the_invite_487() {
    let (mut sim, peer, invite) = incoming(false);
    sim.take();
    let cancel = peer.request_with(Method::Cancel, 1, &branch(&invite), None);
    sim.clock.now = sim.clock.at(5_000);
    sim.deliver(&cancel);
    assert_eq!(
        wire(&sim.seen),
        vec!["5000 200 1 CANCEL", "5000 487 1 INVITE"]
    );
    assert_eq!(
        events(&sim.seen),
        vec!["5000 call_ended remote_cancelled Some(487)"]
    );
    // The ACK for the 487 is absorbed.
    let mut p = PeerDialog::new("in-1@peer");
    p.to_tag = Some(sim.call.dialog().local_tag.clone());
    let ack = p.request_with(Method::Ack, 1, &branch(&invite), None);
    sim.deliver(&ack);
    assert_eq!(wire(&sim.seen).len(), 2);
}

#[test]
fn decline_sends_603() {
    let (mut sim, _, _) = incoming(false);
    sim.take();
    sim.input(|c, now| c.hangup(now).unwrap());
    assert_eq!(wire(&sim.seen), vec!["0 603 1 INVITE"]);
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::Declined, Some(603)))
    );
}

#[test]
fn bye_from_the_peer_is_answered_and_checked_for_tags_and_cseq() {
    let (mut sim, mut peer, _) = incoming(false);
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    sim.deliver(&ack_for(&mut peer));
    sim.take();
    // Wrong From tag: unknown dialog.
    let mut stranger = PeerDialog::new("in-1@peer");
    stranger.from_tag = "other".into();
    stranger.to_tag = peer.to_tag.clone();
    stranger.cseq = 2;
    sim.deliver(&stranger.request(Method::Bye, None));
    assert_eq!(wire(&sim.seen), vec!["0 481 2 BYE"]);
    // CSeq going back (0 < 1): 500.
    peer.cseq = 0;
    sim.deliver(&peer.request(Method::Bye, None));
    assert_eq!(wire(&sim.seen)[1], "0 500 0 BYE");
    assert!(sim.call.is_active());
    peer.cseq = 2;
    let bye = peer.request(Method::Bye, None);
    sim.deliver(&bye);
    assert_eq!(wire(&sim.seen)[2], "0 200 2 BYE");
    assert_eq!(sim.call.end_reason(), Some((EndReason::RemoteHangup, None)));
    // A retransmitted BYE gets its 200 again.
    sim.deliver(&bye);
    assert_eq!(wire(&sim.seen)[3], "0 200 2 BYE");
}

#[test]
fn remote_reinvite_to_hold_and_resume() {
    let (mut sim, mut peer, _) = incoming(false);
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    sim.deliver(&ack_for(&mut peer));
    sim.take();
    peer.cseq = 2;
    sim.clock.now = sim.clock.at(100);
    sim.deliver(&peer.request(Method::Invite, Some(&peer_sdp("sendonly", 2))));
    let ok = sim.last_sent();
    assert_eq!(ok.as_response().unwrap().status().as_u16(), 200);
    let answer = RemoteMedia::parse(ok.body()).unwrap();
    assert_eq!(answer.direction, Direction::RecvOnly);
    let ack = peer.request_with(Method::Ack, 2, "z9hG4bKack2", None);
    sim.deliver(&ack);
    peer.cseq = 3;
    sim.clock.now = sim.clock.at(200);
    sim.deliver(&peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 3))));
    let ok = sim.last_sent();
    let answer2 = RemoteMedia::parse(ok.body()).unwrap();
    assert_eq!(answer2.direction, Direction::SendRecv);
    assert!(answer2.version > answer.version);
    assert_eq!(
        events(&sim.seen),
        vec!["100 call_held remote", "200 call_resumed remote"]
    );
}

#[test]
fn requests_of_unknown_dialogs_get_481_and_acks_nothing() {
    let peer = PeerDialog::new("nobody@peer");
    let bye = peer.request_with(Method::Bye, 5, "z9hG4bKx", None);
    let resp = unknown_dialog_response(request(&bye)).unwrap();
    assert_eq!(resp.status().as_u16(), 481);
    round_trip(&Message::Response(resp));
    let ack = peer.request_with(Method::Ack, 5, "z9hG4bKx", None);
    assert!(unknown_dialog_response(request(&ack)).is_none());
}

#[test]
fn an_offer_without_a_common_codec_gets_488() {
    let mut peer = PeerDialog::new("in-2@peer");
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 18\r\n";
    let invite = peer.request(Method::Invite, Some(sdp));
    let sim = CallSim::incoming(settings(), &invite);
    assert_eq!(wire(&sim.seen), vec!["0 100 1 INVITE", "0 488 1 INVITE"]);
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::Rejected, Some(488)))
    );
}

#[test]
fn an_invite_without_an_offer_gets_an_offer_in_the_2xx_and_the_answer_in_the_ack() {
    let mut peer = PeerDialog::new("in-3@peer");
    let invite = peer.request(Method::Invite, None);
    let mut sim = CallSim::incoming(settings(), &invite);
    peer.to_tag = Some(sim.call.dialog().local_tag.clone());
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    let offer = RemoteMedia::parse(sim.last_sent().body()).unwrap();
    assert_eq!(offer.payloads, vec![0, 8]);
    let ack = peer.request_with(Method::Ack, 1, "z9hG4bKack", Some(&peer_sdp("sendrecv", 1)));
    sim.deliver(&ack);
    assert_eq!(sim.call.state(), CallState::Established);
    assert_eq!(
        sim.call.remote_media().unwrap().rtp,
        "10.0.0.2:6000".parse().unwrap()
    );
}

#[test]
fn an_invite_that_requires_an_extension_gets_420_unsupported() {
    let mut peer = PeerDialog::new("in-4@peer");
    let invite = peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 1)));
    let mut req = request(&invite).clone();
    req.headers_mut().push(HeaderName::Require, "100rel");
    let invite = Message::parse(req.to_bytes()).unwrap();
    let sim = CallSim::incoming(settings(), &invite);
    assert_eq!(wire(&sim.seen), vec!["0 100 1 INVITE", "0 420 1 INVITE"]);
    assert_eq!(
        sim.last_sent().headers().get(HeaderName::Unsupported),
        Some("100rel")
    );
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::Rejected, Some(420)))
    );
}

#[test]
fn answering_when_the_registration_moved_with_only_signal_with_registered_ends_the_call() {
    let mut peer = PeerDialog::new("in-5@peer");
    let invite = peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 1)));
    let mut sim = CallSim::incoming(
        sipfleet_protocol::call::CallSettings {
            only_signal_with_registered: true,
            ..settings()
        },
        &invite,
    );
    sim.take();
    let r2 = route(2, sipfleet_protocol::route::Transport::Udp);
    sim.input(|c, _| c.handle_registrar(Some(&r2)));
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    assert!(sent(&sim.seen).is_empty());
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::RegistrarChanged, None))
    );
}

#[test]
fn a_rejection_over_udp_is_repeated_by_timer_g_until_its_ack() {
    let (mut sim, peer, invite) = incoming(false);
    sim.take();
    sim.clock.now = sim.clock.at(1_000);
    sim.input(|c, now| c.hangup(now).unwrap());
    assert!(!sim.call.is_active());
    sim.run_until(9_000);
    assert_eq!(
        wire(&sim.seen),
        vec![
            "1000 603 1 INVITE",
            "1500 603 1 INVITE",
            "2500 603 1 INVITE",
            "4500 603 1 INVITE",
            "8500 603 1 INVITE",
        ]
    );
    let ack = peer.request_with(Method::Ack, 1, &branch(&invite), None);
    sim.deliver(&ack);
    assert_eq!(sim.call.poll_timeout(), None);
    sim.run_until(60_000);
    assert_eq!(wire(&sim.seen).len(), 5);
    assert_eq!(
        events(&sim.seen),
        vec!["1000 call_ended declined Some(603)"]
    );
}

#[test]
fn a_rejection_without_ack_stops_at_timer_h() {
    let (mut sim, _, _) = incoming(false);
    sim.take();
    sim.input(|c, now| c.hangup(now).unwrap());
    sim.run_until(100_000);
    let w = wire(&sim.seen);
    assert_eq!(w.last().unwrap(), "31500 603 1 INVITE");
    assert_eq!(w.len(), 11);
    assert_eq!(sim.call.poll_timeout(), None);
}

#[test]
fn the_uas_route_set_is_the_record_route_in_order() {
    let peer = PeerDialog::new("in-6@peer");
    let invite = peer.request_with(
        Method::Invite,
        1,
        "z9hG4bKrr",
        Some(&peer_sdp("sendrecv", 1)),
    );
    let mut req = request(&invite).clone();
    req.headers_mut()
        .push(HeaderName::RecordRoute, "<sip:second.example.com;lr>");
    let invite = Message::parse(req.to_bytes()).unwrap();
    let mut sim = CallSim::incoming(settings(), &invite);
    let mut p = PeerDialog::new("in-6@peer");
    p.to_tag = Some(sim.call.dialog().local_tag.clone());
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    sim.deliver(&p.request_with(Method::Ack, 1, "z9hG4bKack", None));
    sim.input(|c, now| c.hangup(now).unwrap());
    let bye = sim.last_sent();
    assert_eq!(
        bye.headers().get_all(HeaderName::Route).collect::<Vec<_>>(),
        vec!["<sip:127.0.0.11:5060;lr>", "<sip:second.example.com;lr>"]
    );
    assert_eq!(bye.headers().cseq().unwrap().seq, 1, "our own CSeq space");
}

#[test]
fn a_late_copy_of_the_initial_invite_after_the_ack_is_absorbed() {
    let (mut sim, mut peer, invite) = incoming(false);
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    sim.deliver(&ack_for(&mut peer));
    sim.take();
    sim.deliver(&invite);
    assert!(sim.seen.is_empty());
}
