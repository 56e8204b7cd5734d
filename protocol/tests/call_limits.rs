//! Incoming calls cannot exhaust the process (issue 13): the ring timeout
//! (`sipfleet.call.ringTimeout`, 480 to the minute's millisecond), the
//! per-line limit (`callsPerLineKey`, stateless 486), the media port taken
//! at answer time and the 503 when none can be had.

mod call_support;

use std::time::Duration;

use call_support::*;
use sipfleet_protocol::call::{
    line_has_room, refuse_incoming, Call, CallSettings, CallState, EndReason, IncomingCall,
    DEFAULT_CALLS_PER_LINE,
};
use sipfleet_protocol::message::{Message, Method};
use sipfleet_protocol::route::Transport;
use sipfleet_protocol::sdp::RemoteMedia;

fn ringing(ring_timeout: Option<Duration>, call_id: &str) -> (CallSim, PeerDialog, Message) {
    let mut peer = PeerDialog::new(call_id);
    let invite = peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 1)));
    let sim = CallSim::incoming(
        CallSettings {
            ring_timeout,
            ..settings()
        },
        &invite,
    );
    let tag = sim.call.dialog().local_tag.clone();
    peer.to_tag = Some(tag);
    (sim, peer, invite)
}

#[test]
fn an_unanswered_call_gets_480_at_exactly_the_ring_timeout() {
    let (mut sim, _, invite) = ringing(Some(Duration::from_secs(60)), "ring-1@peer");
    assert_eq!(wire(&sim.seen), vec!["0 100 1 INVITE", "0 180 1 INVITE"]);
    assert_eq!(sim.call.poll_timeout(), Some(sim.clock.at(60_000)));
    sim.take();
    sim.run_until(59_999);
    assert!(sim.seen.is_empty(), "still ringing at 59.999 s");
    assert_eq!(sim.call.state(), CallState::Incoming);
    sim.run_until(60_000);
    assert_eq!(wire(&sim.seen), vec!["60000 480 1 INVITE"]);
    assert_eq!(
        events(&sim.seen),
        vec!["60000 call_ended ring_timeout Some(480)"]
    );
    assert_eq!(
        sim.call.end_reason(),
        Some((EndReason::RingTimeout, Some(480)))
    );
    // Over UDP the 480 is repeated (Timer G) until its ACK, which ends it.
    sim.take();
    sim.run_until(60_500);
    assert_eq!(wire(&sim.seen), vec!["60500 480 1 INVITE"]);
    let mut p = PeerDialog::new("ring-1@peer");
    p.to_tag = Some(sim.call.dialog().local_tag.clone());
    sim.deliver(&p.request_with(Method::Ack, 1, &branch(&invite), None));
    assert_eq!(sim.call.poll_timeout(), None, "nothing left after the ACK");
}

#[test]
fn the_ring_timeout_follows_the_configured_value() {
    let (mut sim, _, _) = ringing(Some(Duration::from_millis(7_250)), "ring-2@peer");
    sim.take();
    sim.run_until(7_249);
    assert!(sim.seen.is_empty());
    sim.run_until(7_250);
    assert_eq!(wire(&sim.seen), vec!["7250 480 1 INVITE"]);
}

#[test]
fn answering_cancels_the_ring_timeout() {
    let (mut sim, peer, _) = ringing(Some(Duration::from_secs(60)), "ring-3@peer");
    sim.clock.now = sim.clock.at(59_000);
    sim.input(|c, now| c.answer(now, rtp()).unwrap());
    let ack = peer.request_with(Method::Ack, 1, "z9hG4bKpeerack", None);
    sim.clock.now = sim.clock.at(59_100);
    sim.deliver(&ack);
    sim.take();
    assert_eq!(sim.call.poll_timeout(), None, "no ring timer once answered");
    sim.run_until(120_000);
    assert!(sim.seen.is_empty(), "no 480 after the answer");
    assert_eq!(sim.call.state(), CallState::Established);
}

#[test]
fn without_a_ring_timeout_a_call_rings_until_the_caller_gives_up() {
    let (sim, _, _) = ringing(None, "ring-4@peer");
    assert_eq!(sim.call.poll_timeout(), None);
}

#[test]
fn the_media_port_is_the_one_given_at_answer_time() {
    let (mut sim, _, _) = ringing(None, "media-1@peer");
    // The 180 carries no SDP: no port was needed to ring.
    let ringing = sent(&sim.seen)[1].2.clone();
    assert!(ringing.body().is_empty());
    let port = "127.0.0.1:41234".parse().unwrap();
    sim.input(|c, now| c.answer(now, port).unwrap());
    let ok = sim.last_sent();
    let answer = RemoteMedia::parse(ok.body()).unwrap();
    assert_eq!(answer.rtp, port);
}

#[test]
fn no_media_port_refuses_the_ringing_call_with_503() {
    let (mut sim, _, _) = ringing(Some(Duration::from_secs(60)), "media-2@peer");
    sim.take();
    sim.clock.now = sim.clock.at(1_000);
    sim.input(|c, now| c.refuse_no_media(now).unwrap());
    assert_eq!(wire(&sim.seen), vec!["1000 503 1 INVITE"]);
    assert_eq!(
        events(&sim.seen),
        vec!["1000 call_ended resource_limit Some(503)"]
    );
    assert!(!sim.call.is_active());
    assert!(sim.call.refuse_no_media(sim.clock.now).is_err());
}

#[test]
fn auto_answer_is_due_only_while_ringing_with_auto_answer_set() {
    let (sim, _, _) = ringing(None, "auto-1@peer");
    assert!(!sim.call.auto_answer_due());
    let mut peer = PeerDialog::new("auto-2@peer");
    let invite = peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 1)));
    let call = Call::incoming(
        CallSettings {
            auto_answer: true,
            ..settings()
        },
        identity(),
        None,
        IncomingCall {
            invite: request(&invite),
            route: route(1, Transport::Udp),
            local: local(),
        },
        3,
        Clock::new().now,
    )
    .unwrap();
    assert!(call.auto_answer_due(), "rings until the line answers it");
    assert_eq!(call.state(), CallState::Incoming);
}

/// A line's calls, as the line keeps them: every INVITE first meets
/// `refuse_incoming` with the count of active calls.
fn offer(calls: &mut Vec<Call>, settings: &CallSettings, n: usize) -> Option<u16> {
    let mut peer = PeerDialog::new(&format!("flood-{n}@peer"));
    let invite = peer.request(Method::Invite, Some(&peer_sdp("sendrecv", 1)));
    let active = calls.iter().filter(|c| c.is_active()).count();
    if let Some(busy) = refuse_incoming(settings, active, request(&invite)) {
        return Some(busy.status().as_u16());
    }
    let call = Call::incoming(
        settings.clone(),
        identity(),
        None,
        IncomingCall {
            invite: request(&invite),
            route: route(1, Transport::Udp),
            local: local(),
        },
        n as u64,
        Clock::new().now,
    )
    .unwrap();
    calls.push(call);
    None
}

#[test]
fn the_25th_concurrent_invite_gets_486_busy_here() {
    let settings = settings();
    assert_eq!(settings.calls_per_line, DEFAULT_CALLS_PER_LINE);
    assert_eq!(DEFAULT_CALLS_PER_LINE, 24);
    let mut calls = Vec::new();
    for n in 1..=24 {
        assert_eq!(offer(&mut calls, &settings, n), None, "INVITE {n} rings");
    }
    assert_eq!(offer(&mut calls, &settings, 25), Some(486));
    assert_eq!(offer(&mut calls, &settings, 26), Some(486));
    assert_eq!(calls.len(), 24, "no call is kept for a 486");
    // One call ends (declined): the next INVITE rings again.
    calls[0].hangup(Clock::new().now).unwrap();
    assert_eq!(offer(&mut calls, &settings, 27), None);
    assert_eq!(offer(&mut calls, &settings, 28), Some(486));
}

#[test]
fn the_486_is_stateless_and_the_same_for_a_retransmission() {
    let settings = CallSettings {
        calls_per_line: 1,
        ..settings()
    };
    assert!(line_has_room(&settings, 0));
    assert!(!line_has_room(&settings, 1));
    let mut peer = PeerDialog::new("busy@peer");
    let invite = peer.request(Method::Invite, None);
    let a = refuse_incoming(&settings, 1, request(&invite)).unwrap();
    let b = refuse_incoming(&settings, 1, request(&invite)).unwrap();
    assert_eq!(a.status().as_u16(), 486);
    assert_eq!(
        round_trip(&Message::Response(a.clone())),
        Message::Response(b)
    );
    assert!(
        a.headers().to().unwrap().tag().is_some(),
        "a final answer carries a To tag"
    );
    assert_eq!(
        a.headers().call_id().unwrap(),
        invite.headers().call_id().unwrap()
    );
    assert!(refuse_incoming(&settings, 0, request(&invite)).is_none());
}
