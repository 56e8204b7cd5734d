//! Responses that ask for a new request: 401/407 (with
//! `authOptimizedInFailover`) and 423 Interval Too Brief.

mod registration_sim;

use registration_sim::{assert_lines, pinned_waits, quick_backoff, routes, Peer, Sim};
use sipfleet_protocol::registration::{Phase, RegisterResponse, RegistrationSettings};
use sipfleet_protocol::route::Transport;

/// A challenge is answered on the same route: new CSeq, same Call-ID.
#[test]
fn challenge_is_answered_on_the_same_route() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Challenge);
    sim.start();
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 registering r1 authenticate",
            "0 send r1 cseq=2 exp=3600 cid-1 auth",
            "0 registered r1 exp=3600 primary=true",
        ],
    );
    // Refreshes carry the credentials from the start.
    sim.run_until(3_540_000);
    assert_eq!(
        sim.log_of(&["send"]).last().map(String::as_str),
        Some("3540000 send r1 cseq=3 exp=3600 cid-1 auth")
    );
}

/// A second challenge with `stale=false` from the same server is a denial.
#[test]
fn second_challenge_is_a_denial() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::ChallengeAlways);
    sim.start();
    let wait = pinned_waits(&[10_000])[0];
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 registering r1 authenticate",
            "0 send r1 cseq=2 exp=3600 cid-1 auth",
            "0 registration_failed r1 401",
            &format!("0 backoff r1 wait={wait} n=0"),
        ],
    );
}

/// `stale=true` means the nonce expired, not the credentials: answer again.
#[test]
fn stale_challenge_is_answered_again() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.input(|reg, now| reg.handle_response(now, RegisterResponse::new(1, 401)));
    let stale = RegisterResponse {
        stale: true,
        ..RegisterResponse::new(2, 401)
    };
    sim.input(|reg, now| reg.handle_response(now, stale));
    // An answer to an older CSeq is ignored.
    sim.input(|reg, now| reg.handle_response(now, RegisterResponse::new(2, 200)));
    assert_eq!(sim.reg.phase(), Phase::Registering);
    sim.input(|reg, now| reg.handle_response(now, RegisterResponse::new(3, 200)));
    assert_eq!(
        sim.log_of(&["send", "registered"]),
        [
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 send r1 cseq=2 exp=3600 cid-1 auth",
            "0 send r1 cseq=3 exp=3600 cid-1 auth",
            "0 registered r1 exp=3600 primary=true",
        ]
    );
}

/// The primary is silent and the failover server challenges. With
/// `authOptimizedInFailover=0` the authenticated request starts over at the
/// primary, adding another 3.5 s; with `=1` it goes to the challenger.
#[test]
fn auth_optimized_in_failover_answers_the_challenger() {
    for (optimized, registered) in [
        (false, "7000 registered r2 exp=3600 primary=false"),
        (true, "3500 registered r2 exp=3600 primary=false"),
    ] {
        let settings = RegistrationSettings {
            auth_optimized_in_failover: optimized,
            ..quick_backoff()
        };
        let mut sim = Sim::new(settings, routes(3, Transport::Udp));
        sim.set_peer("r1", Peer::Silent);
        sim.set_peer("r2", Peer::Challenge);
        sim.start();
        sim.run_until(10_000);
        let registering = if optimized {
            vec![
                "0 registering r1 initial",
                "3500 registering r2 failover",
                "3500 registering r2 authenticate",
                registered,
            ]
        } else {
            vec![
                "0 registering r1 initial",
                "3500 registering r2 failover",
                "3500 registering r1 authenticate",
                "7000 registering r2 failover",
                registered,
            ]
        };
        assert_eq!(sim.log_of(&["registering", "registered"]), registering);
        assert!(sim.sends.iter().all(|(_, s)| s.call_id == "cid-1"));
    }
}

/// A refresh challenged on a failed-over line is answered on the current
/// route: the refresh walk has not failed over, so it does not restart at the
/// primary even with `authOptimizedInFailover=0`.
#[test]
fn challenged_refresh_of_a_failed_over_line_stays_on_its_route() {
    let settings = RegistrationSettings {
        re_register_on: true,
        failback_timeout_s: 0,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Icmp);
    sim.start();
    sim.set_peer("r2", Peer::Silent);
    sim.run_until(3_540_000);
    let (t, refresh) = sim.sends.last().cloned().unwrap();
    assert_eq!((t, refresh.route.host.as_str()), (3_540_000, "r2"));
    sim.take_log();
    sim.input(|reg, now| reg.handle_response(now, RegisterResponse::new(refresh.cseq, 401)));
    assert_eq!(
        sim.take_log(),
        [
            "3540000 registering r2 authenticate",
            "3540000 send r2 cseq=4 exp=3600 cid-1 auth"
        ]
    );
}

/// 423 with Min-Expires: ask again on the same route for that long, and keep
/// asking for it. A 423 that does not raise the expiry is a denial.
#[test]
fn interval_too_brief_raises_the_requested_expiry() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    let too_brief = |cseq, min_s| RegisterResponse {
        min_expires: Some(std::time::Duration::from_secs(min_s)),
        ..RegisterResponse::new(cseq, 423)
    };
    sim.input(|reg, now| reg.handle_response(now, too_brief(1, 7200)));
    sim.input(|reg, now| reg.handle_response(now, RegisterResponse::new(2, 200)));
    sim.run_until(7_140_000);
    sim.input(|reg, now| reg.handle_response(now, too_brief(3, 7200)));
    assert_eq!(
        sim.log_of(&["registering", "send", "registered", "registration_failed"]),
        [
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 registering r1 min_expires",
            "0 send r1 cseq=2 exp=7200 cid-1",
            "0 registered r1 exp=7200 primary=true",
            "7140000 registering r1 refresh",
            "7140000 send r1 cseq=3 exp=7200 cid-1",
            "7140000 registration_failed r1 423",
        ]
    );
}
