//! The guide's "When All Failover Routes Fail" and "When Failover Is Not
//! Triggered": the randomized back-off table and the Call-ID rules, in virtual
//! time with the back-off RNG pinned.

mod registration_sim;

use std::time::Duration;

use rand::RngCore;
use registration_sim::{assert_lines, pinned_waits, quick_backoff, routes, Peer, Sim};
use sipfleet_protocol::registration::{Backoff, Phase, RegistrationSettings, TransportError};
use sipfleet_protocol::route::Transport;

/// The guide's table for base 10 s, max 120 s: W = 10, 20, 40, 80, 120, 120,
/// 120 s for 0 to 6 consecutive failures.
const TABLE_S: [u64; 7] = [10, 20, 40, 80, 120, 120, 120];

#[test]
fn ceiling_follows_the_guide_table() {
    let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(120));
    for (n, w) in TABLE_S.iter().enumerate() {
        assert_eq!(backoff.ceiling(n as u32), Duration::from_secs(*w));
    }
    assert_eq!(backoff.ceiling(40), Duration::from_secs(120));
    // The guide's defaults: base 60, max 60.
    let default = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
    assert_eq!(default.ceiling(0), Duration::from_secs(60));
    assert_eq!(default.ceiling(5), Duration::from_secs(60));
}

/// Seven denials in a row: each wait lies in [W/2, W] of the table and is
/// exactly what the pinned RNG draws; each new REGISTER leaves when its wait
/// ends.
#[test]
fn consecutive_denials_walk_the_backoff_table_with_the_pinned_rng() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Udp));
    sim.set_peer("r1", Peer::Status(403));
    sim.start();
    let ceilings: Vec<u64> = TABLE_S.iter().map(|s| s * 1000).collect();
    let waits = pinned_waits(&ceilings);
    let total: u64 = waits.iter().sum();
    sim.run_until(total - 1);
    // What the machine did, whatever the test's own draws: the n-th wait
    // it announced lies in [W/2, W] of the table's n-th W, and the next
    // REGISTER leaves when that wait ends.
    let sends = sim.send_times("r1");
    let backoffs = sim.log_of(&["backoff"]);
    for (n, (line, &w)) in backoffs.iter().zip(&ceilings).enumerate() {
        let wait: u64 = line
            .split(" wait=")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|wait| wait.parse().ok())
            .unwrap_or_else(|| panic!("no wait in {line:?}"));
        assert!(
            line.ends_with(&format!(" n={n}")),
            "{line:?} is not failure {n}"
        );
        assert!(
            w / 2 <= wait && wait <= w,
            "wait {wait} after {n} failures outside [{}, {w}]",
            w / 2
        );
        if let Some(next) = sends.get(n + 1) {
            assert_eq!(
                next - sends[n],
                wait,
                "REGISTER {} left early or late",
                n + 1
            );
        }
    }
    assert_eq!(backoffs.len(), ceilings.len(), "{backoffs:?}");
    // And exactly the pinned RNG's draws, one per failure.
    let mut expected_sends = vec![0];
    let mut t = 0;
    let mut expected_backoffs = Vec::new();
    for (n, &wait) in waits.iter().enumerate() {
        expected_backoffs.push(format!("{t} backoff r1 wait={wait} n={n}"));
        t += wait;
        if n + 1 < waits.len() {
            expected_sends.push(t);
        }
    }
    assert_eq!(sends, expected_sends);
    assert_eq!(backoffs, expected_backoffs);
}

/// An RNG stuck at 0 draws W/2, one stuck at all ones draws W: the wait
/// covers exactly [W/2, W].
#[test]
fn wait_bounds_are_half_w_and_w() {
    struct Constant(u64);
    impl RngCore for Constant {
        fn next_u32(&mut self) -> u32 {
            self.0 as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(self.0 as u8);
        }
    }
    for (value, scale) in [(0u64, 500u64), (u64::MAX, 1000)] {
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(120));
        let waits: Vec<u64> = (0..7)
            .map(|_| backoff.next_wait(&mut Constant(value)).as_millis() as u64)
            .collect();
        let expected: Vec<u64> = TABLE_S.iter().map(|s| s * scale).collect();
        assert_eq!(waits, expected);
    }
}

/// A success resets the consecutive-failure count.
#[test]
fn success_resets_the_failure_count() {
    let mut sim = Sim::new(quick_backoff(), routes(1, Transport::Tcp));
    sim.set_peer("r1", Peer::Status(403));
    sim.start();
    let waits = pinned_waits(&[10_000, 20_000, 10_000]);
    sim.run_until(waits[0] - 1);
    sim.set_peer("r1", Peer::Ok);
    sim.run_until(waits[0]);
    assert_eq!(sim.reg.phase(), Phase::Registered);
    sim.transport_error("r1", TransportError::FlowLost);
    assert_eq!(
        sim.log_of(&["backoff"]),
        [
            format!("0 backoff r1 wait={} n=0", waits[0]),
            // The draw for n=1 was never made: the next draw is the second
            // number of the sequence, against W for n=0.
            format!(
                "{} backoff r1 wait={} n=0",
                waits[0],
                pinned_waits(&[10_000, 10_000])[1]
            ),
        ]
    );
}

/// All routes failed: back-off after the 32 s period, then a new Call-ID
/// (`newCallOnUnRegister=1`) or the same one (`=0`). Failover hops keep it.
#[test]
fn call_id_changes_after_backoff_only_with_new_call_on_unregister() {
    for (new_call, second) in [(true, "cid-2"), (false, "cid-1")] {
        let settings = RegistrationSettings {
            new_call_on_unregister: new_call,
            ..quick_backoff()
        };
        let mut sim = Sim::new(settings, routes(2, Transport::Udp));
        sim.set_peer("r1", Peer::Icmp);
        sim.set_peer("r2", Peer::Icmp);
        sim.start();
        let wait = pinned_waits(&[10_000])[0];
        sim.run_until(32_000 + wait);
        let call_ids: Vec<(u64, String)> = sim
            .sends
            .iter()
            .map(|(t, s)| (*t, s.call_id.clone()))
            .collect();
        let t = 32_000 + wait;
        assert_eq!(
            call_ids,
            [
                (0, "cid-1".to_owned()),
                (0, "cid-1".to_owned()),
                (t, second.to_owned()),
                (t, second.to_owned()),
            ]
        );
    }
}

/// A TCP stream dropped by the far end is a registration loss: no failover,
/// back-off at once, then a new Call-ID.
#[test]
fn flow_lost_is_a_registration_loss_not_a_failover() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Tcp));
    sim.start();
    sim.run_until(60_000);
    sim.take_log();
    sim.transport_error("r1", TransportError::FlowLost);
    let wait = pinned_waits(&[10_000])[0];
    sim.run_until(60_000 + wait);
    assert_lines(
        &sim.take_log(),
        &[
            "60000 route_failed r1 flow_lost",
            "60000 unregistered r1 flow_lost",
            "60000 subscriptions_invalidated r1 Unregistered",
            &format!("60000 backoff r1 wait={wait} n=0"),
            &format!("{} registering r1 initial", 60_000 + wait),
            &format!("{} send r1 cseq=2 exp=3600 cid-2", 60_000 + wait),
            &format!("{} registered r1 exp=3600 primary=true", 60_000 + wait),
        ],
    );
}

/// Keep-alive loss is also a registration loss; with `newCallOnUnRegister=0`
/// the Call-ID survives it.
#[test]
fn keepalive_loss_backs_off_and_keeps_call_id_without_new_call_on_unregister() {
    let settings = RegistrationSettings {
        new_call_on_unregister: false,
        ..quick_backoff()
    };
    let mut sim = Sim::new(settings, routes(2, Transport::Tls));
    sim.start();
    sim.run_until(1000);
    sim.take_log();
    sim.transport_error("r1", TransportError::KeepAliveLost);
    let wait = pinned_waits(&[10_000])[0];
    sim.run_until(1000 + wait);
    assert_lines(
        &sim.take_log(),
        &[
            "1000 route_failed r1 keepalive_lost",
            "1000 unregistered r1 keepalive_lost",
            "1000 subscriptions_invalidated r1 Unregistered",
            &format!("1000 backoff r1 wait={wait} n=0"),
            &format!("{} registering r1 initial", 1000 + wait),
            &format!("{} send r1 cseq=2 exp=3600 cid-1", 1000 + wait),
            &format!("{} registered r1 exp=3600 primary=true", 1000 + wait),
        ],
    );
}

/// Transport trouble on a route the line does not use changes nothing.
#[test]
fn errors_for_other_routes_are_ignored() {
    let mut sim = Sim::new(quick_backoff(), routes(2, Transport::Tcp));
    sim.start();
    sim.take_log();
    sim.transport_error("r2", TransportError::FlowLost);
    sim.transport_error("r2", TransportError::Icmp);
    assert!(sim.take_log().is_empty());
    assert!(sim.reg.poll_output().is_none());
    assert_eq!(sim.reg.phase(), Phase::Registered);
    // Nothing is pending either: the next deadline is the refresh.
    let refresh = sim.reg.poll_timeout();
    assert_eq!(refresh, Some(sim.t0 + Duration::from_secs(3600 - 60)));
}
