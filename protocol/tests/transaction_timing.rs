//! `ClientTransaction` schedules in virtual time: every send and the give-up
//! instant, to the millisecond, for the guide's settings.

use std::time::{Duration, Instant};

use sipfleet_protocol::route::Transport;
use sipfleet_protocol::transaction::{
    ClientTransaction, RequestKind, RetryPolicy, State, TimedOut, TimeoutAction, WalkPosition,
};

/// Sends (ms, the first at 0) and the give-up (ms, why) of a transaction that
/// hears nothing, started `route_start_ms` into its walk.
fn silent(
    kind: RequestKind,
    transport: Transport,
    policy: RetryPolicy,
    route_start_ms: u64,
    last_route: bool,
) -> (Vec<u64>, Option<(u64, TimedOut)>) {
    let walk_started = Instant::now();
    let start = walk_started + Duration::from_millis(route_start_ms);
    let position = WalkPosition {
        walk_started,
        last_route,
    };
    let mut tx = ClientTransaction::start(kind, transport, &policy, position, start);
    let ms = |t: Instant| (t - walk_started).as_millis() as u64;
    let mut sends = vec![route_start_ms];
    while let Some(deadline) = tx.poll_timeout() {
        match tx.handle_timeout(deadline) {
            Some(TimeoutAction::Retransmit) => sends.push(ms(deadline)),
            Some(TimeoutAction::TimedOut(why)) => return (sends, Some((ms(deadline), why))),
            None => {}
        }
    }
    (sends, None)
}

/// A transaction on the first route of a walk starting at `start`.
fn first_route(
    kind: RequestKind,
    transport: Transport,
    policy: &RetryPolicy,
    start: Instant,
) -> ClientTransaction {
    let position = WalkPosition {
        walk_started: start,
        last_route: false,
    };
    ClientTransaction::start(kind, transport, policy, position, start)
}

fn policy(retry_timeout_ms: u64, retry_max_count: u32) -> RetryPolicy {
    RetryPolicy {
        retry_timeout: Duration::from_millis(retry_timeout_ms),
        retry_max_count,
        ..RetryPolicy::default()
    }
}

#[test]
fn udp_rfc_intervals_with_retry_max_count_3_give_up_at_3500() {
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Udp,
        policy(0, 3),
        0,
        false,
    );
    assert_eq!(sends, [0, 500, 1500]);
    assert_eq!(end, Some((3500, TimedOut::Route)));
}

#[test]
fn udp_rfc_intervals_cap_at_t2_for_non_invite() {
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Udp,
        policy(0, 6),
        0,
        false,
    );
    assert_eq!(sends, [0, 500, 1500, 3500, 7500, 11500]);
    assert_eq!(end, Some((15500, TimedOut::Route)));
}

#[test]
fn udp_invite_intervals_double_without_cap() {
    let (sends, end) = silent(RequestKind::Invite, Transport::Udp, policy(0, 5), 0, false);
    assert_eq!(sends, [0, 500, 1500, 3500, 7500]);
    assert_eq!(end, Some((15500, TimedOut::Route)));
}

#[test]
fn udp_fixed_interval() {
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Udp,
        policy(5000, 2),
        10_000,
        false,
    );
    assert_eq!(sends, [10_000, 15_000]);
    assert_eq!(end, Some((20_000, TimedOut::Route)));
}

#[test]
fn last_udp_route_uses_rfc_intervals_until_the_walk_is_32_s_old() {
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Udp,
        policy(5000, 2),
        20_000,
        true,
    );
    assert_eq!(sends, [20_000, 20_500, 21_500, 23_500, 27_500, 31_500]);
    assert_eq!(end, Some((32_000, TimedOut::Budget)));
}

#[test]
fn invite_on_a_single_route_follows_timer_a_and_b() {
    let (sends, end) = silent(RequestKind::Invite, Transport::Udp, policy(0, 3), 0, true);
    assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15_500, 31_500]);
    assert_eq!(end, Some((32_000, TimedOut::Budget)));
}

#[test]
fn a_route_schedule_is_cut_by_the_32_s_budget_without_enhanced_failover() {
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Udp,
        policy(5000, 3),
        30_000,
        false,
    );
    assert_eq!(sends, [30_000]);
    assert_eq!(end, Some((32_000, TimedOut::Budget)));
}

#[test]
fn enhanced_failover_lets_a_route_run_past_32_s() {
    let policy = RetryPolicy {
        enhanced_failover: true,
        ..policy(5000, 3)
    };
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Udp,
        policy,
        30_000,
        false,
    );
    assert_eq!(sends, [30_000, 35_000, 40_000]);
    assert_eq!(end, Some((45_000, TimedOut::Route)));
    // A last route reached after the budget gets its own schedule.
    let (sends, end) = silent(RequestKind::NonInvite, Transport::Udp, policy, 45_000, true);
    assert_eq!(sends, [45_000, 50_000, 55_000]);
    assert_eq!(end, Some((60_000, TimedOut::Route)));
}

#[test]
fn tcp_does_not_retransmit_and_fast_failover_needs_retry_timeout_0() {
    let fast = RetryPolicy {
        tcp_fast_failover: Some(Duration::from_millis(2000)),
        ..policy(0, 3)
    };
    let (sends, end) = silent(RequestKind::NonInvite, Transport::Tcp, fast, 0, false);
    assert_eq!(sends, [0]);
    assert_eq!(end, Some((2000, TimedOut::Route)));

    let ignored = RetryPolicy {
        retry_timeout: Duration::from_millis(1000),
        ..fast
    };
    let (sends, end) = silent(RequestKind::NonInvite, Transport::Tls, ignored, 0, false);
    assert_eq!(sends, [0]);
    assert_eq!(end, Some((32_000, TimedOut::Route)));

    // Its own Timer F, not the walk's budget: a route started at 20 s fails
    // at 52 s, and only that route (design.md decision 3).
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Tls,
        ignored,
        20_000,
        false,
    );
    assert_eq!(sends, [20_000]);
    assert_eq!(end, Some((52_000, TimedOut::Route)));
    let (_, end) = silent(
        RequestKind::NonInvite,
        Transport::Tcp,
        ignored,
        20_000,
        true,
    );
    assert_eq!(end, Some((52_000, TimedOut::Budget)));

    // The last TCP route waits out the walk's 32 s.
    let (sends, end) = silent(RequestKind::NonInvite, Transport::Tcp, fast, 4000, true);
    assert_eq!(sends, [4000]);
    assert_eq!(end, Some((32_000, TimedOut::Budget)));
}

#[test]
fn retry_max_count_0_still_sends_once() {
    let (sends, end) = silent(
        RequestKind::NonInvite,
        Transport::Udp,
        policy(0, 0),
        0,
        false,
    );
    assert_eq!(sends, [0]);
    assert_eq!(end, Some((500, TimedOut::Route)));
}

#[test]
fn largest_settings_do_not_overflow() {
    let huge = policy(65_535, 65_535);
    let start = Instant::now();
    for kind in [RequestKind::Invite, RequestKind::NonInvite] {
        let tx = first_route(kind, Transport::Udp, &huge, start);
        assert_eq!(tx.give_up_at(), Some(start + Duration::from_secs(32)));
        let enhanced = RetryPolicy {
            enhanced_failover: true,
            ..policy(0, 65_535)
        };
        let tx = first_route(kind, Transport::Udp, &enhanced, start);
        assert!(tx
            .give_up_at()
            .is_some_and(|t| t > start + Duration::from_secs(3600)));
    }
}

#[test]
fn provisional_response_stops_the_short_give_up() {
    let start = Instant::now();
    let ms = |n: u64| start + Duration::from_millis(n);
    let mut tx = first_route(RequestKind::NonInvite, Transport::Udp, &policy(0, 3), start);
    assert_eq!(tx.handle_timeout(ms(500)), Some(TimeoutAction::Retransmit));
    tx.handle_provisional(ms(700));
    assert_eq!(tx.state(), State::Proceeding);
    // Retransmissions every T2 until Timer F, no failover at 3.5 s.
    assert_eq!(tx.poll_timeout(), Some(ms(4700)));
    assert_eq!(tx.handle_timeout(ms(4700)), Some(TimeoutAction::Retransmit));
    assert_eq!(tx.give_up_at(), Some(ms(32_000)));

    let mut invite = first_route(RequestKind::Invite, Transport::Udp, &policy(0, 3), start);
    invite.handle_provisional(ms(100));
    assert_eq!(invite.poll_timeout(), None);
}

#[test]
fn final_response_completes_then_terminates() {
    let start = Instant::now();
    let mut udp = first_route(RequestKind::NonInvite, Transport::Udp, &policy(0, 3), start);
    udp.handle_final(start, 200);
    assert_eq!(udp.state(), State::Completed);
    // Timer K = T4 = 5 s absorbs retransmitted responses.
    assert_eq!(udp.poll_timeout(), Some(start + Duration::from_secs(5)));
    assert_eq!(udp.handle_timeout(start + Duration::from_secs(5)), None);
    assert_eq!(udp.state(), State::Terminated);

    let mut tcp = first_route(RequestKind::NonInvite, Transport::Tcp, &policy(0, 3), start);
    tcp.handle_final(start, 200);
    assert_eq!(tcp.state(), State::Terminated);

    let mut invite = first_route(RequestKind::Invite, Transport::Udp, &policy(0, 3), start);
    invite.handle_final(start, 486);
    assert_eq!(invite.poll_timeout(), Some(start + Duration::from_secs(32)));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// Whatever the settings: sends strictly increase and precede the
        /// give-up; reliable transports send once; a non-last UDP route sends
        /// at most `retryMaxCount` copies; without enhanced failover nothing
        /// outlives the 32 s budget, except a TCP/TLS route's own Timer F,
        /// which lasts 32 s from the route's start.
        #[test]
        fn schedules_are_well_formed(
            retry_timeout_ms in prop_oneof![Just(0u64), 1u64..65_536],
            retry_max_count in 0u32..64,
            fast in prop::option::of(2000u64..=5000),
            enhanced in any::<bool>(),
            invite in any::<bool>(),
            transport in prop::sample::select(vec![Transport::Udp, Transport::Tcp, Transport::Tls]),
            route_start_ms in 0u64..31_999,
            last_route in any::<bool>(),
        ) {
            let policy = RetryPolicy {
                tcp_fast_failover: fast.map(Duration::from_millis),
                enhanced_failover: enhanced,
                ..policy(retry_timeout_ms, retry_max_count)
            };
            let kind = if invite { RequestKind::Invite } else { RequestKind::NonInvite };
            let (sends, end) = silent(kind, transport, policy, route_start_ms, last_route);
            let (give_up, _) = end.expect("a silent route is always given up");
            prop_assert!(sends.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(sends.iter().all(|&s| s < give_up));
            if transport.is_reliable() {
                prop_assert_eq!(sends.len(), 1);
            } else if !last_route {
                prop_assert!(sends.len() as u32 <= retry_max_count.max(1));
            }
            let own_timer_f = transport.is_reliable()
                && (fast.is_none() || retry_timeout_ms != 0);
            if own_timer_f {
                prop_assert!(give_up <= (route_start_ms + 32_000).max(32_000));
            } else if !enhanced {
                prop_assert!(give_up <= 32_000);
            }
            if last_route {
                prop_assert!(give_up >= 32_000);
            }
        }
    }
}
