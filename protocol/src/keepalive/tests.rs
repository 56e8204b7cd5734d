//! Virtual-time tests of the keep-alive schedule: a simulated clock is stepped
//! to each `poll_timeout()` and every action is recorded with its millisecond.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Steps the clock from `start` to each deadline up to `until`, recording
/// `(ms since start, action)`.
fn run(ka: &mut Keepalive, start: Instant, until: Duration) -> Vec<(u128, KeepaliveAction)> {
    let mut out = Vec::new();
    while let Some(t) = ka.poll_timeout() {
        if t > start + until {
            break;
        }
        ka.handle_timeout(t);
        while let Some(a) = ka.poll_action() {
            out.push(((t - start).as_millis(), a));
        }
    }
    out
}

fn tls_settings() -> KeepaliveSettings {
    KeepaliveSettings {
        tls_enable: true,
        persistent_connection: true,
        ..KeepaliveSettings::default()
    }
}

fn ping() -> KeepaliveAction {
    KeepaliveAction::Send(Bytes::from_static(PING))
}

#[test]
fn defaults_are_the_guides() {
    let s = KeepaliveSettings::default();
    assert_eq!(s.nat_interval, Duration::ZERO);
    assert_eq!(&s.udp_payload[..], b"\r\n\r\n");
    assert_eq!(&s.tcp_payload[..], b"\r\n\r\n");
    assert!(!s.tls_enable);
    assert_eq!(s.no_response_transmit_interval, Duration::from_secs(20));
    assert_eq!(s.idle_transmit_interval, Duration::from_secs(30));
    assert!(!s.persistent_connection);
}

#[test]
fn tls_four_unanswered_pings_then_lost_at_110s() {
    let t0 = Instant::now();
    let mut ka = Keepalive::new(Transport::Tls, &tls_settings(), t0);
    let got = run(&mut ka, t0, Duration::from_secs(1000));
    assert_eq!(
        got,
        vec![
            (30_000, ping()),
            (50_000, ping()),
            (70_000, ping()),
            (90_000, ping()),
            (110_000, KeepaliveAction::Lost(KeepaliveLoss::Unanswered)),
        ]
    );
    assert!(ka.is_lost());
    assert_eq!(ka.poll_timeout(), None);
}

#[test]
fn tls_pong_resets_the_schedule() {
    let t0 = Instant::now();
    let mut ka = Keepalive::new(Transport::Tls, &tls_settings(), t0);
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(30_000)));
    ka.handle_timeout(t0 + ms(30_000));
    assert_eq!(ka.poll_action(), Some(ping()));
    // Second attempt at 50 s, answered 1.5 s later.
    ka.handle_timeout(t0 + ms(50_000));
    assert_eq!(ka.poll_action(), Some(ping()));
    ka.handle_pong(t0 + ms(51_500));
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(81_500)));
    // Not a millisecond early.
    ka.handle_timeout(t0 + ms(81_499));
    assert_eq!(ka.poll_action(), None);
    ka.handle_timeout(t0 + ms(81_500));
    assert_eq!(ka.poll_action(), Some(ping()));
    assert!(!ka.is_lost());
}

#[test]
fn tls_inbound_message_answers_a_ping_and_delays_the_next() {
    let t0 = Instant::now();
    let mut ka = Keepalive::new(Transport::Tls, &tls_settings(), t0);
    ka.handle_received_message(t0 + ms(10_000));
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(40_000)));
    ka.handle_timeout(t0 + ms(40_000));
    assert_eq!(ka.poll_action(), Some(ping()));
    ka.handle_received_message(t0 + ms(40_250));
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(70_250)));
}

#[test]
fn tls_outbound_messages_do_not_answer_an_outstanding_ping() {
    let t0 = Instant::now();
    let mut ka = Keepalive::new(Transport::Tls, &tls_settings(), t0);
    ka.handle_timeout(t0 + ms(30_000));
    assert_eq!(ka.poll_action(), Some(ping()));
    ka.handle_sent_message(t0 + ms(35_000));
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(50_000)));
}

#[test]
fn tls_custom_intervals() {
    let t0 = Instant::now();
    let s = KeepaliveSettings {
        no_response_transmit_interval: Duration::from_secs(5),
        idle_transmit_interval: Duration::from_secs(10),
        ..tls_settings()
    };
    let mut ka = Keepalive::new(Transport::Tls, &s, t0);
    let got: Vec<u128> = run(&mut ka, t0, Duration::from_secs(100))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(got, vec![10_000, 15_000, 20_000, 25_000, 30_000]);
}

#[test]
fn persistent_connection_answers_far_end_pings() {
    let t0 = Instant::now();
    let mut ka = Keepalive::new(Transport::Tls, &tls_settings(), t0);
    ka.handle_ping(t0 + ms(5));
    assert_eq!(ka.poll_action(), Some(KeepaliveAction::SendPong));
    // Without persistentConnection: no pong.
    let s = KeepaliveSettings::default();
    let mut ka = Keepalive::new(Transport::Tcp, &s, t0);
    ka.handle_ping(t0 + ms(5));
    assert_eq!(ka.poll_action(), None);
    // UDP never answers pings.
    let s = KeepaliveSettings {
        persistent_connection: true,
        ..KeepaliveSettings::default()
    };
    let mut ka = Keepalive::new(Transport::Udp, &s, t0);
    ka.handle_ping(t0 + ms(5));
    assert_eq!(ka.poll_action(), None);
}

#[test]
fn non_persistent_idle_stream_closes_after_60s_despite_far_end_pings() {
    let t0 = Instant::now();
    let mut ka = Keepalive::new(Transport::Tcp, &KeepaliveSettings::default(), t0);
    ka.handle_sent_message(t0 + ms(1_000));
    ka.handle_received_message(t0 + ms(1_200));
    // Far-end keep-alives are not activity.
    ka.handle_ping(t0 + ms(30_000));
    ka.handle_ping(t0 + ms(60_000));
    assert_eq!(ka.poll_action(), None);
    let got = run(&mut ka, t0, Duration::from_secs(1000));
    assert_eq!(
        got,
        vec![(61_200, KeepaliveAction::Lost(KeepaliveLoss::Idle))]
    );
}

#[test]
fn persistent_or_keepalive_sending_streams_never_idle_close() {
    let t0 = Instant::now();
    let persistent = KeepaliveSettings {
        persistent_connection: true,
        ..KeepaliveSettings::default()
    };
    let mut ka = Keepalive::new(Transport::Tcp, &persistent, t0);
    assert_eq!(ka.poll_timeout(), None);
    assert!(run(&mut ka, t0, Duration::from_secs(3600)).is_empty());

    // The phone sends its own NAT keep-alives: no idle close either.
    let nat = KeepaliveSettings {
        nat_interval: Duration::from_secs(25),
        ..KeepaliveSettings::default()
    };
    let mut ka = Keepalive::new(Transport::Tcp, &nat, t0);
    let got = run(&mut ka, t0, Duration::from_secs(100));
    assert_eq!(got.len(), 4);
    assert!(got
        .iter()
        .all(|(_, a)| matches!(a, KeepaliveAction::Send(_))));
}

#[test]
fn udp_never_idle_closes() {
    let t0 = Instant::now();
    let ka = Keepalive::new(Transport::Udp, &KeepaliveSettings::default(), t0);
    assert_eq!(ka.poll_timeout(), None);
}

#[test]
fn nat_keepalive_sent_after_interval_without_outbound_traffic() {
    let t0 = Instant::now();
    let s = KeepaliveSettings {
        nat_interval: Duration::from_secs(15),
        udp_payload: Bytes::from_static(b"ka"),
        ..KeepaliveSettings::default()
    };
    let mut ka = Keepalive::new(Transport::Udp, &s, t0);
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(15_000)));
    ka.handle_timeout(t0 + ms(15_000));
    assert_eq!(
        ka.poll_action(),
        Some(KeepaliveAction::Send(Bytes::from_static(b"ka")))
    );
    // An outbound message at 20.5 s pushes the next keep-alive to 35.5 s.
    ka.handle_sent_message(t0 + ms(20_500));
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(35_500)));
    // Inbound traffic does not refresh the binding from our side.
    ka.handle_received_message(t0 + ms(30_000));
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(35_500)));
    let got = run(&mut ka, t0, Duration::from_secs(60));
    let times: Vec<u128> = got.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![35_500, 50_500]);
}

#[test]
fn tcp_uses_the_tcp_payload_and_tls_without_tls_keepalives_too() {
    let t0 = Instant::now();
    let s = KeepaliveSettings {
        nat_interval: Duration::from_secs(1),
        udp_payload: Bytes::from_static(b"udp"),
        tcp_payload: Bytes::from_static(b"tcp"),
        ..KeepaliveSettings::default()
    };
    for transport in [Transport::Tcp, Transport::Tls] {
        let mut ka = Keepalive::new(transport, &s, t0);
        ka.handle_timeout(t0 + ms(1_000));
        assert_eq!(
            ka.poll_action(),
            Some(KeepaliveAction::Send(Bytes::from_static(b"tcp")))
        );
    }
}

#[test]
fn disabled_nat_interval_sends_nothing() {
    let t0 = Instant::now();
    let s = KeepaliveSettings {
        persistent_connection: true,
        ..KeepaliveSettings::default()
    };
    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let ka = Keepalive::new(transport, &s, t0);
        assert_eq!(ka.poll_timeout(), None, "{transport}");
    }
}

#[test]
fn late_wakeups_do_not_shift_the_nat_schedule() {
    let t0 = Instant::now();
    let s = KeepaliveSettings {
        nat_interval: Duration::from_secs(25),
        ..KeepaliveSettings::default()
    };
    let mut ka = Keepalive::new(Transport::Udp, &s, t0);
    ka.handle_timeout(t0 + ms(25_001));
    assert!(ka.poll_action().is_some());
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(50_000)));
    // Far behind (a suspended process): restart from now, one keep-alive.
    ka.handle_timeout(t0 + ms(200_000));
    assert!(ka.poll_action().is_some());
    assert_eq!(ka.poll_action(), None);
    assert_eq!(ka.poll_timeout(), Some(t0 + ms(225_000)));
}
