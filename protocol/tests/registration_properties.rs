//! Property tests: arbitrary inputs in arbitrary order never panic the
//! registration machine, never produce a deadline in the past or a livelock,
//! and keep the CSeq, branch and Call-ID rules.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sipfleet_protocol::registration::{
    EventKind, Output, Phase, RegisterResponse, Registration, RegistrationSettings, TransportError,
};
use sipfleet_protocol::route::{Route, RouteSource, Transport};

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Respond {
        status: u16,
        expires: Option<u64>,
        retry_after: Option<u64>,
        min_expires: Option<u64>,
        stale: bool,
        stale_cseq: bool,
        binding_missing: bool,
        unusable_challenge: bool,
    },
    Error(usize, TransportError),
    Routes(Vec<usize>),
    Calls(bool),
    RequestFailback,
    Shutdown,
    ShutdownTimedOut,
    /// The pacer grants the slot asked for (`true`: the grant of an older
    /// request, which must change nothing).
    Grant(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let error = prop_oneof![
        Just(TransportError::Icmp),
        Just(TransportError::Refused),
        Just(TransportError::FlowLost),
        Just(TransportError::KeepAliveLost),
    ];
    prop_oneof![
        40 => (0u64..400_000).prop_map(Op::Advance),
        40 => (
            prop::sample::select(vec![100u16, 180, 200, 202, 302, 401, 403, 407, 423, 500, 503, 603]),
            prop::option::of(0u64..7200),
            prop::option::of(0u64..600),
            prop::option::of(0u64..100_000),
            any::<bool>(),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(status, expires, retry_after, min_expires, stale, stale_cseq, missing, unusable)| Op::Respond {
                status,
                expires,
                retry_after,
                min_expires,
                stale,
                stale_cseq,
                binding_missing: missing,
                unusable_challenge: unusable,
            }),
        15 => (0usize..4, error).prop_map(|(i, e)| Op::Error(i, e)),
        5 => prop::sample::subsequence(vec![0usize, 1, 2, 3], 0..=4)
            .prop_shuffle()
            .prop_map(Op::Routes),
        5 => any::<bool>().prop_map(Op::Calls),
        3 => Just(Op::RequestFailback),
        1 => Just(Op::Shutdown),
        1 => Just(Op::ShutdownTimedOut),
        20 => prop::bool::weighted(0.2).prop_map(Op::Grant),
    ]
}

fn settings() -> impl Strategy<Value = RegistrationSettings> {
    (
        any::<[bool; 8]>(),
        prop::sample::select(vec![0u32, 500, 5000]),
        0u32..5,
        prop::sample::select(vec![0u32, 60, 600]),
        any::<bool>(),
        prop::sample::select(vec![0u32, 10, 50]),
    )
        .prop_map(
            |(flags, retry_timeout_ms, retry_max_count, failback, paced, spread)| {
                RegistrationSettings {
                    retry_timeout_ms,
                    retry_max_count,
                    tcp_fast_failover: flags[0],
                    tcp_fast_failover_timeout_ms: 2000,
                    failover_on_503: flags[1],
                    register_retry_base_s: 10,
                    register_retry_max_s: 120,
                    re_register_on: flags[2],
                    fail_registration_on: flags[3],
                    unregister_on_failback: flags[4],
                    auth_optimized_in_failover: flags[5],
                    new_call_on_unregister: flags[6],
                    enhanced_failover: flags[7],
                    failback_timeout_s: failback,
                    paced,
                    refresh_spread_pct: spread,
                    ..RegistrationSettings::default()
                }
            },
        )
}

fn all_routes() -> Vec<Route> {
    [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Udp,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, transport)| Route {
        transport,
        host: format!("r{i}"),
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)), 5060),
        group: i / 2,
        priority: 0,
        weight: 0,
        source: RouteSource::Network,
    })
    .collect()
}

/// What the checker remembers between outputs.
#[derive(Default)]
struct Seen {
    last_new: Option<(u32, u64)>,
    call_id: Option<String>,
    backoff_since_last_send: bool,
    /// The slot asked for (ticket) and whether it was granted.
    slot: Option<(u64, bool)>,
}

fn check_outputs(
    reg: &mut Registration,
    seen: &mut Seen,
    new_call: bool,
) -> Result<(), TestCaseError> {
    while let Some(output) = reg.poll_output() {
        match output {
            Output::RequestSlot(request) => {
                prop_assert!(reg.settings().paced, "an unpaced line asked for a slot");
                prop_assert!(seen.slot.is_none(), "asked again without SlotDone");
                prop_assert!(request.purpose.starts_exchange());
                seen.slot = Some((request.ticket, false));
            }
            Output::SlotDone => {
                prop_assert!(seen.slot.is_some(), "SlotDone without a slot");
                seen.slot = None;
            }
            Output::Send(send) => {
                if reg.settings().paced && !send.retransmission {
                    prop_assert!(
                        matches!(seen.slot, Some((_, true))),
                        "a paced line sent a new request without a grant"
                    );
                }
                if send.retransmission {
                    prop_assert_eq!(seen.last_new, Some((send.cseq, send.transaction)));
                } else {
                    if let Some((cseq, tx)) = seen.last_new {
                        prop_assert!(send.cseq > cseq, "CSeq must grow");
                        prop_assert!(send.transaction > tx, "branch must be new");
                    }
                    seen.last_new = Some((send.cseq, send.transaction));
                }
                if let Some(previous) = &seen.call_id {
                    if *previous != send.call_id {
                        prop_assert!(
                            new_call && seen.backoff_since_last_send,
                            "Call-ID changed without a back-off"
                        );
                    }
                }
                seen.call_id = Some(send.call_id.clone());
                seen.backoff_since_last_send = false;
            }
            Output::Event(event) => {
                prop_assert_eq!(&event.call_id, reg.call_id());
                if let EventKind::Backoff { wait, .. } = event.kind {
                    prop_assert!(wait <= Duration::from_secs(600));
                    seen.backoff_since_last_send = true;
                }
            }
        }
    }
    Ok(())
}

/// Runs every deadline up to `until`; a deadline that does not move on after
/// many calls at the same instant is a livelock.
fn advance(
    reg: &mut Registration,
    now: &mut Instant,
    until: Instant,
    seen: &mut Seen,
    new_call: bool,
) -> Result<(), TestCaseError> {
    let mut same_instant = 0;
    while let Some(deadline) = reg.poll_timeout() {
        if deadline > until {
            break;
        }
        prop_assert!(deadline >= *now, "deadline in the past");
        if deadline == *now {
            same_instant += 1;
            prop_assert!(same_instant < 50, "livelock at one instant");
        } else {
            same_instant = 0;
        }
        *now = (*now).max(deadline);
        reg.handle_timeout(*now);
        check_outputs(reg, seen, new_call)?;
    }
    *now = until.max(*now);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn arbitrary_inputs_keep_the_rules(settings in settings(), seed in any::<u64>(), ops in prop::collection::vec(op(), 1..60)) {
        let routes = all_routes();
        let new_call = settings.new_call_on_unregister;
        let mut n = 0;
        let mut reg = Registration::new(
            settings,
            Box::new(StdRng::seed_from_u64(seed)),
            Box::new(move || { n += 1; format!("cid-{n}") }),
        );
        let mut now = Instant::now();
        let mut seen = Seen::default();
        reg.handle_routes(now, routes.clone(), Some(Duration::from_secs(300)));
        reg.start(now);
        check_outputs(&mut reg, &mut seen, new_call)?;
        for op in ops {
            match op {
                Op::Advance(ms) => {
                    let until = now + Duration::from_millis(ms);
                    advance(&mut reg, &mut now, until, &mut seen, new_call)?;
                }
                Op::Respond { status, expires, retry_after, min_expires, stale, stale_cseq, binding_missing, unusable_challenge } => {
                    let cseq = seen.last_new.map_or(0, |(c, _)| c).wrapping_sub(u32::from(stale_cseq));
                    reg.handle_response(now, RegisterResponse {
                        cseq,
                        status,
                        expires: expires.map(Duration::from_secs),
                        retry_after: retry_after.map(Duration::from_secs),
                        min_expires: min_expires.map(Duration::from_secs),
                        stale,
                        binding_missing,
                        unusable_challenge: unusable_challenge.then(|| "Basic".to_owned()),
                    });
                }
                Op::Error(i, error) => reg.handle_transport_error(now, &routes[i], error),
                Op::Routes(pick) => {
                    let list = pick.iter().map(|&i| routes[i].clone()).collect();
                    reg.handle_routes(now, list, None);
                }
                Op::Calls(active) => reg.handle_calls_active(now, active),
                Op::RequestFailback => reg.request_failback(now),
                Op::Shutdown => reg.shutdown(now),
                Op::ShutdownTimedOut => reg.shutdown_timed_out(now),
                Op::Grant(stale) => match seen.slot {
                    Some((ticket, false)) if !stale => {
                        seen.slot = Some((ticket, true));
                        reg.handle_slot_granted(now, ticket);
                    }
                    Some((ticket, _)) if stale => {
                        let before = reg.phase();
                        reg.handle_slot_granted(now, ticket.wrapping_sub(1));
                        prop_assert_eq!(reg.phase(), before);
                    }
                    _ => {}
                },
            }
            check_outputs(&mut reg, &mut seen, new_call)?;
            prop_assert_eq!(
                seen.slot.is_some_and(|(_, granted)| !granted),
                reg.phase() == Phase::AwaitingSlot,
                "waiting for a slot exactly while awaiting it"
            );
            if reg.phase() == Phase::Stopped {
                prop_assert!(seen.slot.is_none(), "a stopped line keeps no slot");
            }
            if let Some(deadline) = reg.poll_timeout() {
                prop_assert!(deadline >= now, "an input scheduled a deadline in the past");
            }
            if reg.settings().re_register_on && reg.settings().only_signal_with_registered {
                for route in &routes {
                    let registered = reg.registered_route().is_some_and(|r| r.same_destination(route));
                    prop_assert_eq!(reg.may_signal_via(route), registered);
                }
            }
        }
    }
}
