//! Shutdown: `Expires: 0` to the registered route, then nothing more.

mod registration_sim;

use registration_sim::{assert_lines, quick_backoff, routes, Peer, Sim};
use sipfleet_protocol::registration::{Phase, RegisterResponse};
use sipfleet_protocol::route::Transport;

#[test]
fn shutdown_unregisters_and_stops() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.start();
    sim.run_until(5000);
    sim.take_log();
    sim.input(|reg, now| reg.shutdown(now));
    assert_lines(
        &sim.take_log(),
        &[
            "5000 registering r1 unregister",
            "5000 send r1 cseq=2 exp=0 cid-1",
            "5000 unregistered r1 shutdown",
            "5000 subscriptions_invalidated r1 Unregistered",
        ],
    );
    assert_eq!(sim.reg.phase(), Phase::Stopped);
    assert_eq!(sim.reg.poll_timeout(), None);
    assert_eq!(sim.reg.registered_route(), None);
}

/// An unanswered un-REGISTER gives up after its own schedule, without
/// failing over, and says the binding's removal was not confirmed.
#[test]
fn unanswered_unregister_gives_up_after_its_schedule() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.start();
    sim.set_peer("r1", Peer::Silent);
    sim.run_until(5000);
    sim.input(|reg, now| reg.shutdown(now));
    sim.run_until(60_000);
    assert_eq!(sim.send_times("r1"), [0, 5000, 5500, 6500]);
    assert_eq!(sim.send_times("r2"), Vec::<u64>::new());
    assert_eq!(
        sim.log_of(&["unregistered"]),
        ["8500 unregistered r1 unregister_unconfirmed"]
    );
    assert_eq!(sim.reg.phase(), Phase::Stopped);
}

/// An un-REGISTER refused with a final non-2xx answer, or met by an ICMP
/// error: the binding may still be at the SBC, and the event says so.
#[test]
fn failed_unregister_is_reported_unconfirmed() {
    for (peer, at) in [(Peer::Status(500), 5000), (Peer::Icmp, 5000)] {
        let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
        sim.start();
        sim.run_until(5000);
        sim.set_peer("r1", peer);
        sim.input(|reg, now| reg.shutdown(now));
        sim.run_until(60_000);
        assert_eq!(
            sim.log_of(&["unregistered"]),
            [format!("{at} unregistered r1 unregister_unconfirmed")]
        );
        assert_eq!(sim.send_times("r2"), Vec::<u64>::new());
        assert_eq!(sim.reg.phase(), Phase::Stopped);
    }
}

/// The caller stops waiting (its shutdown timeout) before the un-REGISTER
/// ended: reported unconfirmed at once, and nothing more is sent.
#[test]
fn unregister_cut_short_by_the_shutdown_timeout_is_unconfirmed() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.start();
    sim.set_peer("r1", Peer::Silent);
    sim.run_until(5000);
    sim.input(|reg, now| reg.shutdown(now));
    sim.run_until(6000);
    sim.input(|reg, now| reg.shutdown_timed_out(now));
    assert_eq!(
        sim.log_of(&["unregistered"]),
        ["6000 unregistered r1 unregister_unconfirmed"]
    );
    assert_eq!(sim.reg.phase(), Phase::Stopped);
    assert_eq!(sim.reg.poll_timeout(), None);
    sim.run_until(60_000);
    assert_eq!(sim.send_times("r1"), [0, 5000, 5500]);
    // Once stopped, it is a no-op.
    sim.input(|reg, now| reg.shutdown_timed_out(now));
    assert_eq!(sim.log_of(&["unregistered"]).len(), 1);
}

/// A challenged un-REGISTER is answered once.
#[test]
fn challenged_unregister_is_answered() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.start();
    sim.set_peer("r1", Peer::Challenge);
    sim.input(|reg, now| reg.shutdown(now));
    assert_eq!(
        sim.log_of(&["send", "unregistered"]),
        [
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 send r1 cseq=2 exp=0 cid-1",
            "0 send r1 cseq=3 exp=0 cid-1 auth",
            "0 unregistered r1 shutdown",
        ]
    );
}

/// Not registered: nothing to remove.
#[test]
fn shutdown_while_backing_off_just_stops() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Status(403));
    sim.start();
    sim.take_log();
    sim.input(|reg, now| reg.shutdown(now));
    assert!(sim.take_log().is_empty());
    assert_eq!(sim.reg.phase(), Phase::Stopped);
    assert_eq!(sim.reg.poll_timeout(), None);
}

/// Credentials cached from the registration ride on the un-REGISTER; a fresh
/// challenge to it is answered, not taken as a denial.
#[test]
fn unregister_with_cached_credentials_answers_a_new_challenge() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Challenge);
    sim.start();
    sim.set_peer("r1", Peer::Silent);
    sim.input(|reg, now| reg.shutdown(now));
    sim.input(|reg, now| reg.handle_response(now, RegisterResponse::new(3, 401)));
    sim.input(|reg, now| reg.handle_response(now, RegisterResponse::new(4, 200)));
    assert_eq!(
        sim.log_of(&["send", "unregistered"]),
        [
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 send r1 cseq=2 exp=3600 cid-1 auth",
            "0 send r1 cseq=3 exp=0 cid-1 auth",
            "0 send r1 cseq=4 exp=0 cid-1 auth",
            "0 unregistered r1 shutdown",
        ]
    );
    assert_eq!(sim.reg.phase(), Phase::Stopped);
}

/// Shutdown while the first REGISTER is still unanswered: that REGISTER may
/// yet create a binding, so its route gets the `Expires: 0` (the binding is
/// not left to lapse at the SBC).
#[test]
fn shutdown_during_an_unanswered_register_unregisters_its_route() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(700);
    sim.input(|reg, now| reg.shutdown(now));
    let log = sim.log_of(&["send"]);
    assert_eq!(
        log.last().map(String::as_str),
        Some("700 send r1 cseq=2 exp=0 cid-1"),
        "{log:?}"
    );
    assert_eq!(sim.send_times("r2"), Vec::<u64>::new());
}

/// Failed over to r2, the line fails back to r1 (`failBack.mode=
/// registration`, `unRegisterOnFailBack=0`: r2's binding is given up
/// silently), and r1 does not answer. Shutdown now removes every binding
/// the line may have: r2's, which still holds until it lapses (answered:
/// `shutdown`), then r1's, which the unanswered REGISTER may have made
/// (cut short by the shutdown timeout: `unregister_unconfirmed`). Before,
/// only r1 got an `Expires: 0`, r2 kept the binding, and no event said so.
#[test]
fn shutdown_removes_a_binding_given_up_silently_and_reports_each_route() {
    let settings = sipfleet_protocol::registration::RegistrationSettings {
        re_register_on: true,
        failback_mode: sipfleet_protocol::config::FailbackMode::Registration,
        expires_s: 60,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Icmp);
    sim.start();
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("r2")
    );
    sim.set_peer("r1", Peer::Silent);
    sim.run_until(30_700);
    assert_eq!(
        sim.reg.registered_route(),
        None,
        "given up for the failback"
    );
    sim.take_log();
    sim.input(|reg, now| reg.shutdown(now));
    sim.input(|reg, now| reg.shutdown_timed_out(now));
    assert_lines(
        &sim.log_of(&["send", "unregistered"]),
        &[
            "30700 send r2 cseq=4 exp=0 cid-1",
            "30700 unregistered r2 shutdown",
            "30700 send r1 cseq=5 exp=0 cid-1",
            "30700 unregistered r1 unregister_unconfirmed",
        ],
    );
    assert_eq!(sim.reg.phase(), Phase::Stopped);
}
