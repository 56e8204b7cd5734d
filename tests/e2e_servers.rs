//! End to end against the real lab: a line with two configured servers
//! (`reg.1.server.1`, `reg.1.server.2`), each naming one SBC by its own A
//! record. "`reg.1.server.2` takes over when every route of server 1 is
//! dead" (issue 12).

mod e2e_support;

use std::time::Duration;

use e2e_support::{kind, scenario, t_ms};
use sipfleet_lab::Mode;

const USER: &str = "1001";

/// SBC 1 (server 1's only route) is dead: its ICMP error fails the route
/// at once and the line registers on SBC 2 (server 2), failed over: its
/// primary stays server 1. Server 1 is SBC 1, server 2 is SBC 2, both
/// `UDPOnly` on port 5060 (an A query each, no SRV); they override the
/// scenario's `voIpProt.server.1`.
#[test]
fn server_2_takes_over_when_every_route_of_server_1_is_dead() {
    let mut h = scenario!()
        .mode(1, Mode::Dead)
        .line(USER)
        .config_with(|lab| {
            format!(
                "reg.1.server.1.address=\"{}\"\n\
                 reg.1.server.1.port=\"5060\"\n\
                 reg.1.server.1.transport=\"UDPOnly\"\n\
                 reg.1.server.2.address=\"{}\"\n\
                 reg.1.server.2.port=\"5060\"\n\
                 reg.1.server.2.transport=\"UDPOnly\"\n\
                 voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
                lab.sbc(1).host_name(),
                lab.sbc(2).host_name(),
            )
        })
        .start();
    h.run(async |h, fleet| {
        let reg = h
            .wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs = h.events();
        let story = h.story();
        let first = evs
            .iter()
            .find(|e| kind(e) == "registering")
            .expect("a REGISTER");
        assert_eq!(h.sbc_of(first), Some(1), "server 1 first\n{story}");
        let failed = evs
            .iter()
            .find(|e| kind(e) == "route_failed")
            .expect("server 1's route failed");
        assert_eq!(h.sbc_of(failed), Some(1), "{story}");
        assert_eq!(failed["reason"], "icmp", "{story}");
        let failover = evs
            .iter()
            .find(|e| kind(e) == "failover")
            .expect("failover to server 2");
        assert_eq!(h.sbc_of(failover), Some(2), "{story}");
        assert_eq!(h.sbc_of(&reg), Some(2), "{story}");
        assert_eq!(reg["primary"], false, "{story}");
        assert!(
            t_ms(&reg) - t_ms(first) < 1000,
            "registered {} ms after the first REGISTER\n{story}",
            t_ms(&reg) - t_ms(first)
        );
        let status = fleet.status().await;
        let primary = status[0].primary.as_ref().expect("a primary");
        assert_eq!(
            h.sbc_at(primary.addr.ip()),
            Some(1),
            "primary is server 1\n{story}"
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        assert!(h.registers(1, USER).is_empty(), "{story}");
        assert!(!h.registers(2, USER).is_empty(), "{story}");
        h.finish();
    });
}
