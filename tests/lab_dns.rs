//! The lab's DNS server answers as configured (NAPTR, SRV, A, short TTLs,
//! the guide's mixed-transport example), changes at run time, answers
//! negatively on request and goes silent or away when stopped.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use sipfleet_lab::tools::{dig, DigAnswer};
use sipfleet_lab::{DnsMode, Lab, LabConfig, Record, ZonePreset};

fn q(lab: &Lab, rtype: &str, name: &str) -> DigAnswer {
    dig(lab.dns_addr(), rtype, name, Duration::from_secs(1)).unwrap()
}

fn rdata(a: &DigAnswer) -> Vec<String> {
    let mut v: Vec<String> = a.answers.iter().map(|(_, r)| r.clone()).collect();
    v.sort();
    v
}

#[test]
fn standard_zone_serves_naptr_srv_and_a_with_the_configured_ttl() {
    let lab = Lab::start(LabConfig {
        ttl: 2,
        ..LabConfig::default()
    })
    .unwrap();
    let d = lab.domain();
    let naptr = q(&lab, "NAPTR", d);
    assert_eq!(naptr.status, "NOERROR");
    assert_eq!(
        rdata(&naptr),
        [
            format!("10 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.{d}."),
            format!("20 10 \"S\" \"SIP+D2T\" \"\" _sip._tcp.{d}."),
            format!("30 10 \"S\" \"SIPS+D2T\" \"\" _sips._tcp.{d}."),
        ]
    );
    assert!(naptr.answers.iter().all(|(ttl, _)| *ttl == 2));
    let srv = q(&lab, "SRV", &format!("_sips._tcp.{d}"));
    assert_eq!(
        rdata(&srv),
        [
            format!("10 50 5061 sbc1.{d}."),
            format!("20 50 5061 sbc2.{d}."),
            format!("30 50 5061 sbc3.{d}."),
        ]
    );
    for sbc in lab.sbcs() {
        let a = q(&lab, "A", sbc.host_name());
        assert_eq!(rdata(&a), [sbc.ip().to_string()]);
        assert_eq!(a.answers[0].0, 2);
    }
    assert_eq!(q(&lab, "A", &format!("nosuch.{d}")).status, "NXDOMAIN");
    // The server's query log sees exactly the queries made (no probes).
    let seen = lab.dns().queries().unwrap();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(
        (seen[0].rtype.as_str(), seen[0].name.as_str()),
        ("NAPTR", d)
    );
    assert_eq!(seen[1].rtype, "SRV");
}

#[test]
fn mixed_transport_zone_maps_the_guides_table_onto_ten_sbcs() {
    let lab = Lab::start(LabConfig::mixed_transport()).unwrap();
    let d = lab.domain();
    let naptr = q(&lab, "NAPTR", d);
    assert_eq!(
        rdata(&naptr),
        [
            format!("100 10 \"S\" \"SIP+D2T\" \"\" _sip._tcp.poly-sbc-int.{d}."),
            format!("150 10 \"S\" \"SIPS+D2T\" \"\" _sips._tcp.poly-sbc-ext.{d}."),
            format!("200 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.poly-sbc-bak.{d}."),
            format!("50 10 \"S\" \"SIP+D2T\" \"\" _sip._tcp.poly-sbc.{d}."),
        ]
    );
    let c = q(&lab, "SRV", &format!("_sips._tcp.poly-sbc-ext.{d}"));
    assert_eq!(
        rdata(&c),
        [
            format!("140 50 5061 sbc5.{d}."),
            format!("240 50 5061 sbc6.{d}."),
            format!("340 50 5061 sbc7.{d}."),
            format!("440 50 5061 sbc8.{d}."),
        ]
    );
    let a = q(&lab, "SRV", &format!("_sip._tcp.poly-sbc.{d}"));
    assert_eq!(
        rdata(&a),
        [
            format!("100 50 5060 sbc1.{d}."),
            format!("100 50 5060 sbc2.{d}.")
        ]
    );
    let bak = q(&lab, "SRV", &format!("_sip._udp.poly-sbc-bak.{d}"));
    assert_eq!(
        rdata(&bak),
        [
            format!("140 50 5060 sbc9.{d}."),
            format!("240 50 5060 sbc10.{d}.")
        ]
    );
    assert_eq!(
        rdata(&q(&lab, "A", lab.sbc(10).host_name())),
        [lab.sbc(10).ip().to_string()]
    );
    // Every SBC of the table is a running SBC on its own address.
    let ips: std::collections::HashSet<_> = lab.sbcs().iter().map(|s| s.ip()).collect();
    assert_eq!(ips.len(), 10);
}

#[test]
fn records_change_at_run_time_reorder_and_remove_a_route() {
    let lab = Lab::start(LabConfig {
        sbc_count: 2,
        ..LabConfig::default()
    })
    .unwrap();
    let d = lab.domain().to_string();
    let udp = format!("_sip._udp.{d}");
    // Reorder: sbc2 becomes the primary.
    lab.dns()
        .update(|z| {
            for r in &mut z.records {
                if let Record::Srv {
                    name,
                    priority,
                    target,
                    ..
                } = r
                {
                    if *name == udp {
                        *priority = if target.starts_with("sbc2.") { 5 } else { 50 };
                    }
                }
            }
        })
        .unwrap();
    assert_eq!(
        rdata(&q(&lab, "SRV", &udp)),
        [
            format!("5 50 5060 sbc2.{d}."),
            format!("50 50 5060 sbc1.{d}.")
        ]
    );
    // Remove a route.
    lab.dns()
        .update(|z| {
            z.remove(|r| matches!(r, Record::Srv { name, target, .. } if *name == udp && target.starts_with("sbc1.")));
        })
        .unwrap();
    assert_eq!(
        rdata(&q(&lab, "SRV", &udp)),
        [format!("5 50 5060 sbc2.{d}.")]
    );
    // Remove the whole record: the name no longer exists.
    assert_eq!(lab.dns().remove_name(&udp).unwrap(), 1);
    assert_eq!(q(&lab, "SRV", &udp).status, "NXDOMAIN");
    // The other transports are untouched.
    assert_eq!(q(&lab, "SRV", &format!("_sip._tcp.{d}")).answers.len(), 2);
}

#[test]
fn negative_answers_silence_and_stop() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        ..LabConfig::default()
    })
    .unwrap();
    let d = lab.domain().to_string();
    let udp = format!("_sip._udp.{d}");

    lab.dns().set_mode(DnsMode::NxDomain).unwrap();
    assert_eq!(q(&lab, "SRV", &udp).status, "NXDOMAIN");
    assert_eq!(q(&lab, "NAPTR", &d).status, "NXDOMAIN");

    lab.dns().set_mode(DnsMode::NoData).unwrap();
    for (t, n) in [
        ("SRV", udp.as_str()),
        ("NAPTR", d.as_str()),
        ("A", lab.sbc(1).host_name()),
    ] {
        let a = q(&lab, t, n);
        assert_eq!(
            (a.status.as_str(), a.answers.len()),
            ("NOERROR", 0),
            "{t} {n}"
        );
    }

    // Silent: the query times out.
    lab.dns().set_mode(DnsMode::Silent).unwrap();
    let sock = UdpSocket::bind((lab.client_ip(), 0)).unwrap();
    sock.connect(lab.dns_addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let query = [
        0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'f', b'o', b'o', 0, 0, 1, 0, 1,
    ];
    sock.send(&query).unwrap();
    let mut buf = [0u8; 512];
    let err = sock.recv(&mut buf).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    assert_eq!(q(&lab, "SRV", &udp).status, "TIMEOUT");
    // A zone change while silent stays silent, and is served once normal.
    lab.dns().remove_name(&format!("_sip._tcp.{d}")).unwrap();
    assert_eq!(lab.dns().mode(), DnsMode::Silent);
    assert_eq!(q(&lab, "SRV", &udp).status, "TIMEOUT");
    lab.dns().set_mode(DnsMode::Normal).unwrap();
    assert_eq!(q(&lab, "SRV", &format!("_sip._tcp.{d}")).status, "NXDOMAIN");
    lab.dns().set_mode(DnsMode::Silent).unwrap();

    // Stopped: nothing listens, ICMP port unreachable at once.
    lab.dns().stop().unwrap();
    assert_eq!(lab.dns().pgid(), None);
    let started = Instant::now();
    sock.send(&query).unwrap();
    let err = sock.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(started.elapsed() < Duration::from_millis(100));

    // Started again, it serves the zone.
    lab.dns().start().unwrap();
    assert_eq!(q(&lab, "SRV", &udp).answers.len(), 1);
    // A zone change while stopped stays stopped until started.
    lab.dns().stop().unwrap();
    lab.dns().remove_name(&udp).unwrap();
    assert_eq!(lab.dns().mode(), DnsMode::Stopped);
    lab.dns().start().unwrap();
    assert_eq!(q(&lab, "SRV", &udp).status, "NXDOMAIN");
}

#[test]
fn an_empty_zone_preset_answers_nxdomain_everywhere() {
    let lab = Lab::start(LabConfig {
        sbc_count: 1,
        zone: ZonePreset::Empty,
        ..LabConfig::default()
    })
    .unwrap();
    assert_eq!(q(&lab, "NAPTR", lab.domain()).status, "NXDOMAIN");
    assert_eq!(q(&lab, "A", lab.sbc(1).host_name()).status, "NXDOMAIN");
}
