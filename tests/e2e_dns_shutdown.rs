//! End to end against the real lab: DNS changes while registered (guide,
//! "the current route is sticky unless a refresh drops it"), and shutdown
//! (every binding removed with `Expires: 0` at the SBC that holds it).

mod e2e_support;

use std::time::Duration;

use e2e_support::{config, kind, scenario, t_ms, Harness};
use serde_json::Value;
use sipfleet_lab::{srv_name, DnsMode, Record, Transport};

/// The DNS TTL of the lab in these tests, seconds.
const TTL_S: u32 = 3;

/// Edits the `_sip._udp` SRV record of SBC `sbc` (removes it when `priority`
/// is `None`).
async fn edit_udp_srv(h: &Harness, sbc: usize, priority: Option<u16>) {
    let domain = h.lab.domain().to_string();
    let target = h.lab.sbc(sbc).host_name().to_string();
    {
        let result = h
            .with_lab(move |lab| {
                let name = srv_name(Transport::Udp, &domain);
                lab.dns().update(|z| {
                    let is_it = |r: &Record| {
                        matches!(r, Record::Srv { name: n, target: t, .. } if *n == name && *t == target)
                    };
                    match priority {
                        None => {
                            z.remove(is_it);
                        }
                        Some(p) => {
                            for r in &mut z.records {
                                if is_it(r) {
                                    if let Record::Srv { priority, .. } = r {
                                        *priority = p;
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .await;
        result.expect("zone updated");
    }
}

/// Registered on SBC 1, then the zone drops SBC 1's SRV record. At the next
/// refresh of the route set (within one TTL) the line learns its route is
/// gone: `route_failed` with `dns_removed`, and it registers on the new top
/// route, SBC 2, with the same Call-ID, within TTL + 1 s of the change.
#[test]
fn dns_removal_of_the_registered_route_moves_the_line() {
    let mut h = scenario!().concurrent().ttl(TTL_S).line("1003").start();
    h.run(async |h, fleet| {
        let on1 = h.first_registration_on(1).await;
        let changed_at = h.now_ms();
        edit_udp_srv(h, 1, None).await;
        let removed = h
            .wait_event(
                "route_failed dns_removed",
                Duration::from_millis(u64::from(TTL_S) * 1000 + 2000),
                |e| kind(e) == "route_failed",
            )
            .await;
        let on2 = h
            .wait_event("registered on SBC 2", Duration::from_secs(2), |e| {
                kind(e) == "registered" && h.sbc_of(e) == Some(2)
            })
            .await;
        let story = h.story();
        assert_eq!(removed["reason"], "dns_removed", "{story}");
        assert_eq!(h.sbc_of(&removed), Some(1), "{story}");
        let delay = t_ms(&removed) - changed_at;
        assert!(
            delay <= u64::from(TTL_S) * 1000 + 1000,
            "dns_removed {delay} ms after the zone change (TTL {TTL_S} s)\n{story}"
        );
        let next = h
            .events()
            .into_iter()
            .find(|e| kind(e) == "registering" && t_ms(e) >= t_ms(&removed))
            .unwrap();
        assert_eq!(h.sbc_of(&next), Some(2), "{story}");
        assert!(t_ms(&next) - t_ms(&removed) <= 50, "{story}");
        assert_eq!(on2["call_id"], on1["call_id"], "{story}");
        let status = fleet.status().await;
        assert!(
            status[0].routes.iter().all(|r| h.sbc_at(r.addr.ip()) != Some(1)),
            "{status:?}"
        );
        eprintln!(
            "measured: dns_removed {delay} ms after the zone change (TTL {TTL_S} s), registered on SBC 2 {} ms later",
            t_ms(&on2) - t_ms(&removed)
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Registered on SBC 1, then the zone puts SBC 1 last (priority 40 below
/// SBC 2 and 3). The fleet learns the new order (its route list changes)
/// but the line stays where it is: the current route is sticky while DNS
/// still lists it. No REGISTER goes anywhere for two TTLs.
#[test]
fn dns_reorder_keeping_the_registered_route_does_not_move_the_line() {
    let mut h = scenario!().concurrent().ttl(TTL_S).line("1004").start();
    h.run(async |h, fleet| {
        h.first_registration_on(1).await;
        let before = h.events().len();
        let registers_before = h.registers(1, "1004").len();
        edit_udp_srv(h, 1, Some(40)).await;
        // Wait until the fleet's route list shows the new order (bounded by
        // a TTL and a second), then two more TTLs for any move to show.
        let deadline = h.now_ms() + u64::from(TTL_S) * 1000 + 1000;
        loop {
            let status = fleet.status().await;
            let order: Vec<Option<usize>> = status[0]
                .routes
                .iter()
                .map(|r| h.sbc_at(r.addr.ip()))
                .collect();
            if order == [Some(2), Some(3), Some(1)] {
                break;
            }
            assert!(
                h.now_ms() < deadline,
                "the fleet never saw the new order: {order:?}\n{}",
                h.story()
            );
            h.sleep_ms(50).await;
        }
        h.sleep_ms(u64::from(TTL_S) * 2000).await;
        let story = h.story();
        let after: Vec<Value> = h.events().into_iter().skip(before).collect();
        assert!(after.is_empty(), "the line moved: {after:#?}\n{story}");
        let status = fleet.status().await;
        let registered = status[0].registered_route.as_ref().expect("registered");
        assert_eq!(h.sbc_at(registered.addr.ip()), Some(1), "{status:?}");
        assert_eq!(h.registers(1, "1004").len(), registers_before, "{story}");
        assert!(h.registers(2, "1004").is_empty(), "{story}");
        assert!(h.registers(3, "1004").is_empty(), "{story}");
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}

/// Shutdown removes every binding where it is held. Fleet A's lines 1011
/// and 1012 register on SBC 1; fleet B's line 1013 meets a 503 at SBC 1
/// and fails over to SBC 2. Shutting both down sends each line's
/// `Expires: 0` (with its Call-ID) to the SBC holding its binding, and to
/// no other; afterwards no SBC lists any of them.
#[test]
fn shutdown_unregisters_every_line_where_it_is_registered() {
    let mut a = scenario!().concurrent().line("1011").line("1012").start();
    let cfg_b = config(
        &a.lab,
        &["1013"],
        "UDPOnly",
        "voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
    );
    let mut b = Harness::new(&a.lab, format!("{} (fleet B)", a.name));
    a.run(async |a, fleet_a| {
        for line in [1, 2] {
            let reg = a
                .wait_event("registered", Duration::from_secs(5), |e| {
                    kind(e) == "registered" && e["line"] == line
                })
                .await;
            assert_eq!(a.sbc_of(&reg), Some(1), "{}", a.story());
        }
        a.set_mode(1, sipfleet_lab::Mode::Error503 { retry_after: None })
            .await;
        let fleet_b = b.start(&cfg_b);
        let reg = b
            .wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        assert_eq!(b.sbc_of(&reg), Some(2), "{}", b.story());
        b.set_mode(1, sipfleet_lab::Mode::Ok).await;
        for (sbc, user) in [(1, "1011"), (1, "1012"), (2, "1013")] {
            assert!(!a.lab.sbc(sbc).contacts(user).unwrap().is_empty(), "{user}");
        }
        let began = a.now_ms();
        tokio::join!(
            fleet_a.shutdown(Duration::from_secs(3)),
            fleet_b.shutdown(Duration::from_secs(3)),
        );
        let took = a.now_ms() - began;
        assert!(took < 1500, "shutdown took {took} ms");
        for (h, line, user, sbc, other) in [
            (a, 1, "1011", 1, 2),
            (a, 2, "1012", 1, 2),
            (&b, 1, "1013", 2, 1),
        ] {
            let story = h.story();
            let evs: Vec<Value> = h
                .events()
                .into_iter()
                .filter(|e| e["line"] == line)
                .collect();
            let call_id = evs[0]["call_id"].as_str().unwrap().to_string();
            let gone = evs
                .iter()
                .find(|e| kind(e) == "unregistered")
                .expect("unregistered");
            assert_eq!(gone["reason"], "shutdown", "{story}");
            assert_eq!(h.sbc_of(gone), Some(sbc), "{story}");
            let seen = h
                .wait_registers(sbc, user, Duration::from_secs(2), |s| {
                    s.iter().any(|r| r.expires == Some(0))
                })
                .await;
            let zero: Vec<_> = seen.iter().filter(|r| r.expires == Some(0)).collect();
            assert!(zero.iter().all(|r| r.call_id == call_id), "{seen:#?}");
            assert!(
                h.registers(other, user)
                    .iter()
                    .all(|r| r.expires != Some(0)),
                "{story}"
            );
            for s in 1..=3 {
                assert!(
                    a.lab.sbc(s).contacts(user).unwrap().is_empty(),
                    "SBC {s} still lists {user}\n{story}"
                );
            }
        }
        eprintln!("measured: shutdown of both fleets (3 lines on 2 SBCs) took {took} ms");
        a.finish();
        b.finish();
    });
}

/// A DNS outage does not strand registered lines: the DNS server goes
/// silent (and then answers NXDOMAIN) while the lines are registered on
/// SBC 1, and SBC 1 dies. The route-set refreshes fail, the lines keep the
/// routes they had, and each line's next refresh (5 s after registering,
/// expires 10) meets ICMP and fails over to SBC 2 from that list.
#[test]
fn dns_outage_keeps_the_route_list_for_failover() {
    for dns_mode in [DnsMode::Silent, DnsMode::NxDomain] {
        let mut h = scenario!()
            .concurrent()
            .ttl(TTL_S)
            .line("1031")
            .line("1032")
            .line("1033")
            .config("voIpProt.server.1.expires=\"10\"\n")
            .start();
        h.run(async |h, fleet| {
            for line in 1..=3 {
                let reg = h
                    .wait_event("registered", Duration::from_secs(5), |e| {
                        kind(e) == "registered" && e["line"] == line
                    })
                    .await;
                assert_eq!(h.sbc_of(&reg), Some(1), "{}", h.story());
            }
            let registered_at = h.now_ms();
            let result = h.with_lab(move |lab| lab.dns().set_mode(dns_mode)).await;
            result.expect("DNS mode");
            h.set_mode(1, sipfleet_lab::Mode::Dead).await;
            for line in 1..=3 {
                h.wait_event("registered on SBC 2", Duration::from_secs(8), |e| {
                    kind(e) == "registered" && e["line"] == line && h.sbc_of(e) == Some(2)
                })
                .await;
            }
            let story = h.story();
            let moved = h
                .events()
                .into_iter()
                .filter(|e| kind(e) == "registered" && h.sbc_of(e) == Some(2))
                .map(|e| t_ms(&e))
                .max()
                .unwrap();
            assert!(
                moved - registered_at <= 6500,
                "{dns_mode:?}: last line on SBC 2 {} ms after the outage\n{story}",
                moved - registered_at
            );
            let failures: Vec<Value> = h
                .events()
                .into_iter()
                .filter(|e| kind(e) == "route_failed")
                .collect();
            assert!(
                failures.iter().all(|e| e["reason"] == "icmp" && h.sbc_of(e) == Some(1)),
                "{story}"
            );
            assert!(
                !h.events().iter().any(|e| kind(e) == "backoff"),
                "{story}"
            );
            for (i, s) in fleet.status().await.iter().enumerate() {
                assert_eq!(s.routes.len(), 3, "line {}: {s:?}", i + 1);
            }
            // Each line kept its own Call-ID through the failover.
            let mut ids: Vec<String> = (1..=3)
                .map(|line| {
                    let evs: Vec<Value> = h
                        .events()
                        .into_iter()
                        .filter(|e| e["line"] == line)
                        .collect();
                    let id = evs[0]["call_id"].as_str().unwrap().to_string();
                    assert!(evs.iter().all(|e| e["call_id"] == id.as_str()), "{story}");
                    id
                })
                .collect();
            ids.dedup();
            assert_eq!(ids.len(), 3, "{story}");
            eprintln!(
                "measured ({dns_mode:?}): all 3 lines on SBC 2 {} ms after the DNS outage and SBC 1's death",
                moved - registered_at
            );
            fleet.shutdown(Duration::from_secs(3)).await;
            h.finish();
        });
    }
}

/// Shutdown is bounded: the registrar (SBC 1) has gone silent, so the
/// un-REGISTER is never answered; `shutdown(2 s)` returns after about 2 s
/// all the same. Once SBC 1 is continued it shows the un-REGISTER (and its
/// retransmissions: 0, 0.5, 1.5 s) with the line's Call-ID.
#[test]
fn shutdown_is_bounded_when_the_registrar_is_silent() {
    let mut h = scenario!().concurrent().line("1041").start();
    h.run(async |h, fleet| {
        let reg = h.first_registration_on(1).await;
        h.set_mode(1, sipfleet_lab::Mode::Silent).await;
        let began = h.now_ms();
        fleet.shutdown(Duration::from_secs(2)).await;
        let took = h.now_ms() - began;
        assert!(
            (1900..=2500).contains(&took),
            "shutdown took {took} ms\n{}",
            h.story()
        );
        h.set_mode(1, sipfleet_lab::Mode::Ok).await;
        let seen = h
            .wait_registers(1, "1041", Duration::from_secs(2), |s| {
                s.iter().filter(|r| r.expires == Some(0)).count() >= 3
            })
            .await;
        let zero: Vec<_> = seen.iter().filter(|r| r.expires == Some(0)).collect();
        assert_eq!(zero.len(), 3, "{seen:#?}");
        assert!(zero
            .iter()
            .all(|r| r.call_id == reg["call_id"].as_str().unwrap()));
        eprintln!("measured: shutdown with a silent registrar took {took} ms (timeout 2 s)");
        h.finish();
    });
}
