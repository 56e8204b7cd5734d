//! A TLS handshake that fails (certificate not trusted, wrong name) is its
//! own route-failure reason, `tls`, carrying the verification error: it
//! fails over at once like a refused connect, but an operator must be able
//! to tell a certificate problem from an SBC that is down.

mod registration_sim;

use registration_sim::{assert_lines, routes, Peer, Sim};
use sipfleet_protocol::registration::{RegistrationSettings, TransportError};
use sipfleet_protocol::route::Transport;

const SELF_SIGNED: &str = "certificate verify failed (self-signed certificate)";

/// The handshake with the primary fails: `route_failed` with reason `tls`
/// and the verification error, and an immediate failover to the next route.
#[test]
fn a_failed_handshake_fails_over_at_once_with_reason_tls_and_the_error() {
    let mut sim = Sim::new(RegistrationSettings::default(), routes(2, Transport::Tls));
    sim.set_peer("r1", Peer::Silent);
    sim.start();
    sim.transport_error(
        "r1",
        TransportError::Tls {
            detail: SELF_SIGNED.into(),
        },
    );
    assert_lines(
        &sim.take_log(),
        &[
            "0 registering r1 initial",
            "0 send r1 cseq=1 exp=3600 cid-1",
            &format!("0 route_failed r1 tls detail={SELF_SIGNED}"),
            "0 failover r2 from=r1",
            "0 registering r2 failover",
            "0 send r2 cseq=2 exp=3600 cid-1",
            "0 registered r2 exp=3600 primary=false",
        ],
    );
}

/// Registered, then the refresh meets a certificate that no longer
/// verifies (renewed under a wrong name): a failover, not a loss.
#[test]
fn a_failed_handshake_while_registered_fails_over() {
    let mut sim = Sim::new(RegistrationSettings::default(), routes(3, Transport::Tls));
    sim.start();
    sim.run_until(60_000);
    sim.take_log();
    sim.set_peer("r1", Peer::Silent);
    sim.transport_error(
        "r1",
        TransportError::Tls {
            detail: "certificate verify failed (hostname mismatch)".into(),
        },
    );
    let log = sim.take_log();
    assert_eq!(
        log.first().map(String::as_str),
        Some("60000 route_failed r1 tls detail=certificate verify failed (hostname mismatch)")
    );
    assert_eq!(
        log.get(1).map(String::as_str),
        Some("60000 failover r2 from=r1")
    );
    assert!(log.iter().all(|l| !l.contains("backoff")), "{log:#?}");
}
