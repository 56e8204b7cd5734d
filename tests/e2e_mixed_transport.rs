//! End to end against the guide's own example, "DNSNaptr Records for Mixed
//! Transports Across Multiple Networks", served by a lab of ten SBCs:
//!
//! | NAPTR order | transport | SBCs (SRV priority)          | guide's selection order |
//! |-------------|-----------|------------------------------|-------------------------|
//! | 50          | TCP       | 1, 2 (100, 100)              | 1, 1                    |
//! | 100         | TCP       | 3, 4 (100, 100)              | 2, 2                    |
//! | 150         | TLS       | 5, 6, 7, 8 (140 .. 440)      | 3, 4, 5, 6              |
//! | 200         | UDP       | 9, 10 (140, 240)             | 7, 8                    |
//!
//! The guide: "SBCs representing Selection Order 1 & 2 are not routable ...
//! and 3 & 4 are currently down. The first SBC that the phone can register
//! to in this scenario is Selection Order=5. This phone is considered to be
//! in the failover state since the primary SBC is ... Selection Order=3 ...
//! Should SBC 5 fail, the phone will failover and try SBCs in order starting
//! from the top of its service record (the primary SBC) but skipping its
//! current and known failed SBC, so ... the phone will try SBC 3, 4, 6, then
//! move to a new service record for SBC 7 where if it registers, the phone
//! will now treat SBC 7 as the new primary."

mod e2e_support;

use std::time::Duration;

use e2e_support::{kind, scenario, t_ms, Harness};
use serde_json::Value;
use sipfleet_lab::{LabConfig, Mode};

const USER: &str = "1005";

/// The SBCs a walk tried, in order: (SBC, transport) of every new REGISTER
/// transaction among `evs`.
fn tried(h: &Harness, evs: &[Value]) -> Vec<(usize, String)> {
    evs.iter()
        .filter(|e| kind(e) == "registering")
        .map(|e| {
            (
                h.sbc_of(e).unwrap_or(0),
                e["route"]["transport"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn the_guides_mixed_transport_example_end_to_end() {
    let mut h = scenario!()
        .concurrent()
        .lab(LabConfig::mixed_transport())
        .line(USER)
        .transport("DNSnaptr")
        .config(
            "voIpProt.server.1.expires=\"10\"\n\
             voIpProt.server.1.failOver.reRegisterOn=\"1\"\n\
             voIpProt.server.1.failOver.failBack.mode=\"duration\"\n\
             voIpProt.SIP.authOptimizedInFailover=\"1\"\n",
        )
        .start();
    // Guide selection orders 1-4 (our SBCs 1-6) are unreachable.
    for i in 1..=6 {
        h.lab.set_mode(i, Mode::Dead).unwrap();
    }
    h.run(async |h, fleet| {
        // 1. The first SBC that can register the line is SBC 7 (selection
        //    order 5), over TLS, and it is not the primary.
        let on7 = h
            .wait_event("registered", Duration::from_secs(5), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs = h.events();
        let story = h.story();
        assert_eq!(h.sbc_of(&on7), Some(7), "{story}");
        assert_eq!(on7["route"]["transport"], "tls", "{story}");
        assert_eq!(on7["primary"], false, "primary is SBC 5\n{story}");
        let walk: Vec<usize> = tried(h, &evs).iter().map(|(s, _)| *s).collect();
        // SBCs 1 and 2 (equal priority, weighted random order), then 3 and
        // 4, then 5, 6, 7 (7 twice: challenge answered there).
        assert_eq!(walk.len(), 8, "{walk:?}\n{story}");
        let mut first_pair = walk[0..2].to_vec();
        first_pair.sort();
        let mut second_pair = walk[2..4].to_vec();
        second_pair.sort();
        assert_eq!(
            (first_pair, second_pair, &walk[4..]),
            (vec![1, 2], vec![3, 4], &[5, 6, 7, 7][..]),
            "{story}"
        );
        let transports: Vec<String> = tried(h, &evs).into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            transports,
            ["tcp", "tcp", "tcp", "tcp", "tls", "tls", "tls", "tls"],
            "{story}"
        );
        assert!(
            t_ms(&on7) - t_ms(&evs[0]) < 1000,
            "walk of 7 SBCs took {} ms\n{story}",
            t_ms(&on7) - t_ms(&evs[0])
        );
        let status = fleet.status().await;
        let primary = status[0].primary.as_ref().expect("a primary");
        assert_eq!(h.sbc_at(primary.addr.ip()), Some(5), "{status:?}");

        // 2. "Should SBC 5 fail": SBC 7 answers 503 from now on and SBC 8
        //    is gone too; the refresh (5 s after registering) fails over
        //    from the top of the TLS record: 5, 6 (refused), 8 (refused),
        //    then the UDP record: SBC 9, the new primary.
        let before = h.events().len();
        h.set_mode(7, Mode::Error503 { retry_after: None }).await;
        h.set_mode(8, Mode::Dead).await;
        let on9 = h
            .wait_event_after(before, "registered on SBC 9", Duration::from_secs(8), |e| {
                kind(e) == "registered"
            })
            .await;
        let evs: Vec<Value> = h.events().into_iter().skip(before).collect();
        let story = h.story();
        assert_eq!(h.sbc_of(&on9), Some(9), "{story}");
        assert_eq!(on9["route"]["transport"], "udp", "{story}");
        assert_eq!(
            on9["primary"], true,
            "a new record's top is the new primary\n{story}"
        );
        let walk: Vec<usize> = tried(h, &evs).iter().map(|(s, _)| *s).collect();
        assert_eq!(walk, [7, 5, 6, 8, 9, 9], "{story}");
        let reasons: Vec<(usize, String)> = evs
            .iter()
            .filter(|e| kind(e) == "route_failed")
            .map(|e| {
                (
                    h.sbc_of(e).unwrap_or(0),
                    e["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            [
                (7, "503".to_string()),
                (5, "refused".to_string()),
                (6, "refused".to_string()),
                (8, "refused".to_string())
            ],
            "{story}"
        );
        let call_id = h.events()[0]["call_id"].clone();
        assert!(
            h.events().iter().all(|e| e["call_id"] == call_id),
            "{story}"
        );
        let status = fleet.status().await;
        let primary = status[0].primary.as_ref().expect("a primary");
        assert_eq!(h.sbc_at(primary.addr.ip()), Some(9), "{status:?}");
        eprintln!(
            "measured: first registration on SBC 7 (TLS) {} ms after the first REGISTER; \
             refresh walk 7, 5, 6, 8 -> SBC 9 (UDP) in {} ms",
            t_ms(&on7) - t_ms(&h.events()[0]),
            t_ms(&on9) - t_ms(&evs[0])
        );
        fleet.shutdown(Duration::from_secs(3)).await;
        h.finish();
    });
}
