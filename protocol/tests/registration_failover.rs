//! The guide's failover timelines ("Triggering Failover", "UDP - Failover
//! Timing Controls", "TCP/TLS Failover Timing Controls", "When Failover Is Not
//! Triggered"), replayed in virtual time to the millisecond.

mod registration_sim;

use registration_sim::{assert_lines, pinned_waits, quick_backoff, routes, Peer, Sim};
use sipfleet_protocol::registration::{Phase, RegistrationSettings, TransportError};
use sipfleet_protocol::route::Transport;

/// Guide, Example 1: RFC 3261 intervals, `retryMaxCount=3`: sends at 0, 0.5 and
/// 1.5 s, failover at 3.5 s.
#[test]
fn default_udp_fails_over_after_3500_ms() {
    let mut sim = Sim::new(RegistrationSettings::default(), routes(3, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(10_000);
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "500 send r1 cseq=1 exp=3600 cid-1 rtx",
            "1500 send r1 cseq=1 exp=3600 cid-1 rtx",
            "3500 route_failed r1 timeout",
            "3500 failover r2 from=r1",
            "3500 registering r2 failover",
            "3500 send r2 cseq=2 exp=3600 cid-1",
            "3500 registered r2 exp=3600 primary=false",
        ],
    );
    assert_eq!(
        sim.reg.registered_route().map(|r| r.host.as_str()),
        Some("r2")
    );
    assert!(sim.reg.is_failed_over());
}

/// Guide, Example 2: `retryTimeOut=5000`, `retryMaxCount=2`, three A records:
/// 10 s on each of the first two, then the last one with RFC 3261 intervals
/// for the remaining 12 s, then the back-off.
#[test]
fn example_2_fixed_interval_then_rfc_intervals_on_the_last_route() {
    let settings = RegistrationSettings {
        retry_timeout_ms: 5000,
        retry_max_count: 2,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, routes(3, Transport::Udp));
    for host in ["r1", "r2", "r3"] {
        sim.set_peer(host, Peer::Silent);
    }
    sim.start();
    let wait = pinned_waits(&[10_000])[0];
    sim.run_until(32_000 + wait);
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "5000 send r1 cseq=1 exp=3600 cid-1 rtx",
            "10000 route_failed r1 timeout",
            "10000 failover r2 from=r1",
            "10000 registering r2 failover",
            "10000 send r2 cseq=2 exp=3600 cid-1",
            "15000 send r2 cseq=2 exp=3600 cid-1 rtx",
            "20000 route_failed r2 timeout",
            "20000 failover r3 from=r2",
            "20000 registering r3 failover",
            "20000 send r3 cseq=3 exp=3600 cid-1",
            "20500 send r3 cseq=3 exp=3600 cid-1 rtx",
            "21500 send r3 cseq=3 exp=3600 cid-1 rtx",
            "23500 send r3 cseq=3 exp=3600 cid-1 rtx",
            "27500 send r3 cseq=3 exp=3600 cid-1 rtx",
            "31500 send r3 cseq=3 exp=3600 cid-1 rtx",
            "32000 route_failed r3 timeout",
            "32000 registration_failed r3",
            &format!("32000 backoff r3 wait={wait} n=0"),
            &format!("{} registering r1 initial", 32_000 + wait),
            &format!("{} send r1 cseq=4 exp=3600 cid-2", 32_000 + wait),
        ],
    );
    assert_eq!(sim.reg.phase(), Phase::Registering);
}

/// A single route is the last route from the start: RFC 3261 Timer E/F.
#[test]
fn single_udp_route_is_retried_until_timer_f() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(32_000);
    assert_eq!(
        sim.send_times("r1"),
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(
        sim.log_of(&["route_failed", "registration_failed"]),
        [
            "32000 route_failed r1 timeout",
            "32000 registration_failed r1"
        ]
    );
}

/// Guide, "Example – TCP using a fastFailover timeout": one send, failover
/// after 2 s.
#[test]
fn tcp_fast_failover_after_2_s() {
    let settings = RegistrationSettings {
        tcp_fast_failover: true,
        tcp_fast_failover_timeout_ms: 2000,
        ..RegistrationSettings::default()
    };
    let mut sim = Sim::new(settings, routes(3, Transport::Tcp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(10_000);
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "2000 route_failed r1 timeout",
            "2000 failover r2 from=r1",
            "2000 registering r2 failover",
            "2000 send r2 cseq=2 exp=3600 cid-1",
            "2000 registered r2 exp=3600 primary=false",
        ],
    );
}

/// `tcpFastFailover.timeout` only applies with `retryTimeOut=0`; otherwise a
/// TCP/TLS route waits for its own Timer F (design.md decision 3, issue 12):
/// a primary that takes the connection and never answers fails that route
/// only, and the walk goes on to the next route with the same Call-ID. The
/// walk fails after the last route's own period.
#[test]
fn a_silent_tcp_route_fails_over_at_its_own_timer_f() {
    for settings in [
        RegistrationSettings::default(),
        RegistrationSettings {
            tcp_fast_failover: true,
            tcp_fast_failover_timeout_ms: 2000,
            retry_timeout_ms: 1000,
            ..RegistrationSettings::default()
        },
    ] {
        let mut sim = Sim::new(settings.clone(), routes(2, Transport::Tls));
        sim.set_peer("r1", Peer::Silent);
        sim.start();
        sim.run_until(40_000);
        assert_eq!(sim.send_times("r1"), [0]);
        assert_eq!(sim.send_times("r2"), [32_000]);
        assert_eq!(
            sim.log_of(&[
                "route_failed",
                "failover",
                "registered",
                "registration_failed"
            ]),
            [
                "32000 route_failed r1 timeout",
                "32000 failover r2 from=r1",
                "32000 registered r2 exp=3600 primary=false",
            ]
        );
        assert_eq!(sim.sends[1].1.call_id, sim.sends[0].1.call_id);

        let mut sim = Sim::new(settings, routes(3, Transport::Tcp));
        for r in ["r1", "r2", "r3"] {
            sim.set_peer(r, Peer::Silent);
        }
        sim.start();
        sim.run_until(100_000);
        let wait = pinned_waits(&[60_000])[0];
        assert_eq!(
            sim.log_of(&["route_failed", "registration_failed", "backoff"])[..5],
            [
                "32000 route_failed r1 timeout".to_string(),
                "64000 route_failed r2 timeout".into(),
                "96000 route_failed r3 timeout".into(),
                "96000 registration_failed r3".into(),
                format!("96000 backoff r3 wait={wait} n=0"),
            ]
        );
    }
}

/// An ICMP error fails the route at once; so does a refused TCP connect.
#[test]
fn icmp_and_refused_connect_fail_over_immediately() {
    for (transport, peer, reason) in [
        (Transport::Udp, Peer::Icmp, "icmp"),
        (Transport::Tcp, Peer::Refused, "refused"),
    ] {
        let mut sim = Sim::new(RegistrationSettings::default(), routes(2, transport));
        sim.set_peer("r1", peer);
        sim.start();
        assert_lines(
            &sim.take_log(),
            &[
                "0 registering r1 initial",
                "0 send r1 cseq=1 exp=3600 cid-1",
                &format!("0 route_failed r1 {reason}"),
                "0 failover r2 from=r1",
                "0 registering r2 failover",
                "0 send r2 cseq=2 exp=3600 cid-1",
                "0 registered r2 exp=3600 primary=false",
            ],
        );
    }
}

/// An ICMP error while registered (e.g. for a keep-alive or another request)
/// starts a failover from the top of the service record.
#[test]
fn icmp_while_registered_fails_over() {
    let mut sim = Sim::new(RegistrationSettings::default(), routes(3, Transport::Udp));
    sim.start();
    sim.run_until(60_000);
    sim.take_log();
    sim.set_peer("r1", Peer::Icmp);
    sim.transport_error("r1", TransportError::Icmp);
    assert_lines(
        &sim.take_log(),
        &[
            "60000 route_failed r1 icmp",
            "60000 failover r2 from=r1",
            "60000 registering r2 failover",
            "60000 send r2 cseq=2 exp=3600 cid-1",
            "60000 subscriptions_invalidated r1 NewRegistrar",
            "60000 registered r2 exp=3600 primary=false",
        ],
    );
}

/// `failoverOn503Response=1`: immediate failover, Retry-After ignored on a
/// route that is not the last.
#[test]
fn status_503_fails_over_immediately_ignoring_retry_after() {
    let mut sim = Sim::new(RegistrationSettings::default(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Unavailable(Some(120)));
    sim.start();
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 route_failed r1 503",
            "0 failover r2 from=r1",
            "0 registering r2 failover",
            "0 send r2 cseq=2 exp=3600 cid-1",
            "0 registered r2 exp=3600 primary=false",
        ],
    );
}

/// `failoverOn503Response=1`: Retry-After of a 503 from the last route sets
/// the wait before the next attempt.
#[test]
fn status_503_retry_after_applies_on_the_last_route() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Unavailable(Some(120)));
    sim.set_peer("r2", Peer::Unavailable(Some(20)));
    sim.start();
    sim.run_until(20_000);
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 route_failed r1 503",
            "0 failover r2 from=r1",
            "0 registering r2 failover",
            "0 send r2 cseq=2 exp=3600 cid-1",
            "0 route_failed r2 503",
            "0 registration_failed r2 503",
            "0 backoff r2 wait=20000 n=0",
            "20000 registering r1 initial",
            "20000 send r1 cseq=3 exp=3600 cid-2",
            "20000 route_failed r1 503",
            "20000 failover r2 from=r1",
            "20000 registering r2 failover",
            "20000 send r2 cseq=4 exp=3600 cid-2",
            "20000 route_failed r2 503",
            "20000 registration_failed r2 503",
            "20000 backoff r2 wait=20000 n=1",
        ],
    );
}

/// A 503 without Retry-After on the last route: the back-off starts when the
/// 32 s period against it has elapsed.
#[test]
fn status_503_without_retry_after_on_the_last_route_waits_out_the_32_s() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Unavailable(None));
    sim.start();
    sim.run_until(31_999);
    assert_eq!(sim.log_of(&["backoff"]), Vec::<String>::new());
    sim.run_until(32_000);
    let wait = pinned_waits(&[10_000])[0];
    assert_eq!(
        sim.log_of(&["backoff"]),
        [format!("32000 backoff r1 wait={wait} n=0")]
    );
    sim.run_until(32_000 + wait);
    assert_eq!(sim.send_times("r1"), [0, 32_000 + wait]);
}

/// `failoverOn503Response=0`: a 503 is a final response; its Retry-After
/// delays the next try, which starts at the top again.
#[test]
fn status_503_without_failover_is_final_and_retry_after_delays() {
    let settings = RegistrationSettings {
        failover_on_503: false,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Unavailable(Some(30)));
    sim.start();
    sim.run_until(30_000);
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 registration_failed r1 503",
            "0 backoff r1 wait=30000 n=0",
            "30000 registering r1 initial",
            "30000 send r1 cseq=2 exp=3600 cid-2",
            "30000 registration_failed r1 503",
            "30000 backoff r1 wait=30000 n=1",
        ],
    );
    assert_eq!(sim.send_times("r2"), Vec::<u64>::new());
}

/// A 403 is a denial: registration loss and back-off, never a failover.
#[test]
fn status_403_backs_off_without_failover() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Status(403));
    sim.start();
    let waits = pinned_waits(&[10_000, 20_000]);
    sim.run_until(waits[0] + waits[1]);
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            "0 registration_failed r1 403",
            &format!("0 backoff r1 wait={} n=0", waits[0]),
            &format!("{} registering r1 initial", waits[0]),
            &format!("{} send r1 cseq=2 exp=3600 cid-2", waits[0]),
            &format!("{} registration_failed r1 403", waits[0]),
            &format!("{} backoff r1 wait={} n=1", waits[0], waits[1]),
            &format!("{} registering r1 initial", waits[0] + waits[1]),
            &format!("{} send r1 cseq=3 exp=3600 cid-3", waits[0] + waits[1]),
            &format!("{} registration_failed r1 403", waits[0] + waits[1]),
            &format!(
                "{} backoff r1 wait={} n=2",
                waits[0] + waits[1],
                pinned_waits(&[10_000, 20_000, 40_000])[2]
            ),
        ],
    );
    assert_eq!(sim.send_times("r2"), Vec::<u64>::new());
}

/// Without enhanced failover Timer B/F ends the walk at 32 s even with routes
/// left; with it every route is tried, past 32 s, on its own schedule.
#[test]
fn enhanced_failover_tries_every_route_past_32_s() {
    let base = RegistrationSettings {
        retry_timeout_ms: 5000,
        retry_max_count: 3,
        ..quick_backoff()
    };
    // The first back-off wait is at least 5 s: stop before it ends.
    for (enhanced, r3, r4, end, stop) in [
        (
            false,
            vec![30_000],
            vec![],
            "32000 registration_failed r3",
            37_000,
        ),
        (
            true,
            vec![30_000, 35_000, 40_000],
            vec![45_000, 50_000, 55_000],
            "60000 registration_failed r4",
            65_000,
        ),
    ] {
        let settings = RegistrationSettings {
            enhanced_failover: enhanced,
            ..base.clone()
        };
        let mut sim = Sim::new(settings, routes(4, Transport::Udp));
        for host in ["r1", "r2", "r3", "r4"] {
            sim.set_peer(host, Peer::Silent);
        }
        sim.start();
        sim.run_until(stop);
        assert_eq!(sim.send_times("r1"), [0, 5000, 10_000]);
        assert_eq!(sim.send_times("r2"), [15_000, 20_000, 25_000]);
        assert_eq!(sim.send_times("r3"), r3);
        assert_eq!(sim.send_times("r4"), r4);
        assert_eq!(sim.log_of(&["registration_failed"]), [end]);
    }
}

/// Enhanced failover, last route reached inside the 32 s budget: it is
/// held until 32 s, and the back-off starts then.
#[test]
fn enhanced_failover_last_route_within_budget_waits_out_the_32_s() {
    let settings = RegistrationSettings {
        enhanced_failover: true,
        tcp_fast_failover: true,
        tcp_fast_failover_timeout_ms: 4000,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, routes(3, Transport::Tls));
    for host in ["r1", "r2", "r3"] {
        sim.set_peer(host, Peer::Silent);
    }
    sim.start();
    sim.run_until(40_000);
    assert_eq!(
        sim.log_of(&["route_failed"]),
        [
            "4000 route_failed r1 timeout",
            "8000 route_failed r2 timeout",
            "32000 route_failed r3 timeout"
        ]
    );
}

/// Appendix A, "SIP Using UDP and SBC Failover": `retryTimeOut=500`,
/// `retryMaxCount=3` fail over after 1.5 s; failback after 600 s.
#[test]
fn appendix_udp_example() {
    let settings = RegistrationSettings {
        retry_timeout_ms: 500,
        retry_max_count: 3,
        auth_optimized_in_failover: true,
        re_register_on: true,
        failback_timeout_s: 600,
        ..RegistrationSettings::default()
    };
    let mut sim = Sim::new(settings, routes(2, Transport::Udp));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.run_until(2000);
    assert_eq!(sim.send_times("r1"), [0, 500, 1000]);
    assert_eq!(
        sim.log_of(&["failover", "registered"]),
        [
            "1500 failover r2 from=r1",
            "1500 registered r2 exp=3600 primary=false"
        ]
    );
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(601_500);
    assert_eq!(sim.log_of(&["failback"]), ["601500 failback r1 from=r2"]);
}

/// Appendix A, "SIP Using TLS, Keep-Alives, and SBC Failover": 4 s between
/// SBCs, enhanced failover, back-off from 5-10 s up to 180 s.
#[test]
fn appendix_tls_example() {
    let settings = RegistrationSettings {
        tcp_fast_failover: true,
        tcp_fast_failover_timeout_ms: 4000,
        enhanced_failover: true,
        register_retry_base_s: 10,
        register_retry_max_s: 180,
        re_register_on: true,
        failback_timeout_s: 600,
        ..RegistrationSettings::default()
    };
    let mut sim = Sim::new(settings, routes(2, Transport::Tls));
    sim.set_peer("r1", Peer::Silent);
    sim.set_peer("r2", Peer::Silent);
    sim.start();
    let ceilings = [10_000, 20_000, 40_000, 80_000, 160_000, 180_000];
    let waits = pinned_waits(&ceilings);
    let mut cycle_start = 0;
    let mut expected_r1 = Vec::new();
    let mut expected_r2 = Vec::new();
    let mut expected_backoffs = Vec::new();
    for (n, wait) in waits.iter().enumerate() {
        expected_r1.push(cycle_start);
        // r1 fails after 4 s; r2, the last route, waits out the 32 s.
        expected_r2.push(cycle_start + 4000);
        expected_backoffs.push(format!(
            "{} backoff r2 wait={wait} n={n}",
            cycle_start + 32_000
        ));
        cycle_start += 32_000 + wait;
    }
    sim.run_until(cycle_start - 1);
    assert_eq!(sim.send_times("r1"), expected_r1);
    assert_eq!(sim.send_times("r2"), expected_r2);
    assert_eq!(sim.log_of(&["backoff"]), expected_backoffs);
}

/// The guide's defaults, parameter by parameter.
#[test]
fn settings_default_to_the_guide() {
    use sipfleet_protocol::registration::FailbackMode;
    let s = RegistrationSettings::default();
    assert_eq!((s.retry_timeout_ms, s.retry_max_count), (0, 3));
    assert_eq!(
        (s.tcp_fast_failover, s.tcp_fast_failover_timeout_ms),
        (false, 5000)
    );
    assert!(s.failover_on_503);
    assert_eq!((s.register_retry_base_s, s.register_retry_max_s), (60, 60));
    assert!(!s.re_register_on);
    assert!(s.only_signal_with_registered);
    assert!(s.fail_registration_on);
    assert_eq!(
        (s.failback_mode, s.failback_timeout_s),
        (FailbackMode::Duration, 3600)
    );
    assert!(!s.unregister_on_failback);
    assert!(!s.auth_optimized_in_failover);
    assert!(s.new_call_on_unregister);
    assert!(!s.enhanced_failover);
    assert_eq!(s.expires_s, 3600);
    // reRegisterOn=0 turns the RROFO parameters off (design.md decision 1).
    assert_eq!(s.effective_failback_mode(), FailbackMode::NewRequests);
    assert!(!s.effective_fail_registration_on());
    assert!(!s.effective_only_signal_with_registered());
}

/// `authOptimizedInFailover=0` (the default) with a silent TCP primary: the
/// challenge of the route the walk failed over to sends the authenticated
/// request back to the primary (the guide: "the phone will retry its
/// primary, which may add a delay"), which costs one more Timer F; then
/// the walk fails over again and the credentials are accepted there.
#[test]
fn a_challenge_after_a_silent_tcp_primary_goes_back_to_it_once_more() {
    let mut sim = Sim::new(RegistrationSettings::default(), routes(2, Transport::Tcp));
    sim.set_peer("r1", Peer::Silent);
    sim.set_peer("r2", Peer::Challenge);
    sim.start();
    sim.run_until(70_000);
    assert_eq!(
        sim.log_of(&["registering", "route_failed", "registered"]),
        [
            "0 registering r1 initial",
            "32000 route_failed r1 timeout",
            "32000 registering r2 failover",
            "32000 registering r1 authenticate",
            "64000 route_failed r1 timeout",
            "64000 registering r2 failover",
            "64000 registered r2 exp=3600 primary=false",
        ]
    );
}
