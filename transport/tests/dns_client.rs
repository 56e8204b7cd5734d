//! `transport::dns` against a real DNS server on loopback.

mod dns_support;

use std::time::{Duration, Instant};

use dns_support::{raw_server, silent_server, TestDns, TestZone};
use hickory_server::proto::op::ResponseCode;
use sipfleet_protocol::dns::{Answer, Query, QueryFailure, RecordType};
use sipfleet_transport::dns::{parse_server, DnsClient, DnsClientConfig};

fn client(servers: Vec<std::net::SocketAddr>) -> DnsClient {
    DnsClient::new(&DnsClientConfig {
        servers,
        timeout: Duration::from_millis(300),
        attempts: 1,
    })
    .unwrap()
}

#[tokio::test]
async fn naptr_srv_a_answers_decode() {
    let dns = TestDns::start(TestZone::guide_naptr("poly.example.com", 120)).await;
    let c = client(vec![dns.addr]);
    let Answer::Naptr(naptr) = c
        .query(&Query::new("poly.example.com", RecordType::Naptr))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(naptr.len(), 4);
    assert!(naptr.iter().any(|n| n.order == 150
        && n.services == "SIPS+D2T"
        && n.flags == "s"
        && n.replacement == "_sips._tcp.poly-sbc-ext.poly.example.com"
        && n.ttl_s == 120));
    let Answer::Srv(srv) = c
        .query(&Query::new(
            "_sips._tcp.poly-sbc-ext.poly.example.com",
            RecordType::Srv,
        ))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(srv.len(), 4);
    assert!(srv.iter().any(|s| s.priority == 340
        && s.weight == 50
        && s.port == 5061
        && s.target == "c3.poly.example.com"));
    let a = c
        .query(&Query::new("C3.poly.example.com.", RecordType::A))
        .await
        .unwrap();
    match a {
        Answer::A(v) => assert_eq!(v[0].addr.to_string(), "127.148.200.4"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        dns.count(
            "c3.poly.example.com",
            hickory_server::proto::rr::RecordType::A
        ),
        1
    );
}

#[tokio::test]
async fn negative_answers_are_classified() {
    let dns = TestDns::start(TestZone::new().a("sbc.example.com", 60, &["127.0.0.5"])).await;
    let c = client(vec![dns.addr]);
    assert_eq!(
        c.query(&Query::new("nothing.example.com", RecordType::A))
            .await,
        Err(QueryFailure::NxDomain)
    );
    assert_eq!(
        c.query(&Query::new("sbc.example.com", RecordType::Srv))
            .await,
        Err(QueryFailure::NoRecords)
    );
}

#[tokio::test]
async fn error_answers_are_classified_and_not_restorable() {
    let dns = TestDns::start(TestZone::new().a("sbc.example.com", 60, &["127.0.0.5"])).await;
    let c = client(vec![dns.addr]);
    for code in [
        ResponseCode::ServFail,
        ResponseCode::FormErr,
        ResponseCode::NotImp,
        ResponseCode::Refused,
    ] {
        dns.set_rcode(Some(code));
        let got = c
            .query(&Query::new("sbc.example.com", RecordType::A))
            .await
            .unwrap_err();
        assert!(
            matches!(got, QueryFailure::ErrorResponse(_)),
            "{code:?}: {got:?}"
        );
        assert!(!got.is_restorable());
    }
}

#[tokio::test]
async fn silent_server_times_out() {
    let addr = silent_server().await;
    let c = client(vec![addr]);
    let start = Instant::now();
    let got = c
        .query(&Query::new("sbc.example.com", RecordType::A))
        .await
        .unwrap_err();
    assert_eq!(got, QueryFailure::Timeout);
    assert!(got.is_restorable());
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn stopped_server_is_restorable() {
    let dns = TestDns::start(TestZone::new().a("sbc.example.com", 60, &["127.0.0.5"])).await;
    let addr = dns.addr;
    dns.stop().await;
    let c = client(vec![addr]);
    let got = c
        .query(&Query::new("sbc.example.com", RecordType::A))
        .await
        .unwrap_err();
    assert!(got.is_restorable(), "{got:?}");
}

/// Bytes that cannot be matched to the query (wrong ID, empty) are not an
/// answer: the query times out, like a silent server. A reply with the right ID
/// and a broken body is a malformed answer, which is not restorable.
#[tokio::test]
async fn garbage_answers_are_errors_not_panics() {
    type Reply = fn(&[u8]) -> Vec<u8>;
    let cases: [(Reply, bool); 3] = [
        (|_: &[u8]| b"\x00garbage".to_vec(), false),
        (
            |q: &[u8]| {
                let mut r = q[..2.min(q.len())].to_vec();
                r.extend_from_slice(&[0x81, 0x80, 0x00, 0x01, 0x00, 0x05, 0xff]);
                r
            },
            true,
        ),
        (|_: &[u8]| Vec::new(), false),
    ];
    for (reply, matched) in cases {
        let addr = raw_server(reply).await;
        let c = client(vec![addr]);
        let got = c.query(&Query::new("sbc.example.com", RecordType::A)).await;
        if matched {
            assert!(matches!(got, Err(QueryFailure::Malformed(_))), "{got:?}");
        } else {
            assert_eq!(got, Err(QueryFailure::Timeout));
        }
    }
}

#[tokio::test]
async fn alt_server_answers_when_primary_is_silent() {
    let silent = silent_server().await;
    let dns = TestDns::start(TestZone::new().a("sbc.example.com", 60, &["127.0.0.5"])).await;
    let c = client(vec![silent, dns.addr]);
    let got = c.query(&Query::new("sbc.example.com", RecordType::A)).await;
    assert!(got.is_ok(), "{got:?}");
}

#[test]
fn server_addresses_parse() {
    assert_eq!(
        parse_server("192.0.2.53").unwrap().to_string(),
        "192.0.2.53:53"
    );
    assert_eq!(
        parse_server(" 127.0.0.1:5353 ").unwrap().to_string(),
        "127.0.0.1:5353"
    );
    assert_eq!(parse_server("::1").unwrap().to_string(), "[::1]:53");
    assert_eq!(
        parse_server("[::1]:5353").unwrap().to_string(),
        "[::1]:5353"
    );
    assert!(parse_server("dns.example.com").is_err());
    assert!(parse_server("1.2.3.4:99999").is_err());
    assert!(DnsClient::new(&DnsClientConfig::new(vec![])).is_err());
}
