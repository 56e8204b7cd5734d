//! Hostile and broken registrars (issue 12, items 1 and 4): a line never
//! loops on answers, never adopts an expiry it did not ask for, and ends an
//! attempt it cannot go on with at once, naming why.

mod registration_sim;

use std::time::Duration;

use registration_sim::{
    assert_lines, log_fail_reasons, pinned_waits, quick_backoff, routes, Peer, Sim,
};
use sipfleet_protocol::registration::{Phase, RegistrationSettings};
use sipfleet_protocol::route::Transport;

fn one_route(peer: Peer) -> Sim {
    log_fail_reasons();
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", peer);
    sim
}

/// `401 stale=true` to every answer: one stale retry, then a denial. Before
/// the fix, 20,379 REGISTERs in 40 s from one line.
#[test]
fn a_registrar_that_is_always_stale_gets_one_retry() {
    let mut sim = one_route(Peer::StaleAlways);
    sim.start();
    let wait = pinned_waits(&[10_000])[0];
    assert_lines(
        &sim.log_of(&["send", "registration_failed", "backoff"]),
        &[
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 send r1 cseq=2 exp=3600 cid-1 auth",
            "0 send r1 cseq=3 exp=3600 cid-1 auth",
            "0 registration_failed r1 401 stale_nonce_loop",
            &format!("0 backoff r1 wait={wait} n=0"),
        ],
    );
    // Each back-off round sends at most three requests.
    sim.run_until(600_000);
    let sends = sim.sends.len();
    let rounds = sim.log_of(&["backoff"]).len();
    assert!(sends <= 3 * rounds, "{sends} sends in {rounds} rounds");
}

/// A stale nonce now and then is fine: `stale=true` after a normal answer is
/// retried, and a success resets the count.
#[test]
fn one_stale_challenge_is_answered() {
    let mut sim = one_route(Peer::Challenge);
    sim.start();
    assert_eq!(sim.reg.phase(), Phase::Registered);
}

/// 423 with a Min-Expires that rises every time: one retry (RFC 3261
/// 10.2.8), then a denial. Before the fix, 58,276 REGISTERs in 30 s.
#[test]
fn a_rising_min_expires_gets_one_retry() {
    let mut sim = one_route(Peer::MinExpiresRising);
    sim.start();
    let wait = pinned_waits(&[10_000])[0];
    assert_lines(
        &sim.log_of(&["send", "registration_failed", "backoff"]),
        &[
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 send r1 cseq=2 exp=3601 cid-1",
            "0 registration_failed r1 423 interval_too_brief",
            &format!("0 backoff r1 wait={wait} n=0"),
        ],
    );
}

/// A challenge nobody can answer (Basic, an unknown algorithm, no realm):
/// a denial at once, not a credentialed request that is never built and
/// a timeout 32 s later.
#[test]
fn a_challenge_that_cannot_be_answered_is_a_denial_at_once() {
    let mut sim = one_route(Peer::UnusableChallenge);
    sim.start();
    let wait = pinned_waits(&[10_000])[0];
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 registration_failed r1 401 unsupported_challenge",
            &format!("0 backoff r1 wait={wait} n=0"),
        ],
    );
}

/// A request the line could not build is reported to the machine, which
/// ends the attempt at once instead of retransmitting nothing until Timer F.
#[test]
fn a_request_that_could_not_be_built_ends_the_attempt() {
    let mut sim = one_route(Peer::Silent);
    sim.start();
    let tx = sim.sends[0].1.transaction;
    sim.take_log();
    sim.input(|reg, now| reg.handle_send_failed(now, tx + 1));
    assert!(sim.take_log().is_empty(), "another transaction: ignored");
    sim.input(|reg, now| reg.handle_send_failed(now, tx));
    let wait = pinned_waits(&[10_000])[0];
    assert_lines(
        &sim.take_log(),
        &[
            "0 registration_failed r1 request_not_built",
            &format!("0 backoff r1 wait={wait} n=0"),
        ],
    );
}

/// A 2xx that lists bindings, none of them ours: no binding to refresh.
#[test]
fn a_2xx_without_our_binding_is_a_failure() {
    let mut sim = one_route(Peer::OkWithoutOurs);
    sim.start();
    let wait = pinned_waits(&[10_000])[0];
    assert_lines(
        &sim.log_of(&["registered", "registration_failed", "backoff"]),
        &[
            "0 registration_failed r1 200 binding_missing",
            &format!("0 backoff r1 wait={wait} n=0"),
        ],
    );
    assert_eq!(sim.reg.registered_route(), None);
}

/// A grant of 2^32-1 s is capped at the 3600 s asked for: the refresh comes
/// at 3540 s, not in 136 years.
#[test]
fn a_grant_longer_than_asked_is_capped() {
    let mut sim = one_route(Peer::OkFor(u64::from(u32::MAX)));
    sim.start();
    assert_eq!(
        sim.log_of(&["registered"]),
        ["0 registered r1 exp=3600 primary=true"]
    );
    assert_eq!(
        sim.reg.poll_timeout(),
        Some(sim.t0 + Duration::from_secs(3540))
    );
}

/// Poly's `expires.overlap`: refresh `overlap` s before the granted expiry,
/// at half of it when half is less than the overlap.
#[test]
fn refreshes_follow_expires_overlap() {
    for (asked, granted, overlap, refresh_s) in [
        (3600, 3600, 60, 3540),
        (3600, 3600, 600, 3000),
        (3600, 1000, 60, 940),
        (3600, 100, 60, 50),
        (3600, 120, 60, 60),
        (30, 30, 60, 15),
        (3600, 3600, 5, 3595),
        (3600, 10, 5, 5),
    ] {
        let settings = RegistrationSettings {
            expires_s: asked,
            expires_overlap_s: overlap,
            ..RegistrationSettings::default()
        };
        let mut sim = Sim::new(settings, routes(1, Transport::Udp));
        sim.set_peer("r1", Peer::OkFor(granted));
        sim.start();
        sim.run_until(refresh_s * 2500);
        let times: Vec<u64> = sim.send_times("r1").into_iter().take(3).collect();
        assert_eq!(
            times,
            [0, refresh_s * 1000, refresh_s * 2000],
            "asked {asked} granted {granted} overlap {overlap}"
        );
    }
}
