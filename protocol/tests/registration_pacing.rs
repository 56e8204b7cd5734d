//! A paced line (`RegistrationSettings::paced`, a fleet with a pacer) and
//! the refresh spread, in virtual time to the millisecond: a new exchange
//! waits for its grant, every timer of the guide starts when the request
//! actually leaves, a credentials follow-up goes at once, and refreshes are
//! spread within the window Poly's `expires.overlap` rule leaves.

mod registration_sim;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use registration_sim::{assert_lines, call_ids, quick_backoff, routes, Peer, Sim};
use sipfleet_protocol::registration::{
    Output, Phase, RegisterResponse, Registration, RegistrationSettings, TransportError,
};
use sipfleet_protocol::route::Transport;

fn paced() -> RegistrationSettings {
    RegistrationSettings {
        paced: true,
        ..quick_backoff()
    }
}

/// The line asks at 0; the pacer grants at 5 s: the REGISTER leaves at 5 s
/// and its RFC 3261 retransmissions and the 3.5 s failover run from there.
/// The failover is a new exchange on another flow: it asks again.
#[test]
fn a_delayed_grant_delays_the_register_and_its_timers_start_at_the_grant() {
    let mut sim = Sim::new(paced(), routes(3, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(5000);
    assert_lines(&sim.take_log(), &["0 slot_request r1 initial"]);
    assert_eq!(sim.reg.phase(), Phase::AwaitingSlot);
    assert_eq!(sim.reg.poll_timeout(), None, "nothing runs while waiting");
    sim.grant_slot();
    sim.run_until(9000);
    assert_lines(
        &sim.take_log(),
        &[
            "5000 registering r1 initial",
            "5000 send r1 cseq=1 exp=3600 cid-1",
            "5500 send r1 cseq=1 exp=3600 cid-1 rtx",
            "6500 send r1 cseq=1 exp=3600 cid-1 rtx",
            "8500 route_failed r1 timeout",
            "8500 failover r2 from=r1",
            "8500 slot_done",
            "8500 slot_request r2 failover",
        ],
    );
    sim.grant_slot();
    assert_lines(
        &sim.take_log(),
        &[
            "9000 registering r2 failover",
            "9000 send r2 cseq=2 exp=3600 cid-1",
            "9000 registered r2 exp=3600 primary=false",
            "9000 slot_done",
        ],
    );
}

/// A 401 is answered at once with credentials: the follow-up is part of
/// the exchange the grant started, and the slot is given back when the
/// 200 ends it.
#[test]
fn the_credentials_follow_up_goes_at_once_in_the_same_slot() {
    let mut sim = Sim::new(paced(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Challenge);
    sim.start();
    sim.run_until(1000);
    sim.grant_slot();
    assert_lines(
        &sim.take_log(),
        &[
            "0 slot_request r1 initial",
            "1000 registering r1 initial",
            "1000 send r1 cseq=1 exp=3600 cid-1",
            "1000 registering r1 authenticate",
            "1000 send r1 cseq=2 exp=3600 cid-1 auth",
            "1000 registered r1 exp=3600 primary=true",
            "1000 slot_done",
        ],
    );
}

/// A new walk's 32 s budget (UDP Timer F on the last route) starts at the
/// grant, not when the line asked.
#[test]
fn a_new_walks_budget_starts_at_the_grant() {
    let mut sim = Sim::new(paced(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(10_000);
    sim.grant_slot();
    sim.run_until(42_000);
    assert_eq!(
        sim.send_times("r1"),
        [10_000, 10_500, 11_500, 13_500, 17_500, 21_500, 25_500, 29_500, 33_500, 37_500, 41_500]
    );
    assert_eq!(
        sim.log_of(&["route_failed", "registration_failed", "slot_done"]),
        [
            "42000 route_failed r1 timeout",
            "42000 registration_failed r1",
            "42000 slot_done",
        ]
    );
    assert_eq!(sim.reg.phase(), Phase::BackingOff);
}

/// The refresh asks at Poly's point and leaves at the grant; the binding
/// stands meanwhile, and the next refresh counts from the new grant.
#[test]
fn a_refresh_waits_for_its_slot_and_the_binding_stands_meanwhile() {
    let mut sim = Sim::new(paced(), routes(2, Transport::Udp));
    sim.auto_grant = true;
    sim.start();
    sim.take_log();
    sim.auto_grant = false;
    sim.run_until(3_540_000);
    assert_lines(&sim.take_log(), &["3540000 slot_request r1 refresh"]);
    sim.run_until(3_542_000);
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("r1")
    );
    sim.grant_slot();
    assert_lines(
        &sim.take_log(),
        &[
            "3542000 registering r1 refresh",
            "3542000 send r1 cseq=2 exp=3600 cid-1",
            "3542000 registered r1 exp=3600 primary=true",
            "3542000 slot_done",
        ],
    );
    assert_eq!(
        sim.reg.poll_timeout(),
        Some(sim.t0 + Duration::from_millis(3_542_000 + 3_540_000))
    );
}

/// A transport error on the route an exchange waits for fails it as if it
/// had been sent; a grant for the request given up is ignored.
#[test]
fn an_error_while_waiting_fails_over_and_a_stale_grant_is_ignored() {
    let mut sim = Sim::new(paced(), routes(2, Transport::Udp));
    sim.start();
    let (stale, _) = sim.slot.expect("asked");
    sim.run_until(200);
    sim.transport_error("r1", TransportError::Icmp);
    assert_lines(
        &sim.take_log(),
        &[
            "0 slot_request r1 initial",
            "200 route_failed r1 icmp",
            "200 failover r2 from=r1",
            "200 slot_done",
            "200 slot_request r2 failover",
        ],
    );
    sim.input(|reg, now| reg.handle_slot_granted(now, stale));
    assert!(sim.take_log().is_empty(), "a stale grant sends nothing");
    assert_eq!(sim.reg.phase(), Phase::AwaitingSlot);
    sim.run_until(300);
    sim.grant_slot();
    assert_eq!(
        sim.log_of(&["registered"]),
        ["300 registered r2 exp=3600 primary=false"]
    );
}

/// The shutdown's un-REGISTER waits for its slot like any exchange; the
/// caller's shutdown timeout ends the wait and reports the binding as
/// unconfirmed (it lapses at the SBC).
#[test]
fn shutdown_unregister_is_paced_and_a_timeout_reports_it_unconfirmed() {
    let mut sim = Sim::new(paced(), routes(2, Transport::Udp));
    sim.auto_grant = true;
    sim.start();
    sim.run_until(1000);
    sim.take_log();
    sim.auto_grant = false;
    sim.input(|reg, now| reg.shutdown(now));
    assert_lines(&sim.take_log(), &["1000 slot_request r1 unregister"]);
    sim.run_until(6000);
    sim.input(|reg, now| reg.shutdown_timed_out(now));
    assert_lines(
        &sim.take_log(),
        &[
            "6000 unregistered r1 unregister_unconfirmed",
            "6000 subscriptions_invalidated r1 Unregistered",
            "6000 slot_done",
        ],
    );
    assert_eq!(sim.reg.phase(), Phase::Stopped);
    assert_eq!(sim.send_times("r1"), [0]);
}

#[test]
fn a_granted_shutdown_unregister_is_sent_and_the_slot_given_back() {
    let mut sim = Sim::new(paced(), routes(2, Transport::Udp));
    sim.auto_grant = true;
    sim.start();
    sim.run_until(1000);
    sim.take_log();
    sim.input(|reg, now| reg.shutdown(now));
    assert_lines(
        &sim.take_log(),
        &[
            "1000 slot_request r1 unregister",
            "1000 registering r1 unregister",
            "1000 send r1 cseq=2 exp=0 cid-1",
            "1000 unregistered r1 shutdown",
            "1000 subscriptions_invalidated r1 Unregistered",
            "1000 slot_done",
        ],
    );
    assert_eq!(sim.reg.phase(), Phase::Stopped);
}

/// Without `paced` (a line alone, every guide timeline test) nothing asks.
#[test]
fn an_unpaced_line_never_asks() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Challenge);
    sim.start();
    sim.run_until(4_000_000);
    assert!(sim.log_of(&["slot_request", "slot_done"]).is_empty());
    assert_eq!(sim.log_of(&["registered"]).len(), 2);
}

// ----- refresh spread -----

/// One line registered at `t0` on a 200 granting `granted_s`; returns its
/// machine (with the refresh scheduled).
fn registered_line(spread_pct: u32, seed: u64, t0: Instant, granted_s: u32) -> Registration {
    let settings = RegistrationSettings {
        refresh_spread_pct: spread_pct,
        expires_s: granted_s,
        ..RegistrationSettings::default()
    };
    let mut reg = Registration::new(
        settings,
        Box::new(StdRng::seed_from_u64(seed)),
        Box::new(call_ids()),
    );
    reg.handle_routes(t0, routes(1, Transport::Udp), None);
    reg.start(t0);
    answer_ok(&mut reg, t0);
    reg
}

fn answer_ok(reg: &mut Registration, now: Instant) {
    let mut cseq = None;
    while let Some(output) = reg.poll_output() {
        if let Output::Send(send) = output {
            cseq = Some(send.cseq);
        }
    }
    let cseq = cseq.expect("a REGISTER was sent");
    reg.handle_response(now, RegisterResponse::new(cseq, 200));
    while reg.poll_output().is_some() {}
}

#[test]
fn with_spread_0_the_refresh_is_poly_point_exactly() {
    let t0 = Instant::now();
    for (granted, poly) in [(3600, 3540), (600, 540), (100, 50)] {
        let reg = registered_line(0, 1, t0, granted);
        assert_eq!(reg.poll_timeout(), Some(t0 + Duration::from_secs(poly)));
    }
}

/// 1,000 lines registered at the same instant with a 10 % spread on
/// 3600 s: every refresh in [3540 - 360, 3540] s, none later than Poly's
/// point, and no second of that window holds more than 12 of them
/// (2.8 on average).
#[test]
fn refreshes_of_1000_lines_registered_together_are_spread_over_the_window() {
    let t0 = Instant::now();
    let mut buckets = vec![0u32; 3600];
    let mut earliest = Duration::MAX;
    let mut latest = Duration::ZERO;
    for line in 0..1000u64 {
        let reg = registered_line(10, 1000 + line, t0, 3600);
        let at = reg.poll_timeout().expect("a refresh") - t0;
        assert!(
            at >= Duration::from_secs(3180) && at <= Duration::from_secs(3540),
            "line {line}: refresh at {at:?}"
        );
        earliest = earliest.min(at);
        latest = latest.max(at);
        buckets[at.as_secs() as usize] += 1;
    }
    let busiest = buckets.iter().max().copied().unwrap_or(0);
    assert!(busiest <= 12, "{busiest} refreshes in one second");
    assert!(earliest < Duration::from_secs(3190), "{earliest:?}");
    assert!(latest > Duration::from_secs(3530), "{latest:?}");
}

/// Each refresh draws anew: one line's refresh intervals differ, and each
/// lies in its window.
#[test]
fn every_refresh_draws_a_fresh_jitter() {
    let t0 = Instant::now();
    let mut reg = registered_line(10, 5, t0, 3600);
    let mut now = t0;
    let mut intervals = Vec::new();
    for _ in 0..5 {
        let at = reg.poll_timeout().expect("a refresh");
        intervals.push(at - now);
        now = at;
        reg.handle_timeout(now);
        answer_ok(&mut reg, now);
    }
    for i in &intervals {
        assert!(*i >= Duration::from_secs(3180) && *i <= Duration::from_secs(3540));
    }
    intervals.dedup();
    assert_eq!(intervals.len(), 5, "{intervals:?}");
}

/// A failover that waits for its slot keeps what was left of its walk's
/// 32 s budget: the wait is not counted. r1 fails at 3.5 s; r2 (the last
/// route) is granted at 20 s and retried until 32 + 16.5 s.
#[test]
fn a_failover_waiting_for_its_slot_keeps_the_rest_of_its_budget() {
    let mut sim = Sim::new(paced(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.set_peer("r2", Peer::Silent);
    sim.auto_grant = true;
    sim.start();
    sim.auto_grant = false;
    sim.run_until(20_000);
    assert_eq!(
        sim.log_of(&["slot_request"]).last().map(String::as_str),
        Some("3500 slot_request r2 failover")
    );
    sim.grant_slot();
    sim.run_until(60_000);
    assert_eq!(
        sim.send_times("r2"),
        [20_000, 20_500, 21_500, 23_500, 27_500, 31_500, 35_500, 39_500, 43_500, 47_500]
    );
    assert_eq!(
        sim.log_of(&["route_failed", "registration_failed"]),
        [
            "3500 route_failed r1 timeout",
            "48500 route_failed r2 timeout",
            "48500 registration_failed r2",
        ]
    );
}
